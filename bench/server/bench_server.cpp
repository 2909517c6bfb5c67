// rtsync server benchmarks (issue: commit→client latency beside LISTEN/NOTIFY, changes/s under
// RLS, broadcast fan-out, RSS per idle connection). The server runs in a forked child process
// (TempCluster + rtsync::server::Server on port 0); this process is the C++ load client.
//
//   bench_server latency    [--subs 100] [--rate 1000] [--seconds 5]
//   bench_server cluster    [--subs 100] [--rate 1000] [--seconds 5]   (two nodes on Redis)
//   bench_server throughput [--subs 500] [--users 50] [--changes 50000]
//   bench_server fanout     [--subs 1000] [--messages 2000] [--bytes 100] [--relay 0|1]
//   bench_server idle       [--conns 10000]
//   bench_server presence   [--clients 1000] [--window-ms 50] [--max-delay-ms 500] [--updates 50]
//                           [--naive 1] [--spread-ms 0]
//   bench_server dbcast     [--subs 500] [--projects 50] [--changes 20000] [--writers 4]
//                           [--rate 500] [--seconds 5]
// Prints one markdown table row per measurement.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/server/server.hpp"
#include "rtsync/testkit/temp_cluster.hpp"
#include "rtsync/testkit/temp_redis.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using rtsync::json::object;

namespace {

const std::string kSecret = "rtsync-bench-secret-with-at-least-32-chars";

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string key(const std::string& role, const std::string& sub = "") {
  auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count() +
             3600;
  object c{{"role", role}, {"exp", exp}};
  if (!sub.empty()) c["sub"] = sub;
  return rtsync::server::auth::sign_hs256(c, kSecret);
}

std::string user_uuid(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-0000-0000-%012d", i + 1);
  return buf;
}

// ---- the server child -------------------------------------------------------------------------

struct ServerChild {
  pid_t pid = -1;
  int control = -1;  // closing it stops the child
  std::uint16_t port = 0;
  std::uint16_t port2 = 0;  // `cluster`: the standby node (port is the leader's)
  int pg_port = 0;
  std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(pg_port) + " dbname=postgres user=postgres";
  }
};

// The first line a child writes to `fd` (at most 63 bytes; less if it exits first), then closes it.
std::string read_line_and_close(int fd) {
  char buf[64] = {};
  std::size_t n = 0;
  while (n < sizeof buf - 1) {
    auto r = read(fd, buf + n, sizeof buf - 1 - n);
    if (r <= 0) break;
    n += static_cast<std::size_t>(r);
    if (std::memchr(buf, '\n', n)) break;
  }
  close(fd);
  return std::string(buf, n);
}

// nodes 2: a cluster (docs/scaling.md §3) of two in-process nodes on a throwaway Redis, the
// first the leader; the child's line then also carries the standby's port.
ServerChild spawn_server(int nodes = 1) {
  int up[2], ctl[2];
  if (pipe(up) != 0 || pipe(ctl) != 0) std::exit(3);
  pid_t pid = fork();
  if (pid == 0) {
    close(up[0]);
    close(ctl[1]);
    int rc = 0;
    {
      rtsync::testkit::TempClusterOptions po;
      po.extra_config = {"max_connections = 100", "shared_buffers = 256MB"};
      auto pg = rtsync::testkit::TempCluster::create(po);
      if (!pg.ok()) {
        std::cerr << "cluster: " << pg.error().describe() << "\n";
        _exit(4);
      }
      rtsync::server::ServerOptions o;
      o.db = pg.value()->conninfo();
      o.listen = "127.0.0.1:0";
      o.jwt_secret = kSecret;
      o.limits.max_messages_per_second = 1'000'000'000;
      o.limits.max_queued_frames = 1 << 20;
      o.limits.max_queued_bytes = 1u << 30;
      o.limits.idle_timeout = std::chrono::minutes(10);
      // Every load client connects from 127.0.0.1: the per-address cap (1,000 by default) would
      // refuse the fan-out and idle-memory runs' sockets past the thousandth.
      o.max_connections = 100'000;
      o.max_connections_per_address = 100'000;
      if (const char* w = std::getenv("RTSYNC_BENCH_PRESENCE_WINDOW_MS")) {
        o.limits.presence_diff_window = std::chrono::milliseconds(std::atoi(w));
      }
      if (const char* w = std::getenv("RTSYNC_BENCH_PRESENCE_MAX_DELAY_MS")) {
        o.limits.presence_diff_max_delay = std::chrono::milliseconds(std::atoi(w));
      }
      std::unique_ptr<rtsync::testkit::TempRedis> redis;
      if (nodes > 1) {
        auto r = rtsync::testkit::TempRedis::start();
        if (!r.ok()) {
          std::cerr << "redis: " << r.error().describe() << "\n";
          _exit(4);
        }
        redis = std::move(r.value());
        o.cluster = redis->url();
        o.node_id = "leader";
      }
      rtsync::server::Server srv(o);
      if (auto r = srv.start(); !r.ok() || !srv.wait_healthy(20s)) {
        std::cerr << "server failed to start\n";
        _exit(5);
      }
      std::unique_ptr<rtsync::server::Server> standby;
      if (nodes > 1) {
        for (int i = 0;
             i < 200 && srv.metrics_text().find("rtsync_cluster_leader 1") == std::string::npos;
             ++i)
          std::this_thread::sleep_for(50ms);
        o.node_id = "standby";
        standby = std::make_unique<rtsync::server::Server>(o);
        if (auto r = standby->start(); !r.ok() || !standby->wait_healthy(20s)) {
          std::cerr << "standby failed to start\n";
          _exit(5);
        }
      }
      std::string line = std::to_string(srv.port()) + " " + std::to_string(pg.value()->port()) +
                         " " + std::to_string(standby ? standby->port() : 0) + "\n";
      if (write(up[1], line.data(), line.size()) < 0) _exit(6);
      close(up[1]);
      char c;
      while (read(ctl[0], &c, 1) > 0) {
      }
      // RTSYNC_BENCH_METRICS=1: the server's /metrics at the end of the run, on stderr.
      if (const char* m = std::getenv("RTSYNC_BENCH_METRICS"); m && std::string_view(m) == "1") {
        std::cerr << srv.metrics_text();
      }
      // A cluster's Redis traffic per node, for the report (on stderr, read by the parent).
      for (auto* n : {&srv, standby.get()}) {
        if (!n || nodes < 2) continue;
        for (std::string_view name :
             {"rtsync_cluster_redis_bytes_total ", "rtsync_cluster_appended_total ",
              "rtsync_cluster_read_total "}) {
          auto text = n->metrics_text();
          auto at = text.find("\n" + std::string(name));
          if (at != std::string::npos) {
            std::cerr << (n == &srv ? "leader " : "standby ")
                      << text.substr(at + 1, text.find('\n', at + 1) - at - 1) << "\n";
          }
        }
      }
      if (standby) standby->stop();
      srv.stop();
    }
    _exit(rc);
  }
  close(up[1]);
  close(ctl[0]);
  ServerChild s;
  s.pid = pid;
  s.control = ctl[1];
  const std::string line = read_line_and_close(up[0]);
  if (std::sscanf(line.c_str(), "%hu %d %hu", &s.port, &s.pg_port, &s.port2) != 3) {
    std::cerr << "server child did not start\n";
    std::exit(3);
  }
  return s;
}

