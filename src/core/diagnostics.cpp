#include "rtsync/core/diagnostics.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "rtsync/core/listener_list.hpp"

namespace rtsync::core {

struct Diagnostics::State {
  struct Named {
    std::string name;
    Provider provider;
  };
  BasicListenerList<Named> providers;  // at most one live entry per name
};

Diagnostics::Diagnostics(const Scheduler& clock)
    : clock_(clock), state_(std::make_shared<State>()) {}
Diagnostics::~Diagnostics() = default;

Subscription Diagnostics::add(std::string_view name, Provider provider) {
  // Replacing removes the earlier entry, so its Subscription can no longer remove the new one.
  state_->providers.remove_if([name](const State::Named& n) { return n.name == name; });
  return state_->providers.add(State::Named{std::string(name), std::move(provider)});
}

json::object Diagnostics::snapshot() const {
  // Providers run in registration order (they may register or remove others meanwhile, see
  // core/listener_list.hpp); the object lists them by name, as a reader expects.
  std::vector<std::pair<std::string, json::value>> parts;
  state_->providers.for_each([&](const State::Named& n) {
    try {
      parts.emplace_back(n.name, n.provider());
    } catch (const std::exception& ex) {
      parts.emplace_back(n.name, json::object{{"error", ex.what()}});
    }
  });
  std::stable_sort(parts.begin(), parts.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  json::object out;
  out["timestamp"] = clock_.wall_ms();
  for (auto& [name, value] : parts)
    out[name] = std::move(value);
  return out;
}

std::vector<std::string> Diagnostics::names() const {
  std::vector<std::string> out;
  state_->providers.for_each([&](const State::Named& n) { out.push_back(n.name); });
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace rtsync::core
