// Names that the server realtime layer (connections, hub) gives its timers and log channels.
// Core lists none of them: each layer defines its own here, and tests use these ids to find
// and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::server::realtime {

namespace timers {
// An idle socket being closed.
inline constexpr core::TimerId IdleTimeout{"IdleTimeout"};
// A channel's access token expiring.
inline constexpr core::TimerId TokenExpiry{"TokenExpiry"};
// A failed RLS authorization retrying with backoff.
inline constexpr core::TimerId AuthorizeRetry{"AuthorizeRetry"};
// The end of a topic's presence coalescing window (quiet for presence_diff_window, or
// presence_diff_max_delay since its first change).
inline constexpr core::TimerId PresenceDiff{"PresenceDiff"};
// The second of a socket's presence push budget.
inline constexpr core::TimerId RateWindow{"RateWindow"};
}  // namespace timers

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
inline constexpr std::string_view kServer = "Server";
}  // namespace loggers

}  // namespace rtsync::server::realtime
