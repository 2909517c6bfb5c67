#include "bench_command.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "demo_env.hpp"
#include "pane_session.hpp"
#include "rtsync/client/domain/fetchers.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "stop_signal.hpp"
#include "task_client.hpp"

namespace rtsync::app {

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double p50 = 0, p99 = 0, max = 0;
  std::size_t n = 0;
};

// Nearest-rank percentiles of the samples.
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

// Per-seq times of one rate's run, written by the writer (this thread) and the client's loop.
struct Timeline {
  std::mutex mu;
  std::vector<Clock::time_point> commit, event, fresh;
  std::int64_t base = 0;      // this run's seqs are base+1 … base+n
  std::int64_t seen_max = 0;  // largest `attempts` the tasks page has shown
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

struct RateResult {
  int rate = 0;
  std::size_t commits = 0;
  Stats event, fresh;
  std::uint64_t fetches = 0;
  std::size_t missing_event = 0, missing_fresh = 0;
};

void print_header(const BenchArgs& args, const Stats& fetch) {
  if (args.json) {
    std::printf("{\"type\":\"fetch\",\"rows\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n", args.tasks,
                fetch.p50, fetch.p99);
  } else {
    std::printf("tasks page fetch alone (%d rows, sequential): p50 %.2f ms, p99 %.2f ms\n",
                args.tasks, fetch.p50, fetch.p99);
    std::printf("coalescing window %d ms\n\n", args.coalesce_ms);
    std::printf(
        "| changes/s | commits | commit → event p50 / p99 / max (ms) | commit → fresh cache p50 / "
        "p99 / max (ms) | fetches (4 pane queries) | missing event / fresh |\n"
        "| --- | --- | --- | --- | --- | --- |\n");
  }
  std::fflush(stdout);
}

void print_row(const BenchArgs& args, const RateResult& r) {
  if (args.json) {
    std::printf(
        "{\"type\":\"rate\",\"changes_per_s\":%d,\"commits\":%zu,\"coalesce_ms\":%d,"
        "\"event_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
        "\"fresh_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
        "\"fetches\":%llu,\"missing_event\":%zu,\"missing_fresh\":%zu}\n",
        r.rate, r.commits, args.coalesce_ms, r.event.p50, r.event.p99, r.event.max, r.fresh.p50,
        r.fresh.p99, r.fresh.max, static_cast<unsigned long long>(r.fetches), r.missing_event,
        r.missing_fresh);
  } else {
    std::printf("| %d | %zu | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %llu | %zu / %zu |\n",
                r.rate, r.commits, r.event.p50, r.event.p99, r.event.max, r.fresh.p50, r.fresh.p99,
                r.fresh.max, static_cast<unsigned long long>(r.fetches), r.missing_event,
                r.missing_fresh);
  }
  std::fflush(stdout);
}

}  // namespace

void add_bench_options(CLI::App& sub, BenchArgs& args) {
  sub.add_option("--rates", args.rates, "commits per second, one run each (e.g. 10,200)")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000));
  sub.add_option("--seconds", args.seconds, "length of each run")->check(CLI::Range(0.1, 3600.0));
  sub.add_option("--tasks", args.tasks, "tasks on the watched page")->check(CLI::Range(1, 1000));
  sub.add_option("--coalesce-ms", args.coalesce_ms, "the cache's burst-coalescing window")
      ->check(CLI::Range(0, 60000));
  sub.add_flag("--json", args.json, "one JSON object per line instead of a table");
}

