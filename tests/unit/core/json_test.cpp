#include "rtsync/core/json.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace rtsync::core
