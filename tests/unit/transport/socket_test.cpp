// RealtimeSocket on virtual time: endpoint, heartbeat, refs, push replies and timeouts, the send
// buffer, reconnect backoff, failed handshakes, frame limits and bad input.
#include <gtest/gtest.h>

#include <thread>

#include "fixture.hpp"
#include "rtsync/client/transport/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"

namespace rtsync::client::testing {
namespace {

// ---- endpoint URL
// ----------------------------------------------------------------------------------

TEST(EndpointUrl, HttpsBaseBecomesWssRealtimePathWithApikeyAndVsn) {
  auto o = default_options();
  EXPECT_EQ(build_endpoint_url(o).value(),
            "wss://abc.supabase.co/realtime/v1/websocket?apikey=anon-key&vsn=2.0.0");
  o.vsn = protocol::Vsn::v1;
  o.url = "http://127.0.0.1:54321/";
  EXPECT_EQ(build_endpoint_url(o).value(),
            "ws://127.0.0.1:54321/realtime/v1/websocket?apikey=anon-key&vsn=1.0.0");
}

TEST(EndpointUrl, WsBasesAndExplicitWebsocketPathsAndParams) {
  auto o = default_options();
  o.url = "wss://rt.example.com:4000/socket/websocket";
  o.params = {{"log_level", "info"}};
  EXPECT_EQ(build_endpoint_url(o).value(),
            "wss://rt.example.com:4000/socket/websocket?apikey=anon-key&vsn=2.0.0&log_level=info");
  o.url = "ws://localhost:8080/base";
  o.params.clear();
  EXPECT_EQ(build_endpoint_url(o).value(),
            "ws://localhost:8080/base/realtime/v1/websocket?apikey=anon-key&vsn=2.0.0");
}

TEST(EndpointUrl, RejectsOtherSchemesAndGarbage) {
  auto o = default_options();
  o.url = "ftp://abc.supabase.co";
  EXPECT_EQ(build_endpoint_url(o).error().code, Errc::invalid_argument);
  o.url = "not a url";
  EXPECT_FALSE(build_endpoint_url(o).ok());
}

TEST(EndpointUrl, RedactsTheApiKey) {
  EXPECT_EQ(redact_endpoint_url("wss://h/realtime/v1/websocket?apikey=secret&vsn=2.0.0"),
            "wss://h/realtime/v1/websocket?apikey=***&vsn=2.0.0");
}

// ---- connection states
// -----------------------------------------------------------------------------

TEST_F(SocketFixture, ConnectsToTheEndpointAndReportsStates) {
  std::vector<std::pair<ConnectionState, ConnectionState>> seen;
  auto sub = socket->on_state(
      [&](const SocketStateChange& c) { seen.emplace_back(c.previous, c.current); });
  EXPECT_EQ(socket->state(), ConnectionState::closed);
  socket->connect();
  EXPECT_EQ(fake->url(), "wss://abc.supabase.co/realtime/v1/websocket?apikey=anon-key&vsn=2.0.0");
  EXPECT_EQ(socket->state(), ConnectionState::connecting);
  socket->connect();  // idempotent
  EXPECT_EQ(fake->connect_count(), 1u);
  fake->accept();
  EXPECT_EQ(socket->state(), ConnectionState::open);
  socket->disconnect();
  EXPECT_EQ(socket->state(), ConnectionState::closed);
  EXPECT_EQ(fake->last_close(), std::make_pair(1000, std::string()));
  EXPECT_FALSE(sched.pending(rtsync::client::timers::SocketReconnect));
  using S = ConnectionState;
  std::vector<std::pair<S, S>> want{{S::closed, S::connecting},
                                    {S::connecting, S::open},
                                    {S::open, S::closing},
                                    {S::closing, S::closed}};
  EXPECT_EQ(seen, want);
}

// ---- heartbeat
// ---------------------------------------------------------------------------------------

TEST_F(SocketFixture, HeartbeatV2ExactFrameAtTheInterval) {
  open();
  sched.advance(25s - 1ms);
  EXPECT_TRUE(sent().empty());
  sched.advance(1ms);
  EXPECT_EQ(sent(), std::vector<std::string>{R"([null,"1","phoenix","heartbeat",{}])"});
}

TEST_F(SocketFixture, HeartbeatV1ExactFrame) {
  make(default_options(protocol::Vsn::v1));
  open();
  sched.advance(25s);
  EXPECT_EQ(sent(), std::vector<std::string>{
                        R"({"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"})"});
}

TEST_F(SocketFixture, AnsweredHeartbeatsKeepAFixedCadenceAndReportLatency) {
  std::vector<std::pair<HeartbeatStatus, std::optional<core::Duration>>> seen;
  auto sub = socket->on_heartbeat(
      [&](HeartbeatStatus s, std::optional<core::Duration> l) { seen.emplace_back(s, l); });
  open();
  sched.advance(25s);
  sched.advance(40ms);
  reply("", "1", "phoenix");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, HeartbeatStatus::sent);
  EXPECT_EQ(seen[1].first, HeartbeatStatus::ok);
  EXPECT_EQ(seen[1].second, core::Duration(40ms));
  sent();
  // Next one at 50 s from open, not 25 s after the reply.
  sched.advance(25s - 40ms - 1ms);
  EXPECT_TRUE(sent().empty());
  sched.advance(1ms);
  EXPECT_EQ(sent(), std::vector<std::string>{R"([null,"2","phoenix","heartbeat",{}])"});
  EXPECT_EQ(socket->state(), ConnectionState::open);
}

TEST_F(SocketFixture, HeartbeatErrorReplyIsReportedAndTheSocketStaysOpen) {
  std::vector<HeartbeatStatus> seen;
  auto sub = socket->on_heartbeat(
      [&](HeartbeatStatus s, std::optional<core::Duration>) { seen.push_back(s); });
  open();
  sched.advance(25s);
  reply("", "1", "phoenix", "error", R"({"reason":"nope"})");
  EXPECT_EQ(seen, (std::vector{HeartbeatStatus::sent, HeartbeatStatus::error}));
  sched.advance(25s);
  EXPECT_EQ(socket->state(), ConnectionState::open);
}

TEST_F(SocketFixture, UnansweredHeartbeatClosesAndReconnectsWhenTheNextIsDue) {
  std::vector<HeartbeatStatus> seen;
  auto sub = socket->on_heartbeat(
      [&](HeartbeatStatus s, std::optional<core::Duration>) { seen.push_back(s); });
  std::vector<SocketStateChange> changes;
  auto sub2 = socket->on_state([&](const SocketStateChange& c) { changes.push_back(c); });
  open();
  sched.advance(25s);
  sched.advance(25s - 1ms);
  EXPECT_EQ(socket->state(), ConnectionState::open);
  sched.advance(1ms);
  EXPECT_EQ(seen, (std::vector{HeartbeatStatus::sent, HeartbeatStatus::timeout}));
  EXPECT_EQ(socket->state(), ConnectionState::closed);
  EXPECT_EQ(fake->last_close(), std::make_pair(1000, std::string("heartbeat timeout")));
  EXPECT_EQ(socket->counters().heartbeat_timeouts, 1u);
  ASSERT_FALSE(changes.empty());
  EXPECT_EQ(changes.back().current, ConnectionState::closed);
  EXPECT_EQ(changes.back().reason, "heartbeat timeout");
  core::Jitter j(kSeed);
  const auto expected = core::ExponentialBackoff{500ms, 2s}.delay(1, j.next());
  EXPECT_EQ(sched.time_until(rtsync::client::timers::SocketReconnect), expected);
  sched.advance(expected);
  EXPECT_EQ(fake->connect_count(), 2u);
  fake->accept();
  ASSERT_TRUE(changes.back().reconnected);
  EXPECT_EQ(socket->counters().reconnects, 1u);
}

// ---- pushes
// ------------------------------------------------------------------------------------------

TEST_F(SocketFixture, PushTimesOutExactlyAtItsTimeoutOnce) {
  open();
  std::vector<PushResult> results;
  const auto ref = socket->push("realtime:x", "custom", json::object{{"a", 1}},
                                [&](const PushResult& r) { results.push_back(r); });
  EXPECT_EQ(ref, "1");
  EXPECT_EQ(last_sent(), R"([null,"1","realtime:x","custom",{"a":1}])");
  sched.advance(10s - 1ms);
  EXPECT_TRUE(results.empty());
  sched.advance(1ms);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, PushStatus::timeout);
  reply("", "1", "realtime:x");  // too late
  EXPECT_EQ(results.size(), 1u);
  EXPECT_EQ(socket->counters().unmatched_replies, 1u);
}

