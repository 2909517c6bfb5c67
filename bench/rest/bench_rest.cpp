// REST GET of a 50-row task page (issue: "requests/s and p50/p99 under wrk with 16 connections,
// beside the same query run directly through libpq in the same run — the floor").
//
//   bench_rest [--seconds 10] [--connections 16] [--rows 5000] [--page 50] [--pool 16]
//              [--server-pool 4]
//
// One process: a throwaway PostgreSQL with the demo schema and `rows` tasks in one user's project;
// then, each for `seconds`:
//   1. the floor: the very statements the service runs for that request (claims + the built
//      SELECT, prepared, one pipelined round trip) from `connections` threads, each on its own
//      libpq connection;
//   2. `wrk -c<connections>` against GET /rest/v1/tasks?select=*&project_id=eq.…
//      &order=created_at.desc&limit=50 with the user's token, served by RestService on the small
//      test host (its own loop thread, a pool of `pool` connections);
//   3. the same against rtsync::server::Server — what `rtsync server` runs (realtime, /rest/v1
//      and /auth/v1 on one listener and loop thread).
// Prints markdown tables: requests/s and latency, and CPU time per request of PostgreSQL, the
// client side and the server (bench/rest/README.md).
#include <libpq-fe.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/migrate/migrations.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/server/pg/db_pool.hpp"
#include "rtsync/server/rest/rest_service.hpp"
#include "rtsync/server/rest/sql_builder.hpp"
#include "rtsync/server/server.hpp"
#include "rtsync/testkit/temp_cluster.hpp"
#include "service_host.hpp"

