// Three nodes of a cluster (docs/scaling.md §3) in one process: one PostgreSQL, one Redis
// (testkit::TempRedis), three servers with --cluster, clients on each over real websockets.
// What a user of any node must see: broadcasts and presence from every node, and
// postgres_changes under row-level security on every node, each row exactly once.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "realtime_helpers.hpp"
#include "rtsync/testkit/temp_redis.hpp"

namespace rtsync::testkit {
namespace {

const std::string kAlice = "11111111-1111-1111-1111-111111111111";
const std::string kBob = "22222222-2222-2222-2222-222222222222";

// `stack` is node 1; nodes 2 and 3 are further servers on the same database and Redis.
struct Cluster {
  std::unique_ptr<TempRedis> redis;
  std::unique_ptr<TestStack> stack;
  std::vector<std::unique_ptr<server::Server>> more;

  std::uint16_t port(int node) const {
    return node == 0 ? stack->port() : more[static_cast<std::size_t>(node - 1)]->port();
  }
  std::string health(int node) const {
    auto r = http_request(port(node), "GET", "/health");
    return r.ok() ? r.value().body : "";
  }
  int leaders() const {
    int n = 0;
    for (int i = 0; i < 3; ++i)
      n += health(i).find(R"("role":"leader")") != std::string::npos;
    return n;
  }
};

std::unique_ptr<WsClient> connect_to(std::uint16_t port, const std::string& key) {
  auto c = WsClient::connect_key(port, key);
  if (!c.ok()) {
    ADD_FAILURE() << "connect: " << c.error().describe();
    return nullptr;
  }
  return std::move(c.value());
}

// One command through redis-cli (Debian's redis-tools, installed with redis-server); its --raw
// output.
std::string redis_cli(std::uint16_t port, const std::string& args) {
  std::string out;
  const std::string cmd = "redis-cli -p " + std::to_string(port) + " --raw " + args;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, f))
      out.append(buf, n);
    pclose(f);
  }
  return out;
}

server::ServerOptions node_options(const TestStack& s, const std::string& redis,
                                   const std::string& id) {
  server::ServerOptions o;
  o.db = s.conninfo();
  o.listen = "127.0.0.1:0";
  o.jwt_secret = std::string(kTestSecret);
  o.cluster = redis;
  o.node_id = id;
  return o;
}

std::unique_ptr<Cluster> start_cluster() {
  auto c = std::make_unique<Cluster>();
  auto redis = TempRedis::start();
  if (!redis.ok()) {
    ADD_FAILURE() << redis.error().message;
    return nullptr;
  }
  c->redis = std::move(redis.value());
  StackOptions so;
  so.configure = [url = c->redis->url()](server::ServerOptions& o) {
    o.cluster = url;
    o.node_id = "n1";
  };
  c->stack = start_stack(so);
  if (!c->stack) return nullptr;
  for (const char* id : {"n2", "n3"}) {
    auto srv = std::make_unique<server::Server>(node_options(*c->stack, c->redis->url(), id));
    if (auto r = srv->start(); !r.ok()) {
      ADD_FAILURE() << id << ": " << r.error().message;
      return nullptr;
    }
    if (!srv->wait_healthy(std::chrono::seconds(20))) {
      ADD_FAILURE() << id << " not healthy";
      return nullptr;
    }
    c->more.push_back(std::move(srv));
  }
  // One leader among the three, within the leadership check interval.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (c->leaders() != 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(c->leaders(), 1);
  return c;
}

