// invalidate_queries / refetch_queries (TanStack queryClient.test: invalidateQueries,
// refetchQueries), the seed's six-family invalidation, and burst coalescing.
#include <gtest/gtest.h>

#include "fake_fetcher.hpp"

#include "rtsync/client/query/names.hpp"

using namespace rtsync;
using namespace rtsync::client::query;
using namespace rtsync::client::query::test;
using core::TimerId;

namespace {

class InvalidateTest : public ::testing::Test {
 protected:
  core::ManualScheduler s;
  QueryClient client{s};
  AutoFetcher f;
  std::vector<std::unique_ptr<QueryObserver>> observers;
  std::vector<core::Subscription> subs;

  // An observed query (fetched on mount and settled).
  void active(QueryKey key, StaleTime stale = StaleTime(kInfinite), bool enabled = true) {
    ObserverOptions o;
    o.key = std::move(key);
    o.query.query_fn = f.fn();
    o.stale_time = stale;
    o.enabled = enabled;
    observers.push_back(std::make_unique<QueryObserver>(client, o));
    subs.push_back(observers.back()->subscribe([](const QueryResult&) {}));
    s.run_ready();
  }
  // A cached, fetched query nobody observes.
  void inactive(QueryKey key) {
    FetchQueryOptions o;
    o.key = std::move(key);
    o.query.query_fn = f.fn();
    client.prefetch_query(o);
    s.run_ready();
  }
  InvalidateFilters family(QueryKey key, std::optional<RefetchType> refetch = std::nullopt) {
    InvalidateFilters i;
    i.query_key = std::move(key);
    i.refetch_type = refetch;
    return i;
  }
  QueryFilters keyed(QueryKey key) {
    QueryFilters f;
    f.query_key = std::move(key);
    return f;
  }
  bool invalidated(const QueryKey& k) { return client.get_query(k)->state().is_invalidated; }
};

}  // namespace

TEST_F(InvalidateTest, ActiveQueriesRefetchAtOnceWhateverTheirStaleTime) {
  const QueryKey a{"tasks", "paginated", "p1", 1};
  const QueryKey b{"tasks", "single", "t1"};
  active(a, StaleTime(kInfinite));
  inactive(b);
  ASSERT_EQ(f.count(a), 1u);
  ASSERT_EQ(f.count(b), 1u);
  auto r = client.invalidate_queries(family({"tasks"}));
  EXPECT_EQ(r.matched, 2u);
  EXPECT_EQ(r.refetched, 1u);
  EXPECT_EQ(f.count(a), 2u) << "active: refetched immediately";
  EXPECT_EQ(f.count(b), 1u) << "inactive: only marked";
  EXPECT_TRUE(invalidated(a));
  EXPECT_TRUE(invalidated(b));
  s.run_ready();
  EXPECT_FALSE(invalidated(a)) << "a successful fetch clears the mark";
  EXPECT_TRUE(invalidated(b));

  // The inactive one refetches when next observed, even with a long stale time: invalidated means
  // stale.
  active(b, StaleTime(std::chrono::hours(1)));
  EXPECT_EQ(f.count(b), 2u);
}

TEST_F(InvalidateTest, RefetchTypes) {
  const QueryKey a{"t", "active"};
  const QueryKey b{"t", "inactive"};
  active(a);
  inactive(b);
  client.invalidate_queries(family({"t"}, RefetchType::none));
  EXPECT_EQ(f.count(a), 1u);
  EXPECT_EQ(f.count(b), 1u);
  EXPECT_TRUE(invalidated(a));
  EXPECT_TRUE(invalidated(b));
  client.invalidate_queries(family({"t"}, RefetchType::active));
  EXPECT_EQ(f.count(a), 2u);
  EXPECT_EQ(f.count(b), 1u);
  s.run_ready();
  client.invalidate_queries(family({"t"}, RefetchType::inactive));
  EXPECT_EQ(f.count(a), 2u);
  EXPECT_EQ(f.count(b), 2u);
  s.run_ready();
  client.invalidate_queries(family({"t"}, RefetchType::all));
  EXPECT_EQ(f.count(a), 3u);
  EXPECT_EQ(f.count(b), 3u);
  s.run_ready();
  // `type` given and no refetch_type: refetch that type.
  InvalidateFilters typed;
  typed.query_key = QueryKey{"t"};
  typed.type = QueryType::inactive;
  auto r = client.invalidate_queries(typed);
  EXPECT_EQ(r.matched, 1u);
  EXPECT_EQ(f.count(a), 3u);
  EXPECT_EQ(f.count(b), 4u);
}

