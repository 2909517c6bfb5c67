#include "rtsync/protocol/postgres_changes.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include "json_text.hpp"

namespace rtsync::protocol {

namespace {

Error change_error(std::string message) {
  return make_error(Errc::invalid_frame, "postgres_changes: " + std::move(message));
}

using detail::sv;

std::optional<std::int64_t> as_integer(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

// Required string field.
using detail::read_string;

// ---- JavaScript's parseFloat ------------------------------------------------------------------

// Length of a JS StrWhiteSpaceChar / LineTerminator at s[i] (UTF-8), 0 if none.
std::size_t js_space_at(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  auto rest = s.substr(i);
  for (std::string_view sp : {"\u00A0", "\uFEFF", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003",
                              "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200A",
                              "\u2028", "\u2029", "\u202F", "\u205F", "\u3000"}) {
    if (rest.starts_with(sp)) return sp.size();
  }
  return 0;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// parseFloat(s): the longest StrDecimalLiteral prefix after leading white space, or nullopt for
// NaN. Integers that fit int64 stay exact (JavaScript would round beyond 2^53); other results
// are doubles, integral doubles up to 2^53 are returned as int64 so callers can read them as
// integers.
std::optional<json::value> js_parse_float(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto n = js_space_at(s, i);
    if (n == 0) break;
    i += n;
  }
  s.remove_prefix(i);
  bool negative = false;
  std::size_t p = 0;
  if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    negative = s[p] == '-';
    ++p;
  }
  if (s.substr(p).starts_with("Infinity")) {
    const double inf = std::numeric_limits<double>::infinity();
    return json::value(negative ? -inf : inf);
  }
  const std::size_t int_begin = p;
  while (p < s.size() && is_digit(s[p]))
    ++p;
  const std::size_t int_end = p;
  std::size_t frac_begin = p, frac_end = p;
  if (p < s.size() && s[p] == '.') {
    frac_begin = ++p;
    while (p < s.size() && is_digit(s[p]))
      ++p;
    frac_end = p;
  }
  if (int_end == int_begin && frac_end == frac_begin) return std::nullopt;  // NaN
  std::int64_t exponent = 0;
  bool has_exponent = false;
  if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
    std::size_t q = p + 1;
    bool exp_negative = false;
    if (q < s.size() && (s[q] == '+' || s[q] == '-')) exp_negative = s[q++] == '-';
    if (q < s.size() && is_digit(s[q])) {
      has_exponent = true;
      while (q < s.size() && is_digit(s[q])) {
        if (exponent < 1'000'000) exponent = exponent * 10 + (s[q] - '0');  // saturates
        ++q;
      }
      if (exp_negative) exponent = -exponent;
      p = q;
    }
  }
  const bool has_fraction = frac_end != int_end;  // a '.' was seen
  if (!has_fraction && !has_exponent) {
    std::int64_t value = 0;
    auto digits = s.substr(int_begin, int_end - int_begin);
    std::uint64_t magnitude = 0;
    auto r = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude);
    if (r.ec == std::errc() && magnitude <= static_cast<std::uint64_t>(INT64_MAX) + negative) {
      if (negative && magnitude == 0) return json::value(-0.0);
      value = negative ? static_cast<std::int64_t>(0 - magnitude)
                       : static_cast<std::int64_t>(magnitude);
      return json::value(value);
    }
  }
  // from_chars takes no leading '+'.
  const std::size_t start = s[0] == '+' ? 1 : 0;
  const auto text = s.substr(start, p - start);
  double d = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), d);
  if (r.ec == std::errc::result_out_of_range) {
    // Overflow or underflow: the decimal position of the first significant digit says which.
    std::int64_t e10 = exponent;
    std::size_t k = int_begin;
    while (k < int_end && s[k] == '0')
      ++k;
    if (k < int_end) {
      e10 += static_cast<std::int64_t>(int_end - k);
    } else {
      std::size_t j = frac_begin;
      while (j < frac_end && s[j] == '0')
        ++j;
      e10 -= static_cast<std::int64_t>(j - frac_begin);
    }
    d = e10 > 0 ? std::numeric_limits<double>::infinity() : 0.0;
    if (negative) d = -d;
  } else if (r.ec != std::errc()) {
    return std::nullopt;
  }
  if (std::floor(d) == d && std::fabs(d) <= 9007199254740992.0 && !(d == 0 && std::signbit(d))) {
    return json::value(static_cast<std::int64_t>(d));
  }
  return json::value(d);
}

