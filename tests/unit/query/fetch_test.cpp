// Fetching: state machine, deduplication, cancelRefetch, retry, fetch_query, structural sharing,
// garbage collection, bad query functions (TanStack query.test, queryClient.test, retryer).
#include <gtest/gtest.h>

#include "fake_fetcher.hpp"
#include "rtsync/client/query/names.hpp"
#include "rtsync/core/log.hpp"

using namespace rtsync;
using namespace rtsync::client::query;
using namespace rtsync::client::query::test;
using core::TimerId;

namespace {

class FetchTest : public ::testing::Test {
 protected:
  core::ManualScheduler s;
  QueryClient client{s};
  ManualFetcher f{s};
  const QueryKey key{"tasks", "single", "t1"};

  FetchQueryOptions fetch_opts(std::optional<Retry> retry = std::nullopt) {
    FetchQueryOptions o;
    o.key = key;
    o.query.query_fn = f.fn();
    o.query.retry = std::move(retry);
    return o;
  }
  ObserverOptions observe(QueryKey k) {
    ObserverOptions o;
    o.key = std::move(k);
    o.query.query_fn = f.fn();
    return o;
  }
  const QueryState& state() { return client.get_query(key)->state(); }
};

}  // namespace

TEST_F(FetchTest, StateMachineOfAFetchAndABackgroundRefetch) {
  std::vector<Result<Data>> results;
  client.fetch_query(fetch_opts(), [&](const Result<Data>& r) { results.push_back(r); });
  ASSERT_EQ(f.count(), 1u);
  EXPECT_EQ(f.last().key, key);
  EXPECT_EQ(state().status, QueryStatus::pending);
  EXPECT_EQ(state().fetch_status, FetchStatus::fetching);
  EXPECT_FALSE(state().data);

  s.advance(250ms);
  f.resolve(J(R"({"id":"t1"})"));
  EXPECT_EQ(state().fetch_status, FetchStatus::fetching) << "a completion applies on the loop";
  s.run_ready();
  EXPECT_EQ(state().status, QueryStatus::success);
  EXPECT_EQ(state().fetch_status, FetchStatus::idle);
  EXPECT_EQ(state().data->dump(), R"({"id":"t1"})");
  EXPECT_EQ(state().data_updated_at, s.now());
  EXPECT_EQ(state().data_update_count, 1u);
  EXPECT_FALSE(state().is_invalidated);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_TRUE(results[0].ok());
  EXPECT_EQ(results[0].value().dump(), R"({"id":"t1"})");

  // Background refetch: status is kept while fetching.
  client.refetch_queries();
  EXPECT_EQ(state().status, QueryStatus::success);
  EXPECT_EQ(state().fetch_status, FetchStatus::fetching);
  f.resolve(J(R"({"id":"t1","v":2})"));
  s.run_ready();
  EXPECT_EQ(state().status, QueryStatus::success);
  EXPECT_EQ(state().fetch_status, FetchStatus::idle);
  EXPECT_EQ(state().data_update_count, 2u);
}

TEST_F(FetchTest, ErrorKeepsDataAndMarksInvalidated) {
  client.set_query_data(key, J(R"({"v":1})"));
  client.fetch_query(fetch_opts());
  f.reject("server down");
  s.run_ready();
  EXPECT_EQ(state().status, QueryStatus::error);
  EXPECT_EQ(state().fetch_status, FetchStatus::idle);
  ASSERT_TRUE(state().data);
  EXPECT_EQ(state().data->dump(), R"({"v":1})");
  EXPECT_TRUE(state().is_invalidated);
  ASSERT_TRUE(state().error);
  EXPECT_EQ(state().error->message, "server down");
  EXPECT_EQ(state().error_update_count, 1u);
  EXPECT_EQ(state().error_updated_at, s.now());
  EXPECT_EQ(state().failure_count, 1u);
  // A refetch keeps status error while it runs (data exists), then succeeds.
  client.refetch_queries();
  EXPECT_EQ(state().status, QueryStatus::error);
  EXPECT_EQ(state().fetch_status, FetchStatus::fetching);
  EXPECT_EQ(state().failure_count, 0u);
  f.resolve(J(R"({"v":2})"));
  s.run_ready();
  EXPECT_EQ(state().status, QueryStatus::success);
  EXPECT_FALSE(state().error);
  EXPECT_FALSE(state().is_invalidated);
}

