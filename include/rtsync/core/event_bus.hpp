// Named events with a JSON detail: the C++ stand-in for the original app's window CustomEvents
// ("realtime:task-update", "realtime:task-new", "realtime:auth-heal").
//
// Contract: the handlers of one event form a core::ListenerList (rtsync/core/listener_list.hpp),
// whose re-entrancy contract holds per event:
//   - handlers of one event run in subscription order;
//   - a handler subscribed during a dispatch does not see the event being dispatched;
//   - a handler removed during a dispatch (even by itself, or by an earlier handler) is not called
//     afterwards; `Subscription::remove()` is idempotent;
//   - a handler that throws is logged ("[EventBus] handler for <event> threw: …") and counted; the
//     others still run;
//   - `emit` from inside a handler dispatches the nested event at once (depth-first), like DOM
//     dispatchEvent;
//   - destroying the bus from inside a handler: that handler returns normally and no further
//     handler of any running emit is called.
//
// Thread safety: loop-confined; call from the loop thread only. Subscriptions may outlive the bus
// (removal then does nothing).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::core {

// Named events with a JSON detail (contract and thread safety: the file comment).
class EventBus {
 public:
  // One handler: receives the event's detail.
  using Handler = std::function<void(const json::value& detail)>;

  EventBus();
  // A running emit calls no further handler; Subscriptions become inert.
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // Calls `handler` for every later `event` until the Subscription is removed.
  Subscription subscribe(std::string_view event, Handler handler);
  // Dispatches `event` to its handlers now. Returns how many handlers ran (threw or not).
  std::size_t emit(std::string_view event, const json::value& detail = json::object());

  // Handlers of `event` registered and not removed.
  std::size_t handler_count(std::string_view event) const;
  // Handlers that threw, over the bus's life.
  std::uint64_t handler_errors() const noexcept;
  // Events emitted, with or without handlers.
  std::uint64_t emitted() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace rtsync::core