TEST_F(InvalidateTest, DisabledQueriesAreNeverRefetched) {
  const QueryKey off{"t", "disabled"};
  active(off, StaleTime(0ms), /*enabled=*/false);
  EXPECT_EQ(f.count(off), 0u);
  // A query created by a disabled observer that then went away: never fetched, so disabled too.
  const QueryKey gone{"t", "gone"};
  active(gone, StaleTime(0ms), false);
  observers.pop_back();
  client.invalidate_queries(family({"t"}, RefetchType::all));
  client.refetch_queries(keyed({"t"}));
  s.run_ready();
  EXPECT_EQ(f.count(off), 0u);
  EXPECT_EQ(f.count(gone), 0u);
  EXPECT_TRUE(invalidated(off));
}

TEST_F(InvalidateTest, StaticQueriesAreNotRefetched) {
  const QueryKey k{"t", "static"};
  active(k, StaleTime::static_());
  ASSERT_EQ(f.count(k), 1u);
  client.invalidate_queries(family({"t"}));
  client.refetch_queries(keyed({"t"}));
  EXPECT_EQ(f.count(k), 1u);
}

TEST_F(InvalidateTest, SettledCallbackAfterEveryRefetch) {
  active(QueryKey{"x", 1});
  active(QueryKey{"x", 2});
  int settled = 0;
  client.invalidate_queries(family({"x"}), {}, [&] { ++settled; });
  EXPECT_EQ(settled, 0);
  s.run_ready();
  EXPECT_EQ(settled, 1);
  client.invalidate_queries(family({"nothing"}), {}, [&] { ++settled; });
  EXPECT_EQ(settled, 1) << "delivered on the loop even with nothing to wait for";
  s.run_ready();
  EXPECT_EQ(settled, 2);
}

TEST_F(InvalidateTest, SixFamilyInvalidationOfTheSeed) {
  const std::vector<QueryKey> actives = {
      {"tasks", "paginated", "p1", 1, 50, nullptr},
      {"tasks", "single", "t1"},
      {"tasks", "p1", "Queued"},
      {"task-status-counts", "p1"},
      {"unified-generations", "project", "p1", 1, 24, json::object{{"starred", false}}},
      {"unified-generations", "shot", "s1"},
      {"shots", "p1", 8},
      {"unpositioned-count", "s1"},
      {"project-video-counts", "p1"},
  };
  const std::vector<QueryKey> inactives = {{"tasks", "paginated", "p1", 2, 50, nullptr},
                                           {"shots", "p2", 8}};
  const QueryKey unrelated{"projects", "list"};
  for (const auto& k : actives)
    active(k);
  for (const auto& k : inactives)
    inactive(k);
  active(unrelated);
  // The provider's handler: six separate calls with default options.
  for (const char* fam : {"tasks", "task-status-counts", "unified-generations", "shots",
                          "unpositioned-count", "project-video-counts"}) {
    client.invalidate_queries(family(QueryKey{fam}));
  }
  s.run_ready();
  for (const auto& k : actives)
    EXPECT_EQ(f.count(k), 2u) << k.hash() << ": exactly once more";
  for (const auto& k : inactives) {
    EXPECT_EQ(f.count(k), 1u) << k.hash();
    EXPECT_TRUE(invalidated(k)) << k.hash();
  }
  EXPECT_EQ(f.count(unrelated), 1u);
  EXPECT_FALSE(invalidated(unrelated));
}

// ---- burst coalescing ---------------------------------------------------------------------------

TEST_F(InvalidateTest, CoalescingLeadingThenOneTrailingPerWindow) {
  const QueryKey k{"tasks", "p1"};
  active(k);
  ASSERT_EQ(f.count(k), 1u);
  const auto opts = InvalidateOptions::realtime();  // window: ClientConfig default, 100 ms
  auto r = client.invalidate_queries(family({"tasks"}), opts);
  EXPECT_EQ(r.refetched, 1u);
  EXPECT_EQ(f.count(k), 2u) << "leading edge: at once";
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::InvalidationCoalesce), 100ms);
  s.advance(50ms);
  r = client.invalidate_queries(family({"tasks"}), opts);
  EXPECT_EQ(r.coalesced, 1u);
  EXPECT_EQ(r.refetched, 0u);
  EXPECT_TRUE(invalidated(k)) << "marking is never delayed";
  s.advance(49ms);
  client.invalidate_queries(family({"tasks"}), opts);
  EXPECT_EQ(f.count(k), 2u);
  s.advance(1ms);  // window end (t = 100): one trailing refetch
  EXPECT_EQ(f.count(k), 3u);
  EXPECT_EQ(client.stats().coalesced_refetches, 1u);
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::InvalidationCoalesce), 100ms)
      << "the trailing refetch opens a window";
  s.advance(50ms);
  client.invalidate_queries(family({"tasks"}), opts);  // t = 150: coalesced
  EXPECT_EQ(f.count(k), 3u);
  s.advance(50ms);  // t = 200
  EXPECT_EQ(f.count(k), 4u);
  s.advance(100ms);  // t = 300: nothing pending, the window closes
  EXPECT_EQ(f.count(k), 4u);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::InvalidationCoalesce));
  s.advance(50ms);
  client.invalidate_queries(family({"tasks"}), opts);  // t = 350: leading again
  EXPECT_EQ(f.count(k), 5u);
}

