// Canonical text of a query key, for the freshness map: object keys sorted (TanStack's hashKey
// rule), integral doubles printed as integers so 1 and 1.0 name the same key.
#pragma once

#include <string>
#include <vector>

#include "rtsync/core/json.hpp"

namespace rtsync::client::sync::detail {

// Canonical JSON text of one value.
void append_canonical(std::string& out, const json::value& v);
std::string canonical_key(const json::array& key);
// Canonical texts of every non-empty prefix of `key`: [k0], [k0,k1], …, the whole key.
std::vector<std::string> canonical_prefixes(const json::array& key);

}  // namespace rtsync::client::sync::detail
