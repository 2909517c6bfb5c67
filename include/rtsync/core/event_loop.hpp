// The client's event loop: one thread runs an Asio io_context and owns all client state, as
// JavaScript's single thread does for the original app. Public calls from other threads are posted
// onto it; every callback rtsync makes runs on it.
//
// Asio stays out of this header (it is included widely); code that needs the io_context (the
// WebSocket transport) includes <boost/asio/io_context.hpp> itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "rtsync/core/scheduler.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::core {

// Scheduler over an io_context: steady clock, Asio steady timers.
// Thread safety: `post()` from any thread; everything else on the io_context's thread.
class AsioScheduler final : public Scheduler {
 public:
  explicit AsioScheduler(boost::asio::io_context& io);
  ~AsioScheduler() override;

  TimePoint now() const override;
  WallTime wall_now() const override;
  Timer schedule(Duration delay, TimerId id, std::function<void()> fn) override;
  void post(std::function<void()> fn) override;
  // The thread EventLoop runs the io_context on, if any; a scheduler over an io_context that no
  // EventLoop runs counts every thread as the loop thread (on_loop_thread() is then true).
  bool on_loop_thread() const noexcept override;
  void set_loop_thread(std::thread::id id) noexcept { loop_thread_ = id; }

  boost::asio::io_context& io_context() noexcept { return io_; }

 private:
  boost::asio::io_context& io_;
  std::atomic<std::thread::id> loop_thread_{};
  std::uint64_t next_seq_ = 0;
};

// Owns an io_context, its scheduler, and (after start()) the thread that runs it.
// A handler that throws is logged ("[EventLoop]") and counted; the loop keeps running.
// Thread safety: `post()`, `stop()`, `running_in_loop()`, `run_sync()`, `handler_exceptions()`
// from any thread. Destruction stops and joins the thread; it must not happen on the loop thread
// itself.
class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Starts the loop thread. The loop keeps running (even with no work) until stop().
  void start();
  // Runs the loop on the calling thread until stop() (for `main()`-style programs).
  void run();
  // Asks the loop to finish; pending handlers are abandoned. Idempotent.
  void stop();
  // Joins the loop thread if start() created one.
  void join();

  void post(std::function<void()> fn);
  // Posts `fn` and blocks the calling (non-loop) thread until it ran; on the loop thread runs it
  // at once. Rethrows what `fn` threw; throws std::logic_error after stop(). For tools and tests.
  void run_sync(std::function<void()> fn);
  bool running_in_loop() const noexcept;
  // Exceptions that escaped handlers so far (each was logged).
  std::uint64_t handler_exceptions() const noexcept;

  AsioScheduler& scheduler() noexcept { return *scheduler_; }
  boost::asio::io_context& io_context() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<AsioScheduler> scheduler_;
};

}  // namespace rtsync::core