TEST_F(SocketFixture, PushResolvesOkOrErrorWithTheResponseExactlyOnce) {
  open();
  std::vector<PushResult> a, b;
  socket->push("realtime:x", "e", json::object(), [&](const PushResult& r) { a.push_back(r); });
  socket->push(
      "realtime:x", "e", json::object(), [&](const PushResult& r) { b.push_back(r); }, 2s);
  reply("", "1", "realtime:x", "ok", R"({"v":1})");
  reply("", "2", "realtime:x", "error", R"({"reason":"boom"})");
  reply("", "1", "realtime:x", "ok", R"({"v":2})");  // duplicate
  sched.advance(30s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].status, PushStatus::ok);
  EXPECT_EQ(json::serialize(a[0].response), R"({"v":1})");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].status, PushStatus::error);
  EXPECT_EQ(json::serialize(b[0].response), R"({"reason":"boom"})");
  EXPECT_EQ(socket->counters().unmatched_replies, 1u);
}

TEST_F(SocketFixture, RepliesToUnknownRefsOrOtherTopicsAreIgnored) {
  open();
  std::vector<PushResult> results;
  socket->push("realtime:x", "e", json::object(),
               [&](const PushResult& r) { results.push_back(r); });
  reply("", "99", "realtime:x");
  reply("", "1", "realtime:other");
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(socket->counters().unmatched_replies, 2u);
  EXPECT_EQ(socket->state(), ConnectionState::open);
}

