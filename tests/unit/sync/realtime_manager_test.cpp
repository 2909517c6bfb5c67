#include "rtsync/client/sync/realtime_manager.hpp"

#include <gtest/gtest.h>

#include "manager_fixture.hpp"
#include "rtsync/client/sync/names.hpp"
#include "rtsync/client/sync/reconnect_triggers.hpp"
#include "rtsync/client/transport/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync::testing {
namespace {

using Join = ManagerFixture;

TEST_F(Join, WithoutSessionReportsErrorAndLeavesTheProjectUnchanged) {
  log::Capture capture;
  EXPECT_FALSE(manager->join_project("p1"));
  EXPECT_EQ(freshness.status(), RealtimeStatus::error);
  EXPECT_EQ(freshness.reason(), "No valid session");
  EXPECT_FALSE(manager->project_id().has_value());
  EXPECT_EQ(fake->connect_count(), 0u);  // no channel, no socket
  EXPECT_TRUE(capture.contains("[SimpleRealtime] [auth] no valid session; not joining project p1"));

  // With a joined project, a failed auth check keeps it and its channel.
  sign_in();
  ASSERT_TRUE(join("p1"));
  auth.sign_out();
  EXPECT_FALSE(manager->join_project("p2"));
  EXPECT_EQ(manager->project_id(), "p1");
  EXPECT_TRUE(manager->subscribed());
  EXPECT_EQ(socket->channels().size(), 1u);
}

TEST_F(Join, SubscribesOneChannelWithTheSeedsBindingsAndToken) {
  sign_in("jwt-A");
  std::vector<bool> results;
  ASSERT_TRUE(join("p1", &results));
  EXPECT_EQ(socket->access_token(), "jwt-A");
  ASSERT_EQ(peer->joins().size(), 1u);
  const auto& j = peer->joins()[0];
  EXPECT_EQ(j.topic, "realtime:task-updates:p1");
  EXPECT_EQ(j.access_token, "jwt-A");
  ASSERT_EQ(j.acks.size(), 2u);
  EXPECT_EQ(j.acks[0].spec.event, "INSERT");
  EXPECT_EQ(j.acks[1].spec.event, "UPDATE");
  for (const auto& a : j.acks) {
    EXPECT_EQ(a.spec.schema, "public");
    EXPECT_EQ(a.spec.table, "tasks");
    EXPECT_EQ(a.spec.filter, "project_id=eq.p1");
  }
  EXPECT_EQ(results, (std::vector<bool>{true}));
  const auto s = manager->status();
  EXPECT_TRUE(s.subscribed);
  EXPECT_EQ(s.project_id, "p1");
  EXPECT_EQ(s.channel_state, "joined");
  EXPECT_EQ(s.reconnect_attempts, 0u);
  EXPECT_EQ(manager->snapshot().channel_state, "joined");
  EXPECT_EQ(freshness.status(), RealtimeStatus::connected);
  EXPECT_EQ(freshness.reason(), "Supabase subscription successful");
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::JoinGuard));
}

TEST_F(Join, GuardGivesUpAtExactlyTenSecondsWithoutTouchingSnapshotOrFreshness) {
  sign_in();
  std::vector<bool> results;
  ASSERT_TRUE(manager->join_project("p1", [&](bool ok) { results.push_back(ok); }));
  // The server never accepts the connection: no status at all.
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::JoinGuard), seconds(10));
  clock.advance(milliseconds(9'999));
  EXPECT_TRUE(results.empty());
  clock.advance(milliseconds(1));
  EXPECT_EQ(results, (std::vector<bool>{false}));
  EXPECT_EQ(manager->snapshot().channel_state, "closed");
  EXPECT_EQ(freshness.status(), RealtimeStatus::disconnected);
  EXPECT_EQ(manager->project_id(), "p1");
}

TEST_F(Join, TimedOutAndChannelErrorMapToErrorAndALaterSubscribedToConnected) {
  sign_in();
  peer->join_reply = FakeRealtimePeer::JoinReply::silent;
  std::vector<bool> results;
  ASSERT_TRUE(join("p1", &results));
  clock.advance(seconds(10));  // the channel's own 10 s join timeout (and our guard)
  EXPECT_EQ(results, (std::vector<bool>{false}));
  EXPECT_FALSE(manager->subscribed());
  EXPECT_EQ(manager->snapshot().channel_state, "error");
  EXPECT_EQ(freshness.status(), RealtimeStatus::error);
  EXPECT_EQ(freshness.reason(), "Subscription failed: TIMED_OUT");
  // The transport rejoins by itself; this time the server answers.
  peer->join_reply = FakeRealtimePeer::JoinReply::ok;
  ASSERT_TRUE(clock.run_until(rtsync::client::timers::ChannelRejoin));
  peer->pump();
  EXPECT_TRUE(manager->subscribed());
  EXPECT_EQ(manager->snapshot().channel_state, "joined");
  EXPECT_EQ(freshness.status(), RealtimeStatus::connected);
  // A server error after a good join shows too.
  peer->send_phx_error("realtime:task-updates:p1");
  EXPECT_FALSE(manager->subscribed());
  EXPECT_EQ(manager->snapshot().channel_state, "error");
  EXPECT_EQ(freshness.status(), RealtimeStatus::error);
  EXPECT_EQ(freshness.reason().rfind("Subscription failed: CHANNEL_ERROR", 0), 0u);
}

TEST_F(Join, ServerCloseIsDisconnected) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  peer->send_phx_close("realtime:task-updates:p1");
  EXPECT_FALSE(manager->subscribed());
  EXPECT_EQ(manager->snapshot().channel_state, "closed");
  EXPECT_EQ(freshness.status(), RealtimeStatus::disconnected);
  EXPECT_EQ(freshness.reason(), "Channel closed by server");
}

