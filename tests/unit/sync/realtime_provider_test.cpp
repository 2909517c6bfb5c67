#include "rtsync/client/sync/realtime_provider.hpp"

#include <gtest/gtest.h>

#include "manager_fixture.hpp"
#include "query_helpers.hpp"
#include "rtsync/client/transport/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync::testing {
namespace {

using query::QueryKey;

class ProviderTest : public ManagerFixture {
 protected:
  explicit ProviderTest(SocketOptions options = test_socket_options())
      : ManagerFixture(std::move(options)) {
    sign_in();
  }

  void mount_provider(RealtimeProviderOptions options = {}) {
    provider = std::make_unique<RealtimeProvider>(*manager, cache, bus, freshness, project,
                                                  std::move(options));
    sub = provider->subscribe([this](const ProviderState& s) { states.push_back(s); });
  }

  // One active query per family the seed covers, plus unrelated ones.
  void mount_task_queries() {
    for (const auto& k : family_keys())
      queries.mount(cache, k, fetches.fn());
    queries.mount(cache, kProfile, fetches.fn());
    queries.mount(cache, kLegacyGenerations, fetches.fn());
    clock.run_ready();
    fetches.clear();
  }

  static std::vector<QueryKey> family_keys() {
    return {QueryKey{"tasks", "paginated", "p1", 1, 50, "Queued"},
            QueryKey{"tasks", "single", "t1"},
            QueryKey{"task-status-counts", "p1"},
            QueryKey{"unified-generations", "project", "p1", 1, 20, json::object{}},
            QueryKey{"shots", "p1", 8},
            QueryKey{"unpositioned-count", "s1"},
            QueryKey{"project-video-counts", "p1"}};
  }

  inline static const QueryKey kProfile{"profile", "u1"};
  inline static const QueryKey kLegacyGenerations{"generations", "p1"};

  query::QueryClient cache{clock};
  ProjectSelection project;
  FetchLog fetches{clock};
  MountedQueries queries;
  std::unique_ptr<RealtimeProvider> provider;
  std::vector<ProviderState> states;
  core::Subscription sub;
};

TEST_F(ProviderTest, SelectConnectsAndFollowsTheJoin) {
  mount_provider();
  EXPECT_FALSE(provider->state().is_connecting);
  project.set("p1");
  EXPECT_TRUE(provider->state().is_connecting);
  EXPECT_FALSE(provider->state().is_connected);
  EXPECT_EQ(manager->project_id(), "p1");
  peer->accept();
  EXPECT_TRUE(provider->state().is_connected);
  EXPECT_FALSE(provider->state().is_connecting);
  EXPECT_FALSE(provider->state().error.has_value());
}

TEST_F(ProviderTest, ProjectSelectedBeforeMountJoinsAtOnce) {
  project.set("p1");
  mount_provider();
  peer->accept();
  EXPECT_TRUE(provider->state().is_connected);
}

TEST_F(ProviderTest, SwitchLeavesTheOldChannelBeforeJoiningTheNew) {
  mount_provider();
  project.set("p1");
  peer->accept();
  project.set("p2");
  EXPECT_TRUE(provider->state().is_connecting);
  EXPECT_FALSE(provider->state().is_connected);
  peer->accept();
  EXPECT_TRUE(provider->state().is_connected);
  const auto& seen = peer->events_seen();
  const auto leave = std::find(seen.begin(), seen.end(), "phx_leave " + kTopic1);
  const auto join2 = std::find(seen.begin(), seen.end(), "phx_join realtime:task-updates:p2");
  ASSERT_NE(leave, seen.end());
  ASSERT_NE(join2, seen.end());
  EXPECT_LT(leave, join2);
  EXPECT_EQ(manager->project_id(), "p2");
}

TEST_F(ProviderTest, ClearDisconnectsAndResetsFreshness) {
  mount_provider();
  project.set("p1");
  peer->accept();
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "t1"}});
  ASSERT_EQ(freshness.status(), RealtimeStatus::connected);
  project.set(std::nullopt);
  EXPECT_FALSE(provider->state().is_connected);
  EXPECT_FALSE(provider->state().is_connecting);
  EXPECT_FALSE(provider->state().error.has_value());
  EXPECT_FALSE(manager->project_id().has_value());
  EXPECT_EQ(freshness.status(), RealtimeStatus::disconnected);
  EXPECT_EQ(freshness.reason(), "reset");
  EXPECT_EQ(freshness.diagnostics().at("trackedQueries").as_uint64(), 0u);
  peer->pump();
  EXPECT_EQ(peer->leaves(), (std::vector<std::string>{kTopic1}));
}

