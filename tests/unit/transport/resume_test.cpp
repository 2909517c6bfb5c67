// Resumable change streams on the channel (docs/resume.md), on virtual time with frames written
// as the contract gives them: the position a channel keeps (join head, each change, heartbeat
// replies), duplicates dropped, the resume request on every rejoin that holds a position of the
// server's epoch, the join outcome (fresh / resumed with N / gap), and hosted Supabase (no rtsync
// fields) left exactly as before.
#include <gtest/gtest.h>

#include "fixture.hpp"
#include "rtsync/client/transport/names.hpp"

namespace rtsync::client::testing {
namespace {

constexpr std::string_view kEpoch = "5f0c2a9e1b7d4c38";
constexpr std::string_view kAckBody =
    R"("postgres_changes":[{"id":11,"event":"INSERT","schema":"public","table":"tasks","filter":"project_id=eq.p1"}])";

std::string pos_json(std::string_view lsn, int index, std::string_view epoch = kEpoch) {
  return R"({"epoch":")" + std::string(epoch) + R"(","lsn":")" + std::string(lsn) +
         R"(","index":)" + std::to_string(index) + "}";
}

StreamPosition pos(std::string_view lsn, int index, std::string_view epoch = kEpoch) {
  return StreamPosition{std::string(epoch), *protocol::parse_lsn(lsn), index};
}

// A join reply's response: the ack plus response.rtsync (head, and the resume answer if any).
std::string ack_with_rtsync(std::string_view head, std::string_view resume = {},
                            std::string_view epoch = kEpoch) {
  std::string r = "{" + std::string(kAckBody) + R"(,"rtsync":{"epoch":")" + std::string(epoch) +
                  R"(","position":)" + std::string(head);
  if (!resume.empty()) r += R"(,"resume":)" + std::string(resume);
  return r + "}}";
}
std::string plain_ack() {
  return "{" + std::string(kAckBody) + "}";
}

// A postgres_changes INSERT of task `id` for binding 11, carrying data.position when given.
// `dom_path`: data repeats a key, which the fast reader declines (the DOM path then reads it).
std::string change(std::string_view id, std::string_view position, bool dom_path = false) {
  std::string data =
      R"({"schema":"public","table":"tasks",)" +
      std::string(dom_path ? R"("table":"tasks",)" : "") +
      R"("commit_timestamp":"2025-11-19T00:22:40.877Z","type":"INSERT","columns":[{"name":"id","type":"text"}],"record":{"id":")" +
      std::string(id) + R"("},"errors":null)";
  if (!position.empty()) data += R"(,"position":)" + std::string(position);
  data += "}";
  return SocketFixture::frame("", "", kTopic, "postgres_changes",
                              R"({"ids":[11],"data":)" + data + "}");
}

class ResumeTest : public SocketFixture {
 protected:
  std::shared_ptr<RealtimeChannel> channel(ChannelOptions options = {}) {
    auto ch = socket->channel("task-updates:p1", std::move(options));
    subs.push_back(ch->on_postgres_changes(
        PostgresChangesFilter{"INSERT", "public", "tasks", "project_id=eq.p1"},
        [this](const RealtimeChannel::ChangeView& c) {
          delivered.push_back(std::string(c.new_record().find("id")->as_string().value_or("?")));
          positions.push_back(c.position() ? std::optional(*c.position()) : std::nullopt);
        }));
    subs.push_back(ch->on_join_outcome([this](const JoinOutcome& o) { outcomes.push_back(o); }));
    return ch;
  }
  // Opens, subscribes and answers the join with `response`; returns the join frame sent.
  std::string join(const std::shared_ptr<RealtimeChannel>& ch, const std::string& response) {
    if (socket->state() != ConnectionState::open) open();
    EXPECT_TRUE(ch->subscribe(status.callback()).ok());
    const auto frame = last_sent();
    const auto ref = std::to_string(++refs);
    reply(ref, ref, kTopic, "ok", response);
    return frame;
  }
  // Drops the link, reconnects, and returns the rejoin frame (its ref is the next ref).
  std::string drop_and_reconnect() {
    fake->drop(1006, "network down");
    sched.run_until(rtsync::client::timers::SocketReconnect);
    fake->accept();
    auto frames = sent();
    for (const auto& f : frames) {
      if (f.find("phx_join") != std::string::npos) {
        join_ref = f.substr(2, f.find('"', 2) - 2);
        return f;
      }
    }
    ADD_FAILURE() << "no rejoin frame";
    return {};
  }
  void answer_rejoin(const std::string& response) {
    reply(join_ref, join_ref, kTopic, "ok", response);
  }
  static std::optional<StreamPosition> resume_of(const std::string& join_frame) {
    auto m = protocol::decode_v2(join_frame);
    if (!m.ok()) return std::nullopt;
    return protocol::find_resume_request(m.value().payload);
  }

