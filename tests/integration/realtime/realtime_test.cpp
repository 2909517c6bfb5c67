// The realtime server end to end: throwaway PostgreSQL, the server on port 0, real websockets.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "realtime_helpers.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/protocol/postgres_changes.hpp"
#include "rtsync/server/auth/jwks.hpp"
#include "rtsync/server/auth/jwt.hpp"

namespace rtsync::testkit {
namespace {

using protocol::Message;
using protocol::Vsn;

// ---- connect --------------------------------------------------------------------------------

TEST(RealtimeServer, UpgradeNeedsAValidApiKeyAndHealthAndMetricsAnswer) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  auto missing = WsClient::connect(s->port(), "/realtime/v1/websocket?vsn=2.0.0", Vsn::v2);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, R"(401 {"error":"API key is missing"})");
  auto forged = server::auth::sign_hs256(
      json::object{{"role", "service_role"}, {"exp", 4102444800}}, "not-the-secret");
  auto bad = WsClient::connect_key(s->port(), forged);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, R"(401 {"error":"Failed to validate JWT signature"})");
  auto expired = WsClient::connect_key(s->port(), s->key("anon", -60s));
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().message, R"(401 {"error":"Token has expired"})");
  auto garbage = WsClient::connect_key(s->port(), "abc.def");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().message, R"(401 {"error":"The token provided is not a valid JWT"})");

  // Both paths, both serializers (vsn absent means 1.0.0).
  auto v1 = WsClient::connect(s->port(), "/socket/websocket?apikey=" + s->anon_key(), Vsn::v1);
  ASSERT_TRUE(v1.ok()) << v1.error().describe();
  v1.value()->send_text(R"({"topic":"phoenix","event":"heartbeat","payload":{},"ref":"7"})");
  auto hb = v1.value()->read();
  ASSERT_TRUE(hb);
  // The response carries rtsync's stream position (docs/resume.md), which Supabase clients
  // ignore.
  EXPECT_TRUE(hb->data.starts_with(
      R"({"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{"rtsync":{"epoch":")"))
      << hb->data;
  EXPECT_TRUE(hb->data.ends_with(R"(}}}},"ref":"7"})")) << hb->data;
  auto v2 = connect(*s, s->anon_key(), Vsn::v2);
  ASSERT_TRUE(v2);
  v2->send_text(R"([null,"8","phoenix","heartbeat",{}])");
  auto hb2 = v2->read();
  ASSERT_TRUE(hb2);
  EXPECT_TRUE(hb2->data.starts_with(
      R"([null,"8","phoenix","phx_reply",{"status":"ok","response":{"rtsync":{"epoch":")"))
      << hb2->data;

  auto health = http_request(s->port(), "GET", "/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health.value().status, 200u);
  auto metrics = http_request(s->port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics.value().status, 200u);
  EXPECT_NE(metrics.value().body.find("rtsync_connections 2"), std::string::npos)
      << metrics.value().body;
  EXPECT_NE(metrics.value().body.find("rtsync_replication_lag_bytes"), std::string::npos);
  EXPECT_NE(metrics.value().body.find("rtsync_authorization_queries_total"), std::string::npos);
}

// ---- postgres_changes -----------------------------------------------------------------------

// A key rotation through the JWKS file needs no restart: reload_keys() (what SIGHUP does) swaps
// the keys; a broken file keeps the last good ones; a file that cannot be read fails start().
TEST(RealtimeServer, KeyRotationThroughTheJwksFileNeedsNoRestart) {
  auto old_key = server::auth::EcSigningKey::generate("2026-01");
  auto new_key = server::auth::EcSigningKey::generate("2026-02");
  ASSERT_TRUE(old_key.ok() && new_key.ok());
  const auto path = std::filesystem::temp_directory_path() /
                    ("rtsync-realtime-jwks-" + std::to_string(::getpid()) + ".json");
  auto write = [&](std::string text) { std::ofstream(path, std::ios::trunc) << text; };
  auto set_of = [](const server::auth::EcSigningKey& k) {
    return json::serialize(json::object{{"keys", json::array{k.public_jwk()}}});
  };
  auto token = [](const server::auth::EcSigningKey& k) {
    json::object c;
    c["role"] = "anon";
    c["exp"] = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() +
               600;
    return server::auth::sign_es256(c, k);
  };
  write(set_of(old_key.value()));
  StackOptions so;
  so.configure = [&](server::ServerOptions& o) {
    o.jwks = path.string();
    o.jwks_reload_interval = std::chrono::seconds(0);  // only on demand: no race with the test
  };
  auto s = TestStack::start(so);
  ASSERT_TRUE(s.ok()) << s.error().describe();
  auto& srv = s.value()->server();
  EXPECT_TRUE(WsClient::connect_key(srv.port(), token(old_key.value())).ok());
  auto refused = WsClient::connect_key(srv.port(), token(new_key.value()));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, R"(401 {"error":"Failed to validate JWT signature"})");
  // HS256 keys keep working beside the key set.
  EXPECT_TRUE(WsClient::connect_key(srv.port(), s.value()->anon_key()).ok());

  write(set_of(new_key.value()));
  ASSERT_TRUE(srv.reload_keys().ok());
  EXPECT_TRUE(WsClient::connect_key(srv.port(), token(new_key.value())).ok());
  EXPECT_FALSE(WsClient::connect_key(srv.port(), token(old_key.value())).ok());

  write("{\"keys\": [garbage");
  EXPECT_FALSE(srv.reload_keys().ok());
  EXPECT_TRUE(WsClient::connect_key(srv.port(), token(new_key.value())).ok())
      << "a broken key file must keep the last good keys";

  std::filesystem::remove(path);
  server::ServerOptions bad = srv.options();
  bad.listen = "127.0.0.1:0";
  bad.bootstrap = false;
  server::Server other(bad);
  auto started = other.start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find("--jwks"), std::string::npos) << started.error().message;
}

// --jwks as a URL, the way a hosted project publishes its keys: this server reads the key set
// another rtsync server's /auth/v1 serves (ES256 signing), over HTTP, at start and on reload, and
// accepts the tokens that key signs; an unreachable URL fails start().
TEST(RealtimeServer, KeysFromAJwksUrlAreReadAtStartAndOnReload) {
  // The issuer names its key by its thumbprint (kid empty), as /auth/v1 does.
  auto signing = server::auth::EcSigningKey::generate();
  ASSERT_TRUE(signing.ok());
  StackOptions issuer_options;
  issuer_options.configure = [&](server::ServerOptions& o) {
    o.auth_signing_key_pem = signing.value().private_pem();
  };
  auto issuer = TestStack::start(issuer_options);
  ASSERT_TRUE(issuer.ok()) << issuer.error().describe();
  const std::string url = issuer.value()->server().http_url() + "/auth/v1/.well-known/jwks.json";

  auto token = [](const server::auth::EcSigningKey& k) {
    json::object c;
    c["role"] = "anon";
    c["exp"] = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() +
               600;
    return server::auth::sign_es256(c, k);
  };
  StackOptions so;
  so.configure = [&](server::ServerOptions& o) {
    o.jwks = url;
    o.jwks_reload_interval = std::chrono::seconds(0);
  };
  auto s = TestStack::start(so);
  ASSERT_TRUE(s.ok()) << s.error().describe();
  auto& srv = s.value()->server();
  EXPECT_TRUE(WsClient::connect_key(srv.port(), token(signing.value())).ok());
  auto stranger = server::auth::EcSigningKey::generate(signing.value().kid());  // same kid
  ASSERT_TRUE(stranger.ok());
  auto refused = WsClient::connect_key(srv.port(), token(stranger.value()));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, R"(401 {"error":"Failed to validate JWT signature"})");
  auto metrics = http_request(srv.port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics.value().body.find("rtsync_jwks_loads_total 1"), std::string::npos)
      << metrics.value().body;

  // The issuer goes away: a reload fails (logged, counted) and the keys already read stay.
  // (Its listener must really close: this process started PostgreSQL clusters since it opened
  // it, and they must not have inherited it.)
  issuer.value().reset();
  const auto reload_began = std::chrono::steady_clock::now();
  ASSERT_TRUE(srv.reload_keys().ok()) << "a URL reload only begins the read";
  bool counted = false;
  for (int i = 0; i < 200 && !counted; ++i) {
    auto m = http_request(srv.port(), "GET", "/metrics");
    counted =
        m.ok() && m.value().body.find("rtsync_jwks_reload_failures_total 1") != std::string::npos;
    if (!counted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(counted) << "the failed read of the stopped issuer is counted";
  EXPECT_LT(std::chrono::steady_clock::now() - reload_began, std::chrono::seconds(5))
      << "a closed port is refused at once, not after the 10 s deadline";
  EXPECT_TRUE(WsClient::connect_key(srv.port(), token(signing.value())).ok());

  // A URL nobody answers fails start(), naming the flag.
  server::ServerOptions bad = srv.options();
  bad.listen = "127.0.0.1:0";
  bad.bootstrap = false;
  server::Server other(bad);
  auto started = other.start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find("--jwks"), std::string::npos) << started.error().message;
}

TEST(RealtimeServer, EveryFilterOperatorForInsertUpdateDelete) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.items (id int primary key, score int not null, name text);
    alter table public.items replica identity full;
    grant select on public.items to anon, authenticated;
    alter publication supabase_realtime add table public.items;)"));
  auto c = connect(*s, s->anon_key(), Vsn::v1);
  ASSERT_TRUE(c);
  const std::vector<std::pair<std::string, std::string>> ops = {
      {"eq", "score=eq.3"},     {"neq", "score=neq.3"}, {"lt", "score=lt.3"},
      {"lte", "score=lte.3"},   {"gt", "score=gt.3"},   {"gte", "score=gte.3"},
      {"in", "score=in.(1,5)"}, {"text", "name=eq.n4"}};
  for (const auto& [name, filter] : ops) {
    ASSERT_TRUE(c->join_pg("realtime:" + name, json::array{binding("*", "items", filter)}))
        << filter;
  }
  ASSERT_TRUE(c->join_pg("realtime:all", json::array{binding("*", "items")}));
  REQUIRE_OK(s->sql("insert into items select g, g, 'n' || g from generate_series(1,5) g;"));
  // score 3 → 6 (id 3 leaves eq/lte, joins gt), then delete id 1 (score 1).
  REQUIRE_OK(s->sql("update items set score = 6 where id = 3;"));
  REQUIRE_OK(s->sql("delete from items where id = 1;"));

  auto got = drain(*c, 3s);
  auto summary = [&](const std::string& name) {
    std::vector<std::string> out;
    for (const auto& ev : got["realtime:" + name]) {
      auto rec = ev.data.record ? *ev.data.record : *ev.data.old_record;
      out.push_back(ev.data.type.substr(0, 1) + std::to_string(id_of(rec)));
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(summary("eq"), (V{"I3"}));
  EXPECT_EQ(summary("neq"), (V{"I1", "I2", "I4", "I5", "U3", "D1"}));
  EXPECT_EQ(summary("lt"), (V{"I1", "I2", "D1"}));
  EXPECT_EQ(summary("lte"), (V{"I1", "I2", "I3", "D1"}));
  EXPECT_EQ(summary("gt"), (V{"I4", "I5", "U3"}));
  EXPECT_EQ(summary("gte"), (V{"I3", "I4", "I5", "U3"}));
  EXPECT_EQ(summary("in"), (V{"I1", "I5", "D1"}));
  EXPECT_EQ(summary("text"), (V{"I4"}));
  EXPECT_EQ(summary("all"), (V{"I1", "I2", "I3", "I4", "I5", "U3", "D1"}));

  // Wire details of one event of each kind.
  const auto& all = got["realtime:all"];
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all[0].data.schema, "public");
  EXPECT_EQ(all[0].data.table, "items");
  ASSERT_TRUE(all[0].data.commit_timestamp);
  EXPECT_EQ(all[0].data.commit_timestamp->size(), 24u);  // 2026-01-01T00:00:00.000Z
  ASSERT_EQ(all[0].data.columns.size(), 3u);
  EXPECT_EQ(all[0].data.columns[0], (protocol::Column{"id", "int4"}));
  EXPECT_EQ(all[0].data.columns[2], (protocol::Column{"name", "text"}));
  EXPECT_EQ(json::serialize(*all[0].data.record), R"({"id":1,"score":1,"name":"n1"})");
  EXPECT_EQ(json::serialize(*all[5].data.record), R"({"id":3,"score":6,"name":"n3"})");
  EXPECT_EQ(json::serialize(*all[5].data.old_record), R"({"id":3,"score":3,"name":"n3"})");
  EXPECT_FALSE(all[6].data.record);
  // No RLS on the table: the whole old row (REPLICA IDENTITY FULL).
  EXPECT_EQ(json::serialize(*all[6].data.old_record), R"({"id":1,"score":1,"name":"n1"})");
  const auto& lt = got["realtime:lt"];
  EXPECT_EQ(json::serialize(*lt.back().data.old_record), R"({"id":1,"score":1,"name":"n1"})");
}

