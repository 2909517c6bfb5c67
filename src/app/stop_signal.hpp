// Stopping the client-side commands: one StopSignal that SIGINT/SIGTERM/SIGHUP, the `q` key and
// the end of --duration all trip, and the thread that turns signals into it.
//
// SignalWatcher blocks SIGINT, SIGTERM and SIGHUP in the calling thread; threads started after it
// inherit the mask, so only its own thread (sigtimedwait) receives them and the command shuts
// down in order: loops stopped, server stopped, the throwaway cluster removed. Construct it first
// thing in a command, before any other thread exists.
//
// Thread safety: StopSignal is thread-safe; SignalWatcher is constructed and destroyed by one
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace rtsync::app {

class StopSignal {
 public:
  // The first reason wins; later requests only wake waiters again.
  void request(std::string reason);
  bool requested() const noexcept { return requested_.load(); }
  std::string reason() const;
  // Blocks until requested.
  void wait();
  // Blocks until requested or `d` passed; true when requested.
  bool wait_for(std::chrono::milliseconds d);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> requested_{false};
  std::string reason_;
};

class SignalWatcher {
 public:
  explicit SignalWatcher(StopSignal& stop);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;
  // The signal received (0: none).
  int signal() const noexcept { return signal_.load(); }

 private:
  StopSignal& stop_;
  std::atomic<bool> done_{false};
  std::atomic<int> signal_{0};
  std::thread thread_;
};

}  // namespace rtsync::app