  StatusLog status;
  std::vector<core::Subscription> subs;
  std::vector<std::string> delivered;
  std::vector<std::optional<StreamPosition>> positions;
  std::vector<JoinOutcome> outcomes;
  int refs = 0;
  std::string join_ref;
};

TEST_F(ResumeTest, FirstJoinStartsAtTheHeadIsFreshAndSendsNoResume) {
  auto ch = channel();
  const auto frame = join(ch, ack_with_rtsync(pos_json("0/16B3748", 0)));
  EXPECT_EQ(frame.find("rtsync"), std::string::npos) << frame;
  ASSERT_TRUE(ch->position());
  EXPECT_EQ(*ch->position(), pos("0/16B3748", 0));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, JoinOutcomeKind::fresh);
  EXPECT_TRUE(outcomes[0].rtsync);
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::subscribed});
  ASSERT_TRUE(ch->last_join_outcome());
  EXPECT_EQ(ch->last_join_outcome()->kind, JoinOutcomeKind::fresh);
}

TEST_F(ResumeTest, ChangesMoveThePositionAndDuplicatesAreNotDelivered) {
  auto ch = channel();
  join(ch, ack_with_rtsync(pos_json("0/100", 0)));
  fake->receive_text(change("a", pos_json("0/200", 1)));
  fake->receive_text(change("b", pos_json("0/200", 2)));
  EXPECT_EQ(delivered, (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(positions[1]);
  EXPECT_EQ(*positions[1], pos("0/200", 2));  // ChangeView::position()
  EXPECT_EQ(*ch->position(), pos("0/200", 2));
  // At or before the position: duplicates, on the fast path and on the DOM path alike.
  fake->receive_text(change("b-again", pos_json("0/200", 2)));
  fake->receive_text(change("a-again", pos_json("0/200", 1), /*dom_path=*/true));
  fake->receive_text(change("old", pos_json("0/100", 0)));
  EXPECT_EQ(delivered.size(), 2u);
  EXPECT_EQ(ch->diagnostics().as_object().at("duplicates_dropped").to_number<int>(), 3);
  // Later ones pass, on either path; the next transaction's first change (higher lsn, index 1).
  fake->receive_text(change("c", pos_json("0/200", 3), /*dom_path=*/true));
  fake->receive_text(change("d", pos_json("1/0", 1)));
  EXPECT_EQ(delivered, (std::vector<std::string>{"a", "b", "c", "d"}));
  ASSERT_TRUE(positions[2]);
  EXPECT_EQ(*positions[2], pos("0/200", 3));
  EXPECT_EQ(*ch->position(), pos("1/0", 1));
}

TEST_F(ResumeTest, RejoinSendsTheLastAppliedPositionAndAResumedReplayIsApplied) {
  auto ch = channel();
  join(ch, ack_with_rtsync(pos_json("0/100", 0)));
  fake->receive_text(change("a", pos_json("0/200", 4)));
  const auto rejoin = drop_and_reconnect();
  const auto sent_pos = resume_of(rejoin);
  ASSERT_TRUE(sent_pos) << rejoin;
  EXPECT_EQ(*sent_pos, pos("0/200", 4));
  EXPECT_NE(
      rejoin.find(R"("rtsync":{"resume":{"epoch":"5f0c2a9e1b7d4c38","lsn":"0/200","index":4}})"),
      std::string::npos)
      << rejoin;
  answer_rejoin(ack_with_rtsync(pos_json("0/500", 0), R"({"status":"resumed","replayed":2})"));
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[1].kind, JoinOutcomeKind::resumed);
  EXPECT_EQ(outcomes[1].replayed, 2);
  ASSERT_TRUE(outcomes[1].from);
  EXPECT_EQ(*outcomes[1].from, pos("0/200", 4));
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::subscribed);
  EXPECT_EQ(ch->replay_remaining(), 2);
  // The replayed changes follow, then the position is at least the head.
  fake->receive_text(change("r1", pos_json("0/300", 1)));
  EXPECT_EQ(*ch->position(), pos("0/300", 1));
  fake->receive_text(change("r2", pos_json("0/400", 2)));
  EXPECT_EQ(ch->replay_remaining(), 0);
  EXPECT_EQ(*ch->position(), pos("0/500", 0));
  EXPECT_EQ(delivered, (std::vector<std::string>{"a", "r1", "r2"}));
  EXPECT_EQ(ch->diagnostics().as_object().at("resumes").to_number<int>(), 1);
  EXPECT_EQ(ch->diagnostics().as_object().at("replayed").to_number<int>(), 2);
}

