#include "rtsync/client/sync/reconnect_scheduler.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::client::sync {
namespace {

using core::ManualScheduler;
using core::TimerId;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct ReconnectSchedulerTest : ::testing::Test {
  ManualScheduler clock;
  core::EventBus bus;
  ReconnectScheduler scheduler{clock, bus};
  std::vector<json::value> heals;
  std::vector<core::TimePoint> heal_times;
  core::Subscription sub = bus.subscribe(kAuthHealEvent, [this](const json::value& d) {
    heals.push_back(d);
    heal_times.push_back(clock.now());
  });
  core::TimePoint t0 = clock.now();

  static std::vector<std::string> strings(const json::value& arr) {
    std::vector<std::string> out;
    for (const auto& v : arr.as_array())
      out.emplace_back(v.as_string());
    return out;
  }
};

TEST_F(ReconnectSchedulerTest, TrailingDebounceFiresOneSecondAfterTheRequest) {
  scheduler.request_reconnect({"Test", "explicit", ReconnectPriority::medium});
  EXPECT_EQ(scheduler.state().pending_intents, 1u);
  clock.advance(milliseconds(999));
  EXPECT_TRUE(heals.empty());
  clock.advance(milliseconds(1));
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heals[0].at("source").as_string(), "Test");
  EXPECT_EQ(heals[0].at("reason").as_string(), "explicit");
  EXPECT_EQ(heals[0].at("priority").as_string(), "medium");
  EXPECT_EQ(heals[0].at("timestamp").as_int64(), clock.wall_ms());
  EXPECT_EQ(scheduler.state().pending_intents, 0u);
  EXPECT_EQ(scheduler.state().last_reconnect_at, clock.now());
  EXPECT_EQ(clock.pending_count(), 0u);
}

TEST_F(ReconnectSchedulerTest, CoalescesByPriorityThenAgeIntoOneHeal) {
  scheduler.request_reconnect({"low-src", "low reason", ReconnectPriority::low});
  clock.advance(milliseconds(500));
  scheduler.request_reconnect({"high-src", "high reason", ReconnectPriority::high});
  clock.advance(milliseconds(400));
  scheduler.request_reconnect({"medium-src", "medium reason", ReconnectPriority::medium});
  clock.advance(milliseconds(999));  // t = 1.899 s
  EXPECT_TRUE(heals.empty());
  clock.advance(milliseconds(1));  // t = 1.9 s
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heal_times[0] - t0, milliseconds(1'900));
  const auto& h = heals[0];
  EXPECT_EQ(h.at("source").as_string(), "high-src");
  EXPECT_EQ(h.at("priority").as_string(), "high");
  EXPECT_EQ(strings(h.at("coalescedSources")),
            (std::vector<std::string>{"high-src", "medium-src", "low-src"}));
  EXPECT_EQ(strings(h.at("coalescedReasons")),
            (std::vector<std::string>{"high reason", "medium reason", "low reason"}));
  clock.advance(seconds(60));
  EXPECT_EQ(heals.size(), 1u);
}

TEST_F(ReconnectSchedulerTest, SamePriorityOrdersByAgeSourcesKeepDuplicatesReasonsDoNot) {
  scheduler.request_reconnect({"A", "r1", ReconnectPriority::medium});
  clock.advance(milliseconds(100));
  scheduler.request_reconnect({"B", "r2", ReconnectPriority::medium});
  clock.advance(milliseconds(100));
  scheduler.request_reconnect({"A", "r1", ReconnectPriority::medium});
  clock.advance(seconds(1));
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heals[0].at("source").as_string(), "A");
  EXPECT_EQ(strings(heals[0].at("coalescedSources")), (std::vector<std::string>{"A", "B", "A"}));
  EXPECT_EQ(strings(heals[0].at("coalescedReasons")), (std::vector<std::string>{"r1", "r2"}));
}

