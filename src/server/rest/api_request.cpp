#include "rtsync/server/rest/api_request.hpp"
#include "rtsync/core/strings.hpp"

#include <charconv>

#include "rtsync/core/json.hpp"
#include "rtsync/server/http/request_parsing.hpp"

namespace rtsync::server::rest {
namespace {

ApiError parse_error(std::string message, std::optional<std::string> details = std::nullopt) {
  return ApiError{400, "PGRST100", std::move(message), std::move(details), std::nullopt};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<std::int64_t> parse_count(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

// A field name: `"quoted ""name"""` or a bare run of characters up to one of `stops`.
// Returns the name and how many characters it took, or nullopt when malformed.
std::optional<std::pair<std::string, std::size_t>> read_field(std::string_view s,
                                                              std::string_view stops) {
  if (!s.empty() && s.front() == '"') {
    std::string out;
    for (std::size_t i = 1; i < s.size(); ++i) {
      if (s[i] == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          out.push_back('"');
          ++i;
          continue;
        }
        if (out.empty()) return std::nullopt;
        return std::make_pair(out, i + 1);
      }
      if (s[i] == '\\' && i + 1 < s.size()) {
        out.push_back(s[++i]);
        continue;
      }
      out.push_back(s[i]);
    }
    return std::nullopt;  // unterminated
  }
  std::size_t n = 0;
  while (n < s.size() && stops.find(s[n]) == std::string_view::npos)
    ++n;
  if (n == 0) return std::nullopt;
  return std::make_pair(std::string(s.substr(0, n)), n);
}

// Splits on `sep` outside double quotes and parentheses.
std::vector<std::string_view> split_top(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  int depth = 0;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == sep && depth == 0) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

std::optional<FilterOp> op_from(std::string_view s) {
  if (s == "eq") return FilterOp::eq;
  if (s == "neq") return FilterOp::neq;
  if (s == "lt") return FilterOp::lt;
  if (s == "lte") return FilterOp::lte;
  if (s == "gt") return FilterOp::gt;
  if (s == "gte") return FilterOp::gte;
  if (s == "in") return FilterOp::in;
  if (s == "is") return FilterOp::is;
  if (s == "like") return FilterOp::like;
  if (s == "ilike") return FilterOp::ilike;
  return std::nullopt;
}

bool is_reserved_logic(std::string_view key) {
  return key == "or" || key == "and" || key == "not.or" || key == "not.and";
}

}  // namespace

std::string ApiError::to_json() const {
  json::object o;
  o["code"] = code;
  o["details"] = details ? json::value(*details) : json::value(nullptr);
  o["hint"] = hint ? json::value(*hint) : json::value(nullptr);
  o["message"] = message;
  return json::serialize(o);
}

ApiResult<std::vector<std::pair<std::string, std::string>>> split_query(std::string_view raw) {
  std::string_view bad;
  auto pairs = http::split_query(raw, &bad);
  if (!pairs) {
    return parse_error("invalid percent-encoding in the query string",
                       std::string(bad.substr(0, 200)));
  }
  return std::move(*pairs);
}

ApiResult<std::vector<SelectItem>> parse_select(std::string_view text) {
  std::vector<SelectItem> items;
  if (core::trim_blanks(text).empty()) return items;
  for (std::string_view raw : split_top(text, ',')) {
    std::string_view item = core::trim_blanks(raw);
    if (item.empty())
      return parse_error("\"failed to parse select parameter (" + std::string(text) + ")\"",
                         "empty item in select");
    if (item == "*") {
      items.push_back(SelectItem{"*", ""});
      continue;
    }
    if (item.find('(') != std::string_view::npos) {
      const std::string rel(core::trim_blanks(item.substr(0, item.find('('))));
      return ApiError{400, "PGRST200",
                      "Could not find a relationship for '" + rel + "' in the schema cache",
                      "resource embedding is not supported by this server", std::nullopt};
    }
    SelectItem out;
    auto first = read_field(item, ":");
    if (!first)
      return parse_error("\"failed to parse select parameter (" + std::string(text) + ")\"");
    std::string_view rest = item.substr(first->second);
    if (rest.size() >= 1 && rest.front() == ':' && !(rest.size() >= 2 && rest[1] == ':')) {
      out.alias = first->first;
      rest.remove_prefix(1);
      auto col = read_field(rest, ":");
      if (!col)
        return parse_error("\"failed to parse select parameter (" + std::string(text) + ")\"");
      out.column = col->first;
      rest = rest.substr(col->second);
    } else {
      out.column = first->first;
    }
    if (!rest.empty()) {
      return parse_error("\"failed to parse select parameter (" + std::string(text) + ")\"",
                         "casts are not supported by this server");
    }
    if (out.column.find("->") != std::string::npos) {
      return parse_error("\"failed to parse select parameter (" + std::string(text) + ")\"",
                         "JSON paths are not supported by this server");
    }
    items.push_back(std::move(out));
  }
  return items;
}

ApiResult<std::vector<OrderTerm>> parse_order(std::string_view text) {
  std::vector<OrderTerm> terms;
  auto fail = [&] {
    return parse_error("\"failed to parse order (" + std::string(text) + ")\"",
                       "expected col[.asc|.desc][.nullsfirst|.nullslast]");
  };
  for (std::string_view raw : split_top(text, ',')) {
    std::string_view term = core::trim_blanks(raw);
    auto field = read_field(term, ".");
    if (!field) return fail();
    OrderTerm t;
    t.column = field->first;
    std::string_view rest = term.substr(field->second);
    bool dir_seen = false;
    while (!rest.empty()) {
      if (rest.front() != '.') return fail();
      rest.remove_prefix(1);
      const std::size_t dot = rest.find('.');
      const std::string word = lower(rest.substr(0, dot));
      rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot);
      if ((word == "asc" || word == "desc") && !dir_seen && !t.nulls_first) {
        t.descending = word == "desc";
        dir_seen = true;
      } else if ((word == "nullsfirst" || word == "nullslast") && !t.nulls_first) {
        t.nulls_first = word == "nullsfirst";
      } else {
        return fail();
      }
    }
    terms.push_back(std::move(t));
  }
  return terms;
}

ApiResult<std::vector<std::string>> parse_in_list(std::string_view text) {
  auto fail = [&] {
    return parse_error("\"failed to parse filter (in." + std::string(text) + ")\"",
                       "expected a list like (a,b,\"c,d\")");
  };
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') return fail();
  std::string_view body = text.substr(1, text.size() - 2);
  std::vector<std::string> out;
  if (body.empty()) return out;
  for (std::string_view raw : split_top(body, ',')) {
    std::string_view item = raw;
    if (!item.empty() && item.front() == '"') {
      std::string v;
      std::size_t i = 1;
      bool closed = false;
      for (; i < item.size(); ++i) {
        if (item[i] == '\\' && i + 1 < item.size()) {
          v.push_back(item[++i]);
        } else if (item[i] == '"') {
          closed = true;
          ++i;
          break;
        } else {
          v.push_back(item[i]);
        }
      }
      if (!closed || i != item.size()) return fail();
      out.push_back(std::move(v));
    } else {
      out.emplace_back(item);
    }
  }
  return out;
}

ApiResult<Filter> parse_filter(std::string column, std::string_view text) {
  Filter f;
  f.column = std::move(column);
  auto fail = [&](std::string details) {
    return parse_error("\"failed to parse filter (" + std::string(text) + ")\"",
                       std::move(details));
  };
  std::string_view rest = text;
  if (rest.substr(0, 4) == "not.") {
    f.negated = true;
    rest.remove_prefix(4);
  }
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos) {
    return fail(
        "expected [not.]<operator>.<value> with operator eq, neq, lt, lte, gt, gte, "
        "like, ilike, in or is");
  }
  const std::string_view op_text = rest.substr(0, dot);
  const std::string_view value = rest.substr(dot + 1);
  auto op = op_from(op_text);
  if (!op) {
    return fail("unknown or unsupported operator \"" + std::string(op_text) +
                "\" (supported: eq, neq, lt, lte, gt, gte, like, ilike, in, is)");
  }
  f.op = *op;
  switch (f.op) {
    case FilterOp::in: {
      auto list = parse_in_list(value);
      if (!list) return list.error();
      f.list = std::move(list).value();
      break;
    }
    case FilterOp::is: {
      const std::string v = lower(value);
      if (v == "null") {
        f.is = IsValue::null;
      } else if (v == "not_null") {
        f.is = IsValue::not_null;
      } else if (v == "true") {
        f.is = IsValue::is_true;
      } else if (v == "false") {
        f.is = IsValue::is_false;
      } else if (v == "unknown") {
        f.is = IsValue::unknown;
      } else {
        return fail("is. takes null, not_null, true, false or unknown");
      }
      break;
    }
    case FilterOp::like:
    case FilterOp::ilike:
      f.value.reserve(value.size());
      for (char c : value)
        f.value.push_back(c == '*' ? '%' : c);
      break;
    default:
      f.value = std::string(value);
  }
  return f;
}

