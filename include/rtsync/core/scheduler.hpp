// Time, injected: the one seam through which every rtsync component reads the clock and schedules
// work (Envoy's TimeSource, Firestore's AsyncQueue). Nothing in rtsync calls a clock directly.
//
// Two implementations:
//   - AsioScheduler (event_loop.hpp): steady clock + Asio timers on the client's event loop;
//   - ManualScheduler (manual_scheduler.hpp): virtual time for tests, advanced explicitly, with a
//     deterministic order (due time, then insertion order).
//
// Thread safety: a Scheduler and its Timers are confined to the loop that runs them. `now()`,
// `wall_now()`, `schedule()` and `Timer` methods must be called on that loop; only `post()` of the
// real scheduler may be called from any thread (see EventLoop).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

namespace rtsync::core {

using Duration = std::chrono::steady_clock::duration;

// Whole milliseconds of `d` (truncated toward zero), for logs and diagnostics.
inline std::int64_t to_ms(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}
using TimePoint = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The name of a delayed operation. Tests find a pending operation by its id and fire it
// (`ManualScheduler::run_until`). Core defines only its own ids (`TimerId::Test`,
// `TimerId::Posted`); every upper layer defines the ids of its timers in its own `names.hpp`
// (e.g. include/rtsync/client/transport/names.hpp), so core names no layer above it.
//
// Ids compare by name: two ids with the same name are the same id, so a name must be unique in a
// program (the layers use distinct CamelCase names such as "Heartbeat" or "DeliveryStall").
// `name` must outlive every use of the id; string literals do.
class TimerId {
 public:
  constexpr explicit TimerId(std::string_view name) noexcept : name_(name) {}
  constexpr std::string_view name() const noexcept { return name_; }
  friend constexpr bool operator==(TimerId a, TimerId b) noexcept { return a.name_ == b.name_; }

  static const TimerId Test;    // ad-hoc work in tests and tools
  static const TimerId Posted;  // zero-delay work queued with post()

 private:
  std::string_view name_;
};

inline constexpr TimerId TimerId::Test{"Test"};
inline constexpr TimerId TimerId::Posted{"Posted"};

constexpr std::string_view to_string(TimerId id) noexcept {
  return id.name();
}

namespace detail {
// Shared between a Timer handle and the scheduler that will run it.
struct TimerState {
  TimerId id = TimerId::Test;
  TimePoint due{};
  std::uint64_t seq = 0;
  std::function<void()> fn;
  bool cancelled = false;
  bool fired = false;
  std::function<void()> on_cancel;  // scheduler hook (e.g. cancel the Asio timer)
};
}  // namespace detail

// Handle to one scheduled operation. Move-only; destroying it cancels the operation, so a
// component that owns its timers as members cannot leave "zombie" callbacks behind.
// `release()` detaches instead (fire-and-forget).
class [[nodiscard]] Timer {
 public:
  Timer() = default;
  explicit Timer(std::shared_ptr<detail::TimerState> state) : state_(std::move(state)) {}
  Timer(Timer&&) noexcept = default;
  Timer& operator=(Timer&& other) noexcept {
    if (this != &other) {
      cancel();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() { cancel(); }

  // Idempotent; safe from inside the timer's own callback and after it fired.
  void cancel() noexcept;
  // True while scheduled and neither fired nor cancelled.
  bool pending() const noexcept { return state_ && !state_->cancelled && !state_->fired; }
  // When it is (or was) due; epoch if empty.
  TimePoint due() const noexcept { return state_ ? state_->due : TimePoint{}; }
  // Lets the operation run even though this handle goes away.
  void release() noexcept { state_.reset(); }

 private:
  std::shared_ptr<detail::TimerState> state_;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Monotonic time, for every interval, timeout and age.
  virtual TimePoint now() const = 0;
  // Calendar time, only for timestamps shown to people or put on the wire.
  virtual WallTime wall_now() const = 0;

  // Runs `fn` on the loop after `delay` (<= 0 means as soon as possible, after work already due).
  virtual Timer schedule(Duration delay, TimerId id, std::function<void()> fn) = 0;

  // Runs `fn` on the loop soon. The real scheduler accepts this from any thread.
  virtual void post(std::function<void()> fn) = 0;

  // True when the calling thread may use loop-confined state: it is the thread running this
  // scheduler's loop, or no thread runs it yet (set-up). Any thread may ask. The debug check
  // RTSYNC_ASSERT_ON_LOOP (loop_check.hpp) is built on it.
  virtual bool on_loop_thread() const noexcept { return true; }

  // Milliseconds since the Unix epoch of wall_now(), the unit of the JSON snapshots.
  std::int64_t wall_ms() const;
};

// "2025-11-19T00:22:40.877Z"
std::string format_iso8601(WallTime t);

}  // namespace rtsync::core