void stop_server(ServerChild& s) {
  if (s.control < 0) {
    kill(s.pid, SIGTERM);  // the relay: no control pipe
  } else {
    close(s.control);
  }
  int st = 0;
  waitpid(s.pid, &st, 0);
}

// The fan-out peer (bench/server/ws_relay.mjs): `node` in a child whose first stdout line is its
// port. No PostgreSQL: the relay has none.
ServerChild spawn_relay() {
  int up[2];
  if (pipe(up) != 0) std::exit(3);
  pid_t pid = fork();
  if (pid == 0) {
    close(up[0]);
    dup2(up[1], STDOUT_FILENO);
    close(up[1]);
    execlp("node", "node", RTSYNC_BENCH_RELAY_JS, static_cast<char*>(nullptr));
    std::perror("exec node");
    _exit(7);
  }
  close(up[1]);
  ServerChild s;
  s.pid = pid;
  const std::string line = read_line_and_close(up[0]);
  if (std::sscanf(line.c_str(), "%hu", &s.port) != 1) {
    std::cerr << "relay did not start (node and tests/peers/node_modules needed)\n";
    std::exit(3);
  }
  return s;
}

// CPU seconds (user + system) a process has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(all.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / double(sysconf(_SC_CLK_TCK));
}

long rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void sql(const std::string& conninfo, const std::string& script) {
  auto c = rtsync::server::pg::Connection::open(conninfo);
  if (!c.ok()) {
    std::cerr << "sql connect: " << c.error().describe() << "\n";
    std::exit(7);
  }
  auto r = c.value().exec_script(script);
  if (!r.ok()) {
    std::cerr << "sql: " << r.error().describe() << "\n";
    std::exit(7);
  }
}

// ---- a minimal async websocket client ---------------------------------------------------------

struct Client : std::enable_shared_from_this<Client> {
  explicit Client(asio::io_context& io) : ws(io) {}
  websocket::stream<tcp::socket> ws;
  beast::flat_buffer buf;
  std::function<void(std::string_view)> on_message;
  std::uint64_t received = 0;

  bool connect(std::uint16_t port, const std::string& apikey) {
    beast::error_code ec;
    ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (ec) return false;
    ws.next_layer().set_option(tcp::no_delay(true));
    ws.read_message_max(64u << 20);
    ws.handshake("127.0.0.1", "/realtime/v1/websocket?vsn=2.0.0&apikey=" + apikey, ec);
    return !ec;
  }
  void send(const std::string& text) {
    beast::error_code ec;
    ws.write(asio::buffer(text), ec);
  }
  // Blocking read until a message containing `needle`.
  bool read_until(std::string_view needle) {
    for (int i = 0; i < 100; ++i) {
      beast::error_code ec;
      buf.consume(buf.size());
      ws.read(buf, ec);
      if (ec) return false;
      auto s = beast::buffers_to_string(buf.data());
      if (s.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  // Asynchronous writes in order (call on the io thread): reads and writes run side by side.
  std::deque<std::string> outbox;
  void post_send(std::string text) {
    outbox.push_back(std::move(text));
    if (outbox.size() == 1) write_next();
  }
  void write_next() {
    ws.async_write(asio::buffer(outbox.front()),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     if (ec) return;
                     self->outbox.pop_front();
                     if (!self->outbox.empty()) self->write_next();
                   });
  }
  void start() {
    buf.consume(buf.size());
    ws.async_read(buf, [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      if (ec) return;
      ++self->received;
      if (self->on_message) {
        auto d = self->buf.cdata();
        self->on_message(std::string_view(static_cast<const char*>(d.data()), n));
      }
      self->start();
    });
  }
};

std::string join_frame(const std::string& topic, const std::string& config_json,
                       const std::string& token = "") {
  std::string payload = R"({"config":)" + config_json;
  if (!token.empty()) payload += R"(,"access_token":")" + token + "\"";
  payload += "}";
  return R"(["1","1",")" + topic + R"(","phx_join",)" + payload + "]";
}

// A postgres_changes event frame (`[…, "postgres_changes", {"ids": …}]`), not a system message
// about the extension (`"extension":"postgres_changes","status":…`, sent to every subscriber when
// the change stream goes down or comes back): counting those as changes over-counts deliveries.
bool is_change_event(std::string_view m) {
  return m.find(R"("postgres_changes",{)") != std::string_view::npos;
}

std::string pg_config(const std::string& table) {
  return R"({"broadcast":{"ack":false,"self":false},"presence":{"key":"","enabled":false},"postgres_changes":[{"event":"INSERT","schema":"public","table":")" +
         table + R"("}],"private":false})";
}

std::int64_t field_t(std::string_view msg) {
  auto p = msg.find("\"t\":");
  if (p == std::string_view::npos) return -1;
  return std::strtoll(msg.data() + p + 4, nullptr, 10);
}

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0;
  std::size_t n = 0;
};
Percentiles percentiles(std::vector<std::int64_t> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, std::size_t(q * (v.size() - 1)))] / 1e6;
  };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.max = v.back() / 1e6;
  return p;
}

// The LISTEN/NOTIFY floor: `total` runs of `statement` at `rate` on a connection of their own,
// one listener on channel `bench`; the notification's payload is the time before the statement
// ($N of `params(i)`, whichever the statement sends). Commit → notification latencies.
Percentiles notify_floor(const std::string& conninfo, int rate, int total,
                         const std::string& statement,
                         const std::function<std::vector<std::string>(int)>& params) {
  std::vector<std::int64_t> nl;
  PGconn* listener = PQconnectdb(conninfo.c_str());
  PQclear(PQexec(listener, "LISTEN bench"));
  std::atomic<bool> done{false};
  std::thread lt([&] {
    int fd = PQsocket(listener);
    while (!done) {
      pollfd pfd{fd, POLLIN, 0};
      poll(&pfd, 1, 50);
      PQconsumeInput(listener);
      while (PGnotify* n = PQnotifies(listener)) {
        nl.push_back(now_ns() - std::strtoll(n->extra, nullptr, 10));
        PQfreemem(n);
      }
    }
  });
  auto writer = rtsync::server::pg::Connection::open(conninfo).value();
  const auto start = Clock::now();
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000LL / rate));
    const auto texts = params(i);
    (void)writer.exec(statement,
                      std::vector<std::optional<std::string>>(texts.begin(), texts.end()));
  }
  std::this_thread::sleep_for(500ms);
  done = true;
  lt.join();
  PQfinish(listener);
  writer.close();
  return percentiles(std::move(nl));
}

int arg(int argc, char** argv, const char* name, int def) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return def;
}

std::vector<std::shared_ptr<Client>> connect_many(asio::io_context& io, std::uint16_t port, int n,
                                                  const std::function<std::string(int)>& key_of) {
  std::vector<std::shared_ptr<Client>> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto c = std::make_shared<Client>(io);
    if (!c->connect(port, key_of(i))) {
      std::cerr << "connect " << i << " failed\n";
      std::exit(8);
    }
    out.push_back(std::move(c));
  }
  return out;
}

// The latency runs' table without RLS: every anon subscriber gets every row.
constexpr const char* kLatencyTable = R"(
  create table bench_lat (id bigserial primary key, t bigint not null, owner uuid);
  grant select on bench_lat to anon;
  alter publication supabase_realtime add table bench_lat;)";

