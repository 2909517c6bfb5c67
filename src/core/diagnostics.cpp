#include "rtsync/core/diagnostics.hpp"

#include <map>

namespace rtsync::core {

struct Diagnostics::State {
  struct Entry {
    std::uint64_t token;
    Provider provider;
  };
  std::map<std::string, Entry, std::less<>> providers;
  std::uint64_t next_token = 1;
};

Diagnostics::Diagnostics(const Scheduler& clock)
    : clock_(clock), state_(std::make_shared<State>()) {}
Diagnostics::~Diagnostics() = default;

Subscription Diagnostics::add(std::string_view name, Provider provider) {
  const auto token = state_->next_token++;
  state_->providers.insert_or_assign(std::string(name), State::Entry{token, std::move(provider)});
  return Subscription([weak = std::weak_ptr<State>(state_), key = std::string(name), token] {
    auto state = weak.lock();
    if (!state) return;
    auto it = state->providers.find(key);
    // Only the registration that is still current may remove the name.
    if (it != state->providers.end() && it->second.token == token) state->providers.erase(it);
  });
}

json::object Diagnostics::snapshot() const {
  json::object out;
  out["timestamp"] = clock_.wall_ms();
  // Copy first: a provider may register or remove others.
  std::vector<std::pair<std::string, Provider>> current;
  for (const auto& [name, entry] : state_->providers)
    current.emplace_back(name, entry.provider);
  for (auto& [name, provider] : current) {
    try {
      out[name] = provider();
    } catch (const std::exception& ex) {
      out[name] = json::object{{"error", ex.what()}};
    }
  }
  return out;
}

std::vector<std::string> Diagnostics::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : state_->providers)
    out.push_back(name);
  return out;
}

}  // namespace rtsync::core