TEST_F(ReconnectSchedulerTest, AtLeastFiveSecondsBetweenHeals) {
  scheduler.request_reconnect({"A", "first", ReconnectPriority::low});
  clock.advance(seconds(1));  // heal #1 at t=1 s
  ASSERT_EQ(heals.size(), 1u);
  clock.advance(seconds(1));
  scheduler.request_reconnect({"B", "second", ReconnectPriority::low});  // t=2 s
  clock.advance(seconds(1));  // debounce ends at 3 s: throttled until 6 s
  EXPECT_EQ(heals.size(), 1u);
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::ReconnectDebounce), seconds(3));
  EXPECT_EQ(scheduler.state().pending_intents, 1u);
  clock.advance(milliseconds(2'999));
  EXPECT_EQ(heals.size(), 1u);
  clock.advance(milliseconds(1));  // exactly 5 s after heal #1
  ASSERT_EQ(heals.size(), 2u);
  EXPECT_EQ(heal_times[1] - heal_times[0], seconds(5));
  EXPECT_EQ(heals[1].at("source").as_string(), "B");
}

TEST_F(ReconnectSchedulerTest, RequestDuringThrottleWaitRestartsTheDebounce) {
  scheduler.request_reconnect({"A", "first", ReconnectPriority::low});
  clock.advance(seconds(1));  // heal #1 at 1 s
  scheduler.request_reconnect({"B", "second", ReconnectPriority::low});
  clock.advance(seconds(1));                                             // 2 s: throttled until 6 s
  clock.advance(milliseconds(3'500));                                    // 5.5 s
  scheduler.request_reconnect({"C", "third", ReconnectPriority::high});  // debounce → 6.5 s
  clock.advance(milliseconds(500));  // 6 s: the throttle wait was replaced
  EXPECT_EQ(heals.size(), 1u);
  clock.advance(milliseconds(499));
  EXPECT_EQ(heals.size(), 1u);
  clock.advance(milliseconds(1));  // 6.5 s
  ASSERT_EQ(heals.size(), 2u);
  EXPECT_EQ(heals[1].at("source").as_string(), "C");
  EXPECT_EQ(strings(heals[1].at("coalescedSources")), (std::vector<std::string>{"C", "B"}));
}

TEST_F(ReconnectSchedulerTest, StateAndDiagnostics) {
  auto s = scheduler.state();
  EXPECT_FALSE(s.last_reconnect_at.has_value());
  EXPECT_FALSE(s.time_since_last_reconnect.has_value());
  EXPECT_FALSE(s.is_processing);
  scheduler.request_reconnect({"A", "r", ReconnectPriority::high});
  clock.advance(seconds(1));
  clock.advance(milliseconds(2'500));
  s = scheduler.state();
  EXPECT_EQ(s.time_since_last_reconnect, milliseconds(2'500));
  scheduler.request_reconnect({"B", "q", ReconnectPriority::low});
  clock.advance(milliseconds(300));
  auto d = scheduler.diagnostics();
  EXPECT_EQ(d.at("pendingIntents").as_uint64(), 1u);
  EXPECT_EQ(d.at("lastReconnectAt").as_int64(), clock.wall_ms() - 2'800);
  EXPECT_EQ(d.at("timeSinceLastReconnect").as_int64(), 2'800);
  EXPECT_EQ(d.at("dispatched").as_uint64(), 1u);
  EXPECT_EQ(d.at("intents").as_array()[0].at("ageMs").as_int64(), 300);
}

TEST_F(ReconnectSchedulerTest, IsProcessingOnlyDuringDispatchAndReentrantRequestsQueue) {
  bool processing_seen = false;
  auto again = bus.subscribe(kAuthHealEvent, [&](const json::value&) {
    processing_seen = scheduler.state().is_processing;
    if (heals.size() == 1)
      scheduler.request_reconnect({"Handler", "again", ReconnectPriority::low});
  });
  scheduler.request_reconnect({"A", "r", ReconnectPriority::high});
  clock.advance(seconds(1));
  EXPECT_TRUE(processing_seen);
  EXPECT_FALSE(scheduler.state().is_processing);
  EXPECT_EQ(scheduler.state().pending_intents, 1u);
  clock.advance(seconds(5));  // throttled to 5 s after the first heal
  ASSERT_EQ(heals.size(), 2u);
  EXPECT_EQ(heals[1].at("source").as_string(), "Handler");
}

TEST_F(ReconnectSchedulerTest, ClearAndDestroyLeaveNothingBehind) {
  scheduler.request_reconnect({"A", "r", ReconnectPriority::high});
  scheduler.clear();
  EXPECT_EQ(clock.pending_count(), 0u);
  clock.advance(seconds(10));
  EXPECT_TRUE(heals.empty());
  {
    ReconnectScheduler local(clock, bus);
    local.request_reconnect({"A", "r", ReconnectPriority::high});
    EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::ReconnectDebounce), 1u);
  }
  EXPECT_EQ(clock.pending_count(), 0u);
  clock.advance(seconds(10));
  EXPECT_TRUE(heals.empty());
}

TEST_F(ReconnectSchedulerTest, LogsRequestsThrottlingAndDispatch) {
  log::Capture capture;
  scheduler.request_reconnect({"A", "why", ReconnectPriority::high});
  clock.advance(seconds(1));
  scheduler.request_reconnect({"B", "why", ReconnectPriority::high});
  clock.advance(seconds(1));
  EXPECT_TRUE(
      capture.contains("[ReconnectScheduler] reconnect requested by A (why, priority high)"));
  EXPECT_TRUE(capture.contains("[ReconnectScheduler] dispatching realtime:auth-heal from A"));
  EXPECT_TRUE(
      capture.contains("[ReconnectScheduler] throttled: last heal 1000 ms ago, waiting 4000 ms"));
}

}  // namespace
}  // namespace rtsync::client::sync
