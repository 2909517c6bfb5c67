// A cluster's faults with real processes (docs/scaling.md §3): three `rtsync server --cluster`
// children on one PostgreSQL and one Redis, SIGKILLed and cut as an operator's bad day would.
// Every test counts what was committed against what each subscriber received: every row it may
// see exactly once, or a gap it was told (close 1012, then a rejoin answered "gap") — never a
// silent hole, never another user's row.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "realtime_helpers.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/testkit/temp_cluster.hpp"
#include "rtsync/testkit/temp_redis.hpp"
#include "server_process.hpp"

namespace rtsync::testkit {
namespace {

using chaos::ServerProcess;
using protocol::Message;

const std::string kAlice = "11111111-1111-1111-1111-111111111111";
const std::string kBob = "22222222-2222-2222-2222-222222222222";

std::string make_test_key(const std::string& role, const std::string& sub) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  json::object claims{{"role", role}, {"exp", now + 3600}};
  if (!sub.empty()) claims["sub"] = sub;
  return server::auth::sign_hs256(claims, kTestSecret);
}

struct ProcCluster {
  std::unique_ptr<TempCluster> pg;
  std::unique_ptr<TempRedis> redis;
  std::vector<std::unique_ptr<ServerProcess>> nodes;

  std::string health(std::size_t i) const {
    if (!nodes[i]->running()) return "";
    auto r = http_request(nodes[i]->port(), "GET", "/health");
    return r.ok() ? r.value().body : "";
  }
  // The leader's index, once exactly one running node says it leads (bounded wait).
  std::optional<std::size_t> wait_leader(std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      std::vector<std::size_t> leaders;
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (health(i).find(R"("role":"leader")") != std::string::npos) leaders.push_back(i);
      }
      if (leaders.size() == 1) return leaders[0];
      std::this_thread::sleep_for(20ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return std::nullopt;
  }
  Result<void> sql(const std::string& script) const {
    auto c = server::pg::Connection::open(pg->conninfo());
    if (!c.ok()) return c.error();
    auto r = c.value().exec_script(script);
    if (!r.ok()) return r.error();
    return {};
  }
};

std::unique_ptr<ProcCluster> start_cluster() {
  auto c = std::make_unique<ProcCluster>();
  auto pg = TempCluster::create();
  if (!pg.ok()) {
    ADD_FAILURE() << pg.error().describe();
    return nullptr;
  }
  c->pg = std::move(pg.value());
  auto redis = TempRedis::start();
  if (!redis.ok()) {
    ADD_FAILURE() << redis.error().describe();
    return nullptr;
  }
  c->redis = std::move(redis.value());
  for (int i = 1; i <= 3; ++i) {
    c->nodes.push_back(std::make_unique<ServerProcess>(
        RTSYNC_BINARY,
        std::vector<std::string>{"--db", c->pg->conninfo(), "--jwt-secret",
                                 std::string(kTestSecret), "--cluster", c->redis->url(),
                                 "--node-id", "n" + std::to_string(i), "--threads", "1"},
        c->pg->folder() + "/node" + std::to_string(i) + ".log"));
    if (auto r = c->nodes.back()->start(); !r.ok()) {
      ADD_FAILURE() << "node " << i << ": " << r.error().describe();
      return nullptr;
    }
    if (i == 1) {
      // The first node bootstrapped the database (roles, auth.uid(), publication, slot).
      auto r = c->sql(R"(
        create table public.notes (id int primary key, owner uuid not null, body text);
        alter table public.notes enable row level security;
        create policy own_notes on public.notes for select to authenticated
          using (owner = auth.uid());
        grant select on public.notes to authenticated;
        alter publication supabase_realtime add table public.notes;)");
      if (!r.ok()) {
        ADD_FAILURE() << r.error().describe();
        return nullptr;
      }
    }
  }
  if (!c->wait_leader(10s)) {
    ADD_FAILURE() << "no single leader";
    return nullptr;
  }
  return c;
}

// One subscriber: alice's (or bob's) postgres_changes on notes, through whatever node it is on;
// after a close it rejoins (on `rejoin_port`) with the position of the last change it applied.
struct Subscriber {
  std::string who;
  std::string token;
  std::unique_ptr<WsClient> ws;
  std::vector<std::int64_t> ids;      // in arrival order
  std::optional<json::value> last;    // position of the last change
  std::vector<std::string> outcomes;  // of each rejoin: "resumed" | "gap"
  std::vector<std::uint16_t> closes;  // close codes seen

