// Server presence on virtual time: presence_state / presence_diff frames, the coalescing window
// at its boundary, several metas per key, replies to bad input, and every limit at its boundary.
#include "rtsync/server/realtime/presence.hpp"
#include "rtsync/server/realtime/names.hpp"

#include <gtest/gtest.h>

#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/server/realtime/connection.hpp"
#include "unit/server_rt/fakes.hpp"

namespace rtsync::server::realtime {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using protocol::Message;
using protocol::Vsn;

class PresenceTest : public ::testing::Test {
 protected:
  PresenceTest() : verifier(kSecret, 2s), hub(sched, verifier, &authz, limits()) {
    hub.on_stream_state(true, "");
  }
  static RealtimeLimits limits() {
    RealtimeLimits l;
    l.presence_diff_window = 50ms;
    l.presence_diff_max_delay = 200ms;
    l.max_presence_events_per_second = 4;
    l.max_presence_meta_bytes = 40;
    l.max_presences_per_channel = 45;
    l.max_messages_per_second = 10'000;
    return l;
  }
  struct Client {
    FakeSession io;
    std::unique_ptr<Connection> conn;
    std::string join_ref;
    int next_ref = 100;
    Client(Hub& hub, Vsn vsn, auth::VerifiedJwt key) : io(vsn) {
      conn = std::make_unique<Connection>(hub, io, vsn, std::move(key));
    }
    void send(const Message& m) { conn->on_text(protocol::encode_text(io.vsn, m)); }
    void join(std::string topic, std::string ref, bool presence, std::string key = "") {
      join_ref = ref;
      json::object config{{"presence", json::object{{"enabled", presence}, {"key", key}}}};
      send(Message{ref, ref, "realtime:" + topic, "phx_join", json::object{{"config", config}}});
    }
    void presence(json::value payload, std::string topic = "room") {
      auto ref = std::to_string(++next_ref);
      send(Message{join_ref, ref, "realtime:" + topic, "presence", std::move(payload)});
    }
    void track(json::object meta) {
      presence(json::object{{"type", "presence"}, {"event", "track"}, {"payload", meta}});
    }
    void untrack() { presence(json::object{{"type", "presence"}, {"event", "untrack"}}); }
    std::vector<Message> take(std::string_view event) {
      std::vector<Message> out;
      for (auto& m : io.take())
        if (m.event == event) out.push_back(std::move(m));
      return out;
    }
  };
  std::unique_ptr<Client> client(Vsn vsn = Vsn::v2, std::int64_t ttl_s = 3600) {
    json::object c{{"role", "anon"},
                   {"exp", std::chrono::duration_cast<std::chrono::seconds>(
                               sched.wall_now().time_since_epoch())
                                   .count() +
                               ttl_s}};
    auto key = verifier.verify(auth::sign_hs256(c, kSecret), sched.wall_now()).value();
    return std::make_unique<Client>(hub, vsn, std::move(key));
  }
  // A joined client with presence enabled; its join frames are consumed.
  std::unique_ptr<Client> member(std::string key, Vsn vsn = Vsn::v2) {
    auto c = client(vsn);
    c->join("room", std::to_string(++joins), true, std::move(key));
    c->io.take();
    return c;
  }
  // Metas of `key` in a {key:{metas:[…]}} object, without phx_ref fields.
  static std::vector<std::string> names(const json::value& groups, std::string_view key) {
    std::vector<std::string> out;
    const auto* g = groups.as_object().if_contains(key);
    if (!g) return out;
    for (const auto& m : g->at("metas").as_array()) {
      EXPECT_TRUE(m.as_object().contains("phx_ref"));
      out.push_back(m.as_object().contains("name") ? std::string(m.at("name").as_string()) : "");
    }
    return out;
  }

