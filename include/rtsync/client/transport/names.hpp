// Names that the client transport (RealtimeSocket, RealtimeChannel) gives its timers and log
// channels. Core lists none of them: each layer defines its own here, and tests use these ids to
// find and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::client {

namespace timers {
// The next heartbeat, and the wait for its reply.
inline constexpr core::TimerId Heartbeat{"Heartbeat"};
// A push waiting for its reply.
inline constexpr core::TimerId PushTimeout{"PushTimeout"};
// The socket reconnecting after a drop.
inline constexpr core::TimerId SocketReconnect{"SocketReconnect"};
// A channel rejoining after an error or timeout.
inline constexpr core::TimerId ChannelRejoin{"ChannelRejoin"};
}  // namespace timers

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
// The socket's log channel.
inline constexpr std::string_view kTransport = "RealtimeSocket";
// The channels' log channel.
inline constexpr std::string_view kChannel = "RealtimeChannel";
}  // namespace loggers

}  // namespace rtsync::client
