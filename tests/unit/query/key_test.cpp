// Key hashing and partial matching (TanStack utils.test: hashKey, partialMatchKey).
#include "rtsync/client/query/key.hpp"

#include <gtest/gtest.h>

#include "fake_fetcher.hpp"

#include <cmath>
#include <limits>

#include "rtsync/core/log.hpp"

using namespace rtsync;
using namespace rtsync::client::query;
using rtsync::core::canonical_json;  // the key hash's printer (core/json.hpp)

namespace {
using test::J;
std::string H(std::string_view text) {
  return canonical_json(J(text));
}
}  // namespace

TEST(KeyHash, SortsObjectKeysAtEveryDepth) {
  EXPECT_EQ(H(R"([{"b":2,"a":1}])"), R"([{"a":1,"b":2}])");
  EXPECT_EQ(H(R"([{"b":2,"a":1}])"), H(R"([{"a":1,"b":2}])"));
  EXPECT_EQ(H(R"(["x",{"z":{"d":1,"c":[{"f":1,"e":2}]},"y":null}])"),
            R"(["x",{"y":null,"z":{"c":[{"e":2,"f":1}],"d":1}}])");
  // Array order is significant.
  EXPECT_NE(H("[1,2]"), H("[2,1]"));
}

TEST(KeyHash, ArrayIndexNamesComeFirstInNumericOrder) {
  // JavaScript lists integer-like property names before the others, in numeric order, whatever
  // order sort() gave them: hashKey([{"10":1,"2":2,"a":3}]) === '[{"2":2,"10":1,"a":3}]'.
  EXPECT_EQ(H(R"([{"10":1,"2":2,"a":3}])"), R"([{"2":2,"10":1,"a":3}])");
  EXPECT_EQ(H(R"([{"b":{"z":1,"1":2,"0":3}}])"), R"([{"b":{"0":3,"1":2,"z":1}}])");
  // Only canonical integers below 2^32 - 1 are array indices; "01", "-1", "4294967295" are names.
  EXPECT_EQ(H(R"([{"4294967295":1,"4294967294":2,"01":3,"-1":4,"1":5}])"),
            R"([{"1":5,"4294967294":2,"-1":4,"01":3,"4294967295":1}])");
}

TEST(KeyHash, NamesSortByUtf16CodeUnits) {
  // U+E000 sorts after U+1F600 in UTF-16 (its surrogates start at 0xD83D), unlike in UTF-8.
  EXPECT_EQ(H("[{\"\xee\x80\x80\":1,\"\xf0\x9f\x98\x80\":2,\"a\":3,\"\":4}]"),
            "[{\"\":4,\"a\":3,\"\xf0\x9f\x98\x80\":2,\"\xee\x80\x80\":1}]");
  // A prefix sorts first.
  EXPECT_EQ(H(R"([{"ab":1,"a":2}])"), R"([{"a":2,"ab":1}])");
}

TEST(KeyHash, NumbersPrintAsJavaScript) {
  EXPECT_EQ(canonical_json(json::value(1.0)), "1");
  EXPECT_EQ(canonical_json(json::value(-0.0)), "0");
  EXPECT_EQ(canonical_json(json::value(0.1)), "0.1");
  EXPECT_EQ(canonical_json(json::value(1.5)), "1.5");
  EXPECT_EQ(canonical_json(json::value(1e21)), "1e+21");
  EXPECT_EQ(canonical_json(json::value(1e20)), "100000000000000000000");
  EXPECT_EQ(canonical_json(json::value(123456789012.5)), "123456789012.5");
  EXPECT_EQ(canonical_json(json::value(1e-6)), "0.000001");
  EXPECT_EQ(canonical_json(json::value(1e-7)), "1e-7");
  EXPECT_EQ(canonical_json(json::value(-2.5e-9)), "-2.5e-9");
  EXPECT_EQ(canonical_json(json::value(1.7976931348623157e308)), "1.7976931348623157e+308");
  EXPECT_EQ(canonical_json(json::value(std::int64_t{-42})), "-42");
  EXPECT_EQ(canonical_json(json::value(std::uint64_t{18446744073709551615u})),
            "18446744073709551615");
  EXPECT_EQ(canonical_json(json::value(std::nan(""))), "null");  // JSON.stringify(NaN)
}

TEST(KeyHash, StringsEscapeAsJsonStringify) {
  EXPECT_EQ(canonical_json(json::value("a\"b\\c")), R"("a\"b\\c")");
  EXPECT_EQ(canonical_json(json::value("\b\f\n\r\t")), R"("\b\f\n\r\t")");
  EXPECT_EQ(canonical_json(json::value(std::string("\x01\x1f", 2))), R"("\u0001\u001f")");
  EXPECT_EQ(canonical_json(json::value("/é✓")), "\"/é✓\"");  // kept as is
  EXPECT_EQ(canonical_json(json::value(json::string("\x7f"))), "\"\x7f\"");
}

TEST(QueryKeyTest, HashAndNormalisation) {
  QueryKey k{"tasks", "paginated", "p1", 1, 50, json::array{"Queued"}};
  EXPECT_EQ(k.hash(), R"(["tasks","paginated","p1",1,50,["Queued"]])");
  EXPECT_EQ(k.size(), 6u);
  // 1.0 and 1 are one JavaScript number: one key.
  QueryKey a{"p", 1.0};
  QueryKey b{"p", 1};
  EXPECT_EQ(a, b);
  EXPECT_TRUE(a[1].is_int64());
  EXPECT_EQ(QueryKey{}.hash(), "[]");
  EXPECT_EQ((QueryKey{json::object{{"b", 2}, {"a", 1}}}),
            (QueryKey{json::object{{"a", 1}, {"b", 2}}}));
}

