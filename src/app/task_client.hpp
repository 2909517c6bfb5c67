// TaskClient — the client side of `rtsync watch`, `rtsync demo` and `rtsync bench`: a
// client::Client (rtsync/client/client.hpp) bound to the task app (client::domain::task_binding()),
// with the original app's query defaults, a `k` transport that can drop realtime on purpose
// (drop_transport.hpp), and the user's projects.
//
// start() builds the client on the loop, signs in (password grant, or a given access token), loads
// the user's projects, connects the socket and selects the initial project (the provider joins its
// channel). The pane's observers live in PaneSession (pane_session.hpp).
//
// Presence (TaskClientOptions::presence, on by default): the client is one presence on the
// selected project's channel, key = the user id, payload {"user_id","name","client","since",
// "session"} (`session` a random id per client, so two sessions of one user are two viewers;
// `since` when this client started), tracked by the RealtimeManager on every SUBSCRIBED. viewers()
// are the others on that channel (view/viewers.hpp); the diagnostics snapshot has them under
// "presence". The project channel is a public channel: whoever may join it (anyone with the anon
// key and the project id) sees these presences — hence `name` is the viewer name given, else the
// email's part before '@', never the whole email.
//
// Thread safety: start() and the destructor are called from a thread other than the loop's (they
// block on it); every other method is loop-confined (call inside loop.post / run_sync).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/client/client.hpp"
#include "rtsync/client/domain/task_binding.hpp"
#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/rest/auth_client.hpp"
#include "rtsync/client/rest/rest_client.hpp"
#include "rtsync/client/sync/auth_session.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/observable.hpp"
#include "rtsync/client/sync/realtime_manager.hpp"
#include "rtsync/client/sync/realtime_provider.hpp"
#include "rtsync/client/sync/realtime_sync.hpp"
#include "rtsync/client/sync/reconnect_scheduler.hpp"
#include "rtsync/client/sync/smart_polling.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/diagnostics.hpp"
#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/protocol/message.hpp"
#include "view/viewers.hpp"

namespace rtsync::app {

class DropControl;

struct TaskClientOptions {
  std::string url;       // http(s)://host[:port] — the project's base URL
  std::string anon_key;  // the project's anon key (apikey)
  // Base URL of /rest/v1 and /auth/v1 when they are served apart from realtime (empty: url).
  std::string rest_url;
  // Sign-in: email + password (GoTrue password grant; refreshed through the refresh-token
  // grant), or a ready access token (refreshed only when refresh_token is given).
  std::string email;
  std::string password;
  std::string access_token;
  std::string refresh_token;
  std::string project;  // initial project id; empty: the user's first project
  protocol::Vsn vsn = protocol::Vsn::v2;
  // Where task events come from: postgres_changes or Broadcast from Database (task_binding.hpp).
  client::domain::TaskSource source = client::domain::TaskSource::changes;
  core::Duration drop_for = std::chrono::seconds(5);  // how long `k` keeps realtime down
  // A cluster's nodes ("host:port", the first `url`'s): `k` also moves realtime to the next one.
  std::vector<std::string> realtime_nodes;
  core::Duration refresh_margin = std::chrono::seconds(60);
  core::Duration http_timeout = std::chrono::seconds(10);
  // The query cache's burst-coalescing window (ClientConfig::coalesce_window); unset: default.
  std::optional<core::Duration> coalesce_window;
  bool verify_peer = true;
  std::string ca_file;
  // Track this viewer on the project channel and follow who else is there (see above).
  bool presence = true;
  std::string viewer_name;  // empty: the email's part before '@', else the user id
  std::string viewer_client = "rtsync watch";  // what the others see as this viewer's client
};

struct ProjectInfo {
  std::string id;
  std::string name;
};

class TaskClient {
 public:
  // Blocks until signed in with the project list loaded, or `timeout`. Errors: invalid_argument
  // (options), unauthorized (sign-in refused), not_found (no project / unknown --project), and the
  // REST client's codes.
  static Result<std::unique_ptr<TaskClient>> start(
      core::EventLoop& loop, TaskClientOptions options,
      core::Duration timeout = std::chrono::seconds(20));
  ~TaskClient();
  TaskClient(const TaskClient&) = delete;
  TaskClient& operator=(const TaskClient&) = delete;

  // ---- loop-confined -------------------------------------------------------------------------
  core::EventLoop& loop() noexcept { return loop_; }
  core::Scheduler& scheduler() noexcept;
  const TaskClientOptions& options() const noexcept { return options_; }
  client::Client& client() { return *client_; }
  core::EventBus& bus();
  client::query::QueryClient& cache();
  client::sync::FreshnessTracker& freshness();
  client::sync::SmartPolling& polling();
  client::sync::AuthSession& session();
  client::RealtimeSocket& socket();
  client::sync::RealtimeManager& manager();
  client::sync::RealtimeProvider& provider();
  client::sync::ReconnectScheduler& reconnect();
  client::sync::ProjectSelection& selection();
  client::rest::RestClient& rest();
  client::rest::AuthClient& auth();
  core::Diagnostics& diagnostics();

  const std::vector<ProjectInfo>& projects() const noexcept { return projects_; }
  // Index of the selected project in projects(), or -1.
  int selected_index() const;
  // Selects projects()[index] (the provider leaves the old channel and joins the new one).
  void select_project(int index);
  // Drops the realtime connection for options.drop_for (see drop_transport.hpp).
  bool drop_realtime();
  bool dropping() const;
  // With realtime_nodes: the node realtime is on ("host:port"), its index and how many; else "".
  std::string realtime_node() const;
  std::size_t realtime_node_index() const;
  // Refetches every active query now.
  void refetch_all();
  // The whole snapshot (realtime, manager, provider, freshness, polling, reconnect, socket,
  // session, cache, presence and whatever was added to diagnostics()).
  json::object snapshot() const;

  // Presence (see the file comment). This client's session id ("" without presence).
  const std::string& presence_session() const noexcept { return session_id_; }
  // True once a presence state of the current channel arrived (false again on a project switch
  // until the new channel's state arrives).
  bool presence_synced() const noexcept { return presence_synced_; }
  // Everyone else watching the selected project now.
  const std::vector<view::Viewer>& viewers() const noexcept { return viewers_; }
  // Called when the first presence state of a channel arrives and whenever who else is watching
  // changes: the viewers now and the change since the last call.
  core::Subscription on_viewers(
      std::function<void(const std::vector<view::Viewer>&, const view::ViewerChange&)> listener);

 private:
  TaskClient(core::EventLoop& loop, TaskClientOptions options);
  void sign_in(std::function<void(Result<void>)> done);
  void load_projects(std::function<void(Result<void>)> done);
  void start_presence();
  void on_presence(const client::PresenceMap& state);

  core::EventLoop& loop_;
  TaskClientOptions options_;
  std::shared_ptr<DropControl> drop_;
  std::unique_ptr<client::Client> client_;
  std::vector<ProjectInfo> projects_;
  std::string session_id_;
  bool presence_synced_ = false;
  std::vector<view::Viewer> viewers_;
  core::ListenerList<const std::vector<view::Viewer>&, const view::ViewerChange&> viewer_listeners_{
      "TaskClient"};
  std::vector<core::Subscription> presence_subs_;
};

}  // namespace rtsync::app
