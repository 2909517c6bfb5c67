// Runtime diagnostics: the C++ form of the original's window.__REALTIME_SNAPSHOT__,
// __DATA_FRESHNESS_MANAGER__ and __RECONNECT_SCHEDULER__. Components register a named provider
// returning a JSON snapshot of their state; `snapshot()` gathers them into one object:
//   {"timestamp": <wall ms>, "realtime": {...}, "freshness": {...}, ...}
//
// A provider that throws shows up as {"error": "<what>"} under its name; the rest still report.
// Providers form a core::BasicListenerList (rtsync/core/listener_list.hpp): one may register or
// remove others while snapshot() runs, under that header's re-entrancy contract.
// Thread safety: loop-confined.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::core {

// Named JSON snapshot providers (behaviour and thread safety: the file comment).
class Diagnostics {
 public:
  // Returns one component's state; may throw (reported under its name).
  using Provider = std::function<json::value()>;

  // Stamps snapshots with `clock`'s wall time; the clock must outlive it.
  explicit Diagnostics(const Scheduler& clock);
  ~Diagnostics();

  // Registering a name twice replaces the earlier provider (its Subscription becomes inert).
  Subscription add(std::string_view name, Provider provider);
  // {"timestamp": wall ms, <name>: <provider's JSON>…}, names in sorted order.
  json::object snapshot() const;
  // The registered names, sorted.
  std::vector<std::string> names() const;

 private:
  struct State;
  const Scheduler& clock_;
  std::shared_ptr<State> state_;
};

}  // namespace rtsync::core
