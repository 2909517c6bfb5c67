#include "rtsync/testkit/temp_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "local_ports.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::testkit {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultBin = "/usr/lib/postgresql/15/bin";

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::set<TempCluster*>& registry() {
  static std::set<TempCluster*> r;
  return r;
}

std::string read_tail(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  const std::size_t from = size > max_bytes ? size - max_bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

bool process_alive(int pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0) return errno == EPERM;
  // A zombie still answers kill(0); it is gone for our purposes.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (stat && std::getline(stat, line)) {
    const auto close_paren = line.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < line.size()) {
      return line[close_paren + 2] != 'Z';
    }
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<TempCluster>> TempCluster::create(TempClusterOptions options) {
  std::unique_ptr<TempCluster> c(new TempCluster());
  c->options_ = std::move(options);
  if (auto r = c->init(); !r) {
    (void)c->destroy();
    return r.error();
  }
  return c;
}

TempCluster::~TempCluster() {
  if (auto r = destroy(); !r) {
    log::get("TempCluster")->warn("TempCluster cleanup: {}", r.error().message);
  }
}

Result<void> TempCluster::init() {
  bin_dir_ = options_.bin_dir;
  if (bin_dir_.empty()) {
    const char* env = std::getenv("RTSYNC_PG_BIN");
    bin_dir_ = env && *env ? env : kDefaultBin;
  }
  for (const char* prog : {"initdb", "pg_ctl", "postgres"}) {
    if (!detail::is_executable(bin_dir_ + "/" + prog)) {
      return make_error(Errc::not_found,
                        fmt::format("PostgreSQL program {}/{} not found: install the package "
                                    "`postgresql-15` or set RTSYNC_PG_BIN to its bin folder",
                                    bin_dir_, prog));
    }
  }

  uid_t pg_uid = 0;
  gid_t pg_gid = 0;
  if (::geteuid() == 0) {
    for (const char* p :
         {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"}) {
      if (detail::is_executable(p)) {
        runuser_ = p;
        break;
      }
    }
    if (runuser_.empty()) {
      return make_error(Errc::not_found,
                        "running as root needs `runuser` (package `util-linux`) to start "
                        "PostgreSQL as the `postgres` user");
    }
    const passwd* pw = ::getpwnam("postgres");
    if (!pw) {
      return make_error(Errc::not_found,
                        "running as root needs the `postgres` system user (package "
                        "`postgresql-15` creates it)");
    }
    pg_uid = pw->pw_uid;
    pg_gid = pw->pw_gid;
    as_postgres_user_ = true;
  }

  std::string parent = options_.parent_dir;
  if (parent.empty()) {
    const char* t = std::getenv("TMPDIR");
    parent = t && *t ? t : "/tmp";
  }
  if (parent.find('\'') != std::string::npos) {
    return make_error(Errc::invalid_argument, "temporary parent folder name contains a quote");
  }
  std::string tmpl = parent + "/rtsync-pg-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    return make_error(Errc::io, fmt::format("mkdtemp in {}: {}", parent, std::strerror(errno)));
  }
  folder_ = tmpl;
  {
    std::lock_guard lock(registry_mutex());
    registry().insert(this);
  }
  start_watchdog();
  if (as_postgres_user_ && ::chown(folder_.c_str(), pg_uid, pg_gid) != 0) {
    return make_error(Errc::io, fmt::format("chown {}: {}", folder_, std::strerror(errno)));
  }
  data_dir_ = folder_ + "/data";
  log_file_ = folder_ + "/postgres.log";
  cmd_log_ = folder_ + "/commands.log";

  if (auto r = init_data_dir(parent); !r) return r;

  Result<void> last = make_error(Errc::io, "no free port");
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int port = detail::pick_free_port();
    if (port == 0) continue;
    last = start_on(port);
    if (last) return prepare_data();
    const std::string log = read_tail(log_file_, 8000);
    const bool port_clash = log.find("could not bind") != std::string::npos ||
                            log.find("Address already in use") != std::string::npos ||
                            log.find("could not create any TCP/IP sockets") != std::string::npos;
    if (!port_clash) return last;
  }
  return last;
}

// Runs `prepare` on a cluster that did not come from its template, then (with a key) stops it
// cleanly, publishes a copy of the prepared data folder and starts again.
Result<void> TempCluster::prepare_data() {
  if (!options_.prepare || from_prepared_) return {};
  if (auto r = options_.prepare(*this); !r) return r;
  if (prepared_template_.empty()) return {};
  if (auto r = stop(StopMode::fast); !r) return r;
  (void)publish_template(prepared_template_);  // no template this time; this cluster is fine
  return start();
}

