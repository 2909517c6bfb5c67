// Dispatch-safe listener lists: the one registry behind every subscribe / listen / observe / on_…
// in rtsync (EventBus handlers, diagnostics providers, query observers' and the query cache's
// listeners, the socket's and channels' callbacks and bindings, presence callbacks, the
// coordination layer's listeners). Each registration returns a core::Subscription.
//
// BasicListenerList<T> keeps entries of any type T (a binding's filter and callback, a listener and
// the result version it last saw) in registration order and visits them with for_each().
// ListenerList<Args...> is the common case: entries are functions called with Args...; an
// exception from one is logged and counted and the others still run.
//
// Re-entrancy contract. A dispatch is a for_each() or notify() call; "during a dispatch" means from
// inside a callback it made, however deeply nested:
//   - Adding: the new entry is not visited by any dispatch already running (enclosing dispatches
//     included); dispatches started afterwards visit it.
//   - Removing (Subscription::remove() or destroying the Subscription — the running callback's own
//     or any other's —, remove_if(), clear()): the entry is not visited afterwards by any running
//     dispatch. Its value stays alive until the outermost dispatch ends, so a callback may drop
//     its own Subscription, or destroy the object holding it, and return normally.
//   - Destroying the list (its owner) during a dispatch: the running callback returns normally;
//     no further entry is visited, by that dispatch or any enclosing one, and each returns the
//     number visited so far. Arguments that referred into the owner are not touched again.
//   - Dispatching again (re-entrant notify): the nested dispatch runs at once and completes before
//     the outer one goes on (depth-first, like DOM dispatchEvent). It visits the entries live when
//     it starts — entries the outer dispatch's callbacks added included —; the outer dispatch then
//     goes on with the entries live at its own start, skipping those removed meanwhile.
//   - A Subscription may outlive its list; removing it then does nothing. remove() is idempotent.
//   - size() counts live entries at every moment, during a dispatch too.
// A dispatch allocates nothing; removed entries are dropped when the outermost dispatch ends.
//
// Thread safety: none. A list and its Subscriptions are used from one thread (in the client, the
// owner's loop); they are loop-confined like their owner.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/core/log.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::core {

// Calls `fn(args...)` (nothing when `fn` is an empty std::function) and contains an exception: it
// is logged under `component` as "<what> threw: <message>". Returns false when `fn` threw. For
// user callbacks that must never unwind through the loop.
template <class F, class... Args>
bool call_guarded(std::string_view component, std::string_view what, const F& fn, Args&&... args) {
  if constexpr (requires { static_cast<bool>(fn); }) {
    if (!fn) return true;
  }
  try {
    fn(std::forward<Args>(args)...);
    return true;
  } catch (const std::exception& ex) {
    log::get(component)->error("{} threw: {}", what, ex.what());
  } catch (...) {
    log::get(component)->error("{} threw a non-exception", what);
  }
  return false;
}

// Entries of type T in registration order, visited by for_each() under the re-entrancy contract of
// the file comment. Not copyable or movable (Subscriptions point at it).
template <class T>
class BasicListenerList {
 public:
  // One registration as snapshot() hands it out: its value, and whether it has been removed.
  class Entry {
   public:
    explicit Entry(T v) : value(std::move(v)) {}  // made by add()
    T value;                                      // what was registered
    // True once the registration was removed (its Subscription, remove_if, clear, the list's end).
    bool removed() const noexcept { return removed_; }

   private:
    friend class BasicListenerList;
    bool removed_ = false;
  };

  BasicListenerList() : state_(std::make_shared<State>()) {}
  // Removes every entry: a dispatch running now visits no further entry (file comment).
  ~BasicListenerList() { clear(); }
  BasicListenerList(const BasicListenerList&) = delete;
  BasicListenerList& operator=(const BasicListenerList&) = delete;

  // Registers `value` until the Subscription is removed.
  Subscription add(T value) { return add(std::move(value), nullptr); }

  // As add(value); `after_remove` runs right after the entry is removed through its Subscription
  // (not after remove_if/clear, nor once the list is gone). It must not throw: Subscriptions remove
  // from their destructor.
  Subscription add(T value, std::function<void()> after_remove) {
    auto entry = std::make_shared<Entry>(std::move(value));
    state_->entries.push_back(entry);
    ++state_->live;
    return Subscription([weak = std::weak_ptr<State>(state_), e = std::weak_ptr<Entry>(entry),
                         after = std::move(after_remove)] {
      auto entry = e.lock();  // held until the end: its value is destroyed with the list intact
      if (!entry || entry->removed_) return;
      auto state = weak.lock();
      if (!state) return;
      remove_entry(*state, entry);
      if (after) after();
    });
  }

  // Calls `visit(T&)` for each entry live now, in registration order (file comment for what
  // callbacks may do meanwhile). Returns how many were visited. An exception from `visit`
  // propagates; the list stays consistent.
  template <class F>
  std::size_t for_each(F&& visit) {
    return visit_all<T>(state_, visit);
  }
  // As for_each(), with `visit(const T&)`.
  template <class F>
  std::size_t for_each(F&& visit) const {
    return visit_all<const T>(state_, visit);
  }