  bool join(std::uint16_t port) {
    auto c = WsClient::connect_key(port, make_test_key("anon", ""));
    if (!c.ok()) return false;
    ws = std::move(c.value());
    json::object config{{"postgres_changes", json::array{binding("INSERT", "notes")}}};
    if (last) config["rtsync"] = json::object{{"resume", *last}};
    auto reply = ws->join("realtime:notes", config, token);
    if (!reply || reply->payload.at("status").as_string() != "ok") return false;
    if (last) {
      const auto& r = reply->payload.at("response").at("rtsync").at("resume");
      outcomes.emplace_back(r.at("status").as_string());
    }
    return true;
  }
  // Reads for `window`; false once the socket closed.
  bool read(std::chrono::milliseconds window) {
    const auto deadline = std::chrono::steady_clock::now() + window;
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = ws->wait_for([](const Message& m) { return m.event == "postgres_changes"; },
                            std::chrono::duration_cast<std::chrono::milliseconds>(
                                deadline - std::chrono::steady_clock::now()));
      if (!m) break;
      const auto& data = m->payload.at("data");
      ids.push_back(data.at("record").at("id").to_number<std::int64_t>());
      last = data.at("position");
    }
    if (ws->closed()) {
      closes.push_back(ws->close_code());
      return false;
    }
    return true;
  }
};

Subscriber subscriber(const std::string& who) {
  Subscriber s;
  s.who = who;
  s.token = make_test_key("authenticated", who);
  return s;
}

// Rows 1..n, one per transaction, every 5th bob's, the rest alice's: `paced` apart.
std::thread writer(const ProcCluster& c, int n, std::chrono::milliseconds paced,
                   std::atomic<int>& written) {
  return std::thread([&c, n, paced, &written] {
    auto conn = server::pg::Connection::open(c.pg->conninfo());
    ASSERT_TRUE(conn.ok());
    for (int i = 1; i <= n; ++i) {
      auto r = conn.value().exec("insert into notes values ($1::int, $2::uuid, 'n')",
                                 {std::to_string(i), i % 5 == 0 ? kBob : kAlice});
      ASSERT_TRUE(r.ok()) << r.error().describe();
      written = i;
      std::this_thread::sleep_for(paced);
    }
  });
}

std::vector<std::int64_t> rows_of(const std::string& who, int n) {
  std::vector<std::int64_t> out;
  for (int i = 1; i <= n; ++i)
    if ((i % 5 == 0) == (who == kBob)) out.push_back(i);
  return out;
}

// Every subscriber has as many rows as it may see of 1..n (more would be a finding too).
bool all_received(const std::vector<Subscriber>& subs, int n) {
  return std::all_of(subs.begin(), subs.end(),
                     [n](const Subscriber& s) { return s.ids.size() >= rows_of(s.who, n).size(); });
}

// Every row it may see exactly once and in commit order — unless it was told a gap (then no
// duplicate and nothing of another user's).
void expect_accounted(const Subscriber& s, int n) {
  std::string outcomes;
  for (const auto& o : s.outcomes)
    outcomes += o + " ";
  std::printf("[ subscriber ] %s: %zu rows, %zu closes, rejoins: %s\n",
              s.who == kAlice ? "alice" : "bob", s.ids.size(), s.closes.size(), outcomes.c_str());
  const bool told_gap = std::find(s.outcomes.begin(), s.outcomes.end(), "gap") != s.outcomes.end();
  const auto mine = rows_of(s.who, n);
  std::set<std::int64_t> allowed(mine.begin(), mine.end());
  std::set<std::int64_t> seen;
  for (auto id : s.ids) {
    EXPECT_TRUE(allowed.count(id)) << s.who << " got row " << id << ", not theirs";
    EXPECT_TRUE(seen.insert(id).second) << s.who << " got row " << id << " twice";
  }
  if (!told_gap) {
    EXPECT_EQ(s.ids, mine) << s.who << ": lost rows without being told (closes " << s.closes.size()
                           << ")";
  }
}

