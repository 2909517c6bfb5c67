// Shared helpers for the libFuzzer targets.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "rtsync/core/json.hpp"
#include "rtsync/protocol/message.hpp"

namespace rtsync::fuzz {

[[noreturn]] inline void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "invariant violated: %s %s\n", what, detail.c_str());
  std::abort();
}

// JSON equality that tolerates what a text round trip may change: a double re-parsed within a
// few ulps (Boost.JSON 1.81 does not always round correctly), and non-finite doubles written as
// null. Boost.JSON 1.81 parses 1e400 as Infinity and 0e400 as NaN (0 × ∞); JSON cannot carry
// either, so the encoder writes null, as JSON.stringify does.
inline bool roughly_equal(const json::value& a, const json::value& b) {
  if (a.is_double() && !std::isfinite(a.get_double())) {
    if (b.is_null()) return true;
    if (b.is_double() && std::isnan(a.get_double())) return std::isnan(b.get_double());
  }
  if (a.is_number() && b.is_number() && (a.is_double() || b.is_double())) {
    const double x = a.to_number<double>(), y = b.to_number<double>();
    return x == y || std::fabs(x - y) <= 1e-12 * std::fmax(std::fabs(x), std::fabs(y));
  }
  if (a.is_array() && b.is_array()) {
    const auto &x = a.get_array(), &y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!roughly_equal(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    const auto &x = a.get_object(), &y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& kv : x) {
      const auto* other = y.if_contains(kv.key());
      if (!other || !roughly_equal(kv.value(), *other)) return false;
    }
    return true;
  }
  return core::json_equal(a, b);
}

inline bool roughly_equal(const protocol::Message& a, const protocol::Message& b) {
  return a.join_ref == b.join_ref && a.ref == b.ref && a.topic == b.topic && a.event == b.event &&
         roughly_equal(a.payload, b.payload);
}

}  // namespace rtsync::fuzz
