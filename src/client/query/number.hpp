// JSON numbers compared and normalised as JavaScript sees them: one number type, so 1, 1u and 1.0
// are the same value. Shared by key hashing/matching and structural sharing.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>

#include "rtsync/core/json.hpp"

namespace rtsync::client::query::detail {

inline bool is_number(const json::value& v) noexcept {
  return v.is_int64() || v.is_uint64() || v.is_double();
}

// The int64 equal to `d` when `d` is integral and within ±2^53 (where JavaScript prints integers
// exactly); -0 gives 0.
inline std::optional<std::int64_t> exact_int53(double d) noexcept {
  constexpr double kMax = 9007199254740992.0;  // 2^53
  if (!(std::fabs(d) <= kMax) || std::trunc(d) != d) return std::nullopt;
  return static_cast<std::int64_t>(d);
}

// Exact comparison across representations (long double holds every int64 and double exactly on
// x86-64; elsewhere the comparison is as exact as long double allows). NaN equals nothing.
inline bool number_equal_raw(bool a_is_double, double ad, bool a_is_u, std::uint64_t au,
                             std::int64_t ai, bool b_is_double, double bd, bool b_is_u,
                             std::uint64_t bu, std::int64_t bi) noexcept {
  auto as_ld = [](bool is_d, double d, bool is_u, std::uint64_t u, std::int64_t i) {
    return is_d ? static_cast<long double>(d)
                : (is_u ? static_cast<long double>(u) : static_cast<long double>(i));
  };
  if (!a_is_double && !b_is_double) {
    if (a_is_u == b_is_u) return a_is_u ? au == bu : ai == bi;
    const std::int64_t i = a_is_u ? bi : ai;
    const std::uint64_t u = a_is_u ? au : bu;
    return i >= 0 && static_cast<std::uint64_t>(i) == u;
  }
  return as_ld(a_is_double, ad, a_is_u, au, ai) == as_ld(b_is_double, bd, b_is_u, bu, bi);
}

inline bool number_equal(const json::value& a, const json::value& b) noexcept {
  return number_equal_raw(a.is_double(), a.is_double() ? a.get_double() : 0.0, a.is_uint64(),
                          a.is_uint64() ? a.get_uint64() : 0, a.is_int64() ? a.get_int64() : 0,
                          b.is_double(), b.is_double() ? b.get_double() : 0.0, b.is_uint64(),
                          b.is_uint64() ? b.get_uint64() : 0, b.is_int64() ? b.get_int64() : 0);
}

// Array prefix match with partial_match on each element (key.hpp).
bool prefix_match(const json::array& a, const json::array& b);

}  // namespace rtsync::client::query::detail
