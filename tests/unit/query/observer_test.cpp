// QueryObserver (TanStack queryObserver.test): mount fetch, enabled, staleness, refetch interval,
// placeholder data, delivery on the loop, unsubscribing during dispatch, online/focus.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "fake_fetcher.hpp"
#include "rtsync/client/query/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"

using namespace rtsync;
using namespace rtsync::client::query;
using namespace rtsync::client::query::test;
using core::TimerId;

namespace {

struct Seen {
  QueryStatus status;
  FetchStatus fetch;
  std::string data;
};

class ObserverTest : public ::testing::Test {
 protected:
  core::ManualScheduler s;
  QueryClient client{s};
  ManualFetcher f{s};
  const QueryKey key{"tasks", "paginated", "p1", 1};
  std::vector<Seen> seen;

  ObserverOptions opts(QueryKey k = {}) {
    ObserverOptions o;
    o.key = k.empty() ? key : k;
    o.query.query_fn = f.fn();
    return o;
  }
  QueryObserver::Listener record() {
    return [this](const QueryResult& r) {
      seen.push_back({r.status, r.fetch_status, r.data ? r.data->dump() : ""});
    };
  }
};

}  // namespace

TEST_F(ObserverTest, MountFetchesAndResultsArriveOnTheLoop) {
  QueryObserver obs(client, opts());
  EXPECT_EQ(obs.result().status, QueryStatus::pending);
  EXPECT_EQ(obs.result().fetch_status, FetchStatus::idle);
  EXPECT_EQ(f.count(), 0u) << "constructing does not fetch";
  EXPECT_FALSE(client.get_query(key)->is_active());

  auto sub = obs.subscribe(record());
  EXPECT_EQ(f.count(), 1u);
  EXPECT_TRUE(client.get_query(key)->is_active());
  EXPECT_TRUE(seen.empty()) << "delivered on the loop, not inside subscribe";
  s.run_ready();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].status, QueryStatus::pending);
  EXPECT_EQ(seen[0].fetch, FetchStatus::fetching);
  EXPECT_TRUE(obs.result().is_loading());

  f.resolve(J(R"({"rows":[1]})"));
  s.run_ready();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].status, QueryStatus::success);
  EXPECT_EQ(seen[1].fetch, FetchStatus::idle);
  EXPECT_EQ(seen[1].data, R"({"rows":[1]})");
  EXPECT_TRUE(obs.result().is_fetched_after_mount);

  obs.refetch();
  s.run_ready();
  f.resolve(J(R"({"rows":[1,2]})"));
  s.run_ready();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[2].status, QueryStatus::success);
  EXPECT_EQ(seen[2].fetch, FetchStatus::fetching);
  EXPECT_EQ(seen[3].data, R"({"rows":[1,2]})");
}

TEST_F(ObserverTest, ChangesInOneTurnAreDeliveredOnceWithTheLatestResult) {
  QueryObserver obs(client, opts());
  auto sub = obs.subscribe(record());
  f.resolve(J("1"));
  s.run_ready();  // fetching and success happened before the flush? no: fetch was delivered first
  seen.clear();
  client.set_query_data(key, J("2"));
  client.set_query_data(key, J("3"));
  s.run_ready();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].data, "3");
}

TEST_F(ObserverTest, FreshDataIsNotRefetchedOnMount) {
  client.set_query_data(key, J("1"));
  auto o = opts();
  o.stale_time = StaleTime(10s);
  QueryObserver fresh(client, o);
  auto sub = fresh.subscribe(record());
  EXPECT_EQ(f.count(), 0u);
  s.run_ready();
  ASSERT_EQ(seen.size(), 1u) << "a new listener receives the current result";
  EXPECT_EQ(seen[0].data, "1");
  // A second observer with stale_time 0 sees the same data as stale and refetches on mount.
  QueryObserver stale(client, opts());
  auto sub2 = stale.subscribe([](const QueryResult&) {});
  EXPECT_EQ(f.count(), 1u);
}

TEST_F(ObserverTest, RefetchOnMountAlwaysAndNever) {
  client.set_query_data(key, J("1"));
  auto o = opts();
  o.stale_time = StaleTime(kInfinite);
  o.refetch_on_mount = RefetchOn::always;
  QueryObserver always(client, o);
  auto a = always.subscribe([](const QueryResult&) {});
  EXPECT_EQ(f.count(), 1u);
  f.resolve(J("2"));
  s.run_ready();
  auto n = opts();
  n.refetch_on_mount = RefetchOn::never;
  QueryObserver never(client, n);
  auto b = never.subscribe([](const QueryResult&) {});
  EXPECT_EQ(f.count(), 1u);
}

