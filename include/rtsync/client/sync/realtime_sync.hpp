// RealtimeSync — the coordination layer assembled: what an application creates once, next to its
// RealtimeSocket and QueryClient (client::Client, rtsync/client/client.hpp, does it for you). What
// it joins and invalidates is the SyncBinding in `options.manager.binding` (binding.hpp; the
// `rtsync watch` task pane uses client::domain::task_binding()).
//
// Owns, in dependency order: EventBus, AuthSession, FreshnessTracker, ReconnectScheduler,
// RealtimeManager, ProjectSelection, RealtimeProvider, SmartPolling and ReconnectTriggers, and
// wires them:
//   - the session's token follows into the socket (SIGNED_IN / TOKEN_REFRESHED → set_auth,
//     SIGNED_OUT → set_auth(none));
//   - the socket opening tells the session the network answered (AuthSession::network_answered):
//     a token refresh that failed during an outage is retried at once;
//   - heal triggers: auth events, the socket reopening after a drop, realtime degraded for 30 s
//     with a project selected, explicit `request_reconnect`;
//   - `realtime:auth-heal` reaches the manager's heal cycle;
//   - selecting a scope (`project().set(id)`) joins its channel; events invalidate the binding's
//     families, and so does the server's "Too many changes" signal for a table of
//     `binding.table_families` (`realtime:changes-overflow`).
// `register_diagnostics` publishes the seed's runtime views: "realtime" (the snapshot
// {channelState, lastEventAt, timestamp, lastMessageAt}), "realtimeStatus", "freshness",
// "reconnectScheduler", "provider", "smartPolling", "auth".
//
// Destruction runs in reverse: triggers and bindings stop, the provider leaves the channel, every
// timer is cancelled.
// Thread safety: loop-confined; construct, use and destroy on the scheduler's loop. The socket,
// the query cache and the optional MessageClock must outlive it.
#pragma once

#include <memory>
#include <vector>

#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/sync/auth_session.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/observable.hpp"
#include "rtsync/client/sync/realtime_manager.hpp"
#include "rtsync/client/sync/realtime_provider.hpp"
#include "rtsync/client/sync/reconnect_scheduler.hpp"
#include "rtsync/client/sync/reconnect_triggers.hpp"
#include "rtsync/client/sync/smart_polling.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/diagnostics.hpp"
#include "rtsync/core/event_bus.hpp"

namespace rtsync::client::sync {

// The options of each component RealtimeSync creates.
struct RealtimeSyncOptions {
  AuthSessionOptions auth;              // for AuthSession
  RealtimeManagerOptions manager;       // for RealtimeManager
  RealtimeProviderOptions provider;     // for RealtimeProvider
  SmartPollingOptions polling;          // for SmartPolling
  ReconnectSchedulerOptions reconnect;  // for ReconnectScheduler
  ReconnectTriggerOptions triggers;     // for ReconnectTriggers
};

// The coordination layer assembled and wired (see the file comment).
class RealtimeSync {
 public:
  // Creates and wires every component over `socket` and `cache` (which, with `scheduler` and the
  // optional message clock, must outlive it); `refresher` refreshes the session's tokens.
  RealtimeSync(core::Scheduler& scheduler, RealtimeSocket& socket, query::QueryClient& cache,
               Refresher refresher = {}, RealtimeSyncOptions options = {},
               const MessageClock* message_clock = nullptr);
  ~RealtimeSync();
  RealtimeSync(const RealtimeSync&) = delete;
  RealtimeSync& operator=(const RealtimeSync&) = delete;

  // The components, for the application to use (sign in, select a project, observe queries…)
  // and to read diagnostics from.
  core::EventBus& bus() noexcept { return bus_; }
  AuthSession& auth() noexcept { return *auth_; }
  FreshnessTracker& freshness() noexcept { return *freshness_; }
  ReconnectScheduler& reconnect() noexcept { return *reconnect_; }
  RealtimeManager& manager() noexcept { return *manager_; }
  ProjectSelection& project() noexcept { return project_; }
  RealtimeProvider& provider() noexcept { return *provider_; }
  SmartPolling& polling() noexcept { return *polling_; }
  ReconnectTriggers& triggers() noexcept { return *triggers_; }

  // An explicit heal request (source "Explicit" unless given).
  void request_reconnect(ReconnectIntent intent);

  // Registers the diagnostics providers named above; they stay while the handles live.
  std::vector<core::Subscription> register_diagnostics(core::Diagnostics& diagnostics);

 private:
  core::Scheduler& scheduler_;  // the loop it is confined to
  core::EventBus bus_;
  std::unique_ptr<AuthSession> auth_;
  std::unique_ptr<FreshnessTracker> freshness_;
  std::unique_ptr<ReconnectScheduler> reconnect_;
  std::unique_ptr<RealtimeManager> manager_;
  ProjectSelection project_;
  std::unique_ptr<RealtimeProvider> provider_;
  std::unique_ptr<SmartPolling> polling_;
  std::unique_ptr<ReconnectTriggers> triggers_;
  core::Subscription socket_auth_;
  core::Subscription socket_answers_;
  core::Subscription socket_reconnects_;
};

}  // namespace rtsync::client::sync
