#include "rtsync/client/sync/auth_session.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::client::sync {
namespace {

using core::ManualScheduler;
using core::TimerId;
using std::chrono::milliseconds;
using std::chrono::seconds;

Session session_expiring_in(const ManualScheduler& clock, core::Duration d,
                            std::string token = "a1") {
  Session s;
  s.access_token = std::move(token);
  s.refresh_token = "r1";
  s.expires_at = clock.wall_now() + std::chrono::duration_cast<core::WallTime::duration>(d);
  s.user_id = "u1";
  return s;
}

// A refresher whose completions the test releases by hand (an HTTP grant stand-in).
struct ManualRefresher {
  std::vector<RefreshDone> pending;
  std::vector<Session> seen;
  Refresher fn() {
    return [this](const Session& s, RefreshDone done) {
      seen.push_back(s);
      pending.push_back(std::move(done));
    };
  }
};

struct AuthSessionTest : ::testing::Test {
  ManualScheduler clock;
  ManualRefresher refresher;
  AuthSession auth{clock, refresher.fn()};
  std::vector<std::string> events;
  std::vector<std::string> tokens;
  core::Subscription a = auth.on_auth_state_change([this](AuthEvent e, const Session* s) {
    events.push_back(std::string(to_string(e)) + (s ? ":" + s->access_token : ""));
  });
  core::Subscription b = auth.on_token([this](const std::string& t) { tokens.push_back(t); });
};

TEST_F(AuthSessionTest, GetSessionReadsTheCacheAndSignInAnnounces) {
  EXPECT_FALSE(auth.get_session().has_value());
  auth.sign_in(session_expiring_in(clock, seconds(3600)));
  ASSERT_TRUE(auth.get_session().has_value());
  EXPECT_EQ(auth.get_session()->user_id, "u1");
  EXPECT_EQ(events, (std::vector<std::string>{"SIGNED_IN:a1"}));
  EXPECT_EQ(tokens, (std::vector<std::string>{"a1"}));
  EXPECT_TRUE(refresher.seen.empty());  // no network on read
}

TEST_F(AuthSessionTest, RefreshesSixtySecondsBeforeExpiry) {
  auth.sign_in(session_expiring_in(clock, seconds(3600)));
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(3540));
  clock.advance(seconds(3540) - milliseconds(1));
  EXPECT_TRUE(refresher.pending.empty());
  clock.advance(milliseconds(1));
  ASSERT_EQ(refresher.pending.size(), 1u);
  EXPECT_EQ(refresher.seen[0].refresh_token, "r1");
  EXPECT_TRUE(auth.refreshing());
  refresher.pending[0](session_expiring_in(clock, seconds(3600), "a2"));
  EXPECT_FALSE(auth.refreshing());
  EXPECT_EQ(auth.get_session()->access_token, "a2");
  EXPECT_EQ(events, (std::vector<std::string>{"SIGNED_IN:a1", "TOKEN_REFRESHED:a2"}));
  EXPECT_EQ(tokens, (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(3540));
  EXPECT_EQ(auth.refreshes(), 1u);
}

TEST_F(AuthSessionTest, MarginIsConfigurable) {
  AuthSession custom(clock, refresher.fn(), AuthSessionOptions{seconds(10), seconds(5)});
  custom.sign_in(session_expiring_in(clock, seconds(100)));
  EXPECT_EQ(clock.next_due(rtsync::client::sync::timers::TokenRefresh), clock.now() + seconds(90));
}

TEST_F(AuthSessionTest, SessionInsideTheMarginRefreshesAtHalfItsRemainingLife) {
  auth.sign_in(session_expiring_in(clock, seconds(30)));
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(15));
  clock.advance(seconds(15) - milliseconds(1));
  EXPECT_TRUE(refresher.pending.empty());
  clock.advance(milliseconds(1));
  EXPECT_EQ(refresher.pending.size(), 1u);
}

