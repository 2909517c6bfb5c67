// FrameReader (the fast inbound path) against the DOM path it replaces: for every frame it
// accepts, the envelope equals decode_text's and the client shape equals
// to_client_shape(parse_change_event(payload).data) value for value — same kinds, same key order.
// Where it cannot promise that it must decline, and the DOM path still decides.
#include "rtsync/protocol/frame_reader.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "reference_frames.hpp"
#include "rtsync/protocol/change_view.hpp"
#include "rtsync/protocol/postgres_changes.hpp"

namespace rtsync::protocol {
namespace {

using namespace test;  // NOLINT

// Strict equality: same kinds (int64 ≠ uint64 ≠ double), same key order, bitwise doubles.
bool identical(const json::value& a, const json::value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case json::kind::null:
      return true;
    case json::kind::bool_:
      return a.get_bool() == b.get_bool();
    case json::kind::int64:
      return a.get_int64() == b.get_int64();
    case json::kind::uint64:
      return a.get_uint64() == b.get_uint64();
    case json::kind::double_: {
      const double x = a.get_double(), y = b.get_double();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    case json::kind::string:
      return a.get_string() == b.get_string();
    case json::kind::array: {
      const auto& x = a.get_array();
      const auto& y = b.get_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!identical(x[i], y[i])) return false;
      }
      return true;
    }
    case json::kind::object: {
      const auto& x = a.get_object();
      const auto& y = b.get_object();
      if (x.size() != y.size()) return false;
      auto i = x.begin();
      auto j = y.begin();
      for (; i != x.end(); ++i, ++j) {
        if (i->key() != j->key() || !identical(i->value(), j->value())) return false;
      }
      return true;
    }
  }
  return false;
}

// Numbers compare by value when `strict` is off (a view reads doubles correctly rounded where
// the DOM path may be an ulp off: only frames whose client_shape() declines).
bool loosely_same(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.to_number<double>(), y = b.to_number<double>();
    if (std::isnan(y)) return x == 0 || std::isnan(x);  // Boost.JSON 1.81 reads 0e400 as NaN
    return x == y || std::abs(x - y) <= 1e-15 * std::max(std::abs(x), std::abs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto &x = a.get_array(), &y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!loosely_same(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto &x = a.get_object(), &y = b.get_object();
    if (x.size() != y.size()) return false;
    for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j) {
      if (i->key() != j->key() || !loosely_same(i->value(), j->value())) return false;
    }
    return true;
  }
  return a == b;
}

bool same(const json::value& a, const json::value& b, bool strict) {
  return strict ? identical(a, b) : loosely_same(a, b);
}

void check_row(const RowView& row, const json::value& expected, bool strict) {
  const auto& want = expected.as_object();
  // What for_each visits, folded as the client shape folds a repeated key (the last value, at the
  // first key's place), must be the shape's row exactly.
  json::object visited;
  std::size_t visits = 0;
  row.for_each([&](std::string_view column, JsonView value) {
    ++visits;
    visited.insert_or_assign(column, value.to_value());
  });
  EXPECT_EQ(visits, row.size());
  EXPECT_TRUE(same(visited, want, strict))
      << json::serialize(visited) << " vs " << json::serialize(want);
  for (const auto& kv : want) {
    auto cell = row.find(kv.key());
    ASSERT_TRUE(cell) << kv.key();
    EXPECT_TRUE(same(cell->to_value(), kv.value(), strict))
        << kv.key() << ": " << json::serialize(cell->to_value()) << " vs "
        << json::serialize(kv.value());
  }
  EXPECT_FALSE(row.find("no such column"));
  EXPECT_TRUE(same(row.to_object(), want, strict));
}