TEST_F(ProviderTest, FailedJoinShowsTheSeedsError) {
  auth.sign_out();
  mount_provider();
  project.set("p1");
  EXPECT_FALSE(provider->state().is_connecting);
  EXPECT_EQ(provider->state().error, "Failed to connect to realtime");
  sign_in();
  peer->join_reply = FakeRealtimePeer::JoinReply::error;
  project.set("p2");
  peer->accept();
  EXPECT_FALSE(provider->state().is_connected);
  EXPECT_EQ(provider->state().error, "Failed to connect to realtime");
}

TEST_F(ProviderTest, StateFollowsTheChannelAfterAGoodJoin) {
  mount_provider();
  project.set("p1");
  peer->accept();
  ASSERT_TRUE(provider->state().is_connected);
  peer->send_phx_error(kTopic1);
  EXPECT_FALSE(provider->state().is_connected);
  ASSERT_TRUE(provider->state().error.has_value());
  EXPECT_EQ(provider->state().error->rfind("Subscription failed: CHANNEL_ERROR", 0), 0u);
  ASSERT_TRUE(clock.run_until(rtsync::client::timers::ChannelRejoin));
  peer->pump();
  EXPECT_TRUE(provider->state().is_connected);
  EXPECT_FALSE(provider->state().error.has_value());
}

TEST_F(ProviderTest, DestroyLeaves) {
  mount_provider();
  project.set("p1");
  peer->accept();
  provider.reset();
  EXPECT_FALSE(manager->project_id().has_value());
  project.set("p2");  // no longer followed
  EXPECT_FALSE(manager->project_id().has_value());
}

TEST_F(ProviderTest, EventsInvalidateTheSixFamiliesAndNothingElse) {
  mount_task_queries();
  cache.set_query_data(QueryKey{"tasks", "inactive"}, json::value("old"));
  mount_provider();
  project.set("p1");
  peer->accept();
  clock.advance(seconds(1));  // past the gap fill's coalescing window
  fetches.clear();
  peer->send_change(kTopic1, "UPDATE", json::object{{"id", "t1"}, {"status", "Complete"}});
  clock.run_ready();
  for (const auto& k : family_keys())
    EXPECT_EQ(fetches.count(k), 1u) << k.hash();
  EXPECT_EQ(fetches.count(kProfile), 0u);
  EXPECT_EQ(fetches.count(kLegacyGenerations), 0u);
  // Inactive matches are only marked.
  EXPECT_TRUE(cache.get_query(QueryKey{"tasks", "inactive"})->state().is_invalidated);
  EXPECT_EQ(fetches.count(QueryKey{"tasks", "inactive"}), 0u);
  EXPECT_FALSE(cache.get_query(kProfile)->state().is_invalidated);
  ASSERT_NE(provider->state().last(kTaskUpdateEvent), nullptr);
  EXPECT_EQ(provider->state().last(kTaskUpdateEvent)->payload->at("new").at("status").as_string(),
            "Complete");
  EXPECT_EQ(provider->state().last(kTaskUpdateEvent)->timestamp, clock.wall_ms());
  // Shared with the manager, not copied.
  EXPECT_EQ(provider->state().last(kTaskUpdateEvent)->payload.get(),
            manager->last_event_payload().get());
  EXPECT_EQ(provider->state().last(kTaskNewEvent), nullptr);
  clock.advance(seconds(1));
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "t2"}});
  clock.run_ready();
  for (const auto& k : family_keys())
    EXPECT_EQ(fetches.count(k), 2u) << k.hash();
  ASSERT_NE(provider->state().last(kTaskNewEvent), nullptr);
  EXPECT_EQ(provider->state().last(kTaskNewEvent)->payload->at("new").at("id").as_string(), "t2");
  EXPECT_EQ(provider->stats().invalidation_calls, 6u * 2 + 6u);  // two events + the gap fill
}

TEST_F(ProviderTest, InvalidationMapIsConfigurable) {
  mount_task_queries();
  rebind([](SyncBinding& b) {
    b.invalidations = {{std::string(kTaskNewEvent), {QueryKey{"task-status-counts"}}}};
    b.gap_fill_families = {};
  });
  mount_provider();
  project.set("p1");
  peer->accept();
  clock.run_ready();
  fetches.clear();
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "t2"}});
  peer->send_change(kTopic1, "UPDATE", json::object{{"id", "t2"}});  // not mapped
  clock.run_ready();
  EXPECT_EQ(fetches.count(QueryKey{"task-status-counts", "p1"}), 1u);
  EXPECT_EQ(fetches.count(QueryKey{"tasks", "single", "t1"}), 0u);
}