TEST_F(SocketFixture, RefsAreDecimalStringsFromOneCounter) {
  open();
  EXPECT_EQ(socket->push("t", "e", json::object()), "1");
  sched.advance(25s);  // heartbeat takes "2"
  EXPECT_EQ(socket->push("t", "e", json::object()), "3");
  auto frames = sent();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[1], R"([null,"2","phoenix","heartbeat",{}])");
}

TEST_F(SocketFixture, PushesWhileDisconnectedAreBufferedAndFlushedInOrder) {
  std::vector<PushResult> results;
  socket->push("t", "first", json::object(), [&](const PushResult& r) { results.push_back(r); });
  socket->push("t", "second", json::object());
  socket->connect();
  EXPECT_TRUE(fake->sent().empty());
  fake->accept();
  EXPECT_EQ(sent(), (std::vector<std::string>{R"([null,"1","t","first",{}])",
                                              R"([null,"2","t","second",{}])"}));
  reply("", "1", "t");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, PushStatus::ok);
}

TEST_F(SocketFixture, FullSendBufferDropsTheOldestAndCountsIt) {
  auto o = default_options();
  o.send_buffer_limit = 2;
  make(o);
  std::vector<std::pair<int, PushResult>> results;
  for (int i = 1; i <= 3; ++i) {
    socket->push("t", "e" + std::to_string(i), json::object(),
                 [&, i](const PushResult& r) { results.emplace_back(i, r); });
  }
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].first, 1);
  EXPECT_EQ(results[0].second.status, PushStatus::error);
  EXPECT_EQ(json::serialize(results[0].second.response), R"({"reason":"send buffer full"})");
  EXPECT_EQ(socket->counters().dropped_buffered, 1u);
  open();
  EXPECT_EQ(sent(),
            (std::vector<std::string>{R"([null,"2","t","e2",{}])", R"([null,"3","t","e3",{}])"}));
}

TEST_F(SocketFixture, BufferedPushTimeoutRunsFromThePush) {
  std::vector<PushResult> results;
  socket->push("t", "e", json::object(), [&](const PushResult& r) { results.push_back(r); });
  sched.advance(10s - 1ms);
  EXPECT_TRUE(results.empty());
  sched.advance(1ms);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, PushStatus::timeout);
}

TEST_F(SocketFixture, TransportSendFailuresAreCounted) {
  open();
  fake->set_send_failure(true);
  socket->push("t", "e", json::object());
  EXPECT_EQ(socket->counters().send_failures, 1u);
  EXPECT_EQ(socket->state(), ConnectionState::open);
}

// ---- reconnect
// ---------------------------------------------------------------------------------------