namespace {

using namespace rtsync;
using Clock = std::chrono::steady_clock;

const std::string kSecret = "rtsync-bench-secret-with-at-least-32-chars";
const std::string kUser = "aaaaaaaa-0000-4000-8000-00000000000a";
const std::string kProject = "a0000000-0000-4000-8000-0000000000a1";

struct Options {
  int seconds = 10;
  int connections = 16;
  int rows = 5000;
  int page = 50;
  int pool = 16;
  int server_pool = 4;  // ServerOptions::rest_connections (the default `rtsync server` uses)
};

struct Stats {
  double rps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  // CPU time per request (µs) over the phase: the database (every PostgreSQL process), the client
  // side (the floor's threads, or wrk), the server (this process during the wrk phase). On a
  // shared machine these say more than requests/s, which depends on the share of the cores the
  // phase got.
  double pg_us = 0;
  double client_us = 0;
  double server_us = 0;
};

double seconds_of(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

// CPU seconds (user + system) of this process, or of its reaped children (wrk).
double rusage_cpu(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
}

// CPU seconds of the PostgreSQL cluster: the postmaster, its live children, and the children it
// has reaped (backends of closed connections).
double postgres_cpu(const std::string& data_dir) {
  std::ifstream pidfile(data_dir + "/postmaster.pid");
  long postmaster = 0;
  if (!(pidfile >> postmaster)) return 0;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  double total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
    // After "pid (comm) ": state ppid … utime(12) stime(13) cutime(14) cstime(15), 0-based.
    if (f.size() < 16) continue;
    const long pid = std::stol(name);
    const long ppid = std::stol(f[1]);
    if (pid != postmaster && ppid != postmaster) continue;
    double ticks = std::stod(f[11]) + std::stod(f[12]);
    if (pid == postmaster) ticks += std::stod(f[13]) + std::stod(f[14]);
    total += ticks / tick;
  }
  return total;
}

[[noreturn]] void die(const std::string& what) {
  std::cerr << "bench_rest: " << what << "\n";
  std::exit(1);
}

std::string token() {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return server::auth::sign_hs256(
      json::object{
          {"role", "authenticated"}, {"aud", "authenticated"}, {"sub", kUser}, {"exp", now + 3600}},
      kSecret);
}

// The floor: the service's own batch, pipelined on dedicated connections.
Stats direct(const std::string& conninfo, const std::string& data_dir,
             const std::vector<server::pg::Statement>& batch, const Options& o) {
  std::atomic<bool> stop{false};
  std::atomic<bool> go{false};
  std::atomic<int> ready{0};
  std::vector<double> thread_cpu(o.connections, 0.0);
  std::vector<std::vector<double>> lat(o.connections);
  std::atomic<std::uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.connections; ++t) {
    threads.emplace_back([&, t] {
      PGconn* c = PQconnectdb(conninfo.c_str());
      if (PQstatus(c) != CONNECTION_OK || PQenterPipelineMode(c) != 1) {
        ++errors;
        PQfinish(c);
        return;
      }
      // Prepared once per connection, as the service keeps its statements prepared.
      std::vector<std::vector<const char*>> values;
      std::vector<std::string> names;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        std::vector<const char*> v;
        for (const auto& p : batch[i].params)
          v.push_back(p ? p->c_str() : nullptr);
        values.push_back(std::move(v));
        names.push_back("floor_" + std::to_string(i));
        PQsendPrepare(c, names.back().c_str(), batch[i].sql.c_str(),
                      static_cast<int>(values.back().size()), nullptr);
      }
      PQpipelineSync(c);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        while (PGresult* r = PQgetResult(c))
          PQclear(r);
      }
      PQclear(PQgetResult(c));  // PGRES_PIPELINE_SYNC
      ++ready;
      while (!go.load())
        std::this_thread::yield();
      rusage start_ru{};
      getrusage(RUSAGE_THREAD, &start_ru);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = Clock::now();
        for (std::size_t i = 0; i < batch.size(); ++i) {
          PQsendQueryPrepared(c, names[i].c_str(), static_cast<int>(values[i].size()),
                              values[i].data(), nullptr, nullptr, 0);
        }
        PQpipelineSync(c);
        bool ok = true;
        for (std::size_t i = 0; i < batch.size(); ++i) {
          while (PGresult* r = PQgetResult(c)) {
            if (PQresultStatus(r) != PGRES_TUPLES_OK) ok = false;
            PQclear(r);
          }
        }
        PGresult* sync = PQgetResult(c);  // PGRES_PIPELINE_SYNC
        PQclear(sync);
        if (!ok) ++errors;
        lat[t].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      rusage end_ru{};
      getrusage(RUSAGE_THREAD, &end_ru);
      thread_cpu[t] = seconds_of(end_ru.ru_utime) + seconds_of(end_ru.ru_stime) -
                      seconds_of(start_ru.ru_utime) - seconds_of(start_ru.ru_stime);
      PQfinish(c);
    });
  }
  // Connections open and statements prepared before the clock starts.
  while (ready.load() + static_cast<int>(errors.load()) < o.connections)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double pg_start = postgres_cpu(data_dir);
  const auto start = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
  stop = true;
  const double pg_cpu = postgres_cpu(data_dir) - pg_start;  // before the backends exit
  for (auto& th : threads)
    th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat)
    all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Stats s;
  s.requests = all.size();
  s.errors = errors;
  s.rps = static_cast<double>(all.size()) / elapsed;
  if (!all.empty()) {
    s.p50_ms = all[all.size() / 2];
    s.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    double client = 0;
    for (double c : thread_cpu)
      client += c;
    s.pg_us = pg_cpu * 1e6 / static_cast<double>(all.size());
    s.client_us = client * 1e6 / static_cast<double>(all.size());
  }
  return s;
}

double to_ms(const std::string& value, const std::string& unit) {
  const double v = std::stod(value);
  if (unit == "us") return v / 1000;
  if (unit == "s") return v * 1000;
  return v;
}

