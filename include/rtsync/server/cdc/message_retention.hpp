// MessageRetention: deletes Broadcast-from-Database messages older than the retention period
// (72 h by default, as Supabase keeps them) on a schedule, through a MessageStore.
//
//   start()    the first run at once, then one `interval` after each run finished
//              (timers::Retention);
//   a run      cutoff = the scheduler's wall clock − `retention` (a message inserted exactly at
//              the cutoff stays), then delete_before(cutoff, batch_rows) again and again while a
//              batch deleted batch_rows rows (each batch a separate statement, so replays are
//              served between them), until one deletes fewer;
//   errors     a failed batch ends the run (logged, counted); the next run comes one interval
//              later.
// retention <= 0 disables it (start() does nothing).
//
// Thread safety: construct, call and destroy on the scheduler's loop; `store` must outlive it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/message_store.hpp"

namespace rtsync::server::cdc {

// When and how much retention deletes.
struct MessageRetentionOptions {
  core::Duration retention = std::chrono::hours(72);   // messages older than this go; <= 0: none
  core::Duration interval = std::chrono::minutes(10);  // from the end of a run to the next
  std::size_t batch_rows = 10'000;                     // rows per delete statement
};

// The retention schedule over a MessageStore (see the file comment).
class MessageRetention {
 public:
  // Does nothing until start() or run_now().
  MessageRetention(core::Scheduler& scheduler, MessageStore& store,
                   MessageRetentionOptions options = {});
  // Stops; callers of run_now() still waiting get Errc::closed.
  ~MessageRetention();
  MessageRetention(const MessageRetention&) = delete;
  MessageRetention& operator=(const MessageRetention&) = delete;

  // Schedules the first run now (posted) and the following ones. Idempotent.
  void start();
  // Cancels the schedule; a batch in flight finishes without scheduling more.
  void stop();
  // Starts a run now (the schedule then continues one interval after it); when a run is already
  // in progress, `done` waits for that one. `done` gets the rows the run deleted, or its error.
  void run_now(std::function<void(Result<std::size_t>)> done = {});

  bool running() const noexcept;            // a run is in progress
  std::uint64_t runs() const noexcept;      // runs finished, with or without an error
  std::uint64_t deleted() const noexcept;   // rows deleted over all runs
  std::uint64_t failures() const noexcept;  // runs ended by an error
  // {retention_ms, interval_ms, running, runs, deleted, failures, last_cutoff_ms}
  json::value diagnostics() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::cdc
