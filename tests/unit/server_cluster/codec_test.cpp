// What cluster nodes send each other through Redis (src/server/cluster/codec.cpp): every field
// survives the trip, and bytes that are not such a message are a clear error, never a crash.
#include "rtsync/server/cluster/codec.hpp"

#include <gtest/gtest.h>

namespace rtsync::server::cluster {
namespace {

std::shared_ptr<Relation> notes() {
  auto r = std::make_shared<Relation>();
  r->oid = 16400;
  r->schema = "public";
  r->table = "notes";
  r->replica_identity = 'f';
  r->columns = {{"id", 23, "int4", true}, {"body", 25, "text", false}};
  return r;
}

TEST(ClusterCodec, ATransactionComesBackFieldForFieldAndRelationsAreShared) {
  Transaction t;
  t.xid = 771;
  t.commit_lsn = 0x16B374D848ull;
  t.end_lsn = 0x16B374D900ull;
  t.commit_time = core::WallTime(std::chrono::microseconds(1'765'000'000'123'456));
  t.commit_timestamp = "2025-12-06T05:46:40.123Z";
  t.part = 2;
  t.last = true;
  t.bytes = 4242;
  auto rel = notes();
  t.changes.push_back(RowChange{ChangeKind::insert, rel,
                                json::object{{"id", 1}, {"body", "a\n\"b"}}, std::nullopt});
  t.changes.push_back(RowChange{ChangeKind::update, rel, json::object{{"id", 1}, {"body", "c"}},
                                json::object{{"id", 1}, {"body", "a"}}});
  t.changes.push_back(
      RowChange{ChangeKind::remove, rel, std::nullopt, json::object{{"id", 1}, {"body", "c"}}});
  RelationCache cache;
  auto back = decode_transaction(encode_transaction(t), cache);
  ASSERT_TRUE(back.ok()) << back.error().message;
  const Transaction& b = *back.value();
  EXPECT_EQ(b.xid, t.xid);
  EXPECT_EQ(b.commit_lsn, t.commit_lsn);
  EXPECT_EQ(b.end_lsn, t.end_lsn);
  EXPECT_EQ(b.commit_time, t.commit_time);
  EXPECT_EQ(b.commit_timestamp, t.commit_timestamp);
  EXPECT_EQ(b.part, 2u);
  EXPECT_TRUE(b.last);
  EXPECT_EQ(b.bytes, 4242u);
  ASSERT_EQ(b.changes.size(), 3u);
  EXPECT_EQ(b.changes[0].kind, ChangeKind::insert);
  EXPECT_EQ(*b.changes[0].record, *t.changes[0].record);
  EXPECT_FALSE(b.changes[0].old_record);
  EXPECT_EQ(b.changes[1].kind, ChangeKind::update);
  EXPECT_EQ(*b.changes[1].old_record, *t.changes[1].old_record);
  EXPECT_EQ(b.changes[2].kind, ChangeKind::remove);
  EXPECT_FALSE(b.changes[2].record);
  // One relation object for the three changes, and the same one for the next entry.
  EXPECT_EQ(b.changes[0].relation, b.changes[2].relation);
  EXPECT_EQ(b.changes[0].relation->columns.size(), 2u);
  EXPECT_TRUE(b.changes[0].relation->columns[0].is_key);
  EXPECT_EQ(b.changes[0].relation->replica_identity, 'f');
  auto again = decode_transaction(encode_transaction(t), cache);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value()->changes[0].relation, b.changes[0].relation);
  // A relation that changed (a column added) is a new object.
  auto altered = notes();
  altered->columns.push_back({"due", 1082, "date", false});
  for (auto& c : t.changes)
    c.relation = altered;
  auto after = decode_transaction(encode_transaction(t), cache);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after.value()->changes[0].relation, b.changes[0].relation);
  EXPECT_EQ(after.value()->changes[0].relation->columns.size(), 3u);
}

TEST(ClusterCodec, EntryIdsOrderAsTheSlotDecodes) {
  EXPECT_EQ(to_string(EntryId{97568372808, 3}), "97568372808-3");
  auto id = parse_entry_id("97568372808-3");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id.value(), (EntryId{97568372808, 3}));
  EXPECT_LT((EntryId{5, 9}), (EntryId{6, 0}));
  EXPECT_LT((EntryId{6, 0}), (EntryId{6, 1}));
  for (std::string_view bad : {"", "5", "5-", "-1", "x-1", "5-1-2", "5-99999999999"})
    EXPECT_FALSE(parse_entry_id(bad).ok()) << bad;
}

TEST(ClusterCodec, BroadcastsKeepArbitraryBytesAndTheirSender) {
  realtime::BroadcastMessage m;
  m.topic = "realtime:room";
  m.is_private = true;
  m.id = "m-1";
  protocol::UserBroadcast b;
  b.topic = "realtime:room";
  b.user_event = "frame";
  b.metadata = R"({"k":1})";
  b.encoding = protocol::PayloadEncoding::binary;
  b.payload = std::string("\0\x01\xff:7:\n", 7);
  m.binary = b;
  auto back = decode_broadcast(encode_broadcast("node-a", m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->node, "node-a");
  EXPECT_EQ(back->message.topic, "realtime:room");
  EXPECT_TRUE(back->message.is_private);
  EXPECT_EQ(back->message.id, "m-1");
  ASSERT_TRUE(back->message.binary);
  EXPECT_EQ(back->message.binary->payload, b.payload);
  EXPECT_EQ(back->message.binary->metadata, b.metadata);
  EXPECT_EQ(back->message.binary->encoding, protocol::PayloadEncoding::binary);

  realtime::BroadcastMessage j;
  j.topic = "realtime:lobby";
  j.json_payload = json::object{{"type", "broadcast"}, {"event", "hi"}, {"payload", {{"n", 1}}}};
  auto jb = decode_broadcast(encode_broadcast("node-b", j));
  ASSERT_TRUE(jb.ok());
  EXPECT_FALSE(jb->message.is_private);
  EXPECT_EQ(*jb->message.json_payload, *j.json_payload);
}

TEST(ClusterCodec, PresenceChangesAndSnapshotsRoundTrip) {
  NodePresence p{"n2",
                 true,
                 false,
                 {realtime::PresenceChange{"private|realtime:r", "realtime:r", true, "k", "F1",
                                           R"({"phx_ref":"F1"})"}}};
  auto back = decode_presence(encode_presence(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->node, "n2");
  EXPECT_TRUE(back->snapshot);
  EXPECT_FALSE(back->request);
  ASSERT_EQ(back->changes.size(), 1u);
  EXPECT_EQ(back->changes[0].member_key, "private|realtime:r");
  EXPECT_EQ(back->changes[0].text, R"({"phx_ref":"F1"})");
}

TEST(ClusterCodec, BytesThatAreNoMessageAreAClearError) {
  RelationCache cache;
  for (std::string_view bad :
       {"", "not json", "[]", R"({"x":1})",
        R"({"x":0,"c":1,"e":0,"w":0,"ts":"","p":0,"l":true,"b":0,"r":[],"ch":[{"k":"I","o":5}]})",
        R"({"x":0,"c":1,"e":0,"w":0,"ts":"","p":0,"l":true,"b":0,"r":[],"ch":[{"k":"Z","o":5}]})",
        R"({"x":0,"c":-1,"e":0,"w":0,"ts":"","p":0,"l":true,"b":0,"r":[],"ch":[]})"}) {
    auto r = decode_transaction(bad, cache);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("cluster message"), std::string::npos) << r.error().message;
  }
  for (std::string_view bad : {"", "3:abc", "999:x", "1:n13:realtime:room1:01:x1:q"})
    EXPECT_FALSE(decode_broadcast(bad).ok()) << bad;
  for (std::string_view bad : {"", "{}", R"({"n":"a","c":[[1,2,3]]})"})
    EXPECT_FALSE(decode_presence(bad).ok()) << bad;
}

}  // namespace
}  // namespace rtsync::server::cluster
