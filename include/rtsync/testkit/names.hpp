// Names the test kit gives its timers and log channels (the FaultProxy's). Core lists none of
// them; tests find and fire these timers with `core::ManualScheduler::run_until`.
//
// Thread safety: constants.
#pragma once

#include <string_view>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::testkit {

namespace timers {
// A timed fault of the FaultProxy ending (cut, stall or delay given a duration).
inline constexpr core::TimerId ProxyFaultEnd{"ProxyFaultEnd"};
// Bytes held back by the FaultProxy's delay fault becoming due.
inline constexpr core::TimerId ProxyDelay{"ProxyDelay"};
}  // namespace timers

// Log channels (`log::get(name)`).
namespace loggers {
// The FaultProxy's log channel.
inline constexpr std::string_view kProxy = "FaultProxy";
}  // namespace loggers

}  // namespace rtsync::testkit
