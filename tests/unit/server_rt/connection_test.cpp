#include "rtsync/server/realtime/connection.hpp"

#include <gtest/gtest.h>

#include "rtsync/core/log.hpp"

#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/server/realtime/names.hpp"
#include "unit/server_rt/fakes.hpp"

namespace rtsync::server::realtime {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using protocol::Message;
using protocol::Vsn;

class ConnectionTest : public ::testing::Test {
 protected:
  ConnectionTest() : verifier(kSecret, 2s), hub(sched, verifier, &authz, limits()) {
    hub.on_stream_state(true, "");
  }
  static RealtimeLimits limits() {
    RealtimeLimits l;
    l.max_broadcast_payload_bytes = 64;
    l.max_messages_per_second = 50;
    return l;
  }
  std::int64_t now_s() const {
    return std::chrono::duration_cast<std::chrono::seconds>(sched.wall_now().time_since_epoch())
        .count();
  }
  std::string token(std::string role, std::int64_t exp_in_s, std::string sub = "") {
    json::object c{{"role", role}, {"exp", now_s() + exp_in_s}};
    if (!sub.empty()) c["sub"] = sub;
    return auth::sign_hs256(c, kSecret);
  }
  auth::VerifiedJwt verified(std::string role = "anon", std::int64_t exp_in_s = 3600,
                             std::string sub = "") {
    return verifier.verify(token(role, exp_in_s, std::move(sub)), sched.wall_now()).value();
  }
  struct Client {
    FakeSession io;
    std::unique_ptr<Connection> conn;
    Client(Hub& hub, Vsn vsn, auth::VerifiedJwt key) : io(vsn) {
      conn = std::make_unique<Connection>(hub, io, vsn, std::move(key));
    }
    void send(const Message& m) { conn->on_text(protocol::encode_text(io.vsn, m)); }
  };
  std::unique_ptr<Client> client(Vsn vsn = Vsn::v2, std::string role = "anon",
                                 std::string sub = "") {
    return std::make_unique<Client>(hub, vsn, verified(role, 3600, std::move(sub)));
  }
  static Message join(std::string topic, std::string ref, json::object config = {},
                      std::optional<std::string> access_token = std::nullopt) {
    json::object payload{{"config", config}};
    if (access_token) payload["access_token"] = *access_token;
    return Message{ref, ref, "realtime:" + topic, "phx_join", payload};
  }
  static json::object pg_config(json::array bindings, bool self = false, bool ack = false) {
    return json::object{{"broadcast", json::object{{"self", self}, {"ack", ack}}},
                        {"postgres_changes", bindings}};
  }
  // A client joined to every change of `tasks`, its join reply read, and one row of it handed to
  // the hub; `done` turns true when the hub confirms that transaction to the stream.
  std::unique_ptr<Client> client_with_one_row(bool& done) {
    auto c = client();
    c->send(join("r", "1", pg_config({json::object{{"event", "*"}, {"table", "tasks"}}})));
    c->io.take();
    hub.on_transaction(txn({insert(make_relation("public", "tasks"), row(1, "u", 1))}),
                       [&done] { done = true; });
    return c;
  }

  core::ManualScheduler sched;
  auth::JwtVerifier verifier;
  FakeAuthorizer authz;
  Hub hub;
};

TEST_F(ConnectionTest, HeartbeatIsAnsweredOnV1AndV2) {
  auto v1 = client(Vsn::v1);
  v1->send(Message{std::nullopt, "26", "phoenix", "heartbeat", json::object()});
  ASSERT_EQ(v1->io.frames.size(), 1u);
  EXPECT_EQ(
      *v1->io.frames[0].bytes,
      R"({"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"26"})");
  auto v2 = client(Vsn::v2);
  v2->send(Message{std::nullopt, "27", "phoenix", "heartbeat", json::object()});
  ASSERT_EQ(v2->io.frames.size(), 1u);
  EXPECT_EQ(*v2->io.frames[0].bytes,
            R"([null,"27","phoenix","phx_reply",{"status":"ok","response":{}}])");
}

TEST_F(ConnectionTest, JoinEchoesBindingsWithIdsThenSubscribed) {
  auto c = client();
  json::array bindings{
      json::object{{"event", "*"}, {"schema", "public"}, {"table", "tasks"}, {"filter", "id=eq.1"}},
      json::object{{"event", "INSERT"}, {"schema", "public"}}};
  c->send(join("room", "1", pg_config(bindings)));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].event, "phx_reply");
  EXPECT_EQ(msgs[0].ref, "1");
  EXPECT_EQ(msgs[0].join_ref, "1");
  auto acks = protocol::parse_join_response(msgs[0].payload.at("response"));
  ASSERT_TRUE(acks.ok());
  ASSERT_TRUE(acks.value().has_value());
  ASSERT_EQ(acks.value()->size(), 2u);
  EXPECT_EQ((*acks.value())[0].spec.filter, "id=eq.1");
  EXPECT_EQ((*acks.value())[0].id, Router::binding_id("*", "public", "tasks", "id=eq.1"));
  EXPECT_EQ(msgs[1].event, "system");
  EXPECT_EQ(msgs[1].join_ref, "1");
  EXPECT_EQ(msgs[1].payload.at("message").as_string(), "Subscribed to PostgreSQL");
  EXPECT_EQ(msgs[1].payload.at("extension").as_string(), "postgres_changes");
  EXPECT_EQ(msgs[1].payload.at("channel").as_string(), "room");
  EXPECT_TRUE(hub.router().contains(c->conn->channel("realtime:room")->id));
}

TEST_F(ConnectionTest, JoinWithoutBindingsRepliesEmptyListAndNoSystem) {
  auto c = client(Vsn::v1);
  c->send(join("room", "3"));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(json::serialize(msgs[0].payload),
            R"({"status":"ok","response":{"postgres_changes":[]}})");
}

