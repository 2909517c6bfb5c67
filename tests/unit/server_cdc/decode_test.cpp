// Pure tests (no PostgreSQL): LSN text, value conversion, array literals, pgoutput decoding.
#include <gtest/gtest.h>

#include "rtsync/server/cdc/pg_values.hpp"
#include "rtsync/server/cdc/pgoutput.hpp"
#include "rtsync/server/change_feed.hpp"

namespace rtsync::server {
namespace {

using cdc::ValueKind;

json::value J(std::string_view text) {
  return json::parse(text);
}

TEST(Lsn, FormatsAndParses) {
  EXPECT_EQ(format_lsn(0x16B374D848ull), "16/B374D848");
  EXPECT_EQ(format_lsn(0), "0/0");
  auto lsn = parse_lsn("16/B374D848");
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(*lsn, 0x16B374D848ull);
  EXPECT_EQ(*parse_lsn("ffffffff/FFFFFFFF"), ~0ull);
  for (auto bad : {"", "1", "/1", "1/", "x/1", "1/2/3", "100000000/0", "-1/0", "1 /2"}) {
    EXPECT_FALSE(parse_lsn(bad).ok()) << bad;
  }
}

TEST(Values, ScalarsBecomeTypedJson) {
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::integer, "-42"), J("-42"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::integer, "9223372036854775807"),
            json::value(std::int64_t{9223372036854775807}));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::floating, "1.5"), json::value(1.5));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::floating, "NaN"), json::value("NaN"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::floating, "-Infinity"), json::value("-Infinity"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::numeric, "12345678901234"),
            json::value(std::int64_t{12345678901234}));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::numeric, "18446744073709551615"),
            json::value(std::uint64_t{18446744073709551615ull}));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::numeric, "12.50"), json::value(12.5));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::numeric, "NaN"), json::value("NaN"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::boolean, "t"), json::value(true));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::boolean, "f"), json::value(false));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::json, R"({"a":[1,null]})"), J(R"({"a":[1,null]})"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::json, "not json"), json::value("not json"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::bytea, "\\x0102ff"), json::value("0102ff"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::timestamp, "2025-11-03 09:32:55.5"),
            json::value("2025-11-03T09:32:55.5"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::timestamptz, "2025-11-03 09:32:55+00"),
            json::value("2025-11-03T09:32:55+00:00"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::timestamptz, "2025-11-03 09:32:55.123456+05:30"),
            json::value("2025-11-03T09:32:55.123456+05:30"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::timestamptz, "infinity"), json::value("infinity"));
  EXPECT_EQ(cdc::scalar_to_json(ValueKind::text, "héllo"), json::value("héllo"));
}

TEST(Values, ArrayLiterals) {
  EXPECT_EQ(*cdc::parse_array_literal("{1,2,NULL}", ValueKind::integer), J("[1,2,null]"));
  EXPECT_EQ(*cdc::parse_array_literal("{}", ValueKind::integer), J("[]"));
  EXPECT_EQ(*cdc::parse_array_literal(R"({"a \"q\"",NULL,"NULL",b,"x,y","back\\slash"})",
                                      ValueKind::text),
            J(R"(["a \"q\"",null,"NULL","b","x,y","back\\slash"])"));
  EXPECT_EQ(*cdc::parse_array_literal("{{1,2},{3,4}}", ValueKind::integer), J("[[1,2],[3,4]]"));
  EXPECT_EQ(*cdc::parse_array_literal("[0:1]={7,8}", ValueKind::integer), J("[7,8]"));
  EXPECT_EQ(*cdc::parse_array_literal(R"({"{\"a\": 1}",null})", ValueKind::json),
            J(R"([{"a":1},null])"));
  EXPECT_EQ(*cdc::parse_array_literal("{t,f}", ValueKind::boolean), J("[true,false]"));
  for (auto bad : {"", "{1,2", "1,2}", "{\"open}", "{1,,2}", "{1}x"}) {
    EXPECT_FALSE(cdc::parse_array_literal(bad, ValueKind::integer).ok()) << bad;
  }
}

TEST(Values, RegistryKnowsBuiltinsDomainsAndArrays) {
  cdc::TypeRegistry types;
  EXPECT_EQ(types.name_of(23), "int4");
  EXPECT_EQ(types.name_of(1009), "_text");
  EXPECT_EQ(cdc::text_to_json(types, 1007, "{1,2}"), J("[1,2]"));
  types.add_catalog_row(50000, "positive_int", 'N', 0, 23);
  EXPECT_EQ(cdc::text_to_json(types, 50000, "7"), json::value(7));
  types.add_catalog_row(50001, "_positive_int", 'A', 50000, 0);
  EXPECT_EQ(cdc::text_to_json(types, 50001, "{7,8}"), J("[7,8]"));
  types.add_type_message(50002, "_mood");
  EXPECT_EQ(cdc::text_to_json(types, 50002, "{happy,sad}"), J(R"(["happy","sad"])"));
  EXPECT_EQ(cdc::text_to_json(types, 99999, "whatever"), json::value("whatever"));
}

