#include "rtsync/core/scheduler.hpp"

#include <fmt/format.h>
#include <ctime>

namespace rtsync::core {

std::string_view to_string(TimerId id) noexcept {
  switch (id) {
    case TimerId::Test:
      return "Test";
    case TimerId::Posted:
      return "Posted";
    case TimerId::Heartbeat:
      return "Heartbeat";
    case TimerId::PushTimeout:
      return "PushTimeout";
    case TimerId::SocketReconnect:
      return "SocketReconnect";
    case TimerId::ChannelRejoin:
      return "ChannelRejoin";
    case TimerId::HttpTimeout:
      return "HttpTimeout";
    case TimerId::QueryRetry:
      return "QueryRetry";
    case TimerId::QueryGc:
      return "QueryGc";
    case TimerId::RefetchInterval:
      return "RefetchInterval";
    case TimerId::InvalidationCoalesce:
      return "InvalidationCoalesce";
    case TimerId::QueryStale:
      return "QueryStale";
    case TimerId::JoinGuard:
      return "JoinGuard";
    case TimerId::HealRetry:
      return "HealRetry";
    case TimerId::ReconnectDebounce:
      return "ReconnectDebounce";
    case TimerId::DegradedWatch:
      return "DegradedWatch";
    case TimerId::TokenRefresh:
      return "TokenRefresh";
    case TimerId::SignedInDelay:
      return "SignedInDelay";
    case TimerId::FreshnessAging:
      return "FreshnessAging";
    case TimerId::IdleTimeout:
      return "IdleTimeout";
    case TimerId::TokenExpiry:
      return "TokenExpiry";
    case TimerId::ReplicationRetry:
      return "ReplicationRetry";
    case TimerId::DeliveryStall:
      return "DeliveryStall";
    case TimerId::PresenceDiff:
      return "PresenceDiff";
    case TimerId::StatusFeedback:
      return "StatusFeedback";
    case TimerId::RateWindow:
      return "RateWindow";
    case TimerId::AuthorizeRetry:
      return "AuthorizeRetry";
    case TimerId::VisibilityWait:
      return "VisibilityWait";
    case TimerId::AcceptRetry:
      return "AcceptRetry";
    case TimerId::Render:
      return "Render";
    case TimerId::Worker:
      return "Worker";
  }
  return "Unknown";
}

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
