// The demo's worker simulator: creates tasks and moves them through their lifecycle the way the
// original app's GPU workers do, writing as the service role straight into PostgreSQL, and
// announces each change with a `task-update` broadcast through the server's REST broadcast
// endpoint (POST /realtime/v1/api/broadcast, service_role JWT).
//
// Lifecycle of a task: INSERT (Queued) → after 0.3–1.5 s In Progress (or, 10 %, Cancelled) →
// after 0.5–3 s Complete (75 %), Failed (20 %) or Cancelled (5 %). A completed task gets a
// generation (type "video" for video tasks, else "image") placed in one of its project's shots
// (30 % unpositioned). `rate` new tasks per second, spread over the projects.
//
// Each tick (every `tick`, timers::Worker) runs its writes in one transaction, then posts one
// broadcast batch with a message per changed task to topic "task-updates:<project id>":
//   {"type":"TASKS_STATUS_UPDATE","payload":{"projectId","taskId","status","updated_at"}}
// Broadcast failures (server down) are counted, never fatal; a lost database connection is
// reopened on the next tick.
//
// Thread safety: the worker runs on its own event loop thread; start/stop/stats/changes may be
// called from any other thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"

namespace rtsync::app {

namespace timers {
// A worker tick, and the end of a timed `rtsync bench`/worker run.
inline constexpr core::TimerId Worker{"Worker"};
}  // namespace timers

struct WorkerProject {
  std::string id;
  std::string name;
  std::vector<std::string> shot_ids;
};

struct WorkerOptions {
  std::string conninfo;     // libpq; the role must be allowed to SET ROLE service_role
  std::string http_url;     // the server ("http://127.0.0.1:4000"); empty: no broadcasts
  std::string service_key;  // service_role JWT for the broadcast endpoint
  std::vector<WorkerProject> projects;
  double rate = 2.0;  // new tasks per second
  std::uint64_t seed = 1;
  std::chrono::milliseconds tick{50};
  std::size_t max_active = 2000;  // no new task while this many are unfinished
  std::string worker_id = "demo-worker-1";
};

// One write the worker committed.
struct WorkerChange {
  std::string task_id;
  std::string project_id;
  std::string status;  // the status after the change
  std::string
      updated_at;  // the row's updated_at (created_at for an insert), as PostgreSQL prints it
  std::uint64_t transaction = 0;  // changes with the same number were committed together
};

struct WorkerStats {
  std::uint64_t created = 0;
  std::uint64_t updated = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t generations = 0;
  std::uint64_t broadcasts_sent = 0;    // messages accepted by the server (202)
  std::uint64_t broadcasts_failed = 0;  // messages in batches that failed
  std::uint64_t db_errors = 0;
  std::uint64_t active = 0;
};

class Worker {
 public:
  explicit Worker(WorkerOptions options);
  ~Worker();  // stop()
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Connects, registers the worker row and starts ticking. Errc::io when the database is
  // unreachable.
  Result<void> start();
  // Stops ticking and waits for the broadcasts in flight (bounded); idempotent.
  void stop();
  // Pauses / resumes task creation and transitions (the loop keeps running).
  void set_paused(bool paused);

  WorkerStats stats() const;
  // Every committed change, in commit order.
  std::vector<WorkerChange> changes() const;
  // {created, updated, completed, failed, cancelled, generations, active, broadcastsSent,
  //  broadcastsFailed, dbErrors, rate}
  json::value diagnostics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtsync::app