TEST(RealtimeServer, OneFramePerChannelCarriesEveryMatchingBindingId) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.t (id int primary key, v int);
    grant select on public.t to anon;
    alter publication supabase_realtime add table public.t;)"));
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  auto reply =
      c->join("realtime:multi",
              json::object{{"postgres_changes",
                            json::array{binding("*", "t"), binding("INSERT", "t", "v=gt.1"),
                                        binding("UPDATE", "t")}}});
  ASSERT_TRUE(reply);
  auto acks = protocol::parse_join_response(reply->payload.at("response"));
  ASSERT_TRUE(acks.ok() && acks.value());
  ASSERT_EQ(acks.value()->size(), 3u);
  ASSERT_TRUE(c->wait_event("system"));
  REQUIRE_OK(s->sql("insert into t values (1, 5);"));
  auto evs = changes(*c, "realtime:multi", 1);
  ASSERT_EQ(evs.size(), 1u);
  std::set<std::int64_t> ids(evs[0].ids.begin(), evs[0].ids.end());
  EXPECT_EQ(ids, (std::set<std::int64_t>{(*acks.value())[0].id, (*acks.value())[1].id}));
  EXPECT_TRUE(c->quiet(300ms));  // no second frame for the same change
}

TEST(RealtimeServer, TokenExpiryMidSubscriptionEndsTheChannel) {
  StackOptions o;
  o.jwt_leeway = 0s;
  auto s = start_stack(o);
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  auto short_key = s->key("authenticated", 2s, "33333333-3333-3333-3333-333333333333");
  auto reply = c->join("realtime:exp", json::object{}, short_key);
  ASSERT_TRUE(reply);
  EXPECT_EQ(core::find_string(reply->payload, "status"), "ok");
  auto sys = c->wait_event("system", 6s);
  ASSERT_TRUE(sys) << "no system message at expiry";
  EXPECT_EQ(core::find_string(sys->payload, "status"), "error");
  EXPECT_TRUE(std::string(core::find_string(sys->payload, "message").value_or(""))
                  .starts_with("Token has expired"));
  auto close = c->wait_event("phx_close", 2s);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->ref, c->join_ref("realtime:exp"));
  // The socket itself stays up.
  c->send_text(R"([null,"99","phoenix","heartbeat",{}])");
  EXPECT_TRUE(c->wait_event("phx_reply"));

  // An expired token at join is refused with Supabase's reason.
  auto refused = c->join("realtime:late", json::object{}, s->key("anon", -5s));
  ASSERT_TRUE(refused);
  auto reason = refused->payload.at("response").at("reason").as_string();
  EXPECT_TRUE(std::string(reason).starts_with("InvalidJWTToken: Token has expired")) << reason;

  // A bad access_token push ends a channel: system error then phx_close.
  ASSERT_TRUE(c->join("realtime:push", json::object{}));
  c->send(Message{c->join_ref("realtime:push"), c->next_ref(), "realtime:push", "access_token",
                  json::object{{"access_token", "garbage"}}});
  auto sys2 = c->wait_event("system");
  ASSERT_TRUE(sys2);
  EXPECT_EQ(core::find_string(sys2->payload, "message"), "The token provided is not a valid JWT");
  EXPECT_TRUE(c->wait_event("phx_close"));
}

