// ReconnectScheduler — the seed's ReconnectScheduler: many reasons to heal realtime, one heal.
//
// `request_reconnect(intent)` queues the intent (stamped now) and restarts a trailing debounce
// (1 s). When the debounce ends:
//   - if the last dispatch was less than `min_interval` (5 s) ago, it waits for the rest of that
//     interval (a new request meanwhile restarts the 1 s debounce instead);
//   - otherwise the intents are ordered by priority (high, medium, low) then age (oldest first),
//     the first is the primary, and ONE event `realtime:auth-heal` is emitted on the EventBus with
//     {source, reason, priority} of the primary plus
//     coalescedSources (every intent's source in that order, duplicates kept),
//     coalescedReasons (distinct reasons in that order) and timestamp (wall-clock epoch ms).
// The first dispatch is never throttled. Example: low at 0, high at 0.5 s, medium at 0.9 s → one
// heal at 1.9 s whose primary is the high intent.
//
// Destruction cancels the pending timer; nothing fires afterwards.
// Thread safety: loop-confined.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::sync {

// The EventBus event a heal is dispatched as.
inline constexpr std::string_view kAuthHealEvent = "realtime:auth-heal";

// An intent's priority; higher ones lead a coalesced heal.
enum class ReconnectPriority : std::uint8_t { low = 1, medium = 2, high = 3 };
std::string_view to_string(ReconnectPriority p) noexcept;  // "low" | "medium" | "high"

// One reason to heal realtime.
struct ReconnectIntent {
  std::string source;                                      // who asks ("AuthManager", …)
  std::string reason;                                      // why, for the log and the heal
  ReconnectPriority priority = ReconnectPriority::medium;  // orders coalesced intents
};

// The scheduler's timing (docs/original-app.md §6).
struct ReconnectSchedulerOptions {
  core::Duration debounce = std::chrono::seconds(1);      // trailing debounce per request
  core::Duration min_interval = std::chrono::seconds(5);  // at least this between heals
};

// getState(): the scheduler's state now.
struct ReconnectSchedulerState {
  std::size_t pending_intents = 0;                          // intents queued
  std::optional<core::TimePoint> last_reconnect_at;         // last dispatch; none yet → nullopt
  bool is_processing = false;                               // true only while the heal is emitted
  std::optional<core::Duration> time_since_last_reconnect;  // none before the first heal
};

// Many reasons to heal, one heal (behaviour in the file comment). Thread safety: loop-confined.
class ReconnectScheduler {
 public:
  // Dispatches heals on `bus`; `scheduler` and `bus` must outlive the scheduler.
  ReconnectScheduler(core::Scheduler& scheduler, core::EventBus& bus,
                     ReconnectSchedulerOptions options = {});
  ~ReconnectScheduler();
  ReconnectScheduler(const ReconnectScheduler&) = delete;
  ReconnectScheduler& operator=(const ReconnectScheduler&) = delete;

  // Queues an intent and restarts the debounce.
  void request_reconnect(ReconnectIntent intent);
  // Drops queued intents and the pending timer (the seed's destroy()).
  void clear();

  ReconnectSchedulerState state() const;  // getState()
  // Heals emitted so far.
  std::uint64_t dispatched() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return dispatched_;
  }
  // {pendingIntents, lastReconnectAt (wall ms, 0 = never), isProcessing, timeSinceLastReconnect
  //  (ms, null = never), dispatched, intents:[{source, reason, priority, ageMs}]}
  json::value diagnostics() const;

 private:
  struct Queued {
    ReconnectIntent intent;
    core::TimePoint at;
    std::uint64_t seq;
  };
  void process();

  core::Scheduler& scheduler_;
  core::EventBus& bus_;
  ReconnectSchedulerOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<Queued> intents_;
  std::uint64_t next_seq_ = 0;
  std::optional<core::TimePoint> last_reconnect_at_;
  std::optional<core::WallTime> last_reconnect_wall_;
  bool processing_ = false;
  std::uint64_t dispatched_ = 0;
  core::Timer timer_;
};

}  // namespace rtsync::client::sync
