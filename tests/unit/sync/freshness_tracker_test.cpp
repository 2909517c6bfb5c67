#include "rtsync/client/sync/freshness_tracker.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rtsync/client/query/key.hpp"
#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::client::sync {
namespace {

using core::ManualScheduler;
using core::TimerId;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Key = FreshnessTracker::Key;

const Key kTasks{"tasks"};
const Key kPaginatedP1{"tasks", "paginated", "p1"};
const Key kQueryP1{"tasks", "paginated", "p1", 1, 50, "Queued"};

struct Fixture : ::testing::Test {
  ManualScheduler clock;
  FreshnessTracker tracker{clock};
};

using FreshnessRows = Fixture;

TEST_F(FreshnessRows, StartsDisconnectedAndPollsEveryFiveSeconds) {
  EXPECT_EQ(tracker.status(), RealtimeStatus::disconnected);
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(5));
  EXPECT_FALSE(tracker.is_fresh(kQueryP1));
  EXPECT_FALSE(tracker.last_event(kQueryP1).has_value());
}

TEST_F(FreshnessRows, Row1RecentEventIsThirtySecondsUntilExactlyThirtySecondsOld) {
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  clock.advance(seconds(100));  // connect grace long over
  tracker.on_realtime_event("INSERT", {kTasks});
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(30));
  clock.advance(milliseconds(29'999));
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(30));
  clock.advance(milliseconds(1));  // exactly 30 000 ms old → row 2
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(15));
}

TEST_F(FreshnessRows, Row2AgingEventIsFifteenSecondsUntilExactlyTwoMinutesOld) {
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  clock.advance(seconds(100));
  tracker.on_realtime_event("UPDATE", {kTasks});
  clock.advance(milliseconds(119'999));
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(15));
  clock.advance(milliseconds(1));  // exactly 120 000 ms → row 5 (grace long over)
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(10));
}

TEST_F(FreshnessRows, Row3ConnectGraceEndsAtExactlyThirtySeconds) {
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(30));
  clock.advance(milliseconds(29'999));
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(30));
  clock.advance(milliseconds(1));
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(10));
}

TEST_F(FreshnessRows, Row2WinsOverTheGraceRow) {
  tracker.on_realtime_event("UPDATE", {kTasks});
  clock.advance(seconds(40));  // event 40 s old
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  // Grace would say 30 s, but row 2 comes first.
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(15));
  // A key with no event follows the grace row.
  EXPECT_EQ(tracker.polling_interval(Key{"shots", "p1"}), seconds(30));
}

TEST_F(FreshnessRows, Row4DisconnectedOrErrorIsFiveSecondsEvenWithFreshEvents) {
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  tracker.on_realtime_event("UPDATE", {kTasks});
  tracker.on_realtime_status_change(RealtimeStatus::error, "Subscription failed: CHANNEL_ERROR");
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(5));
  EXPECT_EQ(tracker.reason(), "Subscription failed: CHANNEL_ERROR");
  tracker.on_realtime_status_change(RealtimeStatus::disconnected, "Channel unsubscribed");
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(5));
  // Freshness itself does not depend on the status.
  EXPECT_TRUE(tracker.is_fresh(kQueryP1));
}

TEST_F(FreshnessRows, Row5ConnectedAndQuietIsTenSeconds) {
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  clock.advance(seconds(30));
  EXPECT_EQ(tracker.polling_interval(Key{"project-video-counts", "p1"}), seconds(10));
}

TEST_F(FreshnessRows, RepeatedStatusDoesNotRestartTheGraceNorNotify) {
  int notified = 0;
  auto sub = tracker.subscribe([&] { ++notified; });
  tracker.on_realtime_status_change(RealtimeStatus::connected, "first");
  EXPECT_EQ(notified, 1);
  const auto changed_at = tracker.last_status_change();
  clock.advance(seconds(20));
  tracker.on_realtime_status_change(RealtimeStatus::connected, "second");
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(tracker.last_status_change(), changed_at);
  EXPECT_EQ(tracker.reason(), "first");
  clock.advance(seconds(10));  // 30 s after the first report: grace is over
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(10));
}

