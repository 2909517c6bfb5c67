// Turns parsed PostgREST requests into parameterized SQL (pure, no I/O).
//
// Safety rule: identifiers in the SQL text are catalog spellings only (checked here; quoted);
// every value from the request — filter operands, list items, limits, JSON bodies, RPC arguments,
// even response aliases — travels as a bound parameter. Nothing from the request text is ever
// spliced into SQL.
//
// Statement shapes (result columns):
//   read of plain columns (rows mode, BuiltRead::columns non-empty): the page's rows, one text
//                                 column per BuiltRead::columns entry; the body is written from
//                                 them by write_rows_json; the total, when counted, comes from
//                                 BuiltRead::count (one row, one bigint)
//   other reads, representation writes:  total bigint (NULL unless counted), page_total bigint,
//                                 body text
//   minimal writes:               none — the command's affected-row count is the answer
//   rpc:                          body text (absent for void functions)
//
// Thread safety: plain functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/server/pg/async_connection.hpp"
#include "rtsync/server/rest/api_request.hpp"
#include "rtsync/server/rest/catalog.hpp"

namespace rtsync::server::rest {

// `Accept: application/vnd.pgrst.object+json` asks for exactly one row, as an object.
enum class BodyShape { array, singular };

struct ReadRequest {
  const CatalogTable* table = nullptr;
  QueryParams query;
  std::optional<RangeHeader> range;
  bool count = false;  // Prefer: count=exact
  bool head = false;   // HEAD: no body needed
  BodyShape shape = BodyShape::array;
  std::optional<std::int64_t> max_rows;  // server-side cap on the page size
};

// How a rows-mode result column goes into the JSON body. PostgreSQL sends every column as text:
// strings are quoted and escaped (`quoted`: only quoted — uuids, whose text is hex digits and
// dashes), booleans ('t'/'f') become true/false, and the rest is already JSON text (integers,
// json/jsonb as stored, and to_json() of every other type, which the SQL applies so timestamps,
// enums, numerics and arrays read exactly as json_agg would write them).
enum class JsonKind : std::uint8_t { string, quoted, boolean, verbatim };

struct RowColumn {
  std::string key;  // the JSON object key, already escaped and quoted, followed by ':'
  JsonKind kind = JsonKind::verbatim;
};

struct BuiltRead {
  pg::Statement statement;
  std::int64_t offset = 0;            // first row's position, for Content-Range
  std::optional<std::int64_t> limit;  // page size asked for, if any
  // Rows mode: the database returns plain rows and the body is written here rather than by
  // json_agg, which costs PostgreSQL about twice the CPU of the query itself
  // (bench/rest/README.md). Used for bodies of plain (unaliased) columns; empty otherwise.
  std::vector<RowColumn> columns;
  std::optional<pg::Statement> count;  // rows mode with Prefer: count=exact
};

ApiResult<BuiltRead> build_read(const ReadRequest& request);

// Appends the rows of a rows-mode result as JSON: an array of objects, or for `singular` the
// first row's object alone. `result` has `columns.size()` columns; SQL NULL is written as null.
void write_rows_json(const pg::PgResult& result, const std::vector<RowColumn>& columns,
                     BodyShape shape, std::string& out);

// The statement each request's transaction starts with: the caller's role and JWT claims, set
// for this transaction only (set_config(…, true), i.e. SET LOCAL) so row-level security and
// auth.uid() see them. With `generic_plan` it also sets plan_cache_mode = force_generic_plan for
// the transaction: PostgreSQL then reuses one plan per prepared statement instead of planning
// every execution again (see RestOptions::generic_read_plans). `statement_timeout_ms`, when set,
// is the transaction's statement_timeout; unset leaves the connection's (the role's) own.
pg::Statement claims_statement(std::string role, std::string claims_json, bool generic_plan,
                               std::optional<std::int64_t> statement_timeout_ms = std::nullopt);

enum class WriteKind { insert, update, remove };

struct WriteRequest {
  WriteKind kind = WriteKind::insert;
  const CatalogTable* table = nullptr;
  QueryParams query;
  Preferences prefer;
  json::value body;  // insert: object or array of objects; update: object; delete: unused
  BodyShape shape = BodyShape::array;
};

struct BuiltWrite {
  std::vector<pg::Statement> statements;  // representation: exactly one
  bool representation = false;
};

ApiResult<BuiltWrite> build_write(const WriteRequest& request);

// Picks the overload of `name` whose argument names match `args` (PostgREST's rule: every given
// name is a parameter, every parameter without a default is given).
ApiResult<const CatalogFunction*> resolve_function(const Catalog& catalog, std::string_view name,
                                                   const json::object& args);

ApiResult<pg::Statement> build_rpc(const CatalogFunction& fn, const json::object& args,
                                   BodyShape shape);

// The text a JSON value is bound as: strings raw, numbers and booleans as written, null as SQL
// NULL, objects and arrays as JSON text — or, for a PostgreSQL array type ("uuid[]"), a JSON array
// of scalars as an array literal.
pg::Param bind_json(const json::value& v, std::string_view pg_type = {});
// `{"a","b\"c"}` — an array literal of the given strings.
std::string array_literal(const std::vector<std::string>& items);

// A singular (object) answer that did not have exactly one row is reported by the statement
// itself (writes must not commit): this recognizes that error and returns the row count.
std::optional<std::int64_t> singular_violation(std::string_view pg_message);

}  // namespace rtsync::server::rest
