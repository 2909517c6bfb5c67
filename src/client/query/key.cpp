#include "rtsync/client/query/key.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>

#include "number.hpp"
#include "rtsync/client/query/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::query {

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

// Normalises numbers in place (see key.hpp). Non-finite numbers: with `strict`, the JSON pointer of
// the first one is returned; otherwise they become null and are reported the same way.
void normalise(json::value& v, std::string& path, std::string& first_bad) {
  switch (v.kind()) {
    case json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        if (first_bad.empty()) first_bad = path.empty() ? "/" : path;
        v = nullptr;
      } else if (auto i = detail::exact_int53(d)) {
        v = *i;
      }
      break;
    }
    case json::kind::uint64:
      if (v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
        v = static_cast<std::int64_t>(v.get_uint64());
      }
      break;
    case json::kind::array: {
      auto& arr = v.get_array();
      for (std::size_t i = 0; i < arr.size(); ++i) {
        const auto len = path.size();
        path += '/';
        path += std::to_string(i);
        normalise(arr[i], path, first_bad);
        path.resize(len);
      }
      break;
    }
    case json::kind::object:
      for (auto& member : v.get_object()) {
        const auto len = path.size();
        path += '/';
        path.append(member.key().data(), member.key().size());
        normalise(member.value(), path, first_bad);
        path.resize(len);
      }
      break;
    default:
      break;
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

bool detail::prefix_match(const json::array& a, const json::array& b) {
  if (b.size() > a.size()) return false;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (!partial_match(a[i], b[i])) return false;
  }
  return true;
}

void append_canonical(std::string& out, const json::value& v) {
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
      core::append_json_string(out, v.get_string());
      break;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        append_canonical(out, e);
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
        core::append_json_string(out, m->key());
        out += ':';
        append_canonical(out, m->value());
      }
      out += '}';
      break;
    }
  }
}

std::string canonical_json(const json::value& v) {
  std::string out;
  append_canonical(out, v);
  return out;
}

bool partial_match(const json::value& a, const json::value& b) {
  const bool an = detail::is_number(a);
  const bool bn = detail::is_number(b);
  if (an || bn) return an && bn && detail::number_equal(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::null:
      return true;
    case json::kind::bool_:
      return a.get_bool() == b.get_bool();
    case json::kind::string:
      return a.get_string() == b.get_string();
    case json::kind::array:
      return detail::prefix_match(a.get_array(), b.get_array());
    case json::kind::object: {
      const auto& x = a.get_object();
      for (const auto& m : b.get_object()) {
        const auto* found = x.if_contains(m.key());
        if (!found || !partial_match(*found, m.value())) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

std::vector<std::string_view> split_canonical_array(std::string_view text) {
  std::vector<std::string_view> out;
  if (text.size() < 2 || text.front() != '[') return out;
  const std::size_t end = text.size() - 1;  // the closing ']'
  std::size_t start = 1;
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 1; i < end; ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        ++depth;
        break;
      case ']':
      case '}':
        --depth;
        break;
      case ',':
        if (depth == 0) {
          out.push_back(text.substr(start, i - start));
          start = i + 1;
        }
        break;
      default:
        break;
    }
  }
  if (end > start) out.push_back(text.substr(start, end - start));
  return out;
}

std::shared_ptr<const QueryKey::Rep> QueryKey::build(json::array elements) {
  auto rep = std::make_shared<Rep>();
  rep->elements = std::move(elements);
  append_canonical(rep->hash, rep->elements);
  return rep;
}

QueryKey::QueryKey() : rep_(build(json::array{})) {}

QueryKey::QueryKey(std::initializer_list<json::value_ref> elements)
    : QueryKey(json::array(elements)) {}

QueryKey::QueryKey(json::array elements) {
  json::value v(std::move(elements));
  std::string path, bad;
  normalise(v, path, bad);
  if (!bad.empty()) {
    log::get(loggers::kQuery)
        ->error("query key has a non-finite number at {}; it becomes null", bad);
  }
  rep_ = build(std::move(v.get_array()));
}

Result<QueryKey> QueryKey::make(const json::value& key) {
  if (!key.is_array()) {
    return make_error(Errc::invalid_argument, std::string("query key must be a JSON array, got ") +
                                                  std::string(json::to_string(key.kind())));
  }
  json::value v = key;
  std::string path, bad;
  normalise(v, path, bad);
  if (!bad.empty()) {
    return make_error(Errc::invalid_argument,
                      "query key has a non-finite number (NaN or infinity) at " + bad);
  }
  return QueryKey(build(std::move(v.get_array())));
}

Result<QueryKey> QueryKey::parse(std::string_view text) {
  auto parsed = core::parse_json(text);
  if (!parsed) return parsed.error();
  return make(parsed.value());
}

bool QueryKey::matches(const QueryKey& filter) const {
  return detail::prefix_match(rep_->elements, filter.rep_->elements);
}

}  // namespace rtsync::client::query