TEST_F(FetchTest, FirstLoadErrorWithoutData) {
  client.fetch_query(fetch_opts());
  f.reject("nope");
  s.run_ready();
  EXPECT_EQ(state().status, QueryStatus::error);
  EXPECT_FALSE(state().data);
  // The next fetch resets to pending (no data) and clears the error.
  client.refetch_queries();
  EXPECT_EQ(state().status, QueryStatus::pending);
  EXPECT_FALSE(state().error);
}

TEST_F(FetchTest, ConcurrentFetchesAreDeduplicated) {
  int done = 0;
  client.fetch_query(fetch_opts(), [&](const Result<Data>& r) { done += r.ok(); });
  client.fetch_query(fetch_opts(), [&](const Result<Data>& r) { done += r.ok(); });
  QueryObserver obs(client, observe(key));
  auto sub = obs.subscribe([](const QueryResult&) {});
  EXPECT_EQ(f.count(), 1u) << "one query function call serves every caller";
  f.resolve(J("1"));
  s.run_ready();
  EXPECT_EQ(done, 2);
  EXPECT_EQ(obs.result().data->as_int64(), 1);
}

TEST_F(FetchTest, CancelRefetchRestartsAFetchThatHasData) {
  client.set_query_data(key, J(R"({"v":1})"));
  std::vector<Result<Data>> first;
  client.fetch_query(fetch_opts(), [&](const Result<Data>& r) { first.push_back(r); });
  ASSERT_EQ(f.count(), 1u);
  bool aborted = false;
  auto abort_sub = f.calls[0].token.on_cancel([&] { aborted = true; });

  client.refetch_queries();  // cancel_refetch defaults to true
  EXPECT_TRUE(aborted);
  EXPECT_TRUE(f.calls[0].token.cancelled());
  ASSERT_EQ(f.count(), 2u);
  EXPECT_EQ(state().fetch_status, FetchStatus::fetching);
  f.resolve(0, J(R"({"v":"stale"})"));  // the cancelled call completes anyway: ignored
  f.resolve(1, J(R"({"v":2})"));
  s.run_ready();
  EXPECT_EQ(state().data->dump(), R"({"v":2})");
  EXPECT_EQ(client.stats().late_completions, 1u);
  ASSERT_EQ(first.size(), 1u) << "the first caller receives the replacing fetch's result";
  EXPECT_EQ(first[0].value().dump(), R"({"v":2})");
}

TEST_F(FetchTest, CancelRefetchFalseSharesTheRunningFetch) {
  client.set_query_data(key, J(R"({"v":1})"));
  client.fetch_query(fetch_opts());
  client.refetch_queries({}, RefetchOptions{.cancel_refetch = false});
  EXPECT_EQ(f.count(), 1u);
  EXPECT_FALSE(f.calls[0].token.cancelled());
}

TEST_F(FetchTest, CancelRefetchHasNoEffectOnAPendingFirstLoad) {
  QueryObserver obs(client, observe(key));
  auto sub = obs.subscribe([](const QueryResult&) {});
  ASSERT_EQ(f.count(), 1u);
  InvalidateFilters all;
  client.invalidate_queries(all);  // cancel_refetch true, but there is no data yet
  EXPECT_EQ(f.count(), 1u);
  EXPECT_FALSE(f.calls[0].token.cancelled());
}

