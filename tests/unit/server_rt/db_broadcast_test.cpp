// Broadcast from Database and replay on virtual time (docs/database-broadcast.md):
// realtime.messages rows decoded into broadcasts, their delivery through the hub's ordered pipeline
// (private rows to the private channel only, never as postgres_changes), and joins with
// broadcast.replay against a scripted MessageStore (clamping, meta, de-duplication of live
// messages, the reference's errors).
#include <gtest/gtest.h>

#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/server/realtime/connection.hpp"
#include "rtsync/server/realtime/db_broadcast.hpp"
#include "unit/server_rt/fakes.hpp"

namespace rtsync::server::realtime {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using protocol::Message;
using protocol::Vsn;

// ---- decoding -----------------------------------------------------------------------------------

TEST(DbBroadcastDecode, AnInsertBecomesTheBroadcastOfItsTopicEventPayloadAndId) {
  auto b = decode_db_broadcast(message_insert("project:7", "UPDATE",
                                              json::object{{"record", json::object{{"id", 1}}}},
                                              true, "0b6c1f4e-0000-4000-8000-000000000001"));
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ(b->topic, "project:7");
  EXPECT_EQ(b->event, "UPDATE");
  EXPECT_EQ(b->payload, R"({"record":{"id":1}})");
  EXPECT_TRUE(b->is_private);
  EXPECT_EQ(b->id, "0b6c1f4e-0000-4000-8000-000000000001");

  auto m = to_broadcast_message(b.value());
  EXPECT_EQ(m.topic, "realtime:project:7");
  EXPECT_TRUE(m.is_private);
  EXPECT_EQ(m.id, b->id);
  ASSERT_TRUE(m.binary);
  EXPECT_FALSE(m.json_payload);
  EXPECT_EQ(m.binary->user_event, "UPDATE");
  EXPECT_EQ(m.binary->metadata, R"({"id":"0b6c1f4e-0000-4000-8000-000000000001"})");
  EXPECT_EQ(m.binary->encoding, protocol::PayloadEncoding::json);
  EXPECT_EQ(m.binary->payload, R"({"record":{"id":1}})");

  // A payload that is not an object is sent as it is (jsonb may hold any JSON value).
  auto arr = decode_db_broadcast(message_insert("t", "e", json::array{1, "x"}, false, "id2"));
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ(arr->payload, R"([1,"x"])");
  EXPECT_FALSE(arr->is_private);
}

TEST(DbBroadcastDecode, RowsMissingARequiredColumnAreNotBroadcast) {
  for (std::string column : {"topic", "event", "id", "private", "payload"}) {
    auto missing = message_insert("t", "e", json::object{{"a", 1}}, true, "id");
    missing.record->erase(column);
    auto r = decode_db_broadcast(missing);
    ASSERT_FALSE(r.ok()) << column;
    EXPECT_NE(r.error().message.find(column), std::string::npos) << r.error().message;

    auto null = message_insert("t", "e", json::object{{"a", 1}}, true, "id");
    (*null.record)[column] = nullptr;
    EXPECT_FALSE(decode_db_broadcast(null).ok()) << column;
  }
  auto wrong = message_insert("t", "e", json::object(), true, "id");
  (*wrong.record)["private"] = "true";
  EXPECT_FALSE(decode_db_broadcast(wrong).ok());
  auto not_insert = message_insert("t", "e", json::object(), true, "id");
  not_insert.kind = ChangeKind::update;
  EXPECT_FALSE(decode_db_broadcast(not_insert).ok());
}

TEST(DbBroadcastDecode, TheMessagesTableAndItsDailyPartitionsAreRecognised) {
  EXPECT_TRUE(is_messages_relation(*messages_relation()));
  EXPECT_TRUE(is_messages_relation(*messages_relation("messages_2026_01_01")));
  EXPECT_FALSE(is_messages_relation(*messages_relation("messagesx")));
  EXPECT_FALSE(is_messages_relation(*messages_relation("message")));
  EXPECT_FALSE(is_messages_relation(*make_relation("public", "messages")));
  EXPECT_FALSE(is_messages_relation(*make_relation("realtime", "subscription")));
}

// ---- delivery and replay through a hub ----------------------------------------------------------

class DbBroadcastTest : public ::testing::Test {
 protected:
  DbBroadcastTest() : verifier(kSecret, 2s), hub(sched, verifier, &authz, limits()) {
    hub.on_stream_state(true, "");
    hub.set_message_store(&store);
    hub.set_channel_authorizer(&channels);
    // The project's policies: service_role and "member" read everything of every topic,
    // "watcher" only presence, anyone else nothing.
    channels.rule = [](const ChannelCheck& c) -> ChannelAuthResult {
      if (c.auth.role == "service_role" ||
          c.auth.claims_json.find("\"member\"") != std::string::npos) {
        return ChannelRights{true, true, true, true};
      }
      if (c.auth.claims_json.find("\"watcher\"") != std::string::npos) {
        return ChannelRights{false, true, false, false};
      }
      return ChannelRights{false, false, false, false};
    };
  }
  static RealtimeLimits limits() {
    RealtimeLimits l;
    l.max_broadcast_payload_bytes = 64;
    l.max_queued_frames = 8;  // what a join waiting for its replay may hold
    return l;
  }
  std::string token(std::string role, std::string sub = "") {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(sched.wall_now().time_since_epoch())
            .count();
    json::object claims{{"role", role}, {"exp", now + 3600}};
    if (!sub.empty()) claims["sub"] = sub;
    return auth::sign_hs256(claims, kSecret);
  }
  struct Client {
    core::ManualScheduler& sched;
    FakeSession io;
    std::unique_ptr<Connection> conn;
    Client(Hub& hub, core::ManualScheduler& sched, Vsn vsn, auth::VerifiedJwt key)
        : sched(sched), io(vsn) {
      conn = std::make_unique<Connection>(hub, io, vsn, std::move(key));
    }
    // Sends, then lets the channel authorizer's answers (posted) arrive.
    void send(const Message& m) {
      conn->on_text(protocol::encode_text(io.vsn, m));
      sched.run_ready();
    }
  };
  // A user the project's policies let read every topic ("member"), unless told otherwise.
  std::unique_ptr<Client> client(Vsn vsn = Vsn::v2, std::string role = "authenticated",
                                 std::string sub = "member") {
    return std::make_unique<Client>(hub, sched, vsn,
                                    verifier.verify(token(role, sub), sched.wall_now()).value());
  }
  static Message join(std::string topic, std::string ref, json::object config) {
    return Message{ref, ref, "realtime:" + topic, "phx_join",
                   json::object{{"config", std::move(config)}}};
  }
  static json::object private_config(std::optional<json::value> replay = std::nullopt) {
    json::object broadcast{{"self", false}};
    if (replay) broadcast["replay"] = *replay;
    return json::object{{"broadcast", broadcast}, {"private", true}};
  }
  static json::object replay(std::int64_t since, std::optional<std::int64_t> limit) {
    json::object r{{"since", since}};
    if (limit) r["limit"] = *limit;
    return r;
  }
  static std::string reason(const Message& m) {
    return std::string(m.payload.at("response").at("reason").as_string());
  }
  // Every frame a client got, decoded the way a vsn 2 realtime-js sees it.
  static std::vector<Message> received(FakeSession& io) {
    std::vector<Message> out;
    for (const auto& f : io.frames) {
      auto m =
          f.binary ? protocol::decode_binary(*f.bytes) : protocol::decode_text(io.vsn, *f.bytes);
      EXPECT_TRUE(m.ok());
      if (m.ok()) out.push_back(std::move(m.value()));
    }
    io.frames.clear();
    return out;
  }
  // The event and meta.id of each broadcast received ("UPDATE m1" / "UPDATE m1 replayed").
  static std::vector<std::string> broadcasts(FakeSession& io) {
    std::vector<std::string> out;
    for (const auto& m : received(io)) {
      if (m.event != "broadcast") continue;
      std::string s(m.payload.at("event").as_string());
      if (const auto* meta = m.payload.as_object().if_contains("meta")) {
        s += " " + std::string(meta->at("id").as_string());
        if (const auto* r = meta->as_object().if_contains("replayed"); r && r->as_bool()) {
          s += " replayed";
        }
      }
      out.push_back(s);
    }
    return out;
  }
  void deliver(std::vector<RowChange> changes, Lsn end = 100) {
    hub.on_transaction(txn(std::move(changes), end), [] {});
  }