TEST_F(ObserverTest, DisabledObserverNeverFetchesUntilEnabled) {
  auto o = opts();
  o.enabled = false;
  QueryObserver obs(client, o);
  auto sub = obs.subscribe(record());
  s.advance(1min);
  EXPECT_EQ(f.count(), 0u);
  EXPECT_FALSE(client.get_query(key)->is_active());
  EXPECT_TRUE(client.get_query(key)->is_disabled());
  EXPECT_FALSE(obs.result().is_enabled);
  obs.set_enabled(true);
  EXPECT_EQ(f.count(), 1u);
  EXPECT_TRUE(client.get_query(key)->is_active());
}

TEST_F(ObserverTest, ResultTurnsStaleExactlyAtStaleTime) {
  auto o = opts();
  o.stale_time = StaleTime(5s);
  QueryObserver obs(client, o);
  std::vector<bool> stale;
  auto sub = obs.subscribe([&](const QueryResult& r) { stale.push_back(r.is_stale); });
  f.resolve(J("1"));
  s.run_ready();
  ASSERT_FALSE(obs.result().is_stale);
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::QueryStale), 5s);
  s.advance(4999ms);
  EXPECT_FALSE(obs.result().is_stale);
  EXPECT_FALSE(client.get_query(key)->is_stale());
  s.advance(1ms);
  EXPECT_TRUE(obs.result().is_stale);
  EXPECT_TRUE(client.get_query(key)->is_stale());
  EXPECT_TRUE(stale.back());
  EXPECT_EQ(f.count(), 1u) << "staleness alone does not refetch";
}

TEST_F(ObserverTest, RefetchIntervalStartsResetsAndStops) {
  client.set_query_data(key, J("0"));
  auto o = opts();
  o.stale_time = StaleTime(kInfinite);
  o.refetch_interval = RefetchInterval(1000ms);
  QueryObserver obs(client, o);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::RefetchInterval))
      << "no timer without a listener";
  auto sub = obs.subscribe([](const QueryResult&) {});
  EXPECT_EQ(f.count(), 0u);
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::RefetchInterval), 1000ms);
  s.advance(999ms);
  EXPECT_EQ(f.count(), 0u);
  s.advance(1ms);
  EXPECT_EQ(f.count(), 1u) << "tick at exactly the interval";
  s.advance(200ms);
  f.resolve(J("1"));
  s.run_ready();
  // The query update re-armed the interval (TanStack re-arms on every query update).
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::RefetchInterval), 1000ms);
  s.advance(1000ms);
  EXPECT_EQ(f.count(), 2u);
  f.resolve(J("2"));
  s.run_ready();

  // Changing the interval resets the timer from now.
  s.advance(300ms);
  obs.set_refetch_interval(500ms);
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::RefetchInterval), 500ms);
  s.advance(200ms);
  obs.set_refetch_interval(500ms);  // same value: no reset
  EXPECT_EQ(*s.time_until(rtsync::client::query::timers::RefetchInterval), 300ms);
  s.advance(300ms);
  EXPECT_EQ(f.count(), 3u);
  f.resolve(J("3"));
  s.run_ready();

  obs.set_refetch_interval(RefetchInterval::off());
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::RefetchInterval));
  obs.set_refetch_interval(Duration::zero());
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::RefetchInterval));
  obs.set_refetch_interval(250ms);
  EXPECT_TRUE(s.pending(rtsync::client::query::timers::RefetchInterval));
  obs.set_enabled(false);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::RefetchInterval)) << "off when disabled";
  obs.set_enabled(true);
  EXPECT_TRUE(s.pending(rtsync::client::query::timers::RefetchInterval));
  sub.remove();
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::RefetchInterval)) << "off when unobserved";
  s.advance(10s);
  EXPECT_EQ(f.count(), 3u);
}

TEST_F(ObserverTest, IntervalTicksShareARunningFetch) {
  client.set_query_data(key, J("0"));
  auto o = opts();
  o.stale_time = StaleTime(kInfinite);
  o.refetch_interval = RefetchInterval(100ms);
  QueryObserver obs(client, o);
  auto sub = obs.subscribe([](const QueryResult&) {});
  s.advance(100ms);
  ASSERT_EQ(f.count(), 1u);
  s.advance(100ms);  // the running fetch is shared, not cancelled
  s.advance(100ms);
  EXPECT_EQ(f.count(), 1u);
  EXPECT_FALSE(f.calls[0].token.cancelled());
}