TEST(Cluster, HealthNamesEachNodesRoleAndRedisLink) {
  auto c = start_cluster();
  ASSERT_TRUE(c);
  std::set<std::string> roles;
  for (int i = 0; i < 3; ++i) {
    auto body = c->health(i);
    EXPECT_NE(body.find(R"("redis":"up")"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("node":"n)" + std::to_string(i + 1) + "\""), std::string::npos) << body;
    roles.insert(body.find(R"("role":"leader")") != std::string::npos ? "leader" : "other");
  }
  EXPECT_EQ(roles, (std::set<std::string>{"leader", "other"}));
}

TEST(Cluster, ABroadcastOnOneNodeReachesClientsOnTheOthers) {
  auto c = start_cluster();
  ASSERT_TRUE(c);
  std::vector<std::unique_ptr<WsClient>> ws;
  for (int i = 0; i < 3; ++i) {
    ws.push_back(connect_to(c->port(i), c->stack->anon_key()));
    ASSERT_TRUE(ws.back());
    auto reply = ws.back()->join("realtime:room", json::object{{"broadcast", json::object{}}});
    ASSERT_TRUE(reply);
  }
  protocol::Message m;
  m.topic = "realtime:room";
  m.event = "broadcast";
  m.join_ref = ws[0]->join_ref("realtime:room");
  m.ref = ws[0]->next_ref();
  m.payload = json::object{{"type", "broadcast"}, {"event", "hello"}, {"payload", {{"n", 1}}}};
  ws[0]->send(m);
  for (int i = 1; i < 3; ++i) {
    auto got = ws[static_cast<std::size_t>(i)]->wait_for(
        [](const protocol::Message& x) { return x.event == "broadcast"; }, 5s);
    ASSERT_TRUE(got) << "node " << i + 1;
    EXPECT_EQ(json::serialize(got->payload.at("payload")), R"({"n":1})");
  }
  // Not sent back to its sender (no `self`), not twice to anyone.
  EXPECT_TRUE(ws[0]->quiet(500ms));
  EXPECT_TRUE(ws[1]->quiet(300ms));
}

TEST(Cluster, PresenceConvergesAcrossNodesAndLeavesWithItsNode) {
  auto c = start_cluster();
  ASSERT_TRUE(c);
  std::vector<std::unique_ptr<WsClient>> ws;
  const json::object config{{"presence", json::object{{"enabled", true}, {"key", ""}}}};
  for (int i = 0; i < 3; ++i) {
    ws.push_back(connect_to(c->port(i), c->stack->anon_key()));
    ASSERT_TRUE(ws.back());
    ASSERT_TRUE(ws.back()->join("realtime:lobby", config));
  }
  // Nodes 2 and 3 each track one presence; node 1's client sees both.
  for (int i = 1; i < 3; ++i) {
    protocol::Message t;
    t.topic = "realtime:lobby";
    t.event = "presence";
    t.join_ref = ws[static_cast<std::size_t>(i)]->join_ref("realtime:lobby");
    t.ref = ws[static_cast<std::size_t>(i)]->next_ref();
    t.payload = json::object{{"type", "presence"},
                             {"event", "track"},
                             {"payload", json::object{{"user", "u" + std::to_string(i + 1)}}}};
    ws[static_cast<std::size_t>(i)]->send(t);
  }
  std::set<std::string> joined;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (joined.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    auto d = ws[0]->wait_event("presence_diff", 1s);
    if (!d) continue;
    for (const auto& [key, v] : d->payload.at("joins").as_object()) {
      for (const auto& meta : v.at("metas").as_array())
        joined.insert(std::string(meta.at("user").as_string()));
    }
  }
  EXPECT_EQ(joined, (std::set<std::string>{"u2", "u3"}));
  // A client joining node 1 later gets both in its presence_state.
  auto late = connect_to(c->port(0), c->stack->anon_key());
  ASSERT_TRUE(late && late->join("realtime:lobby", config));
  auto state = late->wait_event("presence_state", 3s);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->payload.as_object().size(), 2u) << json::serialize(state->payload);

  // Node 3 stops: its presence leaves on node 1 (a killed node's key expires: the process test).
  c->more[1]->stop();
  bool left = false;
  const auto leave_deadline = std::chrono::steady_clock::now() + 10s;
  while (!left && std::chrono::steady_clock::now() < leave_deadline) {
    auto d = ws[0]->wait_event("presence_diff", 1s);
    if (!d) continue;
    for (const auto& [key, v] : d->payload.at("leaves").as_object()) {
      for (const auto& meta : v.at("metas").as_array())
        left = left || meta.at("user").as_string() == "u3";
    }
  }
  EXPECT_TRUE(left);
}

