#include "rtsync/client/sync/realtime_sync.hpp"
#include "rtsync/client/sync/names.hpp"

namespace rtsync::client::sync {

RealtimeSync::RealtimeSync(core::Scheduler& scheduler, RealtimeSocket& socket,
                           query::QueryClient& cache, Refresher refresher,
                           RealtimeSyncOptions options, const MessageClock* message_clock)
    : scheduler_(scheduler),
      auth_(std::make_unique<AuthSession>(scheduler, std::move(refresher), options.auth)),
      freshness_(std::make_unique<FreshnessTracker>(scheduler)),
      reconnect_(std::make_unique<ReconnectScheduler>(scheduler, bus_, options.reconnect)),
      manager_(std::make_unique<RealtimeManager>(scheduler, socket, *auth_, *freshness_, bus_,
                                                 std::move(options.manager), message_clock)),
      project_(std::nullopt, loggers::kProvider) {
  // The token binding first, so a SIGNED_IN reaches the socket before anything reacts to it.
  socket_auth_ = bind_socket_auth(*auth_, socket);
  socket_answers_ = bind_socket_answers(socket, *auth_);
  provider_ = std::make_unique<RealtimeProvider>(*manager_, cache, bus_, *freshness_, project_,
                                                 std::move(options.provider));
  polling_ = std::make_unique<SmartPolling>(*freshness_, options.polling);
  triggers_ = std::make_unique<ReconnectTriggers>(scheduler, *reconnect_, *auth_, *freshness_,
                                                  project_, options.triggers);
  socket_reconnects_ = bind_socket_reconnects(socket, *triggers_);
}

RealtimeSync::~RealtimeSync() {
  socket_reconnects_.remove();
  socket_answers_.remove();
  socket_auth_.remove();
  triggers_.reset();
  polling_.reset();
  provider_.reset();  // leaves the channel
  manager_.reset();
  reconnect_.reset();
}

void RealtimeSync::request_reconnect(ReconnectIntent intent) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (intent.source.empty()) intent.source = "Explicit";
  triggers_->request(std::move(intent));
}

std::vector<core::Subscription> RealtimeSync::register_diagnostics(core::Diagnostics& d) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  std::vector<core::Subscription> subs;
  subs.push_back(d.add("realtime", [this] { return manager_->snapshot_json(); }));
  subs.push_back(d.add("realtimeStatus", [this] { return manager_->status_json(); }));
  subs.push_back(d.add("freshness", [this] { return freshness_->diagnostics(); }));
  subs.push_back(d.add("reconnectScheduler", [this] { return reconnect_->diagnostics(); }));
  subs.push_back(d.add("provider", [this] { return provider_->diagnostics(); }));
  subs.push_back(d.add("smartPolling", [this] { return polling_->diagnostics(); }));
  subs.push_back(d.add("auth", [this] { return auth_->diagnostics(); }));
  return subs;
}

}  // namespace rtsync::client::sync