TEST_F(ResumeTest, ResumedWithNothingToReplayIsAtTheHeadAtOnce) {
  auto ch = channel();
  join(ch, ack_with_rtsync(pos_json("0/100", 0)));
  fake->receive_text(change("a", pos_json("0/200", 1)));
  drop_and_reconnect();
  answer_rejoin(ack_with_rtsync(pos_json("0/300", 0), R"({"status":"resumed","replayed":0})"));
  EXPECT_EQ(outcomes.back().kind, JoinOutcomeKind::resumed);
  EXPECT_EQ(ch->replay_remaining(), 0);
  EXPECT_EQ(*ch->position(), pos("0/300", 0));
}

TEST_F(ResumeTest, GapReplyStartsAtTheHeadWithTheServersReason) {
  auto ch = channel();
  join(ch, ack_with_rtsync(pos_json("0/100", 0)));
  fake->receive_text(change("a", pos_json("0/200", 1)));
  drop_and_reconnect();
  answer_rejoin(ack_with_rtsync(
      pos_json("0/900", 0),
      R"({"status":"gap","reason":"position older than the server's history","replayed":0})"));
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[1].kind, JoinOutcomeKind::gap);
  EXPECT_EQ(outcomes[1].reason, "position older than the server's history");
  EXPECT_EQ(*ch->position(), pos("0/900", 0));
  // A change before the new head is not delivered twice; one after it is.
  fake->receive_text(change("old", pos_json("0/800", 1)));
  fake->receive_text(change("new", pos_json("0/900", 1)));
  EXPECT_EQ(delivered, (std::vector<std::string>{"a", "new"}));
  EXPECT_EQ(ch->diagnostics().as_object().at("gaps").to_number<int>(), 1);
}

TEST_F(ResumeTest, HostedSupabaseJoinsAsBeforeAndEveryRejoinIsAGap) {
  auto ch = channel();
  const auto first = join(ch, plain_ack());
  EXPECT_EQ(first.find("rtsync"), std::string::npos);
  EXPECT_EQ(outcomes.back().kind, JoinOutcomeKind::fresh);
  EXPECT_FALSE(outcomes.back().rtsync);
  EXPECT_FALSE(ch->position());
  fake->receive_text(change("a", ""));
  fake->receive_text(change("a", ""));  // no positions: nothing is a duplicate
  EXPECT_EQ(delivered.size(), 2u);
  const auto rejoin = drop_and_reconnect();
  EXPECT_EQ(rejoin.find("rtsync"), std::string::npos) << rejoin;
  answer_rejoin(plain_ack());
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[1].kind, JoinOutcomeKind::gap);
  EXPECT_EQ(outcomes[1].reason, "the server does not resume (no rtsync in the join reply)");
  EXPECT_EQ(status.statuses().back(), SubscribeStatus::subscribed);
}