TEST(RealtimeServer, PostgresRestartMidStreamLosesAndDuplicatesNothing) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.seq (id int primary key);
    grant select on public.seq to anon;
    alter publication supabase_realtime add table public.seq;)"));
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->join_pg("realtime:seq", json::array{binding("INSERT", "seq")}));

  // Writes right before a crash-like restart may still be in flight in the stream.
  REQUIRE_OK(s->sql("insert into seq select g from generate_series(1, 200) g;"));
  for (int i = 201; i <= 250; ++i)
    REQUIRE_OK(s->sql("insert into seq values (" + std::to_string(i) + ");"));
  REQUIRE_OK(s->pg().restart(testkit::TempCluster::StopMode::immediate));
  for (int i = 251; i <= 300; ++i) {
    // The server's own connections come back by themselves; our writes may race its restart.
    for (int attempt = 0; attempt < 50; ++attempt) {
      if (s->sql("insert into seq values (" + std::to_string(i) + ");").ok()) break;
      std::this_thread::sleep_for(100ms);
    }
  }
  std::vector<std::int64_t> ids;
  bool saw_down = false, saw_up = false;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (ids.size() < 300 && std::chrono::steady_clock::now() < deadline) {
    auto m = c->next(2s);
    if (!m) continue;
    if (m->event == "system") {
      auto status = core::find_string(m->payload, "status");
      if (status == "error") saw_down = true;
      if (status == "ok" && saw_down) saw_up = true;
    }
    if (m->event != "postgres_changes") continue;
    auto ev = protocol::parse_change_event(m->payload);
    ASSERT_TRUE(ev.ok());
    ids.push_back(id_of(*ev.value().data.record));
  }
  EXPECT_TRUE(c->quiet(1s));  // nothing more: no duplicates after the 300th
  // The table is the truth (an immediate stop may lose commits not yet flushed: then they are
  // neither in the table nor owed to subscribers).
  auto in_table =
      s->sql_value("select coalesce(string_agg(id::text, ',' order by id), '') from seq");
  ASSERT_TRUE(in_table.ok());
  std::vector<std::int64_t> expected;
  for (std::string_view rest = in_table.value(); !rest.empty();) {
    auto comma = rest.find(',');
    expected.push_back(std::stoll(std::string(rest.substr(0, comma))));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  EXPECT_GE(expected.size(), 250u);
  std::vector<std::int64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  EXPECT_EQ(dup, sorted.end()) << "duplicate id " << (dup == sorted.end() ? 0 : *dup);
  std::vector<std::int64_t> missing;
  std::set_difference(expected.begin(), expected.end(), sorted.begin(), sorted.end(),
                      std::back_inserter(missing));
  EXPECT_TRUE(missing.empty()) << "missing " << missing.size() << ", first "
                               << (missing.empty() ? 0 : missing[0]);
  EXPECT_EQ(ids, expected) << "received " << ids.size() << " in commit order";
  EXPECT_TRUE(saw_down) << "subscribers are told when PostgreSQL goes away";
  EXPECT_TRUE(saw_up) << "and when it is back";
  EXPECT_FALSE(c->closed());
}

