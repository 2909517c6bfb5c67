// Callback registries for the socket and its channels: entries may be added or removed (through
// their Subscription) while a dispatch is running, even by the callback being dispatched, and a
// Subscription may outlive the registry. Same pattern as core::EventBus.
#pragma once

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/core/log.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client::detail {

// `T` needs a `bool removed` member.
template <class T>
class Registry {
 public:
  using Ptr = std::shared_ptr<T>;

  core::Subscription add(Ptr entry) {
    state_->entries.push_back(entry);
    return core::Subscription(
        [weak_state = std::weak_ptr<State>(state_), weak_entry = std::weak_ptr<T>(entry)] {
          auto e = weak_entry.lock();
          if (!e) return;
          e->removed = true;
          if (auto s = weak_state.lock()) std::erase(s->entries, e);
        });
  }
  // Dispatch over a copy: entries added meanwhile wait for the next dispatch, entries removed
  // meanwhile are skipped by their flag.
  std::vector<Ptr> snapshot() const { return state_->entries; }
  const std::vector<Ptr>& entries() const { return state_->entries; }
  std::size_t size() const { return state_->entries.size(); }
  void clear() {
    for (auto& e : state_->entries)
      e->removed = true;
    state_->entries.clear();
  }

 private:
  struct State {
    std::vector<Ptr> entries;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// Runs a user callback; an exception is logged under `component` and swallowed, so it never
// unwinds through the loop or leaves the transport half-updated.
template <class F, class... Args>
void invoke_guarded(std::string_view component, const F& fn, Args&&... args) {
  if (!fn) return;
  try {
    fn(std::forward<Args>(args)...);
  } catch (const std::exception& ex) {
    log::get(component)->error("callback threw: {}", ex.what());
  } catch (...) {
    log::get(component)->error("callback threw a non-exception");
  }
}

template <class... Args>
class Listeners {
 public:
  using Fn = std::function<void(Args...)>;

  core::Subscription add(Fn fn) {
    auto e = std::make_shared<Entry>();
    e->fn = std::move(fn);
    return registry_.add(std::move(e));
  }
  void notify(std::string_view component, Args... args) const {
    for (const auto& e : registry_.snapshot()) {
      if (e->removed) continue;
      invoke_guarded(component, e->fn, args...);
    }
  }
  std::size_t size() const { return registry_.size(); }
  void clear() { registry_.clear(); }

 private:
  struct Entry {
    Fn fn;
    bool removed = false;
  };
  Registry<Entry> registry_;
};

}  // namespace rtsync::client::detail
