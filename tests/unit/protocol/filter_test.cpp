#include "rtsync/protocol/filter.hpp"

#include <gtest/gtest.h>

namespace rtsync::protocol {
namespace {

json::object row(std::string_view text) {
  return json::parse(text).as_object();
}

Filter must_parse(std::string_view text) {
  auto f = parse_filter(text);
  EXPECT_TRUE(f.ok()) << text << ": " << (f.ok() ? "" : f.error().describe());
  return f.ok() ? f.value() : Filter{};
}

// ---- grammar ----------------------------------------------------------------------------------

TEST(FilterParse, EachOperator) {
  struct {
    const char* text;
    FilterOp op;
  } cases[] = {{"id=eq.1", FilterOp::eq}, {"id=neq.1", FilterOp::neq},
               {"id=lt.1", FilterOp::lt}, {"id=lte.1", FilterOp::lte},
               {"id=gt.1", FilterOp::gt}, {"id=gte.1", FilterOp::gte}};
  for (const auto& c : cases) {
    auto f = must_parse(c.text);
    EXPECT_EQ(f.column, "id");
    EXPECT_EQ(f.op, c.op);
    EXPECT_EQ(f.values, std::vector<std::string>{"1"});
    EXPECT_EQ(print_filter(f), c.text);
  }
}

TEST(FilterParse, SingleValueIsTakenVerbatim) {
  auto f = must_parse("title=eq.a.b,c (d) \"e\"");
  EXPECT_EQ(f.values, std::vector<std::string>{"a.b,c (d) \"e\""});
  EXPECT_EQ(must_parse("project_id=eq.").values, std::vector<std::string>{""});
  EXPECT_EQ(must_parse("project_id=eq.5e0b1c2a-0000-4000-8000-000000000001").values[0],
            "5e0b1c2a-0000-4000-8000-000000000001");
}

TEST(FilterParse, InListPlainQuotedAndEscaped) {
  auto f = must_parse(R"(name=in.(a,b,"c,d"))");
  EXPECT_EQ(f.op, FilterOp::in);
  EXPECT_EQ(f.values, (std::vector<std::string>{"a", "b", "c,d"}));
  // Supabase's documented example: white space around bare values is trimmed.
  EXPECT_EQ(must_parse("name=in.(red, blue, yellow)").values,
            (std::vector<std::string>{"red", "blue", "yellow"}));
  EXPECT_EQ(must_parse(R"(x=in.("a\"b","c\\d",e\,f, " sp ",""))").values,
            (std::vector<std::string>{"a\"b", "c\\d", "e,f", " sp ", ""}));
  EXPECT_EQ(must_parse("x=in.(a(b),c)").values, (std::vector<std::string>{"a(b)", "c"}));
  EXPECT_TRUE(must_parse("x=in.()").values.empty());
}

TEST(FilterParse, ExactlyOneHundredInValuesAllowed) {
  std::string text = "id=in.(";
  for (int i = 0; i < 100; ++i)
    text += (i ? "," : "") + std::to_string(i);
  auto f = must_parse(text + ")");
  EXPECT_EQ(f.values.size(), 100u);
}

void expect_filter_error(std::string_view text) {
  auto f = parse_filter(text);
  ASSERT_FALSE(f.ok()) << text;
  EXPECT_EQ(f.error().code, Errc::invalid_filter) << text;
  EXPECT_FALSE(f.error().message.empty());
}

TEST(FilterParseErrors, UnknownOperator) {
  expect_filter_error("id=like.a%");
  expect_filter_error("id=EQ.1");
  expect_filter_error("status=not.in.(a,b)");
  expect_filter_error("id=.1");
}

TEST(FilterParseErrors, UnterminatedQuote) {
  expect_filter_error(R"(x=in.("a,b))");
  expect_filter_error(R"(x=in.("a\"))");
}

TEST(FilterParseErrors, MoreThanOneHundredInValues) {
  std::string text = "id=in.(";
  for (int i = 0; i < 101; ++i)
    text += (i ? "," : "") + std::to_string(i);
  expect_filter_error(text + ")");
}