// The default schedule: ceilings 0.5 s, 1 s, then 2 s for every later attempt, so that a socket
// is back within 2 s of an outage's end however long it lasted (docs/user-guide.md §2.6).
TEST(SocketOptionsDefaults, ReconnectCeilingsAreHalfASecondThenOneThenTwoSecondsForever) {
  const auto backoff = SocketOptions{}.reconnect_backoff;
  EXPECT_EQ(backoff.ceiling(1), core::Duration(500ms));
  EXPECT_EQ(backoff.ceiling(2), core::Duration(1s));
  EXPECT_EQ(backoff.ceiling(3), core::Duration(2s));
  EXPECT_EQ(backoff.ceiling(4), core::Duration(2s));
  EXPECT_EQ(backoff.ceiling(1000), core::Duration(2s));
  EXPECT_EQ(backoff.delay(1000, 1.0), core::Duration(2s));
}

TEST_F(SocketFixture, ReconnectBackoffIsFullJitterFromTheSeedWithinTheCeiling) {
  open();
  fake->drop(1006, "gone");
  core::Jitter j(kSeed);
  const core::ExponentialBackoff backoff{500ms, 2s};
  for (std::uint32_t attempt = 1; attempt <= 10; ++attempt) {
    const auto expected = backoff.delay(attempt, j.next());
    ASSERT_TRUE(sched.pending(rtsync::client::timers::SocketReconnect)) << attempt;
    EXPECT_EQ(sched.time_until(rtsync::client::timers::SocketReconnect), expected) << attempt;
    EXPECT_GE(expected, core::Duration::zero());
    EXPECT_LE(expected, backoff.ceiling(attempt));
    if (expected > core::Duration::zero()) {
      sched.advance(expected - 1ns);
      EXPECT_EQ(fake->connect_count(), attempt) << "fired early at attempt " << attempt;
      sched.advance(1ns);
    } else {
      sched.run_ready();
    }
    EXPECT_EQ(fake->connect_count(), attempt + 1);
    EXPECT_EQ(socket->state(), ConnectionState::connecting);
    fake->fail(TransportFailure{make_error(Errc::io, "connection refused"), 0, {}});
  }
  EXPECT_EQ(backoff.ceiling(10), core::Duration(2s));
  EXPECT_EQ(socket->counters().failed_attempts, 10u);
  // Success resets the attempt counter: the next drop waits within ceiling(1) again.
  EXPECT_EQ(sched.time_until(rtsync::client::timers::SocketReconnect), backoff.delay(11, j.next()));
  sched.run_until(rtsync::client::timers::SocketReconnect);
  fake->accept();
  fake->drop();
  const auto next = backoff.delay(1, j.next());
  EXPECT_EQ(sched.time_until(rtsync::client::timers::SocketReconnect), next);
  EXPECT_LE(next, core::Duration(500ms));
}

// An outage of any length: the attempt that follows its end is never more than the cap away.
TEST_F(SocketFixture, AfterALongOutageTheNextAttemptIsAtMostTwoSecondsAway) {
  open();
  fake->drop(1006, "gone");
  core::Duration outage{};
  std::uint32_t attempts = 0;
  while (outage < 10min) {
    const auto wait = sched.time_until(rtsync::client::timers::SocketReconnect);
    ASSERT_TRUE(wait);
    EXPECT_LE(*wait, core::Duration(2s)) << "attempt " << attempts + 1;
    outage += *wait;
    sched.advance(*wait);
    ++attempts;
    fake->fail(TransportFailure{make_error(Errc::io, "connection refused"), 0, {}});
  }
  // Full jitter under a 2 s cap: about one attempt a second (not more than one every 0.5 s on
  // average, not fewer than one every 2 s).
  EXPECT_GE(attempts, 10 * 60 / 2);
  EXPECT_LE(attempts, 10 * 60 * 2);
  // The network is back: the pending attempt connects, and the socket is open again.
  const auto wait = *sched.time_until(rtsync::client::timers::SocketReconnect);
  sched.advance(wait);
  fake->accept();
  EXPECT_EQ(socket->state(), ConnectionState::open);
}

// The schedule stays a user option: realtime-js's slower steps, for example.
TEST_F(SocketFixture, ReconnectBackoffIsAnOption) {
  auto o = default_options();
  o.reconnect_backoff = core::ExponentialBackoff{1s, 10s};
  make(o);
  open();
  fake->drop();
  core::Jitter j(kSeed);
  for (std::uint32_t attempt = 1; attempt <= 6; ++attempt) {
    EXPECT_EQ(sched.time_until(rtsync::client::timers::SocketReconnect),
              o.reconnect_backoff.delay(attempt, j.next()));
    sched.run_until(rtsync::client::timers::SocketReconnect);
    fake->fail(TransportFailure{make_error(Errc::io, "refused"), 0, {}});
  }
  EXPECT_EQ(o.reconnect_backoff.ceiling(6), core::Duration(10s));
}