TEST_F(FetchTest, RetryDefaultsToThreeWithExponentialDelays) {
  f.on_call = [](ManualFetcher::Call& c) { c.done.reject(make_error(Errc::remote, "500")); };
  QueryObserver obs(client, observe(key));
  const auto t0 = s.now();
  auto sub = obs.subscribe([](const QueryResult&) {});
  s.run_ready();
  ASSERT_EQ(f.count(), 1u);
  EXPECT_EQ(state().failure_count, 1u);
  EXPECT_EQ(state().status, QueryStatus::pending) << "status unchanged while retrying";
  EXPECT_EQ(state().fetch_status, FetchStatus::fetching);
  ASSERT_TRUE(state().failure_reason);
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::QueryRetry), 1000ms);
  s.advance(999ms);
  EXPECT_EQ(f.count(), 1u);
  s.advance(1ms);
  ASSERT_EQ(f.count(), 2u);
  EXPECT_EQ(f.calls[1].at - t0, 1000ms);
  EXPECT_EQ(state().failure_count, 2u);
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::QueryRetry), 2000ms);
  s.advance(1999ms);
  EXPECT_EQ(f.count(), 2u);
  s.advance(1ms);
  ASSERT_EQ(f.count(), 3u);
  EXPECT_EQ(f.calls[2].at - t0, 3000ms);
  s.advance(4000ms);
  ASSERT_EQ(f.count(), 4u);
  EXPECT_EQ(f.calls[3].at - t0, 7000ms);
  // The fourth failure is final.
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryRetry));
  EXPECT_EQ(state().status, QueryStatus::error);
  EXPECT_EQ(state().fetch_status, FetchStatus::idle);
  EXPECT_EQ(state().failure_count, 4u);
  EXPECT_EQ(state().error->message, "500");
  EXPECT_TRUE(state().is_invalidated);
  s.run_ready();
  EXPECT_TRUE(obs.result().is_loading_error());
  s.advance(60s);
  EXPECT_EQ(f.count(), 4u);
}

TEST_F(FetchTest, RetryNumberPredicateAndCustomDelay) {
  f.on_call = [](ManualFetcher::Call& c) { c.done.reject(make_error(Errc::remote, "flaky")); };
  // retry: 1 with a fixed 300 ms delay.
  auto o = fetch_opts(Retry(1));
  o.query.retry_delay = [](std::uint32_t, const Error&) { return Duration(300ms); };
  bool failed = false;
  client.fetch_query(o, [&](const Result<Data>& r) { failed = !r.ok(); });
  s.run_ready();
  EXPECT_EQ(f.count(), 1u);
  s.advance(300ms);
  EXPECT_EQ(f.count(), 2u);
  EXPECT_TRUE(failed);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryRetry));

  // A predicate that refuses "unauthorized" (the seed's client config).
  f.calls.clear();
  const QueryKey other{"tasks", "single", "t2"};
  FetchQueryOptions p;
  p.key = other;
  p.query.query_fn = [](const QueryKey&, CancellationToken, Completion done) {
    done.reject(make_error(Errc::unauthorized, "unauthorized"));
  };
  p.query.retry = Retry([](std::uint32_t n, const Error& e) {
    return e.message.find("unauthorized") == std::string::npos && n < 2;
  });
  client.fetch_query(p);
  s.run_ready();
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryRetry));
  EXPECT_EQ(client.get_query(other)->state().status, QueryStatus::error);
}

TEST_F(FetchTest, DefaultRetryDelayIsCapped) {
  EXPECT_EQ(default_retry_delay(0), 1000ms);
  EXPECT_EQ(default_retry_delay(1), 2000ms);
  EXPECT_EQ(default_retry_delay(2), 4000ms);
  EXPECT_EQ(default_retry_delay(4), 16000ms);
  EXPECT_EQ(default_retry_delay(5), 30000ms);
  EXPECT_EQ(default_retry_delay(40), 30000ms);
}