TEST_F(ConnectionTest, BadBindingsAreSystemErrorsNotJoinErrors) {
  auto c = client();
  json::array bindings{json::object{{"event", "*"}, {"table", "tasks"}, {"filter", "id=zz.1"}},
                       json::object{{"event", "*"}}};
  c->send(join("room", "1", pg_config(bindings)));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].payload.at("status").as_string(), "ok");
  EXPECT_EQ(msgs[1].payload.at("status").as_string(), "error");
  EXPECT_TRUE(
      msgs[1].payload.at("message").as_string().starts_with("Error parsing `filter` params"));
  EXPECT_TRUE(
      msgs[2].payload.at("message").as_string().starts_with("No subscription params provided"));
}

TEST_F(ConnectionTest, StreamDownAtJoinThenSubscribedWhenItComesBack) {
  hub.on_stream_state(false, "connection refused");
  auto c = client();
  c->send(join("room", "1", pg_config({json::object{{"event", "*"}, {"table", "tasks"}}})));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].payload.at("status").as_string(), "error");
  hub.on_stream_state(true, "");
  msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].payload.at("message").as_string(), "Subscribed to PostgreSQL");
  hub.on_stream_state(false, "gone");
  msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].payload.at("extension").as_string(), "postgres_changes");
  EXPECT_EQ(msgs[0].payload.at("status").as_string(), "error");
}

TEST_F(ConnectionTest, JoinRefusesBadTokensWithTheReferenceReasons) {
  auto c = client();
  c->send(join("a", "1", {}, "not-a-jwt"));
  c->send(join(
      "b", "2", {},
      auth::sign_hs256(json::object{{"role", "anon"}, {"exp", now_s() + 60}}, "wrong-secret")));
  c->send(join("c", "3", {}, token("anon", -30)));
  c->send(join("d", "4", {}, auth::sign_hs256(json::object{{"exp", now_s() + 60}}, kSecret)));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 4u);
  auto reason = [](const Message& m) {
    return std::string(m.payload.at("response").at("reason").as_string());
  };
  EXPECT_EQ(reason(msgs[0]), "MalformedJWT: The token provided is not a valid JWT");
  EXPECT_EQ(reason(msgs[1]), "JwtSignatureError: Failed to validate JWT signature");
  EXPECT_EQ(reason(msgs[2]), "InvalidJWTToken: Token has expired 30 seconds ago");
  EXPECT_EQ(reason(msgs[3]), "InvalidJWTToken: Fields `role` and `exp` are required in JWT");
  EXPECT_EQ(c->conn->channel_count(), 0u);
  EXPECT_EQ(hub.metrics().join_errors, 4u);
}

TEST_F(ConnectionTest, TopicRules) {
  auto c = client();
  c->send(Message{"1", "1", "realtime:", "phx_join", json::object{{"config", json::object()}}});
  c->send(Message{"2", "2", "room:x", "phx_join", json::object{{"config", json::object()}}});
  c->send(Message{"3", "3", "realtime:nojoin", "broadcast", json::object{{"event", "x"}}});
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].payload.at("response").at("reason").as_string(),
            "TopicNameRequired: You must provide a topic name");
  EXPECT_EQ(msgs[1].payload.at("response").at("reason").as_string(), "unmatched topic");
  EXPECT_EQ(msgs[2].payload.at("response").at("reason").as_string(), "unmatched topic");
}

TEST_F(ConnectionTest, MoreThanTheChannelLimitIsRefused) {
  auto c = client();
  for (int i = 0; i < 100; ++i) {
    if (i % 40 == 0) sched.advance(1s);  // stay under the messages/s limit
    c->send(join("t" + std::to_string(i), std::to_string(i)));
  }
  c->io.take();
  sched.advance(1s);  // new rate window
  c->send(join("one-too-many", "x"));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].payload.at("response").at("reason").as_string(),
            "ChannelRateLimitReached: Too many channels");
  EXPECT_EQ(c->conn->channel_count(), 100u);
}

TEST_F(ConnectionTest, RejoinOfAJoinedTopicClosesTheEarlierChannel) {
  auto c = client();
  c->send(join("room", "1"));
  c->send(join("room", "5"));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[1].event, "phx_close");
  EXPECT_EQ(msgs[1].ref, "1");
  EXPECT_EQ(msgs[2].event, "phx_reply");
  EXPECT_EQ(c->conn->channel("realtime:room")->join_ref, "5");
  EXPECT_EQ(hub.members("realtime:room"), 1u);
}

TEST_F(ConnectionTest, LeaveRepliesOkThenCloses) {
  auto c = client();
  c->send(join("room", "1", pg_config({json::object{{"event", "*"}, {"table", "t"}}})));
  c->io.take();
  auto id = c->conn->channel("realtime:room")->id;
  c->send(Message{"1", "2", "realtime:room", "phx_leave", json::object()});
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].event, "phx_reply");
  EXPECT_EQ(msgs[0].ref, "2");
  EXPECT_EQ(msgs[1].event, "phx_close");
  EXPECT_EQ(msgs[1].ref, "1");
  EXPECT_EQ(msgs[1].join_ref, "1");
  EXPECT_EQ(c->conn->channel_count(), 0u);
  EXPECT_FALSE(hub.router().contains(id));
  EXPECT_EQ(hub.members("realtime:room"), 0u);
}