TEST_F(Join, SwitchLeavesTheOldChannelBeforeJoiningTheNew) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  std::vector<std::string> phases;
  auto sub = manager->on_phase([&](const ChannelPhaseChange& c) {
    phases.push_back(std::string(to_string(c.phase)) + ":" + c.project_id);
  });
  ASSERT_TRUE(join("p2"));
  EXPECT_EQ(peer->leaves(), (std::vector<std::string>{"realtime:task-updates:p1"}));
  ASSERT_EQ(peer->joins().size(), 2u);
  EXPECT_EQ(peer->joins()[1].topic, "realtime:task-updates:p2");
  EXPECT_EQ(phases, (std::vector<std::string>{"left:p1", "joining:p2", "subscribed:p2"}));
  ASSERT_EQ(socket->channels().size(), 1u);
  EXPECT_EQ(socket->channels()[0]->topic(), "realtime:task-updates:p2");
  EXPECT_EQ(manager->project_id(), "p2");
}

TEST_F(Join, LeaveClosesEverything) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  manager->leave();
  peer->pump();
  EXPECT_EQ(peer->leaves().size(), 1u);
  EXPECT_FALSE(manager->project_id().has_value());
  EXPECT_FALSE(manager->subscribed());
  EXPECT_EQ(manager->snapshot().channel_state, "closed");
  EXPECT_EQ(manager->status().channel_state, "closed");
  EXPECT_EQ(freshness.status(), RealtimeStatus::disconnected);
  EXPECT_EQ(freshness.reason(), "Channel unsubscribed");
  EXPECT_TRUE(socket->channels().empty());
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::JoinGuard) +
                clock.pending_count(rtsync::client::sync::timers::HealRetry),
            0u);
}

TEST_F(Join, LeaveWhileJoiningSettlesTheJoinAsFailed) {
  sign_in();
  std::vector<bool> results;
  ASSERT_TRUE(manager->join_project("p1", [&](bool ok) { results.push_back(ok); }));
  manager->leave();
  EXPECT_EQ(results, (std::vector<bool>{false}));
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::JoinGuard));
}

using Events = ManagerFixture;

TEST_F(Events, InsertUpdateAndBroadcastReachTheBusWithTheTransportPayload) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  BusRecorder rec(bus, {kTaskNewEvent, kTaskUpdateEvent});
  const auto topic = "realtime:task-updates:p1";
  peer->send_change(topic, "INSERT", json::object{{"id", "t1"}, {"status", "Queued"}});
  peer->send_change(topic, "UPDATE", json::object{{"id", "t1"}, {"status", "In Progress"}},
                    json::object{{"id", "t1"}});
  peer->send_broadcast(
      topic, "task-update",
      json::object{{"type", "TASKS_STATUS_UPDATE"}, {"payload", json::object{{"taskId", "t1"}}}});
  peer->send_broadcast(topic, "other-event", json::object{});  // not bound
  ASSERT_EQ(rec.events.size(), 3u);
  EXPECT_EQ(rec.events[0].first, kTaskNewEvent);
  EXPECT_EQ(rec.events[0].second.at("eventType").as_string(), "INSERT");
  EXPECT_EQ(rec.events[0].second.at("new").at("id").as_string(), "t1");
  EXPECT_EQ(rec.events[0].second.at("table").as_string(), "tasks");
  EXPECT_EQ(rec.events[1].first, kTaskUpdateEvent);
  EXPECT_EQ(rec.events[1].second.at("eventType").as_string(), "UPDATE");
  EXPECT_EQ(rec.events[1].second.at("old").at("id").as_string(), "t1");
  EXPECT_EQ(rec.events[2].first, kTaskUpdateEvent);
  EXPECT_EQ(rec.events[2].second.at("type").as_string(), "broadcast");
  EXPECT_EQ(rec.events[2].second.at("event").as_string(), "task-update");
  EXPECT_EQ(rec.events[2].second.at("payload").at("type").as_string(), "TASKS_STATUS_UPDATE");
  EXPECT_EQ(manager->events_received(), 3u);
}

