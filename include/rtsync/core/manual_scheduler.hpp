// Virtual time for tests: nothing runs until the test advances the clock.
//
// `advance(d)` fires every operation due within `d`, in due-time order, ties broken by insertion
// order; operations scheduled by those callbacks fire too when they fall inside the window. Posted
// work is an operation due "now". Time then rests at exactly now + d.
//
// Thread safety: single-threaded, like the loop it stands in for. The thread that created it or
// last drove it (advance, run_ready, run_until, run_all) is "the loop thread" for
// on_loop_thread() and so for the RTSYNC_ASSERT_ON_LOOP debug checks.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <thread>
#include <vector>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::core {

class ManualScheduler final : public Scheduler {
 public:
  // Virtual monotonic time starts at `start` (a nonzero value keeps "0 means unset" bugs visible);
  // wall time starts at `wall_start`.
  explicit ManualScheduler(TimePoint start = TimePoint{std::chrono::hours(1)},
                           WallTime wall_start = WallTime{
                               std::chrono::milliseconds(1767225600000)});

  TimePoint now() const override { return now_; }
  WallTime wall_now() const override;
  Timer schedule(Duration delay, TimerId id, std::function<void()> fn) override;
  void post(std::function<void()> fn) override;
  bool on_loop_thread() const noexcept override { return owner_ == std::this_thread::get_id(); }

  // Moves time forward by `d`, firing what falls due. Returns how many operations ran.
  std::size_t advance(Duration d);
  // Runs what is due now (posted work included) without moving time.
  std::size_t run_ready() { return advance(Duration::zero()); }
  // Advances to the next pending operation with `id`, firing everything due before it, then fires
  // it. Returns false (time unchanged) if none is pending.
  bool run_until(TimerId id);
  // Fires everything pending, advancing time as needed, at most `limit` operations (guards against
  // self-rescheduling timers). Returns how many ran.
  std::size_t run_all(std::size_t limit = 100000);

  bool pending(TimerId id) const;
  std::size_t pending_count(TimerId id) const;
  std::size_t pending_count() const;
  // Due time of the earliest pending operation with `id`.
  std::optional<TimePoint> next_due(TimerId id) const;
  // Delay from now to next_due(id).
  std::optional<Duration> time_until(TimerId id) const;

 private:
  std::shared_ptr<detail::TimerState> pop_next(TimePoint limit);
  void compact();

  TimePoint now_;
  TimePoint start_;
  std::atomic<std::thread::id> owner_{std::this_thread::get_id()};
  WallTime wall_start_;
  std::uint64_t next_seq_ = 0;
  // Min-heap on (due, seq); cancelled entries are dropped lazily.
  std::vector<std::shared_ptr<detail::TimerState>> heap_;
};

}  // namespace rtsync::core