// The view of the parsed frame and the view of the DOM path's client shape answer alike, and
// both copy out to that shape.
void check_views(const FrameReader& reader, const json::object& expected, bool strict) {
  auto tape = reader.view();
  ASSERT_TRUE(tape) << "view() after a successful change()";
  const ChangeView dom(expected);
  for (const ChangeView* v : {static_cast<const ChangeView*>(&*tape), &dom}) {
    SCOPED_TRACE(v == &dom ? "DOM view" : "frame view");
    EXPECT_EQ(v->schema(), expected.at("schema").as_string());
    EXPECT_EQ(v->table(), expected.at("table").as_string());
    EXPECT_EQ(v->event_type(), expected.at("eventType").as_string());
    const auto& ts = expected.at("commit_timestamp");
    EXPECT_EQ(v->commit_timestamp().has_value(), ts.is_string());
    if (ts.is_string()) {
      EXPECT_EQ(*v->commit_timestamp(), ts.as_string());
    }
    check_row(v->new_record(), expected.at("new"), strict);
    check_row(v->old_record(), expected.at("old"), strict);
    EXPECT_TRUE(same(v->errors().to_value(), expected.at("errors"), strict));
    EXPECT_TRUE(same(v->to_object(), expected, strict))
        << json::serialize(v->to_object()) << "\nDOM: " << json::serialize(expected);
  }
}

enum class Expect { accept, decline, either };

struct Outcome {
  bool head = false;
  bool change = false;
  bool shape = false;
};

// Runs both paths on `text` and checks that whatever the reader accepts is what the DOM path
// gives. Returns how far the reader got.
Outcome compare(Vsn vsn, std::string_view text) {
  Outcome out;
  FrameReader reader;
  auto dom = decode_text(vsn, text);
  auto head = reader.read(vsn, text);
  if (!head) return out;
  out.head = true;
  EXPECT_TRUE(dom.ok()) << "reader accepted what decode_text rejects: " << text;
  if (!dom.ok()) return out;
  const auto& m = dom.value();
  EXPECT_EQ(head->topic, m.topic);
  EXPECT_EQ(head->event, m.event);
  EXPECT_EQ(head->ref.has_value(), m.ref.has_value());
  if (head->ref && m.ref) {
    EXPECT_EQ(*head->ref, *m.ref);
  }
  EXPECT_EQ(head->join_ref.has_value(), m.join_ref.has_value());
  if (head->join_ref && m.join_ref) {
    EXPECT_EQ(*head->join_ref, *m.join_ref);
  }

  auto change = reader.change();
  auto event = parse_change_event(m.payload);
  if (!change) return out;
  out.change = true;
  EXPECT_TRUE(event.ok()) << "reader accepted what parse_change_event rejects: " << text;
  if (!event.ok()) return out;
  EXPECT_EQ(change->ids, event->ids);
  EXPECT_EQ(change->type, event->data.type);

  auto shape = reader.client_shape();
  const json::object expected_shape = to_client_shape(event->data);
  check_views(reader, expected_shape, shape.has_value());
  if (!shape) return out;
  out.shape = true;
  const json::value expected = expected_shape;
  const json::value actual = *shape;
  EXPECT_TRUE(identical(actual, expected))
      << "reader: " << json::serialize(actual) << "\nDOM:    " << json::serialize(expected);
  return out;
}

#if RTSYNC_REQUIRE_SIMDJSON
// The skips below exist for -DRTSYNC_REQUIRE_SIMDJSON=OFF builds only.
TEST(FrameReader, IsAvailableInThisBuild) {
  EXPECT_TRUE(FrameReader::available());
}
#endif

void expect_full(Vsn vsn, std::string_view text) {
  if (!FrameReader::available()) GTEST_SKIP() << "built without simdjson";
  auto o = compare(vsn, text);
  EXPECT_TRUE(o.head && o.change && o.shape) << "declined: " << text;
}

std::string v2_change(std::string_view data, std::string_view ids = "[7]") {
  return std::string(R"([null,null,"realtime:t","postgres_changes",{"ids":)") + std::string(ids) +
         R"(,"data":)" + std::string(data) + "}]";
}
std::string v1_change(std::string_view data, std::string_view ids = "[7]") {
  return std::string(R"({"topic":"realtime:t","event":"postgres_changes","payload":{"ids":)") +
         std::string(ids) + R"(,"data":)" + std::string(data) + R"(},"ref":null})";
}

constexpr std::string_view kColumns =
    R"([{"name":"id","type":"int4"},{"name":"title","type":"text"},{"name":"done","type":"bool"},)"
    R"({"name":"tags","type":"_text"},{"name":"nums","type":"_int4"},{"name":"meta","type":"jsonb"},)"
    R"({"name":"at","type":"timestamp"},{"name":"atz","type":"timestamptz"},)"
    R"({"name":"price","type":"numeric"},{"name":"big","type":"int8"},{"name":"odd","type":""}])";