TEST_F(AuthSessionTest, ExpiredSessionRefreshesAtOnce) {
  auth.sign_in(session_expiring_in(clock, -seconds(10)));
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(0));
  clock.run_ready();
  EXPECT_EQ(refresher.pending.size(), 1u);
}

// 30 s tokens under the default 60 s margin: one refresh per half-life, never back to back.
TEST_F(AuthSessionTest, ShortLivedTokensAreRefreshedAtHalfLifeNotInAStorm) {
  auth.sign_in(session_expiring_in(clock, seconds(30)));
  for (int i = 0; i < 3; ++i) {
    clock.advance(seconds(15));
    ASSERT_EQ(refresher.pending.size(), static_cast<std::size_t>(i + 1));
    refresher.pending.back()(session_expiring_in(clock, seconds(30), "t" + std::to_string(i)));
    EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(15));
    clock.run_ready();
    EXPECT_EQ(refresher.pending.size(), static_cast<std::size_t>(i + 1));
  }
  EXPECT_EQ(auth.refreshes(), 3u);
}

// A server whose tokens look expired on arrival (client clock ahead): retry_delay apart.
TEST_F(AuthSessionTest, TokensExpiredOnArrivalAreRefreshedNoSoonerThanTheRetryDelay) {
  auth.sign_in(session_expiring_in(clock, seconds(120)));
  clock.advance(seconds(60));
  ASSERT_EQ(refresher.pending.size(), 1u);
  refresher.pending[0](session_expiring_in(clock, -seconds(1), "stale"));
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(5));
  clock.advance(seconds(5) - milliseconds(1));
  EXPECT_EQ(refresher.pending.size(), 1u);
  clock.advance(milliseconds(1));
  EXPECT_EQ(refresher.pending.size(), 2u);
}

TEST_F(AuthSessionTest, TransientFailureRetriesAfterFiveSeconds) {
  auth.sign_in(session_expiring_in(clock, seconds(120)));
  clock.advance(seconds(60));
  ASSERT_EQ(refresher.pending.size(), 1u);
  refresher.pending[0](make_error(Errc::io, "connection refused"));
  EXPECT_EQ(auth.get_session()->access_token, "a1");  // kept
  EXPECT_EQ(auth.refresh_failures(), 1u);
  clock.advance(milliseconds(4'999));
  EXPECT_EQ(refresher.pending.size(), 1u);
  clock.advance(milliseconds(1));
  ASSERT_EQ(refresher.pending.size(), 2u);
  refresher.pending[1](session_expiring_in(clock, seconds(3600), "a2"));
  EXPECT_EQ(events.back(), "TOKEN_REFRESHED:a2");
}

// Offline: the token expires during the outage and every refresh attempt reaches nothing, one per
// retry_delay (720 an hour, well under hosted Supabase's 1,800 refreshes an hour per IP). When
// the network answers again the retry runs at once, not up to 5 s later.
TEST_F(AuthSessionTest, ARefreshThatReachedNothingRetriesAtOnceWhenTheNetworkAnswers) {
  auth.sign_in(session_expiring_in(clock, seconds(120)));
  auth.network_answered();  // nothing failed: nothing to do
  EXPECT_TRUE(refresher.pending.empty());
  clock.advance(seconds(60));
  ASSERT_EQ(refresher.pending.size(), 1u);
  auth.network_answered();  // a refresh is running: nothing more
  EXPECT_EQ(refresher.pending.size(), 1u);
  refresher.pending[0](make_error(Errc::io, "connecting: connection reset by peer"));
  EXPECT_TRUE(auth.early_retry_armed());
  // Offline for a minute: one attempt per 5 s, each on its timer, none in between.
  for (int i = 0; i < 12; ++i) {
    clock.advance(seconds(5) - milliseconds(1));
    ASSERT_EQ(refresher.pending.size(), static_cast<std::size_t>(i + 1));
    clock.advance(milliseconds(1));
    ASSERT_EQ(refresher.pending.size(), static_cast<std::size_t>(i + 2));
    refresher.pending.back()(make_error(Errc::timeout, "request timed out"));
  }
  // The socket opens 1.5 s into the next wait: the retry runs now.
  clock.advance(milliseconds(1500));
  EXPECT_EQ(auth.diagnostics().at("earlyRetryArmed").as_bool(), true);
  auth.network_answered();
  ASSERT_EQ(refresher.pending.size(), 14u);
  EXPECT_FALSE(auth.early_retry_armed());
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::TokenRefresh));
  refresher.pending.back()(session_expiring_in(clock, seconds(3600), "a2"));
  EXPECT_EQ(events.back(), "TOKEN_REFRESHED:a2");
  EXPECT_EQ(tokens.back(), "a2");
  // Refreshed: later answers change nothing; the next refresh is the usual one, 60 s before expiry.
  auth.network_answered();
  EXPECT_EQ(refresher.pending.size(), 14u);
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(3540));
}

