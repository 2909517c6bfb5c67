// Private channels in the realtime connection (docs/private-channels.md), on virtual time with a
// scripted ChannelAuthorizer: what is asked when, every refusal with Supabase Realtime's exact
// strings, the frames' order while an answer is awaited, the rights cached per channel and asked
// again after a token change, and who receives what.
#include <gtest/gtest.h>

#include "rtsync/core/log.hpp"
#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/server/realtime/connection.hpp"
#include "rtsync/server/realtime/names.hpp"
#include "unit/server_rt/fakes.hpp"

namespace rtsync::server::realtime {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using protocol::Message;
using protocol::Vsn;

const std::string kNoRead =
    "Unauthorized: You do not have permissions to read from this Channel topic: room";
const std::string kDbDown =
    "UnableToConnectToProject: Realtime was unable to connect to the project database";

// Who may do what on topic "room" (other topics: nothing).
//   alice: everything; bob: receive broadcasts only; pam: presence only (read and write);
//   eve: nothing (the attacker); boom: a policy raises; down: PostgreSQL away; slow: cancelled.
ChannelAuthResult room_policies(const ChannelCheck& c) {
  const auto claims = core::parse_json(c.auth.claims_json).value();
  const std::string sub(core::find_string(claims, "sub").value_or(""));
  if (sub == "boom") return ChannelAuthError{ChannelAuthFailure::policy_error, "policy exploded"};
  if (sub == "down") return ChannelAuthError{ChannelAuthFailure::unavailable, "connection refused"};
  if (sub == "slow") {
    return ChannelAuthError{ChannelAuthFailure::query_canceled,
                            "canceling statement due to statement timeout"};
  }
  if (c.topic != "room") return ChannelRights{false, false, false, false};
  if (sub == "alice") return ChannelRights{true, true, true, true};
  if (sub == "bob") return ChannelRights{true, false, false, false};
  if (sub == "pam") return ChannelRights{false, true, false, true};
  return ChannelRights{false, false, false, false};
}

class PrivateChannelTest : public ::testing::Test {
 protected:
  PrivateChannelTest() : PrivateChannelTest(RealtimeLimits{}) {}
  explicit PrivateChannelTest(RealtimeLimits limits)
      : verifier(kSecret, 2s), hub(sched, verifier, &rows, limits), channels(sched) {
    hub.on_stream_state(true, "");
    hub.set_channel_authorizer(&channels);
    channels.rule = room_policies;
  }
  std::int64_t now_s() const {
    return std::chrono::duration_cast<std::chrono::seconds>(sched.wall_now().time_since_epoch())
        .count();
  }
  std::string token(const std::string& sub, std::int64_t exp_in_s = 3600,
                    std::string role = "authenticated") {
    json::object c{{"role", role}, {"exp", now_s() + exp_in_s}, {"sub", sub}};
    return auth::sign_hs256(c, kSecret);
  }
  struct Client {
    FakeSession io;
    std::unique_ptr<Connection> conn;
    int ref = 100;
    Client(Hub& hub, Vsn vsn, auth::VerifiedJwt key) : io(vsn) {
      conn = std::make_unique<Connection>(hub, io, vsn, std::move(key));
    }
    void send(const Message& m) { conn->on_text(protocol::encode_text(io.vsn, m)); }
    std::string next() { return std::to_string(++ref); }
    const Channel* ch(const std::string& topic = "realtime:room") const {
      return conn->channel(topic);
    }
  };
  // A socket whose apikey is anon; joins carry `sub`'s token as access_token.
  std::unique_ptr<Client> client(Vsn vsn = Vsn::v2) {
    return std::make_unique<Client>(
        hub, vsn,
        verifier
            .verify(
                auth::sign_hs256(json::object{{"role", "anon"}, {"exp", now_s() + 7200}}, kSecret),
                sched.wall_now())
            .value());
  }
  static json::object config(json::value is_private, bool presence = false, bool self = false,
                             bool ack = false) {
    return json::object{{"broadcast", json::object{{"self", self}, {"ack", ack}}},
                        {"presence", json::object{{"key", ""}, {"enabled", presence}}},
                        {"postgres_changes", json::array{}},
                        {"private", is_private}};
  }
  static Message join(const std::string& topic, const std::string& ref, json::object cfg,
                      const std::string& access_token) {
    return Message{ref, ref, "realtime:" + topic, "phx_join",
                   json::object{{"config", cfg}, {"access_token", access_token}}};
  }
  // Joins "room" privately as `sub` and answers the check; returns the join reply.
  Message join_private(Client& c, const std::string& sub, bool presence = false, bool self = false,
                       bool ack = false) {
    c.send(join("room", "1", config(true, presence, self, ack), token(sub)));
    sched.run_ready();
    auto msgs = c.io.take();
    EXPECT_FALSE(msgs.empty());
    return msgs.empty() ? Message{} : msgs.front();
  }
  static Message broadcast(const std::string& ref, const std::string& event = "hi") {
    return Message{
        "1", ref, "realtime:room", "broadcast",
        json::object{{"type", "broadcast"}, {"event", event}, {"payload", json::object{{"n", 1}}}}};
  }
  static std::string status(const Message& m) {
    return std::string(core::find_string(m.payload, "status").value_or(""));
  }
  static std::string reason(const Message& m) {
    const auto* r = core::find(m.payload, "response");
    return r ? std::string(core::find_string(*r, "reason").value_or("")) : "";
  }

