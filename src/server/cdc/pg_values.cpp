#include "rtsync/server/cdc/pg_values.hpp"

#include <boost/json/parser.hpp>
#include <charconv>
#include <cmath>
#include <initializer_list>

#include "rtsync/core/strings.hpp"

namespace rtsync::server::cdc {

namespace {

struct Builtin {
  std::uint32_t oid;
  const char* name;
  ValueKind kind;
  std::uint32_t element;
};

// Built-in OIDs are fixed by PostgreSQL (pg_type.dat); listing the common ones makes decoding
// work before (or without) the catalog load.
constexpr Builtin kBuiltins[] = {
    {16, "bool", ValueKind::boolean, 0},
    {17, "bytea", ValueKind::bytea, 0},
    {18, "char", ValueKind::text, 0},
    {19, "name", ValueKind::text, 0},
    {20, "int8", ValueKind::integer, 0},
    {21, "int2", ValueKind::integer, 0},
    {23, "int4", ValueKind::integer, 0},
    {25, "text", ValueKind::text, 0},
    {26, "oid", ValueKind::integer, 0},
    {114, "json", ValueKind::json, 0},
    {142, "xml", ValueKind::text, 0},
    {650, "cidr", ValueKind::text, 0},
    {700, "float4", ValueKind::floating, 0},
    {701, "float8", ValueKind::floating, 0},
    {790, "money", ValueKind::text, 0},
    {829, "macaddr", ValueKind::text, 0},
    {869, "inet", ValueKind::text, 0},
    {1042, "bpchar", ValueKind::text, 0},
    {1043, "varchar", ValueKind::text, 0},
    {1082, "date", ValueKind::text, 0},
    {1083, "time", ValueKind::text, 0},
    {1114, "timestamp", ValueKind::timestamp, 0},
    {1184, "timestamptz", ValueKind::timestamptz, 0},
    {1186, "interval", ValueKind::text, 0},
    {1266, "timetz", ValueKind::text, 0},
    {1560, "bit", ValueKind::text, 0},
    {1562, "varbit", ValueKind::text, 0},
    {1700, "numeric", ValueKind::numeric, 0},
    {2950, "uuid", ValueKind::text, 0},
    {3614, "tsvector", ValueKind::text, 0},
    {3802, "jsonb", ValueKind::json, 0},
    {4072, "jsonpath", ValueKind::text, 0},
    {143, "_xml", ValueKind::array, 142},
    {199, "_json", ValueKind::array, 114},
    {651, "_cidr", ValueKind::array, 650},
    {791, "_money", ValueKind::array, 790},
    {1000, "_bool", ValueKind::array, 16},
    {1001, "_bytea", ValueKind::array, 17},
    {1002, "_char", ValueKind::array, 18},
    {1003, "_name", ValueKind::array, 19},
    {1005, "_int2", ValueKind::array, 21},
    {1007, "_int4", ValueKind::array, 23},
    {1009, "_text", ValueKind::array, 25},
    {1014, "_bpchar", ValueKind::array, 1042},
    {1015, "_varchar", ValueKind::array, 1043},
    {1016, "_int8", ValueKind::array, 20},
    {1021, "_float4", ValueKind::array, 700},
    {1022, "_float8", ValueKind::array, 701},
    {1028, "_oid", ValueKind::array, 26},
    {1040, "_macaddr", ValueKind::array, 829},
    {1041, "_inet", ValueKind::array, 869},
    {1115, "_timestamp", ValueKind::array, 1114},
    {1182, "_date", ValueKind::array, 1082},
    {1183, "_time", ValueKind::array, 1083},
    {1185, "_timestamptz", ValueKind::array, 1184},
    {1187, "_interval", ValueKind::array, 1186},
    {1231, "_numeric", ValueKind::array, 1700},
    {1270, "_timetz", ValueKind::array, 1266},
    {2951, "_uuid", ValueKind::array, 2950},
    {3807, "_jsonb", ValueKind::array, 3802},
};

bool is_builtin(std::uint32_t oid) {
  for (const auto& b : kBuiltins) {
    if (b.oid == oid) return true;
  }
  return false;
}

using core::iequals;

bool is_special_float(std::string_view t) {
  return iequals(t, "NaN") || iequals(t, "Infinity") || iequals(t, "-Infinity") ||
         iequals(t, "inf") || iequals(t, "-inf");
}

json::value integer_value(std::string_view t) {
  std::int64_t i = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), i);
  if (ec == std::errc() && p == t.data() + t.size()) return i;
  std::uint64_t u = 0;
  auto [p2, ec2] = std::from_chars(t.data(), t.data() + t.size(), u);
  if (ec2 == std::errc() && p2 == t.data() + t.size()) return u;
  return json::string(t);
}