std::string data_with(std::string_view type, std::string_view record, std::string_view old_record,
                      std::string_view extra = "") {
  std::string d =
      R"({"schema":"public","table":"items","commit_timestamp":"2026-11-27T03:00:01.234Z","type":")";
  d += type;
  d += R"(","columns":)";
  d += kColumns;
  if (!record.empty()) d += std::string(R"(,"record":)") + std::string(record);
  if (!old_record.empty()) d += std::string(R"(,"old_record":)") + std::string(old_record);
  d += extra;
  d += R"(,"errors":null})";
  return d;
}

// ---- the documented frames ----------------------------------------------------------------------

TEST(FrameReader, ReferencePostgresChangesV2) {
  expect_full(Vsn::v2, kV2PostgresChanges);
}

TEST(FrameReader, EveryGoldenFrameHeadMatchesDecode) {
  if (!FrameReader::available()) GTEST_SKIP() << "built without simdjson";
  for (auto frame :
       {kV2Heartbeat,     kV2HeartbeatReply,  kV2JoinDocs,       kV2JoinRealtimeJs,
        kV2JoinReplay,    kV2JoinReply,       kV2JoinErrorReply, kV2UnmatchedTopicReply,
        kV2System,        kV2PostgresChanges, kV2BroadcastIn,    kV2BroadcastOut,
        kV2PresenceTrack, kV2PresenceState,   kV2PresenceDiff,   kV2Leave,
        kV2Close,         kV2Error,           kV2AccessToken,    kV2SerializerTest}) {
    SCOPED_TRACE(frame);
    EXPECT_TRUE(compare(Vsn::v2, frame).head);
  }
  for (auto frame : {kV1Heartbeat, kV1HeartbeatReply, kV1Join, kV1JoinReplyPy,
                     kV1JoinReplyIntegration, kV1SystemTokenExpired, kV1CloseAfterSystem}) {
    SCOPED_TRACE(frame);
    EXPECT_TRUE(compare(Vsn::v1, frame).head);
  }
}

TEST(FrameReader, NonChangePayloadIsNoChange) {
  if (!FrameReader::available()) GTEST_SKIP() << "built without simdjson";
  FrameReader reader;
  ASSERT_TRUE(reader.read(Vsn::v2, kV2BroadcastOut));
  EXPECT_FALSE(reader.change());
  EXPECT_FALSE(reader.client_shape());
}

// ---- record conversion edge cases ---------------------------------------------------------------

TEST(FrameReader, InsertConvertsEveryColumnKind) {
  const auto record =
      R"({"id":"42","title":"caf\u00e9 \ud83d\ude00 \"quoted\"\n","done":"t","tags":"{a,b,\"c d\"}",)"
      R"("nums":"{1,2,3}","meta":"{\"a\":[1,2,{\"b\":null}]}","at":"2026-01-02 03:04:05",)"
      R"("atz":"2026-01-02 03:04:05+00","price":"12.50","big":"9007199254740993","odd":"x",)"
      R"("extra":{"nested":[true,false,null,1.5,-3]}})";
  expect_full(Vsn::v2, v2_change(data_with("INSERT", record, "")));
  expect_full(Vsn::v1, v1_change(data_with("INSERT", record, "")));
}

TEST(FrameReader, TypedValuesPassThrough) {
  const auto record =
      R"({"id":42,"title":null,"done":true,"tags":["a"],"nums":[1,2],"meta":{"k":"v"},)"
      R"("at":null,"price":7.5,"big":18446744073709551615,"odd":0.25})";
  expect_full(Vsn::v2, v2_change(data_with("UPDATE", record, R"({"id":41})")));
}