  core::ManualScheduler sched;
  auth::JwtVerifier verifier;
  FakeAuthorizer rows;
  Hub hub;
  FakeChannelAuthorizer channels;
};

// ---- joins ------------------------------------------------------------------------------------

TEST_F(PrivateChannelTest, AJoinWaitsForThePolicyAnswerAndLaterMessagesKeepTheirOrder) {
  auto c = client();
  c->send(join("room", "1", config(true), token("alice")));
  c->send(join("lobby", "2", config(false), token("alice")));
  c->send(Message{std::nullopt, "3", "phoenix", "heartbeat", json::object()});
  // Only the heartbeat is answered while the check runs (the socket stays alive); the public join
  // sent after the private one waits behind it.
  auto before = c->io.take();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].ref, "3");
  ASSERT_EQ(channels.calls.size(), 1u);
  EXPECT_EQ(channels.calls[0].topic, "room");
  EXPECT_EQ(channels.calls[0].auth.role, "authenticated");
  EXPECT_TRUE(channels.calls[0].broadcast_read);
  EXPECT_FALSE(channels.calls[0].presence_read);  // presence off: its read is not asked
  EXPECT_FALSE(channels.calls[0].write);          // writes are asked at the first push
  EXPECT_EQ(c->conn->channel_count(), 0u);

  sched.run_ready();
  auto after = c->io.take();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].ref, "1");
  EXPECT_EQ(status(after[0]), "ok");
  EXPECT_EQ(after[1].ref, "2");
  EXPECT_EQ(status(after[1]), "ok");
  ASSERT_NE(c->ch(), nullptr);
  EXPECT_TRUE(c->ch()->is_private);
  EXPECT_EQ(c->ch()->rights.broadcast_read, true);
  EXPECT_EQ(hub.metrics().channel_auth_read_checks, 1u);
  EXPECT_EQ(hub.metrics().joins, 2u);
}

TEST_F(PrivateChannelTest, ThePrivateFlagIsAFlexibleBoolean) {
  auto c = client();
  int n = 0;
  for (json::value flag :
       {json::value(true), json::value("true"), json::value("TRUE"), json::value("True")}) {
    c->send(join("room", std::to_string(++n), config(flag), token("eve")));
    sched.run_ready();
    auto msgs = c->io.take();
    ASSERT_EQ(msgs.size(), 1u) << json::serialize(flag);
    EXPECT_EQ(reason(msgs[0]), kNoRead) << json::serialize(flag);
  }
  EXPECT_EQ(channels.calls.size(), 4u);
  for (json::value flag :
       {json::value(false), json::value("false"), json::value("FALSE"), json::value(nullptr)}) {
    c->send(join("room", std::to_string(++n), config(flag), token("eve")));
    sched.run_ready();
    auto msgs = c->io.take();  // [phx_close of the previous join,] the reply
    ASSERT_FALSE(msgs.empty());
    EXPECT_EQ(status(msgs.back()), "ok") << json::serialize(flag);
    EXPECT_FALSE(c->ch()->is_private);
  }
  EXPECT_EQ(channels.calls.size(), 4u);  // public joins ask nothing
  c->send(join("room", "x", config("yes"), token("eve")));
  auto bad = c->io.take();
  ASSERT_FALSE(bad.empty());
  EXPECT_EQ(reason(bad.back()), "InvalidJoinPayload: join payload: private must be a boolean");
}

