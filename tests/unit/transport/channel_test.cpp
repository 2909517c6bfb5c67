// RealtimeChannel on virtual time: join/leave/broadcast/access_token frames byte for byte (v1 and
// v2), every status transition, rejoin steps, dispatch of postgres_changes and broadcasts, stale
// frames.
#include <gtest/gtest.h>

#include "fixture.hpp"

#include "rtsync/client/transport/names.hpp"

namespace rtsync::client::testing {
namespace {

constexpr std::string_view kTasksJoin =
    R"(["1","1","realtime:task-updates:p1","phx_join",{"config":{"broadcast":{"ack":false,"self":false},"presence":{"key":"","enabled":false},"postgres_changes":[{"event":"INSERT","schema":"public","table":"tasks","filter":"project_id=eq.p1"},{"event":"UPDATE","schema":"public","table":"tasks","filter":"project_id=eq.p1"}],"private":false},"access_token":"user-jwt"}])";
constexpr std::string_view kTasksAck =
    R"({"postgres_changes":[{"id":11,"event":"INSERT","schema":"public","table":"tasks","filter":"project_id=eq.p1"},{"id":12,"event":"UPDATE","schema":"public","table":"tasks","filter":"project_id=eq.p1"}]})";

std::string change_frame(std::string_view ids, std::string_view type) {
  return SocketFixture::frame(
      "", "", kTopic, "postgres_changes",
      std::string(R"({"ids":)") + std::string(ids) +
          R"(,"data":{"schema":"public","table":"tasks","commit_timestamp":"2025-11-19T00:22:40.877Z","type":")" +
          std::string(type) +
          R"(","columns":[{"name":"id","type":"int8"},{"name":"status","type":"text"},{"name":"project_id","type":"text"}],"record":{"id":"46","status":"Queued","project_id":"p1"},"old_record":{"id":46},"errors":null}})");
}

class ChannelFixture : public SocketFixture {
 protected:
  // The coordination layer's channel: broadcast task-update + INSERT/UPDATE on public.tasks.
  std::shared_ptr<RealtimeChannel> tasks_channel() {
    auto ch = socket->channel("task-updates:p1");
    subs.push_back(ch->on_broadcast(
        "task-update", [this](const json::value& m) { broadcasts.push_back(json::serialize(m)); }));
    for (const char* ev : {"INSERT", "UPDATE"}) {
      subs.push_back(ch->on_postgres_changes(
          PostgresChangesFilter{ev, "public", "tasks", "project_id=eq.p1"},
          [this, ev](const RealtimeChannel::ChangeView& c) {
            changes.push_back(std::string(ev) + " " + json::serialize(c.to_object()));
          }));
    }
    return ch;
  }
  std::shared_ptr<RealtimeChannel> joined_tasks_channel() {
    socket->set_auth("user-jwt");
    open();
    auto ch = tasks_channel();
    EXPECT_TRUE(ch->subscribe(status.callback()).ok());
    EXPECT_EQ(last_sent(), kTasksJoin);
    reply("1", "1", kTopic, "ok", kTasksAck);
    EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::subscribed});
    return ch;
  }
  // A plain channel "room", joined with ref "1" and no bindings.
  std::shared_ptr<RealtimeChannel> joined_room(ChannelOptions options = {}) {
    open();
    auto ch = socket->channel("room", options);
    EXPECT_TRUE(ch->subscribe(status.callback()).ok());
    sent();
    reply("1", "1", "realtime:room", "ok", R"({"postgres_changes":[]})");
    return ch;
  }
  core::Duration rejoin_delay(std::uint32_t attempt) {
    return socket->options().rejoin_backoff.delay(attempt, rejoin_jitter.next());
  }

  StatusLog status;
  std::vector<core::Subscription> subs;
  std::vector<std::string> broadcasts;
  std::vector<std::string> changes;
  core::Jitter rejoin_jitter{kSeed + 1};
};

// ---- exact frames
// --------------------------------------------------------------------------------

TEST_F(ChannelFixture, JoinFrameV2CarriesBindingsAndAccessToken) {
  auto ch = joined_tasks_channel();
  EXPECT_EQ(ch->topic(), kTopic);
  EXPECT_EQ(ch->state(), ChannelState::joined);
  EXPECT_EQ(ch->join_ref(), "1");
}

TEST_F(ChannelFixture, JoinFrameV1IsAnObjectWithJoinRef) {
  make(default_options(protocol::Vsn::v1));
  open();
  auto ch = socket->channel("room", ChannelOptions{true, true, false, "me", {}});
  ASSERT_TRUE(ch->subscribe().ok());
  EXPECT_EQ(
      last_sent(),
      R"({"topic":"realtime:room","event":"phx_join","payload":{"config":{"broadcast":{"ack":true,"self":true},"presence":{"key":"me","enabled":false},"postgres_changes":[],"private":false}},"ref":"1","join_ref":"1"})");
  // V1 replies have no join_ref.
  fake->receive_text(
      R"({"topic":"realtime:room","event":"phx_reply","payload":{"status":"ok","response":{"postgres_changes":[]}},"ref":"1"})");
  EXPECT_EQ(ch->state(), ChannelState::joined);
}

TEST_F(ChannelFixture, LeaveBroadcastAndAccessTokenFramesV2) {
  auto ch = joined_room();
  ch->send_broadcast("task-update", json::object{{"id", 1}});
  EXPECT_EQ(
      last_sent(),
      R"(["1","2","realtime:room","broadcast",{"type":"broadcast","event":"task-update","payload":{"id":1}}])");
  socket->set_auth("t2");
  EXPECT_EQ(last_sent(), R"(["1","3","realtime:room","access_token",{"access_token":"t2"}])");
  socket->set_auth("t2");  // unchanged: nothing pushed
  EXPECT_TRUE(sent().empty());
  ch->unsubscribe();
  EXPECT_EQ(last_sent(), R"(["1","4","realtime:room","phx_leave",{}])");
}

TEST_F(ChannelFixture, LeaveBroadcastAndAccessTokenFramesV1) {
  make(default_options(protocol::Vsn::v1));
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe().ok());
  fake->receive_text(
      R"({"topic":"realtime:room","event":"phx_reply","payload":{"status":"ok","response":{"postgres_changes":[]}},"ref":"1"})");
  sent();
  ch->send_broadcast("ping", json::object{{"n", 2}});
  EXPECT_EQ(
      last_sent(),
      R"({"topic":"realtime:room","event":"broadcast","payload":{"type":"broadcast","event":"ping","payload":{"n":2}},"ref":"2","join_ref":"1"})");
  socket->set_auth("tok");
  EXPECT_EQ(
      last_sent(),
      R"({"topic":"realtime:room","event":"access_token","payload":{"access_token":"tok"},"ref":"3","join_ref":"1"})");
  ch->unsubscribe();
  EXPECT_EQ(
      last_sent(),
      R"({"topic":"realtime:room","event":"phx_leave","payload":{},"ref":"4","join_ref":"1"})");
}

TEST_F(ChannelFixture, SetAuthIsUsedByLaterJoinsAndClearingItOmitsTheToken) {
  socket->set_auth("first");
  open();
  auto a = socket->channel("a");
  ASSERT_TRUE(a->subscribe().ok());
  EXPECT_NE(last_sent().find(R"("access_token":"first")"), std::string::npos);
  socket->set_auth(std::nullopt);
  auto b = socket->channel("b");
  ASSERT_TRUE(b->subscribe().ok());
  EXPECT_EQ(last_sent().find("access_token"), std::string::npos);
}