  int joins = 0;
  core::ManualScheduler sched;
  auth::JwtVerifier verifier;
  FakeAuthorizer authz;
  Hub hub;
};

TEST_F(PresenceTest, JoinWithPresenceGetsStateRightAfterTheReplyOnBothSerializers) {
  auto a = member("alice");
  a->track(json::object{{"name", "A"}});
  sched.advance(50ms);
  auto v2 = client(Vsn::v2);
  v2->join("room", "7", true, "bob");
  ASSERT_EQ(v2->io.frames.size(), 2u);
  const auto raw = *v2->io.frames[1].bytes;
  auto msgs = v2->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].event, "phx_reply");
  ASSERT_EQ(msgs[1].event, "presence_state");
  EXPECT_EQ(msgs[1].join_ref, "7");  // presence_state carries the join ref on v2
  EXPECT_FALSE(msgs[1].ref);
  EXPECT_EQ(names(msgs[1].payload, "alice"), std::vector<std::string>{"A"});
  const auto ref =
      std::string(msgs[1].payload.at("alice").at("metas").at(0).at("phx_ref").as_string());
  EXPECT_EQ(raw, R"(["7",null,"realtime:room","presence_state",{"alice":{"metas":[{"phx_ref":")" +
                     ref + R"(","name":"A"}]}}])");

  // The v1 frame of the same state: an object without join_ref.
  auto v1b = client(Vsn::v1);
  v1b->join("room", "9", true);
  ASSERT_GE(v1b->io.frames.size(), 2u);
  EXPECT_EQ(
      *v1b->io.frames[1].bytes,
      R"({"topic":"realtime:room","event":"presence_state","payload":{"alice":{"metas":[{"phx_ref":")" +
          ref + R"(","name":"A"}]}},"ref":null})");
}

TEST_F(PresenceTest, JoinWithoutPresenceGetsNoStateAndNoDiffs) {
  auto quiet = client();
  quiet->join("room", "1", false);
  EXPECT_EQ(quiet->io.take().size(), 1u);  // the reply only
  auto a = member("alice");
  a->track(json::object{{"name", "A"}});
  sched.advance(1s);
  EXPECT_TRUE(quiet->take("presence_diff").empty());
}

TEST_F(PresenceTest, TrackingWithoutPresenceEnabledBringsDiffsButNoState) {
  auto a = member("alice");
  auto quiet = client();
  quiet->join("room", "1", false, "q");
  quiet->io.take();
  quiet->track(json::object{{"name", "Q"}});
  EXPECT_EQ(quiet->take("phx_reply").size(), 1u);
  sched.advance(50ms);
  // Its own join reaches it (and everyone else), as a diff; no presence_state is sent.
  auto d = quiet->io.take();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].event, "presence_diff");
  EXPECT_EQ(names(d[0].payload.at("joins"), "q"), std::vector<std::string>{"Q"});
  EXPECT_EQ(a->take("presence_diff").size(), 1u);
  a->track(json::object{{"name", "A"}});
  sched.advance(50ms);
  EXPECT_EQ(quiet->take("presence_diff").size(), 1u);
}

TEST_F(PresenceTest, DiffGoesOutOnceTheTopicIsQuietForTheWindowWithEveryChangeInIt) {
  auto watcher = member("w");
  auto a = member("alice");
  auto b = member("bob");
  a->track(json::object{{"name", "A"}});
  EXPECT_EQ(a->take("phx_reply").size(), 1u);
  sched.advance(30ms);
  b->track(json::object{{"name", "B"}});  // inside the window opened by alice's track
  sched.advance(49ms);                    // 49 ms after the latest change: not yet quiet
  EXPECT_TRUE(watcher->take("presence_diff").empty());
  EXPECT_TRUE(sched.pending(timers::PresenceDiff));
  sched.advance(1ms);  // 50 ms after the latest change
  auto diffs = watcher->take("presence_diff");
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_FALSE(diffs[0].join_ref);  // a fan-out message: null refs
  EXPECT_FALSE(diffs[0].ref);
  EXPECT_EQ(names(diffs[0].payload.at("joins"), "alice"), std::vector<std::string>{"A"});
  EXPECT_EQ(names(diffs[0].payload.at("joins"), "bob"), std::vector<std::string>{"B"});
  EXPECT_TRUE(diffs[0].payload.at("leaves").as_object().empty());
  EXPECT_FALSE(sched.pending(timers::PresenceDiff));
  // The trackers get the diff too (their own join included).
  EXPECT_EQ(a->take("presence_diff").size(), 1u);
  // The next change opens a new window.
  b->untrack();
  sched.advance(49ms);
  EXPECT_TRUE(watcher->take("presence_diff").empty());
  sched.advance(1ms);
  diffs = watcher->take("presence_diff");
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_TRUE(diffs[0].payload.at("joins").as_object().empty());
  EXPECT_EQ(names(diffs[0].payload.at("leaves"), "bob"), std::vector<std::string>{"B"});
  EXPECT_EQ(hub.metrics().presence_diffs, 6u);  // 3 receivers × 2 windows
}