// TaskSource::broadcast: the same bus events from Broadcast from Database on the project's private
// topic (db/0006's trigger), no postgres_changes at all.
TEST_F(Events, TheBroadcastSourceJoinsTheProjectsPrivateTopicAndMapsItsEvents) {
  rebind([](SyncBinding& b) { b = domain::task_binding(domain::TaskSource::broadcast); });
  sign_in();
  ASSERT_TRUE(join("p1"));
  ASSERT_EQ(peer->joins().size(), 1u);
  const auto& j = peer->joins()[0];
  EXPECT_EQ(j.topic, "realtime:project:p1");
  EXPECT_TRUE(j.acks.empty());
  auto req = protocol::parse_join_payload(j.payload);
  ASSERT_TRUE(req.ok());
  EXPECT_TRUE(req->config.is_private);
  EXPECT_TRUE(req->config.postgres_changes.empty());

  BusRecorder rec(bus, {kTaskNewEvent, kTaskUpdateEvent});
  const auto topic = "realtime:project:p1";
  auto change = [](std::string_view op, json::value record, json::value old) {
    return json::object{{"old_record", std::move(old)},
                        {"record", std::move(record)},
                        {"operation", op},
                        {"table", "tasks"},
                        {"schema", "public"},
                        {"id", "m1"}};
  };
  peer->send_broadcast(topic, "INSERT",
                       change("INSERT", json::object{{"id", "t1"}, {"status", "Queued"}}, nullptr));
  peer->send_broadcast(topic, "UPDATE",
                       change("UPDATE", json::object{{"id", "t1"}, {"status", "Complete"}},
                              json::object{{"id", "t1"}, {"status", "Queued"}}));
  peer->send_broadcast(topic, "DELETE", change("DELETE", nullptr, json::object{{"id", "t1"}}));
  ASSERT_EQ(rec.events.size(), 2u);
  EXPECT_EQ(rec.events[0].first, kTaskNewEvent);
  EXPECT_EQ(rec.events[0].second.at("payload").at("record").at("id").as_string(), "t1");
  EXPECT_EQ(rec.events[1].first, kTaskUpdateEvent);
  EXPECT_EQ(rec.events[1].second.at("payload").at("record").at("status").as_string(), "Complete");
  EXPECT_EQ(manager->events_received(), 2u);
}

TEST_F(Events, EachEventStampsSnapshotAndFreshnessForItsFamilies) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  clock.advance(seconds(3));
  peer->send_phx_error("realtime:task-updates:p1");  // snapshot error…
  ASSERT_EQ(manager->snapshot().channel_state, "error");
  // …then an event arrives anyway (seed: an event always sets joined).
  peer->join_reply = FakeRealtimePeer::JoinReply::ok;
  ASSERT_TRUE(clock.run_until(rtsync::client::timers::ChannelRejoin));
  peer->pump();
  clock.advance(seconds(40));
  peer->accept();
  EXPECT_FALSE(freshness.is_fresh(kPaginated));
  peer->send_change("realtime:task-updates:p1", "UPDATE", json::object{{"id", "t1"}});
  EXPECT_EQ(manager->snapshot().channel_state, "joined");
  EXPECT_EQ(manager->snapshot().last_event_at, clock.wall_ms());
  EXPECT_EQ(manager->snapshot().timestamp, clock.wall_ms());
  EXPECT_TRUE(freshness.is_fresh(kPaginated));
  EXPECT_TRUE(freshness.is_fresh(FreshnessTracker::Key{"task-status-counts", "p1"}));
  EXPECT_TRUE(freshness.is_fresh(FreshnessTracker::Key{"unified-generations", "project", "p1"}));
  EXPECT_FALSE(freshness.is_fresh(FreshnessTracker::Key{"shots", "p1"}));
  const auto d = freshness.diagnostics();
  EXPECT_EQ(d.at("trackedQueries").as_uint64(), 4u);
  // Snapshot JSON carries the socket's last message time.
  const auto snap = manager->snapshot_json();
  EXPECT_EQ(snap.at("channelState").as_string(), "joined");
  EXPECT_EQ(snap.at("lastEventAt").as_int64(), clock.wall_ms());
  EXPECT_EQ(snap.at("lastMessageAt").as_int64(), clock.wall_ms());
  EXPECT_GT(messages.messages(), 0u);
}

