#include "task_client.hpp"

#include <boost/asio/io_context.hpp>
#include <future>
#include <random>

#include "drop_transport.hpp"
#include "pane_queries.hpp"
#include "rtsync/client/domain/fetchers.hpp"
#include "rtsync/client/domain/task_binding.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::app {

namespace sync = client::sync;
namespace query = client::query;
namespace rest = client::rest;

TaskClient::TaskClient(core::EventLoop& loop, TaskClientOptions options)
    : loop_(loop), options_(std::move(options)) {}

core::Scheduler& TaskClient::scheduler() noexcept {
  return loop_.scheduler();
}
core::EventBus& TaskClient::bus() {
  return client_->bus();
}
query::QueryClient& TaskClient::cache() {
  return client_->queries();
}
sync::FreshnessTracker& TaskClient::freshness() {
  return client_->sync().freshness();
}
sync::SmartPolling& TaskClient::polling() {
  return client_->sync().polling();
}
sync::AuthSession& TaskClient::session() {
  return client_->session();
}
client::RealtimeSocket& TaskClient::socket() {
  return client_->realtime();
}
sync::RealtimeManager& TaskClient::manager() {
  return client_->sync().manager();
}
sync::RealtimeProvider& TaskClient::provider() {
  return client_->sync().provider();
}
sync::ReconnectScheduler& TaskClient::reconnect() {
  return client_->sync().reconnect();
}
sync::ProjectSelection& TaskClient::selection() {
  return client_->sync().project();
}
rest::RestClient& TaskClient::rest() {
  return client_->rest();
}
rest::AuthClient& TaskClient::auth() {
  return client_->auth();
}
core::Diagnostics& TaskClient::diagnostics() {
  return client_->diagnostics();
}

Result<std::unique_ptr<TaskClient>> TaskClient::start(core::EventLoop& loop,
                                                      TaskClientOptions options,
                                                      core::Duration timeout) {
  if (options.url.empty()) return make_error(Errc::invalid_argument, "--url is required");
  if (options.anon_key.empty()) return make_error(Errc::invalid_argument, "--anon-key is required");
  const bool password = !options.email.empty() || !options.password.empty();
  if (password && (options.email.empty() || options.password.empty())) {
    return make_error(Errc::invalid_argument, "--email and --password go together");
  }
  if (!password && options.access_token.empty()) {
    return make_error(Errc::invalid_argument, "sign in with --email/--password or --token");
  }

  std::unique_ptr<TaskClient> stack(new TaskClient(loop, std::move(options)));
  TaskClient* self = stack.get();
  auto promise = std::make_shared<std::promise<Result<void>>>();
  auto future = promise->get_future();
  auto settled = std::make_shared<bool>(false);
  auto finish = [promise, settled](Result<void> r) {
    if (*settled) return;
    *settled = true;
    promise->set_value(std::move(r));
  };

  loop.post([self, finish] {
    core::Scheduler& sched = self->loop_.scheduler();
    const TaskClientOptions& o = self->options_;

    client::ClientOptions co;
    co.url = o.url;
    co.anon_key = o.anon_key;
    co.rest_url = o.rest_url;
    co.vsn = o.vsn;
    co.request_timeout = o.http_timeout;
    co.verify_peer = o.verify_peer;
    co.ca_file = o.ca_file;
    co.refresh_margin = o.refresh_margin;
    co.binding = client::domain::task_binding(o.source);
    // The original's QueryClient defaults (docs/original-app.md §7): 3 attempts unless
    // unauthorized, 1 s then 2 s, no refetch on window focus.
    co.query.retry = client::domain::default_retry();
    co.query.retry_delay = [](std::uint32_t failures, const Error&) -> core::Duration {
      return std::min<core::Duration>(
          std::chrono::milliseconds(1000) * (1u << std::min(failures, 10u)),
          std::chrono::milliseconds(3000));
    };
    co.query.refetch_on_window_focus = query::RefetchOn::never;
    if (o.coalesce_window) co.query.coalesce_window = *o.coalesce_window;
    // `k` drops realtime through this transport.
    co.wrap_transport = [self, &sched,
                         nodes = o.realtime_nodes](std::unique_ptr<client::Transport> inner) {
      auto droppable = std::make_unique<DroppableTransport>(sched, std::move(inner));
      droppable->set_nodes(nodes);
      self->drop_ = droppable->control();
      return std::unique_ptr<client::Transport>(std::move(droppable));
    };
    auto c = client::Client::create(self->loop_, std::move(co));
    if (!c.ok()) {
      finish(c.error());
      return;
    }
    self->client_ = std::move(c.value());

    self->sign_in([self, finish](Result<void> r) {
      if (!r.ok()) {
        finish(r.error());
        return;
      }
      self->load_projects([self, finish](Result<void> r2) {
        if (!r2.ok()) {
          finish(r2.error());
          return;
        }
        self->client_->connect();
        int index = 0;
        if (!self->options_.project.empty()) {
          index = -1;
          for (std::size_t i = 0; i < self->projects_.size(); ++i)
            if (self->projects_[i].id == self->options_.project) index = static_cast<int>(i);
          if (index < 0) {
            finish(make_error(Errc::not_found, "project " + self->options_.project +
                                                   " is not among the user's projects"));
            return;
          }
        }
        self->start_presence();
        self->select_project(index);
        finish(Result<void>{});
      });
    });
  });

  Result<void> outcome = make_error(Errc::timeout, "sign-in and project list took too long");
  if (future.wait_for(timeout) == std::future_status::ready) outcome = future.get();
  if (!outcome.ok()) {
    // Tear down on the loop; a late answer finds `settled` set.
    loop.run_sync([&] {
      *settled = true;
      stack->client_.reset();
    });
    return outcome.error();
  }
  return stack;
}