TEST_F(PresenceTest, ABusyTopicStillGetsItsDiffAtTheMaxDelay) {
  auto watcher = member("w");
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 8; ++i)
    cs.push_back(member("u" + std::to_string(i)));
  // A change every 40 ms: the topic is never quiet for 50 ms.
  for (int i = 0; i < 5; ++i) {
    cs[i]->track(json::object{{"name", std::to_string(i)}});
    sched.advance(i < 4 ? 40ms : 39ms);
  }  // t = 199 ms: changes at 0, 40, 80, 120, 160
  EXPECT_TRUE(watcher->take("presence_diff").empty());
  EXPECT_TRUE(sched.pending(timers::PresenceDiff));
  sched.advance(1ms);  // 200 ms: the max delay after the window's first change
  auto diffs = watcher->take("presence_diff");
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].payload.at("joins").as_object().size(), 5u);
  EXPECT_FALSE(sched.pending(timers::PresenceDiff));
  // The churn goes on: the next change opens the next window.
  cs[5]->track(json::object{{"name", "5"}});
  sched.advance(50ms);
  diffs = watcher->take("presence_diff");
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(names(diffs[0].payload.at("joins"), "u5"), std::vector<std::string>{"5"});
}

TEST_F(PresenceTest, JoinStormCostsEachJoinerOneStateAndNoDiff) {
  // The first client joins a quiet topic: its (empty) state comes at once.
  auto first = client();
  first->join("room", "1", true, "user0");
  auto msgs = first->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].event, "presence_state");
  EXPECT_TRUE(msgs[1].payload.as_object().empty());
  first->track(json::object{{"name", "0"}});  // opens the window
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 1; i < 40; ++i) {
    auto c = client();
    c->join("room", std::to_string(i + 1), true, "user" + std::to_string(i));
    c->track(json::object{{"name", std::to_string(i)}});
    cs.push_back(std::move(c));
    sched.advance(1ms);
  }
  sched.advance(48ms);  // 49 ms after the last track
  for (auto& c : cs) {
    auto early = c->io.take();
    ASSERT_EQ(early.size(), 2u);  // join reply and track reply: the state waits for the window
    EXPECT_EQ(early[0].event, "phx_reply");
    EXPECT_EQ(early[1].event, "phx_reply");
  }
  sched.advance(1ms);
  for (std::size_t i = 0; i < cs.size(); ++i) {
    auto late = cs[i]->io.take();
    ASSERT_EQ(late.size(), 1u) << i;  // the state, holding all 40; no diff
    EXPECT_EQ(late[0].event, "presence_state");
    EXPECT_EQ(late[0].join_ref, std::to_string(i + 2));
    EXPECT_EQ(late[0].payload.as_object().size(), 40u);
  }
  // The one receiver whose state came before the window gets one diff with every join.
  msgs = first->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].event, "phx_reply");
  EXPECT_EQ(msgs[1].event, "presence_diff");
  EXPECT_EQ(msgs[1].payload.at("joins").as_object().size(), 40u);
  EXPECT_EQ(hub.metrics().presence_states, 40u);
  EXPECT_EQ(hub.metrics().presence_diffs, 1u);
  EXPECT_EQ(hub.presence().size(), 40u);
}

