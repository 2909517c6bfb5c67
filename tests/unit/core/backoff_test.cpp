#include "rtsync/core/backoff.hpp"

#include <gtest/gtest.h>

namespace rtsync::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ExponentialBackoff, CeilingDoublesFromBaseAndStopsAtCap) {
  ExponentialBackoff b{seconds(1), seconds(30)};
  EXPECT_EQ(b.ceiling(0), Duration::zero());
  EXPECT_EQ(b.ceiling(1), seconds(1));
  EXPECT_EQ(b.ceiling(2), seconds(2));
  EXPECT_EQ(b.ceiling(5), seconds(16));
  EXPECT_EQ(b.ceiling(6), seconds(30));
  EXPECT_EQ(b.ceiling(1000), seconds(30));  // no overflow however long it retries
}

TEST(ExponentialBackoff, FullJitterSpansZeroToCeiling) {
  ExponentialBackoff b{seconds(1), seconds(30)};
  EXPECT_EQ(b.delay(3, 0.0), Duration::zero());
  EXPECT_EQ(b.delay(3, 0.5), seconds(2));
  EXPECT_EQ(b.delay(3, 1.0), seconds(4));
  Jitter j(42);
  for (int i = 0; i < 1000; ++i) {
    const auto d = b.delay(7, j.next());
    EXPECT_GE(d, Duration::zero());
    EXPECT_LE(d, seconds(30));
  }
}

TEST(SteppedBackoff, StepsThenLastRepeats) {
  SteppedBackoff b{{seconds(1), seconds(2), seconds(5), seconds(10)}, 0.0};
  EXPECT_EQ(b.delay(1, 0.3), seconds(1));
  EXPECT_EQ(b.delay(2, 0.3), seconds(2));
  EXPECT_EQ(b.delay(3, 0.3), seconds(5));
  EXPECT_EQ(b.delay(4, 0.3), seconds(10));
  EXPECT_EQ(b.delay(9, 0.3), seconds(10));
}

TEST(SteppedBackoff, JitterStaysWithinFraction) {
  SteppedBackoff b{{seconds(10)}, 0.1};
  EXPECT_EQ(b.delay(1, 0.0), seconds(9));
  EXPECT_EQ(b.delay(1, 0.5), seconds(10));
  EXPECT_EQ(b.delay(1, 1.0), seconds(11));
}

TEST(Jitter, SameSeedSameSequence) {
  Jitter a(7), b(7);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(a.next(), b.next());
}

TEST(Jitter, ValuesLieInTheUnitIntervalAndSeedsDiffer) {
  Jitter a(7), b(8);
  int same = 0;
  for (int i = 0; i < 1000; ++i) {
    const double x = a.next(), y = b.next();
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
    same += x == y;
  }
  EXPECT_LT(same, 5);
}

}  // namespace
}  // namespace rtsync::core