int run_bench_command(const BenchArgs& args) {
  StopSignal stop;
  SignalWatcher signals(stop);  // first: threads started below inherit the blocked signals
  // Warnings would interleave with the table; --log-level or RTSYNC_LOG_LEVEL still choose.
  if (!std::getenv("RTSYNC_LOG_LEVEL") && log::level() == spdlog::level::warn) {
    log::set_level(spdlog::level::err);
  }

  std::cerr << "rtsync bench: setting up PostgreSQL, schema, server and the demo user…\n";
  DemoEnvironmentOptions eo;
  eo.projects = 1;
  eo.shots_per_project = 1;
  auto env = DemoEnvironment::create(eo);
  if (!env.ok()) {
    std::cerr << "rtsync bench: " << env.error().message << "\n";
    return 1;
  }
  auto& world = *env.value();
  const std::string project = world.projects().front().id;
  auto db = server::pg::Connection::open(world.conninfo());
  if (!db.ok()) {
    std::cerr << "rtsync bench: " << db.error().message << "\n";
    return 1;
  }
  if (auto r = db.value().exec("SET ROLE service_role"); !r.ok()) {
    std::cerr << "rtsync bench: " << r.error().message << "\n";
    return 1;
  }
  std::vector<std::string> task_ids;
  for (int i = 0; i < args.tasks; ++i) {
    auto r = db.value().exec(
        "INSERT INTO public.tasks (task_type, params, project_id, status) VALUES "
        "('image_generation', '{}'::jsonb, $1, 'In Progress') RETURNING id",
        {project});
    if (!r.ok()) {
      std::cerr << "rtsync bench: " << r.error().message << "\n";
      return 1;
    }
    task_ids.emplace_back(r->value(0, 0));
  }

  core::EventLoop loop;
  loop.start();
  TaskClientOptions co;
  co.url = world.http_url();
  co.rest_url = world.http_url();
  co.anon_key = world.anon_key();
  co.email = world.user().email;
  co.password = world.user().password;
  co.coalesce_window = std::chrono::milliseconds(args.coalesce_ms);
  auto stack = TaskClient::start(loop, co);
  if (!stack.ok()) {
    std::cerr << "rtsync bench: " << stack.error().message << "\n";
    loop.stop();
    loop.join();
    return 1;
  }
  auto& client = *stack.value();

  Timeline tl;
  std::unique_ptr<PaneSession> pane;
  std::vector<core::Subscription> subs;
  loop.run_sync([&] {
    PaneSessionOptions po;
    po.page_size = args.tasks;
    pane = std::make_unique<PaneSession>(client, po);
    subs.push_back(
        client.bus().subscribe(client::domain::kTaskUpdateEvent, [&](const json::value& detail) {
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
  auto shut_down = [&] {
    loop.run_sync([&] {
      subs.clear();
      pane.reset();
    });
    stack.value().reset();
    loop.stop();
    loop.join();
  };

  // Connected and the first page loaded (20 s at most).
  bool ready = false;
  for (int i = 0; i < 400 && !ready && !stop.requested(); ++i) {
    loop.run_sync([&] {
      ready =
          client.provider().state().is_connected && pane->tasks()->observer().result().is_success();
    });
    if (!ready) stop.wait_for(std::chrono::milliseconds(50));
  }
  if (!ready) {
    std::cerr << "rtsync bench: the client never connected and loaded its page\n";
    shut_down();
    return 1;
  }

  // The floor of `fresh`: the tasks page query function alone, sequentially, as the cache runs it.
  std::vector<double> fetch_ms;
  for (int i = 0; i < 50 && !stop.requested(); ++i) {
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
  print_header(args, stats(fetch_ms));

  bool all_arrived = true;
  std::int64_t seq = 0;
  for (int rate : args.rates) {
    if (stop.requested()) break;
    const auto n = static_cast<std::size_t>(rate * args.seconds);
    tl.reset(seq, n);
    std::uint64_t fetches_before = 0;
    loop.run_sync([&] { fetches_before = client.cache().stats().fetches; });
    const auto start = Clock::now();
    const auto period =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    std::size_t sent = 0;
    for (; sent < n && !stop.requested(); ++sent) {
      std::this_thread::sleep_until(start + period * static_cast<long>(sent));
      ++seq;
      {
        std::lock_guard lock(tl.mu);
        tl.commit[sent] = Clock::now();
      }
      auto r = db.value().exec(
          "UPDATE public.tasks SET attempts = $2::int, updated_at = clock_timestamp() WHERE id = "
          "$1",
          {task_ids[sent % task_ids.size()], std::to_string(seq)});
      if (!r.ok()) std::cerr << "rtsync bench: update failed: " << r.error().message << "\n";
    }
    // Let the last events and refetches land (5 s at most).
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard lock(tl.mu);
        if (tl.seen_max >= seq) break;
      }
      if (stop.wait_for(std::chrono::milliseconds(50))) break;
    }
    RateResult rr;
    rr.rate = rate;
    rr.commits = sent;
    std::uint64_t fetches_after = 0;
    loop.run_sync([&] { fetches_after = client.cache().stats().fetches; });
    rr.fetches = fetches_after - fetches_before;
    std::vector<double> ev, fr;
    {
      std::lock_guard lock(tl.mu);
      for (std::size_t i = 0; i < sent; ++i) {
        if (tl.event[i] != Clock::time_point{}) {
          ev.push_back(ms(tl.event[i] - tl.commit[i]));
        } else {
          ++rr.missing_event;
        }
        if (tl.fresh[i] != Clock::time_point{}) {
          fr.push_back(ms(tl.fresh[i] - tl.commit[i]));
        } else {
          ++rr.missing_fresh;
        }
      }
    }
    rr.event = stats(std::move(ev));
    rr.fresh = stats(std::move(fr));
    if (rr.missing_event || rr.missing_fresh) all_arrived = false;
    print_row(args, rr);
  }

  shut_down();
  if (stop.requested()) std::cerr << "rtsync bench: stopped (" << stop.reason() << ")\n";
  return all_arrived ? 0 : 1;
}

}  // namespace rtsync::app