TEST(FilterParseErrors, MissingEquals) {
  expect_filter_error("id.eq.1");
}
TEST(FilterParseErrors, EmptyInput) {
  expect_filter_error("");
}
TEST(FilterParseErrors, EmptyColumn) {
  expect_filter_error("=eq.1");
}
TEST(FilterParseErrors, MissingDot) {
  expect_filter_error("id=eq");
  expect_filter_error("id=in");
}
TEST(FilterParseErrors, InWithoutParentheses) {
  expect_filter_error("id=in.1,2");
  expect_filter_error("id=in.(1,2");
  expect_filter_error("id=in.(1,2)x");
}
TEST(FilterParseErrors, MalformedInItems) {
  expect_filter_error("id=in.(a,,b)");
  expect_filter_error("id=in.(a,)");
  expect_filter_error(R"(id=in.("a"b))");
  expect_filter_error(R"(id=in.(a"b))");
  expect_filter_error(R"(id=in.(a\))");
}

TEST(FilterPrint, QuotesOnlyWhereNeededAndRoundTrips) {
  Filter f{"tag",
           FilterOp::in,
           {"plain", "with,comma", "par(en)", "q\"uote", "back\\slash", " lead", "trail ", "",
            "mid space"}};
  const auto text = print_filter(f);
  EXPECT_EQ(
      text,
      R"f(tag=in.(plain,"with,comma","par(en)","q\"uote","back\\slash"," lead","trail ","",mid space))f");
  EXPECT_EQ(parse_filter(text).value(), f);
}

TEST(FilterPrint, RoundTripOfParsedFilters) {
  for (auto text : {"id=eq.1", "a=neq.x y", R"(n=in.("a,b",c))", "t=gte.2024-01-01 00:00",
                    "x=in.()", R"(x=in.( a , "b" ))"}) {
    auto f = must_parse(text);
    EXPECT_EQ(parse_filter(print_filter(f)).value(), f) << text;
  }
}

TEST(FilterOpNames, ToString) {
  EXPECT_EQ(to_string(FilterOp::eq), "eq");
  EXPECT_EQ(to_string(FilterOp::lte), "lte");
  EXPECT_EQ(to_string(FilterOp::in), "in");
}

// ---- value kinds ------------------------------------------------------------------------------

TEST(ValueKind, FromTypname) {
  for (auto t : {"int2", "int4", "int8", "float4", "float8", "numeric", "oid"}) {
    EXPECT_EQ(value_kind(t), ValueKind::number) << t;
  }
  EXPECT_EQ(value_kind("bool"), ValueKind::boolean);
  for (auto t : {"text", "varchar", "uuid", "timestamptz", "_int4", "jsonb", ""}) {
    EXPECT_EQ(value_kind(t), ValueKind::text) << t;
  }
}

// ---- evaluation ---------------------------------------------------------------------------------

bool matches(std::string_view filter, std::string_view row_json,
             std::optional<ValueKind> kind = std::nullopt) {
  return filter_matches(must_parse(filter), row(row_json), kind);
}

TEST(FilterMatch, NumberOperatorsAtBoundaries) {
  const auto r = R"({"n":10})";
  EXPECT_TRUE(matches("n=eq.10", r));
  EXPECT_FALSE(matches("n=eq.9", r));
  EXPECT_TRUE(matches("n=neq.9", r));
  EXPECT_FALSE(matches("n=neq.10", r));
  EXPECT_FALSE(matches("n=lt.10", r));
  EXPECT_TRUE(matches("n=lte.10", r));
  EXPECT_TRUE(matches("n=lt.11", r));
  EXPECT_FALSE(matches("n=gt.10", r));
  EXPECT_TRUE(matches("n=gte.10", r));
  EXPECT_TRUE(matches("n=gt.9", r));
  EXPECT_TRUE(matches("n=in.(1,10,100)", r));
  EXPECT_FALSE(matches("n=in.(1,100)", r));
}

TEST(FilterMatch, NumbersCompareNumericallyTextBytewise) {
  // "10" vs "9": numerically 10 > 9, as text "10" < "9".
  EXPECT_TRUE(matches("n=gt.9", R"({"n":"10"})", ValueKind::number));
  EXPECT_FALSE(matches("n=gt.9", R"({"n":"10"})", ValueKind::text));
  EXPECT_TRUE(matches("n=lt.9", R"({"n":"10"})", ValueKind::text));
  EXPECT_TRUE(matches("n=gt.9", R"({"n":10})"));    // inferred from the JSON number
  EXPECT_TRUE(matches("n=lt.9", R"({"n":"10"})"));  // inferred: a string is text
}