Stats run_wrk(const std::string& url, const std::string& tok, const std::string& data_dir,
              const Options& o, int seconds) {
  const double self0 = rusage_cpu(RUSAGE_SELF);
  const double wrk0 = rusage_cpu(RUSAGE_CHILDREN);
  const double pg0 = postgres_cpu(data_dir);
  const std::string cmd = "wrk -t2 -c" + std::to_string(o.connections) + " -d" +
                          std::to_string(seconds) + "s --latency -H 'Authorization: Bearer " + tok +
                          "' -H 'apikey: " + tok + "' '" + url + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) die("cannot run wrk (apt-get install wrk)");
  std::string out;
  std::array<char, 4096> buf{};
  while (auto n = fread(buf.data(), 1, buf.size(), p))
    out.append(buf.data(), n);
  const double pg_cpu = postgres_cpu(data_dir) - pg0;
  const double self_cpu = rusage_cpu(RUSAGE_SELF) - self0;
  if (pclose(p) != 0) die("wrk failed:\n" + out);
  if (std::getenv("RTSYNC_BENCH_WRK_OUTPUT")) std::cerr << cmd << "\n" << out << "\n";
  const double wrk_cpu = rusage_cpu(RUSAGE_CHILDREN) - wrk0;
  Stats s;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))")))
    s.rps = std::stod(m[1]);
  if (std::regex_search(out, m, std::regex(R"(\n\s+50%\s+([0-9.]+)(us|ms|s)\b)"))) {
    s.p50_ms = to_ms(m[1], m[2]);
  }
  if (std::regex_search(out, m, std::regex(R"(\n\s+99%\s+([0-9.]+)(us|ms|s)\b)"))) {
    s.p99_ms = to_ms(m[1], m[2]);
  }
  if (std::regex_search(out, m, std::regex(R"(([0-9]+) requests in)")))
    s.requests = std::stoull(m[1]);
  if (std::regex_search(out, m, std::regex(R"(Non-2xx or 3xx responses:\s+([0-9]+))"))) {
    s.errors = std::stoull(m[1]);
  }
  if (s.rps == 0) die("could not read wrk's output:\n" + out);
  if (s.requests > 0) {
    const double n = static_cast<double>(s.requests);
    s.pg_us = pg_cpu * 1e6 / n;
    s.client_us = wrk_cpu * 1e6 / n;
    s.server_us = self_cpu * 1e6 / n;
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (k == "--seconds")
      o.seconds = v;
    else if (k == "--connections")
      o.connections = v;
    else if (k == "--rows")
      o.rows = v;
    else if (k == "--page")
      o.page = v;
    else if (k == "--pool")
      o.pool = v;
    else if (k == "--server-pool")
      o.server_pool = v;
    else
      die("unknown option " + k);
  }

  testkit::TempClusterOptions po;
  po.extra_config = {"max_connections = 100", "shared_buffers = 128MB"};
  auto cluster = testkit::TempCluster::create(po);
  if (!cluster) die(cluster.error().describe());
  const std::string conninfo = cluster.value()->conninfo();
  if (auto m = server::migrate::run_migrations(conninfo); !m) die(m.error().describe());
  {
    auto db = server::pg::Connection::open(conninfo);
    if (!db) die(db.error().describe());
    auto seeded = db->exec_script(
        "INSERT INTO auth.users (id, email, encrypted_password) VALUES ('" + kUser +
        "', 'bench@example.com', 'x');"
        "INSERT INTO projects (id, name, user_id) VALUES ('" +
        kProject + "', 'bench', '" + kUser +
        "');"
        "INSERT INTO tasks (task_type, params, status, created_at, project_id, output_location) "
        "SELECT 'render', jsonb_build_object('frame', i, 'prompt', repeat('x', 40)), "
        "(ARRAY['Queued','In Progress','Complete','Failed','Cancelled'])[1 + i % 5]::task_status, "
        "now() - i * interval '1 second', '" +
        kProject +
        "', 'out/' || i "
        "FROM generate_series(1, " +
        std::to_string(o.rows) + ") i; ANALYZE");
    if (!seeded) die(seeded.error().describe());
  }

  core::EventLoop loop;
  loop.start();
  std::shared_ptr<server::pg::DbPool> pool;
  std::unique_ptr<server::rest::RestService> rest;
  std::unique_ptr<test::ServiceHost> host;
  std::string base;
  loop.run_sync([&] {
    pool = std::make_shared<server::pg::DbPool>(loop.io_context(), conninfo, o.pool);
    rest = std::make_unique<server::rest::RestService>(pool, server::auth::JwtVerifier(kSecret),
                                                       loop.scheduler());
    host = std::make_unique<test::ServiceHost>(loop.io_context(),
                                               std::vector<server::http::HttpService*>{rest.get()});
    auto port = host->listen(0);
    if (!port) die(port.error().describe());
    base = host->url();
  });

  const std::string query = "select=*&project_id=eq." + kProject +
                            "&order=created_at.desc&limit=" + std::to_string(o.page);
  const std::string url = base + "/rest/v1/tasks?" + query;
  const std::string tok = token();

  // The statements the service builds for this request, with the same claims.
  std::vector<server::pg::Statement> batch;
  {
    auto cat_conn = server::pg::Connection::open(conninfo);
    auto doc = cat_conn->exec(server::rest::Catalog::query_sql(), {std::string("public")});
    if (!doc) die(doc.error().describe());
    auto catalog = server::rest::Catalog::from_json("public", doc->value(0, 0));
    if (!catalog) die(catalog.error().describe());
    server::rest::ReadRequest r;
    r.table = catalog->table("tasks");
    r.query = server::rest::parse_query_string(query).value();
    auto built = server::rest::build_read(r);
    if (!built) die(built.error().message);
    auto verified =
        server::auth::JwtVerifier(kSecret).verify(tok, std::chrono::system_clock::now());
    // Exactly the service's claims statement (with its default plan_cache_mode for reads).
    batch.push_back(server::rest::claims_statement("authenticated", verified.value().claims_json,
                                                   server::rest::RestOptions{}.generic_read_plans));
    batch.push_back(built->statement);
  }

  std::cout << "machine: " << std::thread::hardware_concurrency()
            << " cores; PostgreSQL 15 (TempCluster, fsync off); " << o.rows
            << " tasks in the project, page of " << o.page << ", " << o.connections
            << " connections, " << o.seconds << " s each\n\n";
  const std::string data_dir = cluster.value()->data_dir();
  run_wrk(url, tok, data_dir, o, 2);  // warm-up: schema cache, pool connections, buffers
  const Stats floor = direct(conninfo, data_dir, batch, o);
  const Stats served = run_wrk(url, tok, data_dir, o, o.seconds);
  loop.run_sync([&] { host.reset(); });  // its pool stays idle from here

  // The product: `rtsync server` (rtsync::server::Server: realtime, /rest/v1 and /auth/v1 on one
  // listener and loop thread, its own pool).
  Stats product;
  {
    server::ServerOptions so;
    so.rest_connections = static_cast<std::size_t>(o.server_pool);
    so.db = conninfo;
    so.listen = "127.0.0.1:0";
    so.jwt_secret = kSecret;
    server::Server srv(so);
    if (auto st = srv.start(); !st) die(st.error().describe());
    const std::string server_url = srv.http_url() + "/rest/v1/tasks?" + query;
    run_wrk(server_url, tok, data_dir, o, 2);  // warm-up
    product = run_wrk(server_url, tok, data_dir, o, o.seconds);
    srv.stop();
  }

  std::printf("| %s | requests/s | p50 | p99 | requests | errors |\n", "REST GET, 50-row page");
  std::printf("| --- | --- | --- | --- | --- | --- |\n");
  std::printf(
      "| direct libpq (same statements, %d conns) | %.0f | %.2f ms | %.2f ms | %llu | %llu |\n",
      o.connections, floor.rps, floor.p50_ms, floor.p99_ms,
      static_cast<unsigned long long>(floor.requests),
      static_cast<unsigned long long>(floor.errors));
  std::printf(
      "| rtsync /rest/v1, test host (wrk -c%d, pool %d) | %.0f | %.2f ms | %.2f ms | %llu | %llu "
      "|\n",
      o.connections, o.pool, served.rps, served.p50_ms, served.p99_ms,
      static_cast<unsigned long long>(served.requests),
      static_cast<unsigned long long>(served.errors));
  std::printf(
      "| rtsync server /rest/v1 (wrk -c%d, pool %d) | %.0f | %.2f ms | %.2f ms | %llu | %llu |\n",
      o.connections, o.server_pool, product.rps, product.p50_ms, product.p99_ms,
      static_cast<unsigned long long>(product.requests),
      static_cast<unsigned long long>(product.errors));
  std::printf("\n| CPU per request | PostgreSQL | client (floor threads / wrk) | server |\n");
  std::printf("| --- | --- | --- | --- |\n");
  std::printf("| direct libpq | %.0f µs | %.0f µs | — |\n", floor.pg_us, floor.client_us);
  std::printf("| rtsync /rest/v1, test host (pool %d) | %.0f µs | %.0f µs | %.0f µs |\n", o.pool,
              served.pg_us, served.client_us, served.server_us);
  std::printf("| rtsync server /rest/v1 | %.0f µs | %.0f µs | %.0f µs |\n", product.pg_us,
              product.client_us, product.server_us);
  std::printf(
      "\np50 ratio to the floor: test host %.2f, rtsync server %.2f (target <= 2); throughput: "
      "test host %.0f, rtsync server %.0f req/s (target >= 5000)\n",
      served.p50_ms / std::max(floor.p50_ms, 1e-9), product.p50_ms / std::max(floor.p50_ms, 1e-9),
      served.rps, product.rps);

  loop.run_sync([&] {
    host.reset();
    rest.reset();
    pool.reset();
  });
  loop.stop();
  loop.join();
  return served.errors == 0 && floor.errors == 0 && product.errors == 0 ? 0 : 2;
}