TEST(Values, KeysGoBackToText) {
  EXPECT_EQ(cdc::json_to_text(ValueKind::text, json::value("abc")), "abc");
  EXPECT_EQ(cdc::json_to_text(ValueKind::bytea, json::value("01ff")), "\\x01ff");
  EXPECT_EQ(cdc::json_to_text(ValueKind::text, json::value(-5)), "-5");
  EXPECT_EQ(cdc::json_to_text(ValueKind::text, json::value(2.5)), "2.5");
  EXPECT_EQ(cdc::json_to_text(ValueKind::text, json::value(true)), "true");
  EXPECT_FALSE(cdc::json_to_text(ValueKind::text, json::value(nullptr)));
  EXPECT_FALSE(cdc::json_to_text(ValueKind::text, J("[1]")));
}

// Builds pgoutput messages byte by byte (big-endian, NUL-terminated strings).
class Msg {
 public:
  explicit Msg(char type) { s_.push_back(type); }
  Msg& u8(std::uint8_t v) {
    s_.push_back(static_cast<char>(v));
    return *this;
  }
  Msg& u16(std::uint16_t v) { return u8(v >> 8).u8(v & 0xff); }
  Msg& u32(std::uint32_t v) { return u16(v >> 16).u16(v & 0xffff); }
  Msg& u64(std::uint64_t v) { return u32(static_cast<std::uint32_t>(v >> 32)).u32(v & 0xffffffff); }
  Msg& str(std::string_view v) {
    s_.append(v);
    s_.push_back('\0');
    return *this;
  }
  Msg& text(std::string_view v) {
    u8('t').u32(static_cast<std::uint32_t>(v.size()));
    s_.append(v);
    return *this;
  }
  Msg& null() { return u8('n'); }
  Msg& unchanged() { return u8('u'); }
  std::string_view view() const { return s_; }

 private:
  std::string s_;
};

constexpr std::uint32_t kRel = 16400;

std::string relation_msg(char identity) {
  Msg m('R');
  m.u32(kRel).str("public").str("items").u8(static_cast<std::uint8_t>(identity)).u16(4);
  m.u8(1).str("id").u32(23).u32(0xffffffff);
  m.u8(0).str("name").u32(25).u32(0xffffffff);
  m.u8(0).str("body").u32(25).u32(0xffffffff);
  m.u8(0).str("tags").u32(1009).u32(0xffffffff);
  return std::string(m.view());
}

class DecoderTest : public ::testing::Test {
 protected:
  cdc::TypeRegistry types;
  cdc::PgOutputDecoder decoder{types};

  std::shared_ptr<Transaction> feed_ok(std::string_view msg) {
    auto r = decoder.feed(msg);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : nullptr;
  }
  void begin(std::uint32_t xid = 777) {
    EXPECT_EQ(feed_ok(Msg('B').u64(0x1000).u64(0).u32(xid).view()), nullptr);
  }
  std::shared_ptr<Transaction> commit(std::uint64_t commit_lsn, std::uint64_t end_lsn,
                                      std::int64_t ts) {
    return feed_ok(
        Msg('C').u8(0).u64(commit_lsn).u64(end_lsn).u64(static_cast<std::uint64_t>(ts)).view());
  }
};