TEST_F(PrivateChannelTest, EveryRefusalUsesSupabaseRealtimesReason) {
  log::Capture logs;
  struct Case {
    std::string sub;
    std::string reason;
  };
  for (const auto& k :
       {Case{"eve", kNoRead}, Case{"boom", kNoRead}, Case{"down", kDbDown},
        Case{"slow", "QueryCanceled: canceling statement due to statement timeout"}}) {
    auto c = client();
    c->send(join("room", "1", config(true), token(k.sub)));
    EXPECT_TRUE(c->io.take().empty()) << k.sub;  // nothing before the answer
    sched.run_ready();
    auto msgs = c->io.take();
    ASSERT_EQ(msgs.size(), 1u) << k.sub;
    EXPECT_EQ(status(msgs[0]), "error") << k.sub;
    EXPECT_EQ(reason(msgs[0]), k.reason) << k.sub;
    EXPECT_EQ(c->conn->channel_count(), 0u);
  }
  // A raising policy is refused like "no", and logged as Supabase logs it.
  EXPECT_TRUE(logs.contains("RlsPolicyError")) << "policy errors are logged";
  EXPECT_TRUE(logs.contains("policy exploded"));
  EXPECT_EQ(hub.metrics().join_errors, 4u);
  EXPECT_EQ(hub.metrics().channel_refusals_for(auth_refusal::kRead), 2u);
  EXPECT_EQ(hub.metrics().channel_refusals_for(auth_refusal::kDatabase), 2u);
  EXPECT_EQ(hub.metrics().channels, 0);
}

TEST_F(PrivateChannelTest, WithoutAnAuthorizerPrivateJoinsGetTheDatabaseReason) {
  hub.set_channel_authorizer(nullptr);
  auto c = client();
  c->send(join("room", "1", config(true), token("alice")));
  EXPECT_TRUE(c->io.take().empty());
  sched.run_ready();
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(reason(msgs[0]), kDbDown);
}

TEST_F(PrivateChannelTest, AServiceRoleTokenIsCheckedLikeAnyOther) {
  // service_role bypasses RLS in PostgreSQL; the server asks all the same (no shortcut by role).
  auto c = client();
  c->send(join("room", "1", config(true), token("svc", 3600, "service_role")));
  sched.run_ready();
  ASSERT_EQ(channels.calls.size(), 1u);
  EXPECT_EQ(channels.calls[0].auth.role, "service_role");
}

TEST_F(PrivateChannelTest, PresenceReadIsAskedWhenPresenceIsEnabledAndEitherReadAdmits) {
  auto pam = client();
  auto reply = join_private(*pam, "pam", /*presence=*/true);
  EXPECT_EQ(status(reply), "ok");  // presence read alone admits
  ASSERT_EQ(channels.calls.size(), 1u);
  EXPECT_TRUE(channels.calls[0].presence_read);
  EXPECT_EQ(pam->ch()->rights.broadcast_read, false);
  EXPECT_EQ(pam->ch()->rights.presence_read, true);
  // Without presence, pam's presence read is not asked, and broadcast read alone decides: no.
  auto pam2 = client();
  EXPECT_EQ(reason(join_private(*pam2, "pam", false)), kNoRead);
}

TEST_F(PrivateChannelTest, APrivateAndAPublicChannelOfTheSameNameAreSeparateStreams) {
  auto priv = client();
  join_private(*priv, "alice", false, /*self=*/true);
  auto pub = client();
  pub->send(join("room", "1", config(false), token("alice")));
  pub->io.take();
  EXPECT_NE(priv->ch()->member_key, pub->ch()->member_key);

  pub->send(broadcast("5", "public-hi"));
  EXPECT_TRUE(priv->io.take().empty());  // the public stream does not reach the private channel
  priv->send(broadcast("6", "private-hi"));
  sched.run_ready();
  EXPECT_TRUE(pub->io.take().empty());  // and the private one not the public channel
  auto echo = priv->io.take();
  ASSERT_EQ(echo.size(), 1u);
  EXPECT_EQ(core::find_string(echo[0].payload, "event"), "private-hi");
}

