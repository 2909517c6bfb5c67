// bench_sync: a realtime burst through the whole client coordination stack on the real event loop.
//
// Stack (one EventLoop thread, as an application runs it): in-memory transport → RealtimeSocket /
// RealtimeChannel (decoding, routing, change conversion) → RealtimeManager (EventBus,
// FreshnessTracker) → RealtimeProvider → QueryClient, with `--queries` active SmartPolling
// observers spread over the six task families. A driver on the loop delivers postgres_changes
// frames (INSERT / UPDATE of a tasks row) at `--rate` events/s for `--seconds`, then waits one
// second for trailing refetches. Query functions answer after `--latency-ms` (a timer on the loop,
// standing in for the network); a newer fetch of the same query replaces the older one's answer.
//
// Modes, measured in the same run:
//   coalesced     rtsync: each event invalidates the six families through the cache's burst
//                 coalescing (leading refetch, then one trailing refetch per window);
//   naive         the seed: six plain invalidateQueries per event (cancelRefetch, no coalescing);
//   transport     only the socket and a channel with the same three bindings, callbacks empty
//                 (frame decoding, routing and change conversion: the transport's share);
//   coordination  the full stack with the provider's invalidation map emptied (manager, freshness,
//                 event bus, provider state, smart polling: everything but the cache calls);
//   batched       coalesced plus the provider's opt-in batch window (100 ms): one six-family
//                 invalidation per window instead of six cache calls per event.
//
// Reported per mode: events delivered, wall time of the burst, loop-thread CPU per event (all the
// loop's work from the first event to the end of the grace second: dispatch, invalidation,
// refetches and their completions, observer notifications), dispatch CPU per event (only inside
// the frame delivery calls), refetches issued (query-function calls) and the most refetches any
// one query started in a window-long interval.
//   bench_sync [--seconds 10] [--rate 10000] [--queries 60] [--latency-ms 20] [--modes
//   coalesced,naive]
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fake_realtime_peer.hpp"
#include "rtsync/client/domain/task_binding.hpp"
#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/sync/auth_session.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/realtime_manager.hpp"
#include "rtsync/client/sync/realtime_provider.hpp"
#include "rtsync/client/sync/smart_polling.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/protocol/message.hpp"
#include "rtsync/testkit/fake_transport.hpp"

using namespace rtsync;
using namespace rtsync::client;
using namespace rtsync::client::sync;
using rtsync::testkit::FakeTransport;
using std::chrono::milliseconds;

