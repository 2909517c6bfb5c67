// postgres_changes event payloads (docs/protocol.md §3.1): the server's wire shape
//   {"ids":[…], "data":{schema, table, commit_timestamp, type, columns, record?, old_record?,
//   errors}}
// and the client-side shape realtime-js hands to callbacks
//   {schema, table, commit_timestamp, eventType, new, old, errors}
// with realtime-js's columns-driven value conversion (convertChangeData).
//
// Thread safety: pure functions over values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::protocol {

struct Column {
  std::string name;
  std::string type;  // pg_type.typname: int4, text, _int4, jsonb, timestamptz…
  friend bool operator==(const Column&, const Column&) = default;
};

struct ChangeData {
  std::string schema;
  std::string table;
  std::optional<std::string> commit_timestamp;  // "YYYY-MM-DDTHH:MM:SS.mmmZ"
  std::string type;                             // INSERT | UPDATE | DELETE
  std::vector<Column> columns;
  std::optional<json::object> record;      // INSERT, UPDATE
  std::optional<json::object> old_record;  // UPDATE, DELETE
  json::value errors = nullptr;            // null or array of strings
};

struct ChangeEvent {
  std::vector<std::int64_t> ids;
  ChangeData data;
};

// Errors (invalid_frame): ids not an array of integers, data not an object, schema/table/type not
// strings, commit_timestamp neither string nor null, columns neither an array nor null,
// record/old_record not objects, errors neither null nor an array. A columns entry that is not
// {name, type} strings is skipped (its values pass through unconverted, as in realtime-js). Missing
// columns read as [] and missing commit_timestamp/record/old_record/errors as absent/null (the
// 400/401 error rows carry only schema, table, type and errors).
Result<ChangeEvent> parse_change_event(const json::value& payload);
// Key order as Supabase's documented example: schema, table, commit_timestamp, type, columns,
// record, old_record, errors (record/old_record omitted when absent).
json::value build_change_event(const ChangeEvent& event);
json::object build_change_data(const ChangeData& data);

// The callback shape: {schema, table, commit_timestamp, eventType, new, old, errors}; `new`
// (INSERT, UPDATE) and `old` (UPDATE, DELETE) are converted through convert_record, {} otherwise
// or when absent — as realtime-js's _getPayloadRecords.
json::object to_client_shape(const ChangeData& data);

// realtime-js convertChangeData: per column type, strings become numbers (int2/4/8, float4/8,
// numeric, oid — JavaScript parseFloat: leading white space, longest numeric prefix, "Infinity"),
// booleans ('t'/'f' only: realtime-js leaves "true"/"false" as strings), parsed JSON (json,
// jsonb), timestamps with the first space replaced by 'T' (timestamp, not timestamptz), arrays
// parsed from "{…}" (_type: as a JSON array, else split on commas) with each element converted
// as its element type. Values that are already typed JSON pass through; unparseable strings stay
// strings; keys without a column (or with an empty type) pass through.
// Numbers: integer text that fits int64 stays exact (JavaScript rounds beyond 2^53); integral
// results up to 2^53 are int64, others double (±Infinity for overflow, written as null).
json::object convert_record(const std::vector<Column>& columns, const json::object& record);
json::value convert_value(std::string_view type, const json::value& value);
// True iff convert_value may change a string of column type `type` (it passes every other value
// through unchanged): the one list of converting types.
bool converts_strings(std::string_view type) noexcept;

}  // namespace rtsync::protocol
