// PostgreSQL text-format values → typed JSON, by type OID (what Supabase's `realtime.cast` /
// to_jsonb produce, so realtime-js sees the same shapes):
//   int2 int4 int8 oid → number; float4 float8 → number (NaN / ±Infinity stay strings);
//   numeric → number (integers exactly as int64/uint64, others as double; NaN / ±Infinity stay
//   strings); bool → true/false; json jsonb → parsed JSON; arrays → JSON arrays (elements by
//   element type, NULL → null, nested); bytea → hex without the leading \x;
//   timestamp → "YYYY-MM-DDTHH:MM:SS[.ffffff]", timestamptz → "…+HH:MM" (as to_jsonb);
//   everything else (text, varchar, uuid, date, enums, …) → the text as a string.
//
// Thread safety: TypeRegistry is a plain value (not synchronized); the functions are pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::server::cdc {

enum class ValueKind : std::uint8_t {
  text,
  integer,
  floating,
  numeric,
  boolean,
  json,
  bytea,
  timestamp,
  timestamptz,
  array,
};

// How values of one type convert (resolved once per relation column, not per value).
struct Conversion {
  ValueKind kind = ValueKind::text;
  ValueKind element = ValueKind::text;  // for arrays
};

struct TypeInfo {
  std::string name;  // pg_type.typname
  ValueKind kind = ValueKind::text;
  std::uint32_t element = 0;  // element type OID for arrays
};

// Type OID → name and conversion. Starts with PostgreSQL's built-in types; learns the rest from
// pg_type rows (loaded when the stream connects) and from pgoutput Type messages.
class TypeRegistry {
 public:
  TypeRegistry();

  const TypeInfo* find(std::uint32_t oid) const noexcept;
  // typname, or "" when unknown.
  std::string_view name_of(std::uint32_t oid) const noexcept;
  // Conversion kind for values of `oid` (text when unknown).
  ValueKind kind_of(std::uint32_t oid) const noexcept;
  ValueKind element_kind_of(std::uint32_t array_oid) const noexcept;
  Conversion conversion_of(std::uint32_t oid) const noexcept;

  // A pg_type row: oid, typname, typcategory ('A' array), typelem, typbasetype (domains convert
  // like their base type). Built-in entries keep their conversion.
  void add_catalog_row(std::uint32_t oid, std::string_view name, char category,
                       std::uint32_t element, std::uint32_t base);
  // A pgoutput Type message (only namespace and name are known): "_name" is taken as an array
  // of text-converted elements unless the catalog said more.
  void add_type_message(std::uint32_t oid, std::string_view name);

  std::size_t size() const noexcept { return types_.size(); }

 private:
  std::unordered_map<std::uint32_t, TypeInfo> types_;
};

// One value of type `oid` in PostgreSQL's text output format.
json::value text_to_json(const TypeRegistry& types, std::uint32_t oid, std::string_view text);
// One value with a resolved conversion (same result as text_to_json for that type).
json::value convert_text(Conversion conversion, std::string_view text);
// One non-array value of conversion `kind`.
json::value scalar_to_json(ValueKind kind, std::string_view text);
// A PostgreSQL array literal ("{1,2,NULL}", "{{a,\"b c\"},{NULL,\"NULL\"}}", "[0:1]={x,y}") with
// elements converted by `element_kind`. Errc::invalid_argument on malformed input.
Result<json::value> parse_array_literal(std::string_view text, ValueKind element_kind);

// The inverse used to bind typed JSON key values back as query parameters: text PostgreSQL parses
// for a value of conversion `kind` (bytea gets its \x back). nullopt for values that cannot be a
// key (objects, arrays, null).
std::optional<std::string> json_to_text(ValueKind kind, const json::value& value);

}  // namespace rtsync::server::cdc
