#include "rtsync/core/scheduler.hpp"

#include <fmt/format.h>
#include <ctime>

namespace rtsync::core {

void Timer::cancel() noexcept {
  if (!state_) return;
  auto state = std::move(state_);
  if (state->cancelled || state->fired) return;
  state->cancelled = true;
  // Drop the callback now: it may hold resources (and cycles) the owner is tearing down.
  state->fn = nullptr;
  if (state->on_cancel) {
    auto hook = std::move(state->on_cancel);
    hook();
  }
}

std::int64_t Scheduler::wall_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(wall_now().time_since_epoch())
      .count();
}

std::string format_iso8601(WallTime t) {
  const auto ms_total =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::int64_t secs = ms_total / 1000;
  int ms = static_cast<int>(ms_total % 1000);
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

}  // namespace rtsync::core
