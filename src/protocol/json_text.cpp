#include "json_text.hpp"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <charconv>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// SWAR: the high bit of each byte of w that needs escaping (< 0x20, '"' or '\\'); bytes above the
// first flagged one may be flagged falsely.
inline std::uint64_t escape_flags(std::uint64_t w) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  constexpr std::uint64_t highs = 0x8080808080808080ull;
  const std::uint64_t lt20 = (w - ones * 0x20) & ~w & highs;
  const std::uint64_t q = w ^ (ones * '"');
  const std::uint64_t bq = (q - ones) & ~q & highs;
  const std::uint64_t b = w ^ (ones * '\\');
  const std::uint64_t bb = (b - ones) & ~b & highs;
  return lt20 | bq | bb;
}

// Bytes [0, n) of p (1 ≤ n ≤ 8) in a little-endian word, the rest spaces (which need no escape),
// without a variable-length memcpy call and without reading outside [p, p + n).
inline std::uint64_t load_word(const char* p, std::size_t n) noexcept {
  std::uint64_t w;
  if (n >= 4) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    w = lo | (static_cast<std::uint64_t>(hi) << ((n - 4) * 8));  // overlap holds equal bytes
  } else {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    w = u[0] | (static_cast<std::uint64_t>(u[n / 2]) << (n / 2 * 8)) |
        (static_cast<std::uint64_t>(u[n - 1]) << ((n - 1) * 8));
  }
  if (n < 8) w |= 0x2020202020202020ull << (n * 8);
  return w;
}

constexpr std::size_t kMaxRecursion = 256;

}  // namespace

json::storage_ptr make_frame_arena(std::size_t text_size) {
  // A parsed DOM is typically 2-3× its text (16-byte values, object tables, strings beyond the
  // small-buffer size); a first block of that size usually holds the whole payload.
  return json::make_shared_resource<json::monotonic_resource>(
      std::max<std::size_t>(1024, 3 * text_size));
}

Result<json::value> parse(std::string_view text, json::storage_ptr sp) {
  // One parser per thread: its internal stack keeps its capacity between frames.
  thread_local json::parser parser(json::storage_ptr(), frame_options());
  json::error_code ec;
  parser.reset(std::move(sp));
  parser.write(text.data(), text.size(), ec);
  if (ec) {
    parser.reset();  // drop partial values now, not at the next frame
    return make_error(Errc::invalid_json, ec.message());
  }
  return parser.release();
}

bool is_valid_json(std::string_view text) {
  json::basic_parser<NullHandler> p(frame_options());
  json::error_code ec;
  const std::size_t n = p.write_some(false, text.data(), text.size(), ec);
  return !ec && n == text.size() && p.done();
}

// ---- TextWriter -------------------------------------------------------------------------------

struct TextWriter::Buffer {
  std::unique_ptr<char[]> data;
  std::size_t capacity = 0;
  bool busy = false;
};

namespace {
constexpr std::size_t kInitialCapacity = 4096;
// Do not pin the memory of one huge frame for the rest of the thread's life.
constexpr std::size_t kKeepCapacity = std::size_t{1} << 20;

TextWriter::Buffer& thread_buffer();
}  // namespace

TextWriter::TextWriter() {
  auto& shared = thread_buffer();
  borrowed_ = !shared.busy;  // a nested writer on this thread gets its own buffer
  buffer_ = borrowed_ ? &shared : new Buffer();
  buffer_->busy = true;
  if (!buffer_->data) {
    buffer_->data = std::make_unique<char[]>(kInitialCapacity);
    buffer_->capacity = kInitialCapacity;
  }
  begin_ = p_ = buffer_->data.get();
  end_ = begin_ + buffer_->capacity;
}

TextWriter::~TextWriter() {
  if (!borrowed_) {
    delete buffer_;
    return;
  }
  buffer_->busy = false;
  if (buffer_->capacity > kKeepCapacity) {
    buffer_->data.reset();
    buffer_->capacity = 0;
  }
}