// Builds a copy of the data folder under a unique name, marks it complete and renames it into
// place (atomic; fails harmlessly when a concurrent run won).
Result<void> TempCluster::publish_template(const std::string& path) {
  const std::string staging = folder_ + "/template";
  if (auto r = run({"/bin/mkdir", staging}, "template folder"); !r) return r;
  if (auto r = run({"/bin/cp", "-a", data_dir_, staging + "/data"}, "template copy"); !r) {
    return r;
  }
  if (auto r = run({"/bin/touch", staging + "/complete"}, "template marker"); !r) return r;
  std::error_code ec;
  std::filesystem::rename(staging, path, ec);
  if (ec) std::filesystem::remove_all(staging, ec);
  return {};
}

// This cluster's settings, rewritten at every start so that a copied data folder carries none of
// the cluster it came from. postgresql.conf includes the file once.
Result<void> TempCluster::write_config() {
  const std::string main_conf = data_dir_ + "/postgresql.conf";
  {
    std::ifstream in(main_conf);
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find("include 'rtsync.conf'") == std::string::npos) {
      std::ofstream conf(main_conf, std::ios::app);
      conf << "\n# rtsync TempCluster settings\ninclude 'rtsync.conf'\n";
      if (!conf) return make_error(Errc::io, "writing postgresql.conf");
    }
  }
  std::ofstream conf(data_dir_ + "/rtsync.conf", std::ios::trunc);
  conf << "# rtsync TempCluster (rewritten at every start)\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "port = " << port_ << "\n"
       << "unix_socket_directories = '" << folder_ << "'\n"
       << "wal_level = logical\n"
       << "max_replication_slots = 10\n"
       << "max_wal_senders = 10\n"
       << "fsync = off\n"
       // Not off: with asynchronous commit the WAL writer flushes only every
       // wal_writer_delay (200 ms) and walsenders send only flushed WAL, which put ~135 ms
       // (p50) between commit and the change stream. With fsync off a synchronous commit
       // costs no disk wait.
       << "synchronous_commit = on\n"
       << "full_page_writes = off\n";
  for (const auto& line : options_.extra_config)
    conf << line << "\n";
  if (!conf) return make_error(Errc::io, "writing rtsync.conf");
  return {};
}