TEST_F(ConnectionTest, BroadcastSelfAckAndFanOut) {
  auto a = client(Vsn::v2);
  auto b = client(Vsn::v1);
  auto d = client(Vsn::v2);
  a->send(join("room", "1", pg_config({}, /*self=*/true, /*ack=*/true)));
  b->send(join("room", "1"));
  d->send(join("room", "1"));
  a->io.take();
  b->io.take();
  d->io.take();
  json::object payload{{"type", "broadcast"}, {"event", "hi"}, {"payload", json::object{{"n", 1}}}};
  a->send(Message{"1", "2", "realtime:room", "broadcast", payload});
  auto am = a->io.take();
  ASSERT_EQ(am.size(), 2u);  // self echo + ack
  EXPECT_EQ(am[0].event, "broadcast");
  EXPECT_EQ(am[1].event, "phx_reply");
  EXPECT_EQ(am[1].ref, "2");
  ASSERT_EQ(b->io.frames.size(), 1u);
  EXPECT_EQ(
      *b->io.frames[0].bytes,
      R"({"topic":"realtime:room","event":"broadcast","payload":{"type":"broadcast","event":"hi","payload":{"n":1}},"ref":null})");
  ASSERT_EQ(d->io.frames.size(), 1u);
  EXPECT_EQ(
      *d->io.frames[0].bytes,
      R"([null,null,"realtime:room","broadcast",{"type":"broadcast","event":"hi","payload":{"n":1}}])");
  // The sender without self gets nothing but the (absent) ack.
  d->io.take();
  d->send(Message{"1", "3", "realtime:room", "broadcast", payload});
  EXPECT_TRUE(d->io.frames.empty());
  EXPECT_EQ(a->io.frames.size(), 1u);
  // One serialization shared by every v2 receiver.
  a->io.take();
  b->io.take();
}

TEST_F(ConnectionTest, V2ReceiversShareTheSameFrameBytes) {
  auto a = client();
  auto b = client();
  auto s = client();
  a->send(join("room", "1"));
  b->send(join("room", "1"));
  s->send(join("room", "1"));
  a->io.take();
  b->io.take();
  s->send(
      Message{"1", "2", "realtime:room", "broadcast",
              json::object{{"type", "broadcast"}, {"event", "e"}, {"payload", json::object()}}});
  ASSERT_EQ(a->io.frames.size(), 1u);
  ASSERT_EQ(b->io.frames.size(), 1u);
  EXPECT_EQ(a->io.frames[0].bytes.get(), b->io.frames[0].bytes.get());
}

TEST_F(ConnectionTest, OversizedBroadcastIsRefusedWithAck) {
  auto a = client();
  auto b = client();
  a->send(join("room", "1", pg_config({}, false, true)));
  b->send(join("room", "1"));
  a->io.take();
  b->io.take();
  json::object payload{{"type", "broadcast"},
                       {"event", "big"},
                       {"payload", json::object{{"x", std::string(100, 'x')}}}};
  a->send(Message{"1", "2", "realtime:room", "broadcast", payload});
  auto msgs = a->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(json::serialize(msgs[0].payload),
            R"({"status":"error","response":"payload_size_exceeded"})");
  EXPECT_TRUE(b->io.frames.empty());
  EXPECT_EQ(hub.metrics().drops_for(drop::kPayloadTooLarge), 1u);
}

TEST_F(ConnectionTest, BinaryKind3BecomesKind4ForV2AndJsonForV1) {
  auto a = client(Vsn::v2);
  auto b = client(Vsn::v2);
  auto c = client(Vsn::v1);
  a->send(join("room", "1", pg_config({}, false, true)));
  b->send(join("room", "1"));
  c->send(join("room", "1"));
  a->io.take();
  b->io.take();
  c->io.take();
  protocol::UserBroadcast push;
  push.join_ref = "1";
  push.ref = "9";
  push.topic = "realtime:room";
  push.user_event = "cursor";
  push.payload = R"({"x":1})";
  a->conn->on_binary(protocol::encode_user_broadcast_push(push).value());
  auto ack = a->io.take();
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0].ref, "9");
  ASSERT_EQ(b->io.frames.size(), 1u);
  ASSERT_TRUE(b->io.frames[0].binary);
  auto got = protocol::decode_user_broadcast(*b->io.frames[0].bytes);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value().topic, "realtime:room");
  EXPECT_EQ(got.value().user_event, "cursor");
  EXPECT_EQ(got.value().payload, R"({"x":1})");
  auto v1 = c->io.take();
  ASSERT_EQ(v1.size(), 1u);
  EXPECT_EQ(v1[0].event, "broadcast");
  EXPECT_EQ(v1[0].payload.at("event").as_string(), "cursor");
  EXPECT_EQ(json::serialize(v1[0].payload.at("payload")), R"({"x":1})");
}

TEST_F(ConnectionTest, MalformedFramesAreCountedAndIgnored) {
  auto c = client();
  c->conn->on_text("{not json");
  c->conn->on_text(R"({"topic":"x"})");  // v1 object on a v2 socket
  c->conn->on_binary(std::string("\x07\x01", 2));
  EXPECT_TRUE(c->io.frames.empty());
  EXPECT_FALSE(c->io.closed);
  EXPECT_EQ(hub.metrics().drops_for(drop::kMalformed), 3u);
  c->send(Message{std::nullopt, "1", "phoenix", "heartbeat", json::object()});
  EXPECT_EQ(c->io.frames.size(), 1u);
}

TEST_F(ConnectionTest, UnknownEventsAreIgnored) {
  auto c = client();
  c->send(join("room", "1"));
  c->io.take();
  c->send(Message{"1", "2", "realtime:room", "whatever", json::object()});
  EXPECT_TRUE(c->io.frames.empty());
}

TEST_F(ConnectionTest, IdleTimeoutFiresAtSixtySecondsAfterTheLastFrame) {
  auto c = client();
  sched.advance(30s);
  c->send(Message{std::nullopt, "1", "phoenix", "heartbeat", json::object()});
  sched.advance(60s - 1ms);
  EXPECT_FALSE(c->io.closed);
  sched.advance(1ms);
  EXPECT_TRUE(c->io.closed);
  EXPECT_EQ(c->io.close_code, protocol::close_code::kNormal);
}