TEST_F(FreshnessRows, RestateReplacesTheReasonOfTheSameStatusWithoutANewTime) {
  int notified = 0;
  auto sub = tracker.subscribe([&] { ++notified; });
  tracker.on_realtime_status_change(RealtimeStatus::error, "No valid session");
  const auto changed_at = tracker.last_status_change();
  const auto revision = tracker.revision();
  clock.advance(seconds(3));
  tracker.restate_status(RealtimeStatus::error, "Reconnect attempts exhausted");
  EXPECT_EQ(tracker.reason(), "Reconnect attempts exhausted");
  EXPECT_EQ(tracker.last_status_change(), changed_at);
  EXPECT_EQ(tracker.revision(), revision);  // no polling answer changed
  EXPECT_EQ(notified, 2);
  tracker.restate_status(RealtimeStatus::error, "Reconnect attempts exhausted");
  EXPECT_EQ(notified, 2);                                     // nothing new
  tracker.restate_status(RealtimeStatus::connected, "back");  // another status: a change
  EXPECT_EQ(tracker.status(), RealtimeStatus::connected);
  EXPECT_EQ(tracker.reason(), "back");
  EXPECT_EQ(tracker.last_status_change(), clock.now());
  EXPECT_EQ(notified, 3);
}

TEST_F(FreshnessRows, IsFreshIsStrictAtItsThreshold) {
  tracker.on_realtime_event("UPDATE", {kTasks});
  clock.advance(milliseconds(29'999));
  EXPECT_TRUE(tracker.is_fresh(kQueryP1));
  clock.advance(milliseconds(1));
  EXPECT_FALSE(tracker.is_fresh(kQueryP1));
  EXPECT_TRUE(tracker.is_fresh(kQueryP1, seconds(31)));
  EXPECT_FALSE(tracker.is_fresh(Key{"shots"}, seconds(31)));
}

using FreshnessFamilies = Fixture;

TEST_F(FreshnessFamilies, LookupUsesTheLongestRecordedPrefix) {
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  clock.advance(seconds(200));
  tracker.on_realtime_event("UPDATE", {kPaginatedP1});  // p1's paginated family at t=200
  clock.advance(seconds(100));
  // An event for another project touches ['tasks'] and p2's family, not p1's.
  tracker.on_realtime_event("UPDATE", {kTasks, Key{"tasks", "paginated", "p2"}});
  // p1's query: longest recorded prefix is ['tasks','paginated','p1'] (100 s old) → row 2.
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(15));
  // A task query without a recorded longer prefix finds ['tasks'] (0 s old) → row 1.
  EXPECT_EQ(tracker.polling_interval(Key{"tasks", "single", "t9"}), seconds(30));
  EXPECT_EQ(tracker.polling_interval(Key{"tasks", "paginated", "p2", 1, 50, "Queued"}),
            seconds(30));
  // The key itself counts as its own prefix.
  EXPECT_EQ(tracker.last_event(kPaginatedP1), clock.now() - seconds(100));
  // Unrelated families and shorter keys find nothing.
  EXPECT_FALSE(tracker.last_event(Key{"shots", "p1"}).has_value());
  EXPECT_FALSE(tracker.last_event(Key{"tasks-x"}).has_value());
  EXPECT_FALSE(tracker.last_event(Key{}).has_value());
}

TEST_F(FreshnessFamilies, SeedsPaginatedTasksLookupFindsTheFamilyEvent) {
  tracker.on_realtime_event("INSERT", {kTasks});
  EXPECT_TRUE(tracker.is_fresh(kQueryP1));
  EXPECT_TRUE(tracker.is_fresh(Key{"tasks", "paginated", "p1"}));
}

TEST_F(FreshnessFamilies, KeysCompareAsTanStackHashesThem) {
  tracker.on_realtime_event("UPDATE", {Key{"x", json::object{{"b", 1}, {"a", 2}}, 1}});
  EXPECT_TRUE(tracker.is_fresh(Key{"x", json::object{{"a", 2}, {"b", 1}}, 1.0, "more"}));
  EXPECT_FALSE(tracker.is_fresh(Key{"x", json::object{{"a", 2}, {"b", 2}}, 1}));
  EXPECT_FALSE(tracker.is_fresh(Key{"x", json::object{{"a", 2}, {"b", 1}}, 2}));
}

TEST_F(FreshnessFamilies, PreparedLookupFollowsNewlyRecordedLongerPrefixesAndReset) {
  FreshnessTracker::Lookup lookup(kQueryP1);
  FreshnessTracker::KeySet tasks({kTasks});
  EXPECT_FALSE(tracker.last_event(lookup).has_value());
  tracker.on_realtime_event("UPDATE", tasks);
  const auto t_tasks = clock.now();
  EXPECT_EQ(tracker.last_event(lookup), t_tasks);
  clock.advance(seconds(1));
  tracker.on_realtime_event("UPDATE", {kPaginatedP1});
  EXPECT_EQ(tracker.last_event(lookup), clock.now());  // the longer prefix took over
  clock.advance(seconds(1));
  tracker.on_realtime_event("UPDATE", tasks);  // ['tasks'] newer, but shorter
  EXPECT_EQ(tracker.last_event(lookup), clock.now() - seconds(1));
  tracker.reset();
  EXPECT_FALSE(tracker.last_event(lookup).has_value());
  tracker.on_realtime_event("UPDATE", tasks);  // the KeySet re-resolves after reset
  EXPECT_EQ(tracker.last_event(lookup), clock.now());
}

TEST_F(FreshnessFamilies, PreparedKeysWorkAcrossTrackers) {
  FreshnessTracker other(clock);
  FreshnessTracker::KeySet keys({kTasks});
  FreshnessTracker::Lookup lookup(kQueryP1);
  tracker.on_realtime_event("UPDATE", keys);
  EXPECT_TRUE(tracker.is_fresh(lookup));
  EXPECT_FALSE(other.is_fresh(lookup));
  clock.advance(seconds(40));
  other.on_realtime_event("UPDATE", keys);
  EXPECT_TRUE(other.is_fresh(lookup));
  EXPECT_FALSE(tracker.is_fresh(lookup));
}

TEST_F(FreshnessFamilies, MarkQueriesFreshRecordsWithoutAnEvent) {
  int notified = 0;
  auto sub = tracker.subscribe([&] { ++notified; });
  tracker.mark_queries_fresh({Key{"shots", "p1"}});
  EXPECT_EQ(notified, 1);
  EXPECT_TRUE(tracker.is_fresh(Key{"shots", "p1", 8}));
}

using FreshnessNotifications = Fixture;

TEST_F(FreshnessNotifications, EveryChangeNotifies) {
  int notified = 0;
  auto sub = tracker.subscribe([&] { ++notified; });
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  tracker.on_realtime_event("UPDATE", {kTasks});
  tracker.on_realtime_event("UPDATE", {kTasks});  // only a time moved: still a change
  tracker.on_realtime_status_change(RealtimeStatus::error, "x");
  tracker.reset();
  tracker.reset();  // reset always notifies
  EXPECT_EQ(notified, 6);
  EXPECT_EQ(tracker.notifications(), 6u);
  EXPECT_EQ(tracker.subscriber_count(), 1u);
  sub.remove();
  tracker.on_realtime_event("UPDATE", {kTasks});
  EXPECT_EQ(notified, 6);
  EXPECT_EQ(tracker.subscriber_count(), 0u);
}

TEST_F(FreshnessNotifications, AgingNotifiesExactlyAtEachRowBoundary) {
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  clock.advance(seconds(100));
  int notified = 0;
  auto sub = tracker.subscribe([&] { ++notified; });
  tracker.on_realtime_event("UPDATE", {kTasks});
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::FreshnessAging), seconds(30));
  clock.advance(milliseconds(29'999));
  EXPECT_EQ(notified, 1);
  clock.advance(milliseconds(1));
  EXPECT_EQ(notified, 2);  // 30 s: row 1 → row 2
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(15));
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::FreshnessAging), seconds(90));
  clock.advance(milliseconds(89'999));
  EXPECT_EQ(notified, 2);
  clock.advance(milliseconds(1));
  EXPECT_EQ(notified, 3);  // 120 s: row 2 → row 5
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(10));
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::FreshnessAging));
}