TEST_F(ObserverTest, IntervalAsAFunctionOfTheQuery) {
  f.on_call = [](ManualFetcher::Call& c) { c.done.resolve(json::value(1)); };
  auto o = opts();
  o.stale_time = StaleTime(kInfinite);
  o.refetch_interval = RefetchInterval([](const Query& q) -> std::optional<Duration> {
    if (q.state().data_update_count >= 3) return std::nullopt;  // poll until three loads
    return Duration(100ms);
  });
  QueryObserver obs(client, o);
  auto sub = obs.subscribe([](const QueryResult&) {});
  s.run_ready();
  EXPECT_EQ(f.count(), 1u);
  s.advance(1s);
  EXPECT_EQ(f.count(), 3u);
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::RefetchInterval));
}

TEST_F(ObserverTest, IntervalNeedsFocusUnlessInBackground) {
  client.set_query_data(key, J("0"));
  auto o = opts();
  o.stale_time = StaleTime(kInfinite);
  o.refetch_interval = RefetchInterval(100ms);
  QueryObserver obs(client, o);
  auto sub = obs.subscribe([](const QueryResult&) {});
  client.set_focused(false);
  s.advance(500ms);
  EXPECT_EQ(f.count(), 0u);
  o.refetch_interval_in_background = true;
  obs.set_options(o);
  s.advance(100ms);
  EXPECT_EQ(f.count(), 1u);
}

TEST_F(ObserverTest, KeepPreviousDataWhilePaging) {
  auto o = opts(QueryKey{"tasks", "paginated", "p1", 1});
  o.placeholder_data = keep_previous_data();
  QueryObserver obs(client, o);
  auto sub = obs.subscribe(record());
  f.resolve(J(R"({"page":1})"));
  s.run_ready();
  const Data page1 = *obs.result().data;

  o.key = QueryKey{"tasks", "paginated", "p1", 2};
  obs.set_options(o);
  EXPECT_EQ(f.count(), 2u);
  EXPECT_EQ(f.last().key, o.key);
  EXPECT_TRUE(obs.result().is_placeholder_data);
  EXPECT_EQ(obs.result().status, QueryStatus::success);
  EXPECT_TRUE(obs.result().is_fetching());
  EXPECT_TRUE(same(*obs.result().data, page1));
  EXPECT_FALSE(client.get_query(QueryKey{"tasks", "paginated", "p1", 1})->is_active());
  EXPECT_TRUE(client.get_query(o.key)->is_active());

  f.resolve(J(R"({"page":2})"));
  s.run_ready();
  EXPECT_FALSE(obs.result().is_placeholder_data);
  EXPECT_EQ(obs.result().data->dump(), R"({"page":2})");
  EXPECT_EQ(seen.back().data, R"({"page":2})");

  // Without placeholder data, a new key starts from nothing.
  o.placeholder_data = nullptr;
  o.key = QueryKey{"tasks", "paginated", "p1", 3};
  obs.set_options(o);
  EXPECT_FALSE(obs.result().data);
  EXPECT_TRUE(obs.result().is_loading());
}

TEST_F(ObserverTest, EqualRefetchDoesNotNotifyADataListener) {
  auto o = opts();
  o.notify_on_change = kFieldData;
  QueryObserver obs(client, o);
  int calls = 0;
  auto sub = obs.subscribe([&](const QueryResult&) { ++calls; });
  f.resolve(J(R"({"a":[1,2]})"));
  s.run_ready();
  EXPECT_EQ(calls, 2);  // the initial (pending) result, then the data
  const Data before = *obs.result().data;
  obs.refetch();
  s.run_ready();
  f.resolve(J(R"({"a":[1,2]})"));
  s.run_ready();
  EXPECT_EQ(calls, 2) << "same data node: no data change to report";
  EXPECT_TRUE(same(before, *obs.result().data));
  obs.refetch();
  f.resolve(J(R"({"a":[1,3]})"));
  s.run_ready();
  EXPECT_EQ(calls, 3);
}