TEST_F(Events, HeldPayloadsSurviveLaterEventsWhoseCopiesReuseArenas) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  const auto topic = "realtime:task-updates:p1";
  // Payloads kept by someone (a listener, the provider's stamps) must never change under them,
  // however many events follow; payloads nobody keeps are recycled.
  std::vector<std::shared_ptr<const json::value>> held;
  for (int i = 0; i < 40; ++i) {
    const std::string id = "t" + std::to_string(i);
    peer->send_change(topic, "UPDATE",
                      json::object{{"id", id},
                                   {"status", "In Progress"},
                                   {"params", std::string(300, static_cast<char>('a' + i % 26))}});
    const auto& p = manager->last_event_payload();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->at("new").at("id").as_string(), id);
    if (i % 3 == 0) held.push_back(p);  // 14 held: more than the pool's arenas
  }
  for (std::size_t k = 0; k < held.size(); ++k) {
    const int i = static_cast<int>(k) * 3;
    EXPECT_EQ(held[k]->at("new").at("id").as_string(), "t" + std::to_string(i));
    EXPECT_EQ(held[k]->at("new").at("params").as_string(),
              std::string(300, static_cast<char>('a' + i % 26)));
    EXPECT_EQ(held[k]->at("eventType").as_string(), "UPDATE");
  }
  // A payload outlives the manager that made it.
  auto last = manager->last_event_payload();
  manager.reset();
  EXPECT_EQ(last->at("new").at("id").as_string(), "t39");
}

TEST_F(Events, EventsOfALeftChannelAreNotDelivered) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  BusRecorder rec(bus, {kTaskNewEvent, kTaskUpdateEvent});
  manager->leave();
  peer->send_change("realtime:task-updates:p1", "INSERT", json::object{{"id", "t1"}});
  EXPECT_TRUE(rec.events.empty());
}

TEST_F(Events, StatusJsonMatchesTheSeedsGetStatus) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  const auto s = manager->status_json();
  EXPECT_TRUE(s.at("isSubscribed").as_bool());
  EXPECT_EQ(s.at("projectId").as_string(), "p1");
  EXPECT_EQ(s.at("channelState").as_string(), "joined");
  EXPECT_EQ(s.at("reconnectAttempts").to_number<std::int64_t>(), 0);
}

// ---- changes overflow ----

using Overflow = ManagerFixture;

TEST_F(Overflow, TooManyChangesReachesTheBusWithTheTableAndCountsAsActivity) {
  log::Capture capture;
  sign_in();
  ASSERT_TRUE(join("p1"));
  BusRecorder rec(bus, {kChangesOverflowEvent, kTaskNewEvent, kTaskUpdateEvent});
  clock.advance(seconds(40));  // past the connect grace: only an event makes the keys fresh
  ASSERT_FALSE(freshness.is_fresh(kPaginated));
  send_overflow("p1");
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events[0].first, kChangesOverflowEvent);
  EXPECT_EQ(json::serialize(rec.events[0].second),
            R"({"schema":"public","table":"tasks","limit":1000,"projectId":"p1"})");
  // Realtime activity, like a change event: snapshot and the four keys stamped.
  EXPECT_EQ(manager->snapshot().last_event_at, clock.wall_ms());
  EXPECT_TRUE(freshness.is_fresh(kPaginated));
  EXPECT_TRUE(freshness.is_fresh(FreshnessTracker::Key{"task-status-counts", "p1"}));
  EXPECT_TRUE(freshness.is_fresh(FreshnessTracker::Key{"unified-generations", "project", "p1"}));
  // Counted apart from task events; the channel stays subscribed.
  const auto s = manager->status_json();
  EXPECT_EQ(s.at("overflows").to_number<std::int64_t>(), 1);
  EXPECT_EQ(s.at("events").to_number<std::int64_t>(), 0);
  EXPECT_EQ(manager->overflows_received(), 1u);
  EXPECT_TRUE(manager->subscribed());
  EXPECT_FALSE(manager->last_event_payload());
  EXPECT_TRUE(
      capture.contains("[SimpleRealtime] too many changes on public.tasks in one transaction "
                       "(limit 1000) on task-updates:p1 → realtime:changes-overflow"));
}

TEST_F(Overflow, AnotherTableReachesTheBusButStampsNoTaskKeys) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  BusRecorder rec(bus, {kChangesOverflowEvent});
  clock.advance(seconds(40));
  send_overflow("p1", "shots");
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events[0].second.at("table").as_string(), "shots");
  EXPECT_FALSE(freshness.is_fresh(kPaginated));
  EXPECT_EQ(manager->overflows_received(), 1u);
}

TEST_F(Overflow, ErrorStatusVariantIsNotAnOverflow) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  BusRecorder rec(bus, {kChangesOverflowEvent});
  send_overflow("p1", "tasks", "error");
  EXPECT_TRUE(rec.events.empty());
  EXPECT_EQ(manager->overflows_received(), 0u);
  EXPECT_TRUE(manager->subscribed());  // informational postgres_changes error
}