  core::ManualScheduler sched;
  auth::JwtVerifier verifier;
  FakeAuthorizer authz;
  FakeMessageStore store;
  FakeChannelAuthorizer channels{sched};
  Hub hub;
};

TEST_F(DbBroadcastTest, APrivateRowReachesOnlyThePrivateChannelAndAPublicRowOnlyThePublicOne) {
  auto priv = client();
  auto pub = client(Vsn::v2, "anon");
  priv->send(join("room", "1", private_config()));
  pub->send(join("room", "1", json::object{}));
  priv->io.take();
  pub->io.take();

  deliver({message_insert("room", "secret", json::object{{"n", 1}}, true, "m-private"),
           message_insert("room", "hello", json::object{{"n", 2}}, false, "m-public")});
  EXPECT_EQ(broadcasts(priv->io), (std::vector<std::string>{"secret m-private"}));
  EXPECT_EQ(broadcasts(pub->io), (std::vector<std::string>{"hello m-public"}));
  EXPECT_EQ(hub.metrics().db_broadcasts, 2u);
  EXPECT_EQ(hub.metrics().db_broadcast_deliveries, 2u);
  EXPECT_EQ(hub.metrics().broadcasts, 0u);  // counts client and REST broadcasts only
}

TEST_F(DbBroadcastTest, V2SocketsGetKind4WithTheIdAsMetadataAndV1SocketsTheJsonBroadcast) {
  auto v2 = client(Vsn::v2);
  auto v1 = client(Vsn::v1);
  v2->send(join("room", "1", private_config()));
  v1->send(join("room", "1", private_config()));
  v2->io.frames.clear();
  v1->io.frames.clear();
  deliver({message_insert("room", "INSERT", json::object{{"x", 1}}, true, "abc")});

  ASSERT_EQ(v2->io.frames.size(), 1u);
  ASSERT_TRUE(v2->io.frames[0].binary);
  auto k4 = protocol::decode_user_broadcast(*v2->io.frames[0].bytes);
  ASSERT_TRUE(k4.ok());
  EXPECT_EQ(static_cast<std::uint8_t>((*v2->io.frames[0].bytes)[0]), 4);
  EXPECT_EQ(k4->topic, "realtime:room");
  EXPECT_EQ(k4->user_event, "INSERT");
  EXPECT_EQ(k4->metadata, R"({"id":"abc"})");
  EXPECT_EQ(k4->payload, R"({"x":1})");

  ASSERT_EQ(v1->io.frames.size(), 1u);
  auto m = protocol::decode_v1(*v1->io.frames[0].bytes);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->topic, "realtime:room");
  EXPECT_EQ(m->event, "broadcast");
  EXPECT_FALSE(m->ref);
  EXPECT_EQ(m->payload, json::parse(R"({"type":"broadcast","event":"INSERT","payload":{"x":1},
                                        "meta":{"id":"abc"}})"));
}

