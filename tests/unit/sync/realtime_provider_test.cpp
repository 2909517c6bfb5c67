#include "rtsync/client/sync/realtime_provider.hpp"

#include <gtest/gtest.h>

#include "manager_fixture.hpp"
#include "query_helpers.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync::testing {
namespace {

using query::QueryKey;

const std::string kTopic1 = "realtime:task-updates:p1";

class ProviderTest : public ManagerFixture {
 protected:
  ProviderTest() { sign_in(); }

  void mount_provider(RealtimeProviderOptions options = {}) {
    provider = std::make_unique<RealtimeProvider>(*manager, cache, bus, freshness, project,
                                                  std::move(options));
    sub = provider->subscribe([this](const ConnectionState& s) { states.push_back(s); });
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
  std::vector<ConnectionState> states;
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
  ASSERT_TRUE(clock.run_until(TimerId::ChannelRejoin));
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
  ASSERT_TRUE(provider->state().last_task_update.has_value());
  EXPECT_EQ(provider->state().last_task_update->payload->at("new").at("status").as_string(),
            "Complete");
  EXPECT_EQ(provider->state().last_task_update->timestamp, clock.wall_ms());
  // Shared with the manager, not copied.
  EXPECT_EQ(provider->state().last_task_update->payload.get(), manager->last_event_payload().get());
  EXPECT_FALSE(provider->state().last_new_task.has_value());
  clock.advance(seconds(1));
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "t2"}});
  clock.run_ready();
  for (const auto& k : family_keys())
    EXPECT_EQ(fetches.count(k), 2u) << k.hash();
  ASSERT_TRUE(provider->state().last_new_task.has_value());
  EXPECT_EQ(provider->state().last_new_task->payload->at("new").at("id").as_string(), "t2");
  EXPECT_EQ(provider->stats().invalidation_calls, 6u * 2 + 6u);  // two events + the gap fill
}

TEST_F(ProviderTest, InvalidationMapIsConfigurable) {
  mount_task_queries();
  RealtimeProviderOptions options;
  options.invalidations = {{std::string(kTaskNewEvent), {QueryKey{"task-status-counts"}}}};
  options.gap_fill_families = {};
  mount_provider(options);
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
  ASSERT_TRUE(clock.run_until(TimerId::SocketReconnect));
  peer->accept();  // the socket rejoins: SUBSCRIBED again
  clock.run_ready();
  EXPECT_TRUE(provider->state().is_connected);
  EXPECT_EQ(provider->stats().gap_fills, 2u);
  for (const auto& k : family_keys())
    EXPECT_EQ(fetches.count(k), 1u) << k.hash();
  EXPECT_EQ(fetches.count(kProfile), 0u);
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
