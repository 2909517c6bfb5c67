#include "rtsync/core/manual_scheduler.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rtsync::core {
namespace {

using std::chrono::milliseconds;

// An id defined outside core, as upper layers define theirs.
constexpr TimerId kHeartbeat{"Heartbeat"};

TEST(ManualScheduler, NothingRunsUntilTimeAdvances) {
  ManualScheduler s;
  int ran = 0;
  auto t = s.schedule(milliseconds(100), TimerId::Test, [&] { ++ran; });
  EXPECT_EQ(ran, 0);
  EXPECT_TRUE(t.pending());
  s.advance(milliseconds(99));
  EXPECT_EQ(ran, 0);
  s.advance(milliseconds(1));  // exactly at the boundary
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(t.pending());
}

TEST(ManualScheduler, FiresInDueOrderThenInsertionOrder) {
  ManualScheduler s;
  std::vector<std::string> order;
  auto a = s.schedule(milliseconds(20), TimerId::Test, [&] { order.push_back("a@20"); });
  auto b = s.schedule(milliseconds(10), TimerId::Test, [&] { order.push_back("b@10"); });
  auto c = s.schedule(milliseconds(20), TimerId::Test, [&] { order.push_back("c@20"); });
  auto d = s.schedule(milliseconds(10), TimerId::Test, [&] { order.push_back("d@10"); });
  s.advance(milliseconds(50));
  EXPECT_EQ(order, (std::vector<std::string>{"b@10", "d@10", "a@20", "c@20"}));
}

TEST(ManualScheduler, CallbackSeesItsOwnDueTimeAndChainsWithinWindow) {
  ManualScheduler s;
  const auto start = s.now();
  std::vector<Duration> seen;
  Timer second;
  auto first = s.schedule(milliseconds(10), TimerId::Test, [&] {
    seen.push_back(s.now() - start);
    second = s.schedule(milliseconds(15), TimerId::Test, [&] { seen.push_back(s.now() - start); });
  });
  s.advance(milliseconds(30));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], milliseconds(10));
  EXPECT_EQ(seen[1], milliseconds(25));
  EXPECT_EQ(s.now() - start, milliseconds(30));
}

TEST(ManualScheduler, CancelledAndDestroyedTimersNeverFire) {
  ManualScheduler s;
  int ran = 0;
  auto t = s.schedule(milliseconds(5), TimerId::Test, [&] { ++ran; });
  t.cancel();
  t.cancel();  // idempotent
  {
    auto scoped = s.schedule(milliseconds(5), TimerId::Test, [&] { ++ran; });
  }
  s.advance(milliseconds(10));
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(s.pending_count(), 0u);
}

TEST(ManualScheduler, ReleasedTimerStillFires) {
  ManualScheduler s;
  int ran = 0;
  s.schedule(milliseconds(5), TimerId::Test, [&] { ++ran; }).release();
  s.advance(milliseconds(5));
  EXPECT_EQ(ran, 1);
}

TEST(ManualScheduler, CancelFromInsideAnEarlierCallback) {
  ManualScheduler s;
  int ran = 0;
  Timer later = s.schedule(milliseconds(10), TimerId::Test, [&] { ran += 10; });
  auto first = s.schedule(milliseconds(10), TimerId::Test, [&] {
    ++ran;
    later.cancel();
  });
  // `first` was inserted after `later`, so `later` fires first at the same instant.
  s.advance(milliseconds(10));
  EXPECT_EQ(ran, 11);

  Timer victim;
  auto killer = s.schedule(milliseconds(1), TimerId::Test, [&] { victim.cancel(); });
  victim = s.schedule(milliseconds(2), TimerId::Test, [&] { ran = -1; });
  s.advance(milliseconds(5));
  EXPECT_EQ(ran, 11);
}

TEST(ManualScheduler, RunUntilFiresEverythingBeforeAndTheTarget) {
  ManualScheduler s;
  const auto start = s.now();
  std::vector<std::string> order;
  auto a = s.schedule(milliseconds(5), TimerId::Test, [&] { order.push_back("test"); });
  auto b = s.schedule(milliseconds(25000), kHeartbeat, [&] { order.push_back("hb"); });
  auto c = s.schedule(milliseconds(30000), TimerId::Test, [&] { order.push_back("late"); });
  EXPECT_TRUE(s.pending(kHeartbeat));
  EXPECT_EQ(s.time_until(kHeartbeat), milliseconds(25000));
  EXPECT_TRUE(s.run_until(kHeartbeat));
  EXPECT_EQ(order, (std::vector<std::string>{"test", "hb"}));
  EXPECT_EQ(s.now() - start, milliseconds(25000));
  EXPECT_FALSE(s.pending(kHeartbeat));
  EXPECT_FALSE(s.run_until(kHeartbeat));
  EXPECT_EQ(s.now() - start, milliseconds(25000));
}

TEST(ManualScheduler, PostedWorkRunsOnRunReadyInOrder) {
  ManualScheduler s;
  std::vector<int> order;
  s.post([&] { order.push_back(1); });
  s.post([&] {
    order.push_back(2);
    s.post([&] { order.push_back(3); });
  });
  EXPECT_TRUE(order.empty());
  s.run_ready();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(ManualScheduler, WallClockMovesWithVirtualTime) {
  ManualScheduler s;
  const auto w0 = s.wall_ms();
  s.advance(milliseconds(1500));
  EXPECT_EQ(s.wall_ms() - w0, 1500);
  EXPECT_EQ(format_iso8601(WallTime{milliseconds(1763511760877)}), "2025-11-19T00:22:40.877Z");
}

TEST(ManualScheduler, RunAllStopsAtLimitForSelfReschedulingTimers) {
  ManualScheduler s;
  Timer t;
  std::function<void()> tick = [&] { t = s.schedule(milliseconds(1), TimerId::Test, tick); };
  tick();
  EXPECT_EQ(s.run_all(50), 50u);
  EXPECT_TRUE(t.pending());
}

TEST(ManualScheduler, NegativeDelayRunsNow) {
  ManualScheduler s;
  const auto start = s.now();
  TimePoint at{};
  auto t = s.schedule(-milliseconds(5), TimerId::Test, [&] { at = s.now(); });
  s.run_ready();
  EXPECT_EQ(at, start);
}

}  // namespace
}  // namespace rtsync::core