TEST(RealtimeServer, ServerRestartResumesFromTheSlot) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.r (id int primary key);
    grant select on public.r to anon;
    alter publication supabase_realtime add table public.r;)"));
  {
    auto c = connect(*s, s->anon_key());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->join_pg("realtime:r", json::array{binding("INSERT", "r")}));
    REQUIRE_OK(s->sql("insert into r values (1);"));
    EXPECT_EQ(changes(*c, "realtime:r", 1).size(), 1u);
  }
  REQUIRE_OK(s->restart_server());
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->join_pg("realtime:r", json::array{binding("INSERT", "r")}));
  REQUIRE_OK(s->sql("insert into r values (2);"));
  auto evs = changes(*c, "realtime:r", 2, 3s);
  ASSERT_EQ(evs.size(), 1u) << "row 1 was confirmed before the restart and is not replayed";
  EXPECT_EQ(id_of(*evs[0].data.record), 2);
}

// ---- broadcast --------------------------------------------------------------------------------

TEST(RealtimeServer, BroadcastSelfAckFanOutBinaryAndRest) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  auto a = connect(*s, s->anon_key(), Vsn::v2);
  auto b = connect(*s, s->anon_key(), Vsn::v1);
  auto d = connect(*s, s->anon_key(), Vsn::v2);
  ASSERT_TRUE(a && b && d);
  ASSERT_TRUE(a->join("realtime:room",
                      json::object{{"broadcast", json::object{{"self", true}, {"ack", true}}}}));
  ASSERT_TRUE(b->join("realtime:room", json::object{}));
  ASSERT_TRUE(d->join("realtime:room", json::object{}));

  // JSON push: self echo + ack for a; fan-out to b (v1 object) and d (v2 array).
  auto ref = a->next_ref();
  a->send(Message{
      a->join_ref("realtime:room"), ref, "realtime:room", "broadcast",
      json::object{{"type", "broadcast"}, {"event", "hi"}, {"payload", json::object{{"n", 1}}}}});
  auto echo = a->wait_event("broadcast");
  ASSERT_TRUE(echo);
  auto ack = a->wait_for([&](const Message& m) { return m.event == "phx_reply" && m.ref == ref; });
  ASSERT_TRUE(ack);
  EXPECT_EQ(core::find_string(ack->payload, "status"), "ok");
  auto fb = b->read();
  ASSERT_TRUE(fb);
  EXPECT_EQ(
      fb->data,
      R"({"topic":"realtime:room","event":"broadcast","payload":{"type":"broadcast","event":"hi","payload":{"n":1}},"ref":null})");
  auto fd = d->read();
  ASSERT_TRUE(fd);
  EXPECT_EQ(
      fd->data,
      R"([null,null,"realtime:room","broadcast",{"type":"broadcast","event":"hi","payload":{"n":1}}])");

  // Binary kind 3 from d: kind 4 to a (v2), JSON to b (v1); d itself (self=false) gets nothing.
  protocol::UserBroadcast push;
  push.join_ref = d->join_ref("realtime:room");
  push.ref = d->next_ref();
  push.topic = "realtime:room";
  push.user_event = "cursor";
  push.payload = R"({"x":3})";
  d->send_binary(protocol::encode_user_broadcast_push(push).value());
  auto fa = a->read();
  ASSERT_TRUE(fa);
  ASSERT_TRUE(fa->binary);
  EXPECT_EQ(static_cast<unsigned char>(fa->data[0]), 4u);
  auto mb = b->wait_event("broadcast");
  ASSERT_TRUE(mb);
  EXPECT_EQ(core::find_string(mb->payload, "event"), "cursor");
  EXPECT_TRUE(d->quiet(300ms));

  // Oversized payload with ack: payload_size_exceeded, nobody receives it.
  auto big_ref = a->next_ref();
  a->send(Message{a->join_ref("realtime:room"), big_ref, "realtime:room", "broadcast",
                  json::object{{"type", "broadcast"},
                               {"event", "big"},
                               {"payload", json::object{{"x", std::string(1100000, 'x')}}}}});
  auto refused = a->wait_for([&](const Message& m) { return m.ref == big_ref; });
  ASSERT_TRUE(refused);
  EXPECT_EQ(json::serialize(refused->payload),
            R"({"status":"error","response":"payload_size_exceeded"})");
  EXPECT_TRUE(b->quiet(300ms));

  // REST: service_role 202 and delivered like a websocket broadcast; anon refused.
  auto rest =
      http_request(s->port(), "POST", "/realtime/v1/api/broadcast",
                   R"({"messages":[{"topic":"room","event":"from-rest","payload":{"k":"v"}}]})",
                   {{"apikey", s->anon_key()}, {"Authorization", "Bearer " + s->service_key()}});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest.value().status, 202u);
  auto rb = b->wait_event("broadcast");
  ASSERT_TRUE(rb);
  EXPECT_EQ(json::serialize(rb->payload),
            R"({"type":"broadcast","event":"from-rest","payload":{"k":"v"}})");
  ASSERT_TRUE(d->wait_event("broadcast"));
  // The per-topic form: percent-escapes decode (two hex digits), a %00 stays as written.
  auto escaped = http_request(s->port(), "POST", "/realtime/v1/api/broadcast/ro%6Fm/events/a%00b",
                              R"({"n":1})", {{"Authorization", "Bearer " + s->service_key()}});
  ASSERT_TRUE(escaped.ok());
  EXPECT_EQ(escaped.value().status, 202u);
  auto eb = b->wait_event("broadcast");
  ASSERT_TRUE(eb);
  EXPECT_EQ(json::serialize(eb->payload),
            R"({"type":"broadcast","event":"a%00b","payload":{"n":1}})");
  ASSERT_TRUE(d->wait_event("broadcast"));
  auto anon = http_request(s->port(), "POST", "/api/broadcast",
                           R"({"messages":[{"topic":"room","event":"x","payload":{}}]})",
                           {{"apikey", s->anon_key()}});
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon.value().status, 202u);  // any token of the project, anon too, as in Supabase
  auto ea = b->wait_event("broadcast");
  ASSERT_TRUE(ea);
  EXPECT_EQ(core::find_string(ea->payload, "event"), "x");
  ASSERT_TRUE(d->wait_event("broadcast"));
  auto invalid = http_request(s->port(), "POST", "/api/broadcast", R"({"nope":1})",
                              {{"Authorization", "Bearer " + s->service_key()}});
  ASSERT_TRUE(invalid.ok());
  EXPECT_EQ(invalid.value().status, 422u);
  EXPECT_TRUE(b->quiet(300ms));

  // Leave: ok then phx_close.
  auto leave_ref = b->next_ref();
  b->send(Message{b->join_ref("realtime:room"), leave_ref, "realtime:room", "phx_leave",
                  json::object()});
  auto lr = b->wait_event("phx_reply");
  ASSERT_TRUE(lr);
  EXPECT_EQ(lr->ref, leave_ref);
  EXPECT_TRUE(b->wait_event("phx_close"));
}