// ---- 1. commit → event latency, and LISTEN/NOTIFY beside it ----------------------------------

int bench_latency(int argc, char** argv) {
  const int subs = arg(argc, argv, "--subs", 100);
  const int rate = arg(argc, argv, "--rate", 1000);
  const int seconds = arg(argc, argv, "--seconds", 5);
  // --users N: the table is under RLS (owner = auth.uid()) and the subscribers are N users, each
  // change going to its owner's subs / N sockets: the row authorization's latency included.
  // Default 0: anon subscribers of a table without RLS.
  const int users = arg(argc, argv, "--users", 0);
  auto srv = spawn_server();
  if (users > 0) {
    sql(srv.conninfo(), R"(
      create table bench_lat (id bigserial primary key, t bigint not null, owner uuid);
      alter table bench_lat enable row level security;
      create policy own on bench_lat for select to authenticated using (owner = auth.uid());
      grant select on bench_lat to authenticated;
      alter publication supabase_realtime add table bench_lat;)");
  } else {
    sql(srv.conninfo(), kLatencyTable);
  }
  asio::io_context io;
  auto anon = key("anon");
  auto clients = connect_many(io, srv.port, subs, [&](int) { return anon; });
  std::vector<std::int64_t> lat;
  lat.reserve(std::size_t(subs) * rate * seconds);
  for (int i = 0; i < subs; ++i) {
    auto& c = clients[i];
    c->send(users > 0 ? join_frame("realtime:lat", pg_config("bench_lat"),
                                   key("authenticated", user_uuid(i % users)))
                      : join_frame("realtime:lat", pg_config("bench_lat")));
    if (!c->read_until("Subscribed to PostgreSQL")) return 9;
    c->on_message = [&lat](std::string_view m) {
      auto now = now_ns();
      if (!is_change_event(m)) return;
      auto t = field_t(m);
      if (t > 0) lat.push_back(now - t);
    };
    c->start();
  }
  std::thread loop([&] { io.run(); });

  const int total = rate * seconds;
  auto writer = rtsync::server::pg::Connection::open(srv.conninfo()).value();
  auto start = Clock::now();
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000LL / rate));
    auto r = writer.exec(
        "insert into bench_lat (t, owner) values ($1, ('00000000-0000-0000-0000-' || "
        "lpad(($2::int + 1)::text, 12, '0'))::uuid)",
        {std::to_string(now_ns()), std::to_string(users > 0 ? i % users : 0)});
    if (!r.ok()) return 10;
  }
  auto write_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::this_thread::sleep_for(1500ms);
  io.stop();
  loop.join();
  auto p = percentiles(lat);

  // LISTEN/NOTIFY floor: one listener, the same commit rate.
  const auto q =
      notify_floor(srv.conninfo(), rate, total, "select pg_notify('bench', $1)",
                   [](int) { return std::vector<std::string>{std::to_string(now_ns())}; });
  const int per_change = users > 0 ? subs / users : subs;
  std::printf(
      "| commit → postgres_changes event, %d subscribers%s, %d changes/s (%.0f/s achieved) | "
      "%.2f ms | %.2f ms | %.2f ms | %zu / %d |\n",
      subs, users > 0 ? (" of " + std::to_string(users) + " users under RLS").c_str() : "", rate,
      total / write_s, p.p50, p.p99, p.max, p.n, per_change * total);
  std::printf(
      "| floor: commit → LISTEN/NOTIFY notification, 1 listener, %d/s | %.2f ms | %.2f ms | %.2f "
      "ms | %zu / %d |\n",
      rate, q.p50, q.p99, q.max, q.n, total);
  writer.close();
  stop_server(srv);
  return p.n == std::size_t(per_change) * total ? 0 : 1;
}

// ---- 1b. a cluster: the same on a standby node beside the leader ------------------------------

// Two nodes on one Redis (docs/scaling.md §3), half the subscribers on each: commit → event and
// broadcast → event for a subscriber of the standby beside one of the leader, in the same run,
// and the Redis traffic per change.
int bench_cluster(int argc, char** argv) {
  const int subs = arg(argc, argv, "--subs", 100);
  const int rate = arg(argc, argv, "--rate", 1000);
  const int seconds = arg(argc, argv, "--seconds", 5);
  auto srv = spawn_server(2);
  sql(srv.conninfo(), kLatencyTable);
  asio::io_context io;
  auto anon = key("anon");
  auto on_leader = connect_many(io, srv.port, subs / 2 + 1, [&](int) { return anon; });
  auto on_standby = connect_many(io, srv.port2, subs / 2, [&](int) { return anon; });
  auto publisher = on_leader.back();
  on_leader.pop_back();
  publisher->send(join_frame("realtime:lat", R"({"broadcast":{"ack":false,"self":false}})"));
  if (!publisher->read_until("phx_reply")) return 9;
  std::vector<std::int64_t> change_lat[2], cast_lat[2];
  for (int side = 0; side < 2; ++side) {
    for (auto& c : side == 0 ? on_leader : on_standby) {
      c->send(join_frame("realtime:lat", pg_config("bench_lat")));
      if (!c->read_until("Subscribed to PostgreSQL")) return 9;
      c->on_message = [&, side](std::string_view m) {
        auto now = now_ns();
        auto t = field_t(m);
        if (t <= 0) return;
        if (is_change_event(m)) {
          change_lat[side].push_back(now - t);
        } else if (m.find("\"broadcast\"") != std::string_view::npos) {
          cast_lat[side].push_back(now - t);
        }
      };
      c->start();
    }
  }
  publisher->start();
  std::thread loop([&] { io.run(); });
  const int total = rate * seconds;
  auto writer = rtsync::server::pg::Connection::open(srv.conninfo()).value();
  // Warm-up: the leader answers joins while its replication stream is still connecting (the
  // slot keeps what commits meanwhile); one row through to every subscriber first, so the run
  // measures delivery, not the stream's start.
  if (!writer.exec("insert into bench_lat (t) values ($1)", {std::to_string(now_ns())}).ok()) {
    return 10;
  }
  for (int i = 0; i < 300; ++i) {
    bool warm = false;
    asio::post(io, [&] {
      warm = change_lat[0].size() >= std::size_t(subs / 2) &&
             change_lat[1].size() >= std::size_t(subs / 2);
    });
    std::this_thread::sleep_for(50ms);
    if (warm) break;
  }
  asio::post(io, [&] {
    change_lat[0].clear();
    change_lat[1].clear();
  });
  std::this_thread::sleep_for(50ms);
  auto start = Clock::now();
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000LL / rate));
    if (i % 10 == 0) {
      // A broadcast every tenth change, from a client of the leader.
      asio::post(io, [publisher, t = now_ns()] {
        publisher->send(R"(["1",null,"realtime:lat","broadcast",{"type":"broadcast","event":"e",)"
                        R"("payload":{"t":)" +
                        std::to_string(t) + "}}]");
      });
    }
    auto r = writer.exec("insert into bench_lat (t) values ($1)", {std::to_string(now_ns())});
    if (!r.ok()) return 10;
  }
  auto write_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::this_thread::sleep_for(1500ms);
  io.stop();
  loop.join();
  const int half = subs / 2;
  bool complete = true;
  for (int side = 0; side < 2; ++side) {
    auto p = percentiles(change_lat[side]);
    std::printf(
        "| commit → postgres_changes event, %d subscribers on the %s, %d changes/s (%.0f/s "
        "achieved) | %.2f ms | %.2f ms | %.2f ms | %zu / %d |\n",
        half, side == 0 ? "leader" : "standby", rate, total / write_s, p.p50, p.p99, p.max, p.n,
        half * total);
    complete = complete && p.n == std::size_t(half) * total;
  }
  for (int side = 0; side < 2; ++side) {
    auto p = percentiles(cast_lat[side]);
    std::printf(
        "| broadcast from a client of the leader → %d subscribers on the %s, %d/s | %.2f ms | "
        "%.2f ms | %.2f ms | %zu / %d |\n",
        half, side == 0 ? "leader" : "standby", rate / 10, p.p50, p.p99, p.max, p.n,
        half * (total / 10));
  }
  writer.close();
  stop_server(srv);  // the child prints each node's Redis traffic on stderr
  return complete ? 0 : 1;
}

