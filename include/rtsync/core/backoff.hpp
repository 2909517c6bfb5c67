// Retry delays. Randomness is injected (a seeded engine) so jittered delays are reproducible in
// tests; the bounds are what tests assert.
//
// Thread safety: the backoff structs are immutable values (safe to share); a Jitter is a
// stateful engine, confined to one thread.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "rtsync/core/scheduler.hpp"

namespace rtsync::core {

// Exponential backoff with full jitter (AWS architecture blog's "Full Jitter"):
//   delay(attempt) = uniform(0, min(cap, base * 2^(attempt-1)))   for attempt >= 1
// `ceiling(attempt)` is the upper bound tests check against.
struct ExponentialBackoff {
  Duration base = std::chrono::seconds(1);
  Duration cap = std::chrono::seconds(30);

  Duration ceiling(std::uint32_t attempt) const;
  // `u` in [0, 1): the jitter draw.
  Duration delay(std::uint32_t attempt, double u) const;
};

// A fixed table of steps with a last value repeated (Phoenix's rejoin: 1 s, 2 s, 5 s, 10 s …),
// optionally jittered by ±`jitter` (0.1 = ±10 %).
struct SteppedBackoff {
  std::vector<Duration> steps;
  double jitter = 0.0;

  Duration nominal(std::uint32_t attempt) const;
  Duration delay(std::uint32_t attempt, double u) const;
};

// The jitter source: a seedable engine (tests pass a fixed seed).
class Jitter {
 public:
  explicit Jitter(std::uint64_t seed = std::random_device{}()) : engine_(seed) {}
  double next() { return std::uniform_real_distribution<double>(0.0, 1.0)(engine_); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace rtsync::core