TEST_F(DbBroadcastTest, ATopicTooLongForAKind4FrameReachesV2SocketsAsJsonText) {
  const std::string topic(250, 't');  // "realtime:" + 250 bytes > 255
  auto c = client();
  c->send(join(topic, "1", private_config()));
  c->io.frames.clear();
  deliver({message_insert(topic, "e", json::object{{"x", 1}}, true, "abc")});
  ASSERT_EQ(c->io.frames.size(), 1u);
  EXPECT_FALSE(c->io.frames[0].binary);
  EXPECT_EQ(broadcasts(c->io), (std::vector<std::string>{"e abc"}));
}

TEST_F(DbBroadcastTest, MessagesGoOutAtTheirPlaceAmongTheTransactionsChangesInCommitOrder) {
  auto c = client();
  c->send(join("tasks", "1",
               json::object{{"postgres_changes",
                             json::array{json::object{
                                 {"event", "*"}, {"schema", "public"}, {"table", "tasks"}}}}}));
  c->send(join("room", "2", private_config()));
  c->io.frames.clear();

  // The first transaction waits for its authorization; the second carries only a message and
  // must not overtake it.
  authz.defer = true;
  auto tasks = make_relation("public", "tasks");
  std::vector<int> done;
  hub.on_transaction(txn({insert(tasks, row(1, "u", 1)),
                          message_insert("room", "middle", json::object(), true, "m1"),
                          insert(tasks, row(2, "u", 1))},
                         100),
                     [&] { done.push_back(1); });
  hub.on_transaction(txn({message_insert("room", "later", json::object(), true, "m2")}, 200),
                     [&] { done.push_back(2); });
  EXPECT_TRUE(c->io.frames.empty());
  EXPECT_TRUE(done.empty()) << "nothing is confirmed before it was handed on";
  authz.flush();
  EXPECT_EQ(done, (std::vector<int>{1, 2}));
  std::vector<std::string> seen;
  for (const auto& m : received(c->io)) {
    if (m.event == "postgres_changes") {
      seen.push_back("change " + json::serialize(m.payload.at("data").at("record").at("id")));
    } else if (m.event == "broadcast") {
      seen.push_back("broadcast " + std::string(m.payload.at("event").as_string()));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"change 1", "broadcast middle", "change 2",
                                            "broadcast later"}));
}