// ---- limits and bad input -----------------------------------------------------------------

TEST(RealtimeServer, FrameAboveTheLimitClosesWith1009AndOthersKeepServing) {
  StackOptions o;
  o.limits.max_frame_bytes = 64 * 1024;
  auto s = start_stack(o);
  ASSERT_TRUE(s);
  auto victim = connect(*s, s->anon_key());
  auto other = connect(*s, s->anon_key());
  ASSERT_TRUE(victim && other);
  victim->send_text(std::string(64 * 1024 + 1, ' '));
  EXPECT_FALSE(victim->read(5s));
  EXPECT_TRUE(victim->closed());
  EXPECT_EQ(victim->close_code(), 1009);
  other->send_text(R"([null,"1","phoenix","heartbeat",{}])");
  EXPECT_TRUE(other->wait_event("phx_reply"));
  auto metrics = s->server().metrics_text();
  EXPECT_NE(metrics.find(R"(rtsync_drops_total{reason="frame_too_large"} 1)"), std::string::npos);
}

TEST(RealtimeServer, MalformedFramesAreIgnoredAndTheSocketKeepsWorking) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  c->send_text("{definitely not json");
  c->send_text(R"({"topic":"a"})");                // an object on a v2 socket
  c->send_text(R"([null,"1","realtime:x"])");      // too short
  c->send_binary(std::string("\x03\xff\x01", 3));  // truncated kind 3
  c->send_binary(std::string("\x09zzz", 4));       // unknown kind
  EXPECT_TRUE(c->quiet(300ms));
  // Push to a topic that was never joined: the Phoenix error reply.
  c->send_text(R"(["1","2","realtime:never","broadcast",{"event":"e"}])");
  auto r = c->wait_event("phx_reply");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::serialize(r->payload),
            R"({"status":"error","response":{"reason":"unmatched topic"}})");
  c->send_text(R"([null,"3","phoenix","heartbeat",{}])");
  EXPECT_TRUE(c->wait_event("phx_reply"));
  auto metrics = s->server().metrics_text();
  EXPECT_NE(metrics.find(R"(rtsync_drops_total{reason="malformed"} 5)"), std::string::npos)
      << metrics;
}