TEST_F(FetchTest, FetchQueryDoesNotRetryByDefault) {
  Result<Data> result = make_error(Errc::internal, "unset");
  client.fetch_query(fetch_opts(), [&](const Result<Data>& r) { result = r; });
  f.reject("boom");
  s.run_ready();
  EXPECT_EQ(f.count(), 1u);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryRetry));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "boom");
  // prefetch_query neither.
  client.prefetch_query(fetch_opts());
  f.reject("boom");
  s.run_ready();
  EXPECT_EQ(f.count(), 2u);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryRetry));
}

TEST_F(FetchTest, FetchQueryReturnsCachedDataWhileFresh) {
  client.set_query_data(key, J(R"({"v":1})"));
  auto o = fetch_opts();
  o.stale_time = StaleTime(10s);
  std::optional<Data> got;
  client.fetch_query(o, [&](const Result<Data>& r) { got = r.value(); });
  EXPECT_FALSE(got) << "delivered on the loop";
  s.run_ready();
  ASSERT_TRUE(got);
  EXPECT_TRUE(same(*got, *client.get_query_data(key)));
  EXPECT_EQ(f.count(), 0u);
  s.advance(9999ms);
  client.fetch_query(o);
  EXPECT_EQ(f.count(), 0u);
  s.advance(1ms);  // exactly stale_time old: stale
  client.fetch_query(o);
  EXPECT_EQ(f.count(), 1u);
}

TEST_F(FetchTest, FetchQueryWithStaleTimeZeroAlwaysFetchesAndStaticNever) {
  client.set_query_data(key, J("1"));
  client.fetch_query(fetch_opts());
  EXPECT_EQ(f.count(), 1u);
  f.resolve(J("2"));
  s.run_ready();
  auto o = fetch_opts();
  o.stale_time = StaleTime::static_();
  InvalidateFilters mark_only;
  mark_only.refetch_type = RefetchType::none;
  client.invalidate_queries(mark_only);
  client.fetch_query(o);
  EXPECT_EQ(f.count(), 1u) << "static data is never stale, even invalidated";
}

TEST_F(FetchTest, SetQueryDataSharesStructure) {
  const Data first = client.set_query_data(key, J(R"({"list":[{"id":1},{"id":2}],"n":2})"));
  const Data again = client.set_query_data(key, J(R"({"list":[{"id":1},{"id":2}],"n":2})"));
  EXPECT_TRUE(same(first, again));
  const Data changed = client.set_query_data(key, J(R"({"list":[{"id":1},{"id":3}],"n":2})"));
  EXPECT_FALSE(same(first, changed));
  EXPECT_TRUE(same(*first.find("list")->at(0), *changed.find("list")->at(0)));
  // Updater form.
  auto updated =
      client.set_query_data(key, [](const std::optional<Data>& prev) -> std::optional<Data> {
        Data::Object o = *prev->if_object();
        o[1].second = Data(3);
        return Data::object(std::move(o));
      });
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->find("n")->as_int64(), 3);
  EXPECT_TRUE(same(*updated->find("list"), *changed.find("list")));
  // An updater returning nullopt changes nothing (and creates nothing).
  EXPECT_FALSE(
      client.set_query_data(QueryKey{"none"}, [](const auto&) { return std::optional<Data>(); }));
  EXPECT_EQ(client.get_query(QueryKey{"none"}), nullptr);
  EXPECT_FALSE(client.get_query_data(QueryKey{"none"}));
  EXPECT_EQ(state().data_update_count, 4u);
  EXPECT_EQ(state().fetch_status, FetchStatus::idle);
}

TEST_F(FetchTest, RefetchWithEqualDataKeepsIdentityAndStructuralSharingCanBeOff) {
  client.fetch_query(fetch_opts());
  f.resolve(J(R"({"rows":[{"a":1}],"m":{"x":1}})"));
  s.run_ready();
  const Data before = *state().data;
  client.refetch_queries();
  f.resolve(J(R"({"rows":[{"a":1}],"m":{"x":1}})"));
  s.run_ready();
  EXPECT_TRUE(same(before, *state().data));
  EXPECT_EQ(state().data_update_count, 2u);  // still a success, with the same node

  auto o = fetch_opts();
  o.query.structural_sharing = false;
  client.fetch_query(o);
  f.resolve(J(R"({"rows":[{"a":1}],"m":{"x":1}})"));
  s.run_ready();
  EXPECT_FALSE(same(before, *state().data));
  EXPECT_TRUE(before == *state().data);
}