TEST_F(ConnectionTest, TokenExpiryEndsTheChannelWithoutAPush) {
  auto c = client();
  c->send(join("room", "1", {}, token("authenticated", 10, "u1")));
  c->io.take();
  // exp = now + 10 s, leeway 2 s: the check fails at 12 s, not a millisecond before.
  EXPECT_EQ(sched.time_until(rtsync::server::realtime::timers::TokenExpiry), core::Duration(12s));
  sched.advance(12s - 1ms);
  EXPECT_TRUE(c->io.frames.empty());
  sched.advance(1ms);
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].event, "system");
  EXPECT_EQ(msgs[0].payload.at("extension").as_string(), "system");
  EXPECT_EQ(msgs[0].payload.at("status").as_string(), "error");
  EXPECT_EQ(msgs[0].payload.at("message").as_string(), "Token has expired 2 seconds ago");
  EXPECT_EQ(msgs[1].event, "phx_close");
  EXPECT_EQ(c->conn->channel_count(), 0u);
}

TEST_F(ConnectionTest, AccessTokenRefreshMovesTheExpiryAndBadOnesCloseTheChannel) {
  auto c = client();
  c->send(join("room", "1", {}, token("authenticated", 10, "u1")));
  c->io.take();
  sched.advance(5s);
  c->send(Message{"1", "2", "realtime:room", "access_token",
                  json::object{{"access_token", token("authenticated", 100, "u1")}}});
  EXPECT_TRUE(c->io.frames.empty());  // no reply to access_token
  sched.advance(20s);
  EXPECT_TRUE(c->io.frames.empty());
  EXPECT_EQ(c->conn->channel_count(), 1u);
  // null and sb_ tokens are ignored
  c->send(
      Message{"1", "3", "realtime:room", "access_token", json::object{{"access_token", nullptr}}});
  c->send(Message{"1", "4", "realtime:room", "access_token",
                  json::object{{"access_token", "sb_publishable_x"}}});
  EXPECT_TRUE(c->io.frames.empty());
  c->send(Message{"1", "5", "realtime:room", "access_token", json::object{{"access_token", ""}}});
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].payload.at("message").as_string(), "The token provided is not a valid JWT");
  EXPECT_EQ(msgs[1].event, "phx_close");
}

TEST_F(ConnectionTest, RateLimitEndsChannelsAndDropsTheRestOfTheSecond) {
  auto c = client();
  c->send(join("room", "1"));
  c->io.take();
  json::object payload{{"type", "broadcast"}, {"event", "e"}, {"payload", json::object()}};
  for (int i = 0; i < 49; ++i)
    c->send(Message{"1", "x", "realtime:room", "broadcast", payload});
  EXPECT_EQ(c->conn->channel_count(), 1u);
  c->send(Message{"1", "y", "realtime:room", "broadcast", payload});
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].payload.at("message").as_string(), "Too many messages per second");
  EXPECT_EQ(msgs[1].event, "phx_close");
  EXPECT_GE(hub.metrics().drops_for(drop::kRateLimited), 1u);
  // Heartbeats still work, and the next second admits messages again.
  c->send(Message{std::nullopt, "h", "phoenix", "heartbeat", json::object()});
  EXPECT_EQ(c->io.take().size(), 1u);
  sched.advance(1s);
  c->send(join("room", "7"));
  EXPECT_EQ(c->io.take().size(), 1u);
}

TEST_F(ConnectionTest, MalformedFramesCountAgainstTheRateAndAFloodIsNotLogged) {
  auto c = client();
  c->send(join("room", "1"));
  c->io.take();
  rtsync::log::Capture logs;
  for (int i = 0; i < 49; ++i)
    c->conn->on_text("{not json");
  EXPECT_EQ(c->conn->channel_count(), 1u);
  for (int i = 0; i < 100; ++i)
    c->conn->on_text("{not json");
  // The 50th frame of the second tripped the limit: the channel ended as for any message flood.
  EXPECT_EQ(c->conn->channel_count(), 0u);
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].payload.at("message").as_string(), "Too many messages per second");
  std::size_t logged = 0;
  for (const auto& l : logs.lines())
    logged += l.find("MalformedWebSocketMessage") != std::string::npos;
  EXPECT_EQ(logged, 49u);
  EXPECT_EQ(hub.metrics().drops_for(drop::kMalformed), 49u);
}

TEST_F(ConnectionTest, HeartbeatsHaveTheirOwnBudgetPerSecond) {
  auto c = client();
  for (int i = 0; i < 60; ++i)
    c->send(Message{std::nullopt, std::to_string(i), "phoenix", "heartbeat", json::object()});
  EXPECT_EQ(c->io.take().size(), 50u);  // the limit's worth of answers, the rest dropped
  EXPECT_EQ(hub.metrics().drops_for(drop::kRateLimited), 10u);
  sched.advance(1s);
  c->send(Message{std::nullopt, "h", "phoenix", "heartbeat", json::object()});
  EXPECT_EQ(c->io.take().size(), 1u);
}

TEST_F(ConnectionTest, PresenceTrackIsAcknowledged) {
  auto c = client();
  c->send(join("room", "1"));
  c->io.take();
  c->send(
      Message{"1", "2", "realtime:room", "presence",
              json::object{{"type", "presence"}, {"event", "track"}, {"payload", json::object()}}});
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].event, "phx_reply");
  EXPECT_EQ(json::serialize(msgs[0].payload), R"({"status":"ok","response":{}})");
  EXPECT_EQ(c->conn->channel_count(), 1u);
  EXPECT_EQ(hub.presence().size(), 1u);  // presence in detail: presence_test.cpp
}

// ---- postgres_changes delivery through the hub ----

