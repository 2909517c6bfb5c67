// AuthSession — the client's signed-in session: access token, refresh token, expiry, user id.
//
// `get_session()` reads the cached session (no network), like supabase-js getSession(). While a
// session with an expiry is held, it is refreshed `refresh_margin` (default 60 s) before it expires
// through a pluggable Refresher: a static token, a callback, or (with the REST layer) the HTTP
// refresh-token grant. Auth state changes are announced to listeners:
//   SIGNED_IN       sign_in(session)
//   TOKEN_REFRESHED a refresh succeeded
//   SIGNED_OUT      sign_out(), or a refresh rejected with Errc::unauthorized
// Every announcement also goes to the token sinks (`on_token`) with the new access token (empty on
// SIGNED_OUT): that is how the realtime socket's set_auth follows the session
// (`bind_socket_auth` in realtime_manager.hpp does the wiring).
//
// Refresh failures other than unauthorized keep the session and retry after `retry_delay`
// (default 5 s: 720 attempts an hour while offline, well under hosted Supabase's limit of 1,800
// token refreshes an hour per IP), as long as the session lasts; a refresh result that arrives
// after sign-out or after a newer sign-in is dropped.
//
// Back online. When a refresh failed because nothing answered (Errc::io, Errc::timeout: the
// network or the server was down), `network_answered()` — the realtime socket opened, an HTTP
// response arrived (RealtimeSync and client::Client wire both) — runs the retry at once instead of
// at its timer: a token that expired during an outage is replaced as soon as the outage ends, not
// up to `retry_delay` later. One early retry per failed timed attempt: an early retry that fails
// does not arm another, so attempts stay at most two per `retry_delay` whatever the signals; a
// failure the server answered (5xx) waits for its timer. A session that has no more than the margin
// left is refreshed at half its remaining life instead (at once when it has expired); after a
// refresh the next one is never sooner than `retry_delay`, so short-lived tokens or a skewed clock
// cannot cause a refresh storm.
//
// Thread safety: loop-confined. A Refresher must call `done` exactly once, on the loop (it may do
// so before returning); a `done` called after the AuthSession is destroyed does nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "rtsync/core/listener_list.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::sync {

// Log component of the session ("[AuthSession] …").
inline constexpr std::string_view kAuthSessionLog = "AuthSession";

// A signed-in session.
struct Session {
  std::string access_token;                  // the user's JWT
  std::string refresh_token;                 // for the Refresher (may be empty)
  std::optional<core::WallTime> expires_at;  // none → never refreshed
  std::string user_id;                       // the token's subject
  // Field by field.
  friend bool operator==(const Session&, const Session&) = default;
};

// Auth state changes, as supabase-js names them (when each is announced: the file comment).
enum class AuthEvent : std::uint8_t { signed_in, token_refreshed, signed_out };
// "SIGNED_IN", "TOKEN_REFRESHED", "SIGNED_OUT"
std::string_view to_string(AuthEvent e) noexcept;

// Reports a refresh: the new session, or the error (Errc::unauthorized signs out).
using RefreshDone = std::function<void(Result<Session>)>;
// Refreshes `current` and calls `done` exactly once, on the loop.
using Refresher = std::function<void(const Session& current, RefreshDone done)>;

// A refresher for a token that never changes (an anon key, a long-lived minted JWT): the refreshed
// session keeps the token and has no expiry, so it is not refreshed again.
Refresher static_token_refresher();

// Refresh timing (see the file comment).
struct AuthSessionOptions {
  core::Duration refresh_margin = std::chrono::seconds(60);  // refresh this long before expiry
  core::Duration retry_delay = std::chrono::seconds(5);      // after a failed refresh
};

// The client's session, its refreshes and its auth events (behaviour and thread safety: the
// file comment).
class AuthSession {
 public:
  // Listener: (event, session after the event — nullptr on SIGNED_OUT).
  using Listener = std::function<void(AuthEvent, const Session*)>;
  // Token sink: the access token after an event (empty on SIGNED_OUT).
  using TokenSink = std::function<void(const std::string& access_token)>;

  // No refresher → sessions with an expiry are not refreshed (a warning is logged).
  explicit AuthSession(core::Scheduler& scheduler, Refresher refresher = {},
                       AuthSessionOptions options = {});
  ~AuthSession();
  AuthSession(const AuthSession&) = delete;
  AuthSession& operator=(const AuthSession&) = delete;

  // The cached session, if signed in. No I/O.
  const std::optional<Session>& get_session() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return session_;
  }

  // Stores the session and announces SIGNED_IN (also when replacing another session).
  void sign_in(Session session);
  // Drops the session and announces SIGNED_OUT; nothing if already signed out.
  void sign_out();
  // Starts a refresh now (no-op without a session or while one is running).
  void refresh_now();
  // Something on the network answered (a socket opened, an HTTP response arrived): a retry
  // waiting after a refresh that reached nothing runs now (see "Back online" in the file comment);
  // otherwise nothing happens.
  void network_answered();

  // Auth events, in order, until the Subscription is removed.
  core::Subscription on_auth_state_change(Listener listener);
  // The access token after every event (empty on SIGNED_OUT).
  core::Subscription on_token(TokenSink sink);

  // When the next refresh is due (refresh or retry), if one is scheduled.
  std::optional<core::TimePoint> next_refresh_at() const;
  // A retry is waiting that network_answered() would run now.
  bool early_retry_armed() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return early_retry_armed_;
  }
  // A refresh is running.
  bool refreshing() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return in_flight_;
  }
  // Successful refreshes.
  std::uint64_t refreshes() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return refreshes_;
  }
  // Failed refreshes.
  std::uint64_t refresh_failures() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return refresh_failures_;
  }
  // {signedIn, userId, expiresAt (wall ms|null), nextRefreshInMs (ms|null), refreshing,
  //  earlyRetryArmed, refreshes, refreshFailures}
  json::value diagnostics() const;

 private:
  void announce(AuthEvent event);
  void schedule_refresh(bool after_refresh = false);
  void finish_refresh(std::uint64_t generation, Result<Session> result);
  void start_refresh(bool early);

  core::Scheduler& scheduler_;
  Refresher refresher_;
  AuthSessionOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::optional<Session> session_;
  std::uint64_t generation_ = 0;  // bumped by every sign-in / sign-out
  bool in_flight_ = false;
  bool in_flight_early_ = false;    // the running refresh is an early retry
  bool early_retry_armed_ = false;  // the last timed attempt reached nothing
  std::uint64_t refreshes_ = 0;
  std::uint64_t refresh_failures_ = 0;
  core::ListenerList<AuthEvent, const Session*> listeners_;
  core::ListenerList<const std::string&> sinks_;
  core::Timer refresh_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rtsync::client::sync
