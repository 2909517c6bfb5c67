// Names that the HTTP/WebSocket listener gives its timers and log channels.
// Core lists none of them: each layer defines its own here, and tests use these ids to find
// and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::server::http {

namespace timers {
// The listener accepting again after an accept error (EMFILE, ...).
inline constexpr core::TimerId AcceptRetry{"AcceptRetry"};
}  // namespace timers

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
inline constexpr std::string_view kServer = "Server";
}  // namespace loggers

}  // namespace rtsync::server::http