TEST_F(ConnectionTest, ChangesReachMatchingChannelsAsOneFramePerChannel) {
  auto a = client(Vsn::v2);
  auto b = client(Vsn::v1);
  json::array bindings{json::object{{"event", "*"}, {"schema", "public"}, {"table", "tasks"}},
                       json::object{{"event", "INSERT"},
                                    {"schema", "public"},
                                    {"table", "tasks"},
                                    {"filter", "score=gte.5"}}};
  a->send(join("room", "1", pg_config(bindings)));
  b->send(join("room", "1", pg_config(bindings)));
  a->io.take();
  b->io.take();
  auto rel = make_relation("public", "tasks");
  bool done = false;
  hub.on_transaction(txn({insert(rel, row(1, "u", 7))}), [&] { done = true; });
  EXPECT_TRUE(done);
  auto am = a->io.take();
  ASSERT_EQ(am.size(), 1u);
  EXPECT_EQ(am[0].event, "postgres_changes");
  EXPECT_FALSE(am[0].ref.has_value());
  auto ev = protocol::parse_change_event(am[0].payload);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev.value().ids.size(), 2u);
  EXPECT_EQ(ev.value().data.type, "INSERT");
  EXPECT_EQ(ev.value().data.table, "tasks");
  EXPECT_EQ(ev.value().data.commit_timestamp, "2026-01-01T00:00:00.000Z");
  ASSERT_EQ(ev.value().data.columns.size(), 4u);
  EXPECT_EQ(ev.value().data.columns[2].type, "int4");
  EXPECT_EQ(json::serialize(*ev.value().data.record),
            R"({"id":1,"owner":"u","score":7,"title":"t"})");
  EXPECT_FALSE(ev.value().data.old_record.has_value());
  auto bm = b->io.take();
  ASSERT_EQ(bm.size(), 1u);
  EXPECT_EQ(json::serialize(bm[0].payload), json::serialize(am[0].payload));
  EXPECT_EQ(authz.queries(), 1u);  // both sockets share one auth class
  EXPECT_EQ(hub.metrics().deliveries, 2u);
}

TEST_F(ConnectionTest, DoneWaitsForAuthorizationAndRlsFiltersRows) {
  authz.defer = true;
  authz.rule = [](const AuthClass& a, const RowChange& ch) {
    return a.claims_json.find(std::string(ch.record->at("owner").as_string())) != std::string::npos;
  };
  auto alice = std::make_unique<Client>(
      hub, Vsn::v2,
      verifier.verify(token("authenticated", 3600, "alice"), sched.wall_now()).value());
  auto bob = std::make_unique<Client>(
      hub, Vsn::v2, verifier.verify(token("authenticated", 3600, "bob"), sched.wall_now()).value());
  json::array bindings{json::object{{"event", "*"}, {"schema", "public"}, {"table", "tasks"}}};
  alice->send(join("r", "1", pg_config(bindings)));
  bob->send(join("r", "1", pg_config(bindings)));
  alice->io.take();
  bob->io.take();
  auto rel = make_relation("public", "tasks");
  bool done = false;
  hub.on_transaction(txn({insert(rel, row(1, "alice", 1)), insert(rel, row(2, "bob", 1)),
                          insert(rel, row(3, "alice", 1))}),
                     [&] { done = true; });
  EXPECT_FALSE(done);
  EXPECT_TRUE(alice->io.frames.empty());
  ASSERT_EQ(authz.calls.size(), 1u);
  EXPECT_EQ(authz.calls[0].size(), 2u);  // one request per class, whole transaction
  authz.flush();
  EXPECT_TRUE(done);
  auto am = alice->io.take();
  auto bm = bob->io.take();
  ASSERT_EQ(am.size(), 2u);
  ASSERT_EQ(bm.size(), 1u);
  EXPECT_EQ(bm[0].payload.at("data").at("record").at("id").as_int64(), 2);
  EXPECT_EQ(hub.metrics().drops_for(drop::kUnauthorized), 3u);  // 6 checks, 3 visible
}

TEST_F(ConnectionTest, AuthorizerFailureIsRetriedWithBackoffBeforeConfirming) {
  authz.fail_times = 2;
  bool done = false;
  auto c = client_with_one_row(done);
  EXPECT_FALSE(done);  // the stream is held back: nothing is confirmed yet
  EXPECT_EQ(sched.time_until(rtsync::server::realtime::timers::AuthorizeRetry),
            core::Duration(100ms));
  sched.advance(99ms);
  EXPECT_EQ(authz.calls.size(), 1u);
  sched.advance(1ms);
  EXPECT_EQ(authz.calls.size(), 2u);
  EXPECT_EQ(sched.time_until(rtsync::server::realtime::timers::AuthorizeRetry),
            core::Duration(200ms));
  sched.advance(200ms);
  EXPECT_EQ(authz.calls.size(), 3u);
  EXPECT_TRUE(done);
  EXPECT_EQ(c->io.take().size(), 1u);  // delivered once PostgreSQL answered
}

TEST_F(ConnectionTest, AnAuthorizerOutageHoldsDeliveryForAsLongAsItLasts) {
  authz.fail = true;
  bool done = false;
  auto c = client_with_one_row(done);
  // 0.1+0.2+0.4+0.8+1.6 s, then every 2 s: however long the outage (here just under the idle
  // timeout that would close this silent test socket), nothing is confirmed or dropped.
  sched.advance(3100ms);
  EXPECT_EQ(authz.calls.size(), 6u);
  EXPECT_EQ(sched.time_until(rtsync::server::realtime::timers::AuthorizeRetry), core::Duration(2s));
  sched.advance(52s);
  EXPECT_FALSE(done);
  EXPECT_TRUE(c->io.frames.empty());
  EXPECT_EQ(hub.metrics().drops_for(drop::kAuthorizerFailed), 0u);
  EXPECT_EQ(hub.metrics().authorization_retries, 32u);
  // PostgreSQL is back: the next retry delivers, exactly once, and only then confirms.
  authz.fail = false;
  sched.advance(2s);
  EXPECT_TRUE(done);
  EXPECT_EQ(c->io.take().size(), 1u);
  sched.advance(4s);
  EXPECT_TRUE(c->io.frames.empty());
}

