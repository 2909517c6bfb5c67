// Result<T, E>: the value/error alternatives and the std::expected-style members.
#include "rtsync/core/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace rtsync {
namespace {

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9')
    return make_error(Errc::invalid_argument, std::string("not a digit: ") + c);
  return c - '0';
}

struct HttpError {
  int status = 0;
};

TEST(Result, HoldsAValueOrAnError) {
  Result<int> ok = 7;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 7);
  Result<int> bad = make_error(Errc::timeout, "slow");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::timeout);
  EXPECT_EQ(bad.error().describe(), "timeout: slow");
}

TEST(Result, ValueOrFallsBackOnlyOnAnError) {
  EXPECT_EQ(parse_digit('4').value_or(-1), 4);
  EXPECT_EQ(parse_digit('x').value_or(-1), -1);
  Result<std::string> s = std::string("kept");
  EXPECT_EQ(std::move(s).value_or("fallback"), "kept");
}

TEST(Result, AndThenChainsStepsAndStopsAtTheFirstError) {
  int calls = 0;
  auto twice = [&](int v) -> Result<int> {
    ++calls;
    return v * 2;
  };
  EXPECT_EQ(parse_digit('3').and_then(twice).value(), 6);
  auto failed = parse_digit('?').and_then(twice);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "not a digit: ?");
  EXPECT_EQ(calls, 1);  // the step after the error never ran
}

TEST(Result, TransformMapsTheValueAndKeepsTheError) {
  auto text = parse_digit('9').transform([](int v) { return std::to_string(v) + "!"; });
  static_assert(std::is_same_v<decltype(text), Result<std::string>>);
  EXPECT_EQ(text.value(), "9!");
  auto none = parse_digit('a').transform([](int v) { return v + 1; });
  EXPECT_EQ(none.error().code, Errc::invalid_argument);
  int seen = 0;
  Result<void> done = parse_digit('5').transform([&](int v) { seen = v; });
  EXPECT_TRUE(done.ok());
  EXPECT_EQ(seen, 5);
}

TEST(Result, MoveOnlyValuesMoveThrough) {
  Result<std::unique_ptr<int>> p = std::make_unique<int>(3);
  auto q = std::move(p).transform([](std::unique_ptr<int> v) { return *v + 1; });
  EXPECT_EQ(q.value(), 4);
}

TEST(Result, ALayerCanCarryItsOwnErrorType) {
  Result<int, HttpError> r = HttpError{404};
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 404);
  auto as_error = r.transform_error([](const HttpError& e) {
    return make_error(Errc::remote, "HTTP " + std::to_string(e.status));
  });
  static_assert(std::is_same_v<decltype(as_error), Result<int>>);
  EXPECT_EQ(as_error.error().describe(), "remote: HTTP 404");
}

TEST(Result, VoidResultsChainToo) {
  Result<void> fine;
  EXPECT_EQ(fine.and_then([] { return parse_digit('2'); }).value(), 2);
  Result<void> broken = make_error(Errc::closed, "gone");
  EXPECT_EQ(broken.transform([] { return 1; }).error().code, Errc::closed);
}

}  // namespace
}  // namespace rtsync