// A flapping link cannot multiply the attempts: an early retry that reaches nothing does not arm
// another; the next attempt is the timed one, retry_delay later, and its failure arms again.
TEST_F(AuthSessionTest, AnEarlyRetryThatFailsWaitsForTheTimedOne) {
  auth.sign_in(session_expiring_in(clock, seconds(120)));
  clock.advance(seconds(60));
  refresher.pending[0](make_error(Errc::io, "unreachable"));
  auth.network_answered();
  ASSERT_EQ(refresher.pending.size(), 2u);
  refresher.pending[1](make_error(Errc::io, "unreachable again"));
  EXPECT_FALSE(auth.early_retry_armed());
  auth.network_answered();
  auth.network_answered();
  EXPECT_EQ(refresher.pending.size(), 2u);
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(5));
  clock.advance(seconds(5) - milliseconds(1));
  EXPECT_EQ(refresher.pending.size(), 2u);
  clock.advance(milliseconds(1));
  ASSERT_EQ(refresher.pending.size(), 3u);
  refresher.pending[2](make_error(Errc::io, "unreachable"));
  EXPECT_TRUE(auth.early_retry_armed());
  auth.network_answered();
  EXPECT_EQ(refresher.pending.size(), 4u);
}

// The server answered (a 5xx): the network is not what failed, so an answer elsewhere is no
// reason to ask again before retry_delay.
TEST_F(AuthSessionTest, ARefreshTheServerAnsweredWithAnErrorWaitsForItsTimer) {
  auth.sign_in(session_expiring_in(clock, seconds(120)));
  clock.advance(seconds(60));
  refresher.pending[0](make_error(Errc::remote, "HTTP 503: Service Unavailable"));
  EXPECT_FALSE(auth.early_retry_armed());
  auth.network_answered();
  EXPECT_EQ(refresher.pending.size(), 1u);
  EXPECT_EQ(clock.time_until(rtsync::client::sync::timers::TokenRefresh), seconds(5));
  // Signing in again forgets an armed retry of the previous session.
  clock.advance(seconds(5));
  refresher.pending[1](make_error(Errc::io, "unreachable"));
  EXPECT_TRUE(auth.early_retry_armed());
  auth.sign_in(session_expiring_in(clock, seconds(3600), "b1"));
  EXPECT_FALSE(auth.early_retry_armed());
  auth.network_answered();
  EXPECT_EQ(refresher.pending.size(), 2u);
}

TEST_F(AuthSessionTest, UnauthorizedRefreshSignsOut) {
  auth.sign_in(session_expiring_in(clock, seconds(120)));
  auth.refresh_now();
  ASSERT_EQ(refresher.pending.size(), 1u);
  refresher.pending[0](make_error(Errc::unauthorized, "invalid refresh token"));
  EXPECT_FALSE(auth.get_session().has_value());
  EXPECT_EQ(events, (std::vector<std::string>{"SIGNED_IN:a1", "SIGNED_OUT"}));
  EXPECT_EQ(tokens, (std::vector<std::string>{"a1", ""}));
  EXPECT_EQ(clock.pending_count(), 0u);
}