TEST_F(PresenceTest, AStateThatWaitsForTheWindowComesAtItsCloseAndAfterwardsOnlyDiffs) {
  auto watcher = member("w");
  auto a = member("alice");
  a->track(json::object{{"name", "A"}});
  sched.advance(10ms);
  auto late = client(Vsn::v1);
  late->join("room", "5", true, "late");
  EXPECT_EQ(late->io.take().size(), 1u);  // the reply only
  // It leaves again before the window closes: nothing is sent to it, nothing breaks.
  auto gone = client();
  gone->join("room", "6", true, "gone");
  gone.reset();
  sched.advance(39ms);
  EXPECT_TRUE(late->io.take().empty());
  sched.advance(1ms);  // 50 ms after alice's track
  ASSERT_EQ(late->io.frames.size(), 1u);
  const auto ref = std::string(json::parse(*late->io.frames[0].bytes)
                                   .at("payload")
                                   .at("alice")
                                   .at("metas")
                                   .at(0)
                                   .at("phx_ref")
                                   .as_string());
  EXPECT_EQ(
      *late->io.frames[0].bytes,
      R"({"topic":"realtime:room","event":"presence_state","payload":{"alice":{"metas":[{"phx_ref":")" +
          ref + R"(","name":"A"}]}},"ref":null})");
  late->io.take();
  EXPECT_EQ(watcher->take("presence_diff").size(), 1u);
  // From then on it gets diffs like everyone else, in its own serializer.
  a->untrack();
  sched.advance(50ms);
  ASSERT_EQ(late->io.frames.size(), 1u);
  EXPECT_EQ(
      *late->io.frames[0].bytes,
      R"({"topic":"realtime:room","event":"presence_diff","payload":{"joins":{},"leaves":{"alice":{"metas":[{"phx_ref":")" +
          ref + R"(","name":"A"}]}}},"ref":null})");
}

TEST_F(PresenceTest, AMetaThatJoinsAndLeavesWithinOneWindowIsInNoDiff) {
  auto watcher = member("w");
  auto a = member("alice");
  a->track(json::object{{"name", "A"}});
  a->untrack();
  sched.advance(1s);
  EXPECT_TRUE(watcher->take("presence_diff").empty());
}

TEST_F(PresenceTest, SeveralSocketsUnderOneKeyAreOneMetaEach) {
  auto phone = member("alice");
  auto laptop = member("alice");
  phone->track(json::object{{"name", "phone"}});
  laptop->track(json::object{{"name", "laptop"}});
  sched.advance(50ms);
  auto late = client();
  late->join("room", "50", true);
  auto state = late->take("presence_state");
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(names(state[0].payload, "alice"), (std::vector<std::string>{"phone", "laptop"}));
  phone.reset();  // the socket closes
  sched.advance(50ms);
  auto diffs = late->take("presence_diff");
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(names(diffs[0].payload.at("leaves"), "alice"), std::vector<std::string>{"phone"});
  EXPECT_EQ(hub.presence().size(), 1u);
}

TEST_F(PresenceTest, SamePayloadIsANoOpAndANewOneReplacesTheMeta) {
  auto watcher = member("w");
  auto a = member("alice");
  a->track(json::object{{"name", "A"}});
  sched.advance(50ms);
  watcher->io.take();
  a->track(json::object{{"name", "A"}});
  EXPECT_EQ(json::serialize(a->take("phx_reply").at(0).payload),
            R"({"status":"ok","response":{}})");
  sched.advance(1s);
  EXPECT_TRUE(watcher->take("presence_diff").empty());
  EXPECT_FALSE(sched.pending(timers::PresenceDiff));

  a->track(json::object{{"name", "A2"}});
  sched.advance(50ms);
  auto diffs = watcher->take("presence_diff");
  ASSERT_EQ(diffs.size(), 1u);
  const auto& left = diffs[0].payload.at("leaves").at("alice").at("metas").at(0);
  const auto& joined = diffs[0].payload.at("joins").at("alice").at("metas").at(0);
  EXPECT_EQ(left.at("name").as_string(), "A");
  EXPECT_EQ(joined.at("name").as_string(), "A2");
  EXPECT_EQ(joined.at("phx_ref_prev"), left.at("phx_ref"));
  EXPECT_NE(joined.at("phx_ref"), left.at("phx_ref"));
  EXPECT_EQ(hub.presence().size(), 1u);
}

