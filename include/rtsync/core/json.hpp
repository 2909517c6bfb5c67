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

}  // namespace rtsync::core
