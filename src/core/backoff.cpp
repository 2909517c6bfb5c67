#include "rtsync/core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace rtsync::core {

Duration ExponentialBackoff::ceiling(std::uint32_t attempt) const {
  if (attempt == 0) return Duration::zero();
  // Doubling saturates at the cap well before 2^63 overflows.
  Duration d = base;
  for (std::uint32_t i = 1; i < attempt && d < cap; ++i)
    d *= 2;
  return std::min(d, cap);
}

Duration ExponentialBackoff::delay(std::uint32_t attempt, double u) const {
  const auto top = ceiling(attempt);
  u = std::clamp(u, 0.0, 1.0);
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, Duration::period>(static_cast<double>(top.count()) * u));
}

Duration SteppedBackoff::nominal(std::uint32_t attempt) const {
  if (steps.empty() || attempt == 0) return Duration::zero();
  const auto idx = std::min<std::size_t>(attempt - 1, steps.size() - 1);
  return steps[idx];
}

Duration SteppedBackoff::delay(std::uint32_t attempt, double u) const {
  const auto n = nominal(attempt);
  if (jitter <= 0.0) return n;
  const double factor = 1.0 + jitter * (2.0 * std::clamp(u, 0.0, 1.0) - 1.0);
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, Duration::period>(static_cast<double>(n.count()) * factor));
}

}  // namespace rtsync::core
