#include "json_text.hpp"

#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parser.hpp>
#include <charconv>
#include <cmath>
#include <cstring>

namespace rtsync::protocol::detail {

namespace {

json::parse_options frame_options() {
  json::parse_options opt;
  opt.max_depth = kMaxJsonDepth;
  return opt;
}

// Handler that accepts everything: basic_parser alone checks the grammar, depth and UTF-8.
struct NullHandler {
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  using ec_t = json::error_code;
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return true; }
  bool on_object_end(std::size_t, ec_t&) { return true; }
  bool on_string_part(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_string(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_key_part(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_key(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_number_part(json::string_view, ec_t&) { return true; }
  bool on_int64(std::int64_t, json::string_view, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, ec_t&) { return true; }
  bool on_double(double, json::string_view, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(json::string_view, ec_t&) { return true; }
  bool on_comment(json::string_view, ec_t&) { return true; }
};

// 0: copy as is; otherwise the character after the backslash ('u' → \u00XX).
constexpr std::array<char, 256> make_escape_table() {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c)
    t[c] = 'u';
  t['\b'] = 'b';
  t['\f'] = 'f';
  t['\n'] = 'n';
  t['\r'] = 'r';
  t['\t'] = 't';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}
constexpr auto kEscape = make_escape_table();

// SWAR: does any byte of w need escaping (< 0x20, '"' or '\\')?
inline bool needs_escape(std::uint64_t w) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  constexpr std::uint64_t highs = 0x8080808080808080ull;
  const std::uint64_t lt20 = (w - ones * 0x20) & ~w & highs;
  const std::uint64_t q = w ^ (ones * '"');
  const std::uint64_t bq = (q - ones) & ~q & highs;
  const std::uint64_t b = w ^ (ones * '\\');
  const std::uint64_t bb = (b - ones) & ~b & highs;
  return (lt20 | bq | bb) != 0;
}

constexpr std::size_t kMaxRecursion = 256;

void append_value_at(std::string& out, const json::value& v, std::size_t depth);

void append_number(std::string& out, const json::value& v) {
  char buf[32];
  std::to_chars_result r{};
  switch (v.kind()) {
    case json::kind::int64:
      r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
      break;
    case json::kind::uint64:
      r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      break;
    default: {
      const double d = v.get_double();
      // JSON has no NaN/Infinity; JSON.stringify writes null for them.
      if (!std::isfinite(d)) {
        out.append("null", 4);
        return;
      }
      r = std::to_chars(buf, buf + sizeof buf, d);
      break;
    }
  }
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void append_value_at(std::string& out, const json::value& v, std::size_t depth) {
  switch (v.kind()) {
    case json::kind::null:
      out.append("null", 4);
      return;
    case json::kind::bool_:
      if (v.get_bool()) {
        out.append("true", 4);
      } else {
        out.append("false", 5);
      }
      return;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      append_number(out, v);
      return;
    case json::kind::string: {
      const auto& s = v.get_string();
      append_string(out, std::string_view(s.data(), s.size()));
      return;
    }
    case json::kind::array: {
      if (depth >= kMaxRecursion) {
        out += json::serialize(v);  // the serializer keeps its own heap stack
        return;
      }
      const auto& a = v.get_array();
      out.push_back('[');
      bool first = true;
      for (const auto& e : a) {
        if (!first) out.push_back(',');
        first = false;
        append_value_at(out, e, depth + 1);
      }
      out.push_back(']');
      return;
    }
    case json::kind::object: {
      if (depth >= kMaxRecursion) {
        out += json::serialize(v);
        return;
      }
      const auto& o = v.get_object();
      out.push_back('{');
      bool first = true;
      for (const auto& kv : o) {
        if (!first) out.push_back(',');
        first = false;
        const auto k = kv.key();
        append_string(out, std::string_view(k.data(), k.size()));
        out.push_back(':');
        append_value_at(out, kv.value(), depth + 1);
      }
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

Result<json::value> parse(std::string_view text) {
  // One parser per thread: its internal stack keeps its capacity between frames.
  thread_local json::parser parser(json::storage_ptr(), frame_options());
  json::error_code ec;
  parser.reset();
  parser.write(text.data(), text.size(), ec);
  if (ec) return make_error(Errc::invalid_json, ec.message());
  return parser.release();
}

bool is_valid_json(std::string_view text) {
  json::basic_parser<NullHandler> p(frame_options());
  json::error_code ec;
  const std::size_t n = p.write_some(false, text.data(), text.size(), ec);
  return !ec && n == text.size() && p.done();
}

void append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  const char* p = s.data();
  const char* const end = p + s.size();
  const char* run = p;
  while (p < end) {
    if (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if (!needs_escape(w)) {
        p += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(*p);
    const char e = kEscape[c];
    if (e == 0) {
      ++p;
      continue;
    }
    out.append(run, static_cast<std::size_t>(p - run));
    if (e == 'u') {
      static constexpr char kHex[] = "0123456789abcdef";
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out.append(u, 6);
    } else {
      const char esc[2] = {'\\', e};
      out.append(esc, 2);
    }
    run = ++p;
  }
  out.append(run, static_cast<std::size_t>(end - run));
  out.push_back('"');
}

void append_value(std::string& out, const json::value& v) {
  append_value_at(out, v, 0);
}

}  // namespace rtsync::protocol::detail