ApiResult<QueryParams> parse_query_string(std::string_view raw_query) {
  auto pairs = split_query(raw_query);
  if (!pairs) return pairs.error();
  QueryParams q;
  auto split_columns = [](std::string_view text) -> ApiResult<std::vector<std::string>> {
    std::vector<std::string> cols;
    for (std::string_view raw : split_top(text, ',')) {
      std::string_view item = core::trim_blanks(raw);
      auto f = read_field(item, ",");
      if (!f || f->second != item.size()) {
        return parse_error("\"failed to parse columns parameter (" + std::string(text) + ")\"");
      }
      cols.push_back(f->first);
    }
    return cols;
  };
  for (auto& [key, value] : pairs.value()) {
    if (key == "select") {
      auto s = parse_select(value);
      if (!s) return s.error();
      q.select = std::move(s).value();
    } else if (key == "order") {
      auto o = parse_order(value);
      if (!o) return o.error();
      for (auto& t : o.value())
        q.order.push_back(std::move(t));
    } else if (key == "limit" || key == "offset") {
      auto n = parse_count(value);
      if (!n) {
        return parse_error("\"failed to parse " + key + " parameter (" + value + ")\"",
                           "expected a non-negative integer");
      }
      (key == "limit" ? q.limit : q.offset) = *n;
    } else if (key == "columns") {
      auto c = split_columns(value);
      if (!c) return c.error();
      q.columns = std::move(c).value();
    } else if (key == "on_conflict") {
      auto c = split_columns(value);
      if (!c) return c.error();
      q.on_conflict = std::move(c).value();
    } else if (is_reserved_logic(key)) {
      return parse_error("\"failed to parse logic tree (" + value + ")\"",
                         "or/and filters are not supported by this server");
    } else {
      if (key.empty() || key.find('.') != std::string::npos ||
          key.find("->") != std::string::npos) {
        return parse_error("\"failed to parse filter (" + key + ")\"",
                           "only plain column names can be filtered on");
      }
      auto f = parse_filter(key, value);
      if (!f) return f.error();
      q.filters.push_back(std::move(f).value());
    }
  }
  return q;
}

