#include "rtsync/server/http/write_coalescing.hpp"

#include <gtest/gtest.h>

namespace rtsync::server::http {
namespace {

using std::chrono::microseconds;
using C = WriteCoalescing;

// Flushes reported on virtual clocks: each `gap` of wall time after the one before, the loop's
// thread on a CPU for `busy` of it.
class Flushes {
 public:
  void flush(std::size_t sockets, std::size_t frames, microseconds busy = microseconds(100),
             microseconds gap = microseconds(1000)) {
    wall_ += gap;
    cpu_ += busy;
    c.flushed(sockets, frames, wall_, cpu_);
  }
  C c;

 private:
  C::Duration wall_{std::chrono::seconds(1)};
  C::Duration cpu_{};
};

TEST(WriteCoalescing, AQuietLoopFlushesAtTheEndOfThePass) {
  Flushes f;
  EXPECT_EQ(f.c.delay(), microseconds(0));
  // A lone change to a thousand sockets: one frame each, nothing gathered on its own.
  f.flush(1000, 1000);
  EXPECT_FALSE(f.c.burst());
  EXPECT_EQ(f.c.delay(), microseconds(0));
}

TEST(WriteCoalescing, FramesThatGatheredOnTheirOwnMakeTheNextFlushWait) {
  Flushes f;
  // 1.5 frames per socket on average is the boundary: a burst from there, not below.
  f.flush(100, 149);
  EXPECT_EQ(f.c.delay(), microseconds(0));
  f.flush(100, 150);
  EXPECT_TRUE(f.c.burst());
  EXPECT_EQ(f.c.delay(), C::kFirstWait);
  EXPECT_EQ(C::kFirstWait, microseconds(500));
}

TEST(WriteCoalescing, FewSocketsNeverWaitHoweverManyFrames) {
  Flushes f;
  f.flush(C::kManySockets - 1, 100 * (C::kManySockets - 1));
  EXPECT_EQ(f.c.delay(), microseconds(0));
  f.flush(C::kManySockets, 2 * C::kManySockets);
  EXPECT_EQ(f.c.delay(), C::kFirstWait);
}

TEST(WriteCoalescing, ASaturatedLoopWaitsLongerUpToTheCap) {
  Flushes f;
  // The loop on a CPU for 3.6 ms of every 4: saturated.
  const microseconds busy(3600), gap(4000);
  f.flush(1000, 4000, busy, gap);  // a burst of broadcasts
  EXPECT_EQ(f.c.delay(), microseconds(500));
  f.flush(1000, 2000, busy, gap);  // the waited flush still found a burst
  EXPECT_EQ(f.c.delay(), microseconds(1000));
  f.flush(1000, 3000, busy, gap);
  EXPECT_EQ(f.c.delay(), microseconds(2000));
  f.flush(1000, 9000, busy, gap);
  EXPECT_EQ(f.c.delay(), C::kMaxWait);
  EXPECT_EQ(C::kMaxWait, microseconds(2000));
}

TEST(WriteCoalescing, SaturatedMeansOnACpuForEightyPercentOfTheWallTime) {
  Flushes f;
  f.flush(1000, 2000);
  ASSERT_EQ(f.c.delay(), C::kFirstWait);
  // 799 us on a CPU of 1,000: not saturated, the wait stays at the first.
  f.flush(1000, 2000, microseconds(799), microseconds(1000));
  EXPECT_EQ(f.c.delay(), C::kFirstWait);
  // 800 us of 1,000: saturated, the wait doubles.
  f.flush(1000, 2000, microseconds(800), microseconds(1000));
  EXPECT_EQ(f.c.delay(), microseconds(1000));
  // A half-idle loop again: back to the first wait, not further up.
  f.flush(1000, 2000, microseconds(500), microseconds(1000));
  EXPECT_EQ(f.c.delay(), C::kFirstWait);
}

TEST(WriteCoalescing, AWaitAtALightSteadyRateDoesNotFeedItself) {
  // 1,000 changes/s to 100 sockets, the loop on a CPU half the time: a waited flush finds two
  // frames per socket (what arrived during its wait), but the loop is not saturated, so the wait
  // never grows past the first.
  Flushes f;
  for (int i = 0; i < 20; ++i) {
    f.flush(100, 200, microseconds(500), microseconds(1000));
    EXPECT_EQ(f.c.delay(), C::kFirstWait) << i;
  }
}

TEST(WriteCoalescing, AWaitThatGatheredNothingEndsTheBurst) {
  Flushes f;
  const microseconds busy(3600), gap(4000);
  f.flush(1000, 4000, busy, gap);
  f.flush(1000, 8000, busy, gap);
  ASSERT_EQ(f.c.delay(), microseconds(1000));
  f.flush(1000, 1000, busy, gap);  // one frame each after the wait: the burst is over
  EXPECT_EQ(f.c.delay(), microseconds(0));
  EXPECT_FALSE(f.c.burst());
  f.flush(1000, 2000, busy, gap);  // the next burst starts from the first wait again
  EXPECT_EQ(f.c.delay(), C::kFirstWait);
}

TEST(WriteCoalescing, SmallFlushesBetweenBigOnesLeaveTheSaturationMeasureAlone) {
  C c;
  const auto ms = [](int n) { return C::Duration(std::chrono::milliseconds(n)); };
  c.flushed(1000, 2000, ms(10), ms(0));
  ASSERT_EQ(c.delay(), C::kFirstWait);
  // Small flushes in between report no clocks (zero): they are ignored, and end nothing but
  // their own wait.
  c.flushed(10, 10, C::Duration(0), C::Duration(0));
  EXPECT_EQ(c.delay(), microseconds(0));
  // The next big flush measures since the last big one: 1.8 of 2 ms on a CPU, saturated, and it
  // starts a burst at the first wait (the small flush ended the one before).
  c.flushed(1000, 2000, ms(12), C::Duration(std::chrono::microseconds(1800)));
  EXPECT_EQ(c.delay(), C::kFirstWait);
  c.flushed(1000, 2000, ms(14), C::Duration(std::chrono::microseconds(3600)));
  EXPECT_EQ(c.delay(), microseconds(1000));
}

TEST(WriteCoalescing, AnEmptyFlushIsNoBurst) {
  Flushes f;
  f.flush(1000, 4000);
  f.flush(0, 0);
  EXPECT_EQ(f.c.delay(), microseconds(0));
}

}  // namespace
}  // namespace rtsync::server::http
