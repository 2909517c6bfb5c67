// The coordination layer is generic: a chat app's binding (rooms and their messages), unrelated to
// the task app, drives the whole assembled layer — channel, specs, bus events, freshness,
// invalidation, overflow, gap fill, stamped events and diagnostics — with nothing of the task
// app's contract showing up.
#include <gtest/gtest.h>

#include "manager_fixture.hpp"
#include "query_helpers.hpp"
#include "rtsync/client/sync/realtime_sync.hpp"

namespace rtsync::client::sync::testing {
namespace {

using query::QueryKey;

constexpr std::string_view kMessageNew = "chat:message-new";
constexpr std::string_view kMessageGone = "chat:message-deleted";
constexpr std::string_view kTyping = "chat:typing";
const std::string kTopic = "realtime:room:r1";

SyncBinding chat_binding() {
  SyncBinding b;
  b.channel_prefix = "room:";
  b.scope_name = "roomId";
  b.broadcasts = {{"typing", std::string(kTyping)}};
  b.changes = {{"INSERT", "public", "messages", "room_id", std::string(kMessageNew)},
               {"DELETE", "public", "messages", "room_id", std::string(kMessageGone)}};
  b.freshness_keys = [](const std::string& room) {
    return std::vector<json::array>{json::array{"messages", room}};
  };
  b.invalidations = {{std::string(kMessageNew), {QueryKey{"messages"}, QueryKey{"rooms"}}},
                     {std::string(kMessageGone), {QueryKey{"messages"}}}};
  b.table_families = {{"public", "messages", {QueryKey{"messages"}}}};
  b.gap_fill_families = {QueryKey{"messages"}};
  b.stamped_events = {{std::string(kMessageNew), "lastMessageAt"}};
  return b;
}

class ChatBinding : public ::testing::Test {
 protected:
  ChatBinding() {
    auto t = std::make_unique<FakeTransport>();
    fake = t.get();
    socket = std::make_unique<RealtimeSocket>(clock, instrument_transport(std::move(t), messages),
                                              test_socket_options());
    peer = std::make_unique<FakeRealtimePeer>(*fake);
    RealtimeSyncOptions o;
    o.manager.binding = chat_binding();
    sync =
        std::make_unique<RealtimeSync>(clock, *socket, cache, Refresher{}, std::move(o), &messages);
    sync->register_diagnostics(diagnostics).swap(diagnostic_subs);
    for (const auto& k : {kMessages, kRooms, kTasks})
      queries.mount(cache, k, fetches.fn());
    clock.run_ready();
    fetches.clear();
  }

  // Signed in, room r1 selected and joined, the gap fill's refetches done and forgotten.
  void joined() {
    Session s;
    s.access_token = "jwt-chat";
    s.user_id = "u1";
    sync->auth().sign_in(s);
    socket->connect();
    sync->project().set("r1");
    peer->accept();
    ASSERT_TRUE(sync->provider().state().is_connected);
    clock.advance(seconds(1));
    fetches.clear();
  }

  inline static const QueryKey kMessages{"messages", "r1"};
  inline static const QueryKey kRooms{"rooms"};
  inline static const QueryKey kTasks{"tasks", "paginated", "p1", 1, 50, "Queued"};