TEST_F(DbBroadcastTest, MessagesRowsAreNeverPostgresChangesEvenForAWildcardSubscription) {
  auto c = client();
  c->send(join(
      "all", "1",
      json::object{{"postgres_changes", json::array{json::object{{"event", "*"}, {"schema", "*"}},
                                                    json::object{{"event", "*"},
                                                                 {"schema", "realtime"},
                                                                 {"table", "messages"}}}}}));
  c->io.frames.clear();
  bool done = false;
  hub.on_transaction(txn({message_insert("all", "e", json::object(), false, "m1"),
                          message_insert("x", "e", json::object(), true, "m2")}),
                     [&] { done = true; });
  EXPECT_TRUE(done);
  for (const auto& m : received(c->io))
    EXPECT_NE(m.event, "postgres_changes");
  EXPECT_TRUE(authz.calls.empty()) << "no visibility question is asked about a message row";
  EXPECT_EQ(hub.metrics().deliveries, 0u);
}

TEST_F(DbBroadcastTest, OversizedInvalidAndNonInsertRowsAreNotBroadcastAndTheRestIs) {
  auto c = client();
  c->send(join("room", "1", private_config()));
  c->io.frames.clear();
  auto invalid = message_insert("room", "e", json::object(), true, "bad");
  invalid.record->erase("event");
  auto update = message_insert("room", "e", json::object(), true, "upd");
  update.kind = ChangeKind::update;
  deliver({message_insert("room", "big", json::object{{"b", std::string(100, 'x')}}, true, "m1"),
           invalid, update, message_insert("room", "ok", json::object(), true, "m2")});
  EXPECT_EQ(broadcasts(c->io), (std::vector<std::string>{"ok m2"}));
  EXPECT_EQ(hub.metrics().drops_for(drop::kDbBroadcastTooLarge), 1u);
  EXPECT_EQ(hub.metrics().drops_for(drop::kDbBroadcastInvalid), 1u);
  const auto text = hub.metrics().render();
  EXPECT_NE(text.find("rtsync_db_broadcasts_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rtsync_db_broadcast_deliveries_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("rtsync_drops_total{reason=\"db_broadcast_too_large\"} 1\n"),
            std::string::npos);
}

// ---- replay -------------------------------------------------------------------------------------

TEST_F(DbBroadcastTest, ReplayOnAPublicChannelAndInvalidParamsAreRefusedWithTheReferenceStrings) {
  auto c = client();
  c->send(join("pub", "1", json::object{{"broadcast", json::object{{"replay", replay(0, 5)}}}}));
  c->send(join("a", "2", private_config(json::object{{"limit", 5}})));
  c->send(join("b", "3", private_config(json::object{{"since", "yesterday"}})));
  c->send(join("c", "4", private_config(json::object{{"since", 1.5}})));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(reason(msgs[0]), "UnableToReplayMessages: Replay is not allowed for public channels");
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(reason(msgs[i]), "UnableToReplayMessages: Replay params are not valid");
  }
  EXPECT_TRUE(store.replays.empty());
  EXPECT_EQ(c->conn->channel_count(), 0u);
}