TEST_F(SocketFixture, ConnectDuringBackoffConnectsAtOnce) {
  open();
  fake->drop();
  ASSERT_TRUE(sched.pending(rtsync::client::timers::SocketReconnect));
  socket->connect();
  EXPECT_FALSE(sched.pending(rtsync::client::timers::SocketReconnect));
  EXPECT_EQ(fake->connect_count(), 2u);
}

TEST_F(SocketFixture, NeverGivesUpUntilDisconnect) {
  open();
  fake->drop();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(sched.run_until(rtsync::client::timers::SocketReconnect));
    fake->fail(TransportFailure{make_error(Errc::io, "refused"), 0, {}});
  }
  EXPECT_TRUE(sched.pending(rtsync::client::timers::SocketReconnect));
  EXPECT_LE(*sched.time_until(rtsync::client::timers::SocketReconnect), core::Duration(2s));
  socket->disconnect();
  EXPECT_FALSE(sched.pending(rtsync::client::timers::SocketReconnect));
  EXPECT_EQ(socket->state(), ConnectionState::closed);
}

TEST_F(SocketFixture, RefusedUpgradeSurfacesHttpStatusAndServerError) {
  std::vector<SocketError> errors;
  auto sub = socket->on_error([&](const SocketError& e) { errors.push_back(e); });
  socket->connect();
  fake->refuse(401, R"({"error":"API key is missing"})");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].http_status, 401);
  EXPECT_EQ(errors[0].server_error, "API key is missing");
  EXPECT_EQ(errors[0].error.code, Errc::unauthorized);
  EXPECT_EQ(errors[0].error.message, "HTTP 401: API key is missing");
  EXPECT_EQ(socket->state(), ConnectionState::closed);
  EXPECT_TRUE(sched.pending(rtsync::client::timers::SocketReconnect));

  sched.run_until(rtsync::client::timers::SocketReconnect);
  fake->refuse(404, R"({"error":"Tenant not found"})");
  EXPECT_EQ(errors.back().error.code, Errc::not_found);
  sched.run_until(rtsync::client::timers::SocketReconnect);
  fake->refuse(502, "Bad Gateway");
  EXPECT_EQ(errors.back().error.message, "HTTP 502: Bad Gateway");
  EXPECT_EQ(errors.back().error.code, Errc::remote);
}

// ---- inbound limits and bad input
// ----------------------------------------------------------------

// The Beast transport under a RealtimeSocket leaves text unchecked (make_realtime_socket): the
// socket's JSON parsers find invalid UTF-8, and the socket fails the connection with 1007.
TEST_F(SocketFixture, TextThatIsNotUtf8ClosesWith1007AndReconnects) {
  const std::string bad_change =
      frame("", "", "realtime:room", "postgres_changes",
            "{\"ids\":[1],\"data\":{\"schema\":\"public\",\"table\":\"t\",\"type\":\"INSERT\","
            "\"commit_timestamp\":null,\"columns\":[],\"record\":{\"name\":\"a\xC3\x28\"},"
            "\"errors\":null}}");
  const std::string bad_broadcast =
      frame("", "", "realtime:room", "broadcast", "{\"event\":\"e\",\"p\":\"\xED\xA0\x80\"}");
  for (const auto& bad : {bad_change, bad_broadcast}) {
    SCOPED_TRACE(bad);
    make(default_options());
    open();
    auto ch = socket->channel("room");
    StatusLog log;
    std::vector<std::string> got;
    auto b = ch->on_broadcast(
        "*", [&](const json::value& m) { got.emplace_back(m.at("payload").at("p").as_string()); });
    ASSERT_TRUE(ch->subscribe(log.callback()).ok());
    reply("1", "1", "realtime:room", "ok", R"({"postgres_changes":[]})");
    // UTF-8 that is valid passes, multi-byte and escaped alike.
    fake->receive_text(frame("", "", "realtime:room", "broadcast",
                             "{\"event\":\"e\",\"payload\":{\"p\":\"\xC3\xA9\\u00e9\"}}"));
    EXPECT_EQ(got, std::vector<std::string>{"\xC3\xA9\xC3\xA9"});
    fake->receive_text(bad);
    EXPECT_EQ(fake->last_close(),
              std::make_pair(1007, std::string("text message is not valid UTF-8")));
    EXPECT_EQ(socket->counters().malformed_frames, 1u);
    EXPECT_EQ(socket->state(), ConnectionState::closed);
    EXPECT_TRUE(sched.pending(rtsync::client::timers::SocketReconnect));
    EXPECT_EQ(log.statuses().back(), SubscribeStatus::channel_error);
    socket.reset();
  }
}

