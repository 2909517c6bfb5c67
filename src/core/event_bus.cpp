#include "rtsync/core/event_bus.hpp"

#include <map>
#include <string>

#include "rtsync/core/listener_list.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::core {

struct EventBus::State {
  // One list per event name; a list, once made, stays (its Subscriptions point at it).
  std::map<std::string, ListenerList<const json::value&>, std::less<>> handlers;
  std::uint64_t emitted = 0;
};

EventBus::EventBus() : state_(std::make_shared<State>()) {}

EventBus::~EventBus() {
  // An emit running now (the bus destroyed by a handler) calls no further handler.
  for (auto& [name, list] : state_->handlers)
    list.clear();
}

Subscription EventBus::subscribe(std::string_view event, Handler handler) {
  auto it = state_->handlers.find(event);
  if (it == state_->handlers.end()) {
    it = state_->handlers
             .try_emplace(std::string(event), log::kEventBus, "handler for " + std::string(event))
             .first;
  }
  return it->second.add(std::move(handler));
}

std::size_t EventBus::emit(std::string_view event, const json::value& detail) {
  auto state = state_;  // keeps the map alive if a handler destroys the bus
  ++state->emitted;
  auto it = state->handlers.find(event);
  if (it == state->handlers.end()) return 0;
  return it->second.notify(detail);
}

std::size_t EventBus::handler_count(std::string_view event) const {
  auto it = state_->handlers.find(event);
  return it == state_->handlers.end() ? 0 : it->second.size();
}

std::uint64_t EventBus::handler_errors() const noexcept {
  std::uint64_t errors = 0;
  for (const auto& [name, list] : state_->handlers)
    errors += list.errors();
  return errors;
}
std::uint64_t EventBus::emitted() const noexcept {
  return state_->emitted;
}

}  // namespace rtsync::core