TEST(FrameReader, UnparseableStringsStayStrings) {
  const auto record =
      R"({"id":"abc","done":"true","nums":"{1,x}","meta":"{not json","price":" 1e3x","big":"-"})";
  expect_full(Vsn::v2, v2_change(data_with("INSERT", record, "")));
}

TEST(FrameReader, DeleteHasOnlyOld) {
  expect_full(Vsn::v2, v2_change(data_with("DELETE", "", R"({"id":"5"})")));
  // A DELETE carrying a record anyway: `new` stays {} as in realtime-js.
  expect_full(Vsn::v2, v2_change(data_with("DELETE", R"({"id":"6"})", R"({"id":"5"})")));
}

TEST(FrameReader, UpdateWithoutOldRecord) {
  expect_full(Vsn::v2, v2_change(data_with("UPDATE", R"({"id":"5","title":"t"})", "")));
}

TEST(FrameReader, NullRecordsAndMissingTimestamp) {
  expect_full(Vsn::v2, v2_change(R"({"schema":"s","table":"t","type":"INSERT","record":null,)"
                                 R"("old_record":null,"commit_timestamp":null})"));
  expect_full(Vsn::v2, v2_change(R"({"schema":"s","table":"t","type":"INSERT"})"));
}

TEST(FrameReader, ErrorRowWithErrorsArray) {
  expect_full(Vsn::v2, v2_change(R"({"schema":"public","table":"tasks","type":"INSERT",)"
                                 R"("errors":["Error 401: Unauthorized","\u00fcber"]})",
                                 "[1,2,9223372036854775807]"));
}

TEST(FrameReader, MalformedColumnEntriesAreSkippedLikeTheDomPath) {
  expect_full(
      Vsn::v2,
      v2_change(R"({"schema":"s","table":"t","type":"INSERT","columns":[{"name":"a"},7,)"
                R"({"name":"b","type":5},{"name":"c","type":"int4","name":"d"},)"
                R"({"name":"c","type":"bool"}],"record":{"a":"1","b":"2","c":"t","d":"4"}})"));
}

TEST(FrameReader, UnknownKeysAndTypesPassThrough) {
  expect_full(Vsn::v2, v2_change(R"({"schema":"s","table":"t","type":"TRUNCATE","x":[1],)"
                                 R"("record":{"a":1},"columns":[]})"));
}

TEST(FrameReader, SafeDoublesAreExact) {
  expect_full(Vsn::v2, v2_change(data_with(
                           "INSERT", R"({"a":7.5,"b":0.1,"c":123.456,"d":-2.5e3,"e":1e-4})", "")));
}

TEST(FrameReader, MinusZeroIntegerIsZero) {
  expect_full(Vsn::v2, v2_change(data_with("INSERT", R"({"x":-0,"id":"-0"})", "")));
}

TEST(FrameReader, ExtraV2ElementsAreIgnored) {
  const auto frame = v2_change(data_with("INSERT", R"({"id":"1"})", ""));
  expect_full(Vsn::v2, frame.substr(0, frame.size() - 1) + R"(,"extra",{}])");
}

TEST(FrameReader, RecordDuplicateKeysKeepTheLastValueInPlace) {
  if (!FrameReader::available()) GTEST_SKIP();
  auto o =
      compare(Vsn::v2, v2_change(data_with("INSERT", R"({"id":"1","title":"a","id":"2"})", "")));
  EXPECT_TRUE(o.shape);
}

// ---- declines: the DOM path decides
// ---------------------------------------------------------------

TEST(FrameReader, DeclinesWhatItCannotReproduce) {
  if (!FrameReader::available()) GTEST_SKIP();
  struct Case {
    std::string frame;
    const char* why;
  };
  const std::vector<Case> cases = {
      {v2_change(data_with("INSERT", R"({"id":"1"})", ""), "[1.0]"), "integral double id"},
      {v2_change(data_with("INSERT", R"({"x":-0.0})", "")), "-0.0"},
      {v2_change(data_with("INSERT", R"({"x":0e400})", "")), "0e400 (NaN in Boost.JSON)"},
      {v2_change(data_with("INSERT", R"({"x":0.0})", "")), "zero double"},
      {v2_change(data_with("INSERT", R"({"x":1e400})", "")), "out of double range"},
      {v2_change(data_with("INSERT", R"({"x":123456789012345678901234567890})", "")), "bigint"},
      {v2_change(data_with("INSERT", R"({"x":1.7976931348623157e308})", "")), "long double"},
      {v2_change(data_with("INSERT", R"({"x":0.1234567890123456})", "")), "16 digits"},
      {v2_change(R"({"schema":"s","schema":"t","table":"t","type":"INSERT"})"), "duplicate key"},
      {v2_change(R"({"schema":"s","table":"t","type":"INSERT","record":[1]})"), "record array"},
      {v2_change(R"({"schema":"s","table":"t"})"), "no type"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.why);
    auto o = compare(Vsn::v2, c.frame);
    EXPECT_FALSE(o.shape);
    EXPECT_TRUE(decode_v2(c.frame).ok());  // the DOM path takes these frames
  }
}

TEST(FrameReader, RejectsBadTextLikeDecode) {
  if (!FrameReader::available()) GTEST_SKIP();
  for (std::string frame :
       {std::string("[null,null,\"t\",\"postgres_changes\",{\"a\":\"\xff\"}]"),
        std::string("[null,null,\"t\",\"e\",{}"), std::string("[null,null,\"t\",\"e\"]"),
        std::string("[1,null,\"t\",\"e\",{}]"), std::string("[null,null,\"t\",\"e\",[]]"),
        std::string("\xef\xbb\xbf[null,null,\"t\",\"e\",{}]"), std::string("")}) {
    SCOPED_TRACE(frame);
    FrameReader reader;
    EXPECT_FALSE(reader.read(Vsn::v2, frame));
    EXPECT_FALSE(decode_v2(frame).ok());
  }
  FrameReader reader;
  EXPECT_FALSE(reader.read(Vsn::v1, R"({"topic":"t","event":"e","payload":{}})"));  // no ref
  EXPECT_FALSE(
      reader.read(Vsn::v1, R"({"topic":"t","topic":"u","event":"e","payload":{},"ref":null})"));
}

// In place (padded), the reader reads only the text: the bytes after it may complete a truncated
// frame, continue a number or a literal, or open a string, and change nothing.
TEST(FrameReader, InPlaceReadsIgnoreWhatFollowsTheText) {
  if (!FrameReader::available()) GTEST_SKIP();
  const std::string change = v2_change(data_with("INSERT", R"({"id":"1","big":"12"})", ""));
  const std::string texts[] = {
      change,
      change.substr(0, change.size() - 1),  // truncated: "]" follows in the padding
      "[null,null,\"t\",\"e\",{\"n\":1",
      "[null,null,\"t\",\"e\",{\"n\":tru",
      "[null,null,\"t\",\"e\",{\"n\":\"open",
      "[null,null,\"t\",\"e\",{\"n\":12}]",
  };
  const std::string followers[] = {std::string(FrameReader::kPadding, ' '),
                                   "]" + std::string(63, ' '), "}]" + std::string(62, '0'),
                                   "e\"}]" + std::string(60, '"'),
                                   std::string(FrameReader::kPadding, '\xff')};
  for (const auto& text : texts) {
    FrameReader copied;
    const auto want = copied.read(Vsn::v2, text);
    const auto want_shape = want && copied.change() ? copied.client_shape() : std::nullopt;
    for (const auto& after : followers) {
      SCOPED_TRACE(text + " | " + after.substr(0, 4));
      ASSERT_GE(after.size(), FrameReader::kPadding);
      const std::string buffer = text + after;
      FrameReader in_place;
      const auto got = in_place.read(Vsn::v2, std::string_view(buffer.data(), text.size()), true);
      ASSERT_EQ(got.has_value(), want.has_value());
      if (!got) continue;
      EXPECT_EQ(got->topic, want->topic);
      EXPECT_EQ(got->event, want->event);
      const auto got_shape = in_place.change() ? in_place.client_shape() : std::nullopt;
      EXPECT_EQ(got_shape, want_shape);
    }
  }
}

TEST(FrameReader, DeepFramesGoToTheDomPath) {
  if (!FrameReader::available()) GTEST_SKIP();
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  const std::string frame = "[null,null,\"t\",\"e\",{\"d\":" + deep + "}]";
  FrameReader reader;
  EXPECT_FALSE(reader.read(Vsn::v2, frame));
  EXPECT_TRUE(decode_v2(frame).ok());  // within the DOM path's 128 levels
}

TEST(FrameReader, ViewsFollowTheLatestRead) {
  if (!FrameReader::available()) GTEST_SKIP();
  FrameReader reader;
  auto first = reader.read(Vsn::v2, v2_change(data_with("INSERT", R"({"id":"1"})", ""), "[3]"));
  ASSERT_TRUE(first);
  auto c1 = reader.change();
  ASSERT_TRUE(c1);
  EXPECT_EQ(c1->ids, std::vector<std::int64_t>{3});
  auto shape1 = reader.client_shape();
  ASSERT_TRUE(shape1);
  ASSERT_TRUE(reader.read(Vsn::v2, v2_change(data_with("DELETE", "", R"({"id":"2"})"), "[4,5]")));
  auto c2 = reader.change();
  ASSERT_TRUE(c2);
  EXPECT_EQ(c2->ids, (std::vector<std::int64_t>{4, 5}));
  EXPECT_EQ(c2->type, "DELETE");
  // The first shape owns its storage: still intact after the reader moved on.
  EXPECT_EQ(shape1->at("new").as_object().at("id").as_int64(), 1);
  // client_shape before change() on a fresh read declines.
  ASSERT_TRUE(reader.read(Vsn::v2, kV2PostgresChanges));
  EXPECT_FALSE(reader.client_shape());
}

}  // namespace
}  // namespace rtsync::protocol