TEST(RealtimeServer, UnparseableHttpGets400Or431AndTheServerKeepsServing) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  const std::string bad = raw_exchange(s->port(), "NOT AN HTTP REQUEST\r\n\r\n");
  EXPECT_TRUE(bad.starts_with("HTTP/1.1 400")) << bad;
  EXPECT_NE(bad.find("malformed HTTP request"), std::string::npos) << bad;
  const std::string huge = raw_exchange(
      s->port(), "GET /health HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(huge.starts_with("HTTP/1.1 431")) << huge.substr(0, 200);
  auto health = http_request(s->port(), "GET", "/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health.value().status, 200u);
  auto metrics = http_request(s->port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics.value().body.find("reason=\"bad_http_request\"} 2"), std::string::npos)
      << metrics.value().body;
}

TEST(RealtimeServer, ChannelsPerConnectionLimit) {
  StackOptions o;
  o.limits.max_channels_per_connection = 3;
  auto s = start_stack(o);
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  for (int i = 0; i < 3; ++i) {
    auto r = c->join("realtime:c" + std::to_string(i), json::object{});
    ASSERT_TRUE(r);
    EXPECT_EQ(core::find_string(r->payload, "status"), "ok");
  }
  auto r = c->join("realtime:c3", json::object{});
  ASSERT_TRUE(r);
  EXPECT_EQ(
      json::serialize(r->payload),
      R"({"status":"error","response":{"reason":"ChannelRateLimitReached: Too many channels"}})");
}

TEST(RealtimeServer, MessagesPerSecondLimitEndsTheChannels) {
  StackOptions o;
  o.limits.max_messages_per_second = 20;
  auto s = start_stack(o);
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key());
  auto other = connect(*s, s->anon_key());
  ASSERT_TRUE(c && other);
  ASSERT_TRUE(c->join("realtime:busy", json::object{}));
  ASSERT_TRUE(other->join("realtime:busy", json::object{}));
  for (int i = 0; i < 40; ++i) {
    c->send(
        Message{c->join_ref("realtime:busy"), c->next_ref(), "realtime:busy", "broadcast",
                json::object{{"type", "broadcast"}, {"event", "e"}, {"payload", json::object()}}});
  }
  auto sys = c->wait_event("system");
  ASSERT_TRUE(sys);
  EXPECT_EQ(core::find_string(sys->payload, "message"), "Too many messages per second");
  EXPECT_TRUE(c->wait_event("phx_close"));
  // The other member got at most the admitted broadcasts.
  int received = 0;
  while (other->next(300ms))
    ++received;
  EXPECT_LE(received, 19);
  EXPECT_GE(received, 1);
}