Preferences parse_prefer(std::string_view header) {
  Preferences p;
  for (std::string_view raw : split_top(header, ',')) {
    const std::string token = lower(core::trim_blanks(raw));
    if (token == "return=representation") {
      p.ret = Preferences::Return::representation;
    } else if (token == "return=minimal") {
      p.ret = Preferences::Return::minimal;
    } else if (token == "return=headers-only") {
      p.ret = Preferences::Return::headers_only;
    } else if (token == "count=exact" || token == "count=planned" || token == "count=estimated") {
      p.count = true;
    } else if (token == "missing=default") {
      p.missing_default = true;
    } else if (token == "resolution=merge-duplicates") {
      p.resolution = Preferences::Resolution::merge_duplicates;
    } else if (token == "resolution=ignore-duplicates") {
      p.resolution = Preferences::Resolution::ignore_duplicates;
    }
  }
  return p;
}

std::optional<RangeHeader> parse_range_header(std::string_view header) {
  std::string_view h = core::trim_blanks(header);
  if (h.substr(0, 6) == "items=") h.remove_prefix(6);
  const std::size_t dash = h.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto from = parse_count(h.substr(0, dash));
  if (!from) return std::nullopt;
  RangeHeader r{*from, std::nullopt};
  std::string_view to = h.substr(dash + 1);
  if (!to.empty()) {
    auto t = parse_count(to);
    if (!t) return std::nullopt;
    r.to = *t;
  }
  return r;
}

}  // namespace rtsync::server::rest
