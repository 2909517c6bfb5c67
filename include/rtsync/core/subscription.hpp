// A registration handle: the one shape every "subscribe/listen/observe" in rtsync returns
// (EventBus handlers, diagnostics providers, cache observers, freshness listeners…).
//
// `remove()` is idempotent and safe to call from inside the very callback it registered (the
// registry must tolerate that: registries are core::ListenerList / BasicListenerList,
// rtsync/core/listener_list.hpp). Destroying the handle removes the
// registration, so a member Subscription cannot outlive its owner's callbacks; `detach()` keeps
// the registration alive for the registry's lifetime.
//
// Thread safety: same as the registry it came from (loop-confined in the client).
#pragma once

#include <functional>
#include <utility>

namespace rtsync::core {

class [[nodiscard]] Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> remover) : remover_(std::move(remover)) {}
  Subscription(Subscription&& other) noexcept : remover_(std::exchange(other.remover_, nullptr)) {}
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      remove();
      remover_ = std::exchange(other.remover_, nullptr);
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { remove(); }

  void remove() noexcept {
    if (auto r = std::exchange(remover_, nullptr)) r();
  }
  void detach() noexcept { remover_ = nullptr; }
  bool active() const noexcept { return static_cast<bool>(remover_); }

 private:
  std::function<void()> remover_;
};

}  // namespace rtsync::core