TEST_F(Overflow, SignalOfALeftChannelIsNotDelivered) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  BusRecorder rec(bus, {kChangesOverflowEvent});
  const auto join_ref = *peer->join_of("realtime:task-updates:p1")->join_ref;
  manager->leave();
  fake->receive_text(overflow_frame_v2(join_ref, "task-updates:p1"));
  EXPECT_TRUE(rec.events.empty());
  EXPECT_EQ(manager->overflows_received(), 0u);
}

class OverflowV1 : public ManagerFixture {
 protected:
  static SocketOptions options() {
    auto o = test_socket_options();
    o.vsn = protocol::Vsn::v1;
    return o;
  }
  OverflowV1() : ManagerFixture(options()) {
    peer = std::make_unique<FakeRealtimePeer>(*fake, protocol::Vsn::v1);
  }
};

TEST_F(OverflowV1, TheVsn1FrameIsTheSameSignal) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  ASSERT_TRUE(manager->subscribed());
  BusRecorder rec(bus, {kChangesOverflowEvent});
  send_overflow("p1");
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events[0].second.at("table").as_string(), "tasks");
  EXPECT_EQ(rec.events[0].second.at("limit").as_int64(), 1000);
}

// ---- heal cycle ----

class Heal : public ManagerFixture {
 protected:
  // The channel's own rejoin is pushed far out so only the manager's attempts join.
  static SocketOptions options() {
    auto o = test_socket_options();
    o.rejoin_backoff = core::SteppedBackoff{{std::chrono::hours(1)}, 0.0};
    return o;
  }
  Heal() : ManagerFixture(options()) {}

  void heal(std::string source = "Test") {
    bus.emit(kAuthHealEvent, json::object{{"source", source}, {"reason", "test"}});
  }
  std::size_t joins_of(std::string_view project) const {
    std::size_t n = 0;
    for (const auto& j : peer->joins())
      n += j.topic == "realtime:task-updates:" + std::string(project);
    return n;
  }
  // Joined p1, then the channel failed and the server now refuses joins.
  void joined_then_failing() {
    sign_in();
    ASSERT_TRUE(join("p1"));
    peer->join_reply = FakeRealtimePeer::JoinReply::error;
    peer->send_phx_error("realtime:task-updates:p1");
    ASSERT_FALSE(manager->subscribed());
  }
};

TEST_F(Heal, ThreeAttemptsAtOneTwoFourSecondsThenStopsInError) {
  joined_then_failing();
  log::Capture capture;
  heal();
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry), seconds(1));
  EXPECT_EQ(manager->reconnect_attempts(), 1u);
  clock.advance(milliseconds(999));
  peer->pump();
  EXPECT_EQ(joins_of("p1"), 1u);
  clock.advance(milliseconds(1));  // attempt 1 at 1 s
  peer->pump();
  EXPECT_EQ(joins_of("p1"), 2u);
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry),
            seconds(2));  // failed: attempt 2 in 2 s
  clock.advance(milliseconds(1'999));
  peer->pump();
  EXPECT_EQ(joins_of("p1"), 2u);
  clock.advance(milliseconds(1));
  peer->pump();
  EXPECT_EQ(joins_of("p1"), 3u);
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry), seconds(4));
  clock.advance(milliseconds(3'999));
  peer->pump();
  EXPECT_EQ(joins_of("p1"), 3u);
  clock.advance(milliseconds(1));
  peer->pump();
  EXPECT_EQ(joins_of("p1"), 4u);
  // The third failure ends the cycle: no more attempts, realtime in error, 5 s polling.
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  EXPECT_FALSE(manager->healing());
  EXPECT_EQ(manager->reconnect_attempts(), 3u);
  EXPECT_EQ(freshness.status(), RealtimeStatus::error);
  EXPECT_EQ(freshness.polling_interval(kPaginated), seconds(5));
  run_for(seconds(120), seconds(1));
  EXPECT_EQ(joins_of("p1"), 4u);
  EXPECT_TRUE(capture.contains("[SimpleRealtime] reconnect attempt 1/3 in 1000 ms"));
  EXPECT_TRUE(capture.contains("[SimpleRealtime] reconnect attempt 2/3 in 2000 ms"));
  EXPECT_TRUE(capture.contains("[SimpleRealtime] reconnect attempt 3/3 in 4000 ms"));
  EXPECT_TRUE(capture.contains("[SimpleRealtime] max reconnect attempts (3) reached"));

  // The next heal intent starts a new cycle, which succeeds.
  heal();
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry), seconds(1));
  EXPECT_EQ(manager->reconnect_attempts(), 1u);
  peer->join_reply = FakeRealtimePeer::JoinReply::ok;
  clock.advance(seconds(1));
  peer->pump();
  EXPECT_TRUE(manager->subscribed());
  EXPECT_EQ(manager->reconnect_attempts(), 0u);
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  EXPECT_EQ(freshness.status(), RealtimeStatus::connected);
}