TEST_F(ResumeTest, NoResumeIsSentForAPositionOfAnotherEpoch) {
  auto ch = channel();
  join(ch, ack_with_rtsync(pos_json("0/100", 0)));
  fake->receive_text(change("a", pos_json("0/200", 1)));
  // The server's stream is now of another epoch (a new replication slot): a heartbeat says so.
  sched.advance(socket->options().heartbeat_interval);
  const auto hb = last_sent();
  ASSERT_NE(hb.find("heartbeat"), std::string::npos);
  const auto ref = hb.substr(hb.find(",\"") + 2, hb.find("\",\"phoenix") - hb.find(",\"") - 2);
  reply("", ref, "phoenix", "ok",
        R"({"rtsync":{"epoch":"e2","position":)" + pos_json("0/10", 0, "e2") + "}}");
  EXPECT_EQ(*ch->position(), pos("0/200", 1));  // another epoch: not raised
  const auto rejoin = drop_and_reconnect();
  EXPECT_FALSE(resume_of(rejoin)) << rejoin;
  answer_rejoin(ack_with_rtsync(pos_json("0/20", 0, "e2"), {}, "e2"));
  EXPECT_EQ(outcomes.back().kind, JoinOutcomeKind::gap);
  EXPECT_EQ(outcomes.back().reason, "the position is of another epoch");
  EXPECT_EQ(*ch->position(), pos("0/20", 0, "e2"));
}

TEST_F(ResumeTest, HeartbeatRaisesAnIdleChannelButNotOneThatIsReplaying) {
  auto ch = channel();
  join(ch, ack_with_rtsync(pos_json("0/100", 0)));
  auto heartbeat = [&](std::string_view lsn) {
    sched.advance(socket->options().heartbeat_interval);
    const auto hb = last_sent();
    const auto ref = hb.substr(hb.find(",\"") + 2, hb.find("\",\"phoenix") - hb.find(",\"") - 2);
    reply("", ref, "phoenix", "ok",
          std::string(R"({"rtsync":{"epoch":")") + std::string(kEpoch) + R"(","position":)" +
              pos_json(lsn, 0) + "}}");
  };
  heartbeat("0/700");
  EXPECT_EQ(*ch->position(), pos("0/700", 0));
  heartbeat("0/650");  // never lowered
  EXPECT_EQ(*ch->position(), pos("0/700", 0));
  // The raised position is what the next rejoin resumes from.
  const auto rejoin = drop_and_reconnect();
  ASSERT_TRUE(resume_of(rejoin));
  EXPECT_EQ(*resume_of(rejoin), pos("0/700", 0));
  answer_rejoin(ack_with_rtsync(pos_json("0/900", 0), R"({"status":"resumed","replayed":1})"));
  heartbeat("0/950");  // replaying: the replayed change has not arrived yet
  EXPECT_EQ(*ch->position(), pos("0/700", 0));
  fake->receive_text(change("r", pos_json("0/800", 1)));
  EXPECT_EQ(*ch->position(), pos("0/900", 0));
  heartbeat("0/950");
  EXPECT_EQ(*ch->position(), pos("0/950", 0));
}

TEST_F(ResumeTest, AChannelStartedFromAPositionResumesOnItsFirstJoin) {
  ChannelOptions o;
  o.resume_from = pos("0/200", 4);
  auto ch = channel(o);
  EXPECT_EQ(*ch->position(), pos("0/200", 4));
  const auto frame =
      join(ch, ack_with_rtsync(pos_json("0/300", 0), R"({"status":"resumed","replayed":1})"));
  ASSERT_TRUE(resume_of(frame)) << frame;
  EXPECT_EQ(*resume_of(frame), pos("0/200", 4));
  EXPECT_EQ(outcomes.back().kind, JoinOutcomeKind::resumed);
  fake->receive_text(change("r", pos_json("0/250", 1)));
  EXPECT_EQ(*ch->position(), pos("0/300", 0));
  // What the old channel already applied is a duplicate for the new one too.
  fake->receive_text(change("dup", pos_json("0/200", 4)));
  EXPECT_EQ(delivered, (std::vector<std::string>{"r"}));
}

TEST_F(ResumeTest, AChannelStartedFromAPositionAgainstSupabaseReportsAGap) {
  ChannelOptions o;
  o.resume_from = pos("0/200", 4);
  auto ch = channel(o);
  join(ch, plain_ack());
  EXPECT_EQ(outcomes.back().kind, JoinOutcomeKind::gap);
}

TEST_F(ResumeTest, DatabaseBroadcastsCarryTheirPositionAndDuplicatesAreDropped) {
  open();
  auto ch = socket->channel("project:p1", ChannelOptions{false, false, true, "", {}});
  std::vector<BroadcastMeta> metas;
  subs.push_back(
      ch->on_broadcast("*", [&](const json::value& m) { metas.push_back(broadcast_meta(m)); }));
  ASSERT_TRUE(ch->subscribe().ok());
  sent();
  reply("1", "1", "realtime:project:p1", "ok",
        R"({"postgres_changes":[],"rtsync":{"epoch":"5f0c2a9e1b7d4c38","position":)" +
            pos_json("0/100", 0) + "}}");
  auto db_broadcast = [&](std::string_view id, std::string_view meta_extra) {
    fake->receive_text(frame("", "", "realtime:project:p1", "broadcast",
                             R"({"type":"broadcast","event":"UPDATE","payload":{},"meta":{"id":")" +
                                 std::string(id) + "\"" + std::string(meta_extra) + "}}"));
  };
  db_broadcast("m1", R"(,"position":)" + pos_json("0/200", 1));
  db_broadcast("m1", R"(,"position":)" + pos_json("0/200", 1));  // duplicate
  // A broadcast replay's message (meta.replayed) is not part of the stream: never a duplicate.
  db_broadcast("m0", R"(,"replayed":true,"position":)" + pos_json("0/150", 1));
  db_broadcast("plain", "");
  ASSERT_EQ(metas.size(), 3u);
  ASSERT_TRUE(metas[0].position);
  EXPECT_EQ(*metas[0].position, pos("0/200", 1));
  EXPECT_TRUE(metas[1].replayed);
  EXPECT_FALSE(metas[2].position);
  EXPECT_EQ(*ch->position(), pos("0/200", 1));
}