TEST_F(ConnectionTest, AnAuthorizationErrorThatRepeatsRefusesTheRowsAfterEightTries) {
  authz.fail = true;
  authz.permanent = true;  // e.g. a policy that raises on the row's values
  bool done = false;
  auto c = client_with_one_row(done);
  sched.advance(7099ms);  // 0.1+0.2+0.4+0.8+1.6+2+2 s: the 8th attempt is due at 7.1 s
  EXPECT_FALSE(done);
  sched.advance(1ms);
  EXPECT_EQ(authz.calls.size(), 8u);
  EXPECT_TRUE(done);
  EXPECT_TRUE(c->io.frames.empty());
  EXPECT_EQ(hub.metrics().drops_for(drop::kAuthorizerFailed), 1u);
}

// A long outage is many transient failures; the one error of another kind when PostgreSQL is
// back (a session's temporary table gone with the restart, say) is retried like any first one,
// not taken as the eighth strike that refuses the rows.
TEST_F(ConnectionTest, AnOutagesRetriesDoNotCountTowardRefusingTheRows) {
  authz.fail = true;
  bool done = false;
  auto c = client_with_one_row(done);
  sched.advance(11100ms);  // at 0, 0.1, 0.3, 0.7, 1.5, 3.1 s, then every 2 s: 10 failed calls
  ASSERT_EQ(authz.calls.size(), 10u);
  authz.permanent = true;  // the next answer is an error no outage explains
  sched.advance(2s);
  ASSERT_EQ(authz.calls.size(), 11u);
  EXPECT_FALSE(done);
  authz.fail = false;
  authz.permanent = false;
  sched.advance(2s);
  EXPECT_TRUE(done);
  EXPECT_EQ(c->io.take().size(), 1u);
  EXPECT_EQ(hub.metrics().drops_for(drop::kAuthorizerFailed), 0u);
}

TEST_F(ConnectionTest, PipelinedTransactionsAreDeliveredInCommitOrder) {
  authz.defer = true;
  EXPECT_EQ(hub.max_in_flight(), limits().max_transactions_in_flight);
  EXPECT_GT(hub.max_in_flight(), 1u);
  auto c = client();
  c->send(join("r", "1", pg_config({json::object{{"event", "*"}, {"table", "tasks"}}})));
  c->io.take();
  auto rel = make_relation("public", "tasks");
  auto other = make_relation("public", "untracked");
  std::vector<int> done_order;
  hub.on_transaction(txn({insert(rel, row(1, "u", 1))}, 100), [&] { done_order.push_back(1); });
  hub.on_transaction(txn({insert(rel, row(2, "u", 1))}, 200), [&] { done_order.push_back(2); });
  // Nothing to authorize (no subscriber of that table): ready at once, still waits its turn.
  hub.on_transaction(txn({insert(other, row(9, "u", 1))}, 300), [&] { done_order.push_back(3); });
  hub.on_transaction(txn({insert(rel, row(4, "u", 1))}, 400), [&] { done_order.push_back(4); });
  // All three that need it are being authorized at once.
  ASSERT_EQ(authz.calls.size(), 3u);
  EXPECT_EQ(hub.in_flight(), 4u);
  // Later answers first: nothing may overtake the first transaction.
  authz.answer(2);
  authz.answer(1);
  EXPECT_TRUE(done_order.empty());
  EXPECT_TRUE(c->io.frames.empty());
  authz.answer(0);
  EXPECT_EQ(done_order, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(hub.in_flight(), 0u);
  auto got = c->io.take();
  ASSERT_EQ(got.size(), 3u);
  const std::vector<std::int64_t> want{1, 2, 4};
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i].payload.at("data").at("record").at("id").as_int64(), want[i]);
}

TEST_F(ConnectionTest, RetryOfAnEarlierTransactionHoldsBackLaterOnes) {
  authz.fail_times = 1;  // only the first call fails
  auto c = client();
  c->send(join("r", "1", pg_config({json::object{{"event", "*"}, {"table", "tasks"}}})));
  c->io.take();
  auto rel = make_relation("public", "tasks");
  std::vector<int> done_order;
  hub.on_transaction(txn({insert(rel, row(1, "u", 1))}, 100), [&] { done_order.push_back(1); });
  hub.on_transaction(txn({insert(rel, row(2, "u", 1))}, 200), [&] { done_order.push_back(2); });
  // The second was answered at once but waits for the first's retry.
  EXPECT_TRUE(done_order.empty());
  EXPECT_TRUE(c->io.frames.empty());
  EXPECT_EQ(sched.time_until(rtsync::server::realtime::timers::AuthorizeRetry),
            core::Duration(100ms));
  sched.advance(100ms);
  EXPECT_EQ(done_order, (std::vector<int>{1, 2}));
  auto got = c->io.take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload.at("data").at("record").at("id").as_int64(), 1);
  EXPECT_EQ(got[1].payload.at("data").at("record").at("id").as_int64(), 2);
}

TEST_F(ConnectionTest, DestroyedHubConfirmsNothingStillInFlight) {
  authz.defer = true;
  bool done = false;
  {
    Hub other(sched, verifier, &authz, limits());
    other.on_stream_state(true, "");
    auto c = std::make_unique<Client>(other, Vsn::v2, verified());
    c->send(join("r", "1", pg_config({json::object{{"event", "*"}, {"table", "tasks"}}})));
    other.on_transaction(txn({insert(make_relation("public", "tasks"), row(1, "u", 1))}),
                         [&] { done = true; });
    ASSERT_EQ(authz.calls.size(), 1u);
    c.reset();
  }
  authz.flush();  // the answer arrives after the hub went away: nothing is confirmed
  EXPECT_FALSE(done);
}

