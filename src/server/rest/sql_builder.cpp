#include "rtsync/server/rest/sql_builder.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <map>
#include <set>

#include "rtsync/server/pg/connection.hpp"

namespace rtsync::server::rest {
namespace {

using pg::quote_identifier;

constexpr std::string_view kSingularMarker = "rtsync:singular:";
// json_build_object takes at most 100 arguments.
constexpr std::size_t kMaxAliasedColumns = 50;

std::string table_ref(const CatalogTable& t) {
  return quote_identifier(t.schema) + "." + quote_identifier(t.name);
}

ApiError unknown_column(const CatalogTable& t, std::string_view column) {
  return ApiError{400, "42703", "column " + t.name + "." + std::string(column) + " does not exist",
                  std::nullopt, std::nullopt};
}

ApiError unknown_body_column(const CatalogTable& t, std::string_view column) {
  return ApiError{400, "PGRST204",
                  "Could not find the '" + std::string(column) + "' column of '" + t.name +
                      "' in the schema cache",
                  std::nullopt, std::nullopt};
}

// Collects bound parameters and hands out their $n.
class Params {
 public:
  std::string add(pg::Param p) {
    values_.push_back(std::move(p));
    return "$" + std::to_string(values_.size());
  }
  std::vector<pg::Param> take() { return std::move(values_); }
  std::size_t size() const noexcept { return values_.size(); }

