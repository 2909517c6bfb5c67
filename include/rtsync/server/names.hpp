// Names that the server facade (rtsync::server::Server) and `rtsync server` give their log
// channels. Core lists none of them.
//
// Thread safety: constants.
#pragma once

#include <string_view>

namespace rtsync::server {

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
inline constexpr std::string_view kServer = "Server";
}  // namespace loggers

}  // namespace rtsync::server