TEST_F(DbBroadcastTest, WithoutAMessageStoreAReplayCannotBeServed) {
  hub.set_message_store(nullptr);
  auto c = client();
  c->send(join("room", "1", private_config(replay(0, 5))));
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(reason(msgs[0]), "UnableToReplayMessages: Realtime was unable to replay messages");
}

TEST_F(DbBroadcastTest, TheLimitIsClampedToOneToTwentyFiveAndDefaultsToTwentyFive) {
  auto c = client();
  c->send(join("a", "1", private_config(replay(1763407103911, 100))));
  c->send(join("b", "2", private_config(replay(1763407103911, 0))));
  c->send(join("c", "3", private_config(replay(1763407103911, -4))));
  c->send(join("d", "4", private_config(replay(1763407103911, std::nullopt))));
  c->send(join("e", "5", private_config(replay(-5, 7))));
  ASSERT_EQ(store.replays.size(), 5u);
  EXPECT_EQ(store.replays[0].topic, "a");
  EXPECT_EQ(store.replays[0].since_ms, 1763407103911);
  std::vector<std::int64_t> limits;
  for (const auto& r : store.replays)
    limits.push_back(r.limit);
  EXPECT_EQ(limits, (std::vector<std::int64_t>{25, 1, 1, 25, 7}));
  EXPECT_EQ(store.replays[4].since_ms, -5);
}

TEST_F(DbBroadcastTest, TheJoinIsAnsweredOnceTheStoredMessagesAreReadThenTheyAreReplayed) {
  auto c = client();
  c->send(join("room", "7", private_config(replay(1000, 10))));
  EXPECT_TRUE(c->io.frames.empty()) << "no reply before the replay query answered";
  ASSERT_EQ(store.replays.size(), 1u);
  EXPECT_EQ(store.replays[0].topic, "room");
  EXPECT_EQ(store.replays[0].limit, 10);

  store.answer(0, {{"m1", "first", R"({"n":1})"}, {"m2", "second", R"({"n":2})"}});
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].event, "phx_reply");
  EXPECT_EQ(json::serialize(msgs[0].payload),
            R"({"status":"ok","response":{"postgres_changes":[]}})");
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(msgs[i].event, "broadcast");
    EXPECT_EQ(msgs[i].topic, "realtime:room");
    EXPECT_EQ(msgs[i].join_ref, "7") << "a channel push carries the join_ref on vsn 2";
    EXPECT_FALSE(msgs[i].ref);
  }
  EXPECT_EQ(msgs[1].payload, json::parse(R"({"type":"broadcast","event":"first","payload":{"n":1},
                                             "meta":{"replayed":true,"id":"m1"}})"));
  EXPECT_EQ(msgs[2].payload.at("meta").at("id").as_string(), "m2");
  EXPECT_EQ(c->conn->channel_count(), 1u);
  EXPECT_EQ(hub.metrics().replays, 1u);
  EXPECT_EQ(hub.metrics().replayed_messages, 2u);
}

// Logical decoding hands a commit on a moment before snapshots see it: the replay's snapshot must
// see the message transactions delivered before the join, or one could be neither replayed nor
// held.
TEST_F(DbBroadcastTest, TheReplaySnapshotMustSeeTheMessageTransactionsDeliveredJustBefore) {
  auto tasks = make_relation("public", "tasks");
  auto t1 = txn({message_insert("room", "e", json::object(), true, "m1")}, 100);
  t1->xid = 501;
  auto t2 = txn({insert(tasks, row(1, "u", 1))}, 200);  // no message: irrelevant
  t2->xid = 502;
  auto t3 = txn({message_insert("elsewhere", "e", json::object(), false, "m2")}, 300);
  t3->xid = 503;
  hub.on_transaction(t1, [] {});
  hub.on_transaction(t2, [] {});
  sched.advance(Hub::kRecentXidWindow);
  hub.on_transaction(t3, [] {});
  auto c = client();
  c->send(join("room", "1", private_config(replay(0, 5))));
  ASSERT_EQ(store.replays.size(), 1u);
  EXPECT_EQ(store.replays[0].xids, (std::vector<std::uint32_t>{501, 503}));
  sched.advance(1ns);  // 501 is now older than the window: surely visible
  c->send(join("room2", "2", private_config(replay(0, 5))));
  ASSERT_EQ(store.replays.size(), 2u);
  EXPECT_EQ(store.replays[1].xids, (std::vector<std::uint32_t>{503}));
}