TEST_F(AuthSessionTest, LateRefreshResultAfterSignOutOrNewSignInIsDropped) {
  auth.sign_in(session_expiring_in(clock, seconds(120)));
  auth.refresh_now();
  auth.refresh_now();  // one at a time
  ASSERT_EQ(refresher.pending.size(), 1u);
  auth.sign_out();
  refresher.pending[0](session_expiring_in(clock, seconds(3600), "late"));
  EXPECT_FALSE(auth.get_session().has_value());
  auth.sign_in(session_expiring_in(clock, seconds(120), "b1"));
  auth.refresh_now();
  ASSERT_EQ(refresher.pending.size(), 2u);
  auth.sign_in(session_expiring_in(clock, seconds(7200), "c1"));
  refresher.pending[1](session_expiring_in(clock, seconds(3600), "late2"));
  EXPECT_EQ(auth.get_session()->access_token, "c1");
  EXPECT_EQ(events, (std::vector<std::string>{"SIGNED_IN:a1", "SIGNED_OUT", "SIGNED_IN:b1",
                                              "SIGNED_IN:c1"}));
  auth.sign_out();
  auth.sign_out();  // already signed out: nothing
  EXPECT_EQ(events.size(), 5u);
}

TEST_F(AuthSessionTest, StaticTokenRefresherEndsRefreshing) {
  AuthSession fixed(clock, static_token_refresher());
  std::vector<std::string> seen;
  auto s = fixed.on_auth_state_change(
      [&](AuthEvent e, const Session* ses) { seen.push_back(std::string(to_string(e))); });
  fixed.sign_in(session_expiring_in(clock, seconds(120)));
  clock.advance(seconds(60));
  EXPECT_EQ(seen, (std::vector<std::string>{"SIGNED_IN", "TOKEN_REFRESHED"}));
  EXPECT_EQ(fixed.get_session()->access_token, "a1");
  EXPECT_FALSE(fixed.get_session()->expires_at.has_value());
  EXPECT_FALSE(fixed.next_refresh_at().has_value());
}

TEST_F(AuthSessionTest, SessionWithoutExpiryOrRefresherIsNeverRefreshed) {
  Session s;
  s.access_token = "forever";
  auth.sign_in(s);
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::TokenRefresh));
  AuthSession none(clock);
  none.sign_in(session_expiring_in(clock, seconds(100)));
  EXPECT_FALSE(clock.pending(rtsync::client::sync::timers::TokenRefresh));
}

TEST_F(AuthSessionTest, DestroyedSessionIgnoresALateCompletionAndLeavesNoTimer) {
  RefreshDone done;
  {
    AuthSession local(clock, [&](const Session&, RefreshDone d) { done = std::move(d); });
    local.sign_in(session_expiring_in(clock, seconds(3600)));
    local.refresh_now();
  }
  EXPECT_EQ(clock.pending_count(), 0u);
  ASSERT_TRUE(done);
  done(session_expiring_in(clock, seconds(3600), "late"));  // no crash (ASan checks)
}

TEST_F(AuthSessionTest, Diagnostics) {
  auth.sign_in(session_expiring_in(clock, seconds(3600)));
  auto d = auth.diagnostics();
  EXPECT_TRUE(d.at("signedIn").as_bool());
  EXPECT_EQ(d.at("userId").as_string(), "u1");
  EXPECT_EQ(d.at("expiresAt").as_int64(), clock.wall_ms() + 3'600'000);
  EXPECT_EQ(d.at("nextRefreshInMs").as_int64(), 3'540'000);
}

}  // namespace
}  // namespace rtsync::client::sync
