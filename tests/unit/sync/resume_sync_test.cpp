// Resumable change streams in the coordination layer (docs/resume.md): a rejoin the server
// resumed refetches nothing and counts as fresh; a told gap, or a server without rtsync fields
// (hosted Supabase), refetches exactly the families the binding maps the channel's tables to; the
// position survives the manager replacing the channel (heal); heartbeats keep an idle channel's
// position recent. The server is the fake peer answering with frames as the contract writes them.
#include <gtest/gtest.h>

#include "manager_fixture.hpp"
#include "query_helpers.hpp"
#include "rtsync/client/sync/realtime_provider.hpp"
#include "rtsync/client/sync/reconnect_scheduler.hpp"
#include "rtsync/client/transport/names.hpp"

namespace rtsync::client::sync::testing {
namespace {

using query::QueryKey;

constexpr std::string_view kEpoch = "5f0c2a9e1b7d4c38";

json::object wire_pos(std::string_view lsn, int index) {
  return json::object{{"epoch", kEpoch}, {"lsn", lsn}, {"index", index}};
}
StreamPosition pos(std::string_view lsn, int index) {
  return StreamPosition{std::string(kEpoch), *protocol::parse_lsn(lsn), index};
}

class ResumeSyncTest : public ManagerFixture {
 protected:
  ResumeSyncTest() { sign_in(); }

  // The server answers joins with this head, and with `resume` (a JSON text) when given.
  void server(std::string_view head_lsn, std::string_view resume = {}) {
    json::object rt{{"epoch", kEpoch}, {"position", wire_pos(head_lsn, 0)}};
    if (!resume.empty()) rt["resume"] = core::parse_json(resume).value();
    peer->rtsync_reply = std::move(rt);
  }
  void mount(const std::vector<QueryKey>& keys) {
    for (const auto& k : keys)
      queries.mount(cache, k, fetches.fn());
    clock.run_ready();
  }
  void mount_provider() {
    provider = std::make_unique<RealtimeProvider>(*manager, cache, bus, freshness, project);
  }
  void select_and_join() {
    project.set("p1");
    peer->accept();
    clock.run_ready();
  }
  // The link drops and comes back; the peer answers the rejoin.
  void drop_and_rejoin() {
    peer->drop();
    ASSERT_TRUE(clock.run_until(rtsync::client::timers::SocketReconnect));
    peer->accept();
    clock.run_ready();
  }
  std::optional<StreamPosition> last_resume_request() const {
    return protocol::find_resume_request(peer->joins().back().payload);
  }
  std::size_t fetched(const QueryKey& k) const { return fetches.count(k); }

  inline static const QueryKey kTasks{"tasks", "paginated", "p1", 1, 50, "Queued"};
  inline static const QueryKey kCounts{"task-status-counts", "p1"};
  inline static const QueryKey kShots{"shots", "p1", 8};
  inline static const QueryKey kComments{"comments", "p1"};