TEST_F(PresenceTest, EveryWayOfLeavingProducesTheLeave) {
  auto watcher = member("w");
  auto leaver = member("leaver");
  auto closer = member("closer");
  auto idler = member("idler");
  for (auto* c : {leaver.get(), closer.get(), idler.get()})
    c->track(json::object{{"name", "x"}});
  sched.advance(50ms);
  watcher->io.take();
  // phx_leave
  leaver->send(Message{leaver->join_ref, "l", "realtime:room", "phx_leave", json::object()});
  sched.advance(50ms);
  auto d = watcher->take("presence_diff");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(names(d[0].payload.at("leaves"), "leaver").size(), 1u);
  // socket gone
  closer.reset();
  sched.advance(50ms);
  d = watcher->take("presence_diff");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(names(d[0].payload.at("leaves"), "closer").size(), 1u);
  // The idle timeout closes the socket; the transport then destroys the connection.
  auto heartbeat = [&](Client& c) {
    c.send(Message{std::nullopt, "hb", "phoenix", "heartbeat", json::object()});
  };
  heartbeat(*watcher);
  sched.advance(std::chrono::duration_cast<core::Duration>(hub.limits().idle_timeout) - 100ms);
  heartbeat(*watcher);
  sched.advance(100ms);
  EXPECT_TRUE(idler->io.closed);
  EXPECT_FALSE(watcher->io.closed);
  idler.reset();
  sched.advance(50ms);
  d = watcher->take("presence_diff");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(names(d[0].payload.at("leaves"), "idler").size(), 1u);
  EXPECT_EQ(hub.presence().size(), 0u);
  EXPECT_EQ(hub.metrics().presences, 0);
}

TEST_F(PresenceTest, ServerSideEndsOfAChannelProduceTheLeaveToo) {
  auto watcher = member("w");
  // A token that expires in 30 s (before the 60 s idle timeout): the server ends the channel then.
  auto expiring = client(Vsn::v2, 30);
  expiring->join("room", "1", true, "expiring");
  expiring->track(json::object{{"name", "E"}});
  auto rejoiner = member("rejoiner");
  rejoiner->track(json::object{{"name", "R"}});
  sched.advance(50ms);
  watcher->io.take();
  expiring->io.take();

  ASSERT_TRUE(sched.run_until(timers::TokenExpiry));
  auto msgs = expiring->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].event, "system");
  EXPECT_EQ(msgs[1].event, "phx_close");
  sched.advance(50ms);
  auto d = watcher->take("presence_diff");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(names(d[0].payload.at("leaves"), "expiring"), std::vector<std::string>{"E"});

  // Joining the same topic again on the same socket ends the earlier channel: its meta leaves,
  // and the new channel's state (sent when the window that leave opened closes) no longer has it.
  rejoiner->io.take();
  rejoiner->join("room", "77", true, "rejoiner");
  auto early = rejoiner->io.take();
  ASSERT_EQ(early.size(), 2u);  // the earlier channel's close, the join reply; no state yet
  EXPECT_EQ(early[0].event, "phx_close");
  EXPECT_EQ(early[1].event, "phx_reply");
  sched.advance(50ms);
  d = watcher->take("presence_diff");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(names(d[0].payload.at("leaves"), "rejoiner"), std::vector<std::string>{"R"});
  auto state = rejoiner->take("presence_state");
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].join_ref, "77");
  EXPECT_FALSE(state[0].payload.as_object().contains("rejoiner"));
  EXPECT_EQ(hub.presence().size(), 0u);
}