TEST_F(SocketFixture, FrameAboveTheLimitClosesWith1009AndReconnects) {
  auto o = default_options();
  o.max_frame_bytes = 128;
  make(o);
  open();
  auto ch = socket->channel("room");
  StatusLog log;
  int got = 0;
  auto b = ch->on_broadcast("*", [&](const json::value&) { ++got; });
  ASSERT_TRUE(ch->subscribe(log.callback()).ok());
  reply("1", "1", "realtime:room", "ok", R"({"postgres_changes":[]})");
  // Exactly 128 bytes passes.
  auto padded = [](std::size_t n) {
    return frame("", "", "realtime:room", "broadcast",
                 R"({"event":"e","p":")" + std::string(n, 'x') + "\"}");
  };
  const auto small = padded(128 - padded(0).size());
  ASSERT_EQ(small.size(), 128u) << small;
  fake->receive_text(small);
  EXPECT_EQ(got, 1);
  fake->receive_text(small + " ");
  EXPECT_EQ(got, 1);
  EXPECT_EQ(fake->last_close(), std::make_pair(1009, std::string("message too big")));
  EXPECT_EQ(socket->counters().oversized_frames, 1u);
  EXPECT_EQ(socket->state(), ConnectionState::closed);
  EXPECT_TRUE(sched.pending(rtsync::client::timers::SocketReconnect));
  EXPECT_EQ(log.statuses().back(), SubscribeStatus::channel_error);
}

TEST_F(SocketFixture, BadInputIsLoggedCountedAndLaterFramesStillDispatch) {
  log::Capture capture;
  open();
  auto ch = socket->channel("room");
  std::vector<std::string> events;
  auto b = ch->on_broadcast("*", [&](const json::value& m) {
    events.emplace_back(core::find_string(m, "event").value_or("?"));
  });
  ASSERT_TRUE(ch->subscribe().ok());
  reply("1", "1", "realtime:room", "ok", R"({"postgres_changes":[]})");

  fake->receive_text("{not json");
  fake->receive_text(R"({"topic":"realtime:room"})");    // v1 object on a v2 socket
  fake->receive_text(R"(["1","2","realtime:room"])");    // too short
  fake->receive_binary(std::string("\x07\x01\x02", 3));  // unknown kind
  fake->receive_binary(std::string("\x04\x10\x05", 3));  // kind 4, short
  fake->receive_binary(
      std::string("\x04\x02\x01\x00\x01"
                  "ab",
                  7));  // lengths past the end
  fake->receive_text(frame("", "", "realtime:room", "broadcast", R"({"noevent":1})"));
  fake->receive_text(frame("", "", "realtime:room", "postgres_changes", R"({"ids":"x"})"));
  EXPECT_EQ(socket->counters().malformed_frames, 8u);
  fake->receive_text(frame("1", "", "realtime:room", "mystery_event", "{}"));
  fake->receive_text(frame("", "", "phoenix", "mystery", "{}"));
  EXPECT_EQ(socket->counters().unknown_events, 2u);
  fake->receive_text(frame("", "", "realtime:nobody", "broadcast", R"({"event":"x"})"));
  EXPECT_EQ(socket->counters().unroutable_frames, 1u);

  EXPECT_EQ(socket->state(), ConnectionState::open);
  EXPECT_EQ(fake->phase(), FakeTransport::Phase::open);
  fake->receive_text(
      frame("", "", "realtime:room", "broadcast", R"({"type":"broadcast","event":"after"})"));
  EXPECT_EQ(events, std::vector<std::string>{"after"});
  EXPECT_TRUE(capture.contains("[RealtimeSocket] malformed frame dropped"));
  EXPECT_TRUE(capture.contains("binary frame of 3 bytes dropped"));
}

