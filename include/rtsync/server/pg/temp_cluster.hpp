// A throwaway PostgreSQL cluster for tests, the demo and benchmarks (docs/design.md §3):
// `initdb` in a fresh temporary folder (trust auth, UTF8, locale C), logical decoding on,
// loopback only on a free port, durability off for speed (fsync, full_page_writes off;
// synchronous_commit stays on so committed WAL reaches the change stream at once), started with
// `pg_ctl -w`.
//
// Binaries come from $RTSYNC_PG_BIN, else /usr/lib/postgresql/15/bin (Debian's postgresql-15).
// initdb refuses to run as root: as root the folder is given to the `postgres` system user and
// every PostgreSQL program runs through `runuser -u postgres --`.
//
// The data folder is a copy of a template that the first cluster of a PostgreSQL build leaves in
// the same parent folder (`rtsync-pg-template-*`, ~40 MB, a freshly initialised cluster): copying
// takes a tenth of the time initdb does. RTSYNC_PG_TEMPLATE=0 runs initdb every time.
//
// Nothing else is left behind: the destructor stops the server (`pg_ctl stop -m fast`) and removes
// the folder. A watchdog process started with the cluster does the same if this process dies
// without running destructors (crash, SIGKILL, an unhandled SIGTERM/SIGINT). Programs that handle
// SIGINT/SIGTERM themselves call `TempCluster::cleanup_all()` from their handler's loop callback.
//
// Thread safety: one TempCluster is driven by one thread; `cleanup_all()` may be called from any
// thread (not from a signal handler).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/core/result.hpp"

namespace rtsync::server::pg {

struct TempClusterOptions {
  // Folder holding initdb, pg_ctl, postgres. Empty: $RTSYNC_PG_BIN, else
  // /usr/lib/postgresql/15/bin.
  std::string bin_dir;
  // Extra postgresql.conf lines ("max_connections = 200").
  std::vector<std::string> extra_config;
  // Parent of the temporary folder. Empty: $TMPDIR, else /tmp.
  std::string parent_dir;
  // Bound for pg_ctl start/stop waits.
  std::chrono::seconds timeout{60};
};

class TempCluster {
 public:
  enum class StopMode { fast, immediate };

  // initdb + configure + start. Errors: Errc::not_found when the binaries (package
  // `postgresql-15`) or `runuser` (package `util-linux`) are missing; Errc::io when a step fails
  // (the message carries the tail of its output).
  static Result<std::unique_ptr<TempCluster>> create(TempClusterOptions options = {});

  ~TempCluster();  // stop (fast) + remove the folder
  TempCluster(const TempCluster&) = delete;
  TempCluster& operator=(const TempCluster&) = delete;

  // "host=127.0.0.1 port=N dbname=postgres user=postgres"
  std::string conninfo(std::string_view dbname = "postgres") const;
  int port() const noexcept { return port_; }
  const std::string& folder() const noexcept { return folder_; }
  const std::string& data_dir() const noexcept { return data_dir_; }
  // PID of the running postmaster, 0 when stopped.
  int postmaster_pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0; }

  // Stops the server (idempotent). `immediate` simulates a crash: no shutdown checkpoint.
  Result<void> stop(StopMode mode = StopMode::fast);
  // Starts it again on the same port and data (idempotent).
  Result<void> start();
  Result<void> restart(StopMode mode = StopMode::fast);
  // Stops and removes the folder (idempotent); the destructor calls it.
  Result<void> destroy();

  // The last lines of the server log, for test failure messages.
  std::string log_tail(std::size_t max_bytes = 4000) const;

  // Stops and removes every live TempCluster of this process. Idempotent; for graceful shutdown
  // paths (the demo's SIGINT/SIGTERM handler) — not async-signal-safe.
  static void cleanup_all();

 private:
  TempCluster() = default;
  Result<void> init();
  Result<void> init_data_dir(const std::string& parent);
  Result<void> start_on(int port);
  Result<void> run(const std::vector<std::string>& args, const std::string& what);
  void start_watchdog();
  void stop_watchdog();
  int read_pid() const;

  TempClusterOptions options_;
  std::string bin_dir_;
  std::string folder_;
  std::string data_dir_;
  std::string log_file_;
  std::string cmd_log_;
  int port_ = 0;
  int pid_ = 0;
  bool as_postgres_user_ = false;
  std::string runuser_;
  int watchdog_pid_ = -1;
  int watchdog_fd_ = -1;
  bool destroyed_ = false;
};

}  // namespace rtsync::server::pg