  ManualScheduler clock;
  MessageClock messages{clock};
  FakeTransport* fake = nullptr;
  std::unique_ptr<RealtimeSocket> socket;
  std::unique_ptr<FakeRealtimePeer> peer;
  query::QueryClient cache{clock};
  FetchLog fetches{clock};
  MountedQueries queries;
  core::Diagnostics diagnostics{clock};
  std::unique_ptr<RealtimeSync> sync;
  std::vector<core::Subscription> diagnostic_subs;
};

TEST_F(ChatBinding, JoinsTheRoomsChannelWithItsOwnSpecs) {
  joined();
  ASSERT_EQ(peer->joins().size(), 1u);
  const auto& j = peer->joins()[0];
  EXPECT_EQ(j.topic, kTopic);
  EXPECT_EQ(j.access_token, "jwt-chat");
  ASSERT_EQ(j.acks.size(), 2u);
  EXPECT_EQ(j.acks[0].spec.event, "INSERT");
  EXPECT_EQ(j.acks[1].spec.event, "DELETE");
  for (const auto& a : j.acks) {
    EXPECT_EQ(a.spec.schema, "public");
    EXPECT_EQ(a.spec.table, "messages");
    EXPECT_EQ(a.spec.filter, "room_id=eq.r1");
  }
  const auto snap = diagnostics.snapshot();
  EXPECT_EQ(snap.at("realtimeStatus").at("roomId").as_string(), "r1");
  EXPECT_FALSE(snap.at("realtimeStatus").as_object().contains("projectId"));
  EXPECT_EQ(snap.at("provider").at("roomId").as_string(), "r1");
  EXPECT_TRUE(snap.at("provider").at("lastMessageAt").is_null());
  EXPECT_FALSE(snap.at("provider").as_object().contains("lastTaskUpdateAt"));
}

TEST_F(ChatBinding, TheGapFillRefetchesTheRoomsFamiliesOnly) {
  Session s;
  s.access_token = "jwt-chat";
  sync->auth().sign_in(s);
  sync->project().set("r1");
  peer->accept();
  clock.run_ready();
  EXPECT_EQ(fetches.count(kMessages), 1u);
  EXPECT_EQ(fetches.count(kRooms), 0u);
  EXPECT_EQ(fetches.count(kTasks), 0u);
  EXPECT_EQ(sync->provider().stats().gap_fills, 1u);
}

TEST_F(ChatBinding, EventsBecomeTheBindingsBusEventsAndInvalidateItsFamilies) {
  joined();
  BusRecorder rec(sync->bus(), {kMessageNew, kMessageGone, kTyping, "realtime:task-update",
                                "realtime:task-new"});
  peer->send_change(kTopic, "INSERT", json::object{{"id", "m1"}, {"room_id", "r1"}}, {},
                    "messages");
  clock.run_ready();
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events[0].first, kMessageNew);
  EXPECT_EQ(rec.events[0].second.at("table").as_string(), "messages");
  EXPECT_EQ(rec.events[0].second.at("new").at("id").as_string(), "m1");
  EXPECT_EQ(fetches.count(kMessages), 1u);
  EXPECT_EQ(fetches.count(kRooms), 1u);
  EXPECT_EQ(fetches.count(kTasks), 0u);
  // The stamped event, and the room's freshness key.
  const auto* last = sync->provider().state().last(kMessageNew);
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(last->payload->at("new").at("id").as_string(), "m1");
  EXPECT_EQ(last->timestamp, clock.wall_ms());
  EXPECT_TRUE(sync->freshness().is_fresh(FreshnessTracker::Key{"messages", "r1", "page", 2}));
  EXPECT_FALSE(sync->freshness().is_fresh(FreshnessTracker::Key{"tasks"}));
  EXPECT_EQ(diagnostics.snapshot().at("provider").at("lastMessageAt").as_int64(), clock.wall_ms());

  clock.advance(seconds(1));
  fetches.clear();
  peer->send_change(kTopic, "DELETE", json::object{}, {}, "messages");
  clock.run_ready();
  EXPECT_EQ(rec.count(kMessageGone), 1u);
  EXPECT_EQ(fetches.count(kMessages), 1u);
  EXPECT_EQ(fetches.count(kRooms), 0u);

  // A broadcast becomes its bus event and, bound to no families, invalidates nothing.
  clock.advance(seconds(1));
  fetches.clear();
  peer->send_broadcast(kTopic, "typing", json::object{{"user", "u2"}});
  clock.run_ready();
  EXPECT_EQ(rec.count(kTyping), 1u);
  EXPECT_EQ(fetches.count(kMessages) + fetches.count(kRooms) + fetches.count(kTasks), 0u);
  EXPECT_EQ(rec.count("realtime:task-update") + rec.count("realtime:task-new"), 0u);
}

TEST_F(ChatBinding, TooManyChangesOnMessagesRefetchesTheMessagesWithTheRoomInTheDetail) {
  joined();
  BusRecorder rec(sync->bus(), {kChangesOverflowEvent});
  const auto* j = peer->join_of(kTopic);
  ASSERT_TRUE(j && j->join_ref);
  fake->receive_text(overflow_frame_v2(*j->join_ref, "room:r1", "messages"));
  clock.run_ready();
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(json::serialize(rec.events[0].second),
            R"({"schema":"public","table":"messages","limit":1000,"roomId":"r1"})");
  EXPECT_EQ(fetches.count(kMessages), 1u);
  EXPECT_EQ(fetches.count(kRooms), 0u);
  EXPECT_EQ(sync->provider().stats().overflows, 1u);
}

TEST_F(ChatBinding, HealAndLeaveWorkOnTheRoomsChannel) {
  joined();
  peer->join_reply = FakeRealtimePeer::JoinReply::error;
  peer->send_phx_error(kTopic);
  EXPECT_FALSE(sync->provider().state().is_connected);
  sync->request_reconnect({"Test", "test", ReconnectPriority::high});
  peer->join_reply = FakeRealtimePeer::JoinReply::ok;
  clock.advance(seconds(3));
  peer->accept();
  clock.advance(seconds(2));
  peer->accept();
  EXPECT_TRUE(sync->manager().subscribed());
  EXPECT_GE(peer->joins().size(), 2u);
  for (const auto& join : peer->joins())
    EXPECT_EQ(join.topic, kTopic);

  const auto leaves = peer->leaves().size();
  sync->project().set(std::nullopt);
  EXPECT_FALSE(sync->manager().subscribed());
  peer->pump();
  ASSERT_EQ(peer->leaves().size(), leaves + 1);
  EXPECT_EQ(peer->leaves().back(), kTopic);
}

}  // namespace
}  // namespace rtsync::client::sync::testing