TEST_F(SocketFixture, BinaryFramesOnAV1SocketAreDroppedAndCounted) {
  make(default_options(protocol::Vsn::v1));
  open();
  fake->receive_binary(std::string("\x04\x01\x01\x00\x01tea", 8));
  EXPECT_EQ(socket->counters().malformed_frames, 1u);
  EXPECT_EQ(socket->state(), ConnectionState::open);
}

// ---- diagnostics
// ---------------------------------------------------------------------------------

TEST_F(SocketFixture, DiagnosticsReportStateCountersAndChannels) {
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe().ok());
  fake->receive_text("garbage");
  const auto d = socket->diagnostics();
  EXPECT_EQ(core::find_string(d, "state"), "open");
  EXPECT_EQ(core::find_string(d, "url"),
            "wss://abc.supabase.co/realtime/v1/websocket?apikey=***&vsn=2.0.0");
  const auto* counters = core::find_object(d, "counters");
  ASSERT_NE(counters, nullptr);
  EXPECT_EQ(counters->at("malformed_frames").to_number<int>(), 1);
  EXPECT_EQ(counters->at("frames_out").to_number<int>(), 1);
  const auto* chans = core::find_array(d, "channels");
  ASSERT_NE(chans, nullptr);
  ASSERT_EQ(chans->size(), 1u);
  EXPECT_EQ(core::find_string((*chans)[0], "state"), "joining");
  EXPECT_EQ(core::find_string((*chans)[0], "topic"), "realtime:room");
}

TEST_F(SocketFixture, DestroyingTheSocketClosesAndCancelsEverything) {
  open();
  int calls = 0;
  socket->push("t", "e", json::object(), [&](const PushResult&) { ++calls; });
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe([&](SubscribeStatus, std::optional<Error>) { ++calls; }).ok());
  socket.reset();
  sched.advance(1h);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(sched.pending_count(), 0u);
  // The channel outlives the socket and fails cleanly.
  EXPECT_EQ(ch->subscribe().error().code, Errc::invalid_argument);
  int result = -1;
  ch->send_broadcast("e", json::object(), [&](const PushResult& r) { result = int(r.status); });
  EXPECT_EQ(result, int(PushStatus::error));
}

// The socket is loop-confined: in debug builds a call from another thread is reported (here to a
// recording handler; by default it aborts), and calls from the thread driving the scheduler are
// not.
TEST_F(SocketFixture, CallsOffTheLoopThreadAreCaughtInDebugBuilds) {
  if (!core::kLoopChecks) GTEST_SKIP() << "loop checks are compiled out (NDEBUG)";
  std::vector<std::string> violations;
  auto previous = core::set_loop_violation_handler(
      [&](std::string_view method) { violations.emplace_back(method); });
  auto channel = socket->channel("room");
  std::thread other([&] {
    socket->set_auth(std::string("token"));
    channel->unsubscribe();
  });
  other.join();
  core::set_loop_violation_handler(std::move(previous));
  EXPECT_EQ(violations, (std::vector<std::string>{"set_auth", "unsubscribe"}));
}

// Reads and presence registrations are loop-confined as well; getters of what was fixed at
// construction (topic, options) are not checked.
TEST_F(SocketFixture, ReadsAndPresenceCallsOffTheLoopThreadAreCaughtInDebugBuilds) {
  if (!core::kLoopChecks) GTEST_SKIP() << "loop checks are compiled out (NDEBUG)";
  std::vector<std::string> violations;
  auto previous = core::set_loop_violation_handler(
      [&](std::string_view method) { violations.emplace_back(method); });
  auto channel = socket->channel("room");
  std::thread other([&] {
    (void)socket->state();
    (void)socket->diagnostics();
    (void)channel->state();
    (void)channel->topic();
    (void)channel->presence_state();
    auto sub = channel->on_presence_sync([] {});
  });
  other.join();
  (void)socket->state();  // the loop thread: not reported
  core::set_loop_violation_handler(std::move(previous));
  // The socket's diagnostics read its channel's, which reports too.
  EXPECT_EQ(violations, (std::vector<std::string>{"state", "diagnostics", "diagnostics", "state",
                                                  "presence_state", "on_presence_sync"}));
}

}  // namespace
}  // namespace rtsync::client::testing
