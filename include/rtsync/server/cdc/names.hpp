// Names that the change stream, the row and channel authorizers and message retention give
// their timers and log channels.
// Core lists none of them: each layer defines its own here, and tests use these ids to find
// and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::server::cdc {

namespace timers {
// The replication stream reconnecting (and its connect deadline).
inline constexpr core::TimerId ReplicationRetry{"ReplicationRetry"};
// The standby status update to PostgreSQL.
inline constexpr core::TimerId StatusFeedback{"StatusFeedback"};
// An RLS check waiting for a decoded commit to become visible to snapshots.
inline constexpr core::TimerId VisibilityWait{"VisibilityWait"};
// The change stream letting PostgreSQL go while delivery waits.
inline constexpr core::TimerId DeliveryStall{"DeliveryStall"};
// A private-channel policy check that PostgreSQL has not answered in time.
inline constexpr core::TimerId ChannelAuthDeadline{"ChannelAuthDeadline"};
// The next run of Broadcast-from-Database retention (old realtime.messages rows deleted).
inline constexpr core::TimerId Retention{"Retention"};
}  // namespace timers

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
inline constexpr std::string_view kCdc = "ChangeStream";
inline constexpr std::string_view kServer = "Server";
inline constexpr std::string_view kRetention = "MessageRetention";
}  // namespace loggers

}  // namespace rtsync::server::cdc