TEST_F(PrivateChannelTest, PrivateOnlyRefusesPublicJoins) {
  RealtimeLimits l;
  l.private_only = true;
  Hub strict(sched, verifier, &rows, l);
  strict.set_channel_authorizer(&channels);
  FakeSession io;
  Connection conn(strict, io, Vsn::v2, verifier.verify(token("alice"), sched.wall_now()).value());
  conn.on_text(protocol::encode_text(Vsn::v2, join("lobby", "1", config(false), token("alice"))));
  auto msgs = io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(reason(msgs[0]), "PrivateOnly: This project only allows private channels");
  EXPECT_TRUE(channels.calls.empty());
  EXPECT_EQ(strict.metrics().channel_refusals_for(auth_refusal::kPrivateOnly), 1u);
  conn.on_text(protocol::encode_text(Vsn::v2, join("room", "2", config("true"), token("alice"))));
  sched.run_ready();
  msgs = io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(status(msgs[0]), "ok");
  EXPECT_NE(strict.metrics().render().find(
                "rtsync_channel_auth_refusals_total{reason=\"private_only\"} 1"),
            std::string::npos);
}

// ---- writes -----------------------------------------------------------------------------------

TEST_F(PrivateChannelTest, ABroadcastWithoutWriteRightIsDroppedWithoutAReplyEvenWithAck) {
  auto alice = client();
  join_private(*alice, "alice");
  auto bob = client();
  join_private(*bob, "bob", false, /*self=*/true, /*ack=*/true);
  bob->send(broadcast("7"));
  ASSERT_EQ(channels.calls.size(), 3u);
  EXPECT_TRUE(channels.calls[2].write);
  EXPECT_FALSE(channels.calls[2].broadcast_read);
  sched.run_ready();
  EXPECT_TRUE(bob->io.take().empty());    // no ack, no echo
  EXPECT_TRUE(alice->io.take().empty());  // nobody receives it
  EXPECT_EQ(bob->ch()->rights.broadcast_write, false);
  // Binary (kind 3) likewise; now from the channel's cached answer, without asking again.
  protocol::UserBroadcast push;
  push.join_ref = "1";
  push.ref = "8";
  push.topic = "realtime:room";
  push.user_event = "cursor";
  push.payload = R"({"x":1})";
  bob->conn->on_binary(protocol::encode_user_broadcast_push(push).value());
  bob->send(broadcast("9"));
  sched.run_ready();
  EXPECT_TRUE(bob->io.take().empty());
  EXPECT_TRUE(alice->io.take().empty());
  EXPECT_EQ(channels.calls.size(), 3u);
  EXPECT_EQ(hub.metrics().channel_auth_write_checks, 1u);
  EXPECT_EQ(hub.metrics().channel_auth_cache_hits, 2u);
  EXPECT_EQ(hub.metrics().channel_refusals_for(auth_refusal::kBroadcastWrite), 3u);
}

TEST_F(PrivateChannelTest, AnAuthorizedBroadcastReachesReadersOnlyInTheOrderSent) {
  auto alice = client();
  join_private(*alice, "alice", false, /*self=*/false, /*ack=*/true);
  auto bob = client(Vsn::v1);
  join_private(*bob, "bob");
  auto pam = client();
  join_private(*pam, "pam", /*presence=*/true);  // joined on presence read: no broadcasts
  // Two pushes before the write answer: both wait, then go out (and are acked) in order.
  alice->send(broadcast("10", "first"));
  alice->send(broadcast("11", "second"));
  EXPECT_TRUE(alice->io.take().empty());
  EXPECT_TRUE(bob->io.take().empty());
  sched.run_ready();
  auto acks = alice->io.take();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].ref, "10");
  EXPECT_EQ(acks[1].ref, "11");
  EXPECT_EQ(status(acks[0]), "ok");
  auto got = bob->io.take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(core::find_string(got[0].payload, "event"), "first");
  EXPECT_EQ(core::find_string(got[1].payload, "event"), "second");
  EXPECT_TRUE(pam->io.take().empty());
  EXPECT_EQ(hub.metrics().drops_for(drop::kUnauthorized), 2u);  // pam's two withheld frames
  EXPECT_EQ(hub.metrics().channel_auth_write_checks, 1u);
}