TEST_F(PresenceTest, AVsn1ClientTracksAndEveryoneSeesItInTheirOwnSerializer) {
  auto v2 = member("w2");
  auto v1 = member("one", Vsn::v1);
  v1->track(json::object{{"name", "One"}});
  auto reply = v1->io.frames.back();
  EXPECT_EQ(
      *reply.bytes,
      R"({"topic":"realtime:room","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"101"})");
  v1->io.take();
  sched.advance(50ms);
  ASSERT_EQ(v1->io.frames.size(), 1u);
  const auto ref = std::string(json::parse(*v1->io.frames[0].bytes)
                                   .at("payload")
                                   .at("joins")
                                   .at("one")
                                   .at("metas")
                                   .at(0)
                                   .at("phx_ref")
                                   .as_string());
  const std::string meta = R"({"phx_ref":")" + ref + R"(","name":"One"})";
  EXPECT_EQ(
      *v1->io.frames[0].bytes,
      R"({"topic":"realtime:room","event":"presence_diff","payload":{"joins":{"one":{"metas":[)" +
          meta + R"(]}},"leaves":{}},"ref":null})");
  ASSERT_EQ(v2->io.frames.size(), 1u);
  EXPECT_EQ(*v2->io.frames[0].bytes,
            R"([null,null,"realtime:room","presence_diff",{"joins":{"one":{"metas":[)" + meta +
                R"(]}},"leaves":{}}])");
}

TEST_F(PresenceTest, EventNameIsCaseInsensitiveAndBadInputGetsSupabaseReplies) {
  auto a = member("alice");
  auto reply_of = [&](json::value payload) {
    a->presence(std::move(payload));
    auto r = a->take("phx_reply");
    EXPECT_EQ(r.size(), 1u);
    return r.empty() ? std::string() : json::serialize(r[0].payload);
  };
  EXPECT_EQ(
      reply_of(json::object{
          {"type", "presence"}, {"event", "TRACK"}, {"payload", json::object{{"name", "A"}}}}),
      R"({"status":"ok","response":{}})");
  EXPECT_EQ(hub.presence().size(), 1u);
  EXPECT_EQ(reply_of(json::object{{"type", "presence"}, {"event", "track"}, {"payload", "str"}}),
            R"({"status":"error","response":{"reason":"Presence track payload must be a map"}})");
  EXPECT_EQ(reply_of(json::object{{"type", "presence"}, {"event", "wave"}}),
            R"({"status":"error","response":{}})");
  sched.advance(1s);  // a new budget second
  EXPECT_EQ(reply_of(json::object{{"type", "presence"}, {"event", 5}}),
            R"({"status":"error","response":{}})");
  EXPECT_EQ(reply_of(json::object{{"type", "presence"}}), R"({"status":"ok","response":{}})");
  // Nothing of that touched the tracked presence or the channel.
  EXPECT_EQ(hub.presence().size(), 1u);
  EXPECT_EQ(a->conn->channel_count(), 1u);
  EXPECT_EQ(hub.metrics().drops_for(drop::kPresenceMalformed), 3u);
}

TEST_F(PresenceTest, MissingKeyGetsAFreshKeyPerJoin) {
  auto a = client();
  a->join("room", "1", true);
  a->track(json::object{{"name", "A"}});
  auto b = client();
  b->join("room", "2", true);
  b->track(json::object{{"name", "B"}});
  sched.advance(50ms);
  auto c = client();
  c->join("room", "3", true);
  auto state = c->take("presence_state").at(0).payload.as_object();
  ASSERT_EQ(state.size(), 2u);
  for (const auto& [key, _] : state)
    EXPECT_EQ(key.size(), 36u) << key;  // UUID text
}

