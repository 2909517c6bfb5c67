#include "rtsync/client/sync/realtime_sync.hpp"
#include "rtsync/client/sync/names.hpp"

#include <gtest/gtest.h>

#include "manager_fixture.hpp"
#include "query_helpers.hpp"
#include "rtsync/client/transport/names.hpp"

namespace rtsync::client::sync::testing {
namespace {

using query::QueryKey;

// The assembled layer over the transport's fake peer and a real query cache. The channel's own
// rejoin is pushed far out so the heal path is what recovers.
class RealtimeSyncTest : public ::testing::Test {
 protected:
  RealtimeSyncTest() {
    auto options = test_socket_options();
    options.rejoin_backoff = core::SteppedBackoff{{std::chrono::hours(1)}, 0.0};
    auto t = std::make_unique<FakeTransport>();
    fake = t.get();
    socket = std::make_unique<RealtimeSocket>(clock, std::move(t), std::move(options));
    peer = std::make_unique<FakeRealtimePeer>(*fake);
    RealtimeSyncOptions so;
    so.manager.binding = domain::task_binding();
    sync = std::make_unique<RealtimeSync>(clock, *socket, cache, Refresher{}, std::move(so));
    heal_sub = sync->bus().subscribe(kAuthHealEvent, [this](const json::value& d) {
      heals.push_back(d);
      heal_times.push_back(clock.now());
    });
  }

  void sign_in() {
    Session s;
    s.access_token = "jwt-1";
    s.user_id = "user-1";
    sync->auth().sign_in(s);
  }

  std::size_t coordination_timers() const {
    std::size_t n = 0;
    for (auto id :
         {rtsync::client::sync::timers::JoinGuard, rtsync::client::sync::timers::HealRetry,
          rtsync::client::sync::timers::ReconnectDebounce,
          rtsync::client::sync::timers::DegradedWatch, rtsync::client::sync::timers::TokenRefresh,
          rtsync::client::sync::timers::SignedInDelay,
          rtsync::client::sync::timers::FreshnessAging}) {
      n += clock.pending_count(id);
    }
    return n;
  }

  ManualScheduler clock;
  FakeTransport* fake = nullptr;
  std::unique_ptr<RealtimeSocket> socket;
  std::unique_ptr<FakeRealtimePeer> peer;
  query::QueryClient cache{clock};
  FetchLog fetches{clock};
  MountedQueries queries;
  std::unique_ptr<RealtimeSync> sync;
  std::vector<json::value> heals;
  std::vector<core::TimePoint> heal_times;
  core::Subscription heal_sub;
};

TEST_F(RealtimeSyncTest, SignInSetsTheSocketTokenAndSelectingJoins) {
  sign_in();
  EXPECT_EQ(socket->access_token(), "jwt-1");
  sync->project().set("p1");
  peer->accept();
  EXPECT_TRUE(sync->provider().state().is_connected);
  EXPECT_TRUE(sync->manager().subscribed());
  // The sign-in's heal request arrives at 2 s and finds realtime healthy: nothing happens.
  clock.advance(seconds(2));
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heals[0].at("source").as_string(), "AuthManager");
  EXPECT_FALSE(sync->manager().healing());
  EXPECT_EQ(peer->joins().size(), 1u);
}

TEST_F(RealtimeSyncTest, DegradedRealtimeIsHealedAndTheGapFilled) {
  sign_in();
  const QueryKey tasks{"tasks", "paginated", "p1", 1, 50, "Queued"};
  auto smart = sync->polling().observe(cache, [&] {
    query::ObserverOptions o;
    o.key = tasks;
    o.query.query_fn = fetches.fn();
    o.refetch_interval_in_background = true;
    return o;
  }());
  auto listen = smart->observer().subscribe([](const query::QueryResult&) {});
  sync->project().set("p1");
  peer->accept();
  clock.advance(seconds(5));  // past the sign-in heal (ignored: healthy)
  peer->accept();
  heals.clear();
  heal_times.clear();

  // The server starts refusing the channel.
  peer->join_reply = FakeRealtimePeer::JoinReply::error;
  peer->send_phx_error("realtime:task-updates:p1");
  const auto down_at = clock.now();
  EXPECT_FALSE(sync->provider().state().is_connected);
  EXPECT_EQ(smart->config().refetch_interval, seconds(5));  // polling boosted while down
  clock.advance(seconds(30));  // degraded for 30 s → intent; +1 s debounce → heal
  clock.advance(seconds(1));
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heal_times[0] - down_at, seconds(31));
  EXPECT_EQ(heals[0].at("source").as_string(), "DegradedWatch");
  EXPECT_TRUE(sync->manager().healing());
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::HealRetry), seconds(1));

  // The server recovers; the heal attempt joins; the gap is filled.
  peer->join_reply = FakeRealtimePeer::JoinReply::ok;
  fetches.clear();
  clock.advance(seconds(1));
  peer->pump();
  clock.run_ready();
  EXPECT_TRUE(sync->manager().subscribed());
  EXPECT_TRUE(sync->provider().state().is_connected);
  EXPECT_FALSE(sync->manager().healing());
  EXPECT_EQ(fetches.count(tasks), 1u);                       // gap fill
  EXPECT_EQ(smart->config().refetch_interval, seconds(30));  // connect grace
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::DegradedWatch));
}

