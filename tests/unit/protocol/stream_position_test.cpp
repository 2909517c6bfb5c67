// Stream positions and the resume extension's fields (docs/resume.md): LSN text, ordering within
// an epoch, the join and heartbeat replies' `rtsync`, the join request's config.rtsync.resume, and
// the fast reader handing a change's data.position over without changing what it reads.
#include "rtsync/protocol/stream_position.hpp"

#include <gtest/gtest.h>

#include "rtsync/protocol/change_view.hpp"
#include "rtsync/protocol/frame_reader.hpp"
#include "rtsync/protocol/join.hpp"

namespace rtsync::protocol {
namespace {

json::value parse(std::string_view text) {
  return core::parse_json(text).value();
}

TEST(StreamPosition, LsnTextRoundTripsAsPostgresPrintsIt) {
  EXPECT_EQ(parse_lsn("0/16B3748"), 0x16B3748u);
  EXPECT_EQ(parse_lsn("1/0"), 0x100000000u);
  EXPECT_EQ(parse_lsn("ff/ffffffff"), 0xffffffffffu);
  EXPECT_EQ(format_lsn(0x16B3748u), "0/16B3748");
  EXPECT_EQ(format_lsn(0x1000000A0u), "1/A0");
  for (std::string_view bad : {"", "0", "/1", "1/", "0/123456789", "g/1", "0/1/2", " 0/1"}) {
    EXPECT_FALSE(parse_lsn(bad)) << bad;
  }
}

TEST(StreamPosition, OrderedByLsnThenIndexWithinOneEpochOnly) {
  const StreamPosition a{"e", 0x200, 4}, b{"e", 0x200, 5}, c{"e", 0x300, 1}, other{"f", 0x100, 1};
  EXPECT_TRUE(at_or_before(a, a));
  EXPECT_TRUE(at_or_before(a, b));
  EXPECT_TRUE(at_or_before(b, c));
  EXPECT_FALSE(at_or_before(c, b));
  EXPECT_FALSE(at_or_before(other, a));
  EXPECT_FALSE(at_or_before(a, other));
  EXPECT_FALSE(compare_positions(a, other));
}

TEST(StreamPosition, ParsesTheWireObjectAndRejectsWhatItCannotUse) {
  auto p = parse_stream_position(parse(R"({"epoch":"5f0c","lsn":"0/16B3748","index":3})"));
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (StreamPosition{"5f0c", 0x16B3748, 3}));
  EXPECT_EQ(json::serialize(build_stream_position(*p)),
            R"({"epoch":"5f0c","lsn":"0/16B3748","index":3})");
  EXPECT_EQ(parse_stream_position(parse(R"({"lsn":"0/1","index":0})"), "outer")->epoch, "outer");
  for (std::string_view bad :
       {R"({"lsn":"0/1","index":0})", R"({"epoch":"","lsn":"0/1","index":0})",
        R"({"epoch":"e","lsn":"x","index":0})", R"({"epoch":"e","lsn":"0/1","index":-1})",
        R"({"epoch":"e","lsn":"0/1","index":1.5})", R"({"epoch":"e","lsn":"0/1"})", R"([1])",
        R"("0/1")"}) {
    EXPECT_FALSE(parse_stream_position(parse(bad))) << bad;
  }
}

TEST(StreamPosition, JoinReplyRtsyncHeadAndResumeAnswers) {
  EXPECT_FALSE(parse_rtsync_join_reply(parse(R"({"postgres_changes":[]})")));  // Supabase
  auto fresh = parse_rtsync_join_reply(parse(
      R"({"postgres_changes":[],"rtsync":{"epoch":"E","position":{"epoch":"E","lsn":"0/10","index":0}}})"));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->epoch, "E");
  EXPECT_EQ(fresh->head, (StreamPosition{"E", 0x10, 0}));
  EXPECT_FALSE(fresh->resume);
  auto resumed = parse_rtsync_join_reply(parse(
      R"({"rtsync":{"epoch":"E","position":{"epoch":"E","lsn":"0/10","index":0},"resume":{"status":"resumed","replayed":4}}})"));
  ASSERT_TRUE(resumed && resumed->resume);
  EXPECT_TRUE(resumed->resume->resumed);
  EXPECT_EQ(resumed->resume->replayed, 4);
  auto gap = parse_rtsync_join_reply(parse(
      R"({"rtsync":{"epoch":"E","position":{"epoch":"E","lsn":"0/10","index":0},"resume":{"status":"gap","reason":"position older than the server's history","replayed":0}}})"));
  ASSERT_TRUE(gap && gap->resume);
  EXPECT_FALSE(gap->resume->resumed);
  EXPECT_EQ(gap->resume->reason, "position older than the server's history");
  // An answer that cannot be read is a gap, never a resume.
  auto odd = parse_rtsync_join_reply(parse(
      R"({"rtsync":{"epoch":"E","position":{"lsn":"0/10","index":0},"resume":{"status":"resumed","replayed":-1}}})"));
  ASSERT_TRUE(odd && odd->resume);
  EXPECT_FALSE(odd->resume->resumed);
  EXPECT_FALSE(
      parse_rtsync_join_reply(parse(R"({"rtsync":{"position":{"lsn":"0/10","index":0}}})")));
}

TEST(StreamPosition, HeartbeatReplyPosition) {
  EXPECT_FALSE(parse_rtsync_heartbeat(parse("{}")));
  auto p = parse_rtsync_heartbeat(
      parse(R"({"rtsync":{"epoch":"E","position":{"epoch":"E","lsn":"0/20","index":2}}})"));
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (StreamPosition{"E", 0x20, 2}));
}

TEST(StreamPosition, ResumeRequestGoesIntoTheJoinConfig) {
  JoinRequest request;
  auto payload = build_join_payload(request);
  const auto before = json::serialize(payload);
  add_resume_request(payload, StreamPosition{"5f0c2a9e1b7d4c38", 0x16B3748, 3});
  EXPECT_NE(json::serialize(payload).find(
                R"("rtsync":{"resume":{"epoch":"5f0c2a9e1b7d4c38","lsn":"0/16B3748","index":3}})"),
            std::string::npos);
  EXPECT_EQ(find_resume_request(payload), (StreamPosition{"5f0c2a9e1b7d4c38", 0x16B3748, 3}));
  // Everything else of the payload is untouched, and the parser still reads it.
  EXPECT_TRUE(parse_join_payload(payload).ok());
  EXPECT_FALSE(find_resume_request(parse(before)));
}

TEST(StreamPosition, FastReaderHandsOverDataPositionAndReadsTheRestAsBefore) {
  if (!FrameReader::available()) GTEST_SKIP() << "built without simdjson";
  const std::string with =
      R"([null,null,"realtime:t","postgres_changes",{"ids":[1],"data":{"schema":"public","table":"tasks","commit_timestamp":null,"type":"INSERT","columns":[],"record":{"position":7},"errors":null,"position":{"epoch":"E","lsn":"0/16B3748","index":3}}}])";
  FrameReader reader;
  ASSERT_TRUE(reader.read(Vsn::v2, with));
  auto head = reader.change();
  ASSERT_TRUE(head);
  auto p = parse_stream_position(head->position);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (StreamPosition{"E", 0x16B3748, 3}));
  // The client shape is what the DOM path builds (a `position` column is an ordinary column).
  auto shape = reader.client_shape();
  ASSERT_TRUE(shape);
  EXPECT_EQ(
      json::serialize(*shape),
      R"({"schema":"public","table":"tasks","commit_timestamp":null,"eventType":"INSERT","new":{"position":7},"old":{},"errors":null})");
  const std::string without =
      R"([null,null,"realtime:t","postgres_changes",{"ids":[1],"data":{"schema":"public","table":"tasks","type":"INSERT","record":{}}}])";
  ASSERT_TRUE(reader.read(Vsn::v2, without));
  const auto bare = reader.change();
  ASSERT_TRUE(bare);
  EXPECT_TRUE(bare->position.is_null());
}

}  // namespace
}  // namespace rtsync::protocol
