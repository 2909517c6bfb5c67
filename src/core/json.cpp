#include "rtsync/core/json.hpp"

#include <array>
#include <cmath>

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

}  // namespace rtsync::core
