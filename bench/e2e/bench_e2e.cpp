// Commit → fresh data in the client's cache, end to end, beside commit → event.
//
// One process: the demo's environment (throwaway PostgreSQL, schema, `rtsync server`, the demo
// user and a project with `--tasks` tasks), the client stack signed in as that user with the task
// pane's observers (tasks page holding every task, status counts, generation and video counts),
// and a writer thread that commits `UPDATE tasks SET attempts = <seq>` round-robin over the tasks
// at each rate. For every commit (seq):
//   event  — the postgres_changes UPDATE carrying attempts = seq reached the client's EventBus;
//   fresh  — the tasks page observer delivered data whose largest `attempts` is ≥ seq (the event
//            was received, the six families invalidated, and the refetch finished).
// Both are measured from just before the UPDATE is sent (autocommit: commit included).
//
//   bench_e2e [--rates 10,200] [--seconds 10] [--tasks 50] [--coalesce-ms N]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client_stack.hpp"
#include "demo_env.hpp"
#include "pane_session.hpp"
#include "rtsync/client/domain/fetchers.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/server/pg/connection.hpp"

using namespace rtsync;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::vector<int> rates{10, 200};
  int seconds = 10;
  int tasks = 50;
  int coalesce_ms = -1;  // -1: the library default
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--rates") {
      a.rates.clear();
      std::stringstream ss(value);
      std::string item;
      while (std::getline(ss, item, ','))
        a.rates.push_back(std::stoi(item));
    } else if (flag == "--seconds") {
      a.seconds = std::stoi(value);
    } else if (flag == "--tasks") {
      a.tasks = std::stoi(value);
    } else if (flag == "--coalesce-ms") {
      a.coalesce_ms = std::stoi(value);
    }
  }
  return a;
}

struct Stats {
  double p50 = 0, p99 = 0, max = 0;
  std::size_t n = 0;
};