TEST_F(PrivateChannelTest, ATrackWithoutPresenceWriteGetsSupabasesErrorReplyAndTheChannelStays) {
  auto pam = client();
  join_private(*pam, "pam", /*presence=*/true);
  auto bob = client();
  join_private(*bob, "bob", /*presence=*/true);  // broadcast read only: no presence_state
  EXPECT_EQ(bob->ch()->rights.presence_read, false);

  bob->send(Message{
      "1", "20", "realtime:room", "presence",
      json::object{
          {"type", "presence"}, {"event", "track"}, {"payload", json::object{{"name", "Bob"}}}}});
  sched.run_ready();
  auto reply = bob->io.take();
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(json::serialize(reply[0].payload), R"({"status":"error","response":{}})");
  EXPECT_NE(bob->ch(), nullptr);  // still joined
  EXPECT_EQ(hub.presence().size(), 0u);
  EXPECT_EQ(hub.metrics().channel_refusals_for(auth_refusal::kPresenceWrite), 1u);

  // pam may: her track is tracked; bob, who may not read presence, gets no diff.
  pam->send(Message{
      "1", "21", "realtime:room", "presence",
      json::object{
          {"type", "presence"}, {"event", "track"}, {"payload", json::object{{"name", "Pam"}}}}});
  sched.run_ready();
  auto ok = pam->io.take();
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(status(ok[0]), "ok");
  sched.run_until(timers::PresenceDiff);
  auto diff = pam->io.take();
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0].event, "presence_diff");
  EXPECT_TRUE(bob->io.take().empty());
}

TEST_F(PrivateChannelTest, AFirstTrackAsksForPresenceReadWhenTheJoinDidNot) {
  auto pam = client();
  pam->send(join("room", "1", config(true, false), token("pam")));
  sched.run_ready();
  EXPECT_EQ(reason(pam->io.take()[0]), kNoRead);  // no broadcast read, presence not asked
  auto alice = client();
  join_private(*alice, "alice", /*presence=*/false);
  EXPECT_FALSE(alice->ch()->rights.presence_read.has_value());
  alice->send(Message{"1", "30", "realtime:room", "presence",
                      json::object{{"type", "presence"}, {"event", "track"}}});
  ASSERT_EQ(channels.calls.size(), 3u);
  EXPECT_TRUE(channels.calls[2].presence_read);
  EXPECT_TRUE(channels.calls[2].write);
  sched.run_ready();
  EXPECT_EQ(status(alice->io.take()[0]), "ok");
  EXPECT_EQ(alice->ch()->rights.presence_read, true);
  EXPECT_TRUE(alice->ch()->presence_enabled);
}

// ---- token changes ----------------------------------------------------------------------------

TEST_F(PrivateChannelTest, ATokenWithoutReadRightClosesTheChannelWithSupabasesSystemError) {
  auto c = client();
  join_private(*c, "alice");
  c->send(Message{"1", "40", "realtime:room", "access_token",
                  json::object{{"access_token", token("eve")}}});
  EXPECT_TRUE(c->io.take().empty());
  sched.run_ready();
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].event, "system");
  EXPECT_EQ(
      json::serialize(msgs[0].payload),
      R"({"extension":"system","status":"error","message":"You do not have permissions to read from this Channel topic: room","channel":"room"})");
  EXPECT_EQ(msgs[1].event, "phx_close");
  EXPECT_EQ(c->conn->channel_count(), 0u);
  EXPECT_EQ(hub.metrics().channel_refusals_for(auth_refusal::kRevoked), 1u);
}

TEST_F(PrivateChannelTest, LosingOneReadThatWasGrantedIsNoLongerPermitted) {
  auto c = client();
  join_private(*c, "alice", /*presence=*/true);  // broadcast and presence read
  // bob still reads broadcasts, but not presence: a read the channel had is gone.
  c->send(Message{"1", "41", "realtime:room", "access_token",
                  json::object{{"access_token", token("bob")}}});
  sched.run_ready();
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].payload.at("message").as_string(),
            "You no longer have permission to read from this Channel topic: room");
  EXPECT_EQ(msgs[1].event, "phx_close");
}