json::value double_value(std::string_view t) {
  if (is_special_float(t)) return json::string(t);
  double d = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
  if (ec == std::errc() && p == t.data() + t.size() && std::isfinite(d)) return d;
  return json::string(t);
}

json::value numeric_value(std::string_view t) {
  if (is_special_float(t)) return json::string(t);
  bool integral = !t.empty();
  for (std::size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (!((c >= '0' && c <= '9') || (i == 0 && (c == '-' || c == '+')))) {
      integral = false;
      break;
    }
  }
  if (integral) {
    json::value v = integer_value(t);
    if (!v.is_string()) return v;
  }
  return double_value(t);
}

json::value json_value(std::string_view t) {
  boost::system::error_code ec;
  json::value v = json::parse(t, ec);
  if (ec) return json::string(t);
  return v;
}

// "2025-11-03 09:32:55.5" → "2025-11-03T09:32:55.5"
bool iso_date_time(std::string_view t) {
  return t.size() >= 19 && t[4] == '-' && t[7] == '-' && t[10] == ' ' && t[13] == ':';
}

json::value timestamp_value(std::string_view t, bool with_zone) {
  if (!iso_date_time(t) || t.find(' ', 11) != std::string_view::npos) return json::string(t);
  json::string out;
  out.reserve(t.size() + 3);
  out.append(t.substr(0, 10));
  out.push_back('T');
  out.append(t.substr(11));
  if (with_zone) {
    // PostgreSQL prints whole-hour offsets as "+00"; to_jsonb prints "+00:00".
    const auto sign = t.find_last_of("+-");
    if (sign != std::string_view::npos && sign > 18 && t.size() - sign == 3) out.append(":00");
  }
  return out;
}

class ArrayParser {
 public:
  ArrayParser(std::string_view s, ValueKind kind) : s_(s), kind_(kind) {}

  Result<json::value> parse() {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '[') {
      // Explicit bounds "[1:3]={…}": the JSON array keeps only the elements.
      const auto eq = s_.find('=', i_);
      if (eq == std::string_view::npos) return bad("bounds without '='");
      i_ = eq + 1;
      skip_ws();
    }
    auto v = level();
    if (!v) return v;
    skip_ws();
    if (i_ != s_.size()) return bad("trailing characters");
    return v;
  }

 private:
  Result<json::value> level() {
    if (i_ >= s_.size() || s_[i_] != '{') return bad("expected '{'");
    ++i_;
    json::array arr;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return json::value(std::move(arr));
    }
    for (;;) {
      skip_ws();
      if (i_ >= s_.size()) return bad("unterminated array");
      const char c = s_[i_];
      if (c == '{') {
        auto nested = level();
        if (!nested) return nested;
        arr.push_back(std::move(nested).value());
      } else if (c == '"') {
        ++i_;
        std::string buf;
        bool closed = false;
        while (i_ < s_.size()) {
          const char d = s_[i_++];
          if (d == '\\') {
            if (i_ >= s_.size()) break;
            buf.push_back(s_[i_++]);
          } else if (d == '"') {
            closed = true;
            break;
          } else {
            buf.push_back(d);
          }
        }
        if (!closed) return bad("unterminated quoted element");
        arr.push_back(scalar_to_json(kind_, buf));
      } else {
        std::string buf;
        bool escaped = false;
        while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}') {
          if (s_[i_] == '\\' && i_ + 1 < s_.size()) {
            escaped = true;
            buf.push_back(s_[i_ + 1]);
            i_ += 2;
          } else {
            buf.push_back(s_[i_++]);
          }
        }
        while (!buf.empty() && (buf.back() == ' ' || buf.back() == '\t' || buf.back() == '\n')) {
          buf.pop_back();
        }
        if (buf.empty()) return bad("empty unquoted element");
        if (!escaped && iequals(buf, "NULL")) {
          arr.emplace_back(nullptr);
        } else {
          arr.push_back(scalar_to_json(kind_, buf));
        }
      }
      skip_ws();
      if (i_ >= s_.size()) return bad("unterminated array");
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        return json::value(std::move(arr));
      }
      return bad("expected ',' or '}'");
    }
  }

  void skip_ws() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }

  Error bad(std::string_view what) const {
    return make_error(Errc::invalid_argument, "malformed array literal (" + std::string(what) +
                                                  " at offset " + std::to_string(i_) + ")");
  }

  std::string_view s_;
  std::size_t i_ = 0;
  ValueKind kind_;
};

}  // namespace