TEST_F(ResumeTest, AnotherTopicsOrAnEarlierJoinsFramesNeitherDeliverNorMoveThePosition) {
  auto ch = channel();
  join(ch, ack_with_rtsync(pos_json("0/100", 0)));
  // Another project's change (a topic this client did not join) with a later position.
  fake->receive_text(SocketFixture::frame(
      "", "", "realtime:task-updates:p2", "postgres_changes",
      R"({"ids":[11],"data":{"schema":"public","table":"tasks","type":"INSERT","record":{"id":"x"},"position":)" +
          pos_json("0/900", 1) + "}}"));
  // A frame of an earlier join of this topic (join_ref "0") with a later position.
  std::string stale = change("y", pos_json("0/900", 2));
  stale.replace(0, 6, R"(["0",)");
  fake->receive_text(stale);
  EXPECT_TRUE(delivered.empty());
  EXPECT_EQ(*ch->position(), pos("0/100", 0));
  // The stream goes on from where it was.
  fake->receive_text(change("z", pos_json("0/200", 1)));
  EXPECT_EQ(delivered, (std::vector<std::string>{"z"}));
}

// The chaos suite's token_expiry, seed 9100: the coordination layer replaces a scope's channel
// (leave, then a new channel of the same topic from the old one's position) while the old
// channel's resume is being answered. The old join's replay frames carry no join_ref, so they reach
// the new channel while its own join is on its way: they cannot be delivered (its bindings have no
// ids yet) and must not move its position — or the new join's replay of the same changes is
// dropped as duplicates and every one of them is lost.
TEST_F(ResumeTest, AReplacedChannelsReplayArrivingWhileTheNewOneJoinsIsNotTakenAsApplied) {
  auto old_ch = channel();
  join(old_ch, ack_with_rtsync(pos_json("0/100", 0)));
  fake->receive_text(change("a", pos_json("0/200", 1)));
  const auto old_rejoin = drop_and_reconnect();
  const auto old_ref = join_ref;
  ASSERT_EQ(*resume_of(old_rejoin), pos("0/200", 1));
  // Replaced before its reply: left, and a new channel starts from its position.
  ChannelOptions o;
  o.resume_from = old_ch->position();
  socket->remove_channel(old_ch);
  auto new_ch = channel(o);
  ASSERT_TRUE(new_ch->subscribe(status.callback()).ok());
  std::string new_ref;
  for (const auto& f : sent()) {
    if (f.find("phx_join") != std::string::npos) new_ref = f.substr(2, f.find('"', 2) - 2);
  }
  ASSERT_FALSE(new_ref.empty());
  // The server answers the old join and replays to it before it reads the leave.
  reply(old_ref, old_ref, kTopic, "ok",
        ack_with_rtsync(pos_json("0/500", 0), R"({"status":"resumed","replayed":2})"));
  fake->receive_text(change("r1", pos_json("0/300", 1)));
  fake->receive_text(change("r2", pos_json("0/400", 1), /*dom_path=*/true));
  EXPECT_EQ(*new_ch->position(), pos("0/200", 1)) << "a frame nobody applied moved the position";
  EXPECT_EQ(delivered, std::vector<std::string>{"a"});
  // The new join resumes from 0/200 and replays the same two changes: both are delivered.
  reply(new_ref, new_ref, kTopic, "ok",
        ack_with_rtsync(pos_json("0/500", 0), R"({"status":"resumed","replayed":2})"));
  fake->receive_text(change("r1", pos_json("0/300", 1)));
  fake->receive_text(change("r2", pos_json("0/400", 1), /*dom_path=*/true));
  EXPECT_EQ(delivered, (std::vector<std::string>{"a", "r1", "r2"}));
  EXPECT_EQ(*new_ch->position(), pos("0/500", 0));
  EXPECT_EQ(new_ch->diagnostics().as_object().at("duplicates_dropped").to_number<int>(), 0);
}

