#include "rtsync/client/sync/smart_polling.hpp"

#include <gtest/gtest.h>

#include "query_helpers.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync::testing {
namespace {

using core::ManualScheduler;
using core::TimerId;
using query::QueryKey;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const FreshnessTracker::Key kTasks{"tasks"};
const QueryKey kPaginated{"tasks", "paginated", "p1", 1, 50, "Queued"};
const QueryKey kCounts{"task-status-counts", "p1"};

struct SmartPollingTest : ::testing::Test {
  ManualScheduler clock;
  FreshnessTracker tracker{clock};
  SmartPolling polling{tracker};
  query::QueryClient cache{clock};
  FetchLog fetches{clock};

  std::unique_ptr<SmartQuery> observe(const QueryKey& key) {
    query::ObserverOptions o;
    o.key = key;
    o.query.query_fn = fetches.fn();
    o.refetch_interval_in_background = true;
    return polling.observe(cache, std::move(o));
  }
  // The interval the observer really uses.
  static std::optional<core::Duration> interval_of(const SmartQuery& q) {
    return q.observer().options().refetch_interval.resolve(*q.observer().query());
  }
  static core::Duration stale_of(const SmartQuery& q) {
    return q.observer().options().stale_time.value_or(query::StaleTime{}).duration;
  }
};

TEST_F(SmartPollingTest, ConfigFollowsTheTrackerRows) {
  EXPECT_EQ(polling.config(kPaginated.elements()), (PollingConfig{seconds(5), seconds(0)}));
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  EXPECT_EQ(polling.config(kPaginated.elements()), (PollingConfig{seconds(30), seconds(0)}));
  tracker.on_realtime_event("UPDATE", {kTasks});
  EXPECT_EQ(polling.config(kPaginated.elements()), (PollingConfig{seconds(30), seconds(30)}));
  clock.advance(milliseconds(29'999));
  EXPECT_EQ(polling.config(kPaginated.elements()), (PollingConfig{seconds(30), seconds(30)}));
  clock.advance(milliseconds(1));
  EXPECT_EQ(polling.config(kPaginated.elements()), (PollingConfig{seconds(15), seconds(0)}));
  clock.advance(seconds(90));
  EXPECT_EQ(polling.config(kPaginated.elements()), (PollingConfig{seconds(10), seconds(0)}));
}

TEST_F(SmartPollingTest, IntervalIsClampedToTheConfiguredBounds) {
  SmartPolling narrow(tracker, SmartPollingOptions{seconds(20), seconds(25), seconds(30)});
  EXPECT_EQ(narrow.config(kPaginated.elements()).refetch_interval, seconds(20));  // 5 s → 20 s
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  EXPECT_EQ(narrow.config(kPaginated.elements()).refetch_interval, seconds(25));  // 30 s → 25 s
  // The defaults never bind: the tracker's answers all lie in [5 s, 5 min].
  EXPECT_EQ(polling.config(kPaginated.elements()).refetch_interval, seconds(30));
}

TEST_F(SmartPollingTest, ObserversStartWithTheConfigAndPollAtIt) {
  auto q = observe(kPaginated);
  EXPECT_EQ(interval_of(*q), seconds(5));
  EXPECT_EQ(stale_of(*q), seconds(0));
  auto sub = q->observer().subscribe([](const query::QueryResult&) {});
  clock.run_ready();
  EXPECT_EQ(fetches.count(kPaginated), 1u);  // mount
  clock.advance(milliseconds(4'999));
  EXPECT_EQ(fetches.count(kPaginated), 1u);
  clock.advance(milliseconds(1));
  EXPECT_EQ(fetches.count(kPaginated), 2u);  // 5 s poll while disconnected
}

TEST_F(SmartPollingTest, ObserversFollowStatusAndEventAgeWithoutPolling) {
  auto tasks = observe(kPaginated);
  auto counts = observe(kCounts);
  auto s1 = tasks->observer().subscribe([](const query::QueryResult&) {});
  auto s2 = counts->observer().subscribe([](const query::QueryResult&) {});
  clock.run_ready();

  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  EXPECT_EQ(interval_of(*tasks), seconds(30));  // grace
  EXPECT_EQ(interval_of(*counts), seconds(30));
  clock.advance(seconds(10));
  tracker.on_realtime_event("UPDATE", {kTasks});  // only the tasks family
  EXPECT_EQ(interval_of(*tasks), seconds(30));
  EXPECT_EQ(stale_of(*tasks), seconds(30));
  EXPECT_EQ(stale_of(*counts), seconds(0));
  clock.advance(seconds(20));  // t=30: grace over; counts has no event → 10 s
  EXPECT_EQ(interval_of(*counts), seconds(10));
  EXPECT_EQ(interval_of(*tasks), seconds(30));
  clock.advance(milliseconds(9'999));  // event 29.999 s old
  EXPECT_EQ(interval_of(*tasks), seconds(30));
  clock.advance(milliseconds(1));  // exactly 30 s: row 2
  EXPECT_EQ(interval_of(*tasks), seconds(15));
  EXPECT_EQ(stale_of(*tasks), seconds(0));
  clock.advance(seconds(90));  // 2 min: row 5
  EXPECT_EQ(interval_of(*tasks), seconds(10));
  tracker.on_realtime_status_change(RealtimeStatus::error, "Subscription failed: CHANNEL_ERROR");
  EXPECT_EQ(interval_of(*tasks), seconds(5));
  EXPECT_EQ(interval_of(*counts), seconds(5));
  EXPECT_EQ(tasks->updates(), 5u);  // 30 (grace), stale 30 (event), 15 + stale 0, 10, 5
}

TEST_F(SmartPollingTest, RealPollingCadenceChangesWithTheInterval) {
  auto q = observe(kPaginated);
  auto sub = q->observer().subscribe([](const query::QueryResult&) {});
  clock.run_ready();
  fetches.clear();
  clock.advance(seconds(10));  // disconnected: 5 s → 2 polls
  EXPECT_EQ(fetches.count(kPaginated), 2u);
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");  // 30 s from now
  fetches.clear();
  clock.advance(milliseconds(29'999));
  EXPECT_EQ(fetches.count(kPaginated), 0u);
  // At 30 s the grace ends first (its boundary was armed before the 30 s tick), so the observer
  // moves to 10 s from that instant: the next poll is at 40 s.
  clock.advance(milliseconds(1));
  EXPECT_EQ(interval_of(*q), seconds(10));
  EXPECT_EQ(fetches.count(kPaginated), 0u);
  clock.advance(milliseconds(9'999));
  EXPECT_EQ(fetches.count(kPaginated), 0u);
  clock.advance(milliseconds(1));
  EXPECT_EQ(fetches.count(kPaginated), 1u);
}

TEST_F(SmartPollingTest, BurstOfEventsDoesNoWorkAfterTheFirst) {
  std::vector<std::unique_ptr<SmartQuery>> qs;
  for (int i = 0; i < 60; ++i)
    qs.push_back(observe(QueryKey{"tasks", "paginated", "p1", i}));
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  tracker.on_realtime_event("UPDATE", {kTasks});
  const auto recomputes = polling.recomputes();
  for (int i = 0; i < 1000; ++i) {
    clock.advance(milliseconds(1));
    tracker.on_realtime_event("UPDATE", {kTasks});
  }
  EXPECT_EQ(polling.recomputes(), recomputes);
  for (const auto& q : qs)
    EXPECT_EQ(interval_of(*q), seconds(30));
}

TEST_F(SmartPollingTest, LogsChangesAndReportsDiagnostics) {
  log::Capture capture;
  auto q = observe(kPaginated);
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  EXPECT_TRUE(capture.contains(
      R"([SmartPolling] ["tasks","paginated","p1",1,50,"Queued"] refetchInterval 5000 → 30000 ms)"));
  const auto d = polling.diagnostics();
  EXPECT_EQ(d.at("observers").as_uint64(), 1u);
  EXPECT_EQ(d.at("queries").as_array()[0].at("refetchIntervalMs").as_int64(), 30'000);
}

TEST_F(SmartPollingTest, DroppedHandlesStopFollowingAndMayOutliveSmartPolling) {
  auto q = observe(kPaginated);
  q.reset();
  EXPECT_EQ(polling.observers(), 0u);
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");  // nothing to update
  std::unique_ptr<SmartQuery> survivor;
  {
    SmartPolling local(tracker);
    query::ObserverOptions o;
    o.key = kCounts;
    o.query.query_fn = fetches.fn();
    survivor = local.observe(cache, std::move(o));
  }
  tracker.on_realtime_status_change(RealtimeStatus::error, "x");
  EXPECT_EQ(interval_of(*survivor), seconds(30));  // kept its last config
  survivor.reset();
}

TEST_F(SmartPollingTest, LookupKeyMayDifferFromTheQueryKey) {
  query::ObserverOptions o;
  o.key = QueryKey{"unified-generations", "project", "p1"};
  o.query.query_fn = fetches.fn();
  auto q = polling.observe(cache, std::move(o), FreshnessTracker::Key{"tasks", "paginated", "p1"});
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  tracker.on_realtime_event("UPDATE", {kTasks});
  EXPECT_EQ(stale_of(*q), seconds(30));
}

}  // namespace
}  // namespace rtsync::client::sync::testing