TEST_F(ProviderTest, BurstOfAThousandEventsCostsAtMostTwoRefetchesPerWindow) {
  fetches.latency = milliseconds(30);
  mount_task_queries();
  mount_provider();
  project.set("p1");
  peer->accept();
  clock.advance(seconds(1));
  fetches.clear();
  const auto window = cache.config().coalesce_window;
  const auto start = clock.now();
  for (int i = 0; i < 1000; ++i) {  // one event per millisecond for 1 s
    peer->send_change(kTopic1, i % 3 == 0 ? "INSERT" : "UPDATE",
                      json::object{{"id", "t" + std::to_string(i)}});
    clock.advance(milliseconds(1));
  }
  const auto last_event = clock.now() - milliseconds(1);
  clock.advance(seconds(1));  // trailing refetches and their completions
  for (const auto& k : family_keys()) {
    const auto n = fetches.count(k);
    EXPECT_LE(fetches.max_in_window(k, window), 2u) << k.hash();
    // About one per window, never one per event.
    EXPECT_GE(n, 10u) << k.hash();
    EXPECT_LE(n, 1000 / 100 + 2u) << k.hash();
    EXPECT_EQ(fetches.starts[k.hash()].front(), start) << "leading edge refetches at once";
    EXPECT_GT(fetches.starts[k.hash()].back(), last_event) << "the last event is followed";
  }
  EXPECT_EQ(fetches.count(kProfile), 0u);
  EXPECT_EQ(provider->stats().events, 1000u);
  EXPECT_EQ(provider->stats().invalidation_calls, 6000u + 6u);
}

TEST_F(ProviderTest, OptInBatchingKeepsRefetchTimingWithOneCallPerWindow) {
  fetches.latency = milliseconds(30);
  mount_task_queries();
  cache.set_query_data(QueryKey{"tasks", "inactive"}, json::value("old"));
  RealtimeProviderOptions options;
  options.batch_window = milliseconds(100);
  mount_provider(options);
  project.set("p1");
  peer->accept();
  clock.advance(seconds(1));
  fetches.clear();
  const auto calls_before = provider->stats().invalidation_calls;
  const auto start = clock.now();
  for (int i = 0; i < 1000; ++i) {
    peer->send_change(kTopic1, "UPDATE", json::object{{"id", "t" + std::to_string(i)}});
    if (i == 0) {  // the first event invalidates at once
      EXPECT_TRUE(cache.get_query(QueryKey{"tasks", "inactive"})->state().is_invalidated);
    }
    clock.advance(milliseconds(1));
  }
  const auto last_event = clock.now() - milliseconds(1);
  clock.advance(seconds(1));
  // One six-family invalidation per window: the leading one, then one per 100 ms.
  const auto calls = provider->stats().invalidation_calls - calls_before;
  EXPECT_LE(calls, 6u * 11);
  EXPECT_GE(calls, 6u * 10);
  EXPECT_EQ(provider->stats().events_batched, 999u);  // all but the first
  for (const auto& k : family_keys()) {
    EXPECT_LE(fetches.max_in_window(k, milliseconds(100)), 2u) << k.hash();
    EXPECT_EQ(fetches.starts[k.hash()].front(), start) << k.hash();
    EXPECT_GT(fetches.starts[k.hash()].back(), last_event) << k.hash();
  }
  EXPECT_EQ(fetches.count(kProfile), 0u);
  // After the burst the window closes: the next event invalidates at once again.
  fetches.clear();
  peer->send_change(kTopic1, "UPDATE", json::object{{"id", "late"}});
  clock.run_ready();
  EXPECT_EQ(fetches.count(family_keys()[0]), 1u);
  // A batch waiting at destruction dies with the provider (ASan would see a late call).
  peer->send_change(kTopic1, "UPDATE", json::object{{"id", "later"}});
  EXPECT_EQ(provider->stats().events_batched, 1000u);
  provider.reset();
  fetches.clear();
  clock.advance(seconds(1));
  EXPECT_EQ(fetches.count(kProfile), 0u);
}