TEST_F(PresenceTest, PresenceEventsPerSecondLimitAtItsBoundary) {
  auto watcher = member("w");
  auto a = member("alice");
  auto b = member("bob");
  b->track(json::object{{"name", "B"}});
  for (int i = 0; i < 4; ++i)  // the budget: 4 per second
    a->track(json::object{{"name", "A" + std::to_string(i)}});
  EXPECT_EQ(a->take("phx_reply").size(), 4u);
  EXPECT_TRUE(sched.pending(timers::RateWindow));
  sched.advance(1s - 1ns);
  EXPECT_TRUE(sched.pending(timers::RateWindow));
  sched.advance(1ns);  // the second is over: a fresh budget
  EXPECT_FALSE(sched.pending(timers::RateWindow));
  a->io.take();  // the diff of the first batch
  for (int i = 0; i < 4; ++i)
    a->track(json::object{{"name", "B" + std::to_string(i)}});
  EXPECT_EQ(a->take("phx_reply").size(), 4u);
  a->track(json::object{{"name", "over"}});  // the 5th of this second
  auto msgs = a->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].event, "system");
  EXPECT_EQ(msgs[0].payload.at("message").as_string(), "Too many presence messages per second");
  EXPECT_EQ(msgs[1].event, "phx_close");
  EXPECT_EQ(a->conn->channel_count(), 0u);
  EXPECT_EQ(hub.metrics().drops_for(drop::kPresenceRateLimited), 1u);
  sched.advance(50ms);
  // Everyone else keeps their presence; the stopped channel's presence left.
  watcher->io.take();
  auto late = client();
  late->join("room", "99", true);
  auto state = late->take("presence_state").at(0).payload;
  EXPECT_EQ(names(state, "bob"), std::vector<std::string>{"B"});
  EXPECT_FALSE(state.as_object().contains("alice"));
}

TEST_F(PresenceTest, MetaSizeLimitAtItsBoundary) {
  auto a = member("alice");
  auto b = member("bob");
  b->track(json::object{{"name", "B"}});
  // {"name":"…"} is 11 bytes of JSON around the value: 29 characters make exactly 40.
  a->track(json::object{{"name", std::string(29, 'x')}});
  EXPECT_EQ(json::serialize(a->take("phx_reply").at(0).payload),
            R"({"status":"ok","response":{}})");
  a->track(json::object{{"name", std::string(30, 'x')}});
  auto msgs = a->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].payload.at("message").as_string(), "Track message size exceeded");
  EXPECT_EQ(msgs[1].event, "phx_close");
  EXPECT_EQ(hub.metrics().drops_for(drop::kPresenceTooLarge), 1u);
  EXPECT_EQ(hub.presence().size(), 1u);  // bob's
}

TEST_F(PresenceTest, PresencesPerChannelLimitAtItsBoundary) {
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 46; ++i)
    cs.push_back(member("u" + std::to_string(i)));
  for (int i = 0; i < 45; ++i) {  // the limit: 45
    cs[i]->track(json::object{{"name", "n"}});
    EXPECT_EQ(json::serialize(cs[i]->take("phx_reply").at(0).payload),
              R"({"status":"ok","response":{}})");
  }
  cs[45]->track(json::object{{"name", "n"}});
  EXPECT_EQ(json::serialize(cs[45]->take("phx_reply").at(0).payload),
            R"({"status":"error","response":{}})");
  EXPECT_EQ(cs[45]->conn->channel_count(), 1u);
  EXPECT_EQ(hub.metrics().drops_for(drop::kPresenceChannelFull), 1u);
  // A tracker may still replace its own meta at the limit, and a slot freed is a slot usable.
  cs[0]->track(json::object{{"name", "m"}});
  EXPECT_EQ(json::serialize(cs[0]->take("phx_reply").at(0).payload),
            R"({"status":"ok","response":{}})");
  cs[1]->untrack();
  cs[45]->track(json::object{{"name", "n"}});
  EXPECT_EQ(json::serialize(cs[45]->take("phx_reply").at(0).payload),
            R"({"status":"ok","response":{}})");
  EXPECT_EQ(hub.presence().size(), 45u);
}

