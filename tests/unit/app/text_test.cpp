#include "view/text.hpp"

#include <gtest/gtest.h>

namespace rtsync::app::view {
namespace {

TEST(Text, DisplayWidthCountsCodePointsNotBytes) {
  EXPECT_EQ(display_width("abc"), 3);
  EXPECT_EQ(display_width("● Connected"), 11);
  EXPECT_EQ(display_width("◌ Connecting…"), 13);
  EXPECT_EQ(display_width("←/→"), 3);
  EXPECT_EQ(display_width("日本"), 4);      // wide
  EXPECT_EQ(display_width("e\u0301"), 1);   // combining accent
  EXPECT_EQ(display_width("\xff\xfe"), 2);  // invalid bytes count one each
}

TEST(Text, TruncateKeepsWholeCharactersAndMarksTheCut) {
  EXPECT_EQ(truncate("hello", 10), "hello");
  EXPECT_EQ(truncate("hello", 5), "hello");
  EXPECT_EQ(truncate("hello", 4), "hel…");
  EXPECT_EQ(truncate("● Connected", 3), "● …");
  EXPECT_EQ(truncate("hello", 1), "…");
  EXPECT_EQ(truncate("hello", 0), "");
  EXPECT_EQ(truncate("hello", -3), "");
  // A wide character that does not fit entirely is left out, never split.
  EXPECT_EQ(truncate("a日本", 3), "a…");
  EXPECT_EQ(display_width(truncate("a日本", 3)), 2);
  // Control characters cannot move the cursor.
  EXPECT_EQ(truncate("a\nb", 5), "a?b");
  EXPECT_EQ(truncate("a\xff", 5), "a?");
}

TEST(Text, FitPadsToTheExactWidth) {
  EXPECT_EQ(fit("ab", 4), "ab  ");
  EXPECT_EQ(fit("abcdef", 4), "abc…");
  EXPECT_EQ(display_width(fit("◌ x", 6)), 6);
}

TEST(Text, SpreadKeepsTheRightPartVisible) {
  EXPECT_EQ(spread("left", "right", 12), "left   right");
  EXPECT_EQ(spread("a long left part", "right", 12), "a lon… right");
  EXPECT_EQ(spread("a long left part", "right", 10), "a l… right");
  EXPECT_EQ(spread("left", "right part", 10), "right part");
  EXPECT_EQ(spread("left", "right part", 6), "right…");
  EXPECT_EQ(display_width(spread("project", "● Connected", 30)), 30);
}

}  // namespace
}  // namespace rtsync::app::view