// ---- subscribe statuses
// ----------------------------------------------------------------------------

TEST_F(ChannelFixture, SubscribeBeforeOpenConnectsAndJoinsOnOpen) {
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  EXPECT_EQ(socket->state(), ConnectionState::connecting);
  EXPECT_EQ(ch->state(), ChannelState::joining);
  sched.advance(1h);  // no join timeout while the join is not on the wire
  EXPECT_TRUE(status.entries.empty());
  fake->accept();
  EXPECT_EQ(
      last_sent(),
      R"(["1","1","realtime:room","phx_join",{"config":{"broadcast":{"ack":false,"self":false},"presence":{"key":"","enabled":false},"postgres_changes":[],"private":false}}])");
}

TEST_F(ChannelFixture, SubscribeTwiceIsAnError) {
  auto ch = joined_room();
  auto again = ch->subscribe();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::invalid_argument);
}

TEST_F(ChannelFixture, JoinTimeoutAtItsBoundarySendsLeaveAndRejoinsWithSteps) {
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  sent();
  sched.advance(10s - 1ms);
  EXPECT_TRUE(status.entries.empty());
  sched.advance(1ms);
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::timed_out});
  EXPECT_EQ(ch->state(), ChannelState::errored);
  EXPECT_EQ(last_sent(), R"(["1","2","realtime:room","phx_leave",{}])");
  const auto d1 = rejoin_delay(1);
  EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), d1);
  EXPECT_GE(d1, core::Duration(900ms));
  EXPECT_LE(d1, core::Duration(1100ms));
  sched.advance(d1 - 1ns);
  EXPECT_TRUE(sent().empty());
  sched.advance(1ns);
  EXPECT_EQ(
      last_sent(),
      R"(["3","3","realtime:room","phx_join",{"config":{"broadcast":{"ack":false,"self":false},"presence":{"key":"","enabled":false},"postgres_changes":[],"private":false}}])");
  reply("3", "3", "realtime:room", "ok", R"({"postgres_changes":[]})");
  EXPECT_EQ(status.statuses(),
            (std::vector{SubscribeStatus::timed_out, SubscribeStatus::subscribed}));
  EXPECT_FALSE(sched.pending(rtsync::client::timers::ChannelRejoin));
}

TEST_F(ChannelFixture, RejoinAfterJoinErrorsFollowsTheSteps) {
  auto o = default_options();
  o.rejoin_backoff.jitter = 0.0;  // exact steps
  make(o);
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  const std::vector<core::Duration> steps{1s, 2s, 5s, 10s, 10s, 10s};
  std::string ref = "1";
  for (std::size_t i = 0; i < steps.size(); ++i) {
    reply(ref, ref, "realtime:room", "error",
          R"({"reason":"ConnectionRateLimitReached: Too many connected users"})");
    EXPECT_EQ(status.statuses().back(), SubscribeStatus::channel_error);
    EXPECT_EQ(status.last_message(), "ConnectionRateLimitReached: Too many connected users");
    EXPECT_EQ(status.entries.back().second->code, Errc::remote);
    EXPECT_EQ(ch->state(), ChannelState::errored);
    EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), steps[i]) << i;
    sched.advance(steps[i] - 1ns);
    EXPECT_EQ(ch->join_ref(), ref) << "rejoined early at step " << i;
    sched.advance(1ns);
    ASSERT_NE(ch->join_ref(), ref);
    ref = *ch->join_ref();
  }
  reply(ref, ref, "realtime:room", "ok", R"({"postgres_changes":[]})");
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::subscribed);
  EXPECT_EQ(status.entries.size(), steps.size() + 1);
}

TEST_F(ChannelFixture, JitteredRejoinStepsStayWithinTheirBounds) {
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe().ok());
  const std::vector<core::Duration> nominal{1s, 2s, 5s, 10s, 10s};
  for (std::uint32_t attempt = 1; attempt <= nominal.size(); ++attempt) {
    const auto ref = *ch->join_ref();
    reply(ref, ref, "realtime:room", "error", R"({"reason":"x"})");
    const auto want = rejoin_delay(attempt);
    EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), want);
    const auto n = nominal[attempt - 1];
    EXPECT_GE(want, n * 9 / 10);
    EXPECT_LE(want, n * 11 / 10);
    sched.run_until(rtsync::client::timers::ChannelRejoin);
  }
}

// After an outage the socket is back before the session's refresh: the join carries the expired
// token and is refused. The refreshed token must be used at once, not after the rejoin step.
TEST_F(ChannelFixture, ANewTokenRejoinsAChannelRefusedForItsOldTokenAtOnce) {
  auto o = default_options();
  o.rejoin_backoff.jitter = 0.0;  // exact steps
  make(o);
  socket->set_auth("expired-jwt");
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  ASSERT_NE(last_sent().find(R"("access_token":"expired-jwt")"), std::string::npos);
  reply("1", "1", "realtime:room", "error",
        R"({"reason":"InvalidJWTToken: Token has expired 3 seconds ago"})");
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::channel_error});
  EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), core::Duration(1s));

  socket->set_auth("fresh-jwt");
  EXPECT_TRUE(sent().empty()) << "an errored channel gets no access_token push";
  EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), core::Duration::zero());
  sched.run_ready();
  const auto join = last_sent();
  EXPECT_NE(join.find("phx_join"), std::string::npos) << join;
  EXPECT_NE(join.find(R"("access_token":"fresh-jwt")"), std::string::npos) << join;
  EXPECT_EQ(ch->join_ref(), "2");

  // The new token refused too: the backoff goes on where it was (step 2), no second shortcut.
  reply("2", "2", "realtime:room", "error", R"({"reason":"Unauthorized"})");
  EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), core::Duration(2s));
  socket->set_auth("fresh-jwt");  // unchanged: nothing happens
  EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), core::Duration(2s));
  sched.advance(2s - 1ns);
  EXPECT_EQ(ch->join_ref(), "2");
  sched.advance(1ns);
  EXPECT_EQ(ch->join_ref(), "3");
  reply("3", "3", "realtime:room", "ok", R"({"postgres_changes":[]})");
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::subscribed);
}

// The refresh lands while the join with the old token is on its way: its refusal rejoins at once.
TEST_F(ChannelFixture, AJoinRefusedAfterItsTokenWasReplacedRejoinsAtOnce) {
  auto o = default_options();
  o.rejoin_backoff.jitter = 0.0;
  make(o);
  socket->set_auth("expired-jwt");
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  sent();
  socket->set_auth("fresh-jwt");
  EXPECT_TRUE(sent().empty()) << "a joining channel gets no access_token push";
  EXPECT_FALSE(sched.pending(rtsync::client::timers::ChannelRejoin));
  reply("1", "1", "realtime:room", "error",
        R"({"reason":"InvalidJWTToken: Token has expired 1 seconds ago"})");
  EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), core::Duration::zero());
  sched.run_ready();
  EXPECT_NE(last_sent().find(R"("access_token":"fresh-jwt")"), std::string::npos);
  // A refusal of a join that carried the current token waits its step (the first: 1 s).
  reply("2", "2", "realtime:room", "error", R"({"reason":"x"})");
  EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), core::Duration(1s));
}

