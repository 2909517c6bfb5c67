#include "rtsync/server/http/write_coalescing.hpp"

#include <gtest/gtest.h>

namespace rtsync::server::http {
namespace {

using std::chrono::microseconds;
using C = WriteCoalescing;

TEST(WriteCoalescing, AQuietLoopFlushesAtTheEndOfThePass) {
  C c;
  EXPECT_EQ(c.delay(), microseconds(0));
  // A lone change to a thousand sockets: one frame each, nothing gathered on its own.
  c.flushed(1000, 1000);
  EXPECT_FALSE(c.burst());
  EXPECT_EQ(c.delay(), microseconds(0));
}

TEST(WriteCoalescing, FramesThatGatheredOnTheirOwnMakeTheNextFlushWait) {
  C c;
  // 1.5 frames per socket on average is the boundary: a burst from there, not below.
  c.flushed(100, 149);
  EXPECT_EQ(c.delay(), microseconds(0));
  c.flushed(100, 150);
  EXPECT_TRUE(c.burst());
  EXPECT_EQ(c.delay(), C::kBusyDelay);
  EXPECT_EQ(C::kBusyDelay, microseconds(500));
}

TEST(WriteCoalescing, FewSocketsNeverWaitHoweverManyFrames) {
  C c;
  c.flushed(C::kManySockets - 1, 100 * (C::kManySockets - 1));
  EXPECT_EQ(c.delay(), microseconds(0));
  c.flushed(C::kManySockets, 2 * C::kManySockets);
  EXPECT_EQ(c.delay(), C::kBusyDelay);
}

TEST(WriteCoalescing, AWaitThatGatheredNothingEndsTheBurst) {
  C c;
  c.flushed(1000, 4000);  // a burst of broadcasts
  ASSERT_EQ(c.delay(), C::kBusyDelay);
  c.flushed(1000, 8000);  // the wait paid: more joined
  EXPECT_EQ(c.delay(), C::kBusyDelay);
  c.flushed(1000, 1000);  // one frame each after the wait: the burst is over
  EXPECT_EQ(c.delay(), microseconds(0));
}

TEST(WriteCoalescing, AnEmptyFlushIsNoBurst) {
  C c;
  c.flushed(1000, 4000);
  c.flushed(0, 0);
  EXPECT_EQ(c.delay(), microseconds(0));
}

}  // namespace
}  // namespace rtsync::server::http