TEST_F(InvalidateTest, BurstOfAThousandInvalidationsInOneSecond) {
  const std::vector<QueryKey> keys = {{"tasks", "paginated", "p1", 1},
                                      {"tasks", "single", "t1"},
                                      {"task-status-counts", "p1"},
                                      {"shots", "p1"}};
  for (const auto& k : keys)
    active(k);
  const QueryKey idle{"tasks", "paginated", "p1", 2};
  inactive(idle);
  std::map<std::string, std::vector<core::TimePoint>> fetch_times;
  const auto t0 = s.now();
  f.fixed = json::value(1);
  auto sub = client.subscribe([&](const CacheEvent& e) {
    if (e.type == CacheEventType::updated && e.action == QueryAction::fetch) {
      fetch_times[e.query->hash()].push_back(s.now());
    }
  });
  const std::size_t before = f.calls;
  for (int i = 0; i < 1000; ++i) {
    for (const char* fam : {"tasks", "task-status-counts", "shots"}) {
      client.invalidate_queries(family(QueryKey{fam}), InvalidateOptions::realtime(100ms));
    }
    s.advance(1ms);
  }
  s.advance(1s);
  for (const auto& k : keys) {
    // Leading at 0, then one trailing refetch at each window end 100 … 1000 ms.
    EXPECT_EQ(f.count(k), 1u + 11u) << k.hash();
  }
  EXPECT_EQ(f.calls - before, keys.size() * 11u) << "never N per query";
  EXPECT_EQ(f.count(idle), 1u);
  EXPECT_TRUE(invalidated(idle));
  // At most 2 fetch starts in any 100 ms interval, for every query.
  for (auto& [hash, times] : fetch_times) {
    for (std::size_t i = 0; i + 2 < times.size(); ++i) {
      EXPECT_GE(times[i + 2] - times[i], 100ms) << hash;
    }
    EXPECT_EQ(times.front() - t0, 0ms);
    EXPECT_EQ(times.back() - t0, 1000ms) << "a refetch starts after the last event";
  }
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::InvalidationCoalesce));
}

TEST_F(InvalidateTest, WithoutCoalescingEveryInvalidationRefetches) {
  const QueryKey k{"tasks", "p1"};
  active(k);
  for (int i = 0; i < 50; ++i) {
    client.invalidate_queries(family({"tasks"}));
    s.advance(1ms);
  }
  EXPECT_EQ(f.count(k), 51u);
}

TEST_F(InvalidateTest, TrailingRefetchSkipsQueriesThatStoppedBeingRefetchable) {
  const QueryKey k{"tasks", "p1"};
  active(k);
  client.invalidate_queries(family({"tasks"}), InvalidateOptions::realtime());
  client.invalidate_queries(family({"tasks"}), InvalidateOptions::realtime());
  EXPECT_EQ(f.count(k), 2u);
  subs.clear();   // the query becomes inactive before the window ends
  s.run_ready();  // the leading refetch lands, clearing the mark …
  EXPECT_FALSE(invalidated(k));
  s.advance(100ms);
  EXPECT_EQ(f.count(k), 2u);
  // … but the coalesced event came after that refetch started: the skipped trailing refetch leaves
  // the query marked, so its next observer refetches it.
  EXPECT_TRUE(invalidated(k));
  active(k);
  EXPECT_EQ(f.count(k), 3u);
  client.remove_queries();
  s.advance(1s);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::InvalidationCoalesce));
}

// ---- repeated coalesced calls (the burst fast path)
// ----------------------------------------------