TEST_F(FetchTest, CancelQueriesRevertsByDefault) {
  client.fetch_query(fetch_opts());
  Result<Data> got = make_error(Errc::internal, "unset");
  client.fetch_query(fetch_opts(), [&](const Result<Data>& r) { got = r; });
  EXPECT_EQ(client.cancel_queries(), 1u);
  EXPECT_TRUE(f.calls[0].token.cancelled());
  EXPECT_EQ(state().status, QueryStatus::pending);
  EXPECT_EQ(state().fetch_status, FetchStatus::idle);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::cancelled);
  // With data, a reverted cancel keeps the data and reports it.
  client.set_query_data(key, J("7"));
  client.fetch_query(fetch_opts(), [&](const Result<Data>& r) { got = r; });
  client.cancel_queries();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value().as_int64(), 7);
  EXPECT_EQ(state().status, QueryStatus::success);
  EXPECT_EQ(state().fetch_status, FetchStatus::idle);
  EXPECT_EQ(client.cancel_queries(), 0u);
}

TEST_F(FetchTest, CancelWithoutRevertIsAnError) {
  client.set_query_data(key, J("7"));
  client.fetch_query(fetch_opts());
  client.cancel_queries({}, CancelOptions{.revert = false});
  EXPECT_EQ(state().status, QueryStatus::error);
  EXPECT_EQ(state().error->code, Errc::cancelled);
  EXPECT_EQ(state().data->as_int64(), 7);
}

TEST_F(FetchTest, RemoveQueriesCancelsAndRemoves) {
  std::vector<CacheEvent> events;
  auto sub = client.subscribe([&](const CacheEvent& e) { events.push_back(e); });
  client.fetch_query(fetch_opts());
  EXPECT_EQ(client.remove_queries(), 1u);
  EXPECT_EQ(client.size(), 0u);
  EXPECT_TRUE(f.calls[0].token.cancelled());
  f.resolve(J("1"));
  s.run_ready();
  EXPECT_EQ(client.size(), 0u);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().type, CacheEventType::added);
  EXPECT_EQ(events[1].type, CacheEventType::updated);
  EXPECT_EQ(events[1].action, QueryAction::fetch);
  EXPECT_EQ(events.back().type, CacheEventType::removed);
  EXPECT_FALSE(events.back().query->in_cache());
}

// ---- garbage collection -------------------------------------------------------------------------

TEST_F(FetchTest, GcRemovesAnUnobservedQueryAfterFiveMinutes) {
  client.set_query_data(key, J("1"));
  EXPECT_EQ(client.get_query(key)->gc_time(), std::chrono::minutes(5));
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::QueryGc), std::chrono::minutes(5));
  s.advance(std::chrono::minutes(5) - 1ms);
  EXPECT_EQ(client.size(), 1u);
  s.advance(1ms);
  EXPECT_EQ(client.size(), 0u);
  EXPECT_EQ(client.stats().gc_removed, 1u);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryGc));
}

TEST_F(FetchTest, GcTimeZeroRemovesOnTheNextTurnAfterUnsubscribe) {
  auto o = observe(key);
  o.query.gc_time = 0ms;
  QueryObserver obs(client, o);
  auto sub = obs.subscribe([](const QueryResult&) {});
  f.resolve(J("1"));
  s.run_ready();
  EXPECT_EQ(client.size(), 1u);
  // gc_time 0 is not larger than the default: a query keeps the largest gc time it saw, and the
  // query was created with this observer's options, so its gc time is 0.
  EXPECT_EQ(client.get_query(key)->gc_time(), 0ms);
  sub.remove();
  EXPECT_EQ(client.size(), 1u);
  s.run_ready();
  EXPECT_EQ(client.size(), 0u);
}