// A token change is no reason to rejoin a channel that is fine, nor one whose socket is down (the
// socket's open rejoins it).
TEST_F(ChannelFixture, ANewTokenLeavesJoinedChannelsAndClosedSocketsAlone) {
  auto ch = joined_room();
  sent();
  socket->set_auth("t2");
  EXPECT_EQ(last_sent(), R"(["1","2","realtime:room","access_token",{"access_token":"t2"}])");
  EXPECT_EQ(ch->state(), ChannelState::joined);
  EXPECT_FALSE(sched.pending(rtsync::client::timers::ChannelRejoin));
  fake->drop();
  EXPECT_EQ(ch->state(), ChannelState::errored);
  socket->set_auth("t3");
  EXPECT_FALSE(sched.pending(rtsync::client::timers::ChannelRejoin));
  EXPECT_TRUE(sent().empty());
}

TEST_F(ChannelFixture, BindingMismatchIsChannelErrorThenLeaveThenClosedWithoutRejoin) {
  socket->set_auth("user-jwt");
  open();
  auto ch = tasks_channel();
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  sent();
  reply(
      "1", "1", kTopic, "ok",
      R"({"postgres_changes":[{"id":11,"event":"INSERT","schema":"public","table":"tasks","filter":"project_id=eq.p1"},{"id":12,"event":"DELETE","schema":"public","table":"tasks","filter":"project_id=eq.p1"}]})");
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::channel_error});
  EXPECT_EQ(status.entries[0].second->code, Errc::protocol);
  EXPECT_NE(status.last_message().find(
                "mismatch between server and client bindings for postgres changes"),
            std::string::npos);
  EXPECT_NE(status.last_message().find("binding 1"), std::string::npos) << status.last_message();
  EXPECT_EQ(last_sent(), R"(["1","2","realtime:task-updates:p1","phx_leave",{}])");
  EXPECT_EQ(ch->state(), ChannelState::leaving);
  reply("1", "2", kTopic);
  EXPECT_EQ(status.statuses(),
            (std::vector{SubscribeStatus::channel_error, SubscribeStatus::closed}));
  EXPECT_EQ(ch->state(), ChannelState::closed);
  EXPECT_FALSE(sched.pending(rtsync::client::timers::ChannelRejoin));
  EXPECT_TRUE(socket->channels().empty());
}

TEST_F(ChannelFixture, ReplyWithoutPostgresChangesWhileBindingsExistIsAMismatch) {
  open();
  auto ch = tasks_channel();
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  reply("1", "1", kTopic, "ok", "{}");
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::channel_error});
  auto room = socket->channel("plain");
  StatusLog plain;
  ASSERT_TRUE(room->subscribe(plain.callback()).ok());
  const auto ref = *room->join_ref();
  reply(ref, ref, "realtime:plain", "ok", "{}");
  EXPECT_EQ(plain.statuses(), std::vector{SubscribeStatus::subscribed});
}

TEST_F(ChannelFixture, ServerPhxErrorRejoinsAndSubscribesAgain) {
  auto ch = joined_room();
  fake->receive_text(frame("1", "1", "realtime:room", "phx_error", "{}"));
  EXPECT_EQ(status.statuses(),
            (std::vector{SubscribeStatus::subscribed, SubscribeStatus::channel_error}));
  EXPECT_EQ(status.last_message(), "channel error");
  EXPECT_EQ(ch->state(), ChannelState::errored);
  const auto d = rejoin_delay(1);
  EXPECT_EQ(sched.time_until(rtsync::client::timers::ChannelRejoin), d);
  sched.advance(d);
  EXPECT_EQ(ch->join_ref(), "2");
  reply("2", "2", "realtime:room", "ok", R"({"postgres_changes":[]})");
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::subscribed);
  // A phx_error carrying a reason (current upstream Phoenix) is reported with it.
  fake->receive_text(
      frame("2", "2", "realtime:room", "phx_error", R"({"reason":"channel_crash"})"));
  EXPECT_EQ(status.last_message(), "channel error: channel_crash");
}

TEST_F(ChannelFixture, ServerPhxCloseIsClosedWithoutRejoin) {
  auto ch = joined_room();
  fake->receive_text(frame("1", "1", "realtime:room", "phx_close", "{}"));
  EXPECT_EQ(status.statuses(), (std::vector{SubscribeStatus::subscribed, SubscribeStatus::closed}));
  EXPECT_EQ(ch->state(), ChannelState::closed);
  EXPECT_FALSE(sched.pending(rtsync::client::timers::ChannelRejoin));
  EXPECT_TRUE(socket->channels().empty());
  // A new channel object for the same name is a fresh join.
  auto again = socket->channel("room");
  EXPECT_NE(again, ch);
  EXPECT_TRUE(again->subscribe().ok());
}

TEST_F(ChannelFixture, UnsubscribeLeavesThenClosedOnReplyOrTimeout) {
  auto ch = joined_room();
  ch->unsubscribe();
  EXPECT_EQ(ch->state(), ChannelState::leaving);
  ch->unsubscribe();  // idempotent
  EXPECT_EQ(sent().size(), 1u);
  reply("1", "2", "realtime:room");
  EXPECT_EQ(status.statuses(), (std::vector{SubscribeStatus::subscribed, SubscribeStatus::closed}));
  // The server's phx_close after the leave is for a channel we no longer route to.
  fake->receive_text(frame("1", "1", "realtime:room", "phx_close", "{}"));
  EXPECT_EQ(status.entries.size(), 2u);

  StatusLog other;
  auto ch2 = socket->channel("quiet");
  ASSERT_TRUE(ch2->subscribe(other.callback()).ok());
  auto ref = *ch2->join_ref();
  reply(ref, ref, "realtime:quiet", "ok", R"({"postgres_changes":[]})");
  ch2->unsubscribe();
  sched.advance(10s - 1ms);
  EXPECT_EQ(other.statuses().back(), SubscribeStatus::subscribed);
  sched.advance(1ms);
  EXPECT_EQ(other.statuses().back(), SubscribeStatus::closed);
}

TEST_F(ChannelFixture, UnsubscribeWhileDisconnectedClosesAtOnce) {
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  ch->unsubscribe();
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::closed});
  EXPECT_EQ(ch->state(), ChannelState::closed);
}

TEST_F(ChannelFixture, SocketDropErrorsChannelsAndReconnectRejoinsThem) {
  auto ch = joined_tasks_channel();
  fake->drop(1006, "network down");
  EXPECT_EQ(status.statuses(),
            (std::vector{SubscribeStatus::subscribed, SubscribeStatus::channel_error}));
  EXPECT_EQ(status.last_message(), "socket closed: 1006 (network down)");
  EXPECT_EQ(ch->state(), ChannelState::errored);
  EXPECT_FALSE(
      sched.pending(rtsync::client::timers::ChannelRejoin));  // the socket reopening rejoins
  sched.run_until(rtsync::client::timers::SocketReconnect);
  fake->accept();
  EXPECT_EQ(
      last_sent(),
      R"(["2","2","realtime:task-updates:p1","phx_join",{"config":{"broadcast":{"ack":false,"self":false},"presence":{"key":"","enabled":false},"postgres_changes":[{"event":"INSERT","schema":"public","table":"tasks","filter":"project_id=eq.p1"},{"event":"UPDATE","schema":"public","table":"tasks","filter":"project_id=eq.p1"}],"private":false},"access_token":"user-jwt"}])");
  reply("2", "2", kTopic, "ok", kTasksAck);
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::subscribed);
  EXPECT_EQ(status.entries.size(), 3u);
  fake->receive_text(change_frame("[11]", "INSERT"));
  EXPECT_EQ(changes.size(), 1u);
}

