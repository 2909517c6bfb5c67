// Listener lists and observable values for the coordination layer: the C++ stand-in for the
// seed's subscriber Sets and React state (`useSimpleRealtime`, the selected project).
//
// Contract (the registry contract of core::Subscription):
//   - listeners run in registration order;
//   - a listener added during a notification is not called for that notification;
//   - a listener removed during a notification (by itself or another) is not called afterwards;
//   - a notification from inside a listener runs at once, depth-first (like the EventBus);
//   - a listener that throws is logged under the list's component name and counted; the others
//     still run;
//   - Subscriptions may outlive the list (removal then does nothing).
// Notifying allocates nothing: the hot path (one notification per realtime event) stays cheap.
//
// Thread safety: loop-confined, like everything in the client.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/core/log.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client::sync {

// Listeners called with `Args...`, in registration order; safe against removal, addition and the
// owner's destruction from inside a listener. A listener that throws is logged and counted; the
// others still run. Thread safety: loop-confined.
template <class... Args>
class ListenerList {
 public:
  // One listener.
  using Listener = std::function<void(Args...)>;

  // `component` names the logger for listener errors; it must have static storage (the log::
  // names).
  explicit ListenerList(std::string_view component) : state_(std::make_shared<State>()) {
    state_->component = component;
  }
  ListenerList(const ListenerList&) = delete;
  ListenerList& operator=(const ListenerList&) = delete;

  // Registers a listener until the Subscription is removed (a listener added during a
  // notification is called from the next one on).
  core::Subscription add(Listener listener) {
    auto entry = std::make_shared<Entry>();
    entry->fn = std::move(listener);
    state_->entries.push_back(entry);
    return core::Subscription(
        [weak = std::weak_ptr<State>(state_), e = std::weak_ptr<Entry>(entry)] {
          auto entry = e.lock();
          if (!entry || entry->removed) return;
          entry->removed = true;
          auto state = weak.lock();
          if (!state) return;
          if (state->depth > 0) {
            state->dirty = true;  // compacted when the outermost notification ends
          } else {
            std::erase(state->entries, entry);
          }
        });
  }

  // Calls the listeners registered before this call. Returns how many ran.
  std::size_t notify(Args... args) const {
    auto state = state_;  // keeps the list alive if a listener destroys its owner
    const std::size_t n = state->entries.size();
    std::size_t ran = 0;
    ++state->depth;
    for (std::size_t i = 0; i < n; ++i) {
      // Entries are never erased while depth > 0, so index i and the Entry stay valid even if a
      // listener appends (and the vector reallocates).
      Entry* entry = state->entries[i].get();
      if (entry->removed) continue;
      ++ran;
      try {
        entry->fn(args...);
      } catch (const std::exception& ex) {
        ++state->errors;
        log::get(state->component)->error("listener threw: {}", ex.what());
      } catch (...) {
        ++state->errors;
        log::get(state->component)->error("listener threw a non-exception");
      }
    }
    if (--state->depth == 0 && state->dirty) {
      state->dirty = false;
      std::erase_if(state->entries, [](const auto& e) { return e->removed; });
    }
    return ran;
  }

  // Listeners registered and not removed.
  std::size_t size() const {
    std::size_t live = 0;
    for (const auto& e : state_->entries)
      live += e->removed ? 0 : 1;
    return live;
  }
  std::uint64_t errors() const noexcept { return state_->errors; }  // listeners that threw

 private:
  struct Entry {
    Listener fn;
    bool removed = false;
  };
  struct State {
    std::vector<std::shared_ptr<Entry>> entries;
    std::string_view component;
    int depth = 0;
    bool dirty = false;
    std::uint64_t errors = 0;
  };
  std::shared_ptr<State> state_;
};

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
  ListenerList<const T&> listeners_;
};

// The application's selected project (the seed's ProjectProvider): none, or a project id.
using ProjectSelection = Observable<std::optional<std::string>>;

}  // namespace rtsync::client::sync