void TextWriter::grow(std::size_t n) {
  const std::size_t used = static_cast<std::size_t>(p_ - begin_);
  std::size_t capacity = std::max<std::size_t>(buffer_->capacity * 2, kInitialCapacity);
  while (capacity - used < n)
    capacity *= 2;
  auto data = std::make_unique<char[]>(capacity);
  std::memcpy(data.get(), begin_, used);
  buffer_->data = std::move(data);
  buffer_->capacity = capacity;
  begin_ = buffer_->data.get();
  p_ = begin_ + used;
  end_ = begin_ + capacity;
}

void TextWriter::string(std::string_view s) {
  // Worst case every byte becomes \u00XX; the 8 spare bytes let clean blocks (and the padded
  // tail) be stored whole before checking how much of them counts.
  reserve(6 * s.size() + 2 + 8);
  char* out = p_;
  *out++ = '"';
  const char* in = s.data();
  const char* const end = in + s.size();
  while (in < end) {
#if defined(__SSE2__)
    while (end - in >= 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
      const __m128i control =
          _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F));
      const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
      const __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
      const int mask = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(control, quote), backslash));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v);
      const int clean = mask == 0 ? 16 : __builtin_ctz(static_cast<unsigned>(mask));
      in += clean;
      out += clean;
      if (mask != 0) break;
    }
#endif
    const std::size_t left = static_cast<std::size_t>(end - in);
    if (left == 0) break;
    const std::uint64_t w = load_word(in, left < 8 ? left : 8);
    const std::uint64_t flags = escape_flags(w);
    std::memcpy(out, &w, 8);
    // The lowest flagged byte is exact (borrows only create false flags above a true one).
    const std::size_t clean =
        flags == 0 ? (left < 8 ? left : 8) : static_cast<std::size_t>(__builtin_ctzll(flags) / 8);
    in += clean;
    out += clean;
    if (flags == 0) continue;
    const auto c = static_cast<unsigned char>(*in++);
    const char e = kEscape[c];
    if (e == 'u') {
      static constexpr char kHex[] = "0123456789abcdef";
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      std::memcpy(out, u, 6);
      out += 6;
    } else {
      out[0] = '\\';
      out[1] = e;
      out += 2;
    }
  }
  *out++ = '"';
  p_ = out;
}

void TextWriter::number(const json::value& v) {
  reserve(32);
  std::to_chars_result r{};
  switch (v.kind()) {
    case json::kind::int64:
      r = std::to_chars(p_, end_, v.get_int64());
      break;
    case json::kind::uint64:
      r = std::to_chars(p_, end_, v.get_uint64());
      break;
    default: {
      const double d = v.get_double();
      // JSON has no NaN/Infinity; JSON.stringify writes null for them.
      if (!std::isfinite(d)) {
        raw("null");
        return;
      }
      r = std::to_chars(p_, end_, d);
      break;
    }
  }
  p_ = r.ptr;
}

void TextWriter::value(const json::value& v) {
  value_at(v, 0);
}

void TextWriter::value_at(const json::value& v, std::size_t depth) {
  switch (v.kind()) {
    case json::kind::null:
      raw("null");
      return;
    case json::kind::bool_:
      raw(v.get_bool() ? std::string_view("true") : "false");
      return;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      number(v);
      return;
    case json::kind::string: {
      const auto& s = v.get_string();
      string(std::string_view(s.data(), s.size()));
      return;
    }
    case json::kind::array: {
      if (depth >= kMaxRecursion) {
        raw(json::serialize(v));  // the serializer keeps its own heap stack
        return;
      }
      const auto& a = v.get_array();
      raw('[');
      bool first = true;
      for (const auto& e : a) {
        if (!first) raw(',');
        first = false;
        value_at(e, depth + 1);
      }
      raw(']');
      return;
    }
    case json::kind::object: {
      if (depth >= kMaxRecursion) {
        raw(json::serialize(v));
        return;
      }
      const auto& o = v.get_object();
      raw('{');
      bool first = true;
      for (const auto& kv : o) {
        if (!first) raw(',');
        first = false;
        const auto k = kv.key();
        string(std::string_view(k.data(), k.size()));
        raw(':');
        value_at(kv.value(), depth + 1);
      }
      raw('}');
      return;
    }
  }
}

namespace {
TextWriter::Buffer& thread_buffer() {
  thread_local TextWriter::Buffer buffer;
  return buffer;
}
}  // namespace

}  // namespace rtsync::protocol::detail