TEST_F(DbBroadcastTest, V1ReplaysAreJsonWithoutJoinRef) {
  auto c = client(Vsn::v1);
  c->send(join("room", "7", private_config(replay(0, 1))));
  store.answer(0, {{"m1", "first", R"({"n":1})"}});
  ASSERT_EQ(c->io.frames.size(), 2u);
  EXPECT_EQ(
      *c->io.frames[1].bytes,
      R"({"topic":"realtime:room","event":"broadcast","payload":{"type":"broadcast","event":"first","payload":{"n":1},"meta":{"replayed":true,"id":"m1"}},"ref":null})");
}

TEST_F(DbBroadcastTest, LiveMessagesArrivingDuringTheQueryAreSentOnceAfterTheReplayedOnes) {
  auto c = client();
  c->send(join("room", "1", private_config(replay(0, 25))));
  // While the query runs, the lagging stream delivers m0 (older than the replayed window: the
  // query's limit left it out), m2 (which the query also finds) and m3 (committed after the
  // query's snapshot).
  deliver({message_insert("room", "older", json::object(), true, "m0"),
           message_insert("room", "live", json::object(), true, "m2"),
           message_insert("room", "live", json::object(), true, "m3")},
          100);
  EXPECT_TRUE(c->io.frames.empty());
  store.answer(0, {{"m1", "old", "{}"}, {"m2", "live", "{}"}});
  EXPECT_EQ(broadcasts(c->io),
            (std::vector<std::string>{"old m1 replayed", "live m2 replayed", "live m3"}));
  EXPECT_EQ(hub.metrics().drops_for(drop::kReplayDuplicate), 2u);

  // A lagging copy of a replayed message later on is not sent again; new ones are.
  deliver({message_insert("room", "live", json::object(), true, "m1"),
           message_insert("room", "new", json::object(), true, "m4")},
          200);
  EXPECT_EQ(broadcasts(c->io), (std::vector<std::string>{"new m4"}));
  EXPECT_EQ(hub.metrics().drops_for(drop::kReplayDuplicate), 3u);
}

TEST_F(DbBroadcastTest, OtherChannelsOfTheTopicAreServedWhileAJoinWaitsForItsReplay) {
  auto waiting = client();
  auto joined = client();
  joined->send(join("room", "1", private_config()));
  joined->io.frames.clear();
  waiting->send(join("room", "1", private_config(replay(0, 5))));
  deliver({message_insert("room", "e", json::object(), true, "m1")});
  EXPECT_EQ(broadcasts(joined->io), (std::vector<std::string>{"e m1"}));
  EXPECT_TRUE(waiting->io.frames.empty());
}

TEST_F(DbBroadcastTest, AFailedReplayQueryRefusesTheJoinAndNothingReachesIt) {
  auto c = client();
  c->send(join("room", "1", private_config(replay(0, 5))));
  deliver({message_insert("room", "e", json::object(), true, "m1")});
  store.fail(0);
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(reason(msgs[0]), "UnableToReplayMessages: Realtime was unable to replay messages");
  EXPECT_EQ(c->conn->channel_count(), 0u);
  deliver({message_insert("room", "e", json::object(), true, "m2")}, 200);
  EXPECT_TRUE(c->io.frames.empty());
  EXPECT_EQ(hub.metrics().replay_errors, 1u);
}

