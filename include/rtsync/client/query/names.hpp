// Names that the query cache gives its timers and log channels.
// Core lists none of them: each layer defines its own here, and tests use these ids to find
// and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::query {

namespace timers {
// A failed fetch retrying.
inline constexpr core::TimerId QueryRetry{"QueryRetry"};
// The cache dropping unused queries.
inline constexpr core::TimerId QueryGc{"QueryGc"};
// An observer's refetch interval.
inline constexpr core::TimerId RefetchInterval{"RefetchInterval"};
// Invalidations gathered into one refetch.
inline constexpr core::TimerId InvalidationCoalesce{"InvalidationCoalesce"};
// An observer's result turning stale (staleTime elapsed).
inline constexpr core::TimerId QueryStale{"QueryStale"};
}  // namespace timers

// Log channels (`log::get(name)`), shown as the "[Name]" prefix of a line.
namespace loggers {
// The query cache's log channel.
inline constexpr std::string_view kQuery = "QueryCache";
}  // namespace loggers

}  // namespace rtsync::client::query
