#include "e2e_world.hpp"

#include <thread>

#include "rtsync/server/pg/connection.hpp"

namespace rtsync::e2e {
Result<std::unique_ptr<World>> World::create(WorldOptions options) {
  std::unique_ptr<World> w(new World());
  w->options_ = options;
  app::DemoEnvironmentOptions eo;
  eo.access_token_ttl = options.access_token_ttl;
  eo.server_binary = options.server_binary;
  auto env = app::DemoEnvironment::create(eo);
  if (!env.ok()) return env.error();
  w->env_ = std::move(env.value());
  w->project_id_ = w->env_->projects().front().id;

  app::WorkerOptions wo = w->env_->worker_options();
  wo.rate = options.rate;
  wo.seed = options.seed;
  w->worker_ = std::make_unique<app::Worker>(wo);

  w->loop_.start();
  if (!options.start_client) {
    if (options.start_worker) {
      if (auto r = w->worker_->start(); !r.ok()) return r.error();
    }
    return w;
  }
  app::TaskClientOptions co;
  co.url = w->env_->http_url();
  co.anon_key = w->env_->anon_key();
  co.email = w->env_->user().email;
  co.password = w->env_->user().password;
  co.project = w->project_id_;
  co.source = options.source;
  co.refresh_margin = options.refresh_margin;
  auto stack = app::TaskClient::start(w->loop_, co);
  if (!stack.ok()) return stack.error();
  w->stack_ = std::move(stack.value());
  World* self = w.get();
  w->loop_.run_sync([&] {
    app::PaneSessionOptions po;
    po.page_size = options.page_size;
    self->pane_ =
        std::make_unique<app::PaneSession>(*self->stack_, po, [self](const std::string& l) {
          std::lock_guard lock(self->mu_);
          self->lines_.push_back(l);
        });
  });
  if (options.start_worker) {
    // Changes made before the channel is joined arrive by the gap fill, not as events: start
    // the worker once the pane shows Connected so every change can be checked as an event.
    if (!w->wait_until([self] { return self->stack_->provider().state().is_connected; }, 20s)) {
      return make_error(Errc::timeout, "the client never connected");
    }
    if (auto r = w->worker_->start(); !r.ok()) return r.error();
  }
  return w;
}

World::~World() {
  if (pane_) loop_.run_sync([this] { pane_.reset(); });
  stack_.reset();
  loop_.stop();
  loop_.join();
  if (worker_) worker_->stop();
  worker_.reset();
  env_.reset();
}

bool World::wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const int rounds = static_cast<int>(timeout / 50ms) + 1;
  for (int i = 0; i < rounds; ++i) {
    bool ok = false;
    loop_.run_sync([&] { ok = pred(); });
    if (ok) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::vector<std::string> World::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

std::vector<json::object> World::objects(std::string_view type) const {
  std::vector<json::object> out;
  for (const auto& l : lines()) {
    auto v = core::parse_json(l);
    if (!v.ok() || !v.value().is_object()) continue;
    const auto& o = v.value().as_object();
    const auto* t = o.if_contains("type");
    if (t && t->is_string() && t->as_string() == type) out.push_back(o);
  }
  return out;
}

std::vector<World::Row> World::db_tasks() const {
  std::vector<Row> rows;
  auto conn = server::pg::Connection::open(env_->conninfo());
  if (!conn.ok()) return rows;
  // to_json prints timestamps the way the REST layer does.
  auto r = conn.value().exec(
      "SELECT id::text, status::text, coalesce(to_json(updated_at)#>>'{}', '') FROM public.tasks "
      "WHERE project_id = $1 ORDER BY created_at DESC, id DESC",
      {project_id_});
  if (!r.ok()) return rows;
  for (int i = 0; i < r->rows(); ++i)
    rows.emplace_back(std::string(r->value(i, 0)), std::string(r->value(i, 1)),
                      std::string(r->value(i, 2)));
  return rows;
}

std::optional<std::vector<World::Row>> World::cached_tasks() {
  return on_loop([this]() -> std::optional<std::vector<Row>> {
    auto* q = pane_->tasks();
    if (!q) return std::nullopt;
    const auto& r = q->observer().result();
    if (!r.data || r.is_placeholder_data) return std::nullopt;
    const auto* tasks = r.data->find("tasks");
    if (!tasks || !tasks->is_array()) return std::nullopt;
    std::vector<Row> rows;
    for (const auto& t : *tasks->if_array()) {
      auto s = [&](std::string_view k) {
        const auto* v = t.find(k);
        return v && v->is_string() ? std::string(v->as_string()) : std::string();
      };
      rows.emplace_back(s("id"), s("status"), s("updated_at"));
    }
    return rows;
  });
}

std::string World::wait_cache_equals_db(std::chrono::milliseconds timeout) {
  std::string diff = "no data";
  const int rounds = static_cast<int>(timeout / 100ms) + 1;
  for (int i = 0; i < rounds; ++i) {
    const auto db = db_tasks();
    const auto cache = cached_tasks();
    if (cache && *cache == db) return "";
    if (!cache) {
      diff = "the tasks page has no data";
    } else {
      diff =
          "cache " + std::to_string(cache->size()) + " rows, database " + std::to_string(db.size());
      for (std::size_t k = 0; k < std::min(cache->size(), db.size()); ++k) {
        if ((*cache)[k] != db[k]) {
          diff += "; first difference at row " + std::to_string(k) + ": cache (" +
                  std::get<0>((*cache)[k]) + ", " + std::get<1>((*cache)[k]) + ", " +
                  std::get<2>((*cache)[k]) + ") vs database (" + std::get<0>(db[k]) + ", " +
                  std::get<1>(db[k]) + ", " + std::get<2>(db[k]) + ")";
          break;
        }
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  return diff;
}

}  // namespace rtsync::e2e
