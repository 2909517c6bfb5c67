// Names that the cluster layer (the Redis client, leadership, the node) gives its timers and log
// channels. Core lists none of them: each layer defines its own here, and tests use these ids to
// find and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::server::cluster {

namespace timers {
// A connection attempt to Redis (resolve + TCP connect) taking longer than connect_timeout.
inline constexpr core::TimerId RedisConnectTimeout{"RedisConnectTimeout"};
// The next connection attempt after a failure (reconnect_delay).
inline constexpr core::TimerId RedisReconnect{"RedisReconnect"};
// A standby asking for the slot's advisory lock, or the leader checking it still holds it.
inline constexpr core::TimerId LeaderCheck{"LeaderCheck"};
// Refreshing this node's liveness key and checking the other nodes'.
inline constexpr core::TimerId Liveness{"Liveness"};
// A cluster step retried after Redis failed it (a read, an append, the tail).
inline constexpr core::TimerId ClusterRetry{"ClusterRetry"};
}  // namespace timers

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
inline constexpr std::string_view kRedis = "Redis";
inline constexpr std::string_view kCluster = "Cluster";
}  // namespace loggers

}  // namespace rtsync::server::cluster