TEST_F(ChannelFixture, HeartbeatTimeoutIsReportedToChannels) {
  auto ch = joined_room();
  sched.advance(50s);
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::channel_error);
  EXPECT_EQ(status.last_message(), "heartbeat timeout");
  EXPECT_EQ(status.entries.back().second->code, Errc::timeout);
}

TEST_F(ChannelFixture, DisconnectErrorsJoinedChannelsAndConnectRejoins) {
  auto ch = joined_room();
  socket->disconnect();
  EXPECT_EQ(status.last_message(), "socket disconnected");
  EXPECT_FALSE(sched.pending(rtsync::client::timers::SocketReconnect));
  socket->connect();
  fake->accept();
  EXPECT_EQ(ch->state(), ChannelState::joining);
  EXPECT_EQ(ch->join_ref(), "2");
}

TEST_F(ChannelFixture, SystemErrorIsChannelErrorWithTheServerReasonThenClosed) {
  auto ch = joined_room();
  std::vector<std::string> system;
  auto sub = ch->on_system([&](const json::value& p) { system.push_back(json::serialize(p)); });
  fake->receive_text(frame(
      "1", "", "realtime:room", "system",
      R"({"extension":"system","status":"error","message":"Token has expired 5 seconds ago","channel":"room"})"));
  EXPECT_EQ(system.size(), 1u);
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::channel_error);
  EXPECT_EQ(status.last_message(), "Token has expired 5 seconds ago");
  EXPECT_EQ(status.entries.back().second->code, Errc::unauthorized);
  fake->receive_text(frame("1", "1", "realtime:room", "phx_close", "{}"));
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::closed);
  EXPECT_EQ(status.last_message(), "Token has expired 5 seconds ago");
  EXPECT_FALSE(sched.pending(rtsync::client::timers::ChannelRejoin));
}

// Private channels (docs/private-channels.md): a refused join is a CHANNEL_ERROR with the server's
// reason and rejoins with backoff, as realtime-js does; a read permission lost on a token change
// reaches `system` listeners with Supabase's exact payload, then the channel is CLOSED for good.
TEST_F(ChannelFixture, APrivateJoinRefusedByPolicyIsAChannelErrorWithTheReasonAndRejoins) {
  open();
  ChannelOptions o;
  o.is_private = true;
  auto ch = socket->channel("room", o);
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  EXPECT_NE(last_sent().find(R"("private":true)"), std::string::npos);
  reply(
      "1", "1", "realtime:room", "error",
      R"({"reason":"Unauthorized: You do not have permissions to read from this Channel topic: room"})");
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::channel_error);
  EXPECT_EQ(status.last_message(),
            "Unauthorized: You do not have permissions to read from this Channel topic: room");
  EXPECT_EQ(ch->state(), ChannelState::errored);
  EXPECT_TRUE(sched.pending(rtsync::client::timers::ChannelRejoin));
}

TEST_F(ChannelFixture, ALostReadPermissionReachesSystemListenersThenTheChannelIsClosed) {
  ChannelOptions o;
  o.is_private = true;
  auto ch = joined_room(o);
  std::vector<json::value> system;
  auto sub = ch->on_system([&](const json::value& p) { system.push_back(p); });
  const std::string payload =
      R"({"extension":"system","status":"error","message":"You no longer have permission to read from this Channel topic: room","channel":"room"})";
  fake->receive_text(frame("1", "", "realtime:room", "system", payload));
  ASSERT_EQ(system.size(), 1u);
  EXPECT_EQ(system[0], json::parse(payload));  // exactly as the server sent it
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::channel_error);
  EXPECT_EQ(status.entries.back().second->code, Errc::unauthorized);
  fake->receive_text(frame("1", "1", "realtime:room", "phx_close", "{}"));
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::closed);
  EXPECT_EQ(status.last_message(),
            "You no longer have permission to read from this Channel topic: room");
  EXPECT_EQ(ch->state(), ChannelState::closed);
  EXPECT_FALSE(sched.pending(rtsync::client::timers::ChannelRejoin));
  EXPECT_TRUE(ch->subscribe().error().code == Errc::invalid_argument);  // a new channel is needed
}

TEST_F(ChannelFixture, PostgresChangesSystemErrorsAreInformational) {
  auto ch = joined_room();
  int system = 0;
  auto sub = ch->on_system([&](const json::value&) { ++system; });
  fake->receive_text(frame(
      "1", "", "realtime:room", "system",
      R"({"extension":"postgres_changes","status":"error","message":"Error parsing `filter` params","channel":"room"})"));
  fake->receive_text(frame(
      "1", "", "realtime:room", "system",
      R"({"extension":"postgres_changes","status":"ok","message":"Subscribed to PostgreSQL","channel":"room"})"));
  EXPECT_EQ(system, 2);
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::subscribed});
  EXPECT_EQ(ch->state(), ChannelState::joined);
}

// ---- changes overflow ("Too many changes")
// -------------------------------------------------------------------------

constexpr std::string_view kOverflowPayload =
    R"({"extension":"postgres_changes","status":"ok","message":"Too many changes","channel":"task-updates:p1","schema":"public","table":"tasks","limit":1000})";

struct OverflowLog {
  std::vector<std::string> entries;  // "schema.table limit channel"
  RealtimeChannel::ChangesOverflowCallback callback() {
    return [this](const RealtimeChannel::ChangesOverflow& o) {
      entries.push_back(o.schema + "." + o.table + " " +
                        (o.limit ? std::to_string(*o.limit) : "-") + " " + o.channel);
    };
  }
};

TEST_F(ChannelFixture, ChangesOverflowV2ReachesOverflowAndSystemListenersOnce) {
  auto ch = joined_tasks_channel();
  OverflowLog overflows;
  std::vector<std::string> system;
  subs.push_back(ch->on_changes_overflow(overflows.callback()));
  subs.push_back(
      ch->on_system([&](const json::value& p) { system.push_back(json::serialize(p)); }));
  fake->receive_text(frame("1", "", kTopic, "system", kOverflowPayload));
  EXPECT_EQ(overflows.entries, std::vector<std::string>{"public.tasks 1000 task-updates:p1"});
  // System listeners still see the raw payload, extra fields included (as realtime-js would).
  ASSERT_EQ(system.size(), 1u);
  EXPECT_EQ(json::parse(system[0]), json::parse(kOverflowPayload));
  // Informational for the channel: still joined, no status, no change callback.
  EXPECT_EQ(ch->state(), ChannelState::joined);
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::subscribed});
  EXPECT_TRUE(changes.empty());
  const auto d = ch->diagnostics();
  EXPECT_EQ(d.at("changes_overflows").as_uint64(), 1u);
  EXPECT_EQ(d.at("system_messages").as_uint64(), 1u);
  EXPECT_EQ(d.at("overflow_bindings").as_uint64(), 1u);
  // The channel keeps delivering changes.
  fake->receive_text(change_frame("[11]", "INSERT"));
  EXPECT_EQ(changes.size(), 1u);
}