  query::QueryClient cache{clock};
  ProjectSelection project;
  FetchLog fetches{clock};
  MountedQueries queries;
  std::unique_ptr<RealtimeProvider> provider;
};

TEST_F(ResumeSyncTest, AResumedRejoinRefetchesNothingAndCountsAsFresh) {
  mount({kTasks, kCounts, kShots});
  mount_provider();
  server("0/100");
  select_and_join();
  EXPECT_EQ(provider->stats().gap_fills, 1u);  // the first join fills (nothing to resume)
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "t1"}}, {}, "tasks",
                    wire_pos("0/200", 1));
  run_for(seconds(60));  // the event is old now: not fresh
  EXPECT_FALSE(freshness.is_fresh(kPaginated));
  fetches.clear();

  server("0/300", R"({"status":"resumed","replayed":0})");
  drop_and_rejoin();
  ASSERT_TRUE(last_resume_request());
  EXPECT_EQ(*last_resume_request(), pos("0/200", 1));
  EXPECT_TRUE(provider->state().is_connected);
  EXPECT_EQ(provider->stats().gap_fills, 1u);
  EXPECT_EQ(provider->stats().resumes, 1u);
  for (const auto& k : {kTasks, kCounts, kShots})
    EXPECT_EQ(fetched(k), 0u) << k.hash();
  EXPECT_TRUE(freshness.is_fresh(kPaginated));
  EXPECT_EQ(manager->resumes(), 1u);
  EXPECT_EQ(manager->gaps(), 0u);
  const auto status = manager->status_json().as_object();
  EXPECT_EQ(status.at("resumes").to_number<int>(), 1);
  EXPECT_EQ(status.at("lastJoin").as_object().at("kind").as_string(), "resumed");
  EXPECT_EQ(json::serialize(status.at("position")),
            R"({"epoch":"5f0c2a9e1b7d4c38","lsn":"0/300","index":0})");
  // Polling follows freshness as before: 31 s on, a fresh key polls at 15 s, not the quiet 10 s.
  run_for(seconds(31));
  EXPECT_EQ(freshness.polling_interval(kPaginated), seconds(15));
}

TEST_F(ResumeSyncTest, AResumedReplayIsDeliveredAsEventsWithoutAGapFill) {
  mount({kTasks});
  mount_provider();
  server("0/100");
  select_and_join();
  BusRecorder rec(bus, {kTaskNewEvent});
  server("0/300", R"({"status":"resumed","replayed":1})");
  drop_and_rejoin();
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "missed"}}, {}, "tasks",
                    wire_pos("0/250", 1));
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "missed"}}, {}, "tasks",
                    wire_pos("0/250", 1));  // a duplicate never reaches the bus
  clock.run_ready();
  EXPECT_EQ(rec.count(kTaskNewEvent), 1u);
  EXPECT_EQ(provider->stats().gap_fills, 1u);
  EXPECT_EQ(manager->replayed(), 1u);
  EXPECT_EQ(*manager->position(), pos("0/300", 0));
}

TEST_F(ResumeSyncTest, AToldGapRefetchesExactlyTheFamiliesOfTheChannelsTables) {
  // Two tables on the channel (tasks, shots), a third family the binding maps to a table the
  // channel does not carry (comments).
  rebind([](SyncBinding& b) {
    b.changes.push_back({"INSERT", "public", "shots", "project_id", std::string(kTaskNewEvent)});
    b.table_families = {{"public", "tasks", {QueryKey{"tasks"}, QueryKey{"task-status-counts"}}},
                        {"public", "shots", {QueryKey{"shots"}}},
                        {"public", "comments", {QueryKey{"comments"}}}};
    b.gap_fill_families = {QueryKey{"tasks"}, QueryKey{"task-status-counts"}, QueryKey{"shots"},
                           QueryKey{"comments"}};
  });
  mount({kTasks, kCounts, kShots, kComments});
  mount_provider();
  fetches.clear();
  server("0/100");
  select_and_join();
  EXPECT_EQ(fetched(kComments), 0u);
  EXPECT_EQ(fetched(kShots), 1u);
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "s1"}}, {}, "shots",
                    wire_pos("0/200", 1));
  run_for(seconds(60));
  fetches.clear();

  server("0/900",
         R"({"status":"gap","reason":"position older than the server's history","replayed":0})");
  drop_and_rejoin();
  EXPECT_EQ(*last_resume_request(), pos("0/200", 1));
  EXPECT_EQ(provider->stats().gap_fills, 2u);
  EXPECT_EQ(provider->stats().resumes, 0u);
  EXPECT_EQ(fetched(kTasks), 1u);
  EXPECT_EQ(fetched(kCounts), 1u);
  EXPECT_EQ(fetched(kShots), 1u);
  EXPECT_EQ(fetched(kComments), 0u);
  EXPECT_FALSE(freshness.is_fresh(kPaginated));
  EXPECT_EQ(manager->gaps(), 1u);
  EXPECT_EQ(*manager->position(), pos("0/900", 0));
  EXPECT_EQ(channel_gap_families(manager->binding()),
            (std::vector<QueryKey>{QueryKey{"tasks"}, QueryKey{"task-status-counts"},
                                   QueryKey{"shots"}}));
}