TEST(RealtimeServer, SlowConsumerIsClosedWith1008NotBufferedForever) {
  StackOptions o;
  o.limits.max_queued_frames = 256;
  o.limits.max_queued_bytes = 1 << 20;
  o.limits.max_messages_per_second = 1000000;
  auto s = start_stack(o);
  ASSERT_TRUE(s);
  auto slow = connect(*s, s->anon_key());
  auto sender = connect(*s, s->anon_key());
  auto fast = connect(*s, s->anon_key());
  ASSERT_TRUE(slow && sender && fast);
  ASSERT_TRUE(slow->join("realtime:flood", json::object{}));
  ASSERT_TRUE(fast->join("realtime:flood", json::object{}));
  ASSERT_TRUE(sender->join("realtime:flood", json::object{}));
  // `slow` never reads; `fast` reads everything. Enough data to fill the kernel buffers.
  std::string blob(32 * 1024, 'x');
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop)
      fast->read(50ms);
  });
  for (int i = 0; i < 1500; ++i) {
    sender->send(Message{
        sender->join_ref("realtime:flood"), std::nullopt, "realtime:flood", "broadcast",
        json::object{
            {"type", "broadcast"}, {"event", "e"}, {"payload", json::object{{"b", blob}}}}});
  }
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = s->server().metrics_text();
    if (metrics.find(R"(reason="slow_consumer"} 1)") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  stop = true;
  reader.join();
  EXPECT_NE(metrics.find(R"(rtsync_drops_total{reason="slow_consumer"} 1)"), std::string::npos)
      << metrics;
  // The slow socket ends with 1008 once it reads again; the fast one is still served.
  slow->set_read_limit(64u << 20);
  for (int i = 0; i < 5000 && !slow->closed(); ++i)
    slow->read(2s);
  EXPECT_TRUE(slow->closed());
  EXPECT_EQ(slow->close_code(), 1008);
  fast->send_text(R"([null,"1","phoenix","heartbeat",{}])");
  EXPECT_TRUE(fast->wait_event("phx_reply"));
}

TEST(RealtimeServer, IdleSocketsAreClosed) {
  StackOptions o;
  o.limits.idle_timeout = 1500ms;
  auto s = start_stack(o);
  ASSERT_TRUE(s);
  auto idle = connect(*s, s->anon_key());
  auto busy = connect(*s, s->anon_key());
  ASSERT_TRUE(idle && busy);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    busy->send_text(R"([null,"1","phoenix","heartbeat",{}])");
    EXPECT_TRUE(busy->wait_event("phx_reply"));
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_FALSE(idle->read(3s));
  EXPECT_TRUE(idle->closed());
  EXPECT_EQ(idle->close_code(), 1000);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_FALSE(busy->closed());
}

TEST(RealtimeServer, ShutdownClosesSocketsWithGoingAway) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key(), Vsn::v1);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->join("realtime:bye", json::object{}));
  std::thread stopper([&] { s->server().stop(); });
  EXPECT_FALSE(c->read(5s));
  stopper.join();
  EXPECT_TRUE(c->closed());
  EXPECT_EQ(c->close_code(), 1001);
  auto health = http_request(s->port(), "GET", "/health");
  EXPECT_FALSE(health.ok());  // no longer listening
}

}  // namespace
}  // namespace rtsync::testkit