TEST_F(ChannelFixture, ChangesOverflowV1FrameIsTheSameSignal) {
  make(default_options(protocol::Vsn::v1));
  open();
  auto ch = socket->channel("task-updates:p1");
  OverflowLog overflows;
  subs.push_back(ch->on_changes_overflow(overflows.callback()));
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  fake->receive_text(
      R"({"topic":"realtime:task-updates:p1","event":"phx_reply","payload":{"status":"ok","response":{"postgres_changes":[]}},"ref":"1"})");
  ASSERT_EQ(ch->state(), ChannelState::joined);
  fake->receive_text(
      R"({"topic":"realtime:task-updates:p1","event":"system","payload":{"extension":"postgres_changes","status":"ok","message":"Too many changes","channel":"task-updates:p1","schema":"public","table":"tasks","limit":1000},"ref":null})");
  EXPECT_EQ(overflows.entries, std::vector<std::string>{"public.tasks 1000 task-updates:p1"});
  EXPECT_EQ(ch->state(), ChannelState::joined);
}

TEST_F(ChannelFixture, SystemMessagesThatOnlyResembleAnOverflowAreNot) {
  auto ch = joined_tasks_channel();
  OverflowLog overflows;
  int system = 0;
  subs.push_back(ch->on_changes_overflow(overflows.callback()));
  subs.push_back(ch->on_system([&](const json::value&) { ++system; }));
  auto with = [](std::string_view key, json::value v) {
    auto p = json::parse(kOverflowPayload).as_object();
    if (v.is_null()) {
      p.erase(key);
    } else {
      p[key] = std::move(v);
    }
    return json::serialize(p);
  };
  // status "error": the informational postgres_changes error (the channel stays joined).
  fake->receive_text(frame("1", "", kTopic, "system", with("status", "error")));
  fake->receive_text(frame("1", "", kTopic, "system", with("message", "Subscribed to PostgreSQL")));
  fake->receive_text(frame("1", "", kTopic, "system", with("table", nullptr)));
  EXPECT_EQ(system, 3);
  EXPECT_TRUE(overflows.entries.empty());
  EXPECT_EQ(ch->diagnostics().at("changes_overflows").as_uint64(), 0u);
  EXPECT_EQ(ch->state(), ChannelState::joined);
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::subscribed});
}

TEST_F(ChannelFixture, ChangesOverflowOfAnEarlierJoinIsDropped) {
  auto ch = joined_tasks_channel();
  OverflowLog overflows;
  subs.push_back(ch->on_changes_overflow(overflows.callback()));
  fake->receive_text(frame("9", "", kTopic, "system", kOverflowPayload));
  EXPECT_TRUE(overflows.entries.empty());
  EXPECT_EQ(socket->counters().stale_frames_dropped, 1u);
}

TEST_F(ChannelFixture, OverflowBindingsMayRemoveThemselvesAndUnsubscribeInsideCallbacks) {
  auto ch = joined_tasks_channel();
  int first = 0, skipped = 0, last = 0;
  core::Subscription self_removing, next;
  self_removing = ch->on_changes_overflow([&](const RealtimeChannel::ChangesOverflow&) {
    ++first;
    self_removing.remove();
    next.remove();  // removed before its turn: not called
  });
  next = ch->on_changes_overflow([&](const RealtimeChannel::ChangesOverflow&) { ++skipped; });
  auto leaver = ch->on_changes_overflow([&](const RealtimeChannel::ChangesOverflow& o) {
    EXPECT_EQ(o.table, "tasks");
    if (++last == 2) ch->unsubscribe();
  });
  fake->receive_text(frame("1", "", kTopic, "system", kOverflowPayload));
  fake->receive_text(frame("1", "", kTopic, "system", kOverflowPayload));
  EXPECT_EQ(first, 1);
  EXPECT_EQ(skipped, 0);
  EXPECT_EQ(last, 2);
  EXPECT_EQ(ch->state(), ChannelState::leaving);
}

TEST_F(ChannelFixture, DroppingTheChannelInsideAnOverflowCallbackIsSafe) {
  auto ch = joined_tasks_channel();
  int calls = 0;
  auto sub = ch->on_changes_overflow([&](const RealtimeChannel::ChangesOverflow&) {
    ++calls;
    socket->remove_channel(ch);
    ch.reset();
  });
  fake->receive_text(frame("1", "", kTopic, "system", kOverflowPayload));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ch, nullptr);
}

// ---- dispatch
// ------------------------------------------------------------------------------------

TEST_F(ChannelFixture, PostgresChangesDispatchByIdsAndTypeInClientShape) {
  auto ch = joined_tasks_channel();
  fake->receive_text(change_frame("[11]", "INSERT"));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(
      changes[0],
      R"(INSERT {"schema":"public","table":"tasks","commit_timestamp":"2025-11-19T00:22:40.877Z","eventType":"INSERT","new":{"id":46,"status":"Queued","project_id":"p1"},"old":{},"errors":null})");
  fake->receive_text(change_frame("[12]", "UPDATE"));
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(
      changes[1],
      R"(UPDATE {"schema":"public","table":"tasks","commit_timestamp":"2025-11-19T00:22:40.877Z","eventType":"UPDATE","new":{"id":46,"status":"Queued","project_id":"p1"},"old":{"id":46},"errors":null})");
  // Both ids listed, type UPDATE: only the UPDATE binding asked for it.
  fake->receive_text(change_frame("[11,12]", "UPDATE"));
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[2].substr(0, 6), "UPDATE");
  // Ids of no binding of ours, and a type no binding wants: nothing.
  fake->receive_text(change_frame("[99]", "INSERT"));
  fake->receive_text(change_frame("[11]", "DELETE"));
  EXPECT_EQ(changes.size(), 3u);
}

// The same events through FrameReader (the fast path) and through the DOM path it declines to:
// identical callbacks. [11.0] is an id the reader leaves to the DOM path.
TEST_F(ChannelFixture, PostgresChangesFastAndDomPathsDispatchTheSame) {
  auto ch = joined_tasks_channel();
  fake->receive_text(change_frame("[12]", "UPDATE"));
  fake->receive_text(change_frame("[12.0]", "UPDATE"));
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0], changes[1]);
  // vsn 1-shaped frames are not text a vsn 2 socket accepts: dropped as malformed.
  fake->receive_text(
      R"({"topic":"realtime:task-updates:p1","event":"postgres_changes","payload":{},"ref":null})");
  EXPECT_EQ(changes.size(), 2u);
  EXPECT_EQ(socket->counters().malformed_frames, 1u);
}

TEST_F(ChannelFixture, MalformedPostgresChangesAreCountedAndDropped) {
  auto ch = joined_tasks_channel();
  fake->receive_text(frame("", "", kTopic, "postgres_changes", R"({"ids":[11]})"));
  fake->receive_text(
      frame("", "", kTopic, "postgres_changes",
            R"({"ids":["11"],"data":{"schema":"public","table":"t","type":"INSERT"}})"));
  fake->receive_text(frame("", "", kTopic, "postgres_changes", R"({"ids":[11],"data":{"x":)"));
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(socket->counters().malformed_frames, 3u);
  // The channel keeps working.
  fake->receive_text(change_frame("[11]", "INSERT"));
  EXPECT_EQ(changes.size(), 1u);
}

