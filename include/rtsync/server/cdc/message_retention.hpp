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

struct MessageRetentionOptions {
  core::Duration retention = std::chrono::hours(72);
  core::Duration interval = std::chrono::minutes(10);
  std::size_t batch_rows = 10'000;
};

class MessageRetention {
 public:
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

  bool running() const noexcept;  // a run is in progress
  std::uint64_t runs() const noexcept;
  std::uint64_t deleted() const noexcept;   // rows deleted over all runs
  std::uint64_t failures() const noexcept;  // runs ended by an error
  json::value diagnostics() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::cdc
