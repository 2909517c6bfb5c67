// The one JSON type of rtsync's public API: Boost.JSON's `value` (object keys keep insertion
// order; numbers keep int64/uint64/double). Helpers here are the small lookups every layer needs.
//
// Thread safety: the helpers are pure functions; a json::value follows Boost.JSON's rules
// (concurrent reads are safe, writes need exclusive access).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/core/result.hpp"

namespace rtsync {
namespace json = boost::json;
}

namespace rtsync::core {

// Parses without throwing.
Result<json::value> parse_json(std::string_view text);

// Field lookups that return nullptr / nullopt instead of throwing.
const json::value* find(const json::value& v, std::string_view key);
const json::object* find_object(const json::value& v, std::string_view key);
const json::array* find_array(const json::value& v, std::string_view key);
std::optional<std::string_view> find_string(const json::value& v, std::string_view key);
std::optional<bool> find_bool(const json::value& v, std::string_view key);
std::optional<std::int64_t> find_int(const json::value& v, std::string_view key);

// Deep equality that treats 1, 1u and 1.0 as equal numbers (JSON has one number type).
bool json_equal(const json::value& a, const json::value& b);

// Appends `text` as a quoted JSON string, escaped exactly as both JSON.stringify and PostgreSQL's
// json output do: \" \\ \b \f \n \r \t, other control characters as \u00xx (lowercase hex),
// everything else (UTF-8 included) as it is. The query cache's key hashes and the REST server's
// row bodies both rely on this exact form.
void append_json_string(std::string& out, std::string_view text);

// `text` as one JSON string (quoted and escaped as Boost.JSON serializes it).
inline std::string json_quoted(std::string_view text) {
  return json::serialize(json::string(text));
}

// The canonical text of `v`, the one deterministic JSON printer of rtsync: equal values give equal
// text, and the text is what JavaScript's JSON.stringify prints after @tanstack/query-core's
// hashKey rebuilt every object from its sorted keys (the query cache's key hash must equal it). It
// also keys the server's auth classes, and PostgreSQL reads it as request.jwt.claims.
//   - Object members: names that are JavaScript array indices (canonical decimal integers below
//     2^32 - 1: "0", "7", "4294967294") first, in numeric order; then every other name ("01",
//     "-1", "a") in UTF-16 code unit order. No whitespace.
//   - Numbers: doubles as JavaScript's Number::toString (1.0 → 1, -0 → 0, 1e21 → 1e+21, 1e-7 →
//     1e-7); non-finite doubles as null (JSON.stringify(NaN)); int64 and uint64 as their exact
//     decimal digits.
//   - Strings (and names) escaped as append_json_string.
// A number's representation does not change the text where JavaScript sees one value (1, 1u and
// 1.0 all print "1").
void append_canonical_json(std::string& out, const json::value& v);
std::string canonical_json(const json::value& v);

}  // namespace rtsync::core
