#include "rtsync/client/sync/reconnect_triggers.hpp"

#include <string>

#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync {

ReconnectTriggers::ReconnectTriggers(core::Scheduler& scheduler, ReconnectScheduler& reconnect,
                                     AuthSession& auth, FreshnessTracker& freshness,
                                     ProjectSelection& project, ReconnectTriggerOptions options)
    : scheduler_(scheduler),
      reconnect_(reconnect),
      freshness_(freshness),
      project_(project),
      options_(options),
      log_(log::get(loggers::kReconnectScheduler)) {
  auth_sub_ = auth.on_auth_state_change([this](AuthEvent e, const Session*) { on_auth(e); });
  freshness_sub_ = freshness_.subscribe([this] { evaluate_degraded(); });
  project_sub_ = project_.subscribe([this](const auto&) { evaluate_degraded(); });
  evaluate_degraded();
}

ReconnectTriggers::~ReconnectTriggers() = default;

void ReconnectTriggers::on_auth(AuthEvent event) {
  if (event == AuthEvent::signed_out) {
    auth_delay_.cancel();
    return;
  }
  // The seed waits a second after SIGNED_IN so the new token reaches the socket first.
  auth_delay_ = scheduler_.schedule(options_.signed_in_delay, timers::SignedInDelay, [this, event] {
    const auto since = reconnect_.state().time_since_last_reconnect;
    if (since && *since <= options_.heal_quiet) {
      log_->debug("{}: a heal ran {} ms ago; not requesting another", to_string(event),
                  std::chrono::duration_cast<std::chrono::milliseconds>(*since).count());
      return;
    }
    const std::string name(to_string(event));
    reconnect_.request_reconnect(
        {"AuthManager", name + " event (" + name + ")", ReconnectPriority::high});
  });
}

void ReconnectTriggers::on_socket_reconnected(std::string_view detail) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  std::string reason = "socket reconnected after a drop";
  if (!detail.empty()) reason += " (" + std::string(detail) + ")";
  reconnect_.request_reconnect({"RealtimeSocket", std::move(reason), ReconnectPriority::medium});
}

void ReconnectTriggers::request(ReconnectIntent intent) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  reconnect_.request_reconnect(std::move(intent));
}

// Runs on every freshness notification (one per realtime event): two comparisons when nothing
// changes.
void ReconnectTriggers::evaluate_degraded() {
  const bool degraded =
      project_.get().has_value() && freshness_.status() != RealtimeStatus::connected;
  if (!degraded) {
    if (degraded_since_) {
      degraded_since_.reset();
      degraded_timer_.cancel();
    }
    return;
  }
  if (degraded_since_) return;
  degraded_since_ = scheduler_.now();
  log_->debug(
      "realtime degraded ({}) with project {}; heal in {} ms unless it recovers",
      to_string(freshness_.status()), *project_.get(),
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.degraded_after).count());
  degraded_timer_ = scheduler_.schedule(options_.degraded_after, timers::DegradedWatch,
                                        [this] { on_degraded_timer(); });
}

void ReconnectTriggers::on_degraded_timer() {
  const auto secs =
      std::chrono::duration_cast<std::chrono::seconds>(options_.degraded_after).count();
  log_->warn("realtime=down for {} s (status {}: {}); requesting a heal", secs,
             to_string(freshness_.status()), freshness_.reason());
  // Re-armed first: the request may run handlers that change the status synchronously.
  degraded_timer_ = scheduler_.schedule(options_.degraded_after, timers::DegradedWatch,
                                        [this] { on_degraded_timer(); });
  reconnect_.request_reconnect({"DegradedWatch", "realtime=down for " + std::to_string(secs) + " s",
                                ReconnectPriority::medium});
}

}  // namespace rtsync::client::sync
