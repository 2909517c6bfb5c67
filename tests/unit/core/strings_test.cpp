// The shared text helpers: case-insensitive comparison, trimming, bearer tokens, percent-encoding.
#include "rtsync/core/strings.hpp"

#include <gtest/gtest.h>

namespace rtsync::core {
namespace {

TEST(Strings, IequalsIgnoresAsciiCaseOnly) {
  EXPECT_TRUE(iequals("Sec-WebSocket-Key", "sec-websocket-key"));
  EXPECT_FALSE(iequals("key", "keys"));
  EXPECT_FALSE(iequals("\xc3\x89", "\xc3\xa9"));  // É and é differ: not ASCII
  EXPECT_TRUE(istarts_with("BEARER abc", "bearer"));
  EXPECT_FALSE(istarts_with("bear", "bearer"));
}

TEST(Strings, TrimBlanksRemovesSpacesAndTabsAtBothEnds) {
  EXPECT_EQ(trim_blanks(" \t value \t"), "value");
  EXPECT_EQ(trim_blanks("a b"), "a b");
  EXPECT_EQ(trim_blanks(" \t "), "");
  EXPECT_EQ(trim_blanks("\nx\n"), "\nx\n");  // only HTTP's optional whitespace
}

TEST(Strings, BearerTokenTakesTheSchemeInAnyCase) {
  EXPECT_EQ(bearer_token("Bearer abc.def.ghi"), "abc.def.ghi");
  EXPECT_EQ(bearer_token("bearer   tok  "), "tok");
  EXPECT_EQ(bearer_token("BEARER\ttok"), "tok");
  EXPECT_EQ(bearer_token("Basic dXNlcg=="), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer   "), std::nullopt);
  EXPECT_EQ(bearer_token("Bearertok"), std::nullopt);
}

TEST(Strings, PercentEncodingRoundTripsEveryByte) {
  EXPECT_EQ(percent_encode("a b/c?d=é~"), "a%20b%2Fc%3Fd%3D%C3%A9~");
  std::string all;
  for (int c = 0; c < 256; ++c)
    all.push_back(static_cast<char>(c));
  EXPECT_EQ(percent_decode(percent_encode(all)), all);
  EXPECT_EQ(percent_decode("a+b%2b%2B"), "a+b++");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("%4"), std::nullopt);
  EXPECT_EQ(percent_decode("%zz"), std::nullopt);
  EXPECT_EQ(percent_decode("50%"), std::nullopt);
}

}  // namespace
}  // namespace rtsync::core