TEST_F(InvalidateTest, RepeatedCallsInsideAWindowChangeNothingUntilTheWindowEnds) {
  const QueryKey a{"tasks", "p1"};
  const QueryKey b{"tasks", "p2"};
  const QueryKey idle{"tasks", "p3"};
  active(a);
  active(b);
  inactive(idle);
  const auto opts = InvalidateOptions::realtime();
  auto r = client.invalidate_queries(family({"tasks"}), opts);
  EXPECT_EQ(r.matched, 3u);
  EXPECT_EQ(r.refetched, 2u);
  r = client.invalidate_queries(family({"tasks"}), opts);  // marks both trailing
  EXPECT_EQ(r.coalesced, 2u);
  EXPECT_EQ(client.stats().saturated_invalidations, 0u);
  for (int i = 0; i < 50; ++i) {
    r = client.invalidate_queries(family({"tasks"}), opts);
    EXPECT_EQ(r.matched, 3u);
    EXPECT_EQ(r.refetched, 0u);
    EXPECT_EQ(r.coalesced, 2u);
  }
  EXPECT_EQ(client.stats().saturated_invalidations, 50u);
  EXPECT_EQ(f.count(a), 2u);
  EXPECT_EQ(f.count(b), 2u);
  EXPECT_EQ(f.count(idle), 1u);
  // The leading refetches land and clear the marks: the next call marks again, at once.
  s.run_ready();
  EXPECT_FALSE(invalidated(a));
  r = client.invalidate_queries(family({"tasks"}), opts);
  EXPECT_TRUE(invalidated(a));
  EXPECT_TRUE(invalidated(b));
  EXPECT_EQ(r.coalesced, 2u);
  s.advance(99ms);
  EXPECT_EQ(f.count(a), 2u);
  s.advance(1ms);  // t = 100: one trailing refetch each
  EXPECT_EQ(f.count(a), 3u);
  EXPECT_EQ(f.count(b), 3u);
  EXPECT_EQ(f.count(idle), 1u);
  s.advance(100ms);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::InvalidationCoalesce));
}

TEST_F(InvalidateTest, AQueryJoiningOrLeavingTheFamilyMidWindowIsSeenByTheNextCall) {
  const QueryKey a{"tasks", "p1"};
  active(a);
  const auto opts = InvalidateOptions::realtime();
  // One filter object reused for every call, as the provider does.
  const auto tasks = family({"tasks"});
  for (int i = 0; i < 3; ++i)
    client.invalidate_queries(tasks, opts);
  ASSERT_EQ(client.stats().saturated_invalidations, 1u);
  const QueryKey b{"tasks", "p2"};
  active(b);  // mounts and fetches
  ASSERT_EQ(f.count(b), 1u);
  auto r = client.invalidate_queries(tasks, opts);
  EXPECT_EQ(r.matched, 2u);
  EXPECT_EQ(r.refetched, 1u) << "the newcomer has no window: refetched at once";
  EXPECT_EQ(r.coalesced, 1u);
  EXPECT_EQ(f.count(b), 2u);
  client.remove_queries(keyed(b));
  r = client.invalidate_queries(tasks, opts);
  EXPECT_EQ(r.matched, 1u);
  EXPECT_EQ(f.count(b), 2u);
  // A fresh filter object with the same key sees the same queries.
  r = client.invalidate_queries(family({"tasks"}), opts);
  EXPECT_EQ(r.matched, 1u);
  const QueryKey c{"tasks", "p3"};
  active(c);
  r = client.invalidate_queries(tasks, opts);
  EXPECT_EQ(r.matched, 2u);
  EXPECT_EQ(r.refetched, 1u);
}

TEST_F(InvalidateTest, AnObserverDisabledMidWindowStopsCountingAndItsTrailingRefetch) {
  const QueryKey a{"tasks", "p1"};
  active(a);
  const auto opts = InvalidateOptions::realtime();
  for (int i = 0; i < 3; ++i)
    client.invalidate_queries(family({"tasks"}), opts);
  observers.back()->set_enabled(false);
  s.run_ready();
  const auto r = client.invalidate_queries(family({"tasks"}), opts);
  EXPECT_EQ(r.matched, 1u);
  EXPECT_EQ(r.coalesced, 0u) << "disabled: not refetched, so not deferred either";
  s.advance(100ms);
  EXPECT_EQ(f.count(a), 2u);
  EXPECT_TRUE(invalidated(a));
}

TEST_F(InvalidateTest, ADifferentRefetchTypeIsNotAnsweredByTheFastPath) {
  const QueryKey a{"tasks", "p1"};
  const QueryKey idle{"tasks", "p3"};
  active(a);
  inactive(idle);
  const auto opts = InvalidateOptions::realtime();
  for (int i = 0; i < 3; ++i)
    client.invalidate_queries(family({"tasks"}), opts);
  ASSERT_EQ(f.count(idle), 1u);
  const auto r = client.invalidate_queries(family({"tasks"}, RefetchType::all), opts);
  EXPECT_EQ(r.refetched, 1u) << "the inactive query is refetched for `all`";
  EXPECT_EQ(r.coalesced, 1u);
  EXPECT_EQ(f.count(idle), 2u);
}
