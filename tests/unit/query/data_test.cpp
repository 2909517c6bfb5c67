// Structural sharing (TanStack utils.test: replaceEqualDeep) with node identity.
#include "rtsync/client/query/data.hpp"

#include <gtest/gtest.h>

#include "fake_fetcher.hpp"

#include <cmath>

using namespace rtsync;
using namespace rtsync::client::query;

namespace {
using test::J;
Data D(std::string_view text) {
  return Data::from_json(J(text));
}
}  // namespace

TEST(DataTest, RoundTripsJson) {
  const auto v = J(R"({"b":[1,2.5,"x",null,true,{"c":-3}],"a":18446744073709551615})");
  const Data d = Data::from_json(v);
  EXPECT_TRUE(core::json_equal(d.to_json(), v));
  EXPECT_EQ(d.dump(), json::serialize(v));  // member order kept
  EXPECT_EQ(d.kind(), json::kind::object);
  ASSERT_NE(d.find("b"), nullptr);
  EXPECT_EQ(d.find("b")->size(), 6u);
  EXPECT_EQ(d.find("b")->at(2)->as_string(), "x");
  EXPECT_EQ(d.find("b")->at(5)->find("c")->as_int64(), -3);
  EXPECT_EQ(d.find("missing"), nullptr);
  EXPECT_EQ(d.find("b")->at(99), nullptr);
  EXPECT_EQ(Data(3).find("x"), nullptr);  // kind mismatch: neutral answer
  EXPECT_EQ(Data("s").as_int64(), 0);
}

TEST(DataTest, DeepEqualityAndIdentity) {
  EXPECT_EQ(D("[1,{\"a\":2}]"), D("[1.0,{\"a\":2}]"));
  EXPECT_FALSE(D("[1]") == D("[1,2]"));
  EXPECT_EQ(D(R"({"a":1,"b":2})"), D(R"({"b":2,"a":1})"));
  const Data a = D("[1]");
  const Data b = D("[1]");
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(same(a, b));  // two nodes
  EXPECT_TRUE(same(a, a));
  EXPECT_TRUE(same(Data("x"), Data("x")));  // scalars compare by value, as ===
  EXPECT_FALSE(Data(std::nan("")) == Data(std::nan("")));
}

TEST(StructuralSharing, EqualDataKeepsTheOldNode) {
  const Data prev = D(R"({"tasks":[{"id":1,"s":"Queued"},{"id":2,"s":"Done"}],"total":2})");
  const Data next =
      share(&prev, J(R"({"tasks":[{"id":1,"s":"Queued"},{"id":2,"s":"Done"}],"total":2})"));
  EXPECT_TRUE(same(prev, next));
}

TEST(StructuralSharing, UnchangedSubtreesKeepIdentity) {
  const Data prev =
      D(R"({"tasks":[{"id":1,"s":"Queued"},{"id":2,"s":"Done"}],"meta":{"page":1},"total":2})");
  const Data next = share(
      &prev,
      J(R"({"tasks":[{"id":1,"s":"Running"},{"id":2,"s":"Done"}],"meta":{"page":1},"total":2})"));
  EXPECT_FALSE(same(prev, next));                                // root changed
  EXPECT_FALSE(same(*prev.find("tasks"), *next.find("tasks")));  // changed branch
  EXPECT_FALSE(same(*prev.find("tasks")->at(0), *next.find("tasks")->at(0)));
  EXPECT_TRUE(same(*prev.find("tasks")->at(1), *next.find("tasks")->at(1)));  // sibling kept
  EXPECT_TRUE(same(*prev.find("meta"), *next.find("meta")));
  EXPECT_EQ(next.find("tasks")->at(0)->find("s")->as_string(), "Running");
  EXPECT_EQ(
      next.dump(),
      R"({"tasks":[{"id":1,"s":"Running"},{"id":2,"s":"Done"}],"meta":{"page":1},"total":2})");
}

TEST(StructuralSharing, ArraysGrowAndShrinkKeepingEqualElements) {
  const Data prev = D(R"([{"a":1},{"b":2}])");
  const Data grown = share(&prev, J(R"([{"a":1},{"b":2},{"c":3}])"));
  EXPECT_FALSE(same(prev, grown));
  EXPECT_TRUE(same(*prev.at(0), *grown.at(0)));
  EXPECT_TRUE(same(*prev.at(1), *grown.at(1)));
  const Data shrunk = share(&prev, J(R"([{"a":1}])"));
  EXPECT_FALSE(same(prev, shrunk));
  EXPECT_TRUE(same(*prev.at(0), *shrunk.at(0)));
}

TEST(StructuralSharing, ReorderedEqualObjectKeepsTheOldNode) {
  const Data prev = D(R"({"a":{"x":1},"b":2})");
  const Data next = share(&prev, J(R"({"b":2,"a":{"x":1}})"));
  EXPECT_TRUE(same(prev, next));
  const Data changed = share(&prev, J(R"({"b":3,"a":{"x":1}})"));
  EXPECT_EQ(changed.dump(), R"({"b":3,"a":{"x":1}})");  // new order kept
  EXPECT_TRUE(same(*prev.find("a"), *changed.find("a")));
}

TEST(StructuralSharing, KindChangesAndNumbers) {
  const Data prev = D(R"({"a":[1],"n":1})");
  const Data next = share(&prev, J(R"({"a":{"0":1},"n":1.0})"));
  EXPECT_TRUE(next.find("a")->is_object());
  EXPECT_TRUE(next.find("n")->is_number());
  const Data same_numbers = share(&prev, J(R"({"a":[1.0],"n":1.0})"));
  EXPECT_TRUE(same(prev, same_numbers));  // 1 === 1.0
  const Data nan_prev = Data::from_json(json::array{std::nan("")});
  const Data nan_next = share(&nan_prev, json::array{std::nan("")});
  EXPECT_FALSE(same(nan_prev, nan_next));  // NaN !== NaN, so its container is new
}

TEST(StructuralSharing, NoPreviousDataBuildsFresh) {
  const Data d = share(nullptr, J(R"([1,2])"));
  EXPECT_EQ(d.dump(), "[1,2]");
}

TEST(StructuralSharing, DeepNestingStopsSharingPastDepth500) {
  std::string deep;
  for (int i = 0; i < 600; ++i)
    deep += "[";
  deep += "1";
  for (int i = 0; i < 600; ++i)
    deep += "]";
  json::parse_options opts;
  opts.max_depth = 1000;
  const json::value v = json::parse(deep, {}, opts);
  const Data prev = Data::from_json(v);
  const Data next = share(&prev, v);
  // The top levels are compared; beyond depth 500 the new value is taken as given, so the chain of
  // ancestors is new even though the values are equal.
  EXPECT_FALSE(same(prev, next));
  EXPECT_TRUE(prev == next);
}

TEST(ReplaceEqualDeep, DataInputs) {
  const Data prev = D(R"({"a":{"x":[1,2]},"b":{"y":1}})");
  const Data next_equal = D(R"({"a":{"x":[1,2]},"b":{"y":1}})");
  EXPECT_TRUE(same(replace_equal_deep(prev, next_equal), prev));
  const Data next = D(R"({"a":{"x":[1,2]},"b":{"y":2}})");
  const Data r = replace_equal_deep(prev, next);
  EXPECT_FALSE(same(r, prev));
  EXPECT_TRUE(same(*r.find("a"), *prev.find("a")));
  EXPECT_EQ(r.find("b")->find("y")->as_int64(), 2);
  EXPECT_TRUE(same(replace_equal_deep(prev, prev), prev));
}