TEST_F(ObserverTest, UnsubscribeFromInsideItsOwnCallback) {
  QueryObserver obs(client, opts());
  core::Subscription sub;
  int calls = 0;
  sub = obs.subscribe([&](const QueryResult&) {
    ++calls;
    sub.remove();
  });
  s.run_ready();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(obs.has_listeners());
  EXPECT_FALSE(client.get_query(key)->is_active());
  f.resolve(J("1"));
  s.run_ready();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(client.get_query(key)->state().data->as_int64(), 1)
      << "the fetch still lands in the cache";
}

TEST_F(ObserverTest, CallbackUnsubscribesOthersMidDispatch) {
  QueryObserver obs(client, opts());
  core::Subscription a, b, c;
  std::vector<std::string> order;
  a = obs.subscribe([&](const QueryResult&) {
    order.push_back("a");
    b.remove();
    c.remove();
  });
  b = obs.subscribe([&](const QueryResult&) { order.push_back("b"); });
  c = obs.subscribe([&](const QueryResult&) { order.push_back("c"); });
  s.run_ready();
  f.resolve(J("1"));
  s.run_ready();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "a"}));
  EXPECT_TRUE(obs.has_listeners());
}

TEST_F(ObserverTest, ObserverDestroyedInsideItsOwnCallback) {
  auto obs = std::make_unique<QueryObserver>(client, opts());
  int calls = 0;
  auto sub = obs->subscribe([&](const QueryResult&) {
    ++calls;
    obs.reset();
  });
  s.run_ready();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(obs, nullptr);
  EXPECT_EQ(client.get_query(key)->observer_count(), 0u);
  f.resolve(J("1"));
  s.run_ready();
  sub.remove();  // a handle outliving its observer is inert
  EXPECT_EQ(calls, 1);
}

TEST_F(ObserverTest, ThrowingListenerDoesNotStopOthers) {
  log::Capture capture;
  QueryObserver obs(client, opts());
  int good = 0;
  auto bad = obs.subscribe([](const QueryResult&) { throw std::runtime_error("view bug"); });
  auto ok = obs.subscribe([&](const QueryResult&) { ++good; });
  s.run_ready();
  EXPECT_EQ(good, 1);
  EXPECT_EQ(client.stats().listener_errors, 1u);
  EXPECT_TRUE(capture.contains("view bug"));
}

TEST_F(ObserverTest, UnmountCancelsAFetchThatConsumedItsToken) {
  f.on_call = [](ManualFetcher::Call& c) { auto s = c.token.on_cancel([] {}); };
  QueryObserver obs(client, opts());
  auto sub = obs.subscribe([](const QueryResult&) {});
  ASSERT_EQ(f.count(), 1u);
  sub.remove();
  EXPECT_TRUE(f.calls[0].token.cancelled());
  const auto& st = client.get_query(key)->state();
  EXPECT_EQ(st.status, QueryStatus::pending);
  EXPECT_EQ(st.fetch_status, FetchStatus::idle) << "reverted";
}

TEST_F(ObserverTest, UnmountLetsAnUnabortableFetchFinishWithoutRetries) {
  QueryObserver obs(client, opts());
  auto sub = obs.subscribe([](const QueryResult&) {});
  sub.remove();
  EXPECT_FALSE(f.calls[0].token.cancelled());
  f.reject("down");
  s.run_ready();
  EXPECT_FALSE(s.pending(rtsync::client::query::timers::QueryRetry))
      << "retries stop once nobody observes";
  EXPECT_EQ(client.get_query(key)->state().status, QueryStatus::error);
}

TEST_F(ObserverTest, OfflinePausesAndOnlineContinues) {
  client.set_online(false);
  QueryObserver obs(client, opts());
  auto sub = obs.subscribe(record());
  s.run_ready();
  EXPECT_EQ(f.count(), 0u);
  EXPECT_TRUE(obs.result().is_paused());
  EXPECT_EQ(client.get_query(key)->state().status, QueryStatus::pending);
  client.set_online(true);
  EXPECT_EQ(f.count(), 1u);
  EXPECT_EQ(client.get_query(key)->state().fetch_status, FetchStatus::fetching);
  f.resolve(J("1"));
  s.run_ready();
  EXPECT_EQ(seen.back().status, QueryStatus::success);
}