TEST(FilterMatch, NumberFormsAreEqualNumerically) {
  EXPECT_TRUE(matches("n=eq.10", R"({"n":10.0})"));
  EXPECT_TRUE(matches("n=eq.1e1", R"({"n":10})"));
  EXPECT_TRUE(matches("n=eq.010.00", R"({"n":"10"})", ValueKind::number));
  EXPECT_TRUE(matches("n=eq.-0", R"({"n":0})"));
  EXPECT_TRUE(matches("n=eq. 7 ", R"({"n":7})"));
  EXPECT_TRUE(matches("n=lt.0.1", R"({"n":0.09999})"));
  EXPECT_TRUE(matches("n=gt.-1.5", R"({"n":-1})"));
  EXPECT_FALSE(matches("n=gt.-1.5", R"({"n":-2})"));
}

TEST(FilterMatch, Int64ComparedExactlyNotThroughDouble) {
  // 2^53 + 1 and 2^53 are the same double.
  EXPECT_FALSE(matches("id=eq.9007199254740992", R"({"id":9007199254740993})"));
  EXPECT_TRUE(matches("id=gt.9007199254740992", R"({"id":9007199254740993})"));
  EXPECT_TRUE(
      matches("id=eq.9223372036854775807", R"({"id":"9223372036854775807"})", ValueKind::number));
  EXPECT_TRUE(matches("id=lt.9223372036854775807", R"({"id":9223372036854775806})"));
  EXPECT_TRUE(matches("id=gt.9223372036854775807", R"({"id":18446744073709551615})"));
  EXPECT_TRUE(matches("id=lt.-9223372036854775807", R"({"id":-9223372036854775808})"));
  // Numerics longer than any machine type.
  EXPECT_TRUE(matches("x=lt.123456789012345678901234567891",
                      R"({"x":"123456789012345678901234567890"})", ValueKind::number));
}

TEST(FilterMatch, SpecialNumbers) {
  EXPECT_TRUE(matches("x=lt.Infinity", R"({"x":1e300})"));
  EXPECT_TRUE(matches("x=gt.-Infinity", R"({"x":-1e300})"));
  EXPECT_TRUE(matches("x=eq.NaN", R"({"x":"NaN"})", ValueKind::number));
  EXPECT_TRUE(matches("x=gt.Infinity", R"({"x":"NaN"})", ValueKind::number));  // NaN is largest
}

TEST(FilterMatch, UnparseableNumbersNeverMatch) {
  for (auto op : {"eq", "neq", "lt", "lte", "gt", "gte"}) {
    EXPECT_FALSE(matches(std::string("n=") + op + ".abc", R"({"n":1})")) << op;
    EXPECT_FALSE(matches(std::string("n=") + op + ".1", R"({"n":"abc"})", ValueKind::number)) << op;
    EXPECT_FALSE(matches(std::string("n=") + op + ".1", R"({"n":true})", ValueKind::number)) << op;
  }
  EXPECT_FALSE(matches("n=eq.1e", R"({"n":1})"));
  EXPECT_FALSE(matches("n=eq.", R"({"n":1})"));
  // An unreadable `in` element is skipped; the others still count.
  EXPECT_TRUE(matches("n=in.(x,1)", R"({"n":1})"));
}

TEST(FilterMatch, TextOperatorsBytewise) {
  const auto r = R"({"s":"b"})";
  EXPECT_TRUE(matches("s=eq.b", r));
  EXPECT_FALSE(matches("s=eq.B", r));
  EXPECT_TRUE(matches("s=neq.a", r));
  EXPECT_TRUE(matches("s=gt.a", r));
  EXPECT_FALSE(matches("s=gt.b", r));
  EXPECT_TRUE(matches("s=gte.b", r));
  EXPECT_TRUE(matches("s=lt.c", r));
  EXPECT_FALSE(matches("s=lt.b", r));
  EXPECT_TRUE(matches("s=lte.b", r));
  EXPECT_TRUE(matches("s=lt.ba", r));              // prefix sorts first
  EXPECT_TRUE(matches("s=gt.B", r));               // C collation: uppercase before lowercase
  EXPECT_TRUE(matches("s=gt.z", R"({"s":"é"})"));  // bytes as unsigned: UTF-8 after ASCII
  EXPECT_TRUE(matches(R"(s=in.("a,b",c))", R"({"s":"a,b"})"));
  EXPECT_FALSE(matches(R"(s=in.("a,b",c))", R"({"s":"a"})"));
  EXPECT_TRUE(matches("s=eq.", R"({"s":""})"));
}