TypeRegistry::TypeRegistry() {
  types_.reserve(1024);
  for (const auto& b : kBuiltins)
    types_[b.oid] = TypeInfo{b.name, b.kind, b.element};
}

const TypeInfo* TypeRegistry::find(std::uint32_t oid) const noexcept {
  auto it = types_.find(oid);
  return it == types_.end() ? nullptr : &it->second;
}

std::string_view TypeRegistry::name_of(std::uint32_t oid) const noexcept {
  const auto* t = find(oid);
  return t ? std::string_view(t->name) : std::string_view();
}

ValueKind TypeRegistry::kind_of(std::uint32_t oid) const noexcept {
  const auto* t = find(oid);
  return t ? t->kind : ValueKind::text;
}

ValueKind TypeRegistry::element_kind_of(std::uint32_t array_oid) const noexcept {
  const auto* t = find(array_oid);
  if (!t || t->kind != ValueKind::array || t->element == 0) return ValueKind::text;
  const ValueKind k = kind_of(t->element);
  return k == ValueKind::array ? ValueKind::text : k;
}

Conversion TypeRegistry::conversion_of(std::uint32_t oid) const noexcept {
  const ValueKind k = kind_of(oid);
  return Conversion{k, k == ValueKind::array ? element_kind_of(oid) : ValueKind::text};
}

void TypeRegistry::add_catalog_row(std::uint32_t oid, std::string_view name, char category,
                                   std::uint32_t element, std::uint32_t base) {
  if (is_builtin(oid)) return;
  TypeInfo info;
  info.name = std::string(name);
  if (category == 'A' && element != 0) {
    info.kind = ValueKind::array;
    info.element = element;
  } else if (base != 0) {
    info.kind = kind_of(base);
    info.element = info.kind == ValueKind::array ? find(base)->element : 0;
  }
  types_[oid] = std::move(info);
}

void TypeRegistry::add_type_message(std::uint32_t oid, std::string_view name) {
  auto it = types_.find(oid);
  if (it != types_.end()) {
    it->second.name = std::string(name);
    return;
  }
  TypeInfo info;
  info.name = std::string(name);
  if (!name.empty() && name.front() == '_') info.kind = ValueKind::array;
  types_[oid] = std::move(info);
}

json::value scalar_to_json(ValueKind kind, std::string_view t) {
  switch (kind) {
    case ValueKind::integer:
      return integer_value(t);
    case ValueKind::floating:
      return double_value(t);
    case ValueKind::numeric:
      return numeric_value(t);
    case ValueKind::boolean:
      if (t == "t" || t == "true") return true;
      if (t == "f" || t == "false") return false;
      return json::string(t);
    case ValueKind::json:
      return json_value(t);
    case ValueKind::bytea:
      if (t.size() >= 2 && t[0] == '\\' && t[1] == 'x') return json::string(t.substr(2));
      return json::string(t);
    case ValueKind::timestamp:
      return timestamp_value(t, false);
    case ValueKind::timestamptz:
      return timestamp_value(t, true);
    case ValueKind::array:
    case ValueKind::text:
      break;
  }
  return json::string(t);
}

Result<json::value> parse_array_literal(std::string_view text, ValueKind element_kind) {
  return ArrayParser(text, element_kind).parse();
}

json::value convert_text(Conversion c, std::string_view text) {
  if (c.kind == ValueKind::array) {
    auto arr = parse_array_literal(text, c.element);
    if (arr) return std::move(arr).value();
    return json::string(text);
  }
  return scalar_to_json(c.kind, text);
}

json::value text_to_json(const TypeRegistry& types, std::uint32_t oid, std::string_view text) {
  const TypeInfo* info = types.find(oid);
  if (!info) return json::string(text);
  if (info->kind == ValueKind::array) {
    auto arr = parse_array_literal(text, types.element_kind_of(oid));
    if (arr) return std::move(arr).value();
    return json::string(text);
  }
  return scalar_to_json(info->kind, text);
}

std::optional<std::string> json_to_text(ValueKind kind, const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: {
      const auto& s = v.get_string();
      if (kind == ValueKind::bytea) return "\\x" + std::string(s);
      return std::string(s);
    }
    case json::kind::int64:
      return std::to_string(v.get_int64());
    case json::kind::uint64:
      return std::to_string(v.get_uint64());
    case json::kind::double_: {
      char buf[64];
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v.get_double());
      if (ec != std::errc()) return std::nullopt;
      return std::string(buf, p);
    }
    case json::kind::bool_:
      return std::string(v.get_bool() ? "true" : "false");
    default:
      return std::nullopt;
  }
}

}  // namespace rtsync::server::cdc
