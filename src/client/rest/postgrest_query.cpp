#include "rtsync/client/rest/postgrest_query.hpp"

#include "rtsync/core/strings.hpp"

namespace rtsync::client::rest {

PostgrestQuery::PostgrestQuery(std::string table) : table_(std::move(table)) {}

std::string PostgrestQuery::encode(std::string_view text) {
  return core::percent_encode(text);
}

std::string PostgrestQuery::list(const std::vector<std::string>& values) {
  std::string out = "(";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out.push_back(',');
    const std::string& v = values[i];
    const bool quote = v.empty() || v.find_first_of(",()\"\\") != std::string::npos ||
                       v.front() == ' ' || v.back() == ' ';
    if (!quote) {
      out += v;
      continue;
    }
    out.push_back('"');
    for (char c : v) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back(')');
  return out;
}

PostgrestQuery& PostgrestQuery::select(std::string_view columns) {
  select_ = std::string(columns);
  return *this;
}

PostgrestQuery& PostgrestQuery::filter(std::string_view column, std::string_view op,
                                       std::string_view value) {
  filters_.emplace_back(std::string(column), std::string(op) + "." + std::string(value));
  return *this;
}

PostgrestQuery& PostgrestQuery::eq(std::string_view c, std::string_view v) {
  return filter(c, "eq", v);
}
PostgrestQuery& PostgrestQuery::neq(std::string_view c, std::string_view v) {
  return filter(c, "neq", v);
}
PostgrestQuery& PostgrestQuery::lt(std::string_view c, std::string_view v) {
  return filter(c, "lt", v);
}
PostgrestQuery& PostgrestQuery::lte(std::string_view c, std::string_view v) {
  return filter(c, "lte", v);
}
PostgrestQuery& PostgrestQuery::gt(std::string_view c, std::string_view v) {
  return filter(c, "gt", v);
}
PostgrestQuery& PostgrestQuery::gte(std::string_view c, std::string_view v) {
  return filter(c, "gte", v);
}
PostgrestQuery& PostgrestQuery::like(std::string_view c, std::string_view p) {
  return filter(c, "like", p);
}
PostgrestQuery& PostgrestQuery::ilike(std::string_view c, std::string_view p) {
  return filter(c, "ilike", p);
}
PostgrestQuery& PostgrestQuery::in(std::string_view c, const std::vector<std::string>& values) {
  return filter(c, "in", list(values));
}
PostgrestQuery& PostgrestQuery::is_null(std::string_view c) {
  return filter(c, "is", "null");
}
PostgrestQuery& PostgrestQuery::not_null(std::string_view c) {
  return filter(c, "not.is", "null");
}
PostgrestQuery& PostgrestQuery::not_(std::string_view c, std::string_view op, std::string_view v) {
  return filter(c, "not." + std::string(op), v);
}

PostgrestQuery& PostgrestQuery::order(std::string_view column, bool ascending,
                                      std::optional<bool> nulls_first) {
  std::string term = std::string(column) + (ascending ? ".asc" : ".desc");
  if (nulls_first) term += *nulls_first ? ".nullsfirst" : ".nullslast";
  order_.push_back(std::move(term));
  return *this;
}

PostgrestQuery& PostgrestQuery::limit(std::int64_t n) {
  limit_ = n;
  return *this;
}
PostgrestQuery& PostgrestQuery::offset(std::int64_t n) {
  offset_ = n;
  return *this;
}
PostgrestQuery& PostgrestQuery::range(std::int64_t from, std::int64_t to) {
  offset_ = from;
  limit_ = to - from + 1;
  return *this;
}
PostgrestQuery& PostgrestQuery::count_exact() {
  count_ = true;
  return *this;
}
PostgrestQuery& PostgrestQuery::single() {
  single_ = true;
  return *this;
}

std::string PostgrestQuery::query_string(bool filters_only) const {
  std::string q;
  auto add = [&q](std::string_view key, std::string_view value) {
    if (!q.empty()) q.push_back('&');
    q += encode(key);
    q.push_back('=');
    q += encode(value);
  };
  if (!filters_only) add("select", select_.empty() ? "*" : select_);
  for (const auto& [k, v] : filters_)
    add(k, v);
  if (filters_only) return q;
  if (!order_.empty()) {
    std::string joined;
    for (const auto& o : order_)
      joined += (joined.empty() ? "" : ",") + o;
    add("order", joined);
  }
  if (offset_) add("offset", std::to_string(*offset_));
  if (limit_) add("limit", std::to_string(*limit_));
  return q;
}

std::string PostgrestQuery::target(std::string_view prefix) const {
  return std::string(prefix) + "/" + encode(table_) + "?" + query_string();
}

}  // namespace rtsync::client::rest