TEST(Cluster, RowSecurityDecidesOnEveryNodeAndEachRowArrivesOnce) {
  auto c = start_cluster();
  ASSERT_TRUE(c);
  REQUIRE_OK(c->stack->sql(R"(
    create table public.notes (id serial primary key, owner uuid not null, body text);
    alter table public.notes enable row level security;
    create policy own_notes on public.notes for select to authenticated using (owner = auth.uid());
    grant select on public.notes to authenticated;
    alter publication supabase_realtime add table public.notes;)"));
  auto alice_key = c->stack->key("authenticated", 1h, kAlice);
  auto bob_key = c->stack->key("authenticated", 1h, kBob);
  std::vector<std::unique_ptr<WsClient>> alice, bob;
  for (int i = 0; i < 3; ++i) {
    alice.push_back(connect_to(c->port(i), c->stack->anon_key()));
    bob.push_back(connect_to(c->port(i), c->stack->anon_key()));
    ASSERT_TRUE(alice.back() && bob.back());
    ASSERT_TRUE(
        alice.back()->join_pg("realtime:notes", json::array{binding("INSERT", "notes")}, alice_key))
        << "node " << i + 1;
    ASSERT_TRUE(
        bob.back()->join_pg("realtime:notes", json::array{binding("INSERT", "notes")}, bob_key));
  }
  constexpr int kRows = 30;
  for (int i = 0; i < kRows; ++i) {
    REQUIRE_OK(c->stack->sql("insert into notes (owner, body) values ('" + (i % 2 ? kBob : kAlice) +
                             "', 'r" + std::to_string(i) + "');"));
  }
  for (int i = 0; i < 3; ++i) {
    for (auto* who : {&alice, &bob}) {
      const bool is_alice = who == &alice;
      ChangesByTopic got;
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (got["realtime:notes"].size() < kRows / 2 &&
             std::chrono::steady_clock::now() < deadline)
        drain_into(*(*who)[static_cast<std::size_t>(i)], got, 200ms);
      drain_into(*(*who)[static_cast<std::size_t>(i)], got, 500ms);
      std::multiset<std::int64_t> ids;
      for (const auto& e : got["realtime:notes"]) {
        EXPECT_EQ(std::string(e.data.record->at("owner").as_string()), is_alice ? kAlice : kBob)
            << "node " << i + 1 << " leaked another user's row";
        ids.insert(id_of(*e.data.record));
      }
      std::multiset<std::int64_t> want;
      for (int r = 0; r < kRows; ++r)
        if ((r % 2 == 1) != is_alice) want.insert(r + 1);
      EXPECT_EQ(ids, want) << (is_alice ? "alice" : "bob") << " on node " << i + 1;
    }
  }
}

TEST(Cluster, AHoleInTheChangeStreamIsToldAsAGapNotSkipped) {
  auto c = start_cluster();
  ASSERT_TRUE(c);
  REQUIRE_OK(c->stack->sql(R"(
    create table public.items (id int primary key, body text);
    grant select on public.items to anon;
    alter publication supabase_realtime add table public.items;)"));
  int standby = 0;
  while (c->health(standby).find(R"("role":"leader")") != std::string::npos)
    ++standby;
  const json::object config{{"postgres_changes", json::array{binding("INSERT", "items")}}};
  auto sub = connect_to(c->port(standby), c->stack->anon_key());
  ASSERT_TRUE(sub && sub->join_pg("realtime:items", json::array{binding("INSERT", "items")}));
  REQUIRE_OK(c->stack->sql("insert into items values (1, 'one')"));
  auto first = sub->wait_event("postgres_changes", 5s);
  ASSERT_TRUE(first);
  const auto position = first->payload.at("data").at("position");

  // An entry whose `prev` names a transaction this node never read: what a reader finds after
  // entries were lost (trimmed away while it lagged, or gone with a Redis restart).
  const std::string key = "rtsync:rtsync_realtime:changes";
  auto last = redis_cli(c->redis->port(), "XREVRANGE " + key + " + - COUNT 1");
  auto dash = last.find('-');
  ASSERT_NE(dash, std::string::npos) << last;
  const auto lsn = std::stoull(last.substr(0, dash));
  const auto part = std::stoull(last.substr(dash + 1, last.find('\n') - dash - 1));
  const std::string body = R"('{"x":0,"c":)" + std::to_string(lsn + 1) +
                           R"(,"e":0,"w":0,"ts":"","p":0,"l":true,"b":0,"r":[],"ch":[]}')";
  redis_cli(c->redis->port(), "XADD " + key + " " + std::to_string(lsn + 1) + "-0 prev " +
                                  std::to_string(lsn) + "-" + std::to_string(part + 1) + " d " +
                                  body);

  // The standby's subscriber is told: its socket closes with 1012, and its rejoin from the
  // position it had is answered with a gap (it refetches).
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!sub->closed() && std::chrono::steady_clock::now() < deadline)
    sub->read(200ms);
  ASSERT_TRUE(sub->closed()) << "the hole was not told";
  EXPECT_EQ(sub->close_code(), 1012);
  auto again = connect_to(c->port(standby), c->stack->anon_key());
  ASSERT_TRUE(again);
  json::object resume_config = config;
  resume_config["rtsync"] = json::object{{"resume", position}};
  auto reply = again->join("realtime:items", resume_config);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->payload.at("response").at("rtsync").at("resume").at("status"), "gap")
      << json::serialize(reply->payload);
  auto metrics = http_request(c->port(standby), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics.value().body.find("rtsync_cluster_gaps_total 1"), std::string::npos);

  // Live changes go on after the hole, without another gap.
  ASSERT_TRUE(again->wait_for(
      [](const protocol::Message& m) {
        return m.event == "system" && m.payload.at("message") == "Subscribed to PostgreSQL";
      },
      5s));
  REQUIRE_OK(c->stack->sql("insert into items values (2, 'two')"));
  auto second = again->wait_event("postgres_changes", 5s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->payload.at("data").at("record").at("id"), 2);
  EXPECT_FALSE(again->closed());
}

}  // namespace
}  // namespace rtsync::testkit
