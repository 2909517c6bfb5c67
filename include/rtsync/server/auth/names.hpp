// Names that the JWT layer gives its timers and log channels. Core lists none of them.
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::server::auth {

namespace timers {
// The JWT verification keys read again from their key set (`--jwks`).
inline constexpr core::TimerId JwksReload{"JwksReload"};
}  // namespace timers

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
inline constexpr std::string_view kAuth = "Auth";
}  // namespace loggers

}  // namespace rtsync::server::auth