TEST_F(ConnectionTest, ChannelLeavingDuringAuthorizationIsSkipped) {
  authz.defer = true;
  bool done = false;
  auto c = client_with_one_row(done);
  c->send(Message{"1", "2", "realtime:r", "phx_leave", json::object()});
  c->io.take();
  authz.flush();
  EXPECT_TRUE(done);
  EXPECT_TRUE(c->io.frames.empty());
}

class FakeRelationInfo final : public RelationInfoSource {
 public:
  RelationInfoSource::Infos infos;
  int lookups = 0;
  bool fail = false;
  void lookup(std::vector<std::uint32_t> oids, std::function<void(Result<Infos>)> done) override {
    ++lookups;
    if (fail) return done(make_error(Errc::io, "PostgreSQL connection lost"));
    Infos out;
    for (auto oid : oids) {
      if (infos.count(oid)) out[oid] = infos[oid];
    }
    done(out);
  }
};

TEST_F(ConnectionTest, DeletesGoWhereTheOldImageIsVisibleAndTheKeyOnlyWhereItCannotBeJudged) {
  // Owner-only policy on complete images; images without REPLICA IDENTITY FULL cannot be judged.
  authz.old_rule = [](const AuthClass& a, const RowChange& ch) {
    if (a.role == "service_role") return Visibility::full;
    if (ch.relation->replica_identity != 'f') return Visibility::key_only;
    const std::string owner(ch.old_record->at("owner").as_string());
    return a.claims_json.find(owner) != std::string::npos ? Visibility::full : Visibility::hidden;
  };
  auto a = client(Vsn::v2, "authenticated", "alice");
  auto b = client(Vsn::v2, "authenticated", "bob");
  auto svc = client(Vsn::v2, "service_role");
  a->send(join("r", "1",
               pg_config({json::object{{"event", "DELETE"},
                                       {"schema", "public"},
                                       {"table", "tasks"},
                                       {"filter", "owner=eq.alice"}}})));
  // Bob: unfiltered, and a filter guessing Alice's row.
  b->send(join("r2", "1",
               pg_config({json::object{{"event", "*"}, {"schema", "public"}, {"table", "tasks"}},
                          json::object{{"event", "*"},
                                       {"schema", "public"},
                                       {"table", "tasks"},
                                       {"filter", "owner=eq.alice"}}})));
  svc->send(
      join("r3", "1",
           pg_config({json::object{{"event", "*"}, {"schema", "public"}, {"table", "tasks"}}})));
  a->io.take();
  b->io.take();
  svc->io.take();
  hub.on_transaction(txn({remove(make_relation("public", "tasks", 'd'), json::object{{"id", 4}}),
                          remove(make_relation("public", "tasks", 'f'), row(5, "alice", 9))}),
                     [] {});
  // Default identity: no filtered binding can match, and an unfiltered one gets the key only.
  // FULL: only who may see Alice's old row gets it, whole; Bob's guess reveals nothing.
  auto am = a->io.take();
  ASSERT_EQ(am.size(), 1u);
  EXPECT_FALSE(am[0].payload.at("data").as_object().contains("record"));
  EXPECT_EQ(json::serialize(am[0].payload.at("data").at("old_record")),
            R"({"id":5,"owner":"alice","score":9,"title":"t"})");
  auto bm = b->io.take();
  ASSERT_EQ(bm.size(), 1u);
  EXPECT_EQ(json::serialize(bm[0].payload.at("data").at("old_record")), R"({"id":4})");
  auto sm = svc->io.take();
  ASSERT_EQ(sm.size(), 2u);
  EXPECT_EQ(json::serialize(sm[0].payload.at("data").at("old_record")), R"({"id":4})");
  EXPECT_EQ(json::serialize(sm[1].payload.at("data").at("old_record")),
            R"({"id":5,"owner":"alice","score":9,"title":"t"})");
}

TEST_F(ConnectionTest, UpdateOldRecordIsTheKeyUnlessTheOldImageIsVisible) {
  authz.rule = [](const AuthClass& a, const RowChange& ch) {
    return a.claims_json.find(std::string(ch.record->at("owner").as_string())) != std::string::npos;
  };
  authz.old_rule = [](const AuthClass& a, const RowChange& ch) {
    const std::string owner(ch.old_record->at("owner").as_string());
    return a.claims_json.find(owner) != std::string::npos ? Visibility::full : Visibility::hidden;
  };
  FakeRelationInfo facts;
  facts.infos[16384] = RelationInfo{{"id"}};
  hub.set_relation_info(&facts);
  auto a = client(Vsn::v2, "authenticated", "alice");
  auto b = client(Vsn::v2, "authenticated", "bob");
  for (auto* c : {a.get(), b.get()}) {
    c->send(join("r", "1", pg_config({json::object{{"event", "UPDATE"}, {"table", "tasks"}}})));
    c->io.take();
  }
  auto rel = make_relation("public", "tasks", 'f');
  hub.on_transaction(txn({update(rel, row(1, "bob", 2, "moved"), row(1, "alice", 1, "private")),
                          update(rel, row(2, "bob", 3, "new"), row(2, "bob", 1, "old"))}),
                     [] {});
  EXPECT_TRUE(a->io.take().empty());  // Alice may not see either new image
  auto bm = b->io.take();
  ASSERT_EQ(bm.size(), 2u);
  EXPECT_EQ(json::serialize(bm[0].payload.at("data").at("record")),
            R"({"id":1,"owner":"bob","score":2,"title":"moved"})");
  EXPECT_EQ(json::serialize(bm[0].payload.at("data").at("old_record")), R"({"id":1})");
  EXPECT_EQ(json::serialize(bm[1].payload.at("data").at("old_record")),
            R"({"id":2,"owner":"bob","score":1,"title":"old"})");
}