TEST_F(PrivateChannelTest, TheCachedRightsAreAskedAgainAfterATokenChange) {
  auto c = client();
  join_private(*c, "alice", false, /*self=*/true);
  c->send(broadcast("50"));
  sched.run_ready();
  ASSERT_EQ(c->io.take().size(), 1u);  // echo
  c->send(broadcast("51"));
  ASSERT_EQ(c->io.take().size(), 1u);  // from the cache, at once
  EXPECT_EQ(channels.calls.size(), 2u);
  EXPECT_EQ(hub.metrics().channel_auth_cache_hits, 1u);

  // The policies change (alice may no longer send) and alice refreshes her token: reads are
  // asked at once, the write at the next broadcast — which is now dropped.
  channels.rule = [](const ChannelCheck& check) -> ChannelAuthResult {
    auto r = room_policies(check);
    if (r) r.value().broadcast_write = false;
    return r;
  };
  c->send(Message{"1", "52", "realtime:room", "access_token",
                  json::object{{"access_token", token("alice", 7200)}}});
  sched.run_ready();
  ASSERT_EQ(channels.calls.size(), 3u);
  EXPECT_TRUE(channels.calls[2].broadcast_read);
  EXPECT_FALSE(channels.calls[2].write);
  EXPECT_FALSE(c->ch()->rights.broadcast_write.has_value());
  EXPECT_TRUE(c->io.take().empty());  // still joined, no message
  c->send(broadcast("53"));
  sched.run_ready();
  EXPECT_EQ(channels.calls.size(), 4u);
  EXPECT_TRUE(channels.calls[3].write);
  EXPECT_TRUE(c->io.take().empty());  // dropped: no echo
  // The channel now carries the new token (its expiry moved with it).
  EXPECT_EQ(c->ch()->token->exp, now_s() + 7200);
}

TEST_F(PrivateChannelTest, ATokenCheckThatCannotBeAnsweredClosesTheChannel) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"down", "Realtime was unable to connect to the project database"},
      {"slow", "Query was cancelled, please try again"}};
  for (const auto& [sub, message] : cases) {
    auto c = client();
    join_private(*c, "alice");
    c->send(Message{"1", "60", "realtime:room", "access_token",
                    json::object{{"access_token", token(sub)}}});
    sched.run_ready();
    auto msgs = c->io.take();
    ASSERT_EQ(msgs.size(), 2u) << sub;
    EXPECT_EQ(msgs[0].payload.at("message").as_string(), message);
    EXPECT_EQ(msgs[1].event, "phx_close");
  }
}

TEST_F(PrivateChannelTest, PublicChannelsAskNothingOnATokenChange) {
  auto c = client();
  c->send(join("room", "1", config(false), token("alice")));
  c->io.take();
  c->send(Message{"1", "70", "realtime:room", "access_token",
                  json::object{{"access_token", token("eve")}}});
  EXPECT_TRUE(channels.calls.empty());
  EXPECT_EQ(c->ch()->token->claims.at("sub").as_string(), "eve");
}

// ---- lifetimes and bounds ---------------------------------------------------------------------

TEST_F(PrivateChannelTest, ASocketGoneBeforeTheAnswerIsForgotten) {
  channels.hold = true;
  auto c = client();
  c->send(join("room", "1", config(true), token("alice")));
  c.reset();
  channels.release();  // must not touch the destroyed connection
  EXPECT_EQ(hub.metrics().channels, 0);
}

TEST_F(PrivateChannelTest, AChannelEndedWhileItsWriteCheckRunsSendsNothing) {
  channels.hold = true;
  auto c = client();
  c->send(join("room", "1", config(true, false, true), token("alice", 3)));
  channels.release();
  c->io.take();
  c->send(broadcast("80"));
  ASSERT_EQ(channels.held(), 1u);
  // The token expires meanwhile: the channel ends; the answer then finds nothing to do.
  sched.advance(6s);
  auto closed = c->io.take();
  ASSERT_EQ(closed.size(), 2u);
  EXPECT_EQ(closed[1].event, "phx_close");
  channels.release();
  EXPECT_TRUE(c->io.take().empty());
}

class PrivateChannelBacklogTest : public PrivateChannelTest {
 protected:
  static RealtimeLimits small() {
    RealtimeLimits l;
    l.max_queued_frames = 3;
    return l;
  }
  PrivateChannelBacklogTest() : PrivateChannelTest(small()) {}
};

TEST_F(PrivateChannelBacklogTest, TooManyMessagesWaitingForAnAnswerCloseTheSocket) {
  channels.hold = true;
  auto c = client();
  c->send(join("room", "1", config(true), token("alice")));
  for (int i = 0; i < 3; ++i)
    c->send(broadcast(std::to_string(90 + i)));
  EXPECT_FALSE(c->io.closed);
  c->send(broadcast("93"));
  EXPECT_TRUE(c->io.closed);
  EXPECT_EQ(c->io.close_code, 1008);
  EXPECT_EQ(hub.metrics().drops_for(drop::kAuthorizationBacklog), 4u);
}

}  // namespace
}  // namespace rtsync::server::realtime