TEST_F(DecoderTest, RelationInsertUpdateDeleteCommit) {
  EXPECT_EQ(feed_ok(relation_msg('d')), nullptr);
  auto rel = decoder.relation(kRel);
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->schema, "public");
  EXPECT_EQ(rel->table, "items");
  EXPECT_EQ(rel->replica_identity, 'd');
  EXPECT_EQ(rel->key_columns(), std::vector<std::string>{"id"});
  ASSERT_EQ(rel->wire_columns().size(), 4u);
  EXPECT_EQ(rel->wire_columns()[3], (protocol::Column{"tags", "_text"}));

  begin();
  EXPECT_TRUE(decoder.in_transaction());
  feed_ok(
      Msg('I').u32(kRel).u8('N').u16(4).text("1").text("a").text("long").text("{x,NULL}").view());
  // Update without old tuple; the TOASTed body is unchanged and unknown: left out.
  feed_ok(Msg('U').u32(kRel).u8('N').u16(4).text("1").text("b").unchanged().null().view());
  // Key change: old key tuple carries nulls for non-key columns.
  feed_ok(Msg('U')
              .u32(kRel)
              .u8('K')
              .u16(4)
              .text("1")
              .null()
              .null()
              .null()
              .u8('N')
              .u16(4)
              .text("2")
              .text("b")
              .text("new")
              .null()
              .view());
  feed_ok(Msg('D').u32(kRel).u8('K').u16(4).text("2").null().null().null().view());
  // 2025-11-19T00:22:40.877Z in µs since 2000-01-01.
  const std::int64_t ts = (1763511760877LL - 946684800000LL) * 1000 + 123;
  auto txn = commit(0x1000, 0x1030, ts);
  ASSERT_TRUE(txn);
  EXPECT_FALSE(decoder.in_transaction());
  EXPECT_EQ(txn->xid, 777u);
  EXPECT_EQ(txn->commit_lsn, 0x1000u);
  EXPECT_EQ(txn->end_lsn, 0x1030u);
  EXPECT_EQ(txn->commit_timestamp, "2025-11-19T00:22:40.877Z");
  ASSERT_EQ(txn->changes.size(), 4u);

  const auto& ins = txn->changes[0];
  EXPECT_EQ(ins.kind, ChangeKind::insert);
  EXPECT_EQ(json::value(*ins.record), J(R"({"id":1,"name":"a","body":"long","tags":["x",null]})"));
  EXPECT_FALSE(ins.old_record);

  const auto& up1 = txn->changes[1];
  EXPECT_EQ(json::value(*up1.record), J(R"({"id":1,"name":"b","tags":null})"));
  ASSERT_TRUE(up1.old_record);  // identity default: key columns of the row
  EXPECT_EQ(json::value(*up1.old_record), J(R"({"id":1})"));

  const auto& up2 = txn->changes[2];
  EXPECT_EQ(json::value(*up2.old_record), J(R"({"id":1})"));
  EXPECT_EQ(json::value(*up2.record), J(R"({"id":2,"name":"b","body":"new","tags":null})"));

  const auto& del = txn->changes[3];
  EXPECT_EQ(del.kind, ChangeKind::remove);
  EXPECT_FALSE(del.record);
  EXPECT_EQ(json::value(*del.old_record), J(R"({"id":2})"));
  EXPECT_EQ(decoder.changes_decoded(), 4u);
}

// A large transaction comes out in parts of bounded size; relation messages (which PostgreSQL
// sends again at other points after a reconnect) do not move the boundaries.
TEST_F(DecoderTest, LargeTransactionsComeOutInPartsSplitTheSameWayEachTime) {
  cdc::PgOutputDecoder parts{types, cdc::DecoderLimits{2, static_cast<std::size_t>(-1)}};
  auto feed = [&](std::string_view m) {
    auto r = parts.feed(m);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : nullptr;
  };
  auto insert = [](int id) {
    return std::string(Msg('I')
                           .u32(kRel)
                           .u8('N')
                           .u16(4)
                           .text(std::to_string(id))
                           .text("n")
                           .text("b")
                           .null()
                           .view());
  };
  const std::int64_t ts = (1763511760877LL - 946684800000LL) * 1000;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    if (round == 0) {
      EXPECT_EQ(feed(relation_msg('d')), nullptr);
    }
    EXPECT_EQ(feed(Msg('B').u64(0x2000).u64(static_cast<std::uint64_t>(ts)).u32(9).view()),
              nullptr);
    std::vector<std::shared_ptr<Transaction>> out;
    for (int id = 1; id <= 5; ++id) {
      if (round == 1 && id == 3) {
        EXPECT_EQ(feed(relation_msg('d')), nullptr);
      }
      if (auto p = feed(insert(id))) out.push_back(p);
    }
    EXPECT_TRUE(parts.in_transaction());  // between parts the transaction stays open
    out.push_back(
        feed(Msg('C').u8(0).u64(0x2000).u64(0x2040).u64(static_cast<std::uint64_t>(ts)).view()));
    ASSERT_EQ(out.size(), 3u);
    int id = 1;
    for (std::size_t i = 0; i < out.size(); ++i) {
      ASSERT_TRUE(out[i]);
      EXPECT_EQ(out[i]->part, i);
      EXPECT_EQ(out[i]->last, i == 2);
      EXPECT_EQ(out[i]->xid, 9u);
      EXPECT_EQ(out[i]->commit_lsn, 0x2000u);
      EXPECT_EQ(out[i]->end_lsn, i == 2 ? 0x2040u : 0u);  // only the last part confirms
      EXPECT_EQ(out[i]->commit_timestamp, "2025-11-19T00:22:40.877Z");
      EXPECT_GT(out[i]->bytes, 0u);
      for (const auto& ch : out[i]->changes)
        EXPECT_EQ(ch.record->at("id"), json::value(id++));
    }
    EXPECT_EQ(id, 6);
  }
  // A byte limit ends parts too; a transaction that ends on a boundary has an empty last part.
  cdc::PgOutputDecoder by_bytes{types, cdc::DecoderLimits{1000, 1}};
  EXPECT_EQ(by_bytes.feed(relation_msg('d')).value(), nullptr);
  EXPECT_EQ(by_bytes.feed(Msg('B').u64(0x3000).u64(0).u32(10).view()).value(), nullptr);
  auto first = by_bytes.feed(insert(1));
  ASSERT_TRUE(first.ok() && first.value());
  EXPECT_EQ(first.value()->changes.size(), 1u);
  EXPECT_FALSE(first.value()->last);
  auto last = by_bytes.feed(Msg('C').u8(0).u64(0x3000).u64(0x3020).u64(0).view());
  ASSERT_TRUE(last.ok() && last.value());
  EXPECT_TRUE(last.value()->changes.empty());
  EXPECT_TRUE(last.value()->last);
  EXPECT_EQ(last.value()->part, 1u);
}

