#include "stop_signal.hpp"

#include <pthread.h>
#include <csignal>
#include <ctime>

namespace rtsync::app {

void StopSignal::request(std::string reason) {
  {
    std::lock_guard lock(mu_);
    if (!requested_.load()) {
      reason_ = std::move(reason);
      requested_.store(true);
    }
  }
  cv_.notify_all();
}

std::string StopSignal::reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

void StopSignal::wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return requested_.load(); });
}

bool StopSignal::wait_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, d, [this] { return requested_.load(); });
}

namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

SignalWatcher::SignalWatcher(StopSignal& stop) : stop_(stop) {
  sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this, set] {
    // Polls so that the destructor can end the thread without sending it a signal.
    const timespec tick{0, 100 * 1000 * 1000};
    while (!done_.load()) {
      const int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) continue;
      signal_.store(sig);
      stop_.request(sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP");
    }
  });
}

SignalWatcher::~SignalWatcher() {
  done_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace rtsync::app