TEST_F(FetchTest, GcKeepsTheLargestGcTime) {
  auto a = fetch_opts();
  a.query.gc_time = 10s;
  client.prefetch_query(a);
  f.resolve(J("1"));
  s.run_ready();
  EXPECT_EQ(client.get_query(key)->gc_time(), 10s);
  auto b = fetch_opts();
  b.query.gc_time = 1s;
  client.prefetch_query(b);
  f.resolve(J("2"));
  s.run_ready();
  EXPECT_EQ(client.get_query(key)->gc_time(), 10s) << "largest wins";
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::QueryGc), 10s);
  auto c = fetch_opts();
  c.query.gc_time = 60s;
  client.prefetch_query(c);
  f.resolve(J("3"));
  s.run_ready();
  EXPECT_EQ(client.get_query(key)->gc_time(), 60s);
  s.advance(59999ms);
  EXPECT_EQ(client.size(), 1u);
  s.advance(1ms);
  EXPECT_EQ(client.size(), 0u);
}

TEST_F(FetchTest, GcWaitsForAnInFlightFetch) {
  auto o = fetch_opts();
  o.query.gc_time = 1s;
  client.prefetch_query(o);
  s.advance(1s);  // gc fires while fetching: not removed
  EXPECT_EQ(client.size(), 1u);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryGc));
  s.advance(500ms);
  f.resolve(J("1"));
  s.run_ready();  // settles at 1.5 s: collected one full gc time later
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::QueryGc), 1s);
  s.advance(999ms);
  EXPECT_EQ(client.size(), 1u);
  s.advance(1ms);
  EXPECT_EQ(client.size(), 0u);
}

TEST_F(FetchTest, ObserversStopGcAndLeavingRestartsIt) {
  client.set_query_data(key, J("1"));
  s.advance(4min);
  auto o = observe(key);
  o.stale_time = StaleTime(kInfinite);
  QueryObserver obs(client, o);
  auto sub = obs.subscribe([](const QueryResult&) {});
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryGc));
  s.advance(10min);
  EXPECT_EQ(client.size(), 1u);
  sub.remove();
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::QueryGc), 5min);
  s.advance(5min);
  EXPECT_EQ(client.size(), 0u);
}

TEST_F(FetchTest, GcTimerServesManyQueriesInDueOrder) {
  for (int i = 0; i < 5; ++i) {
    auto o = fetch_opts();
    o.key = QueryKey{"q", i};
    o.query.gc_time = std::chrono::seconds(10 - i);
    client.prefetch_query(o);
    f.resolve(J("1"));
  }
  s.run_ready();
  EXPECT_EQ(s.pending_count(rtsync::client::query::timers::QueryGc), 1u);
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::QueryGc), 6s);
  s.advance(6s);
  EXPECT_EQ(client.size(), 4u);
  EXPECT_EQ(client.get_query(QueryKey{"q", 4}), nullptr);
  s.advance(3s);
  EXPECT_EQ(client.size(), 1u);
  s.advance(1s);
  EXPECT_EQ(client.size(), 0u);
}

// ---- bad query functions
// ----------------------------------------------------------------------------

TEST_F(FetchTest, ThrowingQueryFunctionIsAFailure) {
  log::Capture capture;
  FetchQueryOptions o;
  o.key = key;
  o.query.query_fn = [](const QueryKey&, CancellationToken, Completion) {
    throw std::runtime_error("kaboom");
  };
  o.query.retry = Retry(1);
  Result<Data> got = Data();
  client.fetch_query(o, [&](const Result<Data>& r) { got = r; });
  s.run_ready();
  EXPECT_EQ(state().failure_count, 1u);  // retrying
  s.advance(1s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::internal);
  EXPECT_NE(got.error().message.find("kaboom"), std::string::npos);
  EXPECT_EQ(client.stats().query_fn_throws, 2u);
  EXPECT_EQ(state().status, QueryStatus::error);
  EXPECT_TRUE(capture.contains("threw"));
}