TEST_F(ObserverTest, RetriesPauseWhileOfflineAndRefetchOnReconnect) {
  f.on_call = [](ManualFetcher::Call& c) { c.done.reject(make_error(Errc::io, "offline")); };
  QueryObserver obs(client, opts());
  auto sub = obs.subscribe([](const QueryResult&) {});
  s.run_ready();
  ASSERT_EQ(f.count(), 1u);
  client.set_online(false);
  s.advance(1s);  // the retry delay passes while offline: paused
  EXPECT_EQ(f.count(), 1u);
  EXPECT_EQ(client.get_query(key)->state().fetch_status, FetchStatus::paused);
  f.on_call = [](ManualFetcher::Call& c) { c.done.resolve(json::value("ok")); };
  client.set_online(true);
  EXPECT_EQ(f.count(), 2u);
  s.run_ready();
  EXPECT_EQ(obs.result().data->as_string(), "ok");
  // Reconnecting refetches observed stale queries (refetch_on_reconnect if_stale).
  client.set_online(false);
  client.set_online(true);
  EXPECT_EQ(f.count(), 3u);
}

TEST_F(ObserverTest, FocusRegainedRefetchesStaleQueries) {
  QueryObserver obs(client, opts());
  auto sub = obs.subscribe([](const QueryResult&) {});
  f.resolve(J("1"));
  s.run_ready();
  client.set_focused(false);
  client.set_focused(true);
  EXPECT_EQ(f.count(), 2u);
  auto o = opts();
  o.refetch_on_window_focus = RefetchOn::never;
  obs.set_options(o);
  f.resolve(J("2"));
  s.run_ready();
  client.set_focused(false);
  client.set_focused(true);
  EXPECT_EQ(f.count(), 2u);
}

TEST_F(ObserverTest, RemovedQueryIsRebuiltOnTheNextFetch) {
  QueryObserver obs(client, opts());
  auto sub = obs.subscribe([](const QueryResult&) {});
  f.resolve(J("1"));
  s.run_ready();
  auto old = obs.query();
  client.remove_queries();
  EXPECT_FALSE(old->in_cache());
  obs.refetch();
  EXPECT_NE(obs.query(), old);
  EXPECT_TRUE(obs.query()->in_cache());
  EXPECT_TRUE(client.get_query(key)->is_active());
  EXPECT_EQ(f.count(), 2u);
}

// The cache is loop-confined: in debug builds reads from another thread are reported too (here to
// a recording handler; by default they abort) — the observer's, the query's and the client's.
TEST_F(ObserverTest, ReadsOffTheLoopThreadAreCaughtInDebugBuilds) {
  if (!core::kLoopChecks) GTEST_SKIP() << "loop checks are compiled out (NDEBUG)";
  QueryObserver observer(client, opts());
  auto sub = observer.subscribe(record());
  s.run_ready();
  std::vector<std::string> violations;
  auto previous = core::set_loop_violation_handler(
      [&](std::string_view method) { violations.emplace_back(method); });
  const auto query = observer.query();
  std::thread other([&] {
    (void)observer.result();
    (void)query->state();
    (void)query->is_active();
    (void)client.size();
  });
  other.join();
  (void)observer.result();  // the loop thread: not reported
  (void)client.size();
  core::set_loop_violation_handler(std::move(previous));
  // observer.query() ran on the loop; each off-loop read is reported once, by its own name.
  EXPECT_EQ(violations, (std::vector<std::string>{"result", "state", "is_active", "size"}));
}

// A query removed from the cache while observed stays with its observer (as in TanStack); the
// client may then be destroyed first. The removed query must let go of the client with it: the
// observer's unsubscribe and destruction afterwards reached the freed client before (a
// heap-use-after-free under ASan).
TEST(ObserverLifetime, ARemovedQueryStillObservedOutlivesItsClient) {
  core::ManualScheduler s;
  ManualFetcher f{s};
  auto client = std::make_unique<QueryClient>(s);
  ObserverOptions o;
  o.key = QueryKey{"tasks", "removed"};
  o.query.query_fn = f.fn();
  auto obs = std::make_unique<QueryObserver>(*client, o);
  std::vector<std::string> seen;
  auto sub =
      obs->subscribe([&](const QueryResult& r) { seen.push_back(r.data ? r.data->dump() : ""); });
  f.resolve(J("[1]"));
  s.run_ready();
  ASSERT_EQ(obs->result().status, QueryStatus::success);

  EXPECT_EQ(client->remove_queries(), 1u);
  EXPECT_EQ(client->size(), 0u);
  client.reset();
  s.run_ready();

  EXPECT_EQ(obs->result().data->dump(), "[1]") << "the observer keeps what it showed";
  sub.remove();
  obs.reset();
  s.run_ready();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), "[1]");
}