TEST_F(ChannelFixture, StaleJoinRefPostgresChangesAreDropped) {
  auto ch = joined_tasks_channel();
  const std::string body = change_frame("[11]", "INSERT").substr(std::string("[null,null,").size());
  fake->receive_text(R"(["9",null,)" + body);  // an earlier join's frame
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(socket->counters().stale_frames_dropped, 1u);
  fake->receive_text(R"(["1",null,)" + body);  // the current join's
  EXPECT_EQ(changes.size(), 1u);
  // A topic we have no channel for.
  fake->receive_text(frame("", "", "realtime:other", "postgres_changes", R"({"ids":[11]})"));
  EXPECT_EQ(socket->counters().unroutable_frames, 1u);
}

TEST_F(ChannelFixture, ChangeObjectsOutliveTheirFrame) {
  auto ch = joined_tasks_channel();
  std::vector<json::object> kept;
  auto sub = ch->on_postgres_changes(
      PostgresChangesFilter{"*", "public", "tasks", std::nullopt},
      [&](const RealtimeChannel::ChangeView& c) { kept.push_back(c.to_object()); });
  // The binding joins with the next join; rejoin by dropping the channel's join.
  fake->receive_text(frame("1", "1", kTopic, "phx_error", "{}"));
  sched.run_until(rtsync::client::timers::ChannelRejoin);
  reply(
      "2", "2", kTopic, "ok",
      R"({"postgres_changes":[{"id":11,"event":"INSERT","schema":"public","table":"tasks","filter":"project_id=eq.p1"},{"id":12,"event":"UPDATE","schema":"public","table":"tasks","filter":"project_id=eq.p1"},{"id":13,"event":"*","schema":"public","table":"tasks"}]})");
  fake->receive_text(change_frame("[13]", "INSERT"));
  fake->receive_text(change_frame("[13]", "DELETE"));
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].at("eventType").as_string(), "INSERT");
  EXPECT_EQ(kept[0].at("new").as_object().at("id").as_int64(), 46);
  EXPECT_EQ(kept[1].at("eventType").as_string(), "DELETE");
  EXPECT_EQ(kept[1].at("old").as_object().at("id").as_int64(), 46);
}

TEST_F(ChannelFixture, WildcardEventBindingGetsEveryTypeForItsId) {
  open();
  auto ch = socket->channel("all");
  std::vector<std::string> types;
  auto sub = ch->on_postgres_changes(
      PostgresChangesFilter{"*", "public", std::nullopt, std::nullopt},
      [&](const RealtimeChannel::ChangeView& c) { types.emplace_back(c.event_type()); });
  ASSERT_TRUE(ch->subscribe().ok());
  reply("1", "1", "realtime:all", "ok",
        R"({"postgres_changes":[{"id":5,"event":"*","schema":"public"}]})");
  for (const char* t : {"INSERT", "UPDATE", "DELETE"}) {
    fake->receive_text(frame(
        "", "", "realtime:all", "postgres_changes",
        std::string(
            R"({"ids":[5],"data":{"schema":"public","table":"x","commit_timestamp":null,"type":")") +
            t + R"(","columns":[],"errors":null}})"));
  }
  EXPECT_EQ(types, (std::vector<std::string>{"INSERT", "UPDATE", "DELETE"}));
}

TEST_F(ChannelFixture, BroadcastsMatchCaseInsensitivelyAndStar) {
  auto ch = joined_room();
  std::vector<std::string> star;
  auto s1 =
      ch->on_broadcast("*", [&](const json::value& m) { star.push_back(json::serialize(m)); });
  std::vector<std::string> named;
  auto s2 = ch->on_broadcast("Task-Update",
                             [&](const json::value& m) { named.push_back(json::serialize(m)); });
  const std::string body =
      R"({"event":"task-update","type":"broadcast","payload":{"taskId":"t1"}})";
  fake->receive_text(frame("", "", "realtime:room", "broadcast", body));
  fake->receive_text(frame("", "", "realtime:room", "broadcast",
                           R"({"event":"other","type":"broadcast","payload":{}})"));
  EXPECT_EQ(named, std::vector<std::string>{body});
  EXPECT_EQ(star.size(), 2u);
}

TEST_F(ChannelFixture, BinaryKind4BroadcastDispatchesLikeJson) {
  auto ch = joined_room();
  std::vector<std::string> got;
  auto s =
      ch->on_broadcast("message", [&](const json::value& m) { got.push_back(json::serialize(m)); });
  protocol::UserBroadcast b;
  b.topic = "realtime:room";
  b.user_event = "message";
  b.metadata = R"({"id":"006554ce"})";
  b.payload = R"({"content":"oi"})";
  auto bytes = protocol::encode_user_broadcast(b);
  ASSERT_TRUE(bytes.ok());
  fake->receive_binary(bytes.value());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(
      got[0],
      R"({"type":"broadcast","event":"message","payload":{"content":"oi"},"meta":{"id":"006554ce"}})");
}

TEST_F(ChannelFixture, BroadcastMetaTellsTheDatabaseIdAndReplayed) {
  auto ch = joined_room();
  std::vector<BroadcastMeta> metas;
  auto s = ch->on_broadcast("*", [&](const json::value& m) { metas.push_back(broadcast_meta(m)); });
  protocol::UserBroadcast live;
  live.topic = "realtime:room";
  live.user_event = "INSERT";
  live.metadata = R"({"id":"0b6c1f4e-0000-4000-8000-000000000001"})";
  live.payload = R"({"record":{"id":1}})";
  fake->receive_binary(protocol::encode_user_broadcast(live).value());
  fake->receive_text(frame("1", "", "realtime:room", "broadcast",
                           R"({"type":"broadcast","event":"INSERT","payload":{},)"
                           R"("meta":{"replayed":true,"id":"m-7"}})"));
  fake->receive_text(frame("", "", "realtime:room", "broadcast",
                           R"({"type":"broadcast","event":"x","payload":{}})"));
  fake->receive_text(frame("", "", "realtime:room", "broadcast",
                           R"({"type":"broadcast","event":"x","payload":{},"meta":{"id":7}})"));
  ASSERT_EQ(metas.size(), 4u);
  EXPECT_EQ(metas[0].id, "0b6c1f4e-0000-4000-8000-000000000001");
  EXPECT_FALSE(metas[0].replayed);
  EXPECT_EQ(metas[1].id, "m-7");
  EXPECT_TRUE(metas[1].replayed);
  EXPECT_EQ(metas[2].id, std::nullopt);
  EXPECT_FALSE(metas[2].replayed);
  EXPECT_EQ(metas[3].id, std::nullopt) << "an id that is not a string is no id";
}

TEST_F(ChannelFixture, ReplayOptionsGoInTheJoinOfAPrivateChannelOnly) {
  open();
  ChannelOptions o;
  o.is_private = true;
  o.replay = ReplayOptions{core::WallTime(std::chrono::milliseconds(1763407103911)), 10};
  auto ch = socket->channel("room", o);
  ASSERT_TRUE(ch->subscribe().ok());
  EXPECT_EQ(
      last_sent(),
      R"(["1","1","realtime:room","phx_join",{"config":{"broadcast":{"ack":false,"self":false,"replay":{"since":1763407103911,"limit":10}},"presence":{"key":"","enabled":false},"postgres_changes":[],"private":true}}])");
  // Sent again as it was with every rejoin.
  fake->receive_text(frame("1", "1", "realtime:room", "phx_error", "{}"));
  sched.run_until(rtsync::client::timers::ChannelRejoin);
  EXPECT_NE(last_sent().find(R"("replay":{"since":1763407103911,"limit":10})"), std::string::npos);

  ChannelOptions pub;
  pub.replay = ReplayOptions{core::WallTime{}, std::nullopt};
  auto p = socket->channel("public-room", pub);
  auto r = p->subscribe();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("private"), std::string::npos);
  EXPECT_EQ(p->state(), ChannelState::closed);
}