TEST_F(FetchTest, CompletingTwiceIsIgnoredAndCounted) {
  log::Capture capture;
  client.fetch_query(fetch_opts());
  f.resolve(J("1"));
  f.resolve(J("2"));
  f.last().done.reject(make_error(Errc::remote, "late"));
  s.run_ready();
  EXPECT_EQ(state().data->as_int64(), 1);
  EXPECT_EQ(state().status, QueryStatus::success);
  EXPECT_EQ(client.stats().duplicate_completions, 2u);
  EXPECT_TRUE(f.last().done.done());
  EXPECT_TRUE(capture.contains("completed twice"));
}

TEST_F(FetchTest, SynchronousCompletionIsAppliedOnTheLoop) {
  FetchQueryOptions o;
  o.key = key;
  o.query.query_fn = [](const QueryKey& k, CancellationToken, Completion done) {
    done.resolve(json::value(k.size()));
  };
  client.fetch_query(o);
  EXPECT_EQ(state().fetch_status, FetchStatus::fetching);
  s.run_ready();
  EXPECT_EQ(state().data->as_int64(), 3);
}

TEST_F(FetchTest, MissingQueryFunctionIsAnError) {
  client.set_query_data(key, J("1"));
  client.refetch_queries({}, {});
  // The query exists only through set_query_data (no query function; client default retry 3).
  s.advance(7s);
  EXPECT_EQ(state().status, QueryStatus::error);
  EXPECT_NE(state().error->message.find("Missing queryFn"), std::string::npos);
  EXPECT_EQ(state().data->as_int64(), 1);
}

TEST_F(FetchTest, ClientDestroyedWhileFetchingLeavesHandlesInert) {
  std::shared_ptr<const Query> held;
  std::optional<QueryObserver> obs;
  {
    auto c = std::make_unique<QueryClient>(s);
    FetchQueryOptions o;
    o.key = key;
    o.query.query_fn = f.fn();
    c->fetch_query(o);
    held = c->get_query(key);
    obs.emplace(*c, observe(key));
    auto sub = obs->subscribe([](const QueryResult&) {});
    sub.detach();
  }
  f.resolve(J("1"));
  s.run_all();
  EXPECT_FALSE(held->in_cache());
  EXPECT_TRUE(f.calls[0].token.cancelled());
  obs->refetch();
  obs->set_enabled(false);
  obs.reset();
  SUCCEED();
}

TEST_F(FetchTest, CacheListenersMayUnsubscribeDuringDispatch) {
  core::Subscription a, b;
  int a_calls = 0, b_calls = 0;
  a = client.subscribe([&](const CacheEvent&) {
    ++a_calls;
    a.remove();
    b.remove();
  });
  b = client.subscribe([&](const CacheEvent&) { ++b_calls; });
  client.set_query_data(key, J("1"));
  client.set_query_data(QueryKey{"other"}, J("2"));
  s.run_ready();
  EXPECT_EQ(a_calls, 1);
  EXPECT_EQ(b_calls, 0);
  EXPECT_EQ(client.size(), 2u);
}

TEST_F(FetchTest, CompletionAfterRemovalIsLate) {
  client.fetch_query(fetch_opts());
  auto done = f.last().done;
  client.remove_queries();
  s.run_ready();
  done.resolve(J("1"));
  s.run_ready();
  EXPECT_EQ(client.size(), 0u);
  EXPECT_EQ(client.stats().late_completions, 1u);
  const auto snap = client.snapshot();
  EXPECT_EQ(snap.at("queries").as_uint64(), 0u);
  EXPECT_EQ(snap.at("stats").at("lateCompletions").as_uint64(), 1u);
}
