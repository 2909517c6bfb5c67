// The PostgREST request grammar rtsync's /rest/v1 understands, parsed into values (pure, no I/O):
//
//   select=*            select=id,status,label:task_type       (no embedding, casts or JSON paths)
//   <col>=[not.]<op>.<value>   op ∈ eq neq lt lte gt gte like ilike in is
//       in.(a,b,"c,d")  is.null|not_null|true|false|unknown   like/ilike: * matches any text
//   order=col[.asc|.desc][.nullsfirst|.nullslast],…
//   limit=N  offset=N   columns=a,b (insert)   on_conflict=a,b (upsert)
//   Prefer: return=minimal|headers-only|representation, count=exact|planned|estimated,
//           missing=default, resolution=merge-duplicates|ignore-duplicates
//   Range: from-[to]
//
// Errors are PostgREST's (`ApiError`: HTTP status + {code, message, details, hint}). Column names
// are checked against the catalog later, when SQL is built (sql_builder.hpp).
//
// Thread safety: plain functions and values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "rtsync/core/result.hpp"

namespace rtsync::server::rest {

// An error answer in PostgREST's JSON shape.
struct ApiError {
  int status = 400;
  std::string code;  // "PGRST100", or PostgreSQL's SQLSTATE ("42703")
  std::string message;
  std::optional<std::string> details;  // null when absent
  std::optional<std::string> hint;     // null when absent

  // {"code":…,"details":…,"hint":…,"message":…}
  std::string to_json() const;
  friend bool operator==(const ApiError&, const ApiError&) = default;
};

// A value or an ApiError.
template <class T>
using ApiResult = Result<T, ApiError>;

enum class FilterOp { eq, neq, lt, lte, gt, gte, in, is, like, ilike };
enum class IsValue { null, not_null, is_true, is_false, unknown };

struct Filter {
  std::string column;
  FilterOp op = FilterOp::eq;
  bool negated = false;
  std::string value;              // comparison value; like/ilike: `*` already turned into `%`
  std::vector<std::string> list;  // `in`
  IsValue is = IsValue::null;     // `is`
  friend bool operator==(const Filter&, const Filter&) = default;
};

struct OrderTerm {
  std::string column;
  bool descending = false;
  std::optional<bool> nulls_first;  // unset: PostgreSQL's default for the direction
  friend bool operator==(const OrderTerm&, const OrderTerm&) = default;
};

struct SelectItem {
  std::string column;  // "*" for every column
  std::string alias;   // empty: the column's own name
  friend bool operator==(const SelectItem&, const SelectItem&) = default;
};

struct QueryParams {
  std::vector<SelectItem> select;  // empty: `*`
  std::vector<Filter> filters;
  std::vector<OrderTerm> order;
  std::optional<std::int64_t> limit;
  std::optional<std::int64_t> offset;
  std::optional<std::vector<std::string>> columns;      // insert: the columns to take from the body
  std::optional<std::vector<std::string>> on_conflict;  // upsert: the conflict target
};

// Parses a raw (still percent-encoded) query string.
ApiResult<QueryParams> parse_query_string(std::string_view raw_query);

// Pieces, exposed for tests and the RPC path.
ApiResult<std::vector<SelectItem>> parse_select(std::string_view text);
ApiResult<std::vector<OrderTerm>> parse_order(std::string_view text);
ApiResult<Filter> parse_filter(std::string column, std::string_view text);
// `(a,b,"c,d")` → {a, b, c,d}
ApiResult<std::vector<std::string>> parse_in_list(std::string_view text);

struct Preferences {
  enum class Return { minimal, headers_only, representation };
  enum class Resolution { none, merge_duplicates, ignore_duplicates };
  Return ret = Return::minimal;
  bool count = false;  // count=exact (planned and estimated are answered exactly too)
  bool missing_default = false;
  Resolution resolution = Resolution::none;
};
// Unknown preferences are ignored, as PostgREST does by default.
Preferences parse_prefer(std::string_view header);

// `Range: 0-9` (items). nullopt when the header is absent or not an items range.
struct RangeHeader {
  std::int64_t from = 0;
  std::optional<std::int64_t> to;
};
std::optional<RangeHeader> parse_range_header(std::string_view header);

// Splits `a=1&b=2` into decoded (key, value) pairs in order (http::split_query); a bad %-escape
// is PostgREST's parse error.
ApiResult<std::vector<std::pair<std::string, std::string>>> split_query(std::string_view raw);

}  // namespace rtsync::server::rest