// The chaos suite's token_expiry on virtual time: the link is down for longer than the access
// token lives, every refresh and reconnect attempt during the outage reaches nothing. When the
// network is back the socket reconnects within its 2 s cap, its opening runs the refresh at once,
// and the refreshed token rejoins the channel the server refused for the expired one — all
// without the heal cycle's seconds, and without the channel's own rejoin step (pushed to 1 h here).
TEST_F(RealtimeSyncTest, AfterAnOutageLongerThanTheTokenRealtimeIsBackWithinTwoSeconds) {
  std::vector<RefreshDone> refreshes;
  heal_sub.remove();
  sync.reset();
  RealtimeSyncOptions so;
  so.manager.binding = domain::task_binding();
  sync = std::make_unique<RealtimeSync>(
      clock, *socket, cache,
      [&](const Session&, RefreshDone done) { refreshes.push_back(std::move(done)); },
      std::move(so));
  Session s;
  s.access_token = "jwt-1";
  s.refresh_token = "r-1";
  s.user_id = "user-1";
  s.expires_at = clock.wall_now() + seconds(10);  // refreshed at half its life: 5 s
  sync->auth().sign_in(s);
  sync->project().set("p1");
  peer->accept();
  ASSERT_TRUE(sync->manager().subscribed());

  // A 27.5 s outage: the server dropped us; nothing answers.
  peer->drop();
  const auto offline_until = clock.now() + milliseconds(27'500);
  auto due_offline = [&](core::TimerId id) {
    const auto due = clock.next_due(id);
    return due && *due < offline_until;
  };
  std::size_t refresh_attempts_offline = 0;
  while (due_offline(rtsync::client::timers::SocketReconnect) ||
         due_offline(rtsync::client::sync::timers::TokenRefresh)) {
    const auto socket_due = clock.next_due(rtsync::client::timers::SocketReconnect);
    const auto refresh_due = clock.next_due(rtsync::client::sync::timers::TokenRefresh);
    if (due_offline(rtsync::client::sync::timers::TokenRefresh) &&
        (!socket_due || *refresh_due <= *socket_due)) {
      ASSERT_TRUE(clock.run_until(rtsync::client::sync::timers::TokenRefresh));
    } else {
      ASSERT_TRUE(clock.run_until(rtsync::client::timers::SocketReconnect));
    }
    while (!refreshes.empty()) {
      auto done = std::move(refreshes.front());
      refreshes.erase(refreshes.begin());
      ++refresh_attempts_offline;
      done(make_error(Errc::io, "connecting: connection refused"));
    }
    if (fake->is_connecting()) {
      fake->fail(TransportFailure{make_error(Errc::io, "connection refused"), 0, {}});
    }
  }
  // One refresh at 5 s, then one per 5 s retry (10, 15, 20, 25 s): no hammering while offline.
  EXPECT_EQ(refresh_attempts_offline, 5u);
  EXPECT_FALSE(sync->manager().subscribed());
  EXPECT_TRUE(sync->auth().early_retry_armed());

  // The network is back; the server now refuses the expired token.
  clock.advance(offline_until - clock.now());
  const auto healed = clock.now();
  peer->join_reply = FakeRealtimePeer::JoinReply::error;
  peer->join_error = "InvalidJWTToken: Token has expired 20 seconds ago";
  const auto wait = clock.time_until(rtsync::client::timers::SocketReconnect);
  ASSERT_TRUE(wait);
  EXPECT_LE(*wait, seconds(2));
  // The timed retry would come at 30 s, after the socket's attempt (at most 29.5 s).
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), milliseconds(2'500));
  clock.run_until(rtsync::client::timers::SocketReconnect);
  const auto joins_before = peer->joins().size();
  peer->accept();  // opens; the join with the expired token is refused
  ASSERT_EQ(peer->joins().size(), joins_before + 1);
  EXPECT_EQ(peer->joins().back().access_token, "jwt-1");
  EXPECT_FALSE(sync->manager().subscribed());
  ASSERT_EQ(refreshes.size(), 1u) << "the socket's opening runs the refresh at once";

  peer->join_reply = FakeRealtimePeer::JoinReply::ok;
  Session fresh = s;
  fresh.access_token = "jwt-2";
  fresh.expires_at = clock.wall_now() + seconds(3600);
  refreshes.front()(fresh);
  EXPECT_EQ(clock.time_until(rtsync::client::timers::ChannelRejoin), core::Duration::zero());
  clock.run_ready();
  peer->pump();
  EXPECT_TRUE(sync->manager().subscribed());
  EXPECT_EQ(peer->joins().back().access_token, "jwt-2");
  EXPECT_EQ(clock.now() - healed, *wait);  // back the moment the socket is
}

TEST_F(RealtimeSyncTest, DiagnosticsShowEveryPart) {
  core::Diagnostics diagnostics(clock);
  auto regs = sync->register_diagnostics(diagnostics);
  sign_in();
  sync->project().set("p1");
  peer->accept();
  peer->send_change("realtime:task-updates:p1", "INSERT", json::object{{"id", "t1"}});
  const auto snap = diagnostics.snapshot();
  for (auto name : {"realtime", "realtimeStatus", "freshness", "reconnectScheduler", "provider",
                    "smartPolling", "auth"}) {
    EXPECT_TRUE(snap.contains(name)) << name;
  }
  EXPECT_EQ(snap.at("realtime").at("channelState").as_string(), "joined");
  EXPECT_EQ(snap.at("realtime").at("lastEventAt").as_int64(), clock.wall_ms());
  EXPECT_EQ(snap.at("freshness").at("realtimeStatus").as_string(), "connected");
  EXPECT_EQ(snap.at("realtimeStatus").at("projectId").as_string(), "p1");
  EXPECT_EQ(snap.at("provider").at("stats").at("events").to_number<std::int64_t>(), 1);
  EXPECT_TRUE(snap.at("auth").at("signedIn").as_bool());
  regs.clear();
  EXPECT_TRUE(diagnostics.names().empty());
}

TEST_F(RealtimeSyncTest, ExplicitRequestAndDestroyLeaveNoTimers) {
  sign_in();
  sync->project().set("p1");
  peer->accept();
  sync->request_reconnect({"", "user asked", ReconnectPriority::low});
  peer->send_phx_error("realtime:task-updates:p1");  // degraded watch armed
  EXPECT_GT(coordination_timers(), 0u);
  // The sign-in's intent comes at 1 s and restarts the debounce: one heal at 2 s.
  clock.advance(milliseconds(1'999));
  EXPECT_TRUE(heals.empty());
  clock.advance(milliseconds(1));
  ASSERT_EQ(heals.size(), 1u);
  EXPECT_EQ(heals[0].at("source").as_string(), "AuthManager");  // high beats the explicit low
  EXPECT_EQ(heals[0].at("coalescedSources").as_array().size(), 2u);
  EXPECT_EQ(heals[0].at("coalescedSources").as_array()[1].as_string(), "Explicit");
  sync.reset();
  for (auto id :
       {rtsync::client::sync::timers::JoinGuard, rtsync::client::sync::timers::HealRetry,
        rtsync::client::sync::timers::ReconnectDebounce,
        rtsync::client::sync::timers::DegradedWatch, rtsync::client::sync::timers::TokenRefresh,
        rtsync::client::sync::timers::SignedInDelay,
        rtsync::client::sync::timers::FreshnessAging}) {
    EXPECT_EQ(clock.pending_count(id), 0u) << core::to_string(id);
  }
  EXPECT_FALSE(socket->channels().size() > 0 &&
               socket->channels()[0]->state() == ChannelState::joined);
}

}  // namespace
}  // namespace rtsync::client::sync::testing
