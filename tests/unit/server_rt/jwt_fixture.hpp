// The clock and secret the token tests of src/server/auth share.
#pragma once

#include <cstdint>
#include <string>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::server::auth::test {

// "Now" for every token check of these tests (2027-01-15), and the same instant in seconds.
inline const core::WallTime kNow{std::chrono::seconds(1'800'000'000)};
inline constexpr std::int64_t kNowS = 1'800'000'000;
inline const std::string kSecret = "super-secret-jwt-token-with-at-least-32-characters";

}  // namespace rtsync::server::auth::test
