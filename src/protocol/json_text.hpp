// JSON text helpers shared by the protocol codecs: a reusable parser that places each frame's
// values in one arena, a validating scan that builds nothing, and a writer that appends to a
// reused buffer and copies the result out once. Internal.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::protocol::detail {

// Nesting limit for frames. Boost.JSON's default (32) rejects payloads realtime-js accepts;
// unbounded depth would let a hostile frame cost unbounded memory and recursion in consumers.
inline constexpr std::size_t kMaxJsonDepth = 128;

// A reference-counted monotonic arena sized for the values of a `text_size`-byte frame: one
// allocation for a whole payload instead of one per node, released with the last value using it.
json::storage_ptr make_frame_arena(std::size_t text_size);

// Parses one complete JSON text (no comments, no trailing commas, UTF-8 validated) into values
// using `sp`. Never throws except std::bad_alloc.
Result<json::value> parse(std::string_view text, json::storage_ptr sp = {});

// True iff `text` is one valid JSON text (same rules as parse), without building a value.
bool is_valid_json(std::string_view text);

// Compact JSON text writer. Borrows a per-thread buffer (keeps its capacity between frames, so
// steady-state encoding allocates only the returned string); take() copies the text out.
class TextWriter {
 public:
  TextWriter();
  ~TextWriter();
  TextWriter(const TextWriter&) = delete;
  TextWriter& operator=(const TextWriter&) = delete;

  void raw(std::string_view s) {
    reserve(s.size());
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void raw(char c) {
    reserve(1);
    *p_++ = c;
  }
  // A JSON string literal, escaped like JSON.stringify (", \, control characters).
  void string(std::string_view s);
  // A JSON value, keys in insertion order; non-finite doubles are written as null.
  void value(const json::value& v);
  std::string take() const { return std::string(begin_, static_cast<std::size_t>(p_ - begin_)); }

  struct Buffer;  // the per-thread storage (defined in the .cpp)

 private:
  void reserve(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) grow(n);
  }
  void grow(std::size_t n);
  void value_at(const json::value& v, std::size_t depth);
  void number(const json::value& v);

  Buffer* buffer_;
  bool borrowed_;
  char* begin_;
  char* p_;
  char* end_;
};

// A Boost.JSON string as a string_view.
inline std::string_view sv(const json::string& s) noexcept {
  return {s.data(), s.size()};
}

// Copies the string member `key` of `o` into `out`; false (and `out` untouched) when `key` is
// missing or not a string.
inline bool read_string(const json::object& o, std::string_view key, std::string& out) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return false;
  out.assign(sv(v->get_string()));
  return true;
}

}  // namespace rtsync::protocol::detail