TEST_F(Heal, AuthFailuresCountTowardsTheSameCap) {
  joined_then_failing();
  auth.sign_out();
  heal();
  for (auto d : {seconds(1), seconds(2), seconds(4)}) {
    EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry), d);
    clock.advance(d);
  }
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  EXPECT_EQ(freshness.status(), RealtimeStatus::error);
  EXPECT_EQ(joins_of("p1"), 1u);  // none of the attempts got past the auth check
}

// Heal attempts that fail their auth check report "No valid session"; when the third one fails,
// the reason becomes the verdict realtime_manager.hpp promises — exactly then, not before.
TEST_F(Heal, ExhaustedAfterAuthFailuresReportsTheExhaustedReasonAtTheThirdFailure) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  peer->send_phx_close("realtime:task-updates:p1");
  auth.sign_out();
  ASSERT_EQ(freshness.status(), RealtimeStatus::disconnected);
  heal();
  EXPECT_EQ(clock.time_until(timers::HealRetry), seconds(1));
  clock.advance(seconds(1));  // attempt 1: no session
  EXPECT_EQ(freshness.status(), RealtimeStatus::error);
  EXPECT_EQ(freshness.reason(), "No valid session");
  const auto failed_at = freshness.last_status_change();
  int notified = 0;
  auto sub = freshness.subscribe([&] { ++notified; });
  log::Capture capture;
  clock.advance(seconds(2));  // attempt 2: no session
  EXPECT_EQ(clock.time_until(timers::HealRetry), seconds(4));
  clock.advance(milliseconds(3'999));
  EXPECT_EQ(freshness.reason(), "No valid session");
  EXPECT_EQ(manager->reconnect_attempts(), 3u);
  EXPECT_TRUE(manager->healing());
  clock.advance(milliseconds(1));  // attempt 3 fails: the cycle is over
  EXPECT_FALSE(clock.pending(timers::HealRetry));
  EXPECT_FALSE(manager->healing());
  EXPECT_EQ(freshness.status(), RealtimeStatus::error);
  EXPECT_EQ(freshness.reason(), "Reconnect attempts exhausted");
  EXPECT_EQ(freshness.diagnostics().at("statusReason").as_string(), "Reconnect attempts exhausted");
  EXPECT_EQ(freshness.last_status_change(), failed_at);  // the same error: no new time
  EXPECT_EQ(notified, 1);                                // but listeners hear of the new reason
  EXPECT_EQ(freshness.polling_interval(kPaginated), seconds(5));
  EXPECT_TRUE(capture.contains("[SimpleRealtime] max reconnect attempts (3) reached"));
  EXPECT_EQ(joins_of("p1"), 1u);  // none of the attempts got past the auth check
}

TEST_F(Heal, IgnoredWhenSubscribedWithoutProjectOrWhileACycleRuns) {
  heal();  // no project
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  sign_in();
  ASSERT_TRUE(join("p1"));
  heal();  // subscribed
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  peer->join_reply = FakeRealtimePeer::JoinReply::error;
  peer->send_phx_error("realtime:task-updates:p1");
  heal();
  clock.advance(milliseconds(600));
  heal();  // a second heal during the wait does not restart it
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry), milliseconds(400));
  EXPECT_EQ(manager->reconnect_attempts(), 1u);
}

TEST_F(Heal, SuccessByTheTransportsOwnRejoinEndsTheCycle) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  peer->drop();  // the connection drops: CHANNEL_ERROR
  ASSERT_FALSE(manager->subscribed());
  heal();
  ASSERT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry), seconds(1));
  // The socket's first reconnect waits less than 1 s and rejoins the channel on open: whatever
  // brings SUBSCRIBED ends the cycle.
  ASSERT_TRUE(clock.run_until(rtsync::client::timers::SocketReconnect));
  peer->accept();
  EXPECT_TRUE(manager->subscribed());
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  EXPECT_EQ(manager->reconnect_attempts(), 0u);
  EXPECT_EQ(joins_of("p1"), 2u);  // the first join and the socket's rejoin, no heal join
}