// initdb takes seconds; a copy of a freshly initialised data folder takes a tenth of that and is
// the same cluster. The first cluster of a PostgreSQL build leaves such a copy (the template)
// beside the temporary folders, named after the build, and later clusters copy it. Concurrent
// first runs each initdb and one of them publishes its copy (rename is atomic).
Result<void> TempCluster::init_data_dir(const std::string& parent) {
  const char* env = std::getenv("RTSYNC_PG_TEMPLATE");
  const bool use_template = !(env && std::string_view(env) == "0");
  struct stat st {};
  std::string tmpl;
  if (use_template && ::stat((bin_dir_ + "/postgres").c_str(), &st) == 0) {
    tmpl = fmt::format(
        "{}/rtsync-pg-template-{:x}-{:x}-{}", parent, std::hash<std::string>()(bin_dir_),
        static_cast<std::uint64_t>(st.st_mtime) ^ static_cast<std::uint64_t>(st.st_size),
        ::geteuid());
    std::error_code ec;
    if (options_.prepare && !options_.template_key.empty()) {
      prepared_template_ =
          fmt::format("{}-{:x}", tmpl, std::hash<std::string>()(options_.template_key));
      if (std::filesystem::exists(prepared_template_ + "/complete", ec)) {
        if (run({"/bin/cp", "-a", prepared_template_ + "/data", data_dir_},
                "copying the prepared template")) {
          from_prepared_ = true;
          return {};
        }
        std::filesystem::remove_all(data_dir_, ec);
      }
    }
    if (std::filesystem::exists(tmpl + "/complete", ec)) {
      if (run({"/bin/cp", "-a", tmpl + "/data", data_dir_}, "copying the initdb template")) {
        return {};
      }
      // A template that cannot be copied is ignored: initdb below, into an empty folder.
      std::filesystem::remove_all(data_dir_, ec);
    }
  }
  if (auto r = run({bin_dir_ + "/initdb", "-D", data_dir_, "-A", "trust", "-U", "postgres", "-E",
                    "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                   "initdb");
      !r) {
    return r;
  }
  if (tmpl.empty()) return {};
  (void)publish_template(tmpl);  // no template this time; this cluster is fine
  return {};
}

Result<void> TempCluster::start_on(int port) {
  port_ = port;
  if (auto r = write_config(); !r) return r;
  auto r = run({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-l", log_file_, "-w", "-t",
                std::to_string(options_.timeout.count()), "-s", "start"},
               "pg_ctl start");
  if (!r) return r;
  pid_ = read_pid();
  return {};
}

Result<void> TempCluster::start() {
  if (destroyed_) return make_error(Errc::closed, "cluster was destroyed");
  if (pid_ > 0) return {};
  auto r = run({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-l", log_file_, "-w", "-t",
                std::to_string(options_.timeout.count()), "-s", "start"},
               "pg_ctl start");
  if (!r) return r;
  pid_ = read_pid();
  return {};
}

Result<void> TempCluster::stop(StopMode mode) {
  if (pid_ <= 0) return {};
  const int pid = pid_;
  auto r = run(
      {bin_dir_ + "/pg_ctl", "-D", data_dir_, "-m", mode == StopMode::fast ? "fast" : "immediate",
       "-w", "-t", std::to_string(options_.timeout.count()), "-s", "stop"},
      "pg_ctl stop");
  if (!r) {
    // Last resort so that nothing outlives us: SIGQUIT is PostgreSQL's immediate shutdown.
    ::kill(pid, SIGQUIT);
  }
  // pg_ctl -w returns once the pid file is gone; wait (bounded) for the process itself.
  for (int i = 0; i < 1000 && process_alive(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (process_alive(pid)) ::kill(pid, SIGKILL);
  pid_ = 0;
  return r;
}

Result<void> TempCluster::restart(StopMode mode) {
  if (auto r = stop(mode); !r) return r;
  return start();
}

Result<void> TempCluster::destroy() {
  if (destroyed_) return {};
  destroyed_ = true;
  Result<void> result = stop(StopMode::fast);
  if (!folder_.empty()) {
    std::error_code ec;
    fs::remove_all(folder_, ec);
    if (ec && result) {
      result = make_error(Errc::io, fmt::format("removing {}: {}", folder_, ec.message()));
    }
  }
  stop_watchdog();
  {
    std::lock_guard lock(registry_mutex());
    registry().erase(this);
  }
  return result;
}

void TempCluster::cleanup_all() {
  std::set<TempCluster*> all;
  {
    std::lock_guard lock(registry_mutex());
    all = registry();
  }
  for (TempCluster* c : all)
    (void)c->destroy();
}

std::string TempCluster::conninfo(std::string_view dbname) const {
  return fmt::format("host=127.0.0.1 port={} dbname={} user=postgres", port_, dbname);
}

std::string TempCluster::log_tail(std::size_t max_bytes) const {
  return read_tail(log_file_, max_bytes);
}

int TempCluster::read_pid() const {
  std::ifstream in(data_dir_ + "/postmaster.pid");
  int pid = 0;
  in >> pid;
  return pid;
}

Result<void> TempCluster::run(const std::vector<std::string>& args, const std::string& what) {
  std::vector<std::string> full;
  if (as_postgres_user_) full = {runuser_, "-u", "postgres", "--"};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  const int out = ::open(cmd_log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t child = ::fork();
  if (child < 0) {
    if (out >= 0) ::close(out);
    if (devnull >= 0) ::close(devnull);
    return make_error(Errc::io, fmt::format("{}: fork: {}", what, std::strerror(errno)));
  }
  if (child == 0) {
    // The caller's working folder may be unreadable for `postgres` (e.g. /root).
    if (::chdir(folder_.c_str()) != 0) _exit(126);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  if (out >= 0) ::close(out);
  if (devnull >= 0) ::close(devnull);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  std::string detail = read_tail(cmd_log_, 2000);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' '))
    detail.pop_back();
  if (what.rfind("pg_ctl", 0) == 0) {
    const std::string log = read_tail(log_file_, 1500);
    if (!log.empty()) detail += "\nserver log:\n" + log;
  }
  return make_error(Errc::io, fmt::format("{} failed (status {}): {}", what,
                                          WIFEXITED(status) ? WEXITSTATUS(status) : -1, detail));
}

// The watchdog is a shell in its own session that blocks reading a pipe only this process holds
// open. When this process ends in any way the read returns EOF and the shell stops the
// postmaster and removes the folder; after a normal destroy() there is nothing left for it to do.
void TempCluster::start_watchdog() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  const std::string script = fmt::format(
      "cat >/dev/null 2>&1; F='{}'; "
      "if [ -f \"$F/data/postmaster.pid\" ]; then P=$(head -n1 \"$F/data/postmaster.pid\"); "
      "kill -QUIT \"$P\" 2>/dev/null; i=0; "
      "while kill -0 \"$P\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; "
      "kill -KILL \"$P\" 2>/dev/null; fi; rm -rf \"$F\"",
      folder_);
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    if (devnull >= 0) ::close(devnull);
    return;
  }
  if (child == 0) {
    ::setsid();  // out of the terminal's process group: Ctrl-C must not kill the watchdog
    ::dup2(fds[0], 0);
    if (devnull >= 0) {
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[0]);
  if (devnull >= 0) ::close(devnull);
  watchdog_fd_ = fds[1];
  watchdog_pid_ = child;
}

void TempCluster::stop_watchdog() {
  if (watchdog_fd_ >= 0) {
    ::close(watchdog_fd_);
    watchdog_fd_ = -1;
  }
  if (watchdog_pid_ > 0) {
    int status = 0;
    while (::waitpid(watchdog_pid_, &status, 0) < 0 && errno == EINTR) {
    }
    watchdog_pid_ = -1;
  }
}

}  // namespace rtsync::testkit