TEST_F(ResumeTest, ALinkCutMidReplayResumesFromTheLastReplayedChangeNotTheHead) {
  auto ch = channel();
  join(ch, ack_with_rtsync(pos_json("0/100", 0)));
  fake->receive_text(change("a", pos_json("0/200", 1)));
  drop_and_reconnect();
  answer_rejoin(ack_with_rtsync(pos_json("0/900", 0), R"({"status":"resumed","replayed":3})"));
  fake->receive_text(change("r1", pos_json("0/300", 1)));
  // Cut after one of three: the head was never reached, so the next rejoin asks from r1.
  const auto rejoin = drop_and_reconnect();
  ASSERT_TRUE(resume_of(rejoin)) << rejoin;
  EXPECT_EQ(*resume_of(rejoin), pos("0/300", 1));
  answer_rejoin(ack_with_rtsync(pos_json("0/900", 0), R"({"status":"resumed","replayed":2})"));
  fake->receive_text(change("r2", pos_json("0/400", 1)));
  fake->receive_text(change("r3", pos_json("0/800", 1)));
  EXPECT_EQ(delivered, (std::vector<std::string>{"a", "r1", "r2", "r3"}));
  EXPECT_EQ(*ch->position(), pos("0/900", 0));
}

TEST_F(ResumeTest, PositionsOnTheVsn1WireAreReadTheSameWay) {
  make(default_options(protocol::Vsn::v1));
  open();
  auto ch = channel();
  ASSERT_TRUE(ch->subscribe().ok());
  sent();
  fake->receive_text(
      R"({"topic":"realtime:task-updates:p1","event":"phx_reply","payload":{"status":"ok","response":)" +
      ack_with_rtsync(pos_json("0/100", 0)) + R"(},"ref":"1"})");
  ASSERT_TRUE(ch->position());
  auto v1_change = [&](std::string_view id, std::string_view position) {
    fake->receive_text(
        R"({"topic":"realtime:task-updates:p1","event":"postgres_changes","payload":{"ids":[11],"data":{"schema":"public","table":"tasks","type":"INSERT","record":{"id":")" +
        std::string(id) + R"("},"position":)" + std::string(position) + R"(}},"ref":null})");
  };
  v1_change("a", pos_json("0/200", 1));
  v1_change("a", pos_json("0/200", 1));
  EXPECT_EQ(delivered, (std::vector<std::string>{"a"}));
  EXPECT_EQ(*ch->position(), pos("0/200", 1));
}

TEST_F(ResumeTest, AnUnreadableRtsyncFieldIsTreatedAsAbsent) {
  auto ch = channel();
  join(ch, "{" + std::string(kAckBody) + R"(,"rtsync":{"epoch":"e","position":{"lsn":"zz"}}})");
  EXPECT_EQ(status.statuses(), std::vector{SubscribeStatus::subscribed});
  EXPECT_FALSE(ch->position());
  EXPECT_FALSE(outcomes.back().rtsync);
}

}  // namespace
}  // namespace rtsync::client::testing