TEST(ClusterProcess, LeaderKilledAStandbyTakesOverWithinFiveSecondsAndNoRowIsLostOrDoubled) {
  auto c = start_cluster();
  ASSERT_TRUE(c);
  const auto leader = *c->wait_leader(1s);
  // Alice on every node (her client on the leader will have to move), Bob on a standby.
  std::vector<Subscriber> subs;
  for (std::size_t i = 0; i < 3; ++i) {
    subs.push_back(subscriber(kAlice));
    ASSERT_TRUE(subs.back().join(c->nodes[i]->port())) << "node " << i + 1;
  }
  const std::size_t standby = (leader + 1) % 3;
  subs.push_back(subscriber(kBob));
  ASSERT_TRUE(subs.back().join(c->nodes[standby]->port()));
  std::vector<std::size_t> on{0, 1, 2, standby};  // each subscriber's node

  constexpr int kRows = 300;
  std::atomic<int> written{0};
  auto w = writer(*c, kRows, 10ms, written);
  std::optional<std::chrono::steady_clock::time_point> killed_at;
  std::optional<std::chrono::milliseconds> takeover;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!killed_at && written >= kRows / 3) {
      c->nodes[leader]->kill();
      killed_at = std::chrono::steady_clock::now();
    }
    if (killed_at && !takeover) {
      for (std::size_t i = 0; i < 3; ++i) {
        if (i != leader && c->health(i).find(R"("role":"leader")") != std::string::npos) {
          takeover = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - *killed_at);
        }
      }
    }
    for (std::size_t k = 0; k < subs.size(); ++k) {
      if (!subs[k].read(30ms)) {
        // Its node died (or told it a gap): rejoin on the next live node with its position.
        on[k] = on[k] == leader ? (leader + 1) % 3 : on[k];
        ASSERT_TRUE(subs[k].join(c->nodes[on[k]]->port())) << subs[k].who << " could not rejoin";
      }
    }
    if (written == kRows && all_received(subs, kRows)) break;
  }
  w.join();
  for (auto& s : subs)
    s.read(500ms);  // anything late or doubled
  ASSERT_TRUE(takeover) << "no standby took over";
  EXPECT_LE(*takeover, 5000ms);
  for (const auto& s : subs)
    expect_accounted(s, kRows);
  // The client of the killed leader resumed elsewhere.
  EXPECT_EQ(subs[leader].outcomes.size(), 1u);
  RecordProperty("takeover_ms", static_cast<int>(takeover->count()));
  std::printf("[ takeover   ] a standby led %lld ms after the leader's SIGKILL\n",
              static_cast<long long>(takeover->count()));
}

TEST(ClusterProcess, ANodeKilledHasItsPresencesLeaveEverywhereWithinTenSeconds) {
  auto c = start_cluster();
  ASSERT_TRUE(c);
  const json::object config{{"presence", json::object{{"enabled", true}, {"key", ""}}}};
  auto watcher = WsClient::connect_key(c->nodes[0]->port(), make_test_key("anon", ""));
  auto doomed = WsClient::connect_key(c->nodes[1]->port(), make_test_key("anon", ""));
  ASSERT_TRUE(watcher.ok() && doomed.ok());
  ASSERT_TRUE(watcher.value()->join("realtime:lobby", config));
  ASSERT_TRUE(doomed.value()->join("realtime:lobby", config));
  doomed.value()->send(Message{doomed.value()->join_ref("realtime:lobby"),
                               doomed.value()->next_ref(), "realtime:lobby", "presence",
                               json::object{{"type", "presence"},
                                            {"event", "track"},
                                            {"payload", json::object{{"user", "doomed"}}}}});
  auto joined = watcher.value()->wait_for(
      [](const Message& m) {
        return m.event == "presence_diff" && !m.payload.at("joins").as_object().empty();
      },
      5s);
  ASSERT_TRUE(joined) << "the track on node 2 never reached node 1";
  c->nodes[1]->kill();
  const auto killed = std::chrono::steady_clock::now();
  auto left = watcher.value()->wait_for(
      [](const Message& m) {
        return m.event == "presence_diff" && !m.payload.at("leaves").as_object().empty();
      },
      12s);
  ASSERT_TRUE(left) << "node 2's presence never left";
  const auto after = std::chrono::steady_clock::now() - killed;
  EXPECT_LE(after, 10s);
  std::printf(
      "[ leave      ] node 2's presence left on node 1 %lld ms after its SIGKILL\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(after).count()));
}

TEST(ClusterProcess, RedisRestartedNodesReconnectAndNoRowIsSilentlyLost) {
  auto c = start_cluster();
  ASSERT_TRUE(c);
  const auto leader = *c->wait_leader(1s);
  std::vector<Subscriber> subs;
  std::vector<std::size_t> on;
  for (std::size_t i = 0; i < 3; ++i) {
    if (i == leader) continue;
    subs.push_back(subscriber(kAlice));
    ASSERT_TRUE(subs.back().join(c->nodes[i]->port()));
    on.push_back(i);
  }
  constexpr int kRows = 200;
  std::atomic<int> written{0};
  auto w = writer(*c, kRows, 10ms, written);
  bool restarted = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!restarted && written >= kRows / 3) {
      ASSERT_TRUE(c->redis->restart().ok());
      restarted = true;
    }
    for (std::size_t k = 0; k < subs.size(); ++k) {
      if (!subs[k].read(30ms)) {
        ASSERT_TRUE(subs[k].join(c->nodes[on[k]]->port()));
      }
    }
    if (written == kRows && all_received(subs, kRows)) break;
  }
  w.join();
  for (auto& s : subs)
    s.read(500ms);
  for (const auto& s : subs)
    expect_accounted(s, kRows);
  // The nodes are back on Redis and still serve: a last row reaches every standby's subscriber.
  ASSERT_TRUE(c->sql("insert into notes values (100000, '" + kAlice + "', 'after')").ok());
  for (auto& s : subs) {
    s.read(3s);
    ASSERT_FALSE(s.ids.empty());
    EXPECT_EQ(s.ids.back(), 100000);
  }
}

}  // namespace
}  // namespace rtsync::testkit