TEST_F(DbBroadcastTest, MoreLiveMessagesThanAJoinMayHoldFailTheJoinRatherThanLoseOne) {
  auto c = client();
  c->send(join("room", "1", private_config(replay(0, 5))));
  std::vector<RowChange> many;
  for (int i = 0; i < 9; ++i) {
    many.push_back(message_insert("room", "e", json::object(), true, "m" + std::to_string(i)));
  }
  deliver(std::move(many));
  store.answer(0, {});
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(reason(msgs[0]), "UnableToReplayMessages: Realtime was unable to replay messages");
  EXPECT_EQ(hub.metrics().drops_for(drop::kReplayHeldOverflow), 1u);
}

TEST_F(DbBroadcastTest, LeavingOrJoiningAgainWhileTheQueryRunsDropsItsAnswer) {
  auto c = client();
  c->send(join("room", "1", private_config(replay(0, 5))));
  c->send(Message{"1", "2", "realtime:room", "phx_leave", json::object()});
  c->io.take();
  store.answer(0, {{"m1", "old", "{}"}});
  EXPECT_TRUE(c->io.frames.empty());
  EXPECT_EQ(c->conn->channel_count(), 0u);

  c->send(join("room", "3", private_config(replay(0, 5))));
  c->send(join("room", "4", private_config(replay(0, 5))));
  store.answer(1, {{"m1", "old", "{}"}});
  EXPECT_TRUE(c->io.frames.empty()) << "the first join's answer belongs to nobody now";
  store.answer(2, {{"m1", "old", "{}"}});
  auto msgs = c->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].ref, "4");
}

// The attackers: a user the policies refuse cannot join the private topic, and one allowed only its
// presence neither receives its database broadcasts nor replays them.
TEST_F(DbBroadcastTest, OnlyUsersThePoliciesLetReadBroadcastsGetDatabaseMessagesOrReplays) {
  auto member = client();
  auto stranger = client(Vsn::v2, "authenticated", "stranger");
  auto watcher = client(Vsn::v2, "authenticated", "watcher");
  member->send(join("room", "1", private_config()));
  stranger->send(join("room", "1", private_config()));
  watcher->send(join("room", "1", private_config()));
  auto refused = stranger->io.take();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(reason(refused[0]),
            "Unauthorized: You do not have permissions to read from this Channel topic: room");
  ASSERT_EQ(watcher->io.take().size(), 1u);  // joined: presence read is enough for a join
  member->io.frames.clear();

  deliver({message_insert("room", "secret", json::object{{"n", 1}}, true, "m1")});
  EXPECT_EQ(broadcasts(member->io), (std::vector<std::string>{"secret m1"}));
  EXPECT_TRUE(stranger->io.frames.empty());
  EXPECT_TRUE(watcher->io.frames.empty());

  // A replay needs the broadcast read right, checked before the replay's parameters.
  watcher->send(join("room2", "2", private_config(replay(0, 5))));
  watcher->send(join("room3", "3", private_config(json::object{{"since", "x"}})));
  auto msgs = watcher->io.take();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(reason(msgs[0]),
            "Unauthorized: You do not have permissions to read from this Channel topic: room2");
  EXPECT_EQ(reason(msgs[1]),
            "Unauthorized: You do not have permissions to read from this Channel topic: room3");
  stranger->send(join("room", "4", private_config(replay(0, 5))));
  auto again = stranger->io.take();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(reason(again[0]),
            "Unauthorized: You do not have permissions to read from this Channel topic: room");
  EXPECT_TRUE(store.replays.empty()) << "nothing was read for them";
}

TEST_F(DbBroadcastTest, ASocketClosedWhileItsReplayRunsLeavesNothingBehind) {
  auto c = client();
  c->send(join("room", "1", private_config(replay(0, 5))));
  c.reset();
  store.answer(0, {{"m1", "old", "{}"}});
  auto other = client();
  other->send(join("room", "1", private_config()));
  other->io.frames.clear();
  deliver({message_insert("room", "e", json::object(), true, "m2")});
  EXPECT_EQ(broadcasts(other->io), (std::vector<std::string>{"e m2"}));
}

}  // namespace
}  // namespace rtsync::server::realtime