 private:
  std::vector<pg::Param> values_;
};

std::string col_ref(std::string_view column) {
  return "_r." + quote_identifier(column);
}

ApiResult<std::string> where_clause(const CatalogTable& t, const std::vector<Filter>& filters,
                                    Params& params) {
  std::string out;
  for (const auto& f : filters) {
    const CatalogColumn* c = t.column(f.column);
    if (!c) return unknown_column(t, f.column);
    const std::string col = col_ref(c->name);
    std::string expr;
    switch (f.op) {
      case FilterOp::eq:
        expr = col + " = " + params.add(f.value);
        break;
      case FilterOp::neq:
        expr = col + " <> " + params.add(f.value);
        break;
      case FilterOp::lt:
        expr = col + " < " + params.add(f.value);
        break;
      case FilterOp::lte:
        expr = col + " <= " + params.add(f.value);
        break;
      case FilterOp::gt:
        expr = col + " > " + params.add(f.value);
        break;
      case FilterOp::gte:
        expr = col + " >= " + params.add(f.value);
        break;
      case FilterOp::like:
        expr = col + "::text LIKE " + params.add(f.value);
        break;
      case FilterOp::ilike:
        expr = col + "::text ILIKE " + params.add(f.value);
        break;
      case FilterOp::in:
        expr = col + " = ANY(" + params.add(array_literal(f.list)) + ")";
        break;
      case FilterOp::is:
        switch (f.is) {
          case IsValue::null:
            expr = col + " IS NULL";
            break;
          case IsValue::not_null:
            expr = col + " IS NOT NULL";
            break;
          case IsValue::is_true:
            expr = col + " IS TRUE";
            break;
          case IsValue::is_false:
            expr = col + " IS FALSE";
            break;
          case IsValue::unknown:
            expr = col + " IS UNKNOWN";
            break;
        }
        break;
    }
    if (f.negated) expr = "NOT (" + expr + ")";
    out += out.empty() ? " WHERE " : " AND ";
    out += expr;
  }
  return out;
}

ApiResult<std::string> order_clause(const CatalogTable& t, const std::vector<OrderTerm>& order) {
  std::string out;
  for (const auto& o : order) {
    const CatalogColumn* c = t.column(o.column);
    if (!c) return unknown_column(t, o.column);
    out += out.empty() ? " ORDER BY " : ", ";
    out += col_ref(c->name);
    out += o.descending ? " DESC" : " ASC";
    if (o.nulls_first) out += *o.nulls_first ? " NULLS FIRST" : " NULLS LAST";
  }
  return out;
}

// The projected columns over `_r`, and the row expression to aggregate over `_t`.
struct Projection {
  std::string select_list;
  std::string row_expr;
  std::vector<const CatalogColumn*> plain;  // the columns, when none is renamed
};

std::vector<const CatalogColumn*> all_columns(const CatalogTable& t) {
  std::vector<const CatalogColumn*> out;
  out.reserve(t.columns.size());
  for (const auto& c : t.columns)
    out.push_back(&c);
  return out;
}

ApiResult<Projection> projection(const CatalogTable& t, const std::vector<SelectItem>& items,
                                 Params& params) {
  if (items.empty() || (items.size() == 1 && items[0].column == "*" && items[0].alias.empty())) {
    return Projection{"_r.*", "_t", all_columns(t)};
  }
  bool aliased = false;
  for (const auto& it : items) {
    if (!it.alias.empty()) aliased = true;
  }
  // Expand `*`, check names.
  std::vector<std::pair<std::string, const CatalogColumn*>> cols;  // key, column
  for (const auto& it : items) {
    if (it.column == "*") {
      for (const auto& c : t.columns)
        cols.emplace_back(c.name, &c);
      continue;
    }
    const CatalogColumn* c = t.column(it.column);
    if (!c) return unknown_column(t, it.column);
    cols.emplace_back(it.alias.empty() ? c->name : it.alias, c);
  }
  if (!aliased) {
    std::string list;
    std::vector<const CatalogColumn*> plain;
    for (const auto& [key, c] : cols) {
      if (!list.empty()) list += ", ";
      list += col_ref(c->name);
      plain.push_back(c);
    }
    return Projection{list, "_t", std::move(plain)};
  }
  if (cols.size() > kMaxAliasedColumns) {
    return ApiError{400, "PGRST100", "too many columns in select",
                    "at most 50 columns can be selected when renaming", std::nullopt};
  }
  // Output names come from the request: bind them, never splice them.
  std::string list = "json_build_object(";
  bool first = true;
  for (const auto& [key, c] : cols) {
    if (!first) list += ", ";
    first = false;
    list += params.add(key) + "::text, " + col_ref(c->name);
  }
  list += ") AS _o";
  return Projection{list, "_t._o", {}};
}

// How PostgreSQL's text output of a column of `type` (format_type spelling) becomes JSON; types
// whose text is not already the JSON json_agg would write are converted with to_json() in SQL.
JsonKind json_kind(std::string_view type, bool& needs_to_json) {
  needs_to_json = false;
  if (type == "uuid") return JsonKind::quoted;
  if (type == "text" || type == "name" || type == "citext" ||
      type.rfind("character varying", 0) == 0 || type.rfind("character(", 0) == 0 ||
      type == "character" || type == "bpchar") {
    return JsonKind::string;
  }
  if (type == "boolean") return JsonKind::boolean;
  if (type == "integer" || type == "bigint" || type == "smallint" || type == "json" ||
      type == "jsonb") {
    return JsonKind::verbatim;
  }
  needs_to_json = true;  // timestamps, enums, numerics (NaN), floats, arrays, domains, …
  return JsonKind::verbatim;
}

std::string body_expr(const std::string& row_expr, BodyShape shape, bool head) {
  if (head) return "''::text";
  if (shape == BodyShape::singular) {
    return "coalesce((json_agg(" + row_expr + ") -> 0)::text, '')";
  }
  return "coalesce(json_agg(" + row_expr + "), '[]')::text";
}

// For writes: the statement itself fails unless exactly one row came back, so nothing commits.
std::string checked_singular_body(const std::string& row_expr) {
  return "CASE WHEN count(*) = 1 THEN (json_agg(" + row_expr + ") -> 0)::text ELSE ('" +
         std::string(kSingularMarker) + "' || count(*))::int::text END";
}

ApiError invalid_body(std::string details) {
  return ApiError{400, "PGRST102", "Empty or invalid json", std::move(details), std::nullopt};
}

ApiResult<std::vector<std::string>> conflict_target(const WriteRequest& r) {
  std::vector<std::string> cols;
  if (r.query.on_conflict) {
    for (const auto& name : *r.query.on_conflict) {
      const CatalogColumn* c = r.table->column(name);
      if (!c) return unknown_column(*r.table, name);
      cols.push_back(c->name);
    }
  } else {
    cols = r.table->primary_key;
  }
  if (cols.empty()) {
    return ApiError{400, "PGRST100", "an upsert needs on_conflict or a primary key", std::nullopt,
                    std::nullopt};
  }
  return cols;
}

// One INSERT per distinct set of present columns (missing=default lets absent keys take their
// column default, which one column list cannot express).
ApiResult<BuiltWrite> build_insert(const WriteRequest& r) {
  const CatalogTable& t = *r.table;
  std::vector<const json::object*> rows;
  if (r.body.is_object()) {
    rows.push_back(&r.body.get_object());
  } else if (r.body.is_array()) {
    for (const auto& v : r.body.get_array()) {
      if (!v.is_object()) return invalid_body("every element must be a JSON object");
      rows.push_back(&v.get_object());
    }
  } else {
    return invalid_body("expected a JSON object or an array of objects");
  }

  // The column set: ?columns=, else every key of the body, in first-seen order.
  std::vector<std::string> columns;
  if (r.query.columns) {
    columns = *r.query.columns;
  } else {
    std::set<std::string, std::less<>> seen;
    for (const auto* row : rows) {
      for (const auto& kv : *row) {
        if (seen.insert(std::string(kv.key())).second) columns.emplace_back(kv.key());
      }
    }
  }
  for (const auto& c : columns) {
    if (!t.column(c)) return unknown_body_column(t, c);
  }
  const bool representation = r.prefer.ret == Preferences::Return::representation;
  if (rows.empty()) {
    BuiltWrite none;
    none.representation = representation;
    none.statements.push_back(pg::Statement{
        representation ? "SELECT NULL::bigint AS total, 0::bigint AS page_total, '[]'::text AS body"
                       : "SELECT 1 WHERE false",
        {},
        {}});
    return none;
  }

  // Group rows by which of the columns they carry.
  std::vector<std::pair<std::vector<std::string>, json::array>> groups;
  if (!r.prefer.missing_default) {
    json::array all;
    for (const auto* row : rows)
      all.push_back(*row);
    groups.emplace_back(columns, std::move(all));
  } else {
    std::map<std::vector<std::string>, std::size_t> index;
    for (const auto* row : rows) {
      std::vector<std::string> present;
      for (const auto& c : columns) {
        if (row->contains(c)) present.push_back(c);
      }
      auto [it, added] = index.emplace(present, groups.size());
      if (added) groups.emplace_back(present, json::array{});
      groups[it->second].second.push_back(*row);
    }
  }

  std::string on_conflict;
  if (r.prefer.resolution != Preferences::Resolution::none) {
    auto target = conflict_target(r);
    if (!target) return target.error();
    std::string list;
    for (const auto& c : target.value())
      list += (list.empty() ? "" : ", ") + quote_identifier(c);
    on_conflict = " ON CONFLICT (" + list + ")";
  }

  BuiltWrite out;
  out.representation = representation;
  Params params;
  std::vector<std::string> inserts;
  for (auto& [cols, group_rows] : groups) {
    std::string col_list;
    for (const auto& c : cols)
      col_list += (col_list.empty() ? "" : ", ") + quote_identifier(c);
    std::string sql = "INSERT INTO " + table_ref(t) + " AS _r";
    if (!cols.empty()) sql += " (" + col_list + ")";
    const std::string body_param = params.add(json::serialize(group_rows));
    sql += " SELECT " + col_list + " FROM json_populate_recordset(NULL::" + table_ref(t) + ", " +
           body_param + "::json)";
    if (!on_conflict.empty()) {
      bool nothing =
          r.prefer.resolution == Preferences::Resolution::ignore_duplicates || cols.empty();
      sql += on_conflict;
      if (nothing) {
        sql += " DO NOTHING";
      } else {
        sql += " DO UPDATE SET ";
        bool first = true;
        for (const auto& c : cols) {
          if (!first) sql += ", ";
          first = false;
          sql += quote_identifier(c) + " = EXCLUDED." + quote_identifier(c);
        }
      }
    }
    if (representation) {
      sql += " RETURNING _r.*";
      inserts.push_back(std::move(sql));
    } else {
      out.statements.push_back(pg::Statement{std::move(sql), params.take(), {}});
      params = Params{};
    }
  }
  if (!representation) return out;

  std::string with = "WITH ";
  std::string unioned;
  for (std::size_t i = 0; i < inserts.size(); ++i) {
    const std::string name = "_w" + std::to_string(i);
    with += (i ? ", " : "") + name + " AS (" + inserts[i] + ")";
    unioned += (i ? " UNION ALL " : "") + std::string("SELECT * FROM ") + name;
  }
  // Projection parameters continue after the body parameters.
  auto proj = projection(t, r.query.select, params);
  if (!proj) return proj.error();
  std::string sql = with + ", pgrst_source AS (SELECT " + proj->select_list + " FROM (" + unioned +
                    ") _r) SELECT NULL::bigint AS total, count(*) AS page_total, " +
                    (r.shape == BodyShape::singular ? checked_singular_body(proj->row_expr)
                                                    : body_expr(proj->row_expr, r.shape, false)) +
                    " AS body FROM pgrst_source _t";
  out.statements.push_back(pg::Statement{std::move(sql), params.take(), {}});
  return out;
}

ApiResult<BuiltWrite> build_update_or_delete(const WriteRequest& r) {
  const CatalogTable& t = *r.table;
  const bool update = r.kind == WriteKind::update;
  if (r.query.filters.empty()) {
    return ApiError{400, "21000",
                    std::string(update ? "UPDATE" : "DELETE") + " requires a WHERE clause",
                    std::nullopt, "add a filter to the request"};
  }
  Params params;
  std::string sql;
  if (update) {
    if (!r.body.is_object()) return invalid_body("expected a JSON object");
    const json::object& obj = r.body.get_object();
    std::string set;
    for (const auto& kv : obj) {
      const CatalogColumn* c = t.column(kv.key());
      if (!c) return unknown_body_column(t, kv.key());
      set += (set.empty() ? "" : ", ") + quote_identifier(c->name) + " = _b." +
             quote_identifier(c->name);
    }
    if (set.empty()) {
      // Nothing to change: answer as an update that matched no row.
      BuiltWrite out;
      out.representation = r.prefer.ret == Preferences::Return::representation;
      out.statements.push_back(pg::Statement{
          out.representation ? "SELECT NULL::bigint AS total, 0::bigint AS page_total, "
                               "'[]'::text AS body"
                             : "SELECT 1 WHERE false",
          {},
          {}});
      return out;
    }
    const std::string body_param = params.add(json::serialize(obj));
    sql = "UPDATE " + table_ref(t) + " AS _r SET " + set +
          " FROM json_populate_record(NULL::" + table_ref(t) + ", " + body_param + "::json) AS _b";
  } else {
    sql = "DELETE FROM " + table_ref(t) + " AS _r";
  }
  auto where = where_clause(t, r.query.filters, params);
  if (!where) return where.error();
  sql += where.value();

  BuiltWrite out;
  out.representation = r.prefer.ret == Preferences::Return::representation;
  if (!out.representation) {
    out.statements.push_back(pg::Statement{std::move(sql), params.take(), {}});
    return out;
  }
  auto proj = projection(t, r.query.select, params);
  if (!proj) return proj.error();
  std::string full = "WITH _w AS (" + sql + " RETURNING _r.*), pgrst_source AS (SELECT " +
                     proj->select_list +
                     " FROM _w _r) SELECT NULL::bigint AS total, count(*) AS page_total, " +
                     (r.shape == BodyShape::singular ? checked_singular_body(proj->row_expr)
                                                     : body_expr(proj->row_expr, r.shape, false)) +
                     " AS body FROM pgrst_source _t";
  out.statements.push_back(pg::Statement{std::move(full), params.take(), {}});
  return out;
}

}  // namespace

std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

pg::Param bind_json(const json::value& v, std::string_view pg_type) {
  switch (v.kind()) {
    case json::kind::null:
      return std::nullopt;
    case json::kind::string:
      return std::string(v.get_string());
    case json::kind::bool_:
      return std::string(v.get_bool() ? "true" : "false");
    case json::kind::array: {
      const bool pg_array = pg_type.size() > 2 && pg_type.substr(pg_type.size() - 2) == "[]";
      if (pg_array) {
        std::vector<std::string> items;
        bool scalars = true;
        for (const auto& e : v.get_array()) {
          if (e.is_string()) {
            items.emplace_back(e.get_string());
          } else if (e.is_number() || e.is_bool()) {
            items.push_back(json::serialize(e));
          } else {
            scalars = false;
            break;
          }
        }
        if (scalars) return array_literal(items);
      }
      return json::serialize(v);
    }
    default:
      return json::serialize(v);
  }
}

void write_rows_json(const pg::PgResult& result, const std::vector<RowColumn>& columns,
                     BodyShape shape, std::string& out) {
  // libpq directly: this loop runs for every cell of every page.
  const PGresult* res = result.native();
  const int rows = res ? PQntuples(res) : 0;
  const int ncols = res ? std::min<int>(PQnfields(res), static_cast<int>(columns.size())) : 0;
  const bool singular = shape == BodyShape::singular;
  const int last = singular ? std::min(rows, 1) : rows;
  // Each row is written into room made for it at once rather than appended piece by piece (this
  // loop runs for every cell of every page). Per column at most: a comma, the key, and the value
  // with 5 bytes to spare (quotes; "null" and "false" for values of length 0 or 1); plus the row's
  // comma and braces. Strings that need escaping go through core::append_json_string.
  std::size_t fixed = 3;
  for (int col = 0; col < ncols; ++col)
    fixed += columns[static_cast<std::size_t>(col)].key.size() + 6;
  std::vector<int> lengths(static_cast<std::size_t>(ncols));
  if (!singular) out += '[';
  for (int row = 0; row < last; ++row) {
    std::size_t room = fixed;
    for (int col = 0; col < ncols; ++col) {
      const int len = PQgetlength(res, row, col);
      lengths[static_cast<std::size_t>(col)] = len;
      room += static_cast<std::size_t>(len);
    }
    std::size_t at = out.size();
    out.resize(at + room);
    char* w = out.data() + at;
    const auto put = [&w](const char* p, std::size_t n) {
      std::memcpy(w, p, n);
      w += n;
    };
    if (row) *w++ = ',';
    *w++ = '{';
    for (int col = 0; col < ncols; ++col) {
      const RowColumn& rc = columns[static_cast<std::size_t>(col)];
      if (col) *w++ = ',';
      put(rc.key.data(), rc.key.size());
      const auto len = static_cast<std::size_t>(lengths[static_cast<std::size_t>(col)]);
      // SQL NULL reads as an empty value: only those need the NULL check.
      if (len == 0 && PQgetisnull(res, row, col)) {
        put("null", 4);
        continue;
      }
      const char* v = PQgetvalue(res, row, col);
      switch (rc.kind) {
        case JsonKind::string:
          if (std::any_of(v, v + len, [](char c) {
                return static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\';
              })) {
            // Escaping may grow the text up to six times: hand it to the escaper, then make the
            // row's room again for the rest.
            out.resize(static_cast<std::size_t>(w - out.data()));
            core::append_json_string(out, std::string_view(v, len));
            at = out.size();
            out.resize(at + room);
            w = out.data() + at;
            break;
          }
          [[fallthrough]];
        case JsonKind::quoted:
          *w++ = '"';
          put(v, len);
          *w++ = '"';
          break;
        case JsonKind::boolean:
          if (len == 1 && *v == 't') {
            put("true", 4);
          } else {
            put("false", 5);
          }
          break;
        case JsonKind::verbatim:
          put(v, len);
          break;
      }
    }
    *w++ = '}';
    out.resize(static_cast<std::size_t>(w - out.data()));
  }
  if (!singular) out += ']';
}

pg::Statement claims_statement(std::string role, std::string claims_json, bool generic_plan,
                               std::optional<std::int64_t> statement_timeout_ms) {
  // One statement text either way (it stays prepared): a NULL timeout sets the current value.
  static const std::string kClaims =
      "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "
      // As the realtime row authorizer sets them: auth.uid()/auth.role() read these first.
      "set_config('request.jwt.claim.sub', coalesce($2::jsonb ->> 'sub', ''), true), "
      "set_config('request.jwt.claim.role', coalesce($2::jsonb ->> 'role', ''), true), "
      "set_config('statement_timeout', "
      "coalesce($3, current_setting('statement_timeout')), true)";
  static const std::string kClaimsGeneric =
      kClaims + ", set_config('plan_cache_mode', 'force_generic_plan', true)";
  pg::Param timeout;
  if (statement_timeout_ms) timeout = std::to_string(*statement_timeout_ms);
  return pg::Statement{generic_plan ? kClaimsGeneric : kClaims,
                       {std::move(role), std::move(claims_json), std::move(timeout)},
                       {},
                       true};
}

std::optional<std::int64_t> singular_violation(std::string_view pg_message) {
  const std::size_t at = pg_message.find(kSingularMarker);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view digits = pg_message.substr(at + kSingularMarker.size());
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc()) return std::nullopt;
  return n;
}

