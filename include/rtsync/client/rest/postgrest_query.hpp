// A small PostgREST query builder (the part of postgrest-js the fetchers use): builds the request
// target and headers; values are percent-encoded, list items quoted as PostgREST expects.
//
//   PostgrestQuery("tasks").select("*").eq("project_id", pid).in("status", {"Queued", "In
//   Progress"})
//       .order("created_at", false).range(0, 49).count_exact();
//
// Thread safety: a plain value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rtsync::client::rest {

// One PostgREST request being built; every builder method returns *this.
class PostgrestQuery {
 public:
  // A query of `table` (no select: PostgREST's default, every column).
  explicit PostgrestQuery(std::string table);

  // `select=<columns>` (PostgREST syntax, embedded resources included).
  PostgrestQuery& select(std::string_view columns);
  // Filters `column=<op>.<value>`, ANDed: eq, neq, lt, lte, gt, gte, like, ilike, in (a quoted
  // list), is.null and not.is.null.
  PostgrestQuery& eq(std::string_view column, std::string_view value);
  PostgrestQuery& neq(std::string_view column, std::string_view value);
  PostgrestQuery& lt(std::string_view column, std::string_view value);
  PostgrestQuery& lte(std::string_view column, std::string_view value);
  PostgrestQuery& gt(std::string_view column, std::string_view value);
  PostgrestQuery& gte(std::string_view column, std::string_view value);
  PostgrestQuery& like(std::string_view column, std::string_view pattern);  // `*` or `%` wildcards
  PostgrestQuery& ilike(std::string_view column, std::string_view pattern);
  PostgrestQuery& in(std::string_view column, const std::vector<std::string>& values);
  PostgrestQuery& is_null(std::string_view column);
  PostgrestQuery& not_null(std::string_view column);
  // `column=not.<op>.<value>` for any operator above ("eq", "in" with a "(a,b)" list…).
  PostgrestQuery& not_(std::string_view column, std::string_view op, std::string_view value);
  // Appends an order term (several calls order by several columns).
  PostgrestQuery& order(std::string_view column, bool ascending = true,
                        std::optional<bool> nulls_first = std::nullopt);
  // `limit=n` and `offset=n`.
  PostgrestQuery& limit(std::int64_t n);
  PostgrestQuery& offset(std::int64_t n);
  // Rows from..to inclusive (offset + limit), as postgrest-js .range().
  PostgrestQuery& range(std::int64_t from, std::int64_t to);
  // Prefer: count=exact → the result carries the total row count.
  PostgrestQuery& count_exact();
  // Accept: application/vnd.pgrst.object+json → exactly one row, as an object.
  PostgrestQuery& single();

  const std::string& table() const noexcept { return table_; }  // the table queried
  bool counted() const noexcept { return count_; }              // count_exact() was called
  bool is_single() const noexcept { return single_; }           // single() was called
  // "/rest/v1/tasks?select=*&project_id=eq.…" under `prefix`.
  std::string target(std::string_view prefix = "/rest/v1") const;
  // Just the encoded query string ("select=*&…"), filters only when `filters_only`.
  std::string query_string(bool filters_only = false) const;

  // PostgREST's list syntax for `in`: (a,"b,c") — items with , ( ) " \ or edge spaces quoted.
  static std::string list(const std::vector<std::string>& values);
  // Percent-encodes everything outside RFC 3986's unreserved set.
  static std::string encode(std::string_view text);

 private:
  PostgrestQuery& filter(std::string_view column, std::string_view op, std::string_view value);

  std::string table_;
  std::string select_;
  std::vector<std::pair<std::string, std::string>> filters_;
  std::vector<std::string> order_;
  std::optional<std::int64_t> limit_;
  std::optional<std::int64_t> offset_;
  bool count_ = false;
  bool single_ = false;
};

}  // namespace rtsync::client::rest