namespace rtsync::protocol {
namespace {

// ---- ChangeView: what a callback reads
// -----------------------------------------------------------

class ChangeViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!FrameReader::available()) GTEST_SKIP() << "built without simdjson";
  }
  ChangeView read(const std::string& frame) {
    text_ = frame;
    EXPECT_TRUE(reader_.read(Vsn::v2, text_));
    EXPECT_TRUE(reader_.change());
    auto v = reader_.view();
    EXPECT_TRUE(v);
    return *v;
  }
  FrameReader reader_;
  std::string text_;
};

TEST_F(ChangeViewTest, NavigatesTheRecordWithoutCopying) {
  const auto change = read(v2_change(data_with(
      "UPDATE",
      R"({"id":42,"title":"caf\u00e9","extra":{"seed":7,"list":[true,null,1.5,"x"],"big":18446744073709551615}})",
      R"({"id":41})")));
  EXPECT_EQ(change.schema(), "public");
  EXPECT_EQ(change.table(), "items");
  EXPECT_EQ(change.event_type(), "UPDATE");
  EXPECT_EQ(change.commit_timestamp(), "2026-11-27T03:00:01.234Z");
  const auto row = change.new_record();
  EXPECT_EQ(row.size(), 3u);
  EXPECT_EQ(row.find("id")->as_int64(), 42);
  EXPECT_EQ(row.find("title")->as_string(), "caf\u00e9");  // unescaped UTF-8
  const auto extra = *row.find("extra");
  EXPECT_EQ(extra.kind(), JsonKind::object);
  EXPECT_EQ(extra.size(), 3u);
  EXPECT_EQ(extra.find("seed")->as_int64(), 7);
  EXPECT_EQ(extra.find("seed")->as_double(), 7.0);
  EXPECT_FALSE(extra.find("seed")->as_string());
  const auto list = *extra.find("list");
  EXPECT_EQ(list.size(), 4u);
  EXPECT_EQ(list.at(0)->as_bool(), true);
  EXPECT_TRUE(list.at(1)->is_null());
  EXPECT_EQ(list.at(2)->as_double(), 1.5);
  EXPECT_FALSE(list.at(2)->as_int64());
  EXPECT_EQ(list.at(3)->as_string(), "x");
  EXPECT_FALSE(list.at(4));
  EXPECT_EQ(extra.find("big")->kind(), JsonKind::uint64);
  EXPECT_FALSE(extra.find("big")->as_int64());  // beyond int64
  EXPECT_FALSE(extra.find("missing"));
  std::vector<std::string> keys;
  extra.for_each_member([&](std::string_view k, JsonView) { keys.emplace_back(k); });
  EXPECT_EQ(keys, (std::vector<std::string>{"seed", "list", "big"}));
  int items = 0;
  list.for_each_item([&](JsonView) { ++items; });
  EXPECT_EQ(items, 4);
  EXPECT_EQ(change.old_record().find("id")->as_int64(), 41);
  EXPECT_TRUE(change.errors().is_null());
}