ApiResult<BuiltRead> build_read(const ReadRequest& r) {
  const CatalogTable& t = *r.table;
  Params params;
  auto proj = projection(t, r.query.select, params);
  if (!proj) return proj.error();
  auto where = where_clause(t, r.query.filters, params);
  if (!where) return where.error();
  const std::size_t where_params = params.size();
  auto order = order_clause(t, r.query.order);
  if (!order) return order.error();

  // The page: ?offset/?limit intersected with the Range header, capped by max_rows.
  std::int64_t lower = r.query.offset.value_or(0);
  std::optional<std::int64_t> upper;  // inclusive
  if (r.query.limit) upper = lower + *r.query.limit - 1;
  if (r.range) {
    lower = std::max(lower, r.range->from);
    if (r.range->to) upper = upper ? std::min(*upper, *r.range->to) : *r.range->to;
  }
  std::optional<std::int64_t> limit;
  if (upper) limit = std::max<std::int64_t>(0, *upper - lower + 1);
  if (r.max_rows) limit = limit ? std::min(*limit, *r.max_rows) : *r.max_rows;

  std::string page;
  if (limit) page += " LIMIT " + params.add(std::to_string(*limit));
  if (lower > 0) page += " OFFSET " + params.add(std::to_string(lower));

  const std::string from = " FROM " + table_ref(t) + " _r";
  if (!r.head && !proj->plain.empty()) {
    // Rows mode: plain rows; the body is written by write_rows_json.
    BuiltRead out;
    out.offset = lower;
    out.limit = limit;
    std::string list;
    out.columns.reserve(proj->plain.size());
    for (const CatalogColumn* c : proj->plain) {
      bool to_json = false;
      RowColumn rc;
      rc.kind = json_kind(c->type, to_json);
      core::append_json_string(rc.key, c->name);
      rc.key += ':';
      out.columns.push_back(std::move(rc));
      if (!list.empty()) list += ", ";
      list += to_json ? "to_json(" + col_ref(c->name) + ")::text" : col_ref(c->name);
    }
    std::vector<pg::Param> all = params.take();
    if (r.count) {
      // The filters' parameters come first; LIMIT/OFFSET, if any, follow them.
      std::vector<pg::Param> filter_params(all.begin(), all.begin() + where_params);
      out.count =
          pg::Statement{"SELECT count(*)" + from + where.value(), std::move(filter_params), {}};
    }
    out.statement = pg::Statement{
        "SELECT " + list + from + where.value() + order.value() + page, std::move(all), {}};
    return out;
  }
  const std::string total =
      r.count ? "(SELECT count(*)" + from + where.value() + ")" : std::string("NULL::bigint");
  std::string sql = "WITH pgrst_source AS (SELECT " + proj->select_list + from + where.value() +
                    order.value() + page + ") SELECT " + total +
                    " AS total, count(*) AS page_total, " +
                    body_expr(proj->row_expr, r.shape, r.head) + " AS body FROM pgrst_source _t";
  return BuiltRead{
      pg::Statement{std::move(sql), params.take(), {}}, lower, limit, {}, std::nullopt};
}