// ---- 2. changes/s end to end under RLS --------------------------------------------------------

int bench_throughput(int argc, char** argv) {
  const int subs = arg(argc, argv, "--subs", 500);
  const int users = arg(argc, argv, "--users", 50);
  const int changes = arg(argc, argv, "--changes", 50000);
  const int per_txn = arg(argc, argv, "--per-txn", 100);
  // --initplan 1: the policy as db/0003 writes them, `(select auth.uid())` (evaluated once per
  // statement); default: `auth.uid()` evaluated per row.
  const bool initplan = arg(argc, argv, "--initplan", 0) != 0;
  // --drain 1: the server process is stopped (SIGSTOP) while the writer commits and resumed once
  // every commit is in: changes/s are then counted from the resume to the last delivery, the
  // server's own rate on a backlog (PostgreSQL's decoding and the RLS queries included), not the
  // rate of a writer sharing the same two cores.
  const bool drain = arg(argc, argv, "--drain", 0) != 0;
  auto srv = spawn_server();
  sql(srv.conninfo(), std::string(R"(
    create table bench_rls (id bigserial primary key, owner uuid not null, t bigint not null);
    alter table bench_rls enable row level security;
    create policy own on bench_rls for select to authenticated using (owner = )") +
                          (initplan ? "(select auth.uid())" : "auth.uid()") + R"();
    grant select on bench_rls to authenticated;
    alter publication supabase_realtime add table bench_rls;)");
  asio::io_context io;
  auto anon = key("anon");
  auto clients = connect_many(io, srv.port, subs, [&](int) { return anon; });
  std::atomic<std::uint64_t> got{0};
  std::int64_t last = 0;
  for (int i = 0; i < subs; ++i) {
    auto& c = clients[i];
    c->send(join_frame("realtime:rls", pg_config("bench_rls"),
                       key("authenticated", user_uuid(i % users))));
    if (!c->read_until("Subscribed to PostgreSQL")) return 9;
    c->on_message = [&](std::string_view m) {
      if (!is_change_event(m)) return;
      got.fetch_add(1, std::memory_order_relaxed);
      last = now_ns();
    };
    c->start();
  }
  std::thread loop([&] { io.run(); });
  const std::uint64_t expected = std::uint64_t(changes) * (subs / users);
  auto writer = rtsync::server::pg::Connection::open(srv.conninfo()).value();
  double srv_cpu0 = cpu_seconds(srv.pid);
  auto start_ns = now_ns();
  if (drain) kill(srv.pid, SIGSTOP);
  for (int done = 0; done < changes; done += per_txn) {
    auto r = writer.exec(
        "insert into bench_rls (owner, t) select ('00000000-0000-0000-0000-' || lpad(((g % $1) + "
        "1)::text, 12, '0'))::uuid, $2 "
        "from generate_series($3::int, $3::int + $4::int - 1) g",
        {std::to_string(users), std::to_string(now_ns()), std::to_string(done),
         std::to_string(per_txn)});
    if (!r.ok()) {
      std::cerr << r.error().describe() << "\n";
      return 10;
    }
  }
  auto wrote_ns = now_ns();
  if (drain) {
    srv_cpu0 = cpu_seconds(srv.pid);  // what it spent before the stop is the joins'
    kill(srv.pid, SIGCONT);
  }
  const auto from_ns = drain ? now_ns() : start_ns;
  for (int i = 0; i < 600 && got.load() < expected; ++i)
    std::this_thread::sleep_for(100ms);
  io.stop();
  loop.join();
  double secs = (last - from_ns) / 1e9;
  double srv_cpu = cpu_seconds(srv.pid) - srv_cpu0;
  std::printf(
      "| changes/s %s under RLS (policy %s), %d subscribers (%d users × %d), %d changes in "
      "txns of %d | %.0f changes/s (%.0f deliveries/s) | writer %.0f rows/s | %llu / %llu "
      "delivered | rtsync "
      "process %.2f CPU-s |\n",
      drain ? "draining a backlog (server stopped while written)" : "end to end",
      initplan ? "owner = (select auth.uid())" : "owner = auth.uid()", subs, users, subs / users,
      changes, per_txn, changes / secs, got.load() / secs, changes / ((wrote_ns - start_ns) / 1e9),
      (unsigned long long)got.load(), (unsigned long long)expected, srv_cpu);
  writer.close();
  stop_server(srv);
  return got.load() == expected ? 0 : 1;
}

// ---- 3. broadcast fan-out ---------------------------------------------------------------------

int bench_fanout(int argc, char** argv) {
  const int subs = arg(argc, argv, "--subs", 1000);
  const int messages = arg(argc, argv, "--messages", 2000);
  const int bytes = arg(argc, argv, "--bytes", 100);
  // --relay 1: the same probe against the hand-written Node relay (ws_relay.mjs) instead.
  const bool relay = arg(argc, argv, "--relay", 0) != 0;
  auto srv = relay ? spawn_relay() : spawn_server();
  asio::io_context io;
  auto anon = key("anon");
  auto clients = connect_many(io, srv.port, subs + 1, [&](int) { return anon; });
  for (auto& c : clients) {
    c->send(join_frame("realtime:fan", R"({"broadcast":{"ack":false,"self":false}})"));
    if (!c->read_until("phx_reply")) return 9;
  }
  auto publisher = clients.back();
  clients.pop_back();
  std::atomic<std::uint64_t> total{0};
  std::int64_t last = 0;
  for (auto& c : clients) {
    c->on_message = [&](std::string_view) {
      total.fetch_add(1, std::memory_order_relaxed);
      last = now_ns();
    };
    c->start();
  }
  std::thread loop([&] { io.run(); });
  std::string body(bytes, 'x');
  double srv_cpu0 = cpu_seconds(srv.pid), cli_cpu0 = cpu_seconds(getpid());
  auto start = now_ns();
  for (int i = 0; i < messages; ++i) {
    publisher->send(
        R"(["1",null,"realtime:fan","broadcast",{"type":"broadcast","event":"e","payload":{"i":)" +
        std::to_string(i) + R"(,"b":")" + body + R"("}}])");
  }
  const std::uint64_t expected = std::uint64_t(subs) * messages;
  for (int i = 0; i < 1200 && total.load() < expected; ++i)
    std::this_thread::sleep_for(50ms);
  io.stop();
  loop.join();
  double secs = (last - start) / 1e9;
  double srv_cpu = cpu_seconds(srv.pid) - srv_cpu0, cli_cpu = cpu_seconds(getpid()) - cli_cpu0;
  std::uint64_t min_per = ~0ull;
  for (auto& c : clients)
    min_per = std::min(min_per, c->received);
  std::printf(
      "| %s: broadcast fan-out, 1 publisher → %d subscribers of one topic, %d messages of ~%d B "
      "| %.0f deliveries/s | %.2f s | %llu / %llu delivered, min per subscriber %llu | server "
      "%.2f CPU-s (%.0f deliveries per server CPU-s), client %.2f CPU-s |\n",
      relay ? "Node ws relay" : "rtsync", subs, messages, bytes + 60, total.load() / secs, secs,
      (unsigned long long)total.load(), (unsigned long long)expected, (unsigned long long)min_per,
      srv_cpu, total.load() / std::max(srv_cpu, 1e-9), cli_cpu);
  stop_server(srv);
  return total.load() == expected ? 0 : 1;
}

// ---- 4. RSS per idle connection ---------------------------------------------------------------

int bench_idle(int argc, char** argv) {
  const int conns = arg(argc, argv, "--conns", 10000);
  auto srv = spawn_server();
  asio::io_context io;
  auto anon = key("anon");
  // Warm up allocator pools with a few connections first.
  {
    auto warm = connect_many(io, srv.port, 50, [&](int) { return anon; });
    for (auto& c : warm) {
      c->send(R"([null,"1","phoenix","heartbeat",{}])");
      c->read_until("phx_reply");
    }
  }
  std::this_thread::sleep_for(500ms);
  long before = rss_kb(srv.pid);
  auto clients = connect_many(io, srv.port, conns, [&](int) { return anon; });
  for (auto& c : clients) {
    c->send(R"([null,"1","phoenix","heartbeat",{}])");
    if (!c->read_until("phx_reply")) return 9;
  }
  std::this_thread::sleep_for(1s);
  long after = rss_kb(srv.pid);
  std::printf(
      "| RSS per idle connection, %d websockets (each answered one heartbeat) | %.1f KB | server "
      "RSS %ld → %ld KB |\n",
      conns, double(after - before) / conns, before, after);
  clients.clear();
  stop_server(srv);
  return 0;
}

// ---- 5. presence join storm --------------------------------------------------------------------

// The kind of a v2 text frame, from its header (["join_ref","ref","topic","event",…).
enum Kind { kJoinReply, kTrackReply, kState, kDiff, kBroadcast, kOther, kKinds };
Kind kind_of(std::string_view msg) {
  const auto head = msg.substr(0, 96);
  if (head.find("\"presence_diff\"") != std::string_view::npos) return kDiff;
  if (head.find("\"presence_state\"") != std::string_view::npos) return kState;
  if (head.find("\"broadcast\"") != std::string_view::npos) return kBroadcast;
  if (head.find("\"phx_reply\"") != std::string_view::npos) {
    if (head.rfind("[\"1\",\"2\"", 0) == 0) return kTrackReply;
    return kJoinReply;
  }
  return kOther;
}

// Calls f(index) for every presence key "u<index>" of a {key:{"metas":[…]},…} text, without a
// JSON parse: the load client must not be what is measured.
template <class F>
void scan_keys(std::string_view s, F&& f) {
  static constexpr std::string_view kPat = ":{\"metas\":[";
  for (std::size_t pos = s.find(kPat); pos != std::string_view::npos;
       pos = s.find(kPat, pos + kPat.size())) {
    // The key ends with the quote before `pos`; it is "u<digits>".
    std::size_t q = pos - 1;
    std::size_t b = q;
    while (b > 0 && s[b - 1] != '"')
      --b;
    if (b < q && s[b] == 'u') f(std::atoi(std::string(s.substr(b + 1, q - b - 1)).c_str()));
  }
}

struct StormStats {
  std::vector<std::array<std::uint64_t, kKinds>> frames;
  std::vector<std::uint64_t> bytes;
  std::vector<std::int64_t> converged_ns;  // -1: not yet
};

std::string kind_counts(const StormStats& st, int n) {
  static const char* names[kKinds] = {"join reply",    "track reply", "presence_state",
                                      "presence_diff", "broadcast",   "other"};
  std::string out;
  for (int k = 0; k < kKinds; ++k) {
    std::uint64_t total = 0, max = 0;
    for (const auto& f : st.frames) {
      total += f[k];
      max = std::max(max, f[k]);
    }
    if (total == 0) continue;
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s %.2f (max %llu)", out.empty() ? "" : ", ", names[k],
                  double(total) / n, (unsigned long long)max);
    out += buf;
  }
  return out;
}

