// The real loop: these tests use real threads but no sleeps; they wait on futures.
#include "rtsync/core/event_loop.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>

#include "rtsync/core/log.hpp"

namespace rtsync::core {
namespace {

TEST(EventLoop, PostFromOtherThreadRunsOnLoopThread) {
  EventLoop loop;
  loop.start();
  std::promise<std::thread::id> where;
  loop.post([&] { where.set_value(std::this_thread::get_id()); });
  const auto id = where.get_future().get();
  EXPECT_NE(id, std::this_thread::get_id());
  bool in_loop = false;
  loop.run_sync([&] { in_loop = loop.running_in_loop(); });
  EXPECT_TRUE(in_loop);
  EXPECT_FALSE(loop.running_in_loop());
}

TEST(EventLoop, TimersFireInOrderAndCancelledOnesDoNot) {
  EventLoop loop;
  loop.start();
  std::promise<std::vector<int>> done;
  std::vector<int> order;
  Timer a, b, c;
  loop.run_sync([&] {
    auto& s = loop.scheduler();
    // Deadlines far apart: each is read from the clock separately, and a loaded (or sanitized)
    // machine may take milliseconds between two schedule() calls.
    a = s.schedule(std::chrono::milliseconds(40), TimerId::Test, [&] { order.push_back(2); });
    b = s.schedule(std::chrono::milliseconds(20), TimerId::Test, [&] { order.push_back(1); });
    c = s.schedule(std::chrono::milliseconds(60), TimerId::Test, [&] { order.push_back(3); });
    c.cancel();
    s.schedule(std::chrono::milliseconds(100), TimerId::Test, [&] {
       done.set_value(order);
     }).release();
  });
  EXPECT_EQ(done.get_future().get(), (std::vector<int>{1, 2}));
  loop.run_sync([&] {
    EXPECT_FALSE(a.pending());
    EXPECT_FALSE(c.pending());
  });
}

TEST(EventLoop, DestroyingTimerHandleCancels) {
  EventLoop loop;
  loop.start();
  std::atomic<int> ran{0};
  std::promise<void> done;
  loop.run_sync([&] {
    auto& s = loop.scheduler();
    {
      auto scoped = s.schedule(std::chrono::milliseconds(1), TimerId::Test, [&] { ++ran; });
    }
    s.schedule(std::chrono::milliseconds(5), TimerId::Test, [&] { done.set_value(); }).release();
  });
  done.get_future().get();
  EXPECT_EQ(ran.load(), 0);
}

TEST(EventLoop, RunSyncPropagatesExceptions) {
  EventLoop loop;
  loop.start();
  EXPECT_THROW(loop.run_sync([] { throw std::runtime_error("x"); }), std::runtime_error);
}

TEST(EventLoop, AThrowingHandlerIsLoggedAndTheLoopKeepsRunning) {
  log::Capture capture;
  EventLoop loop;
  loop.start();
  loop.post([] { throw std::runtime_error("bad frame"); });
  std::promise<void> later;
  loop.post([&] { later.set_value(); });
  later.get_future().get();  // posted after the throwing one: ran, so the loop survived
  EXPECT_EQ(loop.handler_exceptions(), 1u);
  EXPECT_TRUE(capture.contains("[EventLoop] a handler threw; the loop goes on: bad frame"));
  bool ran = false;
  loop.run_sync([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(EventLoop, RunSyncAfterStopFailsInsteadOfBlocking) {
  EventLoop loop;
  loop.start();
  loop.stop();
  loop.join();
  EXPECT_THROW(loop.run_sync([] {}), std::logic_error);
}

// Handlers still queued when the loop is destroyed are destroyed with its io_context; what they
// own may tear down loop-confined objects, which ask the loop's scheduler whether they are on the
// loop. The scheduler must still exist then (under ASan a use after free otherwise; a crash in the
// server's teardown before).
TEST(EventLoop, QueuedHandlersAreDestroyedWhileTheSchedulerStillExists) {
  struct AsksTheScheduler {
    AsioScheduler* scheduler = nullptr;
    bool* answered_on_loop = nullptr;
    ~AsksTheScheduler() {
      if (scheduler) *answered_on_loop = scheduler->on_loop_thread();
    }
  };
  bool on_loop = false;
  {
    EventLoop loop;  // never started: the posted handler stays queued
    auto guard = std::make_shared<AsksTheScheduler>();
    guard->scheduler = &loop.scheduler();
    guard->answered_on_loop = &on_loop;
    loop.post([guard] {});
    guard.reset();
  }
  // No loop thread runs during teardown, so every thread counts as the loop.
  EXPECT_TRUE(on_loop);
}

}  // namespace
}  // namespace rtsync::core