TEST_F(DecoderTest, FullIdentityFillsUnchangedToastFromOldTuple) {
  feed_ok(relation_msg('f'));
  begin();
  feed_ok(Msg('U')
              .u32(kRel)
              .u8('O')
              .u16(4)
              .text("1")
              .text("a")
              .text("big")
              .null()
              .u8('N')
              .u16(4)
              .text("1")
              .text("b")
              .unchanged()
              .null()
              .view());
  auto txn = commit(0x2000, 0x2010, 0);
  ASSERT_TRUE(txn);
  const auto& up = txn->changes[0];
  EXPECT_EQ(json::value(*up.old_record), J(R"({"id":1,"name":"a","body":"big","tags":null})"));
  EXPECT_EQ(json::value(*up.record), J(R"({"id":1,"name":"b","body":"big","tags":null})"));
}

TEST_F(DecoderTest, BadInputIsAProtocolError) {
  EXPECT_EQ(decoder.feed("").error().code, Errc::protocol);
  EXPECT_EQ(decoder.feed("Z").error().code, Errc::protocol);
  EXPECT_EQ(decoder.feed(Msg('C').u8(0).u64(1).u64(2).u64(3).view()).error().code, Errc::protocol);
  begin();
  // Change for a relation never described.
  EXPECT_EQ(decoder.feed(Msg('I').u32(999).u8('N').u16(0).view()).error().code, Errc::protocol);
  feed_ok(relation_msg('d'));
  // Truncated tuple.
  EXPECT_EQ(decoder.feed(Msg('I').u32(kRel).u8('N').u16(4).text("1").view()).error().code,
            Errc::protocol);
  // Truncated relation.
  EXPECT_EQ(decoder.feed(Msg('R').u32(1).str("public").view()).error().code, Errc::protocol);
  decoder.reset();
  EXPECT_FALSE(decoder.in_transaction());
}

TEST_F(DecoderTest, TypeMessagesNameCustomTypesAndTruncateIsIgnored) {
  feed_ok(Msg('Y').u32(60000).str("public").str("mood").view());
  Msg rel('R');
  rel.u32(kRel).str("public").str("moods").u8('d').u16(1).u8(1).str("m").u32(60000).u32(0xffffffff);
  feed_ok(rel.view());
  EXPECT_EQ(decoder.relation(kRel)->columns[0].type_name, "mood");
  begin();
  feed_ok(Msg('T').u32(1).u8(0).u32(kRel).view());
  feed_ok(Msg('O').u64(5).str("origin").view());
  auto txn = commit(0x3000, 0x3010, 0);
  ASSERT_TRUE(txn);
  EXPECT_TRUE(txn->changes.empty());
  EXPECT_EQ(decoder.truncates_ignored(), 1u);
}

TEST(PgTime, EpochIs2000) {
  EXPECT_EQ(core::format_iso8601(cdc::pg_time_to_wall(0)), "2000-01-01T00:00:00.000Z");
  const auto t = cdc::pg_time_to_wall(1'500'000);
  EXPECT_EQ(cdc::wall_to_pg_time(t), 1'500'000);
}

}  // namespace
}  // namespace rtsync::server