// Runs `fn` on the io thread and waits for it.
template <class Fn>
void on_io(asio::io_context& io, Fn&& fn) {
  std::promise<void> done;
  asio::post(io, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

// N clients join one channel with presence enabled and, each on its join reply, track (as
// realtime-js does on SUBSCRIBED) — all at once. Measured from the first join sent: the time until
// each client's presence state (presence_state, then the joins and leaves of its diffs) holds all
// N, the frames each client received by kind and the bytes, and the server's CPU. Then the steady
// cost of one track update in that channel of N, and beside it the naive peer: every client's join
// broadcast to every client (broadcast fan-out with self, after all have joined).
int bench_presence(int argc, char** argv) {
  const int n = arg(argc, argv, "--clients", 1000);
  const int window = arg(argc, argv, "--window-ms", 50);
  const int max_delay = arg(argc, argv, "--max-delay-ms", 500);
  const int updates = arg(argc, argv, "--updates", 50);
  const bool naive = arg(argc, argv, "--naive", 1) != 0;
  // 0: every join at once; otherwise the joins are spread evenly over this many ms.
  const int spread = arg(argc, argv, "--spread-ms", 0);
  setenv("RTSYNC_BENCH_PRESENCE_WINDOW_MS", std::to_string(window).c_str(), 1);
  setenv("RTSYNC_BENCH_PRESENCE_MAX_DELAY_MS", std::to_string(max_delay).c_str(), 1);
  auto srv = spawn_server();
  asio::io_context io;
  auto anon = key("anon");
  auto clients = connect_many(io, srv.port, n, [&](int) { return anon; });
  auto guard = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  int rc = 0;

  // ---- the storm
  StormStats st;
  st.frames.assign(n, {});
  st.bytes.assign(n, 0);
  st.converged_ns.assign(n, -1);
  std::vector<std::vector<std::uint8_t>> have(n, std::vector<std::uint8_t>(n, 0));
  std::vector<int> count(n, 0);
  std::atomic<int> converged{0};
  std::int64_t start = 0;
  // Milestones from the first join sent: the last join reply, the first and last presence frames.
  std::int64_t last_reply = 0, first_presence = 0, last_presence = 0;
  const std::string topic = "realtime:lobby";
  for (int i = 0; i < n; ++i) {
    clients[i]->on_message = [&, i](std::string_view msg) {
      ++st.frames[i][kind_of(msg)];
      st.bytes[i] += msg.size();
      const Kind k = kind_of(msg);
      if (k == kJoinReply) {
        last_reply = now_ns() - start;
        clients[i]->post_send(
            R"(["1","2","realtime:lobby","presence",{"type":"presence","event":"track","payload":{"name":"u)" +
            std::to_string(i) + R"("}}])");
        return;
      }
      if (k != kState && k != kDiff) return;
      last_presence = now_ns() - start;
      if (first_presence == 0) first_presence = last_presence;
      auto mark = [&](int key, bool in) {
        if (key < 0 || key >= n || have[i][key] == in) return;
        have[i][key] = in;
        count[i] += in ? 1 : -1;
      };
      if (k == kState) {
        std::fill(have[i].begin(), have[i].end(), 0);
        count[i] = 0;
        scan_keys(msg, [&](int key) { mark(key, true); });
      } else {
        const auto leaves = msg.rfind("},\"leaves\":{");
        scan_keys(msg.substr(0, leaves), [&](int key) { mark(key, true); });
        if (leaves != std::string_view::npos)
          scan_keys(msg.substr(leaves), [&](int key) { mark(key, false); });
      }
      if (count[i] == n && st.converged_ns[i] < 0) {
        st.converged_ns[i] = now_ns() - start;
        converged.fetch_add(1);
      }
    };
  }
  const double cpu0 = cpu_seconds(srv.pid);
  const double client_cpu0 = cpu_seconds(getpid());
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  on_io(io, [&] {
    start = now_ns();
    for (int i = 0; i < n; ++i) {
      auto join = [&, i] {
        clients[i]->post_send(join_frame(
            topic, R"({"presence":{"enabled":true,"key":"u)" + std::to_string(i) + R"("}})"));
      };
      clients[i]->start();
      if (spread == 0) {
        join();
        continue;
      }
      timers.push_back(std::make_unique<asio::steady_timer>(
          io, std::chrono::microseconds(std::int64_t(spread) * 1000 * i / n)));
      timers.back()->async_wait([join](beast::error_code ec) {
        if (!ec) join();
      });
    }
  });
  for (int i = 0; i < 600 && converged.load() < n; ++i)
    std::this_thread::sleep_for(50ms);
  // Late frames of the storm (a diff still in the window) count too.
  std::this_thread::sleep_for(std::chrono::milliseconds(max_delay + 300));
  const double storm_cpu = cpu_seconds(srv.pid) - cpu0;
  const double client_cpu = cpu_seconds(getpid()) - client_cpu0;
  std::vector<std::int64_t> conv;
  std::uint64_t frames = 0, bytes = 0, max_frames = 0;
  on_io(io, [&] {
    for (int i = 0; i < n; ++i) {
      if (st.converged_ns[i] >= 0) conv.push_back(st.converged_ns[i]);
      std::uint64_t f = 0;
      for (auto c : st.frames[i])
        f += c;
      frames += f;
      max_frames = std::max(max_frames, f);
      bytes += st.bytes[i];
    }
  });
  const auto p = percentiles(conv);
  std::printf(
      "| presence join storm: %d clients join one channel and track %s (window %d ms, max "
      "delay %d ms) | %s: p50 %.0f ms, p99 %.0f ms, max %.0f ms | %.2f per client (max %llu): "
      "%s; %llu in total | %.1f MB (%.1f KB per client) | server %.2f CPU-s |\n",
      n, spread == 0 ? "at once" : ("over " + std::to_string(spread) + " ms").c_str(), window,
      max_delay, converged.load() == n ? "all converged" : "NOT all converged", p.p50, p.p99, p.max,
      double(frames) / n, (unsigned long long)max_frames, kind_counts(st, n).c_str(),
      (unsigned long long)frames, bytes / 1e6, bytes / 1e3 / n, storm_cpu);
  std::printf(
      "|   storm milestones from the first join sent | last join reply %.0f ms, first presence "
      "frame %.0f ms, last presence frame %.0f ms | | | load client %.2f CPU-s |\n",
      last_reply / 1e6, first_presence / 1e6, last_presence / 1e6, client_cpu);
  std::fflush(stdout);
  if (converged.load() != n) rc = 1;

  // ---- one track update in the channel of N
  if (rc == 0 && updates > 0) {
    // The server's CPU while 1,000 idle sockets are connected, to subtract from the updates'.
    const double idle0 = cpu_seconds(srv.pid);
    const auto idle_start = Clock::now();
    std::this_thread::sleep_for(2s);
    const double idle_rate = (cpu_seconds(srv.pid) - idle0) /
                             std::chrono::duration<double>(Clock::now() - idle_start).count();
    std::vector<std::int64_t> lat, all, every;
    std::atomic<int> seen{0};
    std::uint64_t upd_frames = 0, upd_bytes = 0;
    std::int64_t t0 = 0;
    int rev = 0;
    on_io(io, [&] {
      for (int i = 0; i < n; ++i) {
        clients[i]->on_message = [&](std::string_view msg) {
          ++upd_frames;
          upd_bytes += msg.size();
          if (kind_of(msg) != kDiff) return;
          const std::string needle = "\"rev\":" + std::to_string(rev) + "}";
          if (msg.find(needle) == std::string_view::npos) return;
          lat.push_back(now_ns() - t0);
          seen.fetch_add(1);
        };
      }
    });
    const double ucpu0 = cpu_seconds(srv.pid);
    const auto ustart = Clock::now();
    for (int u = 1; u <= updates; ++u) {
      seen = 0;
      const int who = (u * 7919) % n;  // a different socket each time (its push budget)
      on_io(io, [&] {
        rev = u;
        t0 = now_ns();
        clients[who]->post_send(
            R"(["1","3","realtime:lobby","presence",{"type":"presence","event":"track","payload":{"name":"u)" +
            std::to_string(who) + R"(","rev":)" + std::to_string(u) + "}}]");
      });
      for (int i = 0; i < 200 && seen.load() < n; ++i)
        std::this_thread::sleep_for(5ms);
      on_io(io, [&] {
        if (!lat.empty()) all.push_back(*std::max_element(lat.begin(), lat.end()));
        every.insert(every.end(), lat.begin(), lat.end());
        lat.clear();
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(window + 20));
    }
    const double ucpu = cpu_seconds(srv.pid) - ucpu0;
    const double uspan = std::chrono::duration<double>(Clock::now() - ustart).count();
    const auto q = percentiles(all);
    const auto e = percentiles(every);
    std::printf(
        "| one track update in a channel of %d (%d updates, one at a time; includes the %d ms "
        "quiet window) | per client p50 %.0f ms, p99 %.0f ms; the last client of an update: p50 "
        "%.0f ms, max %.0f ms | %.0f frames per update | %.0f KB per update | server %.2f "
        "CPU-ms per update (%.2f with the idle rate, %.2f CPU-ms/s, subtracted) |\n",
        n, updates, window, e.p50, e.p99, q.p50, q.max, double(upd_frames) / updates,
        upd_bytes / 1e3 / updates, ucpu * 1e3 / updates, (ucpu - idle_rate * uspan) * 1e3 / updates,
        idle_rate * 1e3);
    std::fflush(stdout);
    if (q.n != std::size_t(updates)) rc = 1;
  }

  // ---- the naive peer: every join broadcast to every client
  if (naive) {
    StormStats nv;
    nv.frames.assign(n, {});
    nv.bytes.assign(n, 0);
    nv.converged_ns.assign(n, -1);
    std::vector<int> got(n, 0);
    std::atomic<int> joined{0}, done{0};
    std::int64_t t0 = 0;
    on_io(io, [&] {
      for (int i = 0; i < n; ++i) {
        clients[i]->on_message = [&, i](std::string_view msg) {
          if (msg.find("realtime:naive") == std::string_view::npos) return;
          ++nv.frames[i][kind_of(msg)];
          nv.bytes[i] += msg.size();
          const Kind k = kind_of(msg);
          if (k == kJoinReply) joined.fetch_add(1);
          if (k == kBroadcast && ++got[i] == n) {
            nv.converged_ns[i] = now_ns() - t0;
            done.fetch_add(1);
          }
        };
        clients[i]->post_send(
            R"(["3","3","realtime:naive","phx_join",{"config":{"broadcast":{"ack":false,"self":true}}}])");
      }
    });
    for (int i = 0; i < 600 && joined.load() < n; ++i)
      std::this_thread::sleep_for(10ms);
    const double ncpu0 = cpu_seconds(srv.pid);
    on_io(io, [&] {
      t0 = now_ns();
      for (int i = 0; i < n; ++i)
        clients[i]->post_send(
            R"(["3","4","realtime:naive","broadcast",{"type":"broadcast","event":"join","payload":{"name":"u)" +
            std::to_string(i) + R"("}}])");
    });
    for (int i = 0; i < 1200 && done.load() < n; ++i)
      std::this_thread::sleep_for(50ms);
    std::this_thread::sleep_for(300ms);
    const double ncpu = cpu_seconds(srv.pid) - ncpu0;
    std::vector<std::int64_t> conv2;
    std::uint64_t nframes = 0, nbytes = 0, nmax = 0;
    on_io(io, [&] {
      for (int i = 0; i < n; ++i) {
        if (nv.converged_ns[i] >= 0) conv2.push_back(nv.converged_ns[i]);
        std::uint64_t f = 0;
        for (auto c : nv.frames[i])
          f += c;
        nframes += f;
        nmax = std::max(nmax, f);
        nbytes += nv.bytes[i];
      }
    });
    const auto r = percentiles(conv2);
    std::printf(
        "| peer, same run: naive broadcast of every join to every client (%d clients joined "
        "first, then each broadcasts its join once) | %s: p50 %.0f ms, p99 %.0f ms, max %.0f ms "
        "| %.2f per client (max %llu): %s; %llu in total | %.1f MB (%.1f KB per client) | server "
        "%.2f CPU-s |\n",
        n, done.load() == n ? "all converged" : "NOT all converged", r.p50, r.p99, r.max,
        double(nframes) / n, (unsigned long long)nmax, kind_counts(nv, n).c_str(),
        (unsigned long long)nframes, nbytes / 1e6, nbytes / 1e3 / n, ncpu);
    std::fflush(stdout);
  }

  guard.reset();
  io.stop();
  loop.join();
  clients.clear();
  stop_server(srv);
  return rc;
}