  // Removes the live entries for which `pred(const T&)` is true; returns how many.
  template <class Pred>
  std::size_t remove_if(Pred&& pred) {
    auto state = state_;
    std::size_t removed = 0;
    Dispatch scope(*state);  // a removed value's destructor may touch the list: keep it stable
    const std::size_t n = state->entries.size();
    for (std::size_t i = 0; i < n; ++i) {
      Entry& e = *state->entries[i];
      if (e.removed_ || !pred(std::as_const(e.value))) continue;
      mark_removed(*state, e);
      ++removed;
    }
    return removed;
  }

  // Removes every entry; their Subscriptions become inert.
  void clear() {
    auto state = state_;
    Dispatch scope(*state);
    for (auto& e : state->entries) {
      if (!e->removed_) mark_removed(*state, *e);
    }
  }

  // The live entries now, in order, as shared handles: for a caller that must remember a set of
  // registrations past this call (a channel's bindings of its current join) and see later whether
  // each was removed (Entry::removed()). Allocates.
  std::vector<std::shared_ptr<Entry>> snapshot() const {
    std::vector<std::shared_ptr<Entry>> out;
    out.reserve(state_->live);
    for (const auto& e : state_->entries) {
      if (!e->removed_) out.push_back(e);
    }
    return out;
  }

  std::size_t size() const noexcept { return state_->live; }  // live entries
  bool empty() const noexcept { return state_->live == 0; }   // no live entry

 private:
  struct State {
    std::vector<std::shared_ptr<Entry>> entries;
    std::vector<std::shared_ptr<Entry>> spare;  // compaction buffer, reused
    std::size_t live = 0;
    int depth = 0;  // dispatches (and removals) running
    bool dirty = false;
  };

  // While one is alive, entries are only marked removed, never erased: indices and the values
  // being called stay valid. The outermost one drops the removed entries.
  class Dispatch {
   public:
    explicit Dispatch(State& s) : s_(s) { ++s_.depth; }
    ~Dispatch() {
      if (s_.depth == 1) compact(s_);
      --s_.depth;
    }
    Dispatch(const Dispatch&) = delete;
    Dispatch& operator=(const Dispatch&) = delete;

   private:
    State& s_;
  };

  static void compact(State& s) {
    // The removed values are destroyed after `entries` is whole again, while depth is still held:
    // a destructor that removes another entry (a captured Subscription) only marks it, and the
    // loop drops that one too.
    while (s.dirty) {
      s.dirty = false;
      s.spare.clear();
      for (auto& e : s.entries) {
        if (!e->removed_) s.spare.push_back(e);
      }
      s.entries.swap(s.spare);
      s.spare.clear();
    }
  }

  static void mark_removed(State& s, Entry& e) {
    e.removed_ = true;
    --s.live;
    s.dirty = true;
  }

  static void remove_entry(State& s, const std::shared_ptr<Entry>& e) {
    Dispatch scope(s);  // erases at once when no dispatch runs
    mark_removed(s, *e);
  }

  template <class V, class F>
  static std::size_t visit_all(const std::shared_ptr<State>& owned, F& visit) {
    const std::shared_ptr<State> state = owned;  // alive even if `visit` destroys the list
    Dispatch scope(*state);
    const std::size_t n = state->entries.size();  // entries added meanwhile are not visited
    std::size_t visited = 0;
    for (std::size_t i = 0; i < n; ++i) {
      Entry& e = *state->entries[i];
      if (e.removed_) continue;
      ++visited;
      visit(static_cast<V&>(e.value));
    }
    return visited;
  }

  std::shared_ptr<State> state_;
};

// Functions called with `Args...` in registration order, under the re-entrancy contract of the
// file comment. A listener that throws is logged under the list's component ("<what> threw: …")
// and counted in errors(); the others still run.
template <class... Args>
class ListenerList {
 public:
  // One listener.
  using Listener = std::function<void(Args...)>;

  // `component` names the logger for listener errors and must have static storage (the log::
  // and loggers:: names); `what` names a listener in that log line ("listener threw: …").
  explicit ListenerList(std::string_view component, std::string what = "listener")
      : meta_(std::make_shared<Meta>(component, std::move(what))) {}

  // Registers `listener` until the Subscription is removed.
  Subscription add(Listener listener) { return list_.add(std::move(listener)); }

  // Calls the listeners live now with `args`. Returns how many ran (threw or not).
  std::size_t notify(Args... args) const {
    const std::shared_ptr<Meta> meta = meta_;  // outlives the list if a listener destroys it
    return list_.for_each([&](const Listener& fn) {
      if (!call_guarded(meta->component, meta->what, fn, args...)) ++meta->errors;
    });
  }

  // Removes every listener; their Subscriptions become inert.
  void clear() { list_.clear(); }
  std::size_t size() const noexcept { return list_.size(); }  // live listeners
  bool empty() const noexcept { return list_.empty(); }       // no live listener
  // Listeners that threw, over the list's life.
  std::uint64_t errors() const noexcept { return meta_->errors; }

 private:
  struct Meta {
    Meta(std::string_view c, std::string w) : component(c), what(std::move(w)) {}
    std::string_view component;
    std::string what;
    std::uint64_t errors = 0;
  };
  BasicListenerList<Listener> list_;
  std::shared_ptr<Meta> meta_;
};

}  // namespace rtsync::core