TEST_F(ProviderTest, GapFillAfterEveryResubscribe) {
  mount_task_queries();
  mount_provider();
  project.set("p1");
  peer->accept();
  clock.run_ready();
  // The first SUBSCRIBED fills too (events before the join would otherwise be lost).
  for (const auto& k : family_keys())
    EXPECT_EQ(fetches.count(k), 1u) << k.hash();
  EXPECT_EQ(provider->stats().gap_fills, 1u);
  clock.advance(seconds(1));
  fetches.clear();
  peer->drop();  // realtime down: changes made now produce no events
  EXPECT_FALSE(provider->state().is_connected);
  clock.run_ready();
  EXPECT_EQ(fetches.count(family_keys()[0]), 0u);
  ASSERT_TRUE(clock.run_until(rtsync::client::timers::SocketReconnect));
  peer->accept();  // the socket rejoins: SUBSCRIBED again
  clock.run_ready();
  EXPECT_TRUE(provider->state().is_connected);
  EXPECT_EQ(provider->stats().gap_fills, 2u);
  for (const auto& k : family_keys())
    EXPECT_EQ(fetches.count(k), 1u) << k.hash();
  EXPECT_EQ(fetches.count(kProfile), 0u);
}

// ---- changes overflow ("Too many changes") ----

// Joined p1 with the task queries mounted, past the gap fill's window, fetch log cleared.
class OverflowTest : public ProviderTest {
 protected:
  explicit OverflowTest(SocketOptions options = test_socket_options())
      : ProviderTest(std::move(options)) {}
  void joined(RealtimeProviderOptions options = {}) {
    mount_task_queries();
    mount_provider(std::move(options));
    project.set("p1");
    peer->accept();
    ASSERT_TRUE(provider->state().is_connected);
    clock.advance(seconds(1));
    fetches.clear();
    calls_before = provider->stats().invalidation_calls;
  }
  void expect_each_family_fetched(std::size_t n) {
    for (const auto& k : family_keys())
      EXPECT_EQ(fetches.count(k), n) << k.hash();
    EXPECT_EQ(fetches.count(kProfile), 0u);
    EXPECT_EQ(fetches.count(kLegacyGenerations), 0u);
  }
  std::uint64_t calls_before = 0;
};