TEST_F(FreshnessNotifications, GraceEndNotifiesAndARefreshedEventMovesTheBoundary) {
  int notified = 0;
  auto sub = tracker.subscribe([&] { ++notified; });
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");  // grace ends at 30 s
  clock.advance(seconds(10));
  tracker.on_realtime_event("UPDATE", {kTasks});  // boundary at 40 s
  clock.advance(seconds(10));
  tracker.on_realtime_event("UPDATE", {kTasks});  // boundary moves to 50 s
  EXPECT_EQ(notified, 3);
  clock.advance(seconds(10));  // t=30: grace ends (a key without events changes row)
  EXPECT_EQ(notified, 4);
  EXPECT_EQ(tracker.polling_interval(Key{"shots"}), seconds(10));
  clock.advance(seconds(10));  // t=40: the superseded boundary announces nothing
  EXPECT_EQ(notified, 4);
  clock.advance(milliseconds(9'999));
  EXPECT_EQ(notified, 4);
  clock.advance(milliseconds(1));  // t=50
  EXPECT_EQ(notified, 5);
}

TEST_F(FreshnessNotifications, ResetForgetsKeysAndCancelsAging) {
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  tracker.on_realtime_event("UPDATE", {kTasks});
  EXPECT_TRUE(clock.pending(rtsync::client::sync::timers::FreshnessAging));
  clock.advance(seconds(3));
  tracker.reset();
  EXPECT_EQ(tracker.status(), RealtimeStatus::disconnected);
  EXPECT_EQ(tracker.last_status_change(), clock.now());
  EXPECT_FALSE(tracker.is_fresh(kTasks));
  EXPECT_EQ(clock.pending_count(), 0u);
}

TEST_F(FreshnessNotifications, SubscriberMayRemoveItselfAndAThrowingOneIsContained) {
  log::Capture capture;
  int a = 0;
  int c = 0;
  core::Subscription self;
  self = tracker.subscribe([&] {
    ++a;
    self.remove();
  });
  auto bad = tracker.subscribe([] { throw std::runtime_error("boom"); });
  auto good = tracker.subscribe([&] { ++c; });
  tracker.on_realtime_event("UPDATE", {kTasks});
  tracker.on_realtime_event("UPDATE", {kTasks});
  EXPECT_EQ(a, 1);
  EXPECT_EQ(c, 2);
  EXPECT_TRUE(capture.contains("[DataFreshness] listener threw: boom"));
}

TEST_F(FreshnessNotifications, DestroyingTheTrackerLeavesNoTimers) {
  {
    FreshnessTracker local(clock);
    local.on_realtime_status_change(RealtimeStatus::connected, "ok");
    local.on_realtime_event("UPDATE", {kTasks});
    EXPECT_GT(clock.pending_count(), 0u);
  }
  EXPECT_EQ(clock.pending_count(), 0u);
}

TEST_F(FreshnessNotifications, StatusChangesAreLogged) {
  log::Capture capture;
  tracker.on_realtime_status_change(RealtimeStatus::error, "No valid session");
  EXPECT_TRUE(
      capture.contains("[DataFreshness] realtime status disconnected -> error: No valid session"));
}

TEST_F(FreshnessNotifications, RevisionMovesOnlyWhenAnAnswerMayChange) {
  auto r = tracker.revision();
  tracker.on_realtime_status_change(RealtimeStatus::connected, "ok");
  EXPECT_GT(tracker.revision(), r);
  r = tracker.revision();
  tracker.on_realtime_event("UPDATE", {kTasks});  // new key
  EXPECT_GT(tracker.revision(), r);
  r = tracker.revision();
  clock.advance(milliseconds(29'999));
  tracker.on_realtime_event("UPDATE", {kTasks});  // refresh of a recent key: no answer changes
  EXPECT_EQ(tracker.revision(), r);
  EXPECT_EQ(tracker.polling_interval(kQueryP1), seconds(30));
  clock.advance(seconds(30));  // the aging boundary
  EXPECT_GT(tracker.revision(), r);
  r = tracker.revision();
  tracker.on_realtime_event("UPDATE", {kTasks});  // 30 s old: row 2 → row 1
  EXPECT_GT(tracker.revision(), r);
  r = tracker.revision();
  tracker.on_realtime_status_change(RealtimeStatus::connected, "again");  // repeated
  EXPECT_EQ(tracker.revision(), r);
  tracker.reset();
  EXPECT_GT(tracker.revision(), r);
}

TEST(FreshnessDiagnostics, ReportsStatusAgesAndSubscribers) {
  ManualScheduler clock;
  FreshnessTracker tracker(clock);
  tracker.on_realtime_status_change(RealtimeStatus::connected, "Supabase subscription successful");
  clock.advance(milliseconds(1'500));
  tracker.on_realtime_event("UPDATE", {kTasks, Key{"tasks", "paginated", "p1"}});
  clock.advance(milliseconds(2'600));
  auto sub = tracker.subscribe([] {});
  const auto d = tracker.diagnostics();
  EXPECT_EQ(d.at("realtimeStatus").as_string(), "connected");
  EXPECT_EQ(d.at("statusReason").as_string(), "Supabase subscription successful");
  EXPECT_EQ(d.at("timeSinceStatusChange").as_int64(), 4'100);
  EXPECT_EQ(d.at("trackedQueries").as_uint64(), 2u);
  EXPECT_EQ(d.at("subscriberCount").as_uint64(), 1u);
  EXPECT_EQ(d.at("timestamp").as_int64(), clock.wall_ms());
  const auto& ages = d.at("queryAges").as_array();
  ASSERT_EQ(ages.size(), 2u);
  // Sorted by the key's canonical text.
  EXPECT_EQ(ages[0].at("query").as_string(), R"(["tasks","paginated","p1"])");
  EXPECT_EQ(ages[1].at("query").as_string(), R"(["tasks"])");
  EXPECT_EQ(ages[1].at("ageMs").as_int64(), 2'600);
  EXPECT_EQ(ages[1].at("ageSec").as_int64(), 3);
}

TEST(FreshnessKeys, TrackedKeysAreNamedByTheQueryCachesHash) {
  core::ManualScheduler clock;
  FreshnessTracker tracker(clock);
  const FreshnessTracker::Key recorded{"unified-generations", json::object{{"b", 1}, {"a", 0.5}},
                                       2.0};
  tracker.on_realtime_event("UPDATE", {recorded});
  const auto hash = query::QueryKey(recorded).hash();
  EXPECT_EQ(hash, R"(["unified-generations",{"a":0.5,"b":1},2])");
  const auto d = tracker.diagnostics();
  ASSERT_EQ(d.at("queryAges").as_array().size(), 1u);
  EXPECT_EQ(d.at("queryAges").as_array()[0].at("query").as_string(), hash);
  // Lookups hash the same way: other member order and 2 for 2.0 name the same family.
  const FreshnessTracker::Lookup lookup(FreshnessTracker::Key{
      "unified-generations", json::object{{"a", 0.5}, {"b", 1}}, 2, "page", 1});
  EXPECT_EQ(lookup.text(), R"(["unified-generations",{"a":0.5,"b":1},2,"page",1])");
  EXPECT_TRUE(tracker.is_fresh(lookup));
  EXPECT_FALSE(tracker.is_fresh(FreshnessTracker::Key{"unified-generations", json::object{}, 2}));
}

// Loop-confined, checked in debug builds: reads from another thread are reported as well as
// changes (here to a recording handler; by default they abort).
TEST_F(Fixture, CallsOffTheLoopThreadAreCaughtInDebugBuilds) {
  if (!core::kLoopChecks) GTEST_SKIP() << "loop checks are compiled out (NDEBUG)";
  std::vector<std::string> violations;
  auto previous = core::set_loop_violation_handler(
      [&](std::string_view method) { violations.emplace_back(method); });
  std::thread other([&] {
    (void)tracker.status();
    (void)tracker.revision();
    (void)tracker.polling_interval(FreshnessTracker::Lookup(kTasks));
    tracker.on_realtime_status_change(RealtimeStatus::connected);
  });
  other.join();
  (void)tracker.status();  // the loop thread: not reported
  core::set_loop_violation_handler(std::move(previous));
  EXPECT_EQ(violations, (std::vector<std::string>{"status", "revision", "polling_interval",
                                                  "on_realtime_status_change"}));
}

}  // namespace
}  // namespace rtsync::client::sync
