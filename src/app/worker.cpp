#include "worker.hpp"

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <random>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/net/http_client.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::app {
namespace {

constexpr std::string_view kLog = "DemoWorker";

struct TaskType {
  std::string_view name;
  bool video;
};
constexpr TaskType kTaskTypes[] = {
    {"image_generation", false}, {"image_upscale", false}, {"image_edit", false},
    {"video_travel", true},      {"video_upscale", true},
};
constexpr std::string_view kPrompts[] = {
    "a lighthouse at dusk",        "neon city in the rain", "a fox in fresh snow",
    "desert caravan, golden hour", "underwater cathedral",  "paper boats on a canal",
};

enum class Stage : std::uint8_t { queued, in_progress };

struct Active {
  std::string id;
  std::size_t project = 0;
  bool video = false;
  Stage stage = Stage::queued;
  core::TimePoint due;
};

core::Duration uniform(std::mt19937_64& rng, std::chrono::milliseconds lo,
                       std::chrono::milliseconds hi) {
  std::uniform_int_distribution<std::int64_t> d(lo.count(), hi.count());
  return std::chrono::milliseconds(d(rng));
}

}  // namespace

struct Worker::Impl {
  WorkerOptions options;
  std::shared_ptr<spdlog::logger> log = log::get(kLog);
  std::unique_ptr<core::EventLoop> loop;
  // Loop-confined from here down.
  server::pg::Connection db;
  std::unique_ptr<net::HttpClient> http;
  std::mt19937_64 rng;
  core::Timer tick_timer;
  core::TimePoint last_tick{};
  double budget = 0;  // fractional tasks owed to `rate`
  std::vector<Active> active;
  bool paused = false;
  bool stopping = false;
  std::size_t in_flight = 0;  // broadcast batches
  std::uint64_t transactions = 0;

  mutable std::mutex mu;  // guards stats and changes (read from other threads)
  WorkerStats stats;
  std::vector<WorkerChange> changes;
  std::condition_variable drained;

  explicit Impl(WorkerOptions o) : options(std::move(o)), rng(options.seed) {}

  Result<void> connect() {
    auto c = server::pg::Connection::open(options.conninfo);
    if (!c.ok()) return c.error();
    db = std::move(c.value());
    if (auto r = db.exec("SET ROLE service_role"); !r.ok()) return r.error();
    if (auto r = db.exec("INSERT INTO public.workers (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
                         {options.worker_id});
        !r.ok()) {
      return r.error();
    }
    return {};
  }

  void schedule_tick() {
    if (stopping) return;
    tick_timer = loop->scheduler().schedule(options.tick, timers::Worker, [this] { tick(); });
  }

  void record(WorkerChange change, bool insert) {
    std::lock_guard lock(mu);
    if (insert) {
      ++stats.created;
    } else {
      ++stats.updated;
      if (change.status == "Complete") ++stats.completed;
      if (change.status == "Failed") ++stats.failed;
      if (change.status == "Cancelled") ++stats.cancelled;
    }
    changes.push_back(std::move(change));
  }

  // One step: new tasks owed to the rate, then every due transition, in one transaction.
  void tick() {
    const core::TimePoint now = loop->scheduler().now();
    const double dt = last_tick == core::TimePoint{}
                          ? 0.0
                          : std::chrono::duration<double>(now - last_tick).count();
    last_tick = now;
    if (paused || options.projects.empty()) {
      schedule_tick();
      return;
    }
    budget += options.rate * dt;
    if (!db.is_open()) {
      if (auto r = connect(); !r.ok()) {
        std::lock_guard lock(mu);
        ++stats.db_errors;
        log->warn("database: {}", r.error().message);
        schedule_tick();
        return;
      }
    }
    json::array messages;
    std::vector<std::pair<WorkerChange, bool>> committed;
    auto fail = [&](const Error& e) {
      log->warn("tick rolled back: {}", e.message);
      (void)db.exec("ROLLBACK");
      {
        std::lock_guard lock(mu);
        ++stats.db_errors;
      }
      // A broken connection is reopened next tick; the tasks in memory stay as they were.
      if (!db.is_open()) db.close();
    };
    if (auto r = db.exec("BEGIN"); !r.ok()) {
      fail(r.error());
      schedule_tick();
      return;
    }
    std::vector<Active> created;
    std::vector<std::size_t> finished;  // indexes into `active`
    std::vector<std::pair<std::size_t, Stage>> advanced;
    bool ok = true;
    while (ok && budget >= 1.0 && active.size() + created.size() < options.max_active) {
      budget -= 1.0;
      auto c = create_task(now, committed, messages);
      if (!c.ok()) {
        fail(c.error());
        ok = false;
        break;
      }
      created.push_back(std::move(c.value()));
    }
    if (budget > 1.0) budget = 1.0;  // at the cap: do not accumulate a burst
    for (std::size_t i = 0; ok && i < active.size(); ++i) {
      Active& t = active[i];
      if (t.due > now) continue;
      auto r = advance(t, now, committed, messages);
      if (!r.ok()) {
        fail(r.error());
        ok = false;
        break;
      }
      if (r.value()) {
        finished.push_back(i);
      } else {
        advanced.emplace_back(i, t.stage);
      }
    }
    if (ok) {
      if (auto r = db.exec("COMMIT"); !r.ok()) {
        fail(r.error());
        ok = false;
      }
    }
    if (!ok) {
      // Undo the in-memory stage changes of this tick: the rows were not changed.
      for (auto& [i, stage] : advanced)
        if (stage == Stage::in_progress) active[i].stage = Stage::queued;
      schedule_tick();
      return;
    }
    for (auto it = finished.rbegin(); it != finished.rend(); ++it)
      active.erase(active.begin() + static_cast<std::ptrdiff_t>(*it));
    for (auto& c : created)
      active.push_back(std::move(c));
    ++transactions;
    for (auto& [change, insert] : committed) {
      change.transaction = transactions;
      record(std::move(change), insert);
    }
    {
      std::lock_guard lock(mu);
      stats.active = active.size();
    }
    if (!messages.empty()) broadcast(std::move(messages));
    schedule_tick();
  }

  Result<Active> create_task(core::TimePoint now, std::vector<std::pair<WorkerChange, bool>>& out,
                             json::array& messages) {
    std::uniform_int_distribution<std::size_t> pick_project(0, options.projects.size() - 1);
    std::uniform_int_distribution<std::size_t> pick_type(0, std::size(kTaskTypes) - 1);
    std::uniform_int_distribution<std::size_t> pick_prompt(0, std::size(kPrompts) - 1);
    const std::size_t p = pick_project(rng);
    const TaskType& type = kTaskTypes[pick_type(rng)];
    json::object params{{"prompt", kPrompts[pick_prompt(rng)]},
                        {"seed", static_cast<std::int64_t>(rng() % 100000)}};
    auto r = db.exec(
        "INSERT INTO public.tasks (task_type, params, project_id) VALUES ($1, $2::jsonb, $3) "
        "RETURNING id, status, created_at",
        {std::string(type.name), json::serialize(params), options.projects[p].id});
    if (!r.ok()) return r.error();
    Active t;
    t.id = std::string(r->value(0, 0));
    t.project = p;
    t.video = type.video;
    t.stage = Stage::queued;
    t.due = now + uniform(rng, std::chrono::milliseconds(300), std::chrono::milliseconds(1500));
    WorkerChange change{t.id, options.projects[p].id, std::string(r->value(0, 1)),
                        std::string(r->value(0, 2))};
    messages.push_back(message(change));
    out.emplace_back(std::move(change), true);
    return t;
  }

  // Moves `t` one step; true when it reached a final status.
  Result<bool> advance(Active& t, core::TimePoint now,
                       std::vector<std::pair<WorkerChange, bool>>& out, json::array& messages) {
    std::uniform_int_distribution<int> percent(0, 99);
    const int roll = percent(rng);
    const std::string& project_id = options.projects[t.project].id;
    Result<server::pg::PgResult> r = make_error(Errc::internal, "no statement");
    std::string status;
    bool final = true;
    if (t.stage == Stage::queued) {
      if (roll < 10) {
        status = "Cancelled";
        r = db.exec(
            "UPDATE public.tasks SET status = 'Cancelled', updated_at = now() WHERE id = $1 "
            "RETURNING status, updated_at",
            {t.id});
      } else {
        status = "In Progress";
        final = false;
        r = db.exec(
            "UPDATE public.tasks SET status = 'In Progress', worker_id = $2, attempts = attempts + "
            "1, generation_started_at = now(), updated_at = now() WHERE id = $1 RETURNING status, "
            "updated_at",
            {t.id, options.worker_id});
      }
    } else if (roll < 75) {
      status = "Complete";
      const std::string location =
          "https://cdn.example.invalid/" + t.id + (t.video ? ".mp4" : ".png");
      r = db.exec(
          "UPDATE public.tasks SET status = 'Complete', output_location = $2, result_data = "
          "jsonb_build_object('output', $2::text), generation_processed_at = now(), "
          "generation_created = true, updated_at = now() WHERE id = $1 RETURNING status, "
          "updated_at",
          {t.id, location});
      if (r.ok()) {
        auto g = create_generation(t, location);
        if (!g.ok()) return g.error();
      }
    } else if (roll < 95) {
      status = "Failed";
      r = db.exec(
          "UPDATE public.tasks SET status = 'Failed', error_message = 'simulated worker failure', "
          "updated_at = now() WHERE id = $1 RETURNING status, updated_at",
          {t.id});
    } else {
      status = "Cancelled";
      r = db.exec(
          "UPDATE public.tasks SET status = 'Cancelled', updated_at = now() WHERE id = $1 "
          "RETURNING status, updated_at",
          {t.id});
    }
    if (!r.ok()) return r.error();
    if (r->rows() != 1) return make_error(Errc::not_found, "task " + t.id + " vanished");
    if (!final) {
      t.stage = Stage::in_progress;
      t.due = now + uniform(rng, std::chrono::milliseconds(500), std::chrono::milliseconds(3000));
    }
    WorkerChange change{t.id, project_id, std::string(r->value(0, 0)), std::string(r->value(0, 1))};
    messages.push_back(message(change));
    out.emplace_back(std::move(change), false);
    return final;
  }

  Result<void> create_generation(const Active& t, const std::string& location) {
    const WorkerProject& p = options.projects[t.project];
    auto g = db.exec(
        "INSERT INTO public.generations (tasks, params, location, type, project_id) VALUES "
        "(jsonb_build_array($1::text), '{}'::jsonb, $2, $3, $4) RETURNING id",
        {t.id, location, std::string(t.video ? "video" : "image"), p.id});
    if (!g.ok()) return g.error();
    {
      std::lock_guard lock(mu);
      ++stats.generations;
    }
    if (p.shot_ids.empty()) return {};
    std::uniform_int_distribution<std::size_t> pick(0, p.shot_ids.size() - 1);
    std::uniform_int_distribution<int> percent(0, 99);
    server::pg::Param position;
    if (percent(rng) >= 30) position = std::to_string(percent(rng));
    auto sg = db.exec(
        "INSERT INTO public.shot_generations (shot_id, generation_id, position) VALUES ($1, $2, "
        "$3::int)",
        {p.shot_ids[pick(rng)], std::string(g->value(0, 0)), position});
    if (!sg.ok()) return sg.error();
    return {};
  }

  static json::value message(const WorkerChange& c) {
    return json::object{
        {"topic", "task-updates:" + c.project_id},
        {"event", "task-update"},
        {"payload", json::object{{"type", "TASKS_STATUS_UPDATE"},
                                 {"payload", json::object{{"projectId", c.project_id},
                                                          {"taskId", c.task_id},
                                                          {"status", c.status},
                                                          {"updated_at", c.updated_at}}}}},
        {"private", false}};
  }

  void broadcast(json::array messages) {
    if (!http) return;
    const std::size_t n = messages.size();
    const std::string body = json::serialize(json::object{{"messages", std::move(messages)}});
    net::Headers headers{{"apikey", options.service_key},
                         {"Authorization", "Bearer " + options.service_key},
                         {"Content-Type", "application/json"}};
    ++in_flight;
    http->request("POST", "/realtime/v1/api/broadcast", std::move(headers), body,
                  [this, n](Result<net::HttpResult> r) {
                    --in_flight;
                    const bool ok = r.ok() && r->status >= 200 && r->status < 300;
                    {
                      std::lock_guard lock(mu);
                      (ok ? stats.broadcasts_sent : stats.broadcasts_failed) += n;
                    }
                    if (!ok) {
                      log->debug("broadcast of {} failed: {}", n,
                                 r.ok() ? "HTTP " + std::to_string(r->status) + " " + r->body
                                        : r.error().message);
                    }
                    if (in_flight == 0) drained.notify_all();
                  });
  }
};

Worker::Worker(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Worker::~Worker() {
  stop();
}

Result<void> Worker::start() {
  if (impl_->loop) return {};
  if (impl_->options.projects.empty()) {
    return make_error(Errc::invalid_argument, "the worker needs at least one project");
  }
  impl_->loop = std::make_unique<core::EventLoop>();
  impl_->loop->start();
  Result<void> result;
  impl_->loop->run_sync([&] {
    Impl& w = *impl_;
    if (auto r = w.connect(); !r.ok()) {
      result = r.error();
      return;
    }
    if (!w.options.http_url.empty()) {
      net::HttpClientOptions ho;
      ho.base_url = w.options.http_url;
      ho.timeout = std::chrono::seconds(5);
      ho.max_connections = 2;
      auto http = net::HttpClient::create(w.loop->io_context(), w.loop->scheduler(), ho);
      if (!http.ok()) {
        result = http.error();
        return;
      }
      w.http = std::move(http.value());
    }
    w.last_tick = w.loop->scheduler().now();
    w.schedule_tick();
  });
  if (!result.ok()) {
    impl_->loop->stop();
    impl_->loop->join();
    impl_->loop.reset();
  }
  return result;
}

void Worker::stop() {
  if (!impl_->loop) return;
  impl_->loop->run_sync([this] {
    impl_->stopping = true;
    impl_->tick_timer.cancel();
  });
  // Let the last broadcasts reach the server (bounded by the HTTP timeout).
  for (int i = 0; i < 60; ++i) {
    bool idle = false;
    impl_->loop->run_sync([&] { idle = impl_->in_flight == 0; });
    if (idle) break;
    std::unique_lock lock(impl_->mu);
    impl_->drained.wait_for(lock, std::chrono::milliseconds(100));
  }
  impl_->loop->run_sync([this] {
    impl_->http.reset();
    impl_->db.close();
  });
  impl_->loop->stop();
  impl_->loop->join();
  impl_->loop.reset();
}

void Worker::set_paused(bool paused) {
  if (!impl_->loop) return;
  impl_->loop->post([this, paused] { impl_->paused = paused; });
}

WorkerStats Worker::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

std::vector<WorkerChange> Worker::changes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->changes;
}

namespace {
// 2 rather than 2E0 for whole rates.
json::value rate_value(double rate) {
  const auto whole = static_cast<std::int64_t>(rate);
  return static_cast<double>(whole) == rate ? json::value(whole) : json::value(rate);
}
}  // namespace

json::value Worker::diagnostics() const {
  const WorkerStats s = stats();
  return json::object{{"created", s.created},
                      {"updated", s.updated},
                      {"completed", s.completed},
                      {"failed", s.failed},
                      {"cancelled", s.cancelled},
                      {"generations", s.generations},
                      {"active", s.active},
                      {"broadcastsSent", s.broadcasts_sent},
                      {"broadcastsFailed", s.broadcasts_failed},
                      {"dbErrors", s.db_errors},
                      {"rate", rate_value(impl_->options.rate)}};
}

}  // namespace rtsync::app