// ---- 6. Broadcast from Database beside postgres_changes under RLS -------------------------------

// The same single-row commits into one table, delivered two ways by one server over one database:
// postgres_changes under RLS (50 users, 10 sockets each, policy owner = auth.uid()) and Broadcast
// from Database (a realtime.broadcast_changes trigger to the private topic project:<n>; the same
// 50 users, 10 sockets each on their own project's topic, joined through a SELECT policy on
// realtime.messages as db/0006 writes it). The trigger fires in both phases, so the writes are
// the same. Per phase:
//   live     W writer connections commit as fast as they go while the server delivers:
//            changes/s from the first commit to the last delivery;
//   drain    the same, but the server process is stopped (SIGSTOP) while the writers commit and
//            resumed (SIGCONT) after: changes/s from the resume to the last delivery — what the
//            server can deliver, not what the writers can commit;
//   latency  one writer at --rate commits/s: commit → event p50/p99 (the time before the INSERT
//            to the frame's arrival);
// and two LISTEN/NOTIFY floors at --rate: a bare `select pg_notify`, and the same INSERT (trigger
// and all) with the notification sent by its own commit.
struct DbcastRun {
  double changes_per_s = 0;
  double writer_per_s = 0;
  std::uint64_t got = 0, expected = 0;
  double srv_cpu = 0;
  double cli_cpu = 0;  // this process (the load client) in the same interval
  double seconds = 0;  // the interval measured
};
struct DbcastPhase {
  bool broadcast = false;
  DbcastRun live, drain;
  Percentiles lat;
};