TEST(FilterMatch, TextKindOnTypedValuesUsesTheirJsonText) {
  EXPECT_TRUE(matches("n=eq.10", R"({"n":10})", ValueKind::text));
  EXPECT_TRUE(matches("b=eq.true", R"({"b":true})", ValueKind::text));
}

TEST(FilterMatch, Booleans) {
  EXPECT_TRUE(matches("b=eq.true", R"({"b":true})"));
  EXPECT_FALSE(matches("b=eq.false", R"({"b":true})"));
  EXPECT_TRUE(matches("b=neq.false", R"({"b":true})"));
  EXPECT_TRUE(matches("b=eq.t", R"({"b":true})"));
  EXPECT_TRUE(matches("b=eq.TRUE", R"({"b":true})"));
  EXPECT_TRUE(matches("b=eq.yes", R"({"b":true})"));
  EXPECT_TRUE(matches("b=eq.on", R"({"b":true})"));
  EXPECT_TRUE(matches("b=eq.1", R"({"b":true})"));
  EXPECT_TRUE(matches("b=eq.off", R"({"b":false})"));
  EXPECT_TRUE(matches("b=eq.0", R"({"b":false})"));
  EXPECT_TRUE(matches("b=eq.f", R"({"b":"false"})", ValueKind::boolean));
  EXPECT_TRUE(matches("b=lt.true", R"({"b":false})"));  // false < true
  EXPECT_FALSE(matches("b=lt.false", R"({"b":false})"));
  EXPECT_TRUE(matches("b=lte.false", R"({"b":false})"));
  EXPECT_TRUE(matches("b=gt.false", R"({"b":true})"));
  EXPECT_TRUE(matches("b=gte.true", R"({"b":true})"));
  EXPECT_TRUE(matches("b=in.(f,maybe)", R"({"b":false})"));
  EXPECT_FALSE(matches("b=eq.maybe", R"({"b":true})"));
  EXPECT_FALSE(matches("b=eq.o", R"({"b":true})"));  // ambiguous prefix
  EXPECT_FALSE(matches("b=eq.true", R"({"b":1})", ValueKind::boolean));
}

TEST(FilterMatch, NullNeverMatches) {
  for (auto f : {"x=eq.1", "x=neq.1", "x=lt.1", "x=lte.1", "x=gt.1", "x=gte.1", "x=in.(1,null)",
                 "x=eq.null", "x=neq.null"}) {
    EXPECT_FALSE(matches(f, R"({"x":null})")) << f;
    EXPECT_FALSE(matches(f, R"({"x":null})", ValueKind::number)) << f;
    EXPECT_FALSE(matches(f, R"({"x":null})", ValueKind::text)) << f;
    EXPECT_FALSE(matches(f, R"({"x":null})", ValueKind::boolean)) << f;
  }
}

TEST(FilterMatch, MissingColumnNeverMatches) {
  EXPECT_FALSE(matches("x=neq.1", R"({"y":2})"));
  EXPECT_FALSE(matches("x=eq.1", R"({})"));
}

TEST(FilterMatch, EmptyInListMatchesNothing) {
  EXPECT_FALSE(matches("x=in.()", R"({"x":1})"));
}

TEST(FilterMatch, ProjectFilterOfTheSeed) {
  auto f = must_parse("project_id=eq.7f9c0e2a-1111-4222-8333-944445555666");
  EXPECT_TRUE(filter_matches(f, row(R"({"project_id":"7f9c0e2a-1111-4222-8333-944445555666"})"),
                             value_kind("uuid")));
  EXPECT_FALSE(filter_matches(f, row(R"({"project_id":"00000000-1111-4222-8333-944445555666"})"),
                              value_kind("uuid")));
}

}  // namespace
}  // namespace rtsync::protocol
