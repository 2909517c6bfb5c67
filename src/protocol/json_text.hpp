// JSON text helpers shared by the protocol codecs: a reusable parser, a validating scan that builds
// nothing, and writers that append to a std::string without intermediate buffers. Internal.
#pragma once

#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::protocol::detail {

// Nesting limit for frames. Boost.JSON's default (32) rejects payloads realtime-js accepts;
// unbounded depth would let a hostile frame cost unbounded memory and recursion in consumers.
inline constexpr std::size_t kMaxJsonDepth = 128;

// Parses one complete JSON text (no comments, no trailing commas, UTF-8 validated). The result
// uses the default memory resource. Never throws except std::bad_alloc.
Result<json::value> parse(std::string_view text);

// True iff `text` is one valid JSON text (same rules as parse), without building a value.
bool is_valid_json(std::string_view text);

// Appends `s` as a JSON string literal (quotes included), escaping like JSON.stringify.
void append_string(std::string& out, std::string_view s);

// Appends the JSON text of `v` (compact, keys in insertion order).
void append_value(std::string& out, const json::value& v);

}  // namespace rtsync::protocol::detail
