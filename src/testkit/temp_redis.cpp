#include "rtsync/testkit/temp_redis.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "local_ports.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::testkit {

namespace {

constexpr const char* kDebianBinary = "/usr/bin/redis-server";
constexpr std::string_view kPortTaken = "Address already in use";

std::string find_binary() {
  if (const char* env = std::getenv("RTSYNC_REDIS_SERVER"); env && *env) return env;
  if (const char* path = std::getenv("PATH"); path && *path) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      const std::string_view dir = rest.substr(0, colon);
      if (!dir.empty()) {
        std::string candidate = std::string(dir) + "/redis-server";
        if (detail::is_executable(candidate)) return candidate;
      }
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  return detail::is_executable(kDebianBinary) ? kDebianBinary : std::string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One blocking PING on loopback, each step bounded: true when the answer is +PONG.
bool answers_ping(std::uint16_t port) {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  timeval tv{};
  tv.tv_usec = 500'000;
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    constexpr std::string_view kPing = "*1\r\n$4\r\nPING\r\n";
    if (::send(s, kPing.data(), kPing.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(kPing.size())) {
      std::string got;
      char buf[64];
      while (got.size() < 7) {
        const ssize_t n = ::recv(s, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
      ok = got.rfind("+PONG\r\n", 0) == 0;
    }
  }
  ::close(s);
  return ok;
}

}  // namespace

Result<std::unique_ptr<TempRedis>> TempRedis::start(std::chrono::milliseconds timeout) {
  std::unique_ptr<TempRedis> r(new TempRedis());
  r->binary_ = find_binary();
  if (r->binary_.empty()) {
    return make_error(Errc::not_found,
                      "redis-server not found on PATH or at /usr/bin/redis-server: install the "
                      "package `redis-server` or set RTSYNC_REDIS_SERVER");
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/rtsync-redis-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    return make_error(Errc::io, fmt::format("mkdtemp {}: {}", tmpl, std::strerror(errno)));
  }
  r->folder_ = tmpl;
  r->log_file_ = r->folder_ + "/redis.log";
  Result<void> last = make_error(Errc::io, "no free port");
  for (int attempt = 0; attempt < 8; ++attempt) {
    r->port_ = detail::pick_free_port();
    if (r->port_ == 0) continue;
    last = r->spawn(timeout);
    if (last) return r;
    // Someone took the port between our probe and redis-server's bind: try another one.
    if (last.error().message.find(kPortTaken) == std::string::npos) break;
  }
  return last.error();
}

TempRedis::~TempRedis() {
  kill();
  if (!folder_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(folder_, ec);
    if (ec) log::get("TempRedis")->warn("removing {}: {}", folder_, ec.message());
  }
}

std::string TempRedis::url() const {
  return fmt::format("redis://127.0.0.1:{}", port_);
}

Result<void> TempRedis::spawn(std::chrono::milliseconds timeout) {
  // Everything the child needs is prepared before fork(): between fork and exec a threaded
  // process may only make async-signal-safe calls.
  std::vector<std::string> args = {
      binary_,  "--port", std::to_string(port_), "--bind", "127.0.0.1",   "--dir", folder_,
      "--save", "",       "--appendonly",        "no",     "--daemonize", "no",    "--logfile",
      ""};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // Restarts append to the same log: this start's output begins at `offset`.
  const std::size_t offset = read_all(log_file_).size();
  const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return make_error(Errc::io, fmt::format("open {}: {}", log_file_, std::strerror(errno)));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return make_error(Errc::io, fmt::format("fork: {}", std::strerror(err)));
  }
  if (pid == 0) {
    // Dies with the thread that started it, so a crashed test leaves no server behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    // The test's own sockets (a client connected to the previous server, say) stay with it.
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      const std::string out = read_all(log_file_);
      return make_error(Errc::io, fmt::format("redis-server exited at start (port {}): {}", port_,
                                              out.substr(std::min(offset, out.size()))));
    }
    if (answers_ping(port_)) return {};
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill();
  return make_error(Errc::timeout,
                    fmt::format("redis-server did not answer PING on port {} within {} ms: {}",
                                port_, timeout.count(), log_tail()));
}

void TempRedis::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = 0;
}

Result<void> TempRedis::restart(std::chrono::milliseconds timeout) {
  kill();
  // The port was ours a moment ago; redis-server binds with SO_REUSEADDR, so connections of the
  // killed server left in TIME_WAIT do not stand in the way. Another process taking it is not
  // retried: the clients under test are pointed at this port.
  return spawn(timeout);
}

std::string TempRedis::log_tail(std::size_t max_bytes) const {
  const std::string text = read_all(log_file_);
  return text.size() <= max_bytes ? text : text.substr(text.size() - max_bytes);
}

}  // namespace rtsync::testkit
