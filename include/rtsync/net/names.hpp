// Names that the network layer (include/rtsync/net) gives its timers.
// Core lists none of them: each layer defines its own here, and tests use these ids to find
// and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include "rtsync/core/scheduler.hpp"

namespace rtsync::net {

namespace timers {
// An HTTP request's deadline (HttpClient).
inline constexpr core::TimerId HttpTimeout{"HttpTimeout"};
}  // namespace timers

}  // namespace rtsync::net