TEST_F(ChangeViewTest, ConvertsStringsByColumnTypeOnAccess) {
  const auto change = read(v2_change(data_with(
      "INSERT",
      R"({"id":"42","done":"t","meta":"{\"a\":[1,{\"b\":2}]}","at":"2026-01-02 03:04:05",)"
      R"("atz":"2026-01-02 03:04:05+00","nums":"{1,2}","title":"42"})",
      "")));
  const auto row = change.new_record();
  // Several converted cells at once: each stays valid while the frame is current.
  const auto id = *row.find("id");
  const auto done = *row.find("done");
  const auto meta = *row.find("meta");
  const auto at = *row.find("at");
  const auto nums = *row.find("nums");
  EXPECT_EQ(id.as_int64(), 42);
  EXPECT_EQ(done.as_bool(), true);
  EXPECT_EQ(meta.find("a")->at(1)->find("b")->as_int64(), 2);
  EXPECT_EQ(at.as_string(), "2026-01-02T03:04:05");                   // timestamp
  EXPECT_EQ(row.find("atz")->as_string(), "2026-01-02 03:04:05+00");  // timestamptz unchanged
  EXPECT_EQ(nums.at(1)->as_int64(), 2);
  EXPECT_EQ(row.find("title")->as_string(), "42");  // text stays text
  // A cell converted once is the same value when asked again (not converted and stored anew).
  EXPECT_EQ(row.find("at")->as_string()->data(), at.as_string()->data());
  // Iteration converts the same way.
  std::string seen;
  row.for_each([&](std::string_view column, JsonView value) {
    if (column == "id") seen += std::to_string(*value.as_int64());
  });
  EXPECT_EQ(seen, "42");
}

