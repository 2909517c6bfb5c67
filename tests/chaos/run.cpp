#include "run.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <thread>

#include "world.hpp"

namespace rtsync::chaos {

namespace {

using namespace std::chrono_literals;

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

// What `ss` (iproute2) says of the TCP sockets on these local ports: windows, queues, timers
// and retransmissions, for the report of a run that converged late. Empty without `ss`.
std::string tcp_sockets(std::initializer_list<std::uint16_t> ports) {
  std::string filter;
  for (auto p : ports) {
    if (!filter.empty()) filter += " or ";
    filter += "sport = :" + std::to_string(p) + " or dport = :" + std::to_string(p);
  }
  const std::string cmd = "ss -tinmo '( " + filter + " )' 2>/dev/null";
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
      out.append(buf, n);
    ::pclose(f);
  }
  return out;
}

// PostgreSQL's replication connection among the server's: its startup packet asks for
// `replication=database`.
const testkit::ProxyMatch kReplication{std::string("replication\0database", 20)};

// Injects the plan's fault and heals it; returns when it healed.
Result<TimePoint> inject(ChaosWorld& w, const Plan& p) {
  using testkit::CutMode;
  switch (p.fault) {
    case FaultKind::client_cut_reset:
    case FaultKind::token_expiry:  // the cut outlives the access token
      w.client_link().cut(CutMode::reset);
      std::this_thread::sleep_for(p.fault_for);
      w.client_link().clear();
      return Clock::now();
    case FaultKind::client_cut_partition:
      w.client_link().cut(CutMode::partition);
      std::this_thread::sleep_for(p.fault_for);
      w.client_link().clear();
      return Clock::now();
    case FaultKind::server_kill:
      w.server().kill();
      std::this_thread::sleep_for(p.fault_for);
      if (auto r = w.restart_server(); !r.ok()) return r.error();
      return Clock::now();
    case FaultKind::pg_restart_fast:
    case FaultKind::pg_restart_immediate: {
      const auto mode = p.fault == FaultKind::pg_restart_fast
                            ? testkit::TempCluster::StopMode::fast
                            : testkit::TempCluster::StopMode::immediate;
      if (auto r = w.pg().restart(mode); !r.ok()) return r.error();
      return Clock::now();
    }
    case FaultKind::replication_cut:
      w.db_link().cut(CutMode::reset, std::nullopt, kReplication);
      std::this_thread::sleep_for(p.fault_for);
      w.db_link().clear();
      return Clock::now();
    case FaultKind::slow_consumer:
      w.client_link().stall(testkit::Flow::downstream);
      std::this_thread::sleep_for(p.fault_for);
      w.client_link().clear();
      return Clock::now();
  }
  return make_error(Errc::invalid_argument, "unknown fault");
}

// GET /metrics of the server on loopback (plain HTTP/1.1, Connection: close), blocking; empty on
// any failure.
std::string fetch_metrics(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[16384];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// rtsync_resumes_total{outcome="X"} N lines, by outcome.
std::map<std::string, std::size_t> resume_outcomes(const std::string& metrics) {
  std::map<std::string, std::size_t> out;
  const std::string key = "rtsync_resumes_total{outcome=\"";
  for (std::size_t at = metrics.find(key); at != std::string::npos;
       at = metrics.find(key, at + 1)) {
    const std::size_t name = at + key.size();
    const std::size_t quote = metrics.find('"', name);
    const std::size_t space = metrics.find(' ', quote);
    if (quote == std::string::npos || space == std::string::npos) break;
    out[metrics.substr(name, quote - name)] =
        static_cast<std::size_t>(std::strtoull(metrics.c_str() + space + 1, nullptr, 10));
  }
  return out;
}

}  // namespace

RunResult run_chaos(const Plan& plan, const std::string& server_binary, std::string replay) {
  RunResult res;
  res.plan = plan;
  res.replay = std::move(replay);
  const auto started = Clock::now();
  // Printed first, so that even a run that hangs or crashes names its seed.
  std::cout << "chaos: " << plan.describe() << "\nchaos: replay: " << res.replay << std::endl;
  auto finish = [&] {
    res.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return res;
  };

  auto made = ChaosWorld::create(plan, server_binary);
  if (!made.ok()) {
    res.error = "setup: " + made.error().describe();
    return finish();
  }
  auto& w = *made.value();
  auto fail = [&](std::string what) {
    res.error = std::move(what);
    res.diagnostics =
        "server log:\n" + w.server().log_tail() + "\nvictim: " + w.victim().snapshot();
    return finish();
  };
  if (!wait_until([&] { return w.victim().live() && w.attacker().live(); }, 20s))
    return fail("the clients never joined and loaded");

  w.writer().start();
  std::this_thread::sleep_for(plan.warmup);
  auto healed = inject(w, plan);
  if (!healed.ok()) return fail("fault: " + healed.error().describe());
  // A healed partition's held bytes flow at once. When some did not (the proxy's MSS, docs/chaos.md
  // §6), this report found why; it stays for any run that converges late: what the client link
  // passed in the 3 s after the heal, what the victim's socket had seen, and `ss` of both hops
  // (taken for every partition run, since the state at +3 s cannot be read afterwards).
  std::string after_heal;
  if (plan.fault == FaultKind::client_cut_partition) {
    auto describe = [](const testkit::FaultProxyStats& s) {
      return "open " + std::to_string(s.open) + ", bytes up " + std::to_string(s.bytes_upstream) +
             ", down " + std::to_string(s.bytes_downstream);
    };
    after_heal = "client link at the heal: " + describe(w.client_link().stats());
    std::this_thread::sleep_for(3s);
    after_heal += "\nclient link 3 s later: " + describe(w.client_link().stats()) +
                  "\nvictim 3 s later: " + w.victim().snapshot() +
                  "\nTCP sockets of both hops 3 s later:\n" +
                  tcp_sockets({w.client_link().port(), w.server().port()});
  }
  // Keep writing for `after` once the victim is live again, so that the session after its rejoin
  // carries changes too (a reconnect may take the client's whole backoff).
  wait_until([&] { return w.victim().live(); },
             std::chrono::duration_cast<std::chrono::milliseconds>(plan.converge_timeout));
  std::this_thread::sleep_for(plan.after);
  w.writer().stop();
  res.writer_committed = w.writer().committed_changes();
  res.writer_failures = w.writer().failures();

  // Quiet now. The victim may still be working through a backlog (a healed partition, a change
  // stream catching up): check until every change is accounted for and the cache equals the
  // database, bounded; then once more a moment later, so that late duplicates or leaks show.
  auto db = w.database_rows();
  if (!db.ok()) return fail("database: " + db.error().describe());
  auto committed = w.committed();
  if (!committed.ok()) return fail("audit: " + committed.error().describe());
  CheckOptions o;
  o.healed = healed.value();
  const auto deadline = Clock::now() + plan.converge_timeout;
  for (;;) {
    res.report = check(committed.value(), w.victim().history(), db.value(), o);
    if (res.report.ok() || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(250ms);
  }
  if (res.report.ok()) {
    std::this_thread::sleep_for(1s);
    res.report = check(committed.value(), w.victim().history(), db.value(), o);
  }
  res.attacker_leaks = check_attacker(w.attacker().history(), res.attacker_problems);
  res.resume_outcomes = resume_outcomes(fetch_metrics(w.server().port()));
  if (!res.ok()) {
    res.diagnostics =
        "server log:\n" + w.server().log_tail() + "\nvictim: " + w.victim().snapshot();
  } else if (!after_heal.empty() && res.report.convergence && *res.report.convergence > 5s) {
    res.diagnostics = after_heal + "\nserver log:\n" + w.server().log_tail();
  }
  return finish();
}

void print(const RunResult& r, std::ostream& out) {
  out << "chaos: " << (r.ok() ? "OK" : "FAILED") << " in " << static_cast<int>(r.seconds) << " s, "
      << r.plan.describe() << "\n";
  if (!r.error.empty()) out << "chaos:   error: " << r.error << "\n";
  out << "chaos:   " << r.report.summary() << "\n";
  if (!r.resume_outcomes.empty()) {
    out << "chaos:   server resume outcomes:";
    for (const auto& [outcome, n] : r.resume_outcomes)
      if (n > 0) out << " " << outcome << " " << n;
    out << "\n";
  }
  out << "chaos:   attacker leaks " << r.attacker_leaks << "; writer committed "
      << r.writer_committed << " changes (" << r.writer_failures << " failed transactions)\n";
  for (const auto& p : r.report.problems)
    out << "chaos:   " << p << "\n";
  for (const auto& p : r.attacker_problems)
    out << "chaos:   " << p << "\n";
  if (!r.ok()) out << "chaos:   replay: " << r.replay << "\n";
  // A failed run's, or a partition run's that converged late (run_chaos).
  if (!r.diagnostics.empty()) out << r.diagnostics << "\n";
  out.flush();
}

}  // namespace rtsync::chaos