TEST(QueryKeyTest, MakeRejectsNonArrays) {
  for (auto text : {R"("tasks")", "{}", "1", "null", "true"}) {
    auto r = QueryKey::make(J(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find("must be a JSON array"), std::string::npos);
  }
  auto bad = QueryKey::parse("[1,");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_json);
  auto ok = QueryKey::parse(R"(["a",{"y":1,"x":2}])");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->hash(), R"(["a",{"x":2,"y":1}])");
}

TEST(QueryKeyTest, MakeRejectsNonFiniteNumbersWithTheirPosition) {
  json::value v = json::array{"tasks", json::object{{"page", std::nan("")}}};
  auto r = QueryKey::make(v);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("/1/page"), std::string::npos) << r.error().message;
  auto inf = QueryKey::make(json::array{std::numeric_limits<double>::infinity()});
  ASSERT_FALSE(inf.ok());
  EXPECT_NE(inf.error().message.find("/0"), std::string::npos);
}

TEST(QueryKeyTest, LiteralNonFiniteBecomesNullAndIsLogged) {
  log::Capture capture;
  QueryKey k{"t", std::nan("")};
  EXPECT_EQ(k.hash(), R"(["t",null])");
  EXPECT_TRUE(k[1].is_null());
  EXPECT_TRUE(capture.contains("non-finite")) << "the mistake must show in the log";
}

TEST(PartialMatch, ArraysMatchAsPrefix) {
  const auto key = J(R"(["tasks","paginated","p",1,50,["Queued"]])");
  EXPECT_TRUE(partial_match(key, J(R"(["tasks"])")));
  EXPECT_TRUE(partial_match(key, J(R"(["tasks","paginated"])")));
  EXPECT_TRUE(partial_match(key, J("[]")));
  EXPECT_TRUE(partial_match(key, key));
  EXPECT_TRUE(partial_match(key, J(R"(["tasks","paginated","p",1,50,[]])")));  // nested prefix
  EXPECT_FALSE(partial_match(key, J(R"(["task"])")));
  EXPECT_FALSE(partial_match(key, J(R"(["paginated"])")));
  EXPECT_FALSE(partial_match(J(R"(["tasks"])"), key));  // longer filter
  EXPECT_FALSE(partial_match(key, J(R"(["tasks","paginated","p",1,50,["Queued","x"]])")));
}

TEST(PartialMatch, ObjectsMatchAsSubset) {
  const auto key = J(R"(["gen",{"shot":"s1","page":2,"f":{"a":1,"b":[1,2]}}])");
  EXPECT_TRUE(partial_match(key, J(R"(["gen",{}])")));
  EXPECT_TRUE(partial_match(key, J(R"(["gen",{"page":2}])")));
  EXPECT_TRUE(partial_match(key, J(R"(["gen",{"f":{"b":[1]}}])")));
  EXPECT_FALSE(partial_match(key, J(R"(["gen",{"page":3}])")));
  EXPECT_FALSE(partial_match(key, J(R"(["gen",{"missing":null}])")));
  EXPECT_FALSE(partial_match(key, J(R"(["gen",{"f":{"c":1}}])")));
}

TEST(PartialMatch, KindsMustAgree) {
  EXPECT_FALSE(partial_match(J("[null]"), J("[{}]")));  // null vs object
  EXPECT_FALSE(partial_match(J("[{}]"), J("[null]")));
  EXPECT_FALSE(partial_match(J("[[]]"), J("[{}]")));  // array vs object
  EXPECT_FALSE(partial_match(J("[{}]"), J("[[]]")));
  EXPECT_FALSE(partial_match(J(R"(["1"])"), J("[1]")));  // string vs number
  EXPECT_FALSE(partial_match(J("[true]"), J("[1]")));
  EXPECT_TRUE(partial_match(J("[null]"), J("[null]")));
  EXPECT_TRUE(partial_match(J("[1]"), J("[1.0]")));  // one number type
  EXPECT_TRUE(partial_match(J("[18446744073709551615]"), J("[18446744073709551615]")));
  EXPECT_FALSE(partial_match(J("[1]"), J("[1.5]")));
}

TEST(QueryKeyTest, MatchesUsesPartialMatch) {
  QueryKey k{"tasks", "paginated", "p1", 1};
  EXPECT_TRUE(k.matches(QueryKey{"tasks"}));
  EXPECT_TRUE(k.matches(QueryKey{"tasks", "paginated", "p1", 1.0}));
  EXPECT_FALSE(k.matches(QueryKey{"tasks", "single"}));
}

TEST(SplitCanonical, SplitsTopLevelElements) {
  const std::string text = canonical_json(J(R"(["a,b",{"x":[1,2],"y":"]"},[3,[4]],null,-1.5])"));
  auto parts = split_canonical_array(text);
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(parts[0], R"("a,b")");
  EXPECT_EQ(parts[1], R"({"x":[1,2],"y":"]"})");
  EXPECT_EQ(parts[2], "[3,[4]]");
  EXPECT_EQ(parts[3], "null");
  EXPECT_EQ(parts[4], "-1.5");
  EXPECT_TRUE(split_canonical_array("[]").empty());
  const std::string escaped_text = canonical_json(J(R"(["q\"x,","y"])"));
  auto escaped = split_canonical_array(escaped_text);
  ASSERT_EQ(escaped.size(), 2u);
  EXPECT_EQ(escaped[1], R"("y")");
}