TEST_F(PresenceTest, MetricsShowPresences) {
  auto a = member("alice");
  a->track(json::object{{"name", "A"}});
  sched.advance(50ms);
  auto text = hub.metrics().render();
  EXPECT_NE(text.find("rtsync_presences 1\n"), std::string::npos);
  EXPECT_NE(text.find("rtsync_presence_diffs_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("rtsync_presence_states_total 1\n"), std::string::npos);
}

// ---- a cluster's other nodes (docs/scaling.md §3) ----

struct RecordingBus final : ClusterBus {
  std::vector<PresenceChange> sent;
  void broadcast(const BroadcastMessage&) override {}
  void presence(const PresenceChange& c) override { sent.push_back(c); }
};

TEST_F(PresenceTest, LocalMetasGoToTheOtherNodesAndTheirsComeBackInTheNextDiff) {
  RecordingBus bus;
  hub.set_cluster_bus(&bus);
  auto a = member("alice");
  a->track(json::object{{"name", "A"}});
  ASSERT_EQ(bus.sent.size(), 1u);
  EXPECT_TRUE(bus.sent[0].join);
  EXPECT_EQ(bus.sent[0].member_key, "realtime:room");
  EXPECT_EQ(bus.sent[0].key, "alice");
  sched.advance(50ms);
  a->io.take();

  // Another node's meta joins: it reaches this node's member in the window's diff, not before.
  auto& presence = hub.presence();
  presence.apply_remote("n2", PresenceChange{"realtime:room", "realtime:room", true, "bob", "R1",
                                             R"({"phx_ref":"R1","name":"B"})"});
  EXPECT_TRUE(bus.sent.size() == 1u) << "a remote meta is not sent back to the bus";
  sched.advance(49ms);
  EXPECT_TRUE(a->take("presence_diff").empty());
  sched.advance(1ms);
  auto diffs = a->take("presence_diff");
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(names(diffs[0].payload.at("joins"), "bob"), std::vector<std::string>{"B"});
  // The same join again changes nothing; a late joiner's state holds both nodes' metas.
  presence.apply_remote("n2", PresenceChange{"realtime:room", "realtime:room", true, "bob", "R1",
                                             R"({"phx_ref":"R1","name":"B"})"});
  sched.advance(200ms);
  EXPECT_TRUE(a->take("presence_diff").empty());
  auto late = client();
  late->join("room", "77", true, "carol");
  auto states = late->take("presence_state");
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(names(states[0].payload, "alice"), std::vector<std::string>{"A"});
  EXPECT_EQ(names(states[0].payload, "bob"), std::vector<std::string>{"B"});
  // Only this node's own metas make its snapshot.
  auto snapshot = presence.local_snapshot();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].key, "alice");
  hub.set_cluster_bus(nullptr);
}

TEST_F(PresenceTest, ANodeThatIsGoneHasEveryMetaOfItsLeaveAndNoOtherNodes) {
  auto a = member("alice");
  auto& presence = hub.presence();
  presence.apply_remote("n2", PresenceChange{"realtime:room", "realtime:room", true, "bob", "R1",
                                             R"({"phx_ref":"R1","name":"B"})"});
  presence.apply_remote("n3", PresenceChange{"realtime:room", "realtime:room", true, "dan", "R2",
                                             R"({"phx_ref":"R2","name":"D"})"});
  sched.advance(50ms);
  a->io.take();
  // A leave naming another node's ref is ignored: a node speaks for its own metas only.
  presence.apply_remote("n3", PresenceChange{"realtime:room", "realtime:room", false, "bob", "R1",
                                             R"({"phx_ref":"R1","name":"B"})"});
  presence.replace_node("n2", {});
  sched.advance(50ms);
  auto diffs = a->take("presence_diff");
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(names(diffs[0].payload.at("leaves"), "bob"), std::vector<std::string>{"B"});
  EXPECT_TRUE(diffs[0].payload.at("leaves").as_object().if_contains("dan") == nullptr);
  EXPECT_EQ(presence.size("realtime:room"), 1u);  // dan's; alice never tracked
}

}  // namespace
}  // namespace rtsync::server::realtime