// The socket is back and the channel's own rejoin waits for its reply (a resume can take the
// server a while): a heal then must not replace the channel and throw that join away.
TEST_F(Heal, NotStartedWhileTheChannelsOwnRejoinAwaitsItsReply) {
  sign_in();
  ASSERT_TRUE(join("p1"));
  peer->drop();
  ASSERT_TRUE(clock.run_until(rtsync::client::timers::SocketReconnect));
  peer->join_reply = FakeRealtimePeer::JoinReply::silent;
  peer->accept();  // open; the rejoin is sent and not answered yet
  ASSERT_EQ(joins_of("p1"), 2u);
  log::Capture capture;
  heal();
  EXPECT_FALSE(manager->healing());
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  EXPECT_TRUE(capture.contains("the channel's rejoin is in flight"));
  run_for(seconds(5), seconds(1));
  EXPECT_EQ(joins_of("p1"), 2u);
  EXPECT_EQ(peer->leaves().size(), 0u);
  // The rejoin times out (10 s after it was sent): the channel is errored, and a heal now runs.
  run_for(seconds(5), seconds(1));
  ASSERT_EQ(manager->status().channel_state, "errored");
  heal();
  EXPECT_TRUE(manager->healing());
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry), seconds(1));
}

TEST_F(Heal, NoZombieRetriesAfterLeaveOrDestroy) {
  joined_then_failing();
  heal();
  clock.advance(seconds(1));
  peer->pump();
  ASSERT_TRUE(clock.pending(rtsync::client::sync::timers::HealRetry));
  manager->leave();
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::HealRetry), 0u);
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::JoinGuard), 0u);
  const auto joins = peer->joins().size();
  run_for(seconds(60), seconds(1));
  EXPECT_EQ(peer->joins().size(), joins);

  // Destroy in the middle of a heal join (guard pending) and of a wait.
  peer->join_reply = FakeRealtimePeer::JoinReply::ok;
  ASSERT_TRUE(join("p1"));
  peer->join_reply = FakeRealtimePeer::JoinReply::silent;
  peer->send_phx_error("realtime:task-updates:p1");
  heal();
  clock.advance(seconds(1));  // attempt 1 joins; the server stays silent
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::JoinGuard), 1u);
  manager.reset();
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::JoinGuard), 0u);
  EXPECT_EQ(clock.pending_count(rtsync::client::sync::timers::HealRetry), 0u);
  EXPECT_EQ(bus.handler_count(kAuthHealEvent), 0u);
  EXPECT_EQ(freshness.status(), RealtimeStatus::disconnected);
}

TEST_F(Heal, PublicJoinEndsACycle) {
  joined_then_failing();
  heal();
  ASSERT_TRUE(clock.pending(rtsync::client::sync::timers::HealRetry));
  peer->join_reply = FakeRealtimePeer::JoinReply::ok;
  ASSERT_TRUE(join("p2"));
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  EXPECT_EQ(manager->reconnect_attempts(), 0u);
}

TEST_F(Heal, ResetClearsAttemptsAndTheTimer) {
  joined_then_failing();
  heal();
  manager->reset();
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::HealRetry));
  EXPECT_EQ(manager->reconnect_attempts(), 0u);
}

// ---- wiring helpers ----

using Wiring = ManagerFixture;

TEST_F(Wiring, SocketAuthFollowsTheSession) {
  auto bind = bind_socket_auth(auth, *socket);
  sign_in("jwt-1");
  EXPECT_EQ(socket->access_token(), "jwt-1");
  sign_in("jwt-2");
  EXPECT_EQ(socket->access_token(), "jwt-2");
  auth.sign_out();
  EXPECT_FALSE(socket->access_token().has_value());
}

TEST_F(Wiring, SocketReconnectAfterADropRequestsAHeal) {
  ReconnectScheduler reconnect(clock, bus);
  ProjectSelection project;
  ReconnectTriggers triggers(clock, reconnect, auth, freshness, project);
  auto bind = bind_socket_reconnects(*socket, triggers);
  sign_in();
  ASSERT_TRUE(join("p1"));
  clock.run_until(rtsync::client::sync::timers::SignedInDelay);  // the sign-in's own request
  reconnect.clear();
  peer->drop();
  EXPECT_EQ(reconnect.state().pending_intents, 0u);
  ASSERT_TRUE(clock.run_until(rtsync::client::timers::SocketReconnect));
  peer->accept();
  EXPECT_EQ(reconnect.state().pending_intents, 1u);
  EXPECT_EQ(reconnect.diagnostics().at("intents").as_array()[0].at("source").as_string(),
            "RealtimeSocket");
}

// ---- presence -----------------------------------------------------------------------------------

using Presence = ManagerFixture;

// Keys of a presence state, each with its presences' "name" fields: "bob:[B]".
std::vector<std::string> describe(const PresenceMap& state) {
  std::vector<std::string> out;
  for (const auto& [key, ps] : state) {
    std::string names;
    for (const auto& p : ps) {
      if (!names.empty()) names += ",";
      const auto* n = p.if_contains("name");
      names += n && n->is_string() ? std::string(n->as_string()) : "?";
    }
    out.push_back(key + ":[" + names + "]");
  }
  return out;
}