TEST_F(ChannelFixture, StaleJoinRefFramesAreDropped) {
  auto ch = joined_room();
  std::vector<std::string> got;
  auto s = ch->on_broadcast("*", [&](const json::value& m) { got.push_back(json::serialize(m)); });
  fake->receive_text(frame("1", "1", "realtime:room", "phx_error", "{}"));
  sched.run_until(rtsync::client::timers::ChannelRejoin);
  reply("2", "2", "realtime:room", "ok", R"({"postgres_changes":[]})");
  ASSERT_EQ(ch->join_ref(), "2");
  const auto before = status.entries.size();
  // Frames of join "1": a broadcast with its join_ref, a phx_close with ref "1".
  fake->receive_text(frame("1", "", "realtime:room", "broadcast", R"({"event":"old"})"));
  fake->receive_text(frame("1", "1", "realtime:room", "phx_close", "{}"));
  fake->receive_text(R"([null,"1","realtime:room","phx_error",{}])");
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(status.entries.size(), before);
  EXPECT_EQ(ch->state(), ChannelState::joined);
  EXPECT_EQ(socket->counters().stale_frames_dropped, 3u);
  // Current and fan-out (null join_ref) frames still flow.
  fake->receive_text(frame("2", "", "realtime:room", "broadcast", R"({"event":"a"})"));
  fake->receive_text(frame("", "", "realtime:room", "broadcast", R"({"event":"b"})"));
  EXPECT_EQ(got.size(), 2u);
}

TEST_F(ChannelFixture, LateReplyToAnAbandonedJoinIsIgnored) {
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe(status.callback()).ok());
  sched.advance(10s);  // TIMED_OUT
  sched.run_until(rtsync::client::timers::ChannelRejoin);
  reply("1", "1", "realtime:room", "ok", R"({"postgres_changes":[]})");  // the first join's
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::timed_out});
  EXPECT_EQ(socket->counters().unmatched_replies, 1u);
  EXPECT_EQ(ch->state(), ChannelState::joining);
}

TEST_F(ChannelFixture, PresenceFramesAreAppliedNotUnknown) {
  auto ch = joined_room();
  fake->receive_text(
      frame("1", "", "realtime:room", "presence_state", R"({"k":{"metas":[{"phx_ref":"r"}]}})"));
  fake->receive_text(
      frame("", "", "realtime:room", "presence_diff", R"({"joins":{},"leaves":{}})"));
  EXPECT_EQ(socket->counters().unknown_events, 0u);
  EXPECT_EQ(ch->presence_state().size(), 1u);  // merge details: presence_test.cpp
  EXPECT_EQ(ch->state(), ChannelState::joined);
}

// ---- broadcast pushes
// --------------------------------------------------------------------------------

TEST_F(ChannelFixture, BroadcastWithoutAckResolvesOkWhenSent) {
  auto ch = joined_room();
  std::vector<PushStatus> results;
  ch->send_broadcast("e", json::object(),
                     [&](const PushResult& r) { results.push_back(r.status); });
  EXPECT_EQ(results, std::vector{PushStatus::ok});
}

TEST_F(ChannelFixture, BroadcastWithAckFollowsTheReply) {
  auto ch = joined_room(ChannelOptions{true, true, false, "", {}});
  std::vector<PushResult> results;
  auto done = [&](const PushResult& r) { results.push_back(r); };
  ch->send_broadcast("a", json::object(), done);
  ch->send_broadcast("b", json::object(), done);
  ch->send_broadcast("c", json::object(), done);
  reply("1", "2", "realtime:room");
  reply("1", "3", "realtime:room", "error", R"("payload_size_exceeded")");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status, PushStatus::ok);
  EXPECT_EQ(results[1].status, PushStatus::error);
  EXPECT_EQ(json::serialize(results[1].response), R"("payload_size_exceeded")");
  sched.advance(10s - 1ms);
  EXPECT_EQ(results.size(), 2u);
  sched.advance(1ms);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[2].status, PushStatus::timeout);
  EXPECT_EQ(to_string(results[2].status), "timed out");
}

TEST_F(ChannelFixture, SelfAndAckAreSentInTheJoinConfig) {
  open();
  auto ch = socket->channel("room", ChannelOptions{true, true, true, "", {}});
  ASSERT_TRUE(ch->subscribe().ok());
  const auto join = last_sent();
  EXPECT_NE(join.find(R"("broadcast":{"ack":true,"self":true})"), std::string::npos);
  EXPECT_NE(join.find(R"("private":true)"), std::string::npos);
}

TEST_F(ChannelFixture, BroadcastWhileJoiningWaitsForTheJoin) {
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe().ok());
  sent();
  std::vector<PushStatus> results;
  ch->send_broadcast("early", json::object(),
                     [&](const PushResult& r) { results.push_back(r.status); });
  EXPECT_TRUE(sent().empty());
  reply("1", "1", "realtime:room", "ok", R"({"postgres_changes":[]})");
  EXPECT_EQ(
      last_sent(),
      R"(["1","2","realtime:room","broadcast",{"type":"broadcast","event":"early","payload":{}}])");
  EXPECT_EQ(results, std::vector{PushStatus::ok});
}

TEST_F(ChannelFixture, BroadcastOnAnUnsubscribedChannelFailsAtOnce) {
  auto ch = socket->channel("room");
  std::vector<PushResult> results;
  ch->send_broadcast("e", json::object(), [&](const PushResult& r) { results.push_back(r); });
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, PushStatus::error);
}

TEST_F(ChannelFixture, BufferedBroadcastsAreBoundedAndTimeOut) {
  auto o = default_options();
  o.send_buffer_limit = 1;
  make(o);
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe().ok());
  std::vector<std::pair<int, PushStatus>> results;
  ch->send_broadcast("1", json::object(),
                     [&](const PushResult& r) { results.emplace_back(1, r.status); });
  ch->send_broadcast("2", json::object(),
                     [&](const PushResult& r) { results.emplace_back(2, r.status); });
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0], std::make_pair(1, PushStatus::error));
  EXPECT_EQ(socket->counters().dropped_buffered, 1u);
  sched.advance(10s);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1], std::make_pair(2, PushStatus::timeout));
}

// ---- re-entrancy
// ---------------------------------------------------------------------------------

TEST_F(ChannelFixture, BindingsMayRemoveThemselvesAndUnsubscribeInsideCallbacks) {
  auto ch = joined_room();
  int first = 0, second = 0;
  core::Subscription self_removing;
  self_removing = ch->on_broadcast("*", [&](const json::value&) {
    ++first;
    self_removing.remove();
  });
  auto other = ch->on_broadcast("*", [&](const json::value&) {
    ++second;
    if (second == 2) ch->unsubscribe();
  });
  const auto f = frame("", "", "realtime:room", "broadcast", R"({"event":"e"})");
  fake->receive_text(f);
  fake->receive_text(f);
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
  EXPECT_EQ(ch->state(), ChannelState::leaving);
}

