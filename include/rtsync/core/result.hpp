// Expected errors as values (the project's one error vocabulary).
//
// rtsync is C++20, so `std::expected` is not available; `Result<T>` is the small subset of it the
// project needs. Functions that can fail on bad input (decoders, parsers, network replies) return
// `Result<T>`; exceptions are reserved for programming errors and are never thrown through the
// event loop.
//
// Thread safety: plain value types.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace rtsync {

// What went wrong, as a stable machine-readable code plus a human message.
enum class Errc {
  invalid_json,      // text is not JSON
  invalid_frame,     // JSON (or bytes) of the wrong shape for a frame
  invalid_utf8,      // a string field that must be UTF-8 is not
  truncated,         // a binary frame shorter than its header or declared lengths
  unknown_kind,      // binary frame kind not understood
  invalid_argument,  // caller-supplied value out of its domain
  invalid_filter,    // postgres_changes filter grammar
  too_large,         // a size limit was exceeded
  timeout,           // an operation did not complete in time
  closed,            // the resource was closed
  unauthorized,      // authentication / authorization failed
  not_found,         // unknown topic, table, key…
  io,                // an operating-system / network error
  protocol,          // the peer broke the protocol
  remote,            // the peer answered with an error (message carries its reason)
  cancelled,         // the operation was cancelled
  internal,          // a bug: an invariant did not hold
};

std::string_view to_string(Errc code) noexcept;

struct Error {
  Errc code = Errc::internal;
  std::string message;

  // "invalid_frame: expected a JSON array of 5 elements"
  std::string describe() const;
  friend bool operator==(const Error&, const Error&) = default;
};

inline Error make_error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

// Holds either a T or an Error. Accessing the wrong alternative is a programming error (asserts).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok() && "Result::value() on an error");
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok() && "Result::value() on an error");
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok() && "Result::value() on an error");
    return std::get<0>(std::move(v_));
  }
  const Error& error() const& {
    assert(!ok() && "Result::error() on a value");
    return std::get<1>(v_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation with no value.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& {
    assert(!ok_ && "Result::error() on success");
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace rtsync