TEST_F(Presence, TracksOnEverySubscribedAndListenersFollowTheChannelsState) {
  sign_in();
  manager->set_presence("user-1", json::object{{"name", "me"}});
  std::vector<std::vector<std::string>> seen;
  auto sub = manager->on_presence([&](const PresenceMap& s) { seen.push_back(describe(s)); });
  ASSERT_TRUE(join("p1"));
  const std::string topic = "realtime:task-updates:p1";
  // The join asks for presence under the key; the payload is tracked once SUBSCRIBED.
  ASSERT_EQ(peer->joins().size(), 1u);
  EXPECT_EQ(json::serialize(peer->joins()[0].payload.at("config").at("presence")),
            R"({"key":"user-1","enabled":true})");
  ASSERT_EQ(peer->presence_pushes().size(), 1u);
  EXPECT_EQ(json::serialize(peer->presence_pushes()[0]),
            R"({"type":"presence","event":"track","payload":{"name":"me"}})");

  peer->send_presence_state(topic,
                            json::parse(R"({"user-1":{"metas":[{"phx_ref":"m1","name":"me"}]}})"));
  peer->send_presence_diff(topic, json::parse(R"({"bob":{"metas":[{"phx_ref":"b1","name":"B"}]}})"),
                           json::object{});
  peer->send_presence_diff(topic, json::object{},
                           json::parse(R"({"bob":{"metas":[{"phx_ref":"b1","name":"B"}]}})"));
  using V = std::vector<std::string>;
  EXPECT_EQ(seen,
            (std::vector<V>{V{"user-1:[me]"}, V{"bob:[B]", "user-1:[me]"}, V{"user-1:[me]"}}));
  EXPECT_EQ(describe(manager->presence_state()), V{"user-1:[me]"});

  // A rejoin (server phx_error) tracks again: the server forgot the presence with the old join.
  peer->send_phx_error(topic);
  ASSERT_TRUE(clock.run_until(rtsync::client::timers::ChannelRejoin));
  peer->accept();
  ASSERT_TRUE(manager->subscribed());
  ASSERT_EQ(peer->presence_pushes().size(), 2u);
  EXPECT_EQ(peer->presence_pushes()[1], peer->presence_pushes()[0]);

  // A new payload is tracked at once while subscribed.
  manager->set_presence("user-1", json::object{{"name", "me2"}});
  peer->pump();
  ASSERT_EQ(peer->presence_pushes().size(), 3u);
  EXPECT_EQ(peer->presence_pushes()[2].at("payload").at("name"), "me2");

  // Another scope: the listeners see the old channel's presence go, the new channel tracks.
  seen.clear();
  ASSERT_TRUE(join("p2"));
  EXPECT_EQ(seen, std::vector<V>{V{}});
  EXPECT_TRUE(manager->presence_state().empty());
  ASSERT_EQ(peer->presence_pushes().size(), 4u);
  EXPECT_EQ(peer->presence_pushes()[3].at("payload").at("name"), "me2");

  // clear_presence untracks, and the next join neither tracks nor asks for presence.
  manager->clear_presence();
  peer->pump();
  ASSERT_EQ(peer->presence_pushes().size(), 5u);
  EXPECT_EQ(json::serialize(peer->presence_pushes()[4]),
            R"({"type":"presence","event":"untrack"})");
  sub.remove();
  ASSERT_TRUE(join("p3"));
  EXPECT_EQ(peer->presence_pushes().size(), 5u);
  EXPECT_EQ(json::serialize(peer->joins().back().payload.at("config").at("presence")),
            R"({"key":"","enabled":false})");
}

TEST_F(Presence, AListenerAloneAsksForPresenceWithoutTracking) {
  sign_in();
  std::vector<std::size_t> sizes;
  auto sub = manager->on_presence([&](const PresenceMap& s) { sizes.push_back(s.size()); });
  ASSERT_TRUE(join("p1"));
  EXPECT_EQ(json::serialize(peer->joins()[0].payload.at("config").at("presence")),
            R"({"key":"","enabled":true})");
  EXPECT_TRUE(peer->presence_pushes().empty());
  peer->send_presence_state("realtime:task-updates:p1",
                            json::parse(R"({"a":{"metas":[{"phx_ref":"1"}]}})"));
  EXPECT_EQ(sizes, std::vector<std::size_t>{1});
  // Without a presence listener or payload, the seed's join is unchanged.
  sub.remove();
  ASSERT_TRUE(join("p2"));
  EXPECT_EQ(json::serialize(peer->joins().back().payload.at("config").at("presence")),
            R"({"key":"","enabled":false})");
}

}  // namespace
}  // namespace rtsync::client::sync::testing