namespace {

// The replay loop's tick (bench-local: the bench names its own timer).
constexpr core::TimerId kBenchTick{"BenchTick"};

struct Config {
  double seconds = 10;
  int rate = 10000;
  int queries = 60;
  int latency_ms = 20;
  std::vector<std::string> modes{"transport", "coordination", "coalesced", "batched", "naive"};
};

struct RunResult {
  std::string mode;
  std::uint64_t events = 0;
  double burst_wall_s = 0;
  double loop_cpu_s = 0;
  double dispatch_cpu_s = 0;
  std::uint64_t refetches = 0;
  std::size_t max_in_window = 0;
  double window_ms = 0;
  std::uint64_t invalidation_calls = 0;
  std::uint64_t bus_events = 0;
};

double thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Query keys over the six families (the seed's concrete key shapes).
std::vector<query::QueryKey> make_keys(int n) {
  std::vector<query::QueryKey> keys;
  for (int i = 0; keys.size() < static_cast<std::size_t>(n); ++i) {
    switch (i % 6) {
      case 0:
        keys.push_back(query::QueryKey{"tasks", "paginated", "p1", i / 6 + 1, 50, "Queued"});
        break;
      case 1:
        keys.push_back(query::QueryKey{"task-status-counts", "p1", i});
        break;
      case 2:
        keys.push_back(
            query::QueryKey{"unified-generations", "project", "p1", i / 6 + 1, 20, json::object{}});
        break;
      case 3:
        keys.push_back(query::QueryKey{"shots", "p1", i});
        break;
      case 4:
        keys.push_back(query::QueryKey{"unpositioned-count", "shot-" + std::to_string(i)});
        break;
      default:
        keys.push_back(query::QueryKey{"project-video-counts", "p1", i});
        break;
    }
  }
  return keys;
}

// vsn 2 postgres_changes frames for the channel's bindings (ids from the join ack).
std::vector<std::string> make_frames(const testing::FakeRealtimePeer::JoinRecord& join) {
  std::vector<std::string> frames;
  json::array columns;
  for (auto [n, t] :
       std::vector<std::pair<const char*, const char*>>{{"id", "uuid"},
                                                        {"task_type", "text"},
                                                        {"params", "jsonb"},
                                                        {"status", "task_status"},
                                                        {"project_id", "uuid"},
                                                        {"attempts", "int4"},
                                                        {"created_at", "timestamptz"},
                                                        {"updated_at", "timestamptz"},
                                                        {"generation_created", "bool"}}) {
    columns.push_back(json::object{{"name", n}, {"type", t}});
  }
  for (int i = 0; i < 256; ++i) {
    const bool insert = i % 4 == 0;
    const std::string type = insert ? "INSERT" : "UPDATE";
    json::array ids;
    for (const auto& a : join.acks) {
      if (a.spec.event == type) ids.push_back(a.id);
    }
    char id[64];
    std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
    json::object record{{"id", id},
                        {"task_type", "image_generation"},
                        {"params", R"({"prompt":"a cat","steps":30})"},
                        {"status", insert ? "Queued" : "In Progress"},
                        {"project_id", "p1"},
                        {"attempts", "1"},
                        {"created_at", "2026-01-01T00:00:00+00:00"},
                        {"updated_at", "2026-01-01T00:00:01+00:00"},
                        {"generation_created", "f"}};
    json::object data{{"schema", "public"},
                      {"table", "tasks"},
                      {"commit_timestamp", "2026-01-01T00:00:01.000Z"},
                      {"type", type},
                      {"columns", columns},
                      {"record", record},
                      {"errors", nullptr}};
    if (!insert) data["old_record"] = json::object{{"id", id}};
    protocol::Message m;
    m.topic = join.topic;
    m.event = "postgres_changes";
    m.payload = json::object{{"ids", ids}, {"data", data}};
    frames.push_back(protocol::encode_v2(m));
  }
  return frames;
}

// Everything that lives on the loop for one run.
struct Stack {
  core::EventLoop& loop;
  const Config& cfg;
  bool naive;
  FakeTransport* fake = nullptr;
  std::unique_ptr<RealtimeSocket> socket;
  std::unique_ptr<testing::FakeRealtimePeer> peer;
  core::EventBus bus;
  std::unique_ptr<AuthSession> auth;
  std::unique_ptr<FreshnessTracker> tracker;
  std::unique_ptr<RealtimeManager> manager;
  std::unique_ptr<query::QueryClient> cache;
  std::unique_ptr<SmartPolling> polling;
  ProjectSelection project;
  std::unique_ptr<RealtimeProvider> provider;
  std::vector<std::unique_ptr<SmartQuery>> queries;
  std::vector<core::Subscription> query_subs;
  std::map<std::string, std::vector<core::TimePoint>> starts;
  std::map<std::string, core::Timer> answers;
  std::uint64_t fetch_calls = 0;
  bool counting = false;
  std::vector<std::string> frames;
  core::Subscription bus_count;
  std::uint64_t bus_events = 0;

  std::string mode;
  std::shared_ptr<RealtimeChannel> bare_channel;
  std::vector<core::Subscription> bare_subs;

  Stack(core::EventLoop& l, const Config& c, std::string m)
      : loop(l), cfg(c), naive(m == "naive"), mode(std::move(m)) {}

  // The transport alone: one channel with the manager's three bindings and empty callbacks.
  void build_transport_only() {
    const std::string filter = "project_id=eq.p1";
    bare_channel = socket->channel("task-updates:p1");
    bare_subs.push_back(bare_channel->on_broadcast("task-update", [](const json::value&) {}));
    bare_subs.push_back(bare_channel->on_postgres_changes({"INSERT", "public", "tasks", filter},
                                                          [](const protocol::ChangeView&) {}));
    bare_subs.push_back(bare_channel->on_postgres_changes({"UPDATE", "public", "tasks", filter},
                                                          [](const protocol::ChangeView&) {}));
    (void)bare_channel->subscribe();
    peer->accept();
    frames = make_frames(*peer->join_of("realtime:task-updates:p1"));
  }

  void build() {
    auto& sched = loop.scheduler();
    SocketOptions so;
    so.url = "http://127.0.0.1:54321";
    so.api_key = "anon";
    so.jitter_seed = 1;
    auto t = std::make_unique<FakeTransport>();
    fake = t.get();
    socket = std::make_unique<RealtimeSocket>(sched, std::move(t), so);
    peer = std::make_unique<testing::FakeRealtimePeer>(*fake);
    if (mode == "transport") {
      build_transport_only();
      return;
    }
    auth = std::make_unique<AuthSession>(sched);
    tracker = std::make_unique<FreshnessTracker>(sched);
    RealtimeManagerOptions mo;
    mo.binding = domain::task_binding();
    if (mode == "coordination") {
      for (auto& [event, families] : mo.binding.invalidations)
        families.clear();
      mo.binding.gap_fill_families.clear();
    }
    manager =
        std::make_unique<RealtimeManager>(sched, *socket, *auth, *tracker, bus, std::move(mo));
    cache = std::make_unique<query::QueryClient>(sched);
    polling = std::make_unique<SmartPolling>(*tracker);
    RealtimeProviderOptions po;
    if (naive) po.invalidate = query::InvalidateOptions{};  // six plain invalidations per event
    if (mode == "batched") po.batch_window = milliseconds(100);
    provider = std::make_unique<RealtimeProvider>(*manager, *cache, bus, *tracker, project, po);
    bus_count =
        bus.subscribe(domain::kTaskUpdateEvent, [this](const json::value&) { ++bus_events; });

    const auto latency = milliseconds(cfg.latency_ms);
    for (const auto& key : make_keys(cfg.queries)) {
      query::ObserverOptions o;
      o.key = key;
      o.refetch_interval_in_background = true;
      o.query.query_fn = [this, latency, &sched](const query::QueryKey& k, query::CancellationToken,
                                                 query::Completion done) {
        if (counting) {
          ++fetch_calls;
          starts[k.hash()].push_back(sched.now());
        }
        // The newest fetch's answer replaces an older pending one (which was cancelled anyway).
        answers[k.hash()] = sched.schedule(latency, core::TimerId::Test, [done] {
          done.resolve(json::object{{"rows", json::array{1, 2, 3}}});
        });
      };
      queries.push_back(polling->observe(*cache, std::move(o)));
      query_subs.push_back(queries.back()->observer().subscribe([](const query::QueryResult&) {}));
    }

    Session s;
    s.access_token = "jwt";
    s.user_id = "user-1";
    auth->sign_in(s);
    project.set("p1");
    peer->accept();
    if (!manager->subscribed()) {
      std::fprintf(stderr, "bench: the channel did not subscribe\n");
      std::exit(1);
    }
    frames = make_frames(*peer->join_of("realtime:task-updates:p1"));
  }
};

RunResult run(const Config& cfg, const std::string& mode) {
  core::EventLoop loop;
  loop.start();
  auto stack = std::make_unique<Stack>(loop, cfg, mode);
  loop.run_sync([&] { stack->build(); });
  std::this_thread::sleep_for(milliseconds(300));  // initial fetches settle

  RunResult r;
  r.mode = mode;
  const auto total = static_cast<std::uint64_t>(cfg.seconds * cfg.rate);
  std::promise<void> finished;
  struct Driver {
    Stack* s = nullptr;
    std::uint64_t total = 0;
    int rate = 0;
    std::uint64_t delivered = 0;
    core::TimePoint start;
    double cpu_start = 0;
    double dispatch = 0;
    core::TimePoint burst_end;
    core::Timer timer;
    std::function<void()> tick;
  };
  Driver d;
  d.s = stack.get();
  d.total = total;
  d.rate = cfg.rate;
  loop.run_sync([&] {
    auto& sched = loop.scheduler();
    stack->counting = true;
    stack->bus_events = 0;
    d.start = sched.now();
    d.cpu_start = thread_cpu();
    d.tick = [&] {
      const double elapsed = std::chrono::duration<double>(sched.now() - d.start).count();
      const auto due =
          std::min<std::uint64_t>(d.total, static_cast<std::uint64_t>(elapsed * d.rate) + 1);
      if (d.delivered < due) {
        const double c0 = thread_cpu();
        for (; d.delivered < due; ++d.delivered) {
          stack->fake->receive_text(stack->frames[d.delivered % stack->frames.size()]);
        }
        d.dispatch += thread_cpu() - c0;
      }
      if (d.delivered < d.total) {
        d.timer = sched.schedule(milliseconds(1), kBenchTick, d.tick);
        return;
      }
      d.burst_end = sched.now();
      // One more second for trailing refetches and answers, then stop counting.
      d.timer = sched.schedule(std::chrono::seconds(1), kBenchTick, [&] {
        r.loop_cpu_s = thread_cpu() - d.cpu_start;
        stack->counting = false;
        finished.set_value();
      });
    };
    d.tick();
  });
  finished.get_future().wait();

  loop.run_sync([&] {
    r.events = d.delivered;
    r.burst_wall_s = std::chrono::duration<double>(d.burst_end - d.start).count();
    r.dispatch_cpu_s = d.dispatch;
    r.refetches = stack->fetch_calls;
    r.invalidation_calls = stack->provider ? stack->provider->stats().invalidation_calls : 0;
    r.bus_events = stack->bus_events;
    const auto window = stack->cache ? stack->cache->config().coalesce_window : milliseconds(100);
    r.window_ms = std::chrono::duration<double, std::milli>(window).count();
    for (const auto& [key, v] : stack->starts) {
      for (std::size_t i = 0, j = 0; i < v.size(); ++i) {
        while (v[i] - v[j] >= window)
          ++j;
        r.max_in_window = std::max(r.max_in_window, i - j + 1);
      }
    }
    d.timer.cancel();
    stack.reset();
  });
  loop.stop();
  loop.join();
  return r;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const auto comma = s.find(',', pos);
    out.push_back(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const std::string v = argv[i + 1];
    if (a == "--seconds")
      cfg.seconds = std::stod(v);
    else if (a == "--rate")
      cfg.rate = std::stoi(v);
    else if (a == "--queries")
      cfg.queries = std::stoi(v);
    else if (a == "--latency-ms")
      cfg.latency_ms = std::stoi(v);
    else if (a == "--modes")
      cfg.modes = split(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::printf(
      "Burst: %d task events/s for %.0f s over %d active queries (six families), "
      "fetch latency %d ms, one loop thread.\n\n",
      cfg.rate, cfg.seconds, cfg.queries, cfg.latency_ms);
  std::printf(
      "| mode | events | burst wall | loop CPU / event | dispatch CPU / event | refetches "
      "| refetches / event | max per query per %s window |\n",
      "coalescing");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& mode : cfg.modes) {
    const RunResult r = run(cfg, mode);
    std::printf("| %s | %llu | %.2f s | %.2f µs | %.2f µs | %llu | %.3f | %zu (%.0f ms) |\n",
                r.mode.c_str(), static_cast<unsigned long long>(r.events), r.burst_wall_s,
                r.loop_cpu_s / static_cast<double>(r.events) * 1e6,
                r.dispatch_cpu_s / static_cast<double>(r.events) * 1e6,
                static_cast<unsigned long long>(r.refetches),
                static_cast<double>(r.refetches) / static_cast<double>(r.events), r.max_in_window,
                r.window_ms);
    std::fflush(stdout);
    std::fprintf(stderr,
                 "{\"mode\":\"%s\",\"events\":%llu,\"burst_wall_s\":%.3f,\"loop_cpu_s\":%.4f,"
                 "\"dispatch_cpu_s\":%.4f,\"refetches\":%llu,\"max_in_window\":%zu,"
                 "\"invalidation_calls\":%llu,\"bus_task_update_events\":%llu}\n",
                 r.mode.c_str(), static_cast<unsigned long long>(r.events), r.burst_wall_s,
                 r.loop_cpu_s, r.dispatch_cpu_s, static_cast<unsigned long long>(r.refetches),
                 r.max_in_window, static_cast<unsigned long long>(r.invalidation_calls),
                 static_cast<unsigned long long>(r.bus_events));
  }
  return 0;
}