Stats stats(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
  };
  s.p50 = at(0.50);
  s.p99 = at(0.99);
  s.max = v.back();
  return s;
}

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Per-seq times, written by the writer thread and the loop thread.
struct Timeline {
  std::mutex mu;
  std::vector<Clock::time_point> commit, event, fresh;
  std::int64_t base = 0;      // seqs of this run start after it
  std::int64_t seen_max = 0;  // largest attempts seen in the cache
  void reset(std::int64_t first, std::size_t n) {
    std::lock_guard lock(mu);
    base = first;
    commit.assign(n, {});
    event.assign(n, {});
    fresh.assign(n, {});
  }
  bool in_run(std::int64_t seq) const {
    return seq > base && seq <= base + static_cast<std::int64_t>(commit.size());
  }
};

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  log::set_level(spdlog::level::err);

  std::cerr << "setting up: PostgreSQL, schema, server, demo user…\n";
  app::DemoEnvironmentOptions eo;
  eo.projects = 1;
  eo.shots_per_project = 1;
  auto env = app::DemoEnvironment::create(eo);
  if (!env.ok()) {
    std::cerr << "bench_e2e: " << env.error().message << "\n";
    return 1;
  }
  auto& world = *env.value();
  const std::string project = world.projects().front().id;
  auto db = server::pg::Connection::open(world.conninfo());
  if (!db.ok()) return 1;
  (void)db.value().exec("SET ROLE service_role");
  std::vector<std::string> task_ids;
  for (int i = 0; i < args.tasks; ++i) {
    auto r = db.value().exec(
        "INSERT INTO public.tasks (task_type, params, project_id, status) VALUES "
        "('image_generation', '{}'::jsonb, $1, 'In Progress') RETURNING id",
        {project});
    if (!r.ok()) return 1;
    task_ids.emplace_back(r->value(0, 0));
  }

  core::EventLoop loop;
  loop.start();
  app::ClientOptions co;
  co.url = world.http_url();
  co.rest_url = world.http_url();
  co.anon_key = world.anon_key();
  co.email = world.user().email;
  co.password = world.user().password;
  if (args.coalesce_ms >= 0) co.coalesce_window = std::chrono::milliseconds(args.coalesce_ms);
  auto stack = app::ClientStack::start(loop, co);
  if (!stack.ok()) {
    std::cerr << "bench_e2e: " << stack.error().message << "\n";
    return 1;
  }
  auto& client = *stack.value();

  Timeline tl;
  std::unique_ptr<app::PaneSession> pane;
  std::vector<core::Subscription> subs;
  loop.run_sync([&] {
    app::PaneSessionOptions po;
    po.page_size = args.tasks;
    pane = std::make_unique<app::PaneSession>(client, po);
    subs.push_back(
        client.bus().subscribe(client::sync::kTaskUpdateEvent, [&](const json::value& detail) {
          const auto* rec = detail.is_object() ? detail.as_object().if_contains("new") : nullptr;
          if (!rec) return;
          const auto seq = core::find_int(*rec, "attempts");
          if (!seq) return;
          const auto now = Clock::now();
          std::lock_guard lock(tl.mu);
          if (!tl.in_run(*seq)) return;
          auto& t = tl.event[static_cast<std::size_t>(*seq - tl.base - 1)];
          if (t == Clock::time_point{}) t = now;
        }));
    subs.push_back(pane->tasks()->observer().subscribe([&](const client::query::QueryResult& r) {
      if (!r.data || r.is_placeholder_data) return;
      const auto* tasks = r.data->find("tasks");
      if (!tasks || !tasks->is_array()) return;
      std::int64_t top = 0;
      for (const auto& row : *tasks->if_array())
        if (const auto* a = row.find("attempts"); a && a->is_number())
          top = std::max(top, a->as_int64());
      const auto now = Clock::now();
      std::lock_guard lock(tl.mu);
      for (std::int64_t s = std::max(tl.seen_max, tl.base) + 1; s <= top; ++s)
        if (tl.in_run(s)) tl.fresh[static_cast<std::size_t>(s - tl.base - 1)] = now;
      tl.seen_max = std::max(tl.seen_max, top);
    }));
  });
  // Connected and the first page loaded.
  for (int i = 0; i < 200; ++i) {
    bool ready = false;
    loop.run_sync([&] {
      ready =
          client.provider().state().is_connected && pane->tasks()->observer().result().is_success();
    });
    if (ready) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // The refetch alone: the tasks page query function, sequentially, as the cache would run it.
  {
    std::vector<double> fetch_ms;
    for (int i = 0; i < 50; ++i) {
      std::promise<void> done;
      Clock::time_point t0;
      loop.run_sync([&] {
        client::domain::Fetchers fetchers(client.rest());
        auto def = fetchers.paginated_tasks(project, 1, args.tasks);
        client::query::FetchQueryOptions fo;
        fo.key = client::query::QueryKey(json::array{"bench-probe", i});
        fo.query.query_fn = def.fn;
        t0 = Clock::now();
        client.cache().fetch_query(std::move(fo), [&](const Result<client::query::Data>&) {
          fetch_ms.push_back(ms(Clock::now() - t0));
          done.set_value();
        });
      });
      done.get_future().wait();
    }
    const Stats f = stats(fetch_ms);
    std::printf("tasks page fetch alone (%d rows, sequential): p50 %.2f ms, p99 %.2f ms\n\n",
                args.tasks, f.p50, f.p99);
  }

  std::printf(
      "| changes/s | commits | commit → event p50 / p99 / max (ms) | commit → fresh cache p50 / "
      "p99 / max (ms) | fetches (the 4 pane queries) | missing |\n");
  std::printf("| --- | --- | --- | --- | --- | --- |\n");
  std::int64_t seq = 0;
  for (int rate : args.rates) {
    const std::size_t n = static_cast<std::size_t>(rate) * static_cast<std::size_t>(args.seconds);
    tl.reset(seq, n);
    std::uint64_t fetches_before = 0;
    loop.run_sync([&] { fetches_before = client.cache().stats().fetches; });
    const auto start = Clock::now();
    const auto period =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    for (std::size_t i = 0; i < n; ++i) {
      std::this_thread::sleep_until(start + period * static_cast<long>(i));
      ++seq;
      const auto t0 = Clock::now();
      {
        std::lock_guard lock(tl.mu);
        tl.commit[i] = t0;
      }
      auto r = db.value().exec(
          "UPDATE public.tasks SET attempts = $2::int, updated_at = clock_timestamp() WHERE id = "
          "$1",
          {task_ids[i % task_ids.size()], std::to_string(seq)});
      if (!r.ok()) std::cerr << "update failed: " << r.error().message << "\n";
    }
    // Let the last refetches land.
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard lock(tl.mu);
        if (tl.seen_max >= seq) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::uint64_t fetches_after = 0;
    loop.run_sync([&] { fetches_after = client.cache().stats().fetches; });
    std::vector<double> ev, fr;
    std::size_t missing = 0;
    {
      std::lock_guard lock(tl.mu);
      for (std::size_t i = 0; i < n; ++i) {
        if (tl.event[i] != Clock::time_point{}) ev.push_back(ms(tl.event[i] - tl.commit[i]));
        if (tl.fresh[i] != Clock::time_point{}) {
          fr.push_back(ms(tl.fresh[i] - tl.commit[i]));
        } else {
          ++missing;
        }
      }
    }
    const Stats e = stats(ev), f = stats(fr);
    std::printf(
        "| %d | %zu | %.2f / %.2f / %.2f (%zu events) | %.2f / %.2f / %.2f | %llu | %zu |\n", rate,
        n, e.p50, e.p99, e.max, e.n, f.p50, f.p99, f.max,
        static_cast<unsigned long long>(fetches_after - fetches_before), missing);
    std::fflush(stdout);
  }

  loop.run_sync([&] {
    subs.clear();
    pane.reset();
  });
  stack.value().reset();
  loop.stop();
  loop.join();
  return 0;
}
