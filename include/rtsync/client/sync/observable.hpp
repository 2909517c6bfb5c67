// Observable values for the coordination layer: the C++ stand-in for the seed's React state
// (`useSimpleRealtime`, the selected project). The layer's subscriber Sets are
// core::ListenerList (rtsync/core/listener_list.hpp), whose re-entrancy contract the listeners of
// an Observable follow too.
//
// Thread safety: loop-confined, like everything in the client.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "rtsync/core/listener_list.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client::sync {

// A value with change notification. `set` notifies only when the new value differs
// (operator==); listeners receive a reference to the current value, so a listener that sets the
// value again makes later listeners see the newest value (after the nested notification ran).
// Thread safety: loop-confined.
template <class T>
class Observable {
 public:
  // Starts at `initial`; `component` names the logger for listener errors (static storage).
  explicit Observable(T initial = T{}, std::string_view component = "Observable")
      : value_(std::move(initial)), listeners_(component) {}

  const T& get() const noexcept { return value_; }  // the value now

  // Returns true when the value changed (and listeners were notified).
  bool set(T value) {
    if (value == value_) return false;
    value_ = std::move(value);
    listeners_.notify(value_);
    return true;
  }

  // Applies `fn` to the value in place and notifies if the result differs.
  template <class Fn>
  bool update(Fn&& fn) {
    T next = value_;
    std::forward<Fn>(fn)(next);
    return set(std::move(next));
  }

  // Called with the new value after every change, until the Subscription is removed.
  core::Subscription subscribe(std::function<void(const T&)> listener) {
    return listeners_.add(std::move(listener));
  }
  std::size_t subscriber_count() const { return listeners_.size(); }  // listeners now

 private:
  T value_;
  core::ListenerList<const T&> listeners_;
};

// The application's selected project (the seed's ProjectProvider): none, or a project id.
using ProjectSelection = Observable<std::optional<std::string>>;

}  // namespace rtsync::client::sync
