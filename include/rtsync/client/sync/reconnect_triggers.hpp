// ReconnectTriggers — what asks the ReconnectScheduler for a heal (docs/original-app.md §6, §8):
//   - auth: SIGNED_IN and TOKEN_REFRESHED; `signed_in_delay` (1 s) later, if more than
//     `heal_quiet` (5 s, strict) has passed since the last heal (or none happened), a high-priority
//     intent {source "AuthManager", reason "SIGNED_IN event (SIGNED_IN)" / "TOKEN_REFRESHED event
//     (TOKEN_REFRESHED)"}. A later auth event restarts the delay; SIGNED_OUT cancels it.
//   - the socket reconnecting after a drop: `on_socket_reconnected()` (wired to the transport by
//     the realtime manager's adapter) → a medium intent {source "RealtimeSocket"}.
//   - realtime degraded: while a project is selected and the freshness status is error or
//     disconnected, after `degraded_after` (30 s) of that, a medium intent
//     {source "DegradedWatch", reason "realtime=down for 30 s"}, repeated every `degraded_after`
//     while it lasts (so a heal cycle that gave up is retried). Any return to connected, or no
//     project, stops the watch.
//   - explicit: `request(intent)`.
//
// Destruction cancels the timers and drops the subscriptions.
// Thread safety: loop-confined.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "rtsync/client/sync/auth_session.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/observable.hpp"
#include "rtsync/client/sync/reconnect_scheduler.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::sync {

// The triggers' timing (see the file comment).
struct ReconnectTriggerOptions {
  core::Duration signed_in_delay = std::chrono::seconds(1);  // auth event → intent
  core::Duration heal_quiet = std::chrono::seconds(5);       // no auth intent sooner after a heal
  core::Duration degraded_after = std::chrono::seconds(30);  // degraded this long → intent
};

// Turns auth events, socket reconnects and degraded realtime into reconnect intents (see the
// file comment). Thread safety: loop-confined.
class ReconnectTriggers {
 public:
  // Listens to `auth`, `freshness` and `project`; every argument must outlive the triggers.
  ReconnectTriggers(core::Scheduler& scheduler, ReconnectScheduler& reconnect, AuthSession& auth,
                    FreshnessTracker& freshness, ProjectSelection& project,
                    ReconnectTriggerOptions options = {});
  ~ReconnectTriggers();
  ReconnectTriggers(const ReconnectTriggers&) = delete;
  ReconnectTriggers& operator=(const ReconnectTriggers&) = delete;

  // The socket opened again after a drop (`detail` goes into the reason).
  void on_socket_reconnected(std::string_view detail = {});
  // An explicit intent, passed on as is.
  void request(ReconnectIntent intent);

  // Since when realtime counts as degraded with a project selected, if it does.
  std::optional<core::TimePoint> degraded_since() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return degraded_since_;
  }

 private:
  void on_auth(AuthEvent event);
  void evaluate_degraded();
  void on_degraded_timer();

  core::Scheduler& scheduler_;
  ReconnectScheduler& reconnect_;
  FreshnessTracker& freshness_;
  ProjectSelection& project_;
  ReconnectTriggerOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::optional<core::TimePoint> degraded_since_;
  core::Timer auth_delay_;
  core::Timer degraded_timer_;
  core::Subscription auth_sub_;
  core::Subscription freshness_sub_;
  core::Subscription project_sub_;
};

}  // namespace rtsync::client::sync