TEST_F(ChangeViewTest, RecordsFollowTheEventType) {
  auto del = read(v2_change(data_with("DELETE", R"({"id":"6"})", R"({"id":"5"})")));
  EXPECT_TRUE(del.new_record().empty());  // realtime-js: `new` is {} for DELETE
  EXPECT_EQ(del.old_record().find("id")->as_int64(), 5);
  auto ins = read(v2_change(data_with("INSERT", R"({"id":"6"})", R"({"id":"5"})")));
  EXPECT_EQ(ins.new_record().find("id")->as_int64(), 6);
  EXPECT_TRUE(ins.old_record().empty());
  auto bare = read(v2_change(R"({"schema":"s","table":"t","type":"INSERT","errors":["e"]})"));
  EXPECT_FALSE(bare.commit_timestamp());
  EXPECT_TRUE(bare.new_record().empty());
  EXPECT_EQ(bare.errors().at(0)->as_string(), "e");
}

TEST_F(ChangeViewTest, NumbersAreCorrectlyRounded) {
  // Where the DOM path may be an ulp off (16+ significant digits), the view reads as JSON.parse.
  const auto change = read(v2_change(
      data_with("INSERT", R"({"x":0.1234567890123456,"y":7.50000000000000000001,"z":0e400})", "")));
  const auto row = change.new_record();
  EXPECT_EQ(row.find("x")->as_double(), 0.1234567890123456);
  EXPECT_EQ(row.find("y")->as_double(), 7.5);
  EXPECT_EQ(row.find("z")->as_double(), 0.0);
  EXPECT_EQ(change.to_object().at("new").at("z").as_double(), 0.0);
}

TEST_F(ChangeViewTest, NoViewWithoutAChange) {
  ASSERT_TRUE(reader_.read(Vsn::v2, kV2BroadcastOut));
  EXPECT_FALSE(reader_.change());
  EXPECT_FALSE(reader_.view());
}

TEST(ChangeViewDom, ReadsAClientShapeObject) {
  const json::object shape = to_client_shape(
      parse_change_event(
          decode_v2(v2_change(data_with("INSERT", R"({"id":"3","meta":{"k":[1]}})", "")))
              .value()
              .payload)
          .value()
          .data);
  const ChangeView change(shape);
  EXPECT_EQ(change.event_type(), "INSERT");
  EXPECT_EQ(change.new_record().find("id")->as_int64(), 3);
  EXPECT_EQ(change.new_record().find("meta")->find("k")->at(0)->as_int64(), 1);
  EXPECT_TRUE(change.old_record().empty());
  EXPECT_EQ(json::value(change.to_object()), json::value(shape));
}

}  // namespace
}  // namespace rtsync::protocol
