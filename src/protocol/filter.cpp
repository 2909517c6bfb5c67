#include "rtsync/protocol/filter.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#include "rtsync/core/strings.hpp"

namespace rtsync::protocol {

namespace {

Error filter_error(std::string message) {
  return make_error(Errc::invalid_filter, std::move(message));
}

constexpr std::array<std::pair<std::string_view, FilterOp>, 7> kOps = {{
    {"eq", FilterOp::eq},
    {"neq", FilterOp::neq},
    {"lt", FilterOp::lt},
    {"lte", FilterOp::lte},
    {"gt", FilterOp::gt},
    {"gte", FilterOp::gte},
    {"in", FilterOp::in},
}};

// Postgres's array_isspace: the white space an array literal trims around unquoted elements.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

// The inside of `in.( … )`: comma-separated items, each either a double-quoted string (backslash
// escapes any character; commas allowed) or bare text trimmed of surrounding white space
// (backslash escapes allowed too; a quote may not appear unescaped).
Result<std::vector<std::string>> parse_in_list(std::string_view list) {
  std::vector<std::string> values;
  if (trim(list).empty()) return values;  // in.() — an empty set, matches nothing
  std::size_t i = 0;
  const std::size_t n = list.size();
  while (true) {
    while (i < n && is_space(list[i]))
      ++i;
    std::string item;
    if (i < n && list[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        const char c = list[i++];
        if (c == '\\') {
          if (i == n) break;
          item.push_back(list[i++]);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          item.push_back(c);
        }
      }
      if (!closed) return filter_error("unterminated quote in `in` list");
      while (i < n && is_space(list[i]))
        ++i;
      if (i < n && list[i] != ',') {
        return filter_error("unexpected text after a quoted `in` value");
      }
    } else {
      // Bare item: up to the next unescaped comma; trailing white space is not part of it
      // unless escaped.
      std::size_t kept = 0;  // length of item up to its last escaped or non-space character
      while (i < n && list[i] != ',') {
        const char c = list[i++];
        if (c == '"') return filter_error("unexpected quote inside an unquoted `in` value");
        if (c == '\\') {
          if (i == n) return filter_error("dangling backslash in `in` list");
          item.push_back(list[i++]);
          kept = item.size();
        } else {
          item.push_back(c);
          if (!is_space(c)) kept = item.size();
        }
      }
      item.resize(kept);
      if (item.empty()) return filter_error("empty value in `in` list");
    }
    if (values.size() == kMaxInValues) {
      return filter_error("too many values for `in` filter (maximum " +
                          std::to_string(kMaxInValues) + ")");
    }
    values.push_back(std::move(item));
    if (i >= n) break;
    ++i;  // the comma
  }
  return values;
}

bool needs_quotes(std::string_view v) {
  if (v.empty() || is_space(v.front()) || is_space(v.back())) return true;
  return v.find_first_of(",()\"\\") != std::string_view::npos;
}

// ---- comparison -------------------------------------------------------------------------------

using core::iequals;

// An exact decimal: value = 0.d1d2d3… × 10^exp, digits without leading/trailing zeros (empty
// for zero). Comparing these compares any numeric text exactly (int8 beyond 2^53, numerics with
// many digits), unlike a round trip through double.
struct Decimal {
  enum class Cls { neg_inf, finite, pos_inf, nan };
  Cls cls = Cls::finite;
  bool negative = false;
  std::string digits;
  std::int64_t exp = 0;
};

// Postgres numeric/float input: optional white space, sign, digits with an optional point, an
// optional exponent; or NaN / [+-]Infinity / [+-]inf (any case).
std::optional<Decimal> parse_decimal(std::string_view s) {
  s = trim(s);
  Decimal d;
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) d.negative = s[i++] == '-';
  const auto rest = s.substr(i);
  if (iequals(rest, "infinity") || iequals(rest, "inf")) {
    d.cls = d.negative ? Decimal::Cls::neg_inf : Decimal::Cls::pos_inf;
    return d;
  }
  if (iequals(s, "nan")) {
    d.cls = Decimal::Cls::nan;
    return d;
  }
  std::string all;  // every mantissa digit
  std::int64_t point = -1;
  bool any_digit = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      all.push_back(c);
      any_digit = true;
    } else if (c == '.' && point < 0) {
      point = static_cast<std::int64_t>(all.size());
    } else {
      break;
    }
  }
  if (!any_digit) return std::nullopt;
  if (point < 0) point = static_cast<std::int64_t>(all.size());
  std::int64_t e = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    if (i >= s.size() || s[i] < '0' || s[i] > '9') return std::nullopt;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      if (e < 1'000'000'000) e = e * 10 + (s[i] - '0');  // saturates far beyond any numeric
    }
    if (eneg) e = -e;
  }
  if (i != s.size()) return std::nullopt;
  const auto first = all.find_first_not_of('0');
  if (first == std::string::npos) {
    d.negative = false;  // -0 == 0
    return d;
  }
  const auto last = all.find_last_not_of('0');
  d.digits = all.substr(first, last - first + 1);
  d.exp = point - static_cast<std::int64_t>(first) + e;
  return d;
}

