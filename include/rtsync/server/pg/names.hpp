// Names that PostgreSQL access gives its timers and log channels.
// Core lists none of them: each layer defines its own here, and tests use these ids to find
// and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include <string_view>

namespace rtsync::server::pg {

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
inline constexpr std::string_view kServer = "Server";
}  // namespace loggers

}  // namespace rtsync::server::pg