ApiResult<BuiltWrite> build_write(const WriteRequest& r) {
  if (r.kind == WriteKind::insert) return build_insert(r);
  return build_update_or_delete(r);
}

ApiResult<const CatalogFunction*> resolve_function(const Catalog& catalog, std::string_view name,
                                                   const json::object& args) {
  std::vector<const CatalogFunction*> matches;
  const auto candidates = catalog.functions(name);
  for (const CatalogFunction* fn : candidates) {
    bool ok = true;
    for (const auto& kv : args) {
      const bool known = std::any_of(fn->args.begin(), fn->args.end(),
                                     [&](const CatalogArg& a) { return a.name == kv.key(); });
      if (!known) ok = false;
    }
    for (const auto& a : fn->args) {
      if (!a.has_default && (a.name.empty() || !args.contains(a.name))) ok = false;
    }
    if (ok) matches.push_back(fn);
  }
  if (matches.size() == 1) return matches.front();
  std::string given;
  for (const auto& kv : args)
    given += (given.empty() ? "" : ", ") + std::string(kv.key());
  const std::string qualified = catalog.schema() + "." + std::string(name);
  if (matches.empty()) {
    std::optional<std::string> hint;
    if (!candidates.empty()) {
      std::string params;
      for (const auto& a : candidates.front()->args) {
        params += (params.empty() ? "" : ", ") + a.name;
      }
      hint = "Perhaps you meant to call the function " + qualified + "(" + params + ")";
    }
    return ApiError{
        404, "PGRST202",
        "Could not find the function " + qualified + "(" + given + ") in the schema cache",
        given.empty() ? "Searched for the function " + qualified + " without parameters"
                      : "Searched for the function " + qualified + " with parameters " + given,
        hint};
  }
  return ApiError{
      300, "PGRST203",
      "Could not choose the best candidate function between several overloads of " + qualified,
      std::nullopt, "name the arguments so that only one overload matches"};
}

ApiResult<pg::Statement> build_rpc(const CatalogFunction& fn, const json::object& args,
                                   BodyShape shape) {
  Params params;
  std::string call = quote_identifier(fn.schema) + "." + quote_identifier(fn.name) + "(";
  bool first = true;
  for (const auto& a : fn.args) {
    auto it = args.find(a.name);
    if (it == args.end()) continue;
    if (!first) call += ", ";
    first = false;
    // The cast names the catalog's type, so PostgreSQL picks this very overload.
    call += quote_identifier(a.name) + " := " + params.add(bind_json(it->value(), a.type)) +
            "::" + a.type;
  }
  call += ")";
  std::string sql;
  if (fn.returns_void()) {
    sql = "SELECT " + call;
  } else if (fn.returns_set) {
    sql = "SELECT " +
          (shape == BodyShape::singular ? checked_singular_body("_f")
                                        : std::string("coalesce(json_agg(_f), '[]')::text")) +
          " AS body FROM " + call + " _f";
  } else {
    sql = "SELECT to_json(_f)::text AS body FROM " + call + " _f";
  }
  return pg::Statement{std::move(sql), params.take(), {}};
}

}  // namespace rtsync::server::rest
