#include "rtsync/core/json.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace rtsync::core {
namespace {

TEST(Json, ParseReturnsErrorInsteadOfThrowing) {
  auto bad = parse_json("{\"a\":");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_json);
  auto good = parse_json(R"({"a":[1,2]})");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(find_array(*good, "a")->size(), 2u);
}

TEST(Json, LookupsAreTypeChecked) {
  auto v = parse_json(R"({"s":"x","b":true,"i":5,"d":5.0,"f":5.5,"o":{}})").value();
  EXPECT_EQ(find_string(v, "s"), "x");
  EXPECT_EQ(find_string(v, "b"), std::nullopt);
  EXPECT_EQ(find_bool(v, "b"), true);
  EXPECT_EQ(find_int(v, "i"), 5);
  EXPECT_EQ(find_int(v, "d"), 5);
  EXPECT_EQ(find_int(v, "f"), std::nullopt);
  EXPECT_NE(find_object(v, "o"), nullptr);
  EXPECT_EQ(find(json::value(3), "x"), nullptr);
}

TEST(Json, EqualityTreatsNumbersAsOneType) {
  EXPECT_TRUE(json_equal(json::value(1), json::value(1.0)));
  EXPECT_TRUE(json_equal(json::value(1), json::value(1u)));
  EXPECT_FALSE(json_equal(json::value(-1), json::value(18446744073709551615u)));
  EXPECT_TRUE(json_equal(parse_json(R"({"a":1,"b":[true,null]})").value(),
                         parse_json(R"({"b":[true,null],"a":1.0})").value()));
  EXPECT_FALSE(json_equal(parse_json(R"({"a":1})").value(), parse_json(R"({"a":"1"})").value()));
}

// The form JSON.stringify and PostgreSQL's json output share (query key hashes, REST bodies).
TEST(Json, AppendJsonStringEscapesAsJsonStringifyAndPostgres) {
  std::string out = "x";
  append_json_string(out, "a\"b\\c\n\t\r\b\f\x01\x1f\x7f/ é");
  EXPECT_EQ(out, "x\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f/ é\"");
  const json::value back = json::parse(out.substr(1));
  EXPECT_EQ(back.as_string(), "a\"b\\c\n\t\r\b\f\x01\x1f\x7f/ é");
  out.clear();
  append_json_string(out, "");
  EXPECT_EQ(out, "\"\"");
}

// ---- canonical_json: the one printer (query key hashes, server auth-class keys) ----------------

json::value J(std::string_view text) {
  return parse_json(text).value();
}

TEST(CanonicalJson, EqualObjectsPrintTheSameWhateverTheirMemberOrder) {
  const auto a = J(R"({"b":1,"a":{"y":[{"d":1,"c":2}],"x":null}})");
  const auto b = J(R"({"a":{"x":null,"y":[{"c":2,"d":1}]},"b":1})");
  EXPECT_EQ(canonical_json(a), R"({"a":{"x":null,"y":[{"c":2,"d":1}]},"b":1})");
  EXPECT_EQ(canonical_json(b), canonical_json(a));
  // Arrays keep their order.
  EXPECT_EQ(canonical_json(J("[2,1]")), "[2,1]");
  EXPECT_EQ(canonical_json(J(R"({"a":[],"b":{}})")), R"({"a":[],"b":{}})");
}

TEST(CanonicalJson, ArrayIndexNamesFirstInNumericOrderThenUtf16Order) {
  EXPECT_EQ(canonical_json(J(R"({"10":1,"2":2,"a":3})")), R"({"2":2,"10":1,"a":3})");
  // Only canonical decimal integers below 2^32 - 1 are indices.
  EXPECT_EQ(canonical_json(J(R"({"4294967295":1,"4294967294":2,"01":3,"-1":4,"1":5,"":6})")),
            R"({"1":5,"4294967294":2,"":6,"-1":4,"01":3,"4294967295":1})");
  // UTF-16 code units: U+E000 after U+1F600 (surrogates start at 0xD83D), é (U+00E9) after z.
  EXPECT_EQ(canonical_json(J("{\"\xee\x80\x80\":1,\"\xf0\x9f\x98\x80\":2,\"\xc3\xa9\":3,\"z\":4}")),
            "{\"z\":4,\"\xc3\xa9\":3,\"\xf0\x9f\x98\x80\":2,\"\xee\x80\x80\":1}");
  EXPECT_EQ(canonical_json(J(R"({"ab":1,"a":2,"B":3})")), R"({"B":3,"a":2,"ab":1})");
}

TEST(CanonicalJson, NumbersPrintAsJavaScriptWhateverTheRepresentation) {
  EXPECT_EQ(canonical_json(json::value(1.0)), "1");
  EXPECT_EQ(canonical_json(json::value(std::uint64_t{1})), "1");
  EXPECT_EQ(canonical_json(json::value(std::int64_t{1})), "1");
  EXPECT_EQ(canonical_json(json::value(-0.0)), "0");
  EXPECT_EQ(canonical_json(json::value(0.1)), "0.1");
  EXPECT_EQ(canonical_json(json::value(1e21)), "1e+21");
  EXPECT_EQ(canonical_json(json::value(1e20)), "100000000000000000000");
  EXPECT_EQ(canonical_json(json::value(1e-6)), "0.000001");
  EXPECT_EQ(canonical_json(json::value(1e-7)), "1e-7");
  EXPECT_EQ(canonical_json(json::value(-2.5e-9)), "-2.5e-9");
  EXPECT_EQ(canonical_json(json::value(std::numeric_limits<double>::infinity())), "null");
  // Integers beyond what a double holds exactly keep every digit.
  EXPECT_EQ(canonical_json(json::value(std::uint64_t{18446744073709551615u})),
            "18446744073709551615");
  EXPECT_EQ(canonical_json(json::value(std::int64_t{-9007199254740993})), "-9007199254740993");
  // A JWT's exp as a double and as an integer key one auth class.
  EXPECT_EQ(canonical_json(J(R"({"exp":1700000000.0,"sub":"u"})")),
            canonical_json(J(R"({"sub":"u","exp":1700000000})")));
}

TEST(CanonicalJson, StringsAndNamesAreEscapedAsJsonStringify) {
  EXPECT_EQ(canonical_json(json::value("a\"b\\c\n\u0001")), R"("a\"b\\c\n\u0001")");
  EXPECT_EQ(canonical_json(J(R"({"q\"x":true,"t\tb":false})")), R"({"q\"x":true,"t\tb":false})");
  EXPECT_EQ(canonical_json(json::value("/é")), "\"/é\"");  // kept as is
  std::string out = "prefix:";
  append_canonical_json(out, J(R"({"b":null,"a":[true]})"));
  EXPECT_EQ(out, R"(prefix:{"a":[true],"b":null})");
}

TEST(CanonicalJson, OutputIsJsonThatParsesBackToAnEqualValue) {
  const auto v = J(R"({"z":[1.5,-3,{"10":"x","9":null}],"a":"\u00e9\t","m":1e300,"n":1e-300})");
  const auto text = canonical_json(v);
  auto back = parse_json(text);
  ASSERT_TRUE(back.ok()) << text;
  EXPECT_TRUE(json_equal(back.value(), v)) << text;
  EXPECT_EQ(canonical_json(back.value()), text);
}

}  // namespace
}  // namespace rtsync::core
