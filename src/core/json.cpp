#include "rtsync/core/json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace rtsync::core {

Result<json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return make_error(Errc::invalid_json, ec.message());
  return v;
}

const json::value* find(const json::value& v, std::string_view key) {
  const auto* obj = v.if_object();
  if (!obj) return nullptr;
  return obj->if_contains(key);
}

const json::object* find_object(const json::value& v, std::string_view key) {
  const auto* f = find(v, key);
  return f ? f->if_object() : nullptr;
}

const json::array* find_array(const json::value& v, std::string_view key) {
  const auto* f = find(v, key);
  return f ? f->if_array() : nullptr;
}

std::optional<std::string_view> find_string(const json::value& v, std::string_view key) {
  const auto* f = find(v, key);
  if (!f || !f->is_string()) return std::nullopt;
  return std::string_view(f->get_string());
}

std::optional<bool> find_bool(const json::value& v, std::string_view key) {
  const auto* f = find(v, key);
  if (!f || !f->is_bool()) return std::nullopt;
  return f->get_bool();
}

std::optional<std::int64_t> find_int(const json::value& v, std::string_view key) {
  const auto* f = find(v, key);
  if (!f) return std::nullopt;
  if (f->is_int64()) return f->get_int64();
  if (f->is_uint64() && f->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(f->get_uint64());
  }
  if (f->is_double()) {
    double d = f->get_double();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

namespace {
bool is_number(const json::value& v) {
  return v.is_int64() || v.is_uint64() || v.is_double();
}

bool number_equal(const json::value& a, const json::value& b) {
  if (a.is_double() || b.is_double()) return a.to_number<double>() == b.to_number<double>();
  if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
  if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
  const auto& i = a.is_int64() ? a : b;
  const auto& u = a.is_uint64() ? a : b;
  return i.get_int64() >= 0 && static_cast<std::uint64_t>(i.get_int64()) == u.get_uint64();
}
}  // namespace

bool json_equal(const json::value& a, const json::value& b) {
  if (is_number(a) && is_number(b)) return number_equal(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::null:
      return true;
    case json::kind::bool_:
      return a.get_bool() == b.get_bool();
    case json::kind::string:
      return a.get_string() == b.get_string();
    case json::kind::array: {
      const auto& x = a.get_array();
      const auto& y = b.get_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!json_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case json::kind::object: {
      const auto& x = a.get_object();
      const auto& y = b.get_object();
      if (x.size() != y.size()) return false;
      for (const auto& kv : x) {
        const auto* other = y.if_contains(kv.key());
        if (!other || !json_equal(kv.value(), *other)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

namespace {

// Bytes a JSON string cannot hold as they are: control characters, '"' and '\\'.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c)
    t[static_cast<std::size_t>(c)] = true;
  t['"'] = true;
  t['\\'] = true;
  return t;
}();

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the pending stretch that needs no escaping
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto ch = static_cast<unsigned char>(text[i]);
    if (!kNeedsEscape[ch]) continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        out += "\\u00";
        out += kHex[ch >> 4];
        out += kHex[ch & 0xF];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

// ---- canonical JSON (TanStack hashKey text)
// ------------------------------------------------------

namespace {

// JavaScript's Number::toString for finite doubles (ECMA-262 Number::toString, radix 10), built
// on the shortest round-trip digits that std::to_chars produces.
void append_js_double(std::string& out, double d) {
  if (d == 0) {  // +0 and -0 both print "0"
    out += '0';
    return;
  }
  if (d < 0) {
    out += '-';
    d = -d;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));  // "d.ddde+XX"
  const auto epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos)) {
    if (c != '.') digits += c;
  }
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  int exp10 = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exp10);
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;  // value = 0.digits × 10^n
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, 0, static_cast<std::size_t>(n));
    out += '.';
    out.append(digits, static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += 'e';
    out += (n - 1 >= 0) ? '+' : '-';
    out += std::to_string(std::abs(n - 1));
  }
}

// JavaScript array indices ("0", "7", "4294967294": canonical decimal integers below 2^32 - 1) as
// numbers; nullopt for every other property name ("01", "-1", "4294967295", "a").
std::optional<std::uint32_t> js_array_index(std::string_view key) {
  if (key.empty() || key.size() > 10 || (key.size() > 1 && key[0] == '0')) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (n >= 0xFFFFFFFFull) return std::nullopt;
  return static_cast<std::uint32_t>(n);
}

// Decodes the next code point of UTF-8 text (invalid bytes stand for themselves) and maps it to
// its rank in UTF-16 code unit order: below U+D800 and U+10000 and above keep their value (a
// supplementary character's leading surrogate sorts after U+D7FF), U+E000-U+FFFF sort after
// every supplementary character.
std::uint32_t next_utf16_rank(std::string_view s, std::size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  std::size_t len = b < 0x80           ? 1
                    : (b >> 5) == 0x6  ? 2
                    : (b >> 4) == 0xE  ? 3
                    : (b >> 3) == 0x1E ? 4
                                       : 1;
  if (i + len > s.size()) len = 1;
  std::uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1Fu) : len == 3 ? (b & 0x0Fu) : (b & 0x07u);
  for (std::size_t k = 1; k < len; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  i += len;
  return (cp >= 0xE000 && cp <= 0xFFFF) ? cp + 0x200000 : cp;
}

// The order of an object's members in `JSON.stringify` after TanStack's hashKey rebuilt the object
// from its sorted keys: array indices first, in numeric order (JavaScript's own-property order),
// then every other name in `Array.prototype.sort` order (UTF-16 code units).
bool js_property_less(std::string_view a, std::string_view b) {
  const auto ia = js_array_index(a);
  const auto ib = js_array_index(b);
  if (ia || ib) return ia && ib ? *ia < *ib : ia.has_value();
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const auto ra = next_utf16_rank(a, i);
    const auto rb = next_utf16_rank(b, j);
    if (ra != rb) return ra < rb;
  }
  return i == a.size() && j < b.size();
}

}  // namespace

void append_canonical_json(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      break;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      break;
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      break;
    case json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";  // JSON.stringify(NaN) === "null"
      } else {
        append_js_double(out, d);
      }
      break;
    }
    case json::kind::string:
      append_json_string(out, v.get_string());
      break;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        append_canonical_json(out, e);
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      const auto& obj = v.get_object();
      std::vector<const json::key_value_pair*> members;
      members.reserve(obj.size());
      for (const auto& m : obj)
        members.push_back(&m);
      std::sort(members.begin(), members.end(),
                [](const auto* a, const auto* b) { return js_property_less(a->key(), b->key()); });
      out += '{';
      bool first = true;
      for (const auto* m : members) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, m->key());
        out += ':';
        append_canonical_json(out, m->value());
      }
      out += '}';
      break;
    }
  }
}

std::string canonical_json(const json::value& v) {
  std::string out;
  append_canonical_json(out, v);
  return out;
}

}  // namespace rtsync::core