// ---- realtime-js convertCell --------------------------------------------------------------------

json::value to_number(const json::value& v) {
  if (const auto* s = v.if_string()) {
    if (auto n = js_parse_float(sv(*s))) return *std::move(n);
  }
  return v;
}

json::value to_boolean(const json::value& v) {
  if (const auto* s = v.if_string()) {
    if (*s == "t") return true;
    if (*s == "f") return false;
  }
  return v;
}

json::value to_json(const json::value& v) {
  if (const auto* s = v.if_string()) {
    auto parsed = detail::parse(sv(*s));
    if (parsed.ok()) return std::move(parsed).value();
  }
  return v;
}

json::value to_timestamp_string(const json::value& v) {
  if (const auto* s = v.if_string()) {
    json::string out = *s;
    // String.prototype.replace with a string pattern replaces the first match only.
    if (auto pos = sv(out).find(' '); pos != std::string_view::npos) out[pos] = 'T';
    return out;
  }
  return v;
}

json::value to_array(const json::value& v, std::string_view element_type) {
  const auto* s = v.if_string();
  if (!s || s->empty() || s->front() != '{' || s->back() != '}' || s->size() < 2) return v;
  const std::string_view inner = sv(*s).substr(1, s->size() - 2);
  json::array items;
  std::string bracketed;
  bracketed.reserve(inner.size() + 2);
  bracketed.push_back('[');
  bracketed.append(inner);
  bracketed.push_back(']');
  auto parsed = detail::parse(bracketed);
  if (parsed.ok() && parsed.value().is_array()) {
    items = std::move(parsed.value().get_array());
  } else if (!inner.empty()) {
    // realtime-js falls back to a plain split on commas (quotes are not understood).
    std::size_t start = 0;
    while (true) {
      const auto comma = inner.find(',', start);
      items.emplace_back(json::string(inner.substr(start, comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  for (auto& item : items)
    item = convert_value(element_type, item);
  return items;
}

}  // namespace

Result<ChangeEvent> parse_change_event(const json::value& payload) {
  const auto* root = payload.if_object();
  if (!root) return change_error("payload must be an object");
  ChangeEvent ev;
  const auto* ids = root->if_contains("ids");
  if (!ids || !ids->is_array()) return change_error("ids must be an array");
  ev.ids.reserve(ids->get_array().size());
  for (const auto& id : ids->get_array()) {
    auto n = as_integer(id);
    if (!n) return change_error("ids must be integers");
    ev.ids.push_back(*n);
  }
  const auto* data_v = root->if_contains("data");
  if (!data_v || !data_v->is_object()) return change_error("data must be an object");
  const auto& data = data_v->get_object();
  auto& d = ev.data;
  if (!read_string(data, "schema", d.schema)) return change_error("data.schema must be a string");
  if (!read_string(data, "table", d.table)) return change_error("data.table must be a string");
  if (!read_string(data, "type", d.type)) return change_error("data.type must be a string");
  if (const auto* ts = data.if_contains("commit_timestamp"); ts && !ts->is_null()) {
    if (!ts->is_string()) return change_error("data.commit_timestamp must be a string or null");
    d.commit_timestamp.emplace(sv(ts->get_string()));
  }
  if (const auto* cols = data.if_contains("columns"); cols && !cols->is_null()) {
    if (!cols->is_array()) return change_error("data.columns must be an array");
    d.columns.reserve(cols->get_array().size());
    for (const auto& c : cols->get_array()) {
      // An entry that is not {name, type} strings says nothing about any value's type: skipped,
      // and the values of that column pass through unconverted — as realtime-js, whose
      // conversion looks columns up by name and ignores what it cannot use. The change itself is
      // good data and is delivered.
      const auto* co = c.if_object();
      Column col;
      if (!co || !read_string(*co, "name", col.name) || !read_string(*co, "type", col.type)) {
        continue;
      }
      d.columns.push_back(std::move(col));
    }
  }
  for (auto [key, target] :
       {std::pair{"record", &d.record}, std::pair{"old_record", &d.old_record}}) {
    const auto* r = data.if_contains(key);
    if (!r || r->is_null()) continue;
    if (!r->is_object()) return change_error(std::string("data.") + key + " must be an object");
    *target = r->get_object();
  }
  if (const auto* errors = data.if_contains("errors")) {
    if (!errors->is_null() && !errors->is_array()) {
      return change_error("data.errors must be null or an array");
    }
    d.errors = *errors;
  }
  return ev;
}

json::object build_change_data(const ChangeData& data) {
  json::object o;
  o.reserve(8);
  o.emplace("schema", data.schema);
  o.emplace("table", data.table);
  if (data.commit_timestamp) {
    o.emplace("commit_timestamp", *data.commit_timestamp);
  } else {
    o.emplace("commit_timestamp", nullptr);
  }
  o.emplace("type", data.type);
  json::array cols;
  cols.reserve(data.columns.size());
  for (const auto& c : data.columns)
    cols.emplace_back(json::object{{"name", c.name}, {"type", c.type}});
  o.emplace("columns", std::move(cols));
  if (data.record) o.emplace("record", *data.record);
  if (data.old_record) o.emplace("old_record", *data.old_record);
  o.emplace("errors", data.errors);
  return o;
}

json::value build_change_event(const ChangeEvent& event) {
  json::array ids;
  ids.reserve(event.ids.size());
  for (auto id : event.ids)
    ids.emplace_back(id);
  json::object o;
  o.reserve(2);
  o.emplace("ids", std::move(ids));
  o.emplace("data", build_change_data(event.data));
  return o;
}

json::object to_client_shape(const ChangeData& data) {
  json::object o;
  o.reserve(7);
  o.emplace("schema", data.schema);
  o.emplace("table", data.table);
  if (data.commit_timestamp) {
    o.emplace("commit_timestamp", *data.commit_timestamp);
  } else {
    o.emplace("commit_timestamp", nullptr);
  }
  o.emplace("eventType", data.type);
  const bool has_new = data.type == "INSERT" || data.type == "UPDATE";
  const bool has_old = data.type == "UPDATE" || data.type == "DELETE";
  o.emplace("new",
            has_new && data.record ? convert_record(data.columns, *data.record) : json::object());
  o.emplace("old", has_old && data.old_record ? convert_record(data.columns, *data.old_record)
                                              : json::object());
  o.emplace("errors", data.errors);
  return o;
}

json::object convert_record(const std::vector<Column>& columns, const json::object& record) {
  json::object out;
  out.reserve(record.size());
  for (const auto& kv : record) {
    const auto key = kv.key();
    const Column* column = nullptr;
    for (const auto& c : columns) {
      if (c.name == std::string_view(key.data(), key.size())) {
        column = &c;
        break;
      }
    }
    // A column with an empty type name is skipped like a missing one (JS: `if (colType && …)`).
    if (column && !column->type.empty()) {
      out.emplace(key, convert_value(column->type, kv.value()));
    } else {
      out.emplace(key, kv.value());
    }
  }
  return out;
}

namespace {

enum class Conversion { none, array, boolean, number, json, timestamp };

// The one list of converting column types, for converts_strings and convert_value alike.
Conversion conversion_of(std::string_view type) noexcept {
  if (!type.empty() && type.front() == '_') return Conversion::array;
  if (type == "bool") return Conversion::boolean;
  for (std::string_view t : {"float4", "float8", "int2", "int4", "int8", "numeric", "oid"}) {
    if (type == t) return Conversion::number;
  }
  if (type == "json" || type == "jsonb") return Conversion::json;
  if (type == "timestamp") return Conversion::timestamp;
  return Conversion::none;
}

}  // namespace

bool converts_strings(std::string_view type) noexcept {
  return conversion_of(type) != Conversion::none;
}

json::value convert_value(std::string_view type, const json::value& value) {
  // Every conversion changes only strings; other values pass through.
  if (!value.is_string()) return value;
  switch (conversion_of(type)) {
    case Conversion::array:
      return to_array(value, type.substr(1));
    case Conversion::boolean:
      return to_boolean(value);
    case Conversion::number:
      return to_number(value);
    case Conversion::json:
      return to_json(value);
    case Conversion::timestamp:
      return to_timestamp_string(value);
    case Conversion::none:
      break;
  }
  return value;
}

}  // namespace rtsync::protocol
