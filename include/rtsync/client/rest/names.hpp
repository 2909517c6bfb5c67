// Names that the client REST/auth HTTP layer gives its timers and log channels.
// Core lists none of them: each layer defines its own here, and tests use these ids to find
// and fire its timers (`core::ManualScheduler::run_until`).
//
// Thread safety: constants.
#pragma once

#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::rest {

namespace timers {
// A REST/auth HTTP request's deadline.
inline constexpr core::TimerId HttpTimeout{"HttpTimeout"};
}  // namespace timers

}  // namespace rtsync::client::rest
