// RealtimeChannel presence on virtual time: track/untrack frames, the presence_state /
// presence_diff merge on exact frames (v1 and v2), diffs held until the state, several metas per
// key, and a rejoin re-syncing without re-tracking.
#include <gtest/gtest.h>

#include "rtsync/client/transport/names.hpp"

#include "fixture.hpp"

namespace rtsync::client::testing {
namespace {

constexpr std::string_view kRoom = "realtime:room";

class PresenceFixture : public SocketFixture {
 protected:
  // Channel "room" with presence listeners, subscribed with join ref "1" and joined.
  std::shared_ptr<RealtimeChannel> joined(ChannelOptions options = {}) {
    open();
    auto ch = socket->channel("room", options);
    listen(*ch);
    EXPECT_TRUE(ch->subscribe(status.callback()).ok());
    join_frame = last_sent();
    reply("1", "1", kRoom, "ok", R"({"postgres_changes":[]})");
    return ch;
  }
  void listen(RealtimeChannel& ch) {
    subs.push_back(ch.on_presence_sync([this] { log.push_back("sync"); }));
    subs.push_back(ch.on_presence_join([this](const PresenceJoin& j) {
      log.push_back("join " + j.key + " cur=" + refs(j.current_presences) +
                    " new=" + refs(j.new_presences));
    }));
    subs.push_back(ch.on_presence_leave([this](const PresenceLeave& l) {
      log.push_back("leave " + l.key + " cur=" + refs(l.current_presences) +
                    " left=" + refs(l.left_presences));
    }));
  }
  static std::string refs(const std::vector<Presence>& ps) {
    std::string out;
    for (const auto& p : ps) {
      if (!out.empty()) out += ",";
      out += std::string(p.at("presence_ref").as_string());
    }
    return "[" + out + "]";
  }
  static std::string state_text(const RealtimeChannel& ch) {
    json::object o;
    for (const auto& [key, ps] : ch.presence_state()) {
      json::array a;
      for (const auto& p : ps)
        a.push_back(p);
      o[key] = std::move(a);
    }
    return json::serialize(o);
  }
  void state(std::string_view join_ref, std::string_view payload) {
    fake->receive_text(frame(join_ref, "", kRoom, "presence_state", payload));
  }
  void diff(std::string_view joins, std::string_view leaves) {
    fake->receive_text(frame("", "", kRoom, "presence_diff",
                             std::string(R"({"joins":)") + std::string(joins) + R"(,"leaves":)" +
                                 std::string(leaves) + "}"));
  }
  std::vector<std::string> take_log() { return std::exchange(log, {}); }