TEST_F(ResumeSyncTest, HostedSupabaseWithoutRtsyncFieldsFillsEveryRejoinAsBefore) {
  mount({kTasks, kCounts, kShots});
  mount_provider();
  select_and_join();  // no rtsync anywhere
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "t1"}});
  clock.run_ready();
  run_for(seconds(5));
  fetches.clear();
  drop_and_rejoin();
  EXPECT_EQ(provider->stats().gap_fills, 2u);
  for (const auto& k : {kTasks, kCounts, kShots})
    EXPECT_EQ(fetched(k), 1u) << k.hash();
  EXPECT_EQ(manager->gaps(), 1u);
  EXPECT_FALSE(manager->position());
  for (const auto& j : peer->joins())
    EXPECT_EQ(json::serialize(j.payload).find("rtsync"), std::string::npos);
  // The task app's gap families are its six, as before.
  EXPECT_EQ(channel_gap_families(manager->binding()), domain::task_binding().gap_fill_families);
}

TEST_F(ResumeSyncTest, AChannelTheManagerReplacesKeepsItsPosition) {
  mount({kTasks});
  mount_provider();
  server("0/100");
  select_and_join();
  peer->send_change(kTopic1, "INSERT", json::object{{"id", "t1"}}, {}, "tasks",
                    wire_pos("0/200", 7));
  clock.run_ready();
  peer->send_phx_close(kTopic1);  // the transport does not rejoin: the manager heals
  clock.run_ready();
  EXPECT_FALSE(provider->state().is_connected);
  const auto joins_before = peer->joins().size();
  server("0/300", R"({"status":"resumed","replayed":0})");
  bus.emit(kAuthHealEvent, json::object{{"source", "test"}});
  run_for(seconds(2));
  ASSERT_GT(peer->joins().size(), joins_before);
  ASSERT_TRUE(last_resume_request());
  EXPECT_EQ(*last_resume_request(), pos("0/200", 7));
  EXPECT_TRUE(provider->state().is_connected);
  EXPECT_EQ(provider->stats().resumes, 1u);
  EXPECT_EQ(provider->stats().gap_fills, 1u);
}

TEST_F(ResumeSyncTest, AReplacedChannelWithoutAPositionIsAGapNotFresh) {
  mount({kTasks});
  mount_provider();
  select_and_join();  // Supabase: no position ever
  std::vector<ChannelPhaseChange> phases;
  auto sub = manager->on_phase([&](const ChannelPhaseChange& c) { phases.push_back(c); });
  peer->send_phx_close(kTopic1);
  clock.run_ready();
  bus.emit(kAuthHealEvent, json::object{{"source", "test"}});
  run_for(seconds(2));
  ASSERT_FALSE(phases.empty());
  ASSERT_TRUE(phases.back().outcome);
  EXPECT_EQ(phases.back().outcome->kind, JoinOutcomeKind::gap);
  EXPECT_EQ(provider->stats().gap_fills, 2u);
}

TEST_F(ResumeSyncTest, HeartbeatsKeepAnIdleChannelsPositionRecent) {
  mount({kTasks});
  mount_provider();
  server("0/100");
  select_and_join();
  peer->rtsync_heartbeat = json::object{{"epoch", kEpoch}, {"position", wire_pos("0/900", 0)}};
  run_for(socket->options().heartbeat_interval + seconds(1));
  EXPECT_EQ(*manager->position(), pos("0/900", 0));
  server("0/950", R"({"status":"resumed","replayed":0})");
  drop_and_rejoin();
  EXPECT_EQ(*last_resume_request(), pos("0/900", 0));
}

}  // namespace
}  // namespace rtsync::client::sync::testing
