#include "rtsync/core/event_loop.hpp"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <future>
#include <optional>
#include <stdexcept>

#include "rtsync/core/log.hpp"

namespace rtsync::core {

namespace asio = boost::asio;

AsioScheduler::AsioScheduler(asio::io_context& io) : io_(io) {}
AsioScheduler::~AsioScheduler() = default;

TimePoint AsioScheduler::now() const {
  return std::chrono::steady_clock::now();
}
WallTime AsioScheduler::wall_now() const {
  return std::chrono::system_clock::now();
}

Timer AsioScheduler::schedule(Duration delay, TimerId id, std::function<void()> fn) {
  auto state = std::make_shared<detail::TimerState>();
  state->id = id;
  state->due = now() + std::max(delay, Duration::zero());
  state->seq = next_seq_++;
  state->fn = std::move(fn);
  auto timer = std::make_shared<asio::steady_timer>(io_, state->due);
  // The hook holds the Asio timer weakly: once the wait completed there is nothing to cancel.
  state->on_cancel = [weak = std::weak_ptr<asio::steady_timer>(timer)] {
    if (auto t = weak.lock()) t->cancel();
  };
  timer->async_wait([state, timer](const boost::system::error_code&) {
    // Cancellation is decided by the flag, not the error code: a cancel() racing with expiry
    // must still suppress the callback.
    if (state->cancelled || state->fired) return;
    state->fired = true;
    state->on_cancel = nullptr;
    auto fn = std::move(state->fn);
    if (fn) fn();
  });
  return Timer(std::move(state));
}

bool AsioScheduler::on_loop_thread() const noexcept {
  const std::thread::id loop = loop_thread_;
  return loop == std::thread::id{} || loop == std::this_thread::get_id();
}

void AsioScheduler::post(std::function<void()> fn) {
  asio::post(io_, std::move(fn));
}

struct EventLoop::Impl {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{
      asio::make_work_guard(io)};
  std::thread thread;
  // Written by start()/run() and read from any thread by running_in_loop().
  std::atomic<std::thread::id> loop_thread_id{};
  std::atomic<bool> stopped{false};
  std::atomic<std::uint64_t> handler_exceptions{0};
};

EventLoop::EventLoop()
    : impl_(std::make_unique<Impl>()), scheduler_(std::make_unique<AsioScheduler>(impl_->io)) {}

EventLoop::~EventLoop() {
  stop();
  join();
  // The io_context first, while the scheduler still exists: destroying it destroys the handlers
  // still queued (a websocket's pending close, say), and their destructors may tear down
  // loop-confined objects whose RTSYNC_ASSERT_ON_LOOP asks this scheduler (members would go in the
  // other order: scheduler_ is declared after impl_).
  impl_.reset();
}

void EventLoop::start() {
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([this] { run(); });
  impl_->loop_thread_id = impl_->thread.get_id();
}

void EventLoop::run() {
  impl_->loop_thread_id = std::this_thread::get_id();
  scheduler_->set_loop_thread(std::this_thread::get_id());
  // Once the loop is done, calls from any thread are set-up or teardown again.
  struct Unbind {
    AsioScheduler& s;
    ~Unbind() { s.set_loop_thread({}); }
  } unbind{*scheduler_};
  // A handler that throws must not take every other connection and timer down with it: log it,
  // count it and keep running (Asio allows run() again right after a handler threw).
  for (;;) {
    try {
      impl_->io.run();
      return;
    } catch (const std::exception& e) {
      ++impl_->handler_exceptions;
      log::get(log::kEventLoop)->error("a handler threw; the loop goes on: {}", e.what());
    } catch (...) {
      ++impl_->handler_exceptions;
      log::get(log::kEventLoop)->error("a handler threw a non-exception; the loop goes on");
    }
  }
}

void EventLoop::stop() {
  impl_->stopped = true;
  impl_->guard.reset();
  impl_->io.stop();
}

std::uint64_t EventLoop::handler_exceptions() const noexcept {
  return impl_->handler_exceptions.load();
}

void EventLoop::join() {
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) {
    impl_->thread.join();
  }
}

void EventLoop::post(std::function<void()> fn) {
  asio::post(impl_->io, std::move(fn));
}

void EventLoop::run_sync(std::function<void()> fn) {
  if (running_in_loop()) {
    fn();
    return;
  }
  // After stop() nothing runs posted work any more: waiting would block forever.
  if (impl_->stopped) throw std::logic_error("EventLoop::run_sync after stop()");
  std::promise<void> done;
  auto fut = done.get_future();
  post([&] {
    try {
      fn();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  fut.get();
}

bool EventLoop::running_in_loop() const noexcept {
  return impl_->loop_thread_id == std::this_thread::get_id();
}

asio::io_context& EventLoop::io_context() noexcept {
  return impl_->io;
}

}  // namespace rtsync::core