  StatusLog status;
  std::vector<core::Subscription> subs;
  std::vector<std::string> log;
  std::string join_frame;
};

TEST_F(PresenceFixture, ListenersEnablePresenceInTheJoinAndTrackFramesAreExact) {
  auto ch = joined(ChannelOptions{false, false, false, "alice", {}});
  EXPECT_EQ(
      join_frame,
      R"(["1","1","realtime:room","phx_join",{"config":{"broadcast":{"ack":false,"self":false},"presence":{"key":"alice","enabled":true},"postgres_changes":[],"private":false}}])");
  std::vector<PushStatus> results;
  ch->track(json::object{{"name", "Alice"}},
            [&](const PushResult& r) { results.push_back(r.status); });
  EXPECT_EQ(
      last_sent(),
      R"(["1","2","realtime:room","presence",{"type":"presence","event":"track","payload":{"name":"Alice"}}])");
  EXPECT_TRUE(results.empty());  // presence pushes wait for the server's reply
  reply("1", "2", kRoom);
  EXPECT_EQ(results, std::vector{PushStatus::ok});
  ch->untrack([&](const PushResult& r) { results.push_back(r.status); });
  EXPECT_EQ(last_sent(),
            R"(["1","3","realtime:room","presence",{"type":"presence","event":"untrack"}])");
  reply("1", "3", kRoom, "error", "{}");
  EXPECT_EQ(results, (std::vector{PushStatus::ok, PushStatus::error}));
}

TEST_F(PresenceFixture, WithoutListenersOrOptionPresenceIsNotRequested) {
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe().ok());
  EXPECT_NE(last_sent().find(R"("presence":{"key":"","enabled":false})"), std::string::npos);
  auto ch2 = socket->channel("other", ChannelOptions{false, false, false, "", {}, true});
  ASSERT_TRUE(ch2->subscribe().ok());
  EXPECT_NE(last_sent().find(R"("presence":{"key":"","enabled":true})"), std::string::npos);
}

TEST_F(PresenceFixture, TrackWhileJoiningGoesOutAfterTheJoin) {
  open();
  auto ch = socket->channel("room");
  ASSERT_TRUE(ch->subscribe().ok());
  sent();
  ch->track(json::object{{"n", 1}});
  EXPECT_TRUE(sent().empty());
  reply("1", "1", kRoom, "ok", R"({"postgres_changes":[]})");
  EXPECT_EQ(
      last_sent(),
      R"(["1","2","realtime:room","presence",{"type":"presence","event":"track","payload":{"n":1}}])");
}

TEST_F(PresenceFixture, StateThenDiffsMergeAsRealtimeJs) {
  auto ch = joined();
  state("1", R"({"alice":{"metas":[{"phx_ref":"a1","name":"A"}]}})");
  EXPECT_EQ(take_log(), (std::vector<std::string>{"join alice cur=[] new=[a1]", "sync"}));
  EXPECT_EQ(state_text(*ch), R"({"alice":[{"presence_ref":"a1","name":"A"}]})");

  // A second socket of alice, and bob.
  diff(R"({"alice":{"metas":[{"phx_ref":"a2","name":"A'"}]},"bob":{"metas":[{"phx_ref":"b1"}]}})",
       "{}");
  EXPECT_EQ(take_log(), (std::vector<std::string>{"join alice cur=[a1] new=[a2]",
                                                  "join bob cur=[] new=[b1]", "sync"}));
  EXPECT_EQ(
      state_text(*ch),
      R"({"alice":[{"presence_ref":"a1","name":"A"},{"presence_ref":"a2","name":"A'"}],"bob":[{"presence_ref":"b1"}]})");

  // One of alice's sockets leaves; bob replaces his meta (phx_ref_prev is not exposed).
  diff(R"({"bob":{"metas":[{"phx_ref":"b2","phx_ref_prev":"b1","away":true}]}})",
       R"({"alice":{"metas":[{"phx_ref":"a1","name":"A"}]},"bob":{"metas":[{"phx_ref":"b1"}]}})");
  EXPECT_EQ(take_log(), (std::vector<std::string>{"join bob cur=[b1] new=[b2]",
                                                  "leave alice cur=[a2] left=[a1]",
                                                  "leave bob cur=[b2] left=[b1]", "sync"}));
  EXPECT_EQ(
      state_text(*ch),
      R"({"alice":[{"presence_ref":"a2","name":"A'"}],"bob":[{"presence_ref":"b2","away":true}]})");

  // The last meta of a key leaves: the key goes.
  diff("{}", R"({"alice":{"metas":[{"phx_ref":"a2"}]}})");
  EXPECT_EQ(take_log(), (std::vector<std::string>{"leave alice cur=[] left=[a2]", "sync"}));
  EXPECT_EQ(state_text(*ch), R"({"bob":[{"presence_ref":"b2","away":true}]})");
}

TEST_F(PresenceFixture, DiffsBeforeTheStateAreHeldAndAppliedAfterIt) {
  auto ch = joined();
  diff(R"({"carol":{"metas":[{"phx_ref":"c1"}]}})", "{}");
  diff("{}", R"({"alice":{"metas":[{"phx_ref":"a1"}]}})");
  EXPECT_TRUE(take_log().empty());
  EXPECT_TRUE(ch->presence_state().empty());
  EXPECT_EQ(ch->diagnostics().at("presence_held_diffs").as_uint64(), 2u);
  state("1", R"({"alice":{"metas":[{"phx_ref":"a1"}]},"bob":{"metas":[{"phx_ref":"b1"}]}})");
  EXPECT_EQ(take_log(), (std::vector<std::string>{
                            "join alice cur=[] new=[a1]", "join bob cur=[] new=[b1]",
                            "join carol cur=[] new=[c1]", "leave alice cur=[] left=[a1]", "sync"}));
  EXPECT_EQ(state_text(*ch), R"({"bob":[{"presence_ref":"b1"}],"carol":[{"presence_ref":"c1"}]})");
  EXPECT_EQ(ch->diagnostics().at("presence_held_diffs").as_uint64(), 0u);
}

TEST_F(PresenceFixture, RejoinHoldsDiffsUntilItsStateAndReSyncsWithoutReTracking) {
  auto ch = joined();
  ch->track(json::object{{"me", true}});
  reply("1", "2", kRoom);
  state("1", R"({"alice":{"metas":[{"phx_ref":"a1"}]},"me":{"metas":[{"phx_ref":"m1"}]}})");
  take_log();
  sent();
  // The server errors the channel; it rejoins with join ref "3".
  fake->receive_text(frame("1", "1", kRoom, "phx_error", "{}"));
  sched.run_until(timers::ChannelRejoin);
  auto frames = sent();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"(["3","3","realtime:room","phx_join")"), std::string::npos);
  reply("3", "3", kRoom, "ok", R"({"postgres_changes":[]})");
  // Nothing is re-tracked (realtime-js does not either).
  EXPECT_TRUE(sent().empty());
  // A diff before the new join's state is held; the old state stays visible meanwhile.
  diff(R"({"dave":{"metas":[{"phx_ref":"d1"}]}})", "{}");
  EXPECT_TRUE(take_log().empty());
  EXPECT_EQ(ch->presence_state().size(), 2u);
  // The new state no longer holds our old meta (the server dropped it with the old join) nor
  // alice's; bob arrived meanwhile.
  state("3", R"({"bob":{"metas":[{"phx_ref":"b1"}]}})");
  EXPECT_EQ(take_log(), (std::vector<std::string>{
                            "join bob cur=[] new=[b1]", "leave alice cur=[] left=[a1]",
                            "leave me cur=[] left=[m1]", "join dave cur=[] new=[d1]", "sync"}));
  EXPECT_EQ(state_text(*ch), R"({"bob":[{"presence_ref":"b1"}],"dave":[{"presence_ref":"d1"}]})");
  // A presence_state of the earlier join (join_ref "1") is stale and dropped.
  state("1", R"({})");
  EXPECT_TRUE(take_log().empty());
  EXPECT_EQ(ch->presence_state().size(), 2u);
}

TEST_F(PresenceFixture, V1FramesCarryTheSameState) {
  make(default_options(protocol::Vsn::v1));
  open();
  auto ch = socket->channel("room");
  listen(*ch);
  ASSERT_TRUE(ch->subscribe().ok());
  fake->receive_text(
      R"({"topic":"realtime:room","event":"phx_reply","payload":{"status":"ok","response":{"postgres_changes":[]}},"ref":"1"})");
  fake->receive_text(
      R"({"topic":"realtime:room","event":"presence_diff","payload":{"joins":{"b":{"metas":[{"phx_ref":"b1"}]}},"leaves":{}},"ref":null})");
  fake->receive_text(
      R"({"topic":"realtime:room","event":"presence_state","payload":{"a":{"metas":[{"phx_ref":"a1","x":1}]}},"ref":null})");
  EXPECT_EQ(state_text(*ch), R"({"a":[{"presence_ref":"a1","x":1}],"b":[{"presence_ref":"b1"}]})");
  EXPECT_EQ(take_log().back(), "sync");
}

// vsn 1.0.0 pushes are objects with topic, event, payload, ref and the optional join_ref.
TEST_F(PresenceFixture, V1TrackAndUntrackFramesAreExact) {
  make(default_options(protocol::Vsn::v1));
  open();
  auto ch = socket->channel("room", ChannelOptions{false, false, false, "alice", {}, true});
  ASSERT_TRUE(ch->subscribe().ok());
  EXPECT_NE(last_sent().find(R"("presence":{"key":"alice","enabled":true})"), std::string::npos);
  fake->receive_text(
      R"({"topic":"realtime:room","event":"phx_reply","payload":{"status":"ok","response":{"postgres_changes":[]}},"ref":"1"})");
  std::vector<PushStatus> results;
  ch->track(json::object{{"name", "Alice"}},
            [&](const PushResult& r) { results.push_back(r.status); });
  EXPECT_EQ(
      last_sent(),
      R"({"topic":"realtime:room","event":"presence","payload":{"type":"presence","event":"track","payload":{"name":"Alice"}},"ref":"2","join_ref":"1"})");
  fake->receive_text(
      R"({"topic":"realtime:room","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"2"})");
  ch->untrack([&](const PushResult& r) { results.push_back(r.status); });
  EXPECT_EQ(
      last_sent(),
      R"({"topic":"realtime:room","event":"presence","payload":{"type":"presence","event":"untrack"},"ref":"3","join_ref":"1"})");
  fake->receive_text(
      R"({"topic":"realtime:room","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"3"})");
  EXPECT_EQ(results, (std::vector{PushStatus::ok, PushStatus::ok}));
}

TEST_F(PresenceFixture, MalformedPresenceFramesAreDroppedAndCounted) {
  auto ch = joined();
  state("1", R"({"alice":{"metas":[{"phx_ref":"a1"}]}})");
  take_log();
  diff(R"({"x":{"metas":"nope"}})", "{}");
  state("1", R"([1,2])");
  EXPECT_TRUE(take_log().empty());
  EXPECT_EQ(state_text(*ch), R"({"alice":[{"presence_ref":"a1"}]})");
  EXPECT_EQ(socket->diagnostics().at("counters").at("malformed_frames").as_uint64(), 2u);
}

}  // namespace
}  // namespace rtsync::client::testing