// A channel "all" with three "*" bindings on public.t, joined with ids 1, 2, 3; `calls` counts
// each binding's calls, `inside(i)` runs in binding i's callback before it counts.
class ChangeReentrancy : public ChannelFixture {
 protected:
  void SetUp() override {
    ChannelFixture::SetUp();
    open();
    ch = socket->channel("all");
    for (int i = 0; i < 3; ++i) {
      bindings[i] =
          ch->on_postgres_changes(PostgresChangesFilter{"*", "public", "t", std::nullopt},
                                  [this, i](const RealtimeChannel::ChangeView& change) {
                                    EXPECT_EQ(change.new_record().find("id")->as_int64(), 46);
                                    if (inside[i]) inside[i]();
                                    ++calls[i];
                                    // The view stays readable after whatever the callback did.
                                    EXPECT_EQ(change.table(), "t");
                                  });
    }
    ASSERT_TRUE(ch->subscribe().ok());
    reply("1", "1", "realtime:all", "ok",
          R"({"postgres_changes":[{"id":1,"event":"*","schema":"public","table":"t"},)"
          R"({"id":2,"event":"*","schema":"public","table":"t"},)"
          R"({"id":3,"event":"*","schema":"public","table":"t"}]})");
    ASSERT_EQ(ch->state(), ChannelState::joined);
  }
  void deliver() {
    fake->receive_text(frame(
        "", "", "realtime:all", "postgres_changes",
        R"({"ids":[1,2,3],"data":{"schema":"public","table":"t","type":"INSERT",)"
        R"("commit_timestamp":null,"columns":[{"name":"id","type":"int8"}],"record":{"id":"46"},)"
        R"("errors":null}})"));
  }
  std::shared_ptr<RealtimeChannel> ch;
  core::Subscription bindings[3];
  std::function<void()> inside[3];
  int calls[3] = {0, 0, 0};
};

TEST_F(ChangeReentrancy, ACallbackMayRemoveItselfAndTheNextBinding) {
  inside[0] = [&] {
    bindings[0].remove();
    bindings[1].remove();
  };
  deliver();
  EXPECT_EQ(calls[0], 1);
  EXPECT_EQ(calls[1], 0);  // removed before its turn
  EXPECT_EQ(calls[2], 1);
  deliver();
  EXPECT_EQ(calls[0], 1);
  EXPECT_EQ(calls[2], 2);
}

TEST_F(ChangeReentrancy, ACallbackMayRemoveItsChannelAndDropIt) {
  std::weak_ptr<RealtimeChannel> weak = ch;
  inside[0] = [&] {
    socket->remove_channel(ch);
    ch.reset();                    // the last reference outside the socket's delivery
    EXPECT_FALSE(weak.expired());  // kept until the frame's dispatch ends
  };
  deliver();
  EXPECT_EQ(calls[0], 1);
  EXPECT_TRUE(weak.expired());  // and released right after it
  EXPECT_TRUE(socket->channels().empty());
  deliver();  // no channel has the topic any more
  EXPECT_EQ(calls[0], 1);
  EXPECT_EQ(socket->counters().unroutable_frames, 1u);
}

TEST_F(ChangeReentrancy, ACallbackMayDestroyTheSocket) {
  inside[1] = [&] { socket.reset(); };
  deliver();
  EXPECT_EQ(calls[0], 1);
  EXPECT_EQ(calls[1], 1);
  EXPECT_EQ(calls[2], 0);  // the channel was detached with its socket
  EXPECT_EQ(ch->state(), ChannelState::closed);
}

TEST_F(ChangeReentrancy, ACallbackMayDisconnectAndTheFrameStillReachesTheOthers) {
  inside[0] = [&] { socket->disconnect(); };
  deliver();
  EXPECT_EQ(calls[0], 1);
  EXPECT_EQ(calls[1], 1);  // as realtime-js: the frame's bindings were chosen on arrival
  EXPECT_EQ(calls[2], 1);
  EXPECT_EQ(socket->state(), ConnectionState::closed);
}

TEST_F(ChannelFixture, UnsubscribeInsideTheSubscribedCallback) {
  open();
  auto ch = socket->channel("room");
  std::vector<SubscribeStatus> seen;
  ASSERT_TRUE(ch->subscribe([&](SubscribeStatus s, std::optional<Error>) {
                  seen.push_back(s);
                  if (s == SubscribeStatus::subscribed) ch->unsubscribe();
                }).ok());
  reply("1", "1", "realtime:room", "ok", R"({"postgres_changes":[]})");
  EXPECT_EQ(ch->state(), ChannelState::leaving);
  reply("1", "2", "realtime:room");
  EXPECT_EQ(seen, (std::vector{SubscribeStatus::subscribed, SubscribeStatus::closed}));
}

TEST_F(ChannelFixture, DroppingTheLastReferenceInsideClosedIsSafe) {
  auto ch = joined_room();
  auto sub = ch->on_status([&](SubscribeStatus s, std::optional<Error>) {
    if (s == SubscribeStatus::closed) ch.reset();
  });
  fake->receive_text(frame("1", "1", "realtime:room", "phx_close", "{}"));
  EXPECT_EQ(ch, nullptr);
  EXPECT_TRUE(socket->channels().empty());
}

TEST_F(ChannelFixture, ChangeBindingAddedAfterSubscribeJoinsNextTime) {
  auto ch = joined_room();
  int got = 0;
  auto sub = ch->on_postgres_changes(PostgresChangesFilter{"*", "public", "t", std::nullopt},
                                     [&](const RealtimeChannel::ChangeView&) { ++got; });
  fake->receive_text(frame("1", "1", "realtime:room", "phx_error", "{}"));
  sched.run_until(rtsync::client::timers::ChannelRejoin);
  EXPECT_NE(last_sent().find(R"("postgres_changes":[{"event":"*","schema":"public","table":"t"}])"),
            std::string::npos)
      << last_sent();
  reply("2", "2", "realtime:room", "ok",
        R"({"postgres_changes":[{"id":7,"event":"*","schema":"public","table":"t"}]})");
  fake->receive_text(frame(
      "", "", "realtime:room", "postgres_changes",
      R"({"ids":[7],"data":{"schema":"public","table":"t","type":"INSERT","commit_timestamp":null,"columns":[],"record":{},"errors":null}})"));
  EXPECT_EQ(got, 1);
  sub.remove();
  fake->receive_text(frame(
      "", "", "realtime:room", "postgres_changes",
      R"({"ids":[7],"data":{"schema":"public","table":"t","type":"INSERT","commit_timestamp":null,"columns":[],"record":{},"errors":null}})"));
  EXPECT_EQ(got, 1);
}

TEST_F(ChannelFixture, SameNameReturnsTheSameChannelAndRemoveChannelLeaves) {
  auto ch = joined_room();
  EXPECT_EQ(socket->channel("room"), ch);
  socket->remove_channel(ch);
  EXPECT_EQ(last_sent(), R"(["1","2","realtime:room","phx_leave",{}])");
  EXPECT_TRUE(socket->channels().empty());
}

}  // namespace
}  // namespace rtsync::client::testing