TEST_F(ConnectionTest, RelationFactsGiveTheKeyOfTrimmedRowsAndAreCachedForTheTtl) {
  FakeRelationInfo facts;
  facts.infos[16384] = RelationInfo{{"id"}};
  hub.set_relation_info(&facts, 1s);
  bool trim = true;
  authz.old_rule = [&](const AuthClass&, const RowChange&) {
    return trim ? Visibility::key_only : Visibility::full;
  };
  auto a = client(Vsn::v2, "authenticated");
  a->send(
      join("r", "1",
           pg_config({json::object{{"event", "*"}, {"schema", "public"}, {"table", "tasks"}}})));
  a->io.take();
  auto full = make_relation("public", "tasks", 'f');
  hub.on_transaction(txn({remove(full, row(5, "alice", 9))}), [] {});
  auto m = a->io.take();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(json::serialize(m[0].payload.at("data").at("old_record")), R"({"id":5})");
  EXPECT_EQ(facts.lookups, 1);
  sched.advance(999ms);
  hub.on_transaction(txn({remove(full, row(6, "alice", 9))}), [] {});
  EXPECT_EQ(facts.lookups, 1);
  EXPECT_EQ(json::serialize(a->io.take()[0].payload.at("data").at("old_record")), R"({"id":6})");
  sched.advance(1ms);
  trim = false;
  hub.on_transaction(txn({remove(full, row(7, "alice", 9))}), [] {});
  EXPECT_EQ(facts.lookups, 2);
  EXPECT_EQ(json::serialize(a->io.take()[0].payload.at("data").at("old_record")),
            R"({"id":7,"owner":"alice","score":9,"title":"t"})");
}

TEST_F(ConnectionTest, AFailedRelationLookupIsRetriedNotGuessed) {
  FakeRelationInfo facts;
  facts.infos[16384] = RelationInfo{{"id"}};
  facts.fail = true;
  hub.set_relation_info(&facts, 1s);
  authz.old_rule = [](const AuthClass&, const RowChange&) { return Visibility::key_only; };
  auto a = client(Vsn::v2, "authenticated");
  a->send(join("r", "1", pg_config({json::object{{"event", "*"}, {"table", "tasks"}}})));
  a->io.take();
  bool done = false;
  hub.on_transaction(txn({remove(make_relation("public", "tasks", 'f'), row(5, "alice", 9))}),
                     [&] { done = true; });
  sched.advance(30s);
  EXPECT_FALSE(done);
  EXPECT_TRUE(a->io.frames.empty());
  facts.fail = false;
  sched.advance(2s);
  EXPECT_TRUE(done);
  auto m = a->io.take();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(json::serialize(m[0].payload.at("data").at("old_record")), R"({"id":5})");
}

TEST_F(ConnectionTest, PastTheChangeLimitOfATransactionASubscriberGetsOneSignalInstead) {
  auto l = limits();
  l.max_changes_per_transaction = 3;
  Hub small(sched, verifier, &authz, l);
  small.on_stream_state(true, "");
  auto a = std::make_unique<Client>(small, Vsn::v2, verified());
  auto b = std::make_unique<Client>(small, Vsn::v1, verified());
  a->send(join("r", "1", pg_config({json::object{{"event", "*"}, {"table", "tasks"}}})));
  // b's filter matches every other row: it stays under the limit within the same transaction.
  b->send(
      join("r", "1",
           pg_config({json::object{{"event", "*"}, {"table", "tasks"}, {"filter", "score=eq.1"}},
                      json::object{{"event", "*"}, {"table", "other"}}})));
  a->io.take();
  b->io.take();
  auto tasks = make_relation("public", "tasks");
  auto other = make_relation("public", "other");
  auto part = [&](int from, int to, std::uint32_t index, bool last) {
    std::vector<RowChange> changes;
    for (int id = from; id <= to; ++id)
      changes.push_back(insert(tasks, row(id, "u", id % 2)));
    auto t = txn(std::move(changes), 500);
    t->part = index;
    t->last = last;
    if (!last) t->end_lsn = 0;
    return t;
  };
  // One transaction of 8 changes in two parts: a gets 3, then one signal, then nothing.
  small.on_transaction(part(1, 4, 0, false), [] {});
  small.on_transaction(part(5, 8, 1, true), [] {});
  auto am = a->io.take();
  ASSERT_EQ(am.size(), 4u);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(am[i].payload.at("data").at("record").at("id").as_int64(), i + 1);
  EXPECT_EQ(am[3].event, "system");
  EXPECT_EQ(am[3].join_ref, "1");
  EXPECT_EQ(json::serialize(am[3].payload),
            R"({"extension":"postgres_changes","status":"ok","message":"Too many changes",)"
            R"("channel":"r","schema":"public","table":"tasks","limit":3})");
  EXPECT_EQ(small.metrics().drops_for(drop::kTooManyChanges), 6u);  // a: 5, b: 1
  // b matched rows 1, 3, 5, 7: a fourth match trips the limit for it too.
  auto bm = b->io.take();
  ASSERT_EQ(bm.size(), 4u);
  EXPECT_EQ(bm[3].event, "system");
  EXPECT_FALSE(a->io.closed);
  // The next transaction starts counting afresh; other tables count on their own.
  small.on_transaction(txn({insert(tasks, row(9, "u", 1)), insert(other, row(1, "u", 1))}, 600),
                       [] {});
  EXPECT_EQ(a->io.take().size(), 1u);
  EXPECT_EQ(b->io.take().size(), 2u);
}

TEST_F(ConnectionTest, ClosingTheConnectionUnregistersEverything) {
  auto c = client();
  c->send(join("r", "1", pg_config({json::object{{"event", "*"}, {"table", "tasks"}}})));
  EXPECT_EQ(hub.metrics().channels, 1);
  EXPECT_EQ(hub.metrics().connections, 1);
  c.reset();
  EXPECT_EQ(hub.metrics().channels, 0);
  EXPECT_EQ(hub.metrics().connections, 0);
  EXPECT_EQ(hub.router().size(), 0u);
  EXPECT_EQ(hub.members("realtime:r"), 0u);
}

}  // namespace
}  // namespace rtsync::server::realtime