std::optional<Decimal> decimal_of(const json::value& v) {
  char buf[64];
  std::to_chars_result r{};
  switch (v.kind()) {
    case json::kind::int64:
      r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
      break;
    case json::kind::uint64:
      r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      break;
    case json::kind::double_: {
      const double x = v.get_double();
      if (std::isnan(x)) return Decimal{Decimal::Cls::nan, false, {}, 0};
      if (std::isinf(x)) {
        return Decimal{x < 0 ? Decimal::Cls::neg_inf : Decimal::Cls::pos_inf, x < 0, {}, 0};
      }
      r = std::to_chars(buf, buf + sizeof buf, x);
      break;
    }
    case json::kind::string: {
      const auto& s = v.get_string();
      return parse_decimal(std::string_view(s.data(), s.size()));
    }
    default:
      return std::nullopt;
  }
  return parse_decimal(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

// Total order of Postgres numeric: -Infinity < finite < Infinity < NaN, NaN = NaN.
int compare(const Decimal& a, const Decimal& b) {
  auto rank = [](const Decimal& d) {
    switch (d.cls) {
      case Decimal::Cls::neg_inf:
        return 0;
      case Decimal::Cls::finite:
        return 1;
      case Decimal::Cls::pos_inf:
        return 2;
      case Decimal::Cls::nan:
        return 3;
    }
    return 3;
  };
  if (rank(a) != rank(b)) return rank(a) < rank(b) ? -1 : 1;
  if (a.cls != Decimal::Cls::finite) return 0;
  auto sign = [](const Decimal& d) { return d.digits.empty() ? 0 : (d.negative ? -1 : 1); };
  const int sa = sign(a), sb = sign(b);
  if (sa != sb) return sa < sb ? -1 : 1;
  if (sa == 0) return 0;
  int magnitude;  // compare |a| with |b|
  if (a.exp != b.exp) {
    magnitude = a.exp < b.exp ? -1 : 1;
  } else {
    const int c = a.digits.compare(b.digits);  // no trailing zeros: lexicographic is numeric
    magnitude = c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return sa > 0 ? magnitude : -magnitude;
}

// Postgres boolean input (parse_bool): t/true/y/yes/on/1, f/false/n/no/off/0, any case, unique
// prefixes of the words accepted, surrounding white space ignored.
std::optional<bool> parse_bool(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  auto prefix_of = [&](std::string_view word, std::size_t min_len) {
    return s.size() >= min_len && s.size() <= word.size() && iequals(s, word.substr(0, s.size()));
  };
  if (prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || s == "1") return true;
  if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0") return false;
  return std::nullopt;
}

std::optional<bool> bool_of(const json::value& v) {
  if (v.is_bool()) return v.get_bool();
  if (const auto* s = v.if_string()) return parse_bool(std::string_view(s->data(), s->size()));
  return std::nullopt;
}

bool op_holds(FilterOp op, int c) {
  switch (op) {
    case FilterOp::eq:
    case FilterOp::in:
      return c == 0;
    case FilterOp::neq:
      return c != 0;
    case FilterOp::lt:
      return c < 0;
    case FilterOp::lte:
      return c <= 0;
    case FilterOp::gt:
      return c > 0;
    case FilterOp::gte:
      return c >= 0;
  }
  return false;
}

// compare(row value, filter value) per kind; nullopt when either cannot be read as the kind.
std::optional<int> compare_as(ValueKind kind, const json::value& row, std::string_view value,
                              const std::string& row_text) {
  switch (kind) {
    case ValueKind::number: {
      auto a = decimal_of(row);
      if (!a) return std::nullopt;
      auto b = parse_decimal(value);
      if (!b) return std::nullopt;
      return compare(*a, *b);
    }
    case ValueKind::boolean: {
      auto a = bool_of(row);
      auto b = parse_bool(value);
      if (!a || !b) return std::nullopt;
      return static_cast<int>(*a) - static_cast<int>(*b);
    }
    case ValueKind::text: {
      // char_traits<char>::compare orders bytes as unsigned char: UTF-8 code point order, the
      // C collation.
      const int c = std::string_view(row_text).compare(value);
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(FilterOp op) noexcept {
  for (const auto& [name, o] : kOps) {
    if (o == op) return name;
  }
  return "?";
}

Result<Filter> parse_filter(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos) {
    return filter_error("missing '=' (expected column=op.value)");
  }
  Filter f;
  f.column.assign(text.substr(0, eq));
  if (f.column.empty()) return filter_error("empty column name");
  const auto rest = text.substr(eq + 1);
  const auto dot = rest.find('.');
  const auto op_name = rest.substr(0, dot);
  const auto found = std::find_if(kOps.begin(), kOps.end(),
                                  [&](const auto& entry) { return entry.first == op_name; });
  if (found == kOps.end()) {
    return filter_error("unknown operator \"" + std::string(op_name) +
                        "\" (expected eq, neq, lt, lte, gt, gte or in)");
  }
  if (dot == std::string_view::npos) return filter_error("missing '.' after the operator");
  f.op = found->second;
  const auto value = rest.substr(dot + 1);
  if (f.op != FilterOp::in) {
    f.values.emplace_back(value);
    return f;
  }
  if (value.size() < 2 || value.front() != '(' || value.back() != ')') {
    return filter_error("`in` needs a parenthesised list, e.g. in.(a,b)");
  }
  auto values = parse_in_list(value.substr(1, value.size() - 2));
  if (!values.ok()) return values.error();
  f.values = std::move(values).value();
  return f;
}

std::string print_filter(const Filter& f) {
  std::string out = f.column;
  out.push_back('=');
  out.append(to_string(f.op));
  out.push_back('.');
  if (f.op != FilterOp::in) {
    if (!f.values.empty()) out.append(f.values.front());
    return out;
  }
  out.push_back('(');
  for (std::size_t i = 0; i < f.values.size(); ++i) {
    if (i) out.push_back(',');
    const auto& v = f.values[i];
    if (!needs_quotes(v)) {
      out.append(v);
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

ValueKind value_kind(std::string_view typname) {
  for (std::string_view t : {"int2", "int4", "int8", "float4", "float8", "numeric", "oid"}) {
    if (typname == t) return ValueKind::number;
  }
  if (typname == "bool") return ValueKind::boolean;
  return ValueKind::text;
}

bool filter_matches(const Filter& f, const json::object& row, std::optional<ValueKind> kind) {
  const auto* v = row.if_contains(f.column);
  if (!v || v->is_null()) return false;
  const ValueKind k = kind.value_or(v->is_bool()     ? ValueKind::boolean
                                    : v->is_number() ? ValueKind::number
                                                     : ValueKind::text);
  std::string row_text;
  if (k == ValueKind::text) {
    if (const auto* s = v->if_string()) {
      row_text.assign(s->data(), s->size());
    } else {
      row_text = json::serialize(*v);  // a typed value compared as text: its JSON text
    }
  }
  if (f.op == FilterOp::in) {
    for (const auto& value : f.values) {
      auto c = compare_as(k, *v, value, row_text);
      if (c && *c == 0) return true;
    }
    return false;
  }
  if (f.values.empty()) return false;
  auto c = compare_as(k, *v, f.values.front(), row_text);
  return c && op_holds(f.op, *c);
}

}  // namespace rtsync::protocol
