// RTSYNC_ASSERT_ON_LOOP: a loop-confined method called from a thread other than its loop's is
// caught in debug builds; on the loop (the thread driving a ManualScheduler, the thread running an
// EventLoop) it is not.
#include "rtsync/core/loop_check.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::core {
namespace {

// A component documented as loop-confined, as the client and server layers write them.
class Confined {
 public:
  explicit Confined(Scheduler& s) : s_(s) {}
  void touch() {
    RTSYNC_ASSERT_ON_LOOP(s_);
    ++touched;
  }
  int touched = 0;

 private:
  Scheduler& s_;
};

// Records violations instead of aborting, for the duration of a test.
class LoopCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kLoopChecks) GTEST_SKIP() << "loop checks are compiled out (NDEBUG)";
    previous_ = set_loop_violation_handler(
        [this](std::string_view method) { violations.emplace_back(method); });
  }
  void TearDown() override { set_loop_violation_handler(std::move(previous_)); }

  std::vector<std::string> violations;

 private:
  LoopViolationHandler previous_;
};

TEST_F(LoopCheckTest, ManualSchedulerDriverThreadIsTheLoop) {
  ManualScheduler sched;
  Confined c(sched);
  c.touch();
  sched.schedule(milliseconds(5), TimerId::Test, [&] { c.touch(); }).release();
  sched.advance(milliseconds(5));
  EXPECT_TRUE(violations.empty());
  EXPECT_EQ(c.touched, 2);
}

TEST_F(LoopCheckTest, CallFromAnotherThreadIsCaughtWithTheMethodName) {
  ManualScheduler sched;
  Confined c(sched);
  std::thread other([&] { c.touch(); });
  other.join();
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0], "touch");
}

TEST_F(LoopCheckTest, TheThreadThatDrivesTheSchedulerBecomesTheLoop) {
  ManualScheduler sched;
  Confined c(sched);
  std::thread driver([&] {
    sched.run_ready();
    c.touch();  // the driver's own call: fine
  });
  driver.join();
  EXPECT_TRUE(violations.empty());
  c.touch();  // the constructing thread no longer drives it
  EXPECT_EQ(violations.size(), 1u);
}

TEST_F(LoopCheckTest, EventLoopThreadIsTheLoopOnceRunning) {
  EventLoop loop;
  Confined c(loop.scheduler());
  c.touch();  // set-up before the loop runs: allowed
  EXPECT_TRUE(violations.empty());
  loop.start();
  loop.run_sync([&] { c.touch(); });
  EXPECT_TRUE(violations.empty());
  c.touch();  // from this thread while the loop thread runs: a violation
  EXPECT_EQ(violations, (std::vector<std::string>{"touch"}));
  loop.stop();
  loop.join();
}

using LoopCheckDeathTest = LoopCheckTest;

TEST_F(LoopCheckDeathTest, DefaultHandlerAbortsNamingTheMethod) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  set_loop_violation_handler({});
  ManualScheduler sched;
  Confined c(sched);
  EXPECT_DEATH(
      {
        std::thread other([&] { c.touch(); });
        other.join();
      },
      "touch called off its event loop thread");
}

}  // namespace
}  // namespace rtsync::core
