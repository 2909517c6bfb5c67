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
// takes a tenth of the time initdb does. A cluster created with a `prepare` step and a
// `template_key` (a migrated schema, say) likewise copies a template the first such cluster left
// after preparing it, so later clusters skip the preparation too; each cluster is still its own
// copy. RTSYNC_PG_TEMPLATE=0 runs initdb (and `prepare`) every time.
//
// The settings TempCluster chooses (port, socket folder, logical decoding, `extra_config`) live in
// `rtsync.conf` beside postgresql.conf, rewritten at every start, so a template carries none of
// the cluster that made it.
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
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/core/result.hpp"

namespace rtsync::testkit {

class TempCluster;

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
  // Runs once the new cluster is up, before create() returns (create fails with its error). With
  // a non-empty `template_key` the prepared data folder is kept as a template in the parent
  // folder and later clusters with the same key start from a copy of it without running
  // `prepare`. The key must change whenever what `prepare` does changes (include a hash of the SQL
  // it runs); `extra_config` is not part of the template.
  std::function<Result<void>(TempCluster&)> prepare;
  std::string template_key;
};

class TempCluster {
 public:
  enum class StopMode { fast, immediate };

  // initdb (or a template copy) + configure + start, then `prepare` unless the data came from its
  // template. Errors: Errc::not_found when the binaries (package `postgresql-15`) or `runuser`
  // (package `util-linux`) are missing; Errc::io when a step fails (the message carries the tail
  // of its output); whatever `prepare` returns.
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
  Result<void> prepare_data();
  Result<void> publish_template(const std::string& path);
  Result<void> write_config();
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
  std::string prepared_template_;  // where the prepared template lives (empty: none)
  bool from_prepared_ = false;     // the data folder is a copy of the prepared template
  int port_ = 0;
  int pid_ = 0;
  bool as_postgres_user_ = false;
  std::string runuser_;
  int watchdog_pid_ = -1;
  int watchdog_fd_ = -1;
  bool destroyed_ = false;
};

}  // namespace rtsync::testkit