int bench_dbcast(int argc, char** argv) {
  const int subs = arg(argc, argv, "--subs", 500);
  const int projects = arg(argc, argv, "--projects", 50);
  const int changes = arg(argc, argv, "--changes", 20000);
  const int writers = arg(argc, argv, "--writers", 4);
  const int rate = arg(argc, argv, "--rate", 500);
  const int seconds = arg(argc, argv, "--seconds", 5);
  auto srv = spawn_server();
  sql(srv.conninfo(), R"(
    create table bench_bc (id bigserial primary key, project int not null, owner uuid not null,
                           t bigint not null);
    alter table bench_bc enable row level security;
    create policy own on bench_bc for select to authenticated using (owner = auth.uid());
    grant select on bench_bc to authenticated;
    alter publication supabase_realtime add table bench_bc;
    create function bench_bc_broadcast() returns trigger language plpgsql security definer as $$
    begin
      perform realtime.broadcast_changes('project:' || NEW.project, TG_OP, TG_OP, TG_TABLE_NAME,
                                         TG_TABLE_SCHEMA, NEW, NULL);
      return null;
    end $$;
    create trigger bench_bc_broadcast after insert on bench_bc
      for each row execute function bench_bc_broadcast();
    -- Who may read project:<n>: its owner, as db/0006's policy decides it for the demo.
    create table bench_projects (id int primary key, owner uuid not null);
    insert into bench_projects select g, ('00000000-0000-0000-0000-' || lpad((g + 1)::text, 12,
      '0'))::uuid from generate_series(0, 999) g;
    grant select on bench_projects to authenticated;
    create policy project_owner_reads on realtime.messages for select to authenticated using (
      exists (select 1 from bench_projects p where 'project:' || p.id = (select realtime.topic())
              and p.owner = (select auth.uid())));)");
  const int per_project = subs / projects;
  const std::string insert_sql =
      "insert into bench_bc (project, owner, t) values ($1::int, ('00000000-0000-0000-0000-' || "
      "lpad(($1::int + 1)::text, 12, '0'))::uuid, $2)";

  struct Sink {
    std::atomic<std::uint64_t> got{0};
    std::int64_t last = 0;
    std::vector<std::int64_t> lat;
    bool keep_latency = false;
  };
  // `subs` sockets of one kind, joined and reading; events are counted into `sink`.
  auto connect_phase = [&](asio::io_context& io, bool broadcast, Sink& sink) {
    auto clients = connect_many(
        io, srv.port, subs, [&](int i) { return key("authenticated", user_uuid(i % projects)); });
    for (int i = 0; i < subs; ++i) {
      auto& c = clients[i];
      const int project = i % projects;
      if (broadcast) {
        c->send(join_frame("realtime:project:" + std::to_string(project),
                           R"({"broadcast":{"ack":false,"self":false},"private":true})"));
        if (!c->read_until("phx_reply")) std::exit(9);
      } else {
        c->send(join_frame("realtime:rls", pg_config("bench_bc"),
                           key("authenticated", user_uuid(project))));
        if (!c->read_until("Subscribed to PostgreSQL")) std::exit(9);
      }
      c->on_message = [&sink, broadcast](std::string_view m) {
        const auto now = now_ns();
        const bool event =
            broadcast ? (!m.empty() && static_cast<unsigned char>(m[0]) == 4) : is_change_event(m);
        if (!event) return;
        sink.got.fetch_add(1, std::memory_order_relaxed);
        sink.last = now;
        if (sink.keep_latency) {
          auto t = field_t(m);
          if (t > 0) sink.lat.push_back(now - t);
        }
      };
      c->start();
    }
    return clients;
  };
  auto write_all = [&] {
    std::vector<std::thread> ws;
    for (int w = 0; w < writers; ++w) {
      ws.emplace_back([&, w] {
        auto conn = rtsync::server::pg::Connection::open(srv.conninfo()).value();
        for (int i = w; i < changes; i += writers) {
          auto r = conn.exec(insert_sql, {std::to_string(i % projects), std::to_string(now_ns())});
          if (!r.ok()) {
            std::cerr << r.error().describe() << "\n";
            std::exit(10);
          }
        }
      });
    }
    for (auto& t : ws)
      t.join();
  };
  auto throughput = [&](bool broadcast, bool drain) {
    DbcastRun out;
    asio::io_context io;
    Sink sink;
    auto clients = connect_phase(io, broadcast, sink);
    std::thread loop([&] { io.run(); });
    out.expected = std::uint64_t(changes) * per_project;
    if (drain) kill(srv.pid, SIGSTOP);
    const auto start = now_ns();
    write_all();
    const auto wrote = now_ns();
    const double cpu0 = cpu_seconds(srv.pid), cli0 = cpu_seconds(getpid());
    if (drain) kill(srv.pid, SIGCONT);
    const auto from = drain ? now_ns() : start;
    for (int i = 0; i < 2400 && sink.got.load() < out.expected; ++i)
      std::this_thread::sleep_for(50ms);
    io.stop();
    loop.join();
    out.got = sink.got.load();
    out.changes_per_s = changes / ((sink.last - from) / 1e9);
    out.writer_per_s = changes / ((wrote - start) / 1e9);
    out.srv_cpu = cpu_seconds(srv.pid) - (drain ? cpu0 : 0);
    out.cli_cpu = cpu_seconds(getpid()) - cli0;
    out.seconds = (sink.last - from) / 1e9;
    return out;
  };
  auto run_phase = [&](bool broadcast) {
    DbcastPhase out;
    out.broadcast = broadcast;
    const double cpu_before = cpu_seconds(srv.pid);
    out.live = throughput(broadcast, false);
    out.live.srv_cpu -= cpu_before;
    out.drain = throughput(broadcast, true);
    // Latency: one writer at `rate` commits/s for `seconds`.
    asio::io_context io;
    Sink sink;
    sink.keep_latency = true;
    auto clients = connect_phase(io, broadcast, sink);
    std::thread loop([&] { io.run(); });
    const int total = rate * seconds;
    auto conn = rtsync::server::pg::Connection::open(srv.conninfo()).value();
    const auto start = Clock::now();
    for (int i = 0; i < total; ++i) {
      std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000LL / rate));
      if (!conn.exec(insert_sql, {std::to_string(i % projects), std::to_string(now_ns())}).ok()) {
        std::exit(10);
      }
    }
    const std::uint64_t want = std::uint64_t(total) * per_project;
    for (int i = 0; i < 100 && sink.got.load() < want; ++i)
      std::this_thread::sleep_for(50ms);
    io.stop();
    loop.join();
    out.lat = percentiles(sink.lat);
    return out;
  };
  // LISTEN/NOTIFY at `rate`, one listener: `statement` runs with $1 = the time before it.
  auto floor = [&](const std::string& statement) {
    return notify_floor(srv.conninfo(), rate, rate * seconds, statement, [&](int i) {
      return std::vector<std::string>{std::to_string(i % projects), std::to_string(now_ns())};
    });
  };

  const auto pg = run_phase(false);
  const auto bc = run_phase(true);
  const auto bare = floor("select $1::int, pg_notify('bench', $2)");
  const auto same =
      floor("with i as (" + insert_sql + " returning t) select pg_notify('bench', t::text) from i");
  for (const auto* p : {&pg, &bc}) {
    std::printf(
        "| %s, %d sockets (%d × %d), %d single-row commits | live (%d writers): %.0f changes/s, "
        "writers %.0f commits/s, %llu / %llu, server %.2f CPU-s | drain: %.0f changes/s in %.2f "
        "s, %llu / %llu, server %.2f CPU-s, load client %.2f CPU-s | at %d/s: p50 %.2f ms, p99 "
        "%.2f ms (%zu events) |\n",
        p->broadcast ? "Broadcast from Database (private topics)" : "postgres_changes under RLS",
        subs, projects, per_project, changes, writers, p->live.changes_per_s, p->live.writer_per_s,
        (unsigned long long)p->live.got, (unsigned long long)p->live.expected, p->live.srv_cpu,
        p->drain.changes_per_s, p->drain.seconds, (unsigned long long)p->drain.got,
        (unsigned long long)p->drain.expected, p->drain.srv_cpu, p->drain.cli_cpu, rate, p->lat.p50,
        p->lat.p99, p->lat.n);
  }
  std::printf(
      "| floor: LISTEN/NOTIFY, 1 listener, bare pg_notify | | | at %d/s: p50 %.2f ms, p99 "
      "%.2f ms |\n",
      rate, bare.p50, bare.p99);
  std::printf(
      "| floor: LISTEN/NOTIFY, the same INSERT notifying at its commit | | | at %d/s: p50 "
      "%.2f ms, p99 %.2f ms |\n",
      rate, same.p50, same.p99);
  std::printf(
      "| ratios | broadcast / postgres_changes: live %.2f×, drain %.2f× | | broadcast p50 / "
      "floor p50: %.2f× (same INSERT), %.2f× (bare) |\n",
      bc.live.changes_per_s / std::max(pg.live.changes_per_s, 1e-9),
      bc.drain.changes_per_s / std::max(pg.drain.changes_per_s, 1e-9),
      bc.lat.p50 / std::max(same.p50, 1e-9), bc.lat.p50 / std::max(bare.p50, 1e-9));
  stop_server(srv);
  const bool all = pg.live.got == pg.live.expected && bc.live.got == bc.live.expected &&
                   pg.drain.got == pg.drain.expected && bc.drain.got == bc.drain.expected;
  return all ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr
        << "usage: bench_server latency|cluster|throughput|fanout|idle|presence|dbcast [options]\n";
    return 2;
  }
  std::string mode = argv[1];
  if (mode == "latency") return bench_latency(argc, argv);
  if (mode == "cluster") return bench_cluster(argc, argv);
  if (mode == "throughput") return bench_throughput(argc, argv);
  if (mode == "fanout") return bench_fanout(argc, argv);
  if (mode == "idle") return bench_idle(argc, argv);
  if (mode == "presence") return bench_presence(argc, argv);
  if (mode == "dbcast") return bench_dbcast(argc, argv);
  std::cerr << "unknown mode " << mode << "\n";
  return 2;
}