TaskClient::~TaskClient() {
  if (!client_) return;
  auto teardown = [this] {
    presence_subs_.clear();
    client_.reset();
  };
  if (loop_.running_in_loop()) {
    teardown();
    return;
  }
  loop_.run_sync(teardown);
}

void TaskClient::start_presence() {
  if (!options_.presence) return;
  const auto& session = client_->session().get_session();
  if (!session || session->user_id.empty()) return;
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  session_id_.clear();
  for (int i = 0; i < 16; ++i)
    session_id_.push_back(kHex[rd() % 16]);
  std::string name = options_.viewer_name;
  if (name.empty()) name = options_.email.substr(0, options_.email.find('@'));
  if (name.empty()) name = session->user_id;
  json::object payload{{"user_id", session->user_id},
                       {"name", name},
                       {"client", options_.viewer_client},
                       {"since", core::format_iso8601(scheduler().wall_now())},
                       {"session", session_id_}};
  auto& manager = client_->sync().manager();
  presence_subs_.push_back(
      manager.on_presence([this](const client::PresenceMap& state) { on_presence(state); }));
  // A new channel's presence is unknown until its state arrives (the old channel's viewers left
  // with it: on_presence got an empty state when it was left).
  presence_subs_.push_back(manager.on_phase([this](const sync::ChannelPhaseChange& change) {
    if (change.phase == sync::ChannelPhase::joining) presence_synced_ = false;
  }));
  presence_subs_.push_back(client_->diagnostics().add("presence", [this, name] {
    json::array list;
    for (const auto& v : viewers_)
      list.push_back(view::viewer_json(v));
    return json::value(json::object{{"name", name},
                                    {"session", session_id_},
                                    {"synced", presence_synced_},
                                    {"others", static_cast<std::int64_t>(viewers_.size())},
                                    {"viewers", std::move(list)}});
  }));
  manager.set_presence(session->user_id, std::move(payload));
}

void TaskClient::on_presence(const client::PresenceMap& state) {
  auto next = view::other_viewers(state, session_id_);
  const auto change = view::viewer_change(viewers_, next);
  const bool first = !presence_synced_;
  viewers_ = std::move(next);
  presence_synced_ = true;
  if (first || !change.empty()) viewer_listeners_.notify(viewers_, change);
}

core::Subscription TaskClient::on_viewers(
    std::function<void(const std::vector<view::Viewer>&, const view::ViewerChange&)> listener) {
  return viewer_listeners_.add(std::move(listener));
}

void TaskClient::sign_in(std::function<void(Result<void>)> done) {
  if (!options_.email.empty()) {
    client_->sign_in_with_password(options_.email, options_.password, std::move(done));
    return;
  }
  done(client_->sign_in_with_token(options_.access_token, options_.refresh_token));
}

void TaskClient::load_projects(std::function<void(Result<void>)> done) {
  query::FetchQueryOptions fo;
  fo.key = projects_key();
  fo.query.query_fn = projects_fetcher(client_->rest());
  fo.query.retry = query::Retry(2);
  fo.query.retry_delay = [](std::uint32_t, const Error&) -> core::Duration {
    return std::chrono::milliseconds(500);
  };
  client_->queries().fetch_query(std::move(fo), [this, done](const Result<query::Data>& r) {
    if (!r.ok()) {
      done(make_error(r.error().code, "loading projects: " + r.error().message));
      return;
    }
    projects_.clear();
    if (const auto* rows = r.value().if_array()) {
      for (const auto& row : *rows) {
        ProjectInfo info;
        if (const auto* id = row.find("id"); id && id->is_string()) info.id = id->as_string();
        if (const auto* name = row.find("name"); name && name->is_string()) {
          info.name = name->as_string();
        }
        if (!info.id.empty()) projects_.push_back(std::move(info));
      }
    }
    if (projects_.empty()) {
      done(make_error(Errc::not_found, "the signed-in user has no project"));
      return;
    }
    done(Result<void>{});
  });
}

int TaskClient::selected_index() const {
  const auto& sel = client_->sync().project().get();
  if (!sel) return -1;
  for (std::size_t i = 0; i < projects_.size(); ++i)
    if (projects_[i].id == *sel) return static_cast<int>(i);
  return -1;
}

void TaskClient::select_project(int index) {
  if (index < 0 || index >= static_cast<int>(projects_.size())) return;
  client_->watch(projects_[static_cast<std::size_t>(index)].id);
}

bool TaskClient::drop_realtime() {
  return drop_ && drop_->drop(options_.drop_for);
}

bool TaskClient::dropping() const {
  return drop_ && drop_->dropping();
}

std::string TaskClient::realtime_node() const {
  return drop_ ? drop_->node() : "";
}

std::size_t TaskClient::realtime_node_index() const {
  return drop_ ? drop_->node_index() : 0;
}

void TaskClient::refetch_all() {
  query::QueryFilters f;
  f.type = query::QueryType::active;
  client_->queries().refetch_queries(f);
}

json::object TaskClient::snapshot() const {
  return client_->snapshot();
}

}  // namespace rtsync::app