TEST_F(OverflowTest, TooManyChangesOnTasksInvalidatesTheSixFamiliesOnce) {
  log::Capture capture;
  joined();
  cache.set_query_data(QueryKey{"tasks", "inactive"}, json::value("old"));
  send_overflow("p1");
  clock.run_ready();
  expect_each_family_fetched(1);
  EXPECT_TRUE(cache.get_query(QueryKey{"tasks", "inactive"})->state().is_invalidated);
  EXPECT_FALSE(cache.get_query(kProfile)->state().is_invalidated);
  EXPECT_EQ(provider->stats().invalidation_calls - calls_before, 6u);
  EXPECT_EQ(provider->stats().overflows, 1u);
  EXPECT_EQ(provider->stats().overflows_unbound, 0u);
  EXPECT_EQ(provider->stats().events, 0u);
  // Not a task event: the stamps the UI shows stay as they were.
  EXPECT_EQ(provider->state().last(kTaskUpdateEvent), nullptr);
  EXPECT_EQ(provider->state().last(kTaskNewEvent), nullptr);
  const auto stats = provider->diagnostics().at("stats");
  EXPECT_EQ(stats.at("overflows").to_number<std::int64_t>(), 1);
  EXPECT_EQ(stats.at("overflowsUnbound").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(capture.contains(
      "[SimpleRealtimeProvider] too many changes on public.tasks: refetching its 6 families"));
  // Nothing more follows: one signal, one refetch per query.
  clock.advance(seconds(1));
  expect_each_family_fetched(1);
}

TEST_F(OverflowTest, TableWithoutFamiliesInvalidatesNothing) {
  log::Capture capture;
  joined();
  send_overflow("p1", "profiles");
  clock.advance(seconds(1));
  expect_each_family_fetched(0);
  EXPECT_EQ(provider->stats().invalidation_calls, calls_before);
  EXPECT_EQ(provider->stats().overflows, 0u);
  EXPECT_EQ(provider->stats().overflows_unbound, 1u);
  EXPECT_TRUE(
      capture.contains("[SimpleRealtimeProvider] too many changes on public.profiles: no "
                       "query families bound to it; nothing to refetch"));
}

TEST_F(OverflowTest, ErrorStatusVariantInvalidatesNothing) {
  joined();
  send_overflow("p1", "tasks", "error");
  clock.advance(seconds(1));
  expect_each_family_fetched(0);
  EXPECT_EQ(provider->stats().invalidation_calls, calls_before);
  EXPECT_EQ(provider->stats().overflows + provider->stats().overflows_unbound, 0u);
  EXPECT_TRUE(provider->state().is_connected);
}

TEST_F(OverflowTest, TableFamiliesAreConfigurable) {
  rebind([](SyncBinding& b) { b.table_families = {{"public", "shots", {QueryKey{"shots"}}}}; });
  joined();
  send_overflow("p1", "shots");
  send_overflow("p1", "tasks");  // no longer bound
  clock.run_ready();
  EXPECT_EQ(fetches.count(QueryKey{"shots", "p1", 8}), 1u);
  EXPECT_EQ(fetches.count(QueryKey{"tasks", "single", "t1"}), 0u);
  EXPECT_EQ(fetches.count(QueryKey{"task-status-counts", "p1"}), 0u);
  EXPECT_EQ(provider->stats().overflows, 1u);
  EXPECT_EQ(provider->stats().overflows_unbound, 1u);
}

// The signal arrives after the transaction's first changes were delivered one by one: it joins
// their coalescing window, and the trailing refetch (after the signal) reads the whole transaction.
TEST_F(OverflowTest, CoalescesWithTheChangesBeforeItLikeAnEvent) {
  fetches.latency = milliseconds(30);
  joined();
  const auto window = cache.config().coalesce_window;
  const auto start = clock.now();
  peer->send_change(kTopic1, "UPDATE", json::object{{"id", "t1"}});  // leading refetch
  clock.advance(milliseconds(50));
  const auto coalesced_before = provider->stats().refetches_coalesced;
  send_overflow("p1");
  clock.run_ready();
  // Inside the window: no second refetch now, one trailing refetch per active query instead.
  for (const auto& k : family_keys())
    EXPECT_EQ(fetches.count(k), 1u) << k.hash();
  EXPECT_EQ(provider->stats().refetches_coalesced - coalesced_before, family_keys().size());
  clock.advance(seconds(1));
  for (const auto& k : family_keys()) {
    ASSERT_EQ(fetches.count(k), 2u) << k.hash();
    EXPECT_EQ(fetches.starts[k.hash()].front(), start) << k.hash();
    EXPECT_EQ(fetches.starts[k.hash()].back(), start + window) << k.hash();
  }
  EXPECT_EQ(fetches.count(kProfile), 0u);
  EXPECT_EQ(provider->stats().invalidation_calls - calls_before, 6u * 2);
  // Alone, outside any window, it refetches at once (leading edge).
  fetches.clear();
  send_overflow("p1");
  clock.run_ready();
  for (const auto& k : family_keys())
    EXPECT_EQ(fetches.count(k), 1u) << k.hash();
}

TEST_F(OverflowTest, OptInBatchingFoldsOverflowsLikeEvents) {
  RealtimeProviderOptions options;
  options.batch_window = milliseconds(100);
  joined(options);
  send_overflow("p1");  // leading: invalidates at once and opens the window
  EXPECT_EQ(provider->stats().invalidation_calls - calls_before, 6u);
  send_overflow("p1");
  send_overflow("p1");
  EXPECT_EQ(provider->stats().invalidation_calls - calls_before, 6u);
  EXPECT_EQ(provider->stats().events_batched, 2u);
  clock.advance(milliseconds(100));  // the window ends: one invalidation for both
  EXPECT_EQ(provider->stats().invalidation_calls - calls_before, 12u);
  clock.advance(seconds(1));
  EXPECT_EQ(provider->stats().invalidation_calls - calls_before, 12u);
  EXPECT_EQ(provider->stats().overflows, 3u);
}

class OverflowV1Test : public OverflowTest {
 protected:
  static SocketOptions options() {
    auto o = test_socket_options();
    o.vsn = protocol::Vsn::v1;
    return o;
  }
  OverflowV1Test() : OverflowTest(options()) {
    peer = std::make_unique<FakeRealtimePeer>(*fake, protocol::Vsn::v1);
  }
};

TEST_F(OverflowV1Test, TheVsn1FrameInvalidatesTheSixFamiliesOnce) {
  joined();
  send_overflow("p1");
  clock.run_ready();
  expect_each_family_fetched(1);
  EXPECT_EQ(provider->stats().invalidation_calls - calls_before, 6u);
  EXPECT_EQ(provider->stats().overflows, 1u);
}

TEST_F(ProviderTest, LogsLifecycleWithTheSeedsPrefix) {
  log::Capture capture;
  mount_provider();
  project.set("p1");
  peer->accept();
  EXPECT_TRUE(capture.contains("[SimpleRealtimeProvider] project p1 selected; connecting"));
  EXPECT_TRUE(
      capture.contains("[SimpleRealtimeProvider] subscribed to project p1; invalidating 6 families "
                       "to fill the gap"));
}

}  // namespace
}  // namespace rtsync::client::sync::testing
