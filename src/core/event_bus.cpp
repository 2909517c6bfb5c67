#include "rtsync/core/event_bus.hpp"

#include <map>
#include <vector>

#include "rtsync/core/log.hpp"

namespace rtsync::core {

namespace {
struct Entry {
  EventBus::Handler handler;
  bool removed = false;
};
}  // namespace

struct EventBus::State {
  std::map<std::string, std::vector<std::shared_ptr<Entry>>, std::less<>> handlers;
  std::uint64_t errors = 0;
  std::uint64_t emitted = 0;
};

EventBus::EventBus() : state_(std::make_shared<State>()) {}
EventBus::~EventBus() = default;

Subscription EventBus::subscribe(std::string_view event, Handler handler) {
  auto entry = std::make_shared<Entry>();
  entry->handler = std::move(handler);
  auto it = state_->handlers.find(event);
  if (it == state_->handlers.end()) it = state_->handlers.try_emplace(std::string(event)).first;
  it->second.push_back(entry);
  return Subscription([weak = std::weak_ptr<State>(state_), name = std::string(event),
                       e = std::weak_ptr<Entry>(entry)] {
    auto entry = e.lock();
    if (!entry) return;
    entry->removed = true;
    auto state = weak.lock();
    if (!state) return;
    auto found = state->handlers.find(name);
    if (found == state->handlers.end()) return;
    std::erase(found->second, entry);
  });
}

std::size_t EventBus::emit(std::string_view event, const json::value& detail) {
  auto state = state_;  // keeps the state alive if a handler destroys the bus
  ++state->emitted;
  auto it = state->handlers.find(event);
  if (it == state->handlers.end() || it->second.empty()) return 0;
  // Dispatch over a snapshot: handlers added now wait for the next event; handlers removed now
  // are skipped through their flag.
  const auto snapshot = it->second;
  std::size_t ran = 0;
  for (const auto& entry : snapshot) {
    if (entry->removed) continue;
    ++ran;
    try {
      entry->handler(detail);
    } catch (const std::exception& ex) {
      ++state->errors;
      log::get(log::kEventBus)->error("handler for {} threw: {}", event, ex.what());
    } catch (...) {
      ++state->errors;
      log::get(log::kEventBus)->error("handler for {} threw a non-exception", event);
    }
  }
  return ran;
}

std::size_t EventBus::handler_count(std::string_view event) const {
  auto it = state_->handlers.find(event);
  return it == state_->handlers.end() ? 0 : it->second.size();
}

std::uint64_t EventBus::handler_errors() const noexcept {
  return state_->errors;
}
std::uint64_t EventBus::emitted() const noexcept {
  return state_->emitted;
}

}  // namespace rtsync::core
