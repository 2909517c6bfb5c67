// Names that the coordination layer gives its timers and log channels.
// Core lists none of them: each layer defines its own here, and tests use these ids to find
// and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::sync {

namespace timers {
// A join that must finish in time.
inline constexpr core::TimerId JoinGuard{"JoinGuard"};
// The manager healing a broken subscription.
inline constexpr core::TimerId HealRetry{"HealRetry"};
// Reconnect requests gathered into one.
inline constexpr core::TimerId ReconnectDebounce{"ReconnectDebounce"};
// A heal requested when realtime stays degraded.
inline constexpr core::TimerId DegradedWatch{"DegradedWatch"};
// The access token refreshing before it expires.
inline constexpr core::TimerId TokenRefresh{"TokenRefresh"};
// The pause after SIGNED_IN so the new token reaches the socket first.
inline constexpr core::TimerId SignedInDelay{"SignedInDelay"};
// A freshness row boundary (event 30 s / 2 min old, connect grace over).
inline constexpr core::TimerId FreshnessAging{"FreshnessAging"};
}  // namespace timers

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
// The realtime manager's log channel.
inline constexpr std::string_view kSimpleRealtime = "SimpleRealtime";
// The realtime provider's log channel.
inline constexpr std::string_view kProvider = "SimpleRealtimeProvider";
// The freshness tracker's log channel.
inline constexpr std::string_view kFreshness = "DataFreshness";
// Smart polling's log channel.
inline constexpr std::string_view kSmartPolling = "SmartPolling";
// The reconnect scheduler's log channel.
inline constexpr std::string_view kReconnectScheduler = "ReconnectScheduler";
}  // namespace loggers

}  // namespace rtsync::client::sync
