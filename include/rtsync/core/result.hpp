// Expected errors as values (the project's one error vocabulary).
//
// rtsync is C++20, so `std::expected` is not available; `Result<T, E = Error>` is the subset of it
// the project needs, and the one result type every layer uses. Functions that can fail on bad input
// (decoders, parsers, network replies) return `Result<T>`; exceptions are reserved for programming
// errors and are never thrown through the event loop.
//
// Thread safety: plain value types.
#pragma once

#include <cassert>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
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

template <class T, class E>
class Result;

namespace detail {
template <class R>
struct is_result : std::false_type {};
template <class T, class E>
struct is_result<Result<T, E>> : std::true_type {};
}  // namespace detail

// Holds either a T or an E (an `Error` unless a layer has a richer error of its own, such as the
// REST layer's PostgREST-shaped `ApiError`). Accessing the wrong alternative is a programming error
// (asserts). The monadic members follow `std::expected`: `value_or`, `and_then` (chains a step
// that can fail), `transform` (maps the value), `transform_error` (maps the error).
template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  using error_type = E;

  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

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
  E& error() & {
    assert(!ok() && "Result::error() on a value");
    return std::get<1>(v_);
  }
  const E& error() const& {
    assert(!ok() && "Result::error() on a value");
    return std::get<1>(v_);
  }
  E&& error() && {
    assert(!ok() && "Result::error() on a value");
    return std::get<1>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The value, or `fallback` on an error.
  template <class U>
  T value_or(U&& fallback) const& {
    return ok() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }
  template <class U>
  T value_or(U&& fallback) && {
    return ok() ? std::get<0>(std::move(v_)) : static_cast<T>(std::forward<U>(fallback));
  }

  // f(value) -> Result<U, E>; an error passes through untouched.
  template <class F>
  auto and_then(F&& f) const& {
    using R = std::remove_cvref_t<std::invoke_result_t<F, const T&>>;
    static_assert(detail::is_result<R>::value, "and_then: f must return a Result");
    if (!ok()) return R(std::get<1>(v_));
    return std::invoke(std::forward<F>(f), std::get<0>(v_));
  }
  template <class F>
  auto and_then(F&& f) && {
    using R = std::remove_cvref_t<std::invoke_result_t<F, T&&>>;
    static_assert(detail::is_result<R>::value, "and_then: f must return a Result");
    if (!ok()) return R(std::get<1>(std::move(v_)));
    return std::invoke(std::forward<F>(f), std::get<0>(std::move(v_)));
  }

  // f(value) -> U gives Result<U, E> (Result<void, E> when f returns nothing).
  template <class F>
  auto transform(F&& f) const& {
    using U = std::remove_cvref_t<std::invoke_result_t<F, const T&>>;
    if (!ok()) return Result<U, E>(std::get<1>(v_));
    if constexpr (std::is_void_v<U>) {
      std::invoke(std::forward<F>(f), std::get<0>(v_));
      return Result<void, E>();
    } else {
      return Result<U, E>(std::invoke(std::forward<F>(f), std::get<0>(v_)));
    }
  }
  template <class F>
  auto transform(F&& f) && {
    using U = std::remove_cvref_t<std::invoke_result_t<F, T&&>>;
    if (!ok()) return Result<U, E>(std::get<1>(std::move(v_)));
    if constexpr (std::is_void_v<U>) {
      std::invoke(std::forward<F>(f), std::get<0>(std::move(v_)));
      return Result<void, E>();
    } else {
      return Result<U, E>(std::invoke(std::forward<F>(f), std::get<0>(std::move(v_))));
    }
  }

  // g(error) -> G gives Result<T, G>.
  template <class G>
  auto transform_error(G&& g) const& {
    using F = std::remove_cvref_t<std::invoke_result_t<G, const E&>>;
    if (ok()) return Result<T, F>(std::get<0>(v_));
    return Result<T, F>(std::invoke(std::forward<G>(g), std::get<1>(v_)));
  }

 private:
  std::variant<T, E> v_;
};

// Result of an operation with no value.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  Result() = default;
  Result(E error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const E& error() const& {
    assert(!ok_ && "Result::error() on success");
    return error_;
  }

  // f() -> Result<U, E>; an error passes through untouched.
  template <class F>
  auto and_then(F&& f) const {
    using R = std::remove_cvref_t<std::invoke_result_t<F>>;
    static_assert(detail::is_result<R>::value, "and_then: f must return a Result");
    if (!ok_) return R(error_);
    return std::invoke(std::forward<F>(f));
  }
  // f() -> U gives Result<U, E>.
  template <class F>
  auto transform(F&& f) const {
    using U = std::remove_cvref_t<std::invoke_result_t<F>>;
    if (!ok_) return Result<U, E>(error_);
    if constexpr (std::is_void_v<U>) {
      std::invoke(std::forward<F>(f));
      return Result<void, E>();
    } else {
      return Result<U, E>(std::invoke(std::forward<F>(f)));
    }
  }

 private:
  E error_{};
  bool ok_ = true;
};

}  // namespace rtsync
