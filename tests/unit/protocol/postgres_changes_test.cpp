#include "rtsync/protocol/postgres_changes.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "reference_frames.hpp"
#include "rtsync/protocol/message.hpp"

namespace rtsync::protocol {
namespace {

using namespace test;  // NOLINT

json::value reference_payload() {
  return decode_v2(kV2PostgresChanges).value().payload;
}

TEST(ChangeEvent, ParsesReferenceExample) {
  auto ev = parse_change_event(reference_payload());
  ASSERT_TRUE(ev.ok()) << ev.error().describe();
  EXPECT_EQ(ev->ids, std::vector<std::int64_t>{104868189});
  const auto& d = ev->data;
  EXPECT_EQ(d.schema, "public");
  EXPECT_EQ(d.table, "test");
  EXPECT_EQ(d.commit_timestamp, "2025-11-19T00:22:40.877Z");
  EXPECT_EQ(d.type, "UPDATE");
  EXPECT_EQ(d.columns,
            (std::vector<Column>{{"id", "int8"}, {"created_at", "timestamptz"}, {"text", "text"}}));
  ASSERT_TRUE(d.record.has_value());
  EXPECT_EQ(d.record->at("id").as_int64(), 46);
  ASSERT_TRUE(d.old_record.has_value());
  EXPECT_TRUE(core::json_equal(*d.old_record, jv(R"({"id":46})")));
  EXPECT_TRUE(d.errors.is_null());
}

TEST(ChangeEvent, BuildReproducesReferenceBytes) {
  auto ev = parse_change_event(reference_payload()).value();
  EXPECT_EQ(json::serialize(build_change_event(ev)), json::serialize(reference_payload()));
  // And the whole frame through the vsn 2 encoder.
  Message m;
  m.topic = "realtime:chat-room";
  m.event = std::string(events::kPostgresChanges);
  m.payload = build_change_event(ev);
  EXPECT_EQ(encode_v2(m), json::serialize(json::parse(kV2PostgresChanges)));
}

TEST(ChangeEvent, InsertHasNoOldRecordKeyDeleteNoRecordKey) {
  ChangeEvent ev;
  ev.ids = {1, 2};
  ev.data.schema = "public";
  ev.data.table = "tasks";
  ev.data.commit_timestamp = "2025-01-01T00:00:00.000Z";
  ev.data.type = "INSERT";
  ev.data.columns = {{"id", "int4"}};
  ev.data.record = json::object{{"id", 1}};
  EXPECT_EQ(
      json::serialize(build_change_event(ev)),
      R"({"ids":[1,2],"data":{"schema":"public","table":"tasks","commit_timestamp":"2025-01-01T00:00:00.000Z","type":"INSERT","columns":[{"name":"id","type":"int4"}],"record":{"id":1},"errors":null}})");
  ev.data.type = "DELETE";
  ev.data.old_record = ev.data.record;
  ev.data.record.reset();
  auto back = parse_change_event(build_change_event(ev)).value();
  EXPECT_FALSE(back.data.record.has_value());
  EXPECT_TRUE(core::json_equal(*back.data.old_record, jv(R"({"id":1})")));
}

TEST(ChangeEvent, ErrorRowsWithOnlySchemaTableTypeErrors) {
  auto ev = parse_change_event(jv(
      R"({"ids":[5],"data":{"schema":"public","table":"t","type":"INSERT","errors":["Error 401: Unauthorized"]}})"));
  ASSERT_TRUE(ev.ok()) << ev.error().describe();
  EXPECT_TRUE(ev->data.columns.empty());
  EXPECT_EQ(ev->data.commit_timestamp, std::nullopt);
  EXPECT_FALSE(ev->data.record.has_value());
  EXPECT_EQ(ev->data.errors.at(0).as_string(), "Error 401: Unauthorized");
  auto shape = to_client_shape(ev->data);
  EXPECT_TRUE(core::json_equal(
      shape,
      jv(R"({"schema":"public","table":"t","commit_timestamp":null,"eventType":"INSERT","new":{},"old":{},"errors":["Error 401: Unauthorized"]})")));
}

TEST(ChangeEvent, BadShapesAreErrors) {
  for (auto bad : {
           R"([])",
           R"({"data":{"schema":"s","table":"t","type":"INSERT"}})",
           R"({"ids":[1.5],"data":{"schema":"s","table":"t","type":"INSERT"}})",
           R"({"ids":["1"],"data":{"schema":"s","table":"t","type":"INSERT"}})",
           R"({"ids":[1]})",
           R"({"ids":[1],"data":{"table":"t","type":"INSERT"}})",
           R"({"ids":[1],"data":{"schema":"s","type":"INSERT"}})",
           R"({"ids":[1],"data":{"schema":"s","table":"t"}})",
           R"({"ids":[1],"data":{"schema":"s","table":"t","type":"INSERT","commit_timestamp":5}})",
           R"({"ids":[1],"data":{"schema":"s","table":"t","type":"INSERT","columns":{}}})",
           R"({"ids":[1],"data":{"schema":"s","table":"t","type":"INSERT","record":[]}})",
           R"({"ids":[1],"data":{"schema":"s","table":"t","type":"INSERT","old_record":"x"}})",
           R"({"ids":[1],"data":{"schema":"s","table":"t","type":"INSERT","errors":"x"}})",
       }) {
    auto r = parse_change_event(jv(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_frame) << bad;
  }
}

TEST(PostgresChanges, MalformedColumnEntriesAreSkippedAndTheChangeDelivered) {
  // realtime-js looks columns up by name and ignores what it cannot use; so do we: the entries
  // without {name, type} strings are dropped, their values pass through unconverted.
  auto r = parse_change_event(jv(
      R"({"ids":[1],"data":{"schema":"s","table":"t","type":"INSERT","columns":[{"name":"a"},)"
      R"(7,{"name":"b","type":5},{"name":"c","type":"int4"}],"record":{"a":"1","b":"2","c":"3"}}})"));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->data.columns, (std::vector<Column>{{"c", "int4"}}));
  const auto shape = to_client_shape(r->data);
  EXPECT_EQ(json::serialize(shape.at("new")), R"({"a":"1","b":"2","c":3})");
}

// ---- client shape -------------------------------------------------------------------------------

TEST(ClientShape, ReferenceExample) {
  auto ev = parse_change_event(reference_payload()).value();
  auto shape = to_client_shape(ev.data);
  EXPECT_EQ(
      json::serialize(shape),
      R"({"schema":"public","table":"test","commit_timestamp":"2025-11-19T00:22:40.877Z","eventType":"UPDATE","new":{"id":46,"text":"content","created_at":"2025-11-03T09:32:55+00:00"},"old":{"id":46},"errors":null})");
}

TEST(ClientShape, NewOnlyForInsertAndUpdateOldOnlyForUpdateAndDelete) {
  ChangeData d;
  d.schema = "public";
  d.table = "tasks";
  d.columns = {{"id", "int4"}, {"done", "bool"}};
  d.record = json::object{{"id", "1"}, {"done", "t"}};
  d.old_record = json::object{{"id", "1"}};
  d.type = "INSERT";
  auto s = to_client_shape(d);
  EXPECT_TRUE(core::json_equal(s.at("new"), jv(R"({"id":1,"done":true})")));
  EXPECT_TRUE(core::json_equal(s.at("old"), jv("{}")));
  d.type = "DELETE";
  s = to_client_shape(d);
  EXPECT_TRUE(core::json_equal(s.at("new"), jv("{}")));
  EXPECT_TRUE(core::json_equal(s.at("old"), jv(R"({"id":1})")));
  d.type = "UPDATE";
  s = to_client_shape(d);
  EXPECT_TRUE(core::json_equal(s.at("new"), jv(R"({"id":1,"done":true})")));
  EXPECT_TRUE(core::json_equal(s.at("old"), jv(R"({"id":1})")));
  EXPECT_EQ(s.at("eventType").as_string(), "UPDATE");
  d.type = "update";  // realtime-js compares the type exactly
  s = to_client_shape(d);
  EXPECT_TRUE(s.at("new").as_object().empty());
  EXPECT_TRUE(s.at("old").as_object().empty());
}

TEST(ConvertRecord, ConvertsByColumnTypeAndPassesUnknownKeys) {
  std::vector<Column> cols = {
      {"id", "int8"}, {"meta", "jsonb"}, {"at", "timestamp"}, {"tags", "_text"}, {"blank", ""}};
  auto rec = jv(
      R"({"id":"7","meta":"{\"k\":[1]}","at":"2024-01-02 03:04:05","tags":"{a,b}","extra":"9","blank":"1"})");
  auto out = convert_record(cols, rec.as_object());
  EXPECT_EQ(
      json::serialize(out),
      R"({"id":7,"meta":{"k":[1]},"at":"2024-01-02T03:04:05","tags":["a","b"],"extra":"9","blank":"1"})");
}

// ---- convert_value: what realtime-js's convertCell returns (generated with node from
// @supabase/realtime-js 2.119.1 dist/main/lib/transformers.js)
// --------------------------------------

struct Case {
  const char* type;
  const char* input;     // JSON
  const char* expected;  // JSON
};

class ConvertValue : public ::testing::TestWithParam<Case> {};

TEST_P(ConvertValue, MatchesRealtimeJs) {
  const auto& c = GetParam();
  auto out = convert_value(c.type, jv(c.input));
  EXPECT_TRUE(core::json_equal(out, jv(c.expected)))
      << c.type << " " << c.input << " → " << json::serialize(out) << ", want " << c.expected;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConvertValue,
    ::testing::Values(
        Case{"int4", R"("42")", "42"}, Case{"int4", R"(" 42")", "42"},
        Case{"int8", R"("-17")", "-17"}, Case{"int2", R"("12abc")", "12"},
        Case{"float8", R"("1.5")", "1.5"}, Case{"float4", R"("-0.25e2")", "-25"},
        Case{"numeric", R"("123.4500")", "123.45"}, Case{"numeric", R"("abc")", R"("abc")"},
        Case{"oid", R"("7")", "7"}, Case{"float8", R"("1e-400")", "0"},
        Case{"float8", R"(".5")", "0.5"}, Case{"float8", R"("5.")", "5"},
        Case{"float8", R"("1e")", "1"}, Case{"float8", R"("+3")", "3"},
        Case{"int4", R"("")", R"("")"}, Case{"int4", "42", "42"}, Case{"int4", "null", "null"},
        Case{"float8", R"("0x10")", "0"}, Case{"float8", "\"\u00a0 7\"", "7"},
        Case{"bool", R"("t")", "true"}, Case{"bool", R"("f")", "false"},
        Case{"bool", R"("true")", R"("true")"}, Case{"bool", "true", "true"},
        Case{"bool", "null", "null"}, Case{"bool", R"("x")", R"("x")"},
        Case{"json", R"("{\"a\":[1,2]}")", R"({"a":[1,2]})"}, Case{"jsonb", R"("\"s\"")", R"("s")"},
        Case{"jsonb", R"("not json")", R"("not json")"}, Case{"jsonb", R"({"a":1})", R"({"a":1})"},
        Case{"jsonb", R"("12")", "12"},
        Case{"timestamp", R"("2024-01-02 03:04:05")", R"("2024-01-02T03:04:05")"},
        Case{"timestamp", R"("2024-01-02 03:04:05 x")", R"("2024-01-02T03:04:05 x")"},
        Case{"timestamptz", R"("2024-01-02 03:04:05+00")", R"("2024-01-02 03:04:05+00")"},
        Case{"_int4", R"("{1,2,3}")", "[1,2,3]"}, Case{"_int4", R"("{}")", "[]"},
        Case{"_text", R"("{a,b}")", R"(["a","b"])"},
        Case{"_text", R"("{\"a b\",c}")", R"(["\"a b\"","c"])"},
        Case{"_text", R"("{\"a\",\"b\"}")", R"(["a","b"])"},
        Case{"_bool", R"("{t,f}")", "[true,false]"},
        Case{"_int4", R"("{NULL,2}")", R"(["NULL",2])"}, Case{"_int4", "[1,2]", "[1,2]"},
        Case{"_jsonb", R"("{\"{\\\"a\\\":1}\"}")", R"([{"a":1}])"},
        Case{"_int4", R"("{1")", R"("{1")"}, Case{"_int4", R"("")", R"("")"},
        Case{"_int4", R"("{{1,2},{3,4}}")", R"(["{1",2,"{3",4])"},
        Case{"_timestamp", R"("{\"2024-01-02 03:04:05\"}")", R"(["2024-01-02T03:04:05"])"},
        Case{"text", R"("hello")", R"("hello")"}, Case{"uuid", R"("x")", R"("x")"},
        Case{"unknown", "5", "5"}));

TEST(ConvertValueNumbers, InfinityAndOverflowAreInfiniteDoubles) {
  // realtime-js yields the JS number Infinity (JSON.stringify writes it as null, as we do).
  for (auto [in, negative] : {std::pair{"Infinity", false}, std::pair{"-Infinity", true},
                              std::pair{"1e400", false}, std::pair{"-1e400", true}}) {
    auto out = convert_value("float8", json::string(in));
    ASSERT_TRUE(out.is_double()) << in;
    EXPECT_TRUE(std::isinf(out.get_double())) << in;
    EXPECT_EQ(std::signbit(out.get_double()), negative) << in;
  }
}

TEST(ConvertValueNumbers, NegativeZeroStaysNegativeZero) {
  auto out = convert_value("float8", json::string("-0"));
  ASSERT_TRUE(out.is_double());
  EXPECT_EQ(out.get_double(), 0.0);
  EXPECT_TRUE(std::signbit(out.get_double()));
}

TEST(ConvertValueNumbers, Int64TextStaysExact) {
  // Deliberate improvement on JavaScript (which rounds to 9007199254740992).
  EXPECT_EQ(convert_value("int8", json::string("9007199254740993")).as_int64(), 9007199254740993);
  EXPECT_EQ(convert_value("int8", json::string("-9223372036854775808")).as_int64(), INT64_MIN);
  // Beyond int64: a double, as in JavaScript.
  auto big = convert_value("numeric", json::string("99999999999999999999"));
  ASSERT_TRUE(big.is_double());
  EXPECT_EQ(big.get_double(), 1e20);
  // Integral doubles are readable as integers.
  EXPECT_EQ(convert_value("float8", json::string("2.0")).as_int64(), 2);
  EXPECT_EQ(convert_value("float8", json::string("1e3")).as_int64(), 1000);
}

}  // namespace
}  // namespace rtsync::protocol
