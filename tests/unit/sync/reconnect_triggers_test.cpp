#include "rtsync/client/sync/reconnect_triggers.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::client::sync {
namespace {

using core::ManualScheduler;
using core::TimerId;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct TriggersTest : ::testing::Test {
  ManualScheduler clock;
  core::EventBus bus;
  ReconnectScheduler reconnect{clock, bus};
  AuthSession auth{clock};
  FreshnessTracker freshness{clock};
  ProjectSelection project;
  ReconnectTriggers triggers{clock, reconnect, auth, freshness, project};
  std::vector<json::value> heals;
  std::vector<core::TimePoint> heal_times;
  core::Subscription sub = bus.subscribe(kAuthHealEvent, [this](const json::value& d) {
    heals.push_back(d);
    heal_times.push_back(clock.now());
  });
  core::TimePoint t0 = clock.now();

  Session session(std::string token = "tok") {
    Session s;
    s.access_token = std::move(token);
    s.user_id = "u1";
    return s;
  }
};

TEST_F(TriggersTest, SignedInRequestsAHighHealOneSecondLater) {
  auth.sign_in(session());
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::SignedInDelay), seconds(1));
  clock.advance(milliseconds(999));
  EXPECT_EQ(reconnect.state().pending_intents, 0u);
  clock.advance(milliseconds(1));
  EXPECT_EQ(reconnect.state().pending_intents, 1u);
  clock.advance(seconds(1));  // the scheduler's debounce
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heal_times[0] - t0, seconds(2));
  EXPECT_EQ(heals[0].at("source").as_string(), "AuthManager");
  EXPECT_EQ(heals[0].at("reason").as_string(), "SIGNED_IN event (SIGNED_IN)");
  EXPECT_EQ(heals[0].at("priority").as_string(), "high");
}

TEST_F(TriggersTest, TokenRefreshedRequestsToo) {
  AuthSession fixed(clock, static_token_refresher());
  ReconnectTriggers t(clock, reconnect, fixed, freshness, project);
  Session s = session();
  s.expires_at = clock.wall_now() - seconds(1);  // already expired: refreshes at once
  fixed.sign_in(s);
  clock.advance(seconds(2));
  ASSERT_EQ(heals.size(), 1u);
  // SIGNED_IN's delay was replaced by TOKEN_REFRESHED's (same instant), one request.
  EXPECT_EQ(heals[0].at("reason").as_string(), "TOKEN_REFRESHED event (TOKEN_REFRESHED)");
  EXPECT_EQ(heals[0].at("coalescedSources").as_array().size(), 1u);
}

TEST_F(TriggersTest, AuthEventWithinFiveSecondsOfAHealRequestsNothing) {
  triggers.request({"Test", "explicit", ReconnectPriority::low});
  clock.advance(seconds(1));  // heal at 1 s
  ASSERT_EQ(heals.size(), 1u);
  clock.advance(seconds(3));
  auth.sign_in(session());  // delay ends 5 s after the heal: not "more than 5 s"
  clock.advance(seconds(1));
  EXPECT_EQ(reconnect.state().pending_intents, 0u);
  clock.advance(milliseconds(1));
  auth.sign_in(session("t2"));  // ends 5.001 s + 1 s after the heal
  clock.advance(seconds(1));
  EXPECT_EQ(reconnect.state().pending_intents, 1u);
}

TEST_F(TriggersTest, SignOutCancelsThePendingAuthRequest) {
  auth.sign_in(session());
  auth.sign_out();
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::SignedInDelay));
  clock.advance(seconds(5));
  EXPECT_TRUE(heals.empty());
}

TEST_F(TriggersTest, SocketReconnectRequestsAMediumHeal) {
  triggers.on_socket_reconnected("attempt 3");
  clock.advance(seconds(1));
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heals[0].at("source").as_string(), "RealtimeSocket");
  EXPECT_EQ(heals[0].at("reason").as_string(), "socket reconnected after a drop (attempt 3)");
  EXPECT_EQ(heals[0].at("priority").as_string(), "medium");
}

TEST_F(TriggersTest, DegradedForThirtySecondsWithAProjectRequestsAndRepeats) {
  project.set("p1");  // status starts disconnected: degraded from now
  EXPECT_EQ(triggers.degraded_since(), clock.now());
  freshness.on_realtime_status_change(RealtimeStatus::error, "Subscription failed: CHANNEL_ERROR");
  clock.advance(milliseconds(29'999));
  EXPECT_EQ(reconnect.state().pending_intents, 0u);  // error after disconnected: same episode
  clock.advance(milliseconds(1));
  EXPECT_EQ(reconnect.state().pending_intents, 1u);
  clock.advance(seconds(1));
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heals[0].at("source").as_string(), "DegradedWatch");
  EXPECT_EQ(heals[0].at("reason").as_string(), "realtime=down for 30 s");
  clock.advance(seconds(29));  // 60 s: again
  EXPECT_EQ(reconnect.state().pending_intents, 1u);
  clock.advance(seconds(1));
  EXPECT_EQ(heals.size(), 2u);
}

TEST_F(TriggersTest, RecoveryOrNoProjectStopsTheWatch) {
  freshness.on_realtime_status_change(RealtimeStatus::error, "x");
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::DegradedWatch));  // no project selected
  project.set("p1");
  EXPECT_TRUE(clock.pending(rtsync::client::sync::timers::DegradedWatch));
  clock.advance(seconds(20));
  freshness.on_realtime_status_change(RealtimeStatus::connected, "ok");
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::DegradedWatch));
  EXPECT_FALSE(triggers.degraded_since().has_value());
  freshness.on_realtime_status_change(RealtimeStatus::error, "y");  // a new episode: full 30 s
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::DegradedWatch), seconds(30));
  project.set(std::nullopt);
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::DegradedWatch));
  clock.advance(seconds(100));
  EXPECT_TRUE(heals.empty());
}

TEST_F(TriggersTest, DestroyLeavesNoTimers) {
  {
    ReconnectTriggers local(clock, reconnect, auth, freshness, project);
    project.set("p1");
    auth.sign_in(session());
    EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::DegradedWatch),
              2u);  // the fixture's and local's
    EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::SignedInDelay), 2u);
  }
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::DegradedWatch), 1u);
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::SignedInDelay), 1u);
  // Its subscriptions went too: a later change arms nothing for it.
  project.set(std::nullopt);
  project.set("p2");
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::DegradedWatch), 1u);
}

}  // namespace
}  // namespace rtsync::client::sync
