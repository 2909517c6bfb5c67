// Broadcast from Database end to end (docs/database-broadcast.md): throwaway PostgreSQL with the
// bootstrap's realtime schema, the server on port 0, real websockets. realtime.send from SQL
// reaches the private (or public) channel of its topic and nobody else, in commit order with
// postgres_changes, never as postgres_changes; replay of the last N with meta.replayed, exactly
// once under concurrent writes; retention deletes old rows without touching a replay in progress;
// who receives and replays private messages is decided by the policies on realtime.messages.
// (Most tests join private channels with the service key, which the policies' RLS never limits.)
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "realtime_helpers.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::testkit {
namespace {

using protocol::Message;
using protocol::Vsn;

json::object private_config(std::optional<json::object> replay = std::nullopt) {
  json::object broadcast{{"ack", false}, {"self", false}};
  if (replay) broadcast["replay"] = *replay;
  return json::object{{"broadcast", broadcast}, {"private", true}};
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_broadcast(const Message& m) {
  return m.event == "broadcast";
}

std::string meta_id(const Message& m) {
  const auto* meta = core::find(m.payload, "meta");
  auto id = meta ? core::find_string(*meta, "id") : std::nullopt;
  return id ? std::string(*id) : std::string();
}

bool replayed(const Message& m) {
  const auto* meta = core::find(m.payload, "meta");
  return meta && core::find_bool(*meta, "replayed").value_or(false);
}

// The value of a counter/gauge line `name value` in a /metrics text; -1 when absent.
double metric(const std::string& text, std::string_view name) {
  const std::string prefix = std::string(name) + " ";
  auto at = text.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + 1 + prefix.size()));
}

TEST(DatabaseBroadcast, RealtimeSendReachesThePrivateChannelOfItsTopicAndNobodyElse) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  auto priv2 = connect(*s, s->service_key(), Vsn::v2);
  auto priv1 = connect(*s, s->service_key(), Vsn::v1);
  auto pub = connect(*s, s->anon_key(), Vsn::v2);
  auto other = connect(*s, s->service_key(), Vsn::v2);
  ASSERT_TRUE(priv2 && priv1 && pub && other);
  ASSERT_TRUE(priv2->join("realtime:room", private_config()));
  ASSERT_TRUE(priv1->join("realtime:room", private_config()));
  ASSERT_TRUE(pub->join("realtime:room", json::object{}));
  ASSERT_TRUE(other->join("realtime:room2", private_config()));
  // The attacker: an anon key cannot join the private channel to listen in.
  auto sneak = connect(*s, s->anon_key(), Vsn::v2);
  ASSERT_TRUE(sneak);
  auto refused = sneak->join("realtime:room", private_config());
  ASSERT_TRUE(refused);
  EXPECT_EQ(core::find_string(refused->payload, "status"), "error");

  REQUIRE_OK(s->sql(R"(select realtime.send('{"n": 1}'::jsonb, 'ping', 'room'))"));
  const std::string id = s->sql_value("select id::text from realtime.messages").value();

  // vsn 2: a kind-4 frame with the row id as metadata.
  auto f = priv2->read(10s);
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->binary);
  auto k4 = protocol::decode_user_broadcast(f->data);
  ASSERT_TRUE(k4.ok());
  EXPECT_EQ(static_cast<unsigned char>(f->data[0]), 4u);
  EXPECT_EQ(k4->topic, "realtime:room");
  EXPECT_EQ(k4->user_event, "ping");
  // meta = {id, position} (the row's stream position, docs/resume.md).
  auto k4_meta = json::parse(k4->metadata);
  ASSERT_TRUE(k4_meta.is_object());
  EXPECT_EQ(k4_meta.at("id"), json::value(id));
  const auto& k4_pos = k4_meta.at("position");
  EXPECT_TRUE(k4_pos.at("epoch").is_string() && k4_pos.at("lsn").is_string() &&
              k4_pos.at("index") == json::value(1))
      << k4->metadata;
  EXPECT_EQ(json::parse(k4->payload), json::parse(R"({"n":1,"id":")" + id + R"("})"));
  // vsn 1: the JSON broadcast with meta.
  auto m1 = priv1->wait_event("broadcast", 10s);
  ASSERT_TRUE(m1);
  // The same position as the kind-4 frame's.
  ASSERT_TRUE(m1->payload.at("meta").as_object().contains("position"));
  EXPECT_EQ(m1->payload.at("meta").at("position"), k4_pos);
  m1->payload.as_object()["meta"].as_object().erase("position");
  EXPECT_EQ(m1->payload,
            json::parse(R"({"type":"broadcast","event":"ping","payload":{"n":1,"id":")" + id +
                        R"("},"meta":{"id":")" + id + R"("}})"));
  EXPECT_TRUE(pub->quiet(500ms)) << "a public channel of the same name gets no private row";
  EXPECT_TRUE(other->quiet(100ms));
  EXPECT_TRUE(sneak->quiet(100ms));

  // And the other way round: a public row reaches only the public channel.
  REQUIRE_OK(s->sql(R"(select realtime.send('{"n": 2}'::jsonb, 'pong', 'room', false))"));
  auto mp = pub->wait_event("broadcast", 10s);
  ASSERT_TRUE(mp);
  EXPECT_EQ(core::find_string(mp->payload, "event"), "pong");
  EXPECT_TRUE(priv2->quiet(500ms));
  EXPECT_TRUE(priv1->quiet(100ms));
  EXPECT_TRUE(sneak->quiet(100ms)) << "the refused joiner holds no channel";

  const auto text = s->server().metrics_text();
  EXPECT_EQ(metric(text, "rtsync_db_broadcasts_total"), 2);
  EXPECT_EQ(metric(text, "rtsync_db_broadcast_deliveries_total"), 3);
}

TEST(DatabaseBroadcast, MessagesArriveInCommitOrderWithPostgresChangesAndNeverAsThem) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.notes (id int primary key);
    grant select on public.notes to anon, service_role;
    alter publication supabase_realtime add table public.notes;
    -- the worst case: someone also put the messages table into the changes publication
    alter publication supabase_realtime add table realtime.messages;)"));
  auto c = connect(*s, s->service_key(), Vsn::v2);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->join_pg(
      "realtime:changes",
      json::array{binding("*", "notes"), json::object{{"event", "*"}, {"schema", "*"}},
                  json::object{{"event", "*"}, {"schema", "realtime"}, {"table", "messages"}}}));
  ASSERT_TRUE(c->join("realtime:room", private_config()));

  REQUIRE_OK(s->sql(R"(
    begin;
    insert into public.notes values (1);
    select realtime.send('{}'::jsonb, 'a', 'room');
    insert into public.notes values (2);
    commit;
    select realtime.send('{}'::jsonb, 'b', 'room');
    insert into public.notes values (3);
    begin;
    select realtime.send('{}'::jsonb, 'c', 'room');
    insert into public.notes values (4);
    select realtime.send('{}'::jsonb, 'd', 'room');
    commit;
    delete from realtime.messages;
    insert into public.notes values (5);)"));
  std::vector<std::string> seen;
  while (seen.size() < 9) {
    auto m = c->wait_for(
        [](const Message& m) { return m.event == "broadcast" || m.event == "postgres_changes"; },
        10s);
    if (!m) break;
    if (m->event == "broadcast") {
      seen.push_back(std::string(*core::find_string(m->payload, "event")));
    } else {
      auto ev = protocol::parse_change_event(m->payload);
      ASSERT_TRUE(ev.ok());
      seen.push_back(ev->data.table + " " + ev->data.type +
                     (ev->data.record ? " " + json::serialize(ev->data.record->at("id")) : ""));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"notes INSERT 1", "a", "notes INSERT 2", "b",
                                            "notes INSERT 3", "c", "notes INSERT 4", "d",
                                            "notes INSERT 5"}));
  EXPECT_TRUE(c->quiet(500ms)) << "no postgres_changes of realtime.messages, not even its deletes";
}

TEST(DatabaseBroadcast, ReplaySendsTheLastNStoredMessagesWithReplayedThenLiveOnes) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(select realtime.send('{"n": 0}'::jsonb, 'old', 'room'))"));
  std::this_thread::sleep_for(20ms);
  const auto since = now_ms();
  std::this_thread::sleep_for(20ms);
  for (int i = 1; i <= 5; ++i) {
    REQUIRE_OK(s->sql("select realtime.send('{\"n\": " + std::to_string(i) +
                      "}'::jsonb, 'tick', 'room')"));
  }
  REQUIRE_OK(s->sql(R"(
    select realtime.send('{"n": 90}'::jsonb, 'public', 'room', false);
    select realtime.send('{"n": 91}'::jsonb, 'elsewhere', 'room2');)"));
  // Each round's live message becomes part of the next round's replay.
  int newest = 5;
  for (Vsn vsn : {Vsn::v2, Vsn::v1}) {
    auto stored = s->sql_value(
        "select string_agg(id::text, ',' order by inserted_at) from realtime.messages "
        "where topic = 'room' and private and (payload->>'n')::int > " +
        std::to_string(newest - 3));
    ASSERT_TRUE(stored.ok());
    auto c = connect(*s, s->service_key(), vsn);
    ASSERT_TRUE(c);
    auto reply =
        c->join("realtime:room", private_config(json::object{{"since", since}, {"limit", 3}}));
    ASSERT_TRUE(reply);
    EXPECT_EQ(core::find_string(reply->payload, "status"), "ok") << json::serialize(reply->payload);
    std::vector<std::string> ids, ns;
    for (int i = 0; i < 3; ++i) {
      auto m = c->wait_for(is_broadcast, 10s);
      ASSERT_TRUE(m);
      EXPECT_TRUE(replayed(*m));
      EXPECT_EQ(core::find_string(m->payload, "event"), "tick");
      ids.push_back(meta_id(*m));
      ns.push_back(json::serialize(m->payload.at("payload").at("n")));
      // A channel push: vsn 2 frames carry the join_ref.
      if (vsn == Vsn::v2) {
        EXPECT_EQ(m->join_ref, c->join_ref("realtime:room"));
      }
    }
    EXPECT_EQ(ns, (std::vector<std::string>{std::to_string(newest - 2), std::to_string(newest - 1),
                                            std::to_string(newest)}));
    EXPECT_EQ(ids[0] + "," + ids[1] + "," + ids[2], stored.value());
    EXPECT_TRUE(c->quiet(300ms)) << "nothing else was stored for this channel since then";

    ++newest;
    REQUIRE_OK(s->sql("select realtime.send('{\"n\": " + std::to_string(newest) +
                      "}'::jsonb, 'tick', 'room')"));
    auto live = c->wait_for(is_broadcast, 10s);
    ASSERT_TRUE(live);
    EXPECT_FALSE(replayed(*live));
    EXPECT_EQ(json::serialize(live->payload.at("payload").at("n")), std::to_string(newest));
  }

  // The reference's refusals.
  auto c = connect(*s, s->service_key(), Vsn::v2);
  ASSERT_TRUE(c);
  auto pub =
      c->join("realtime:room",
              json::object{{"broadcast", json::object{{"replay", json::object{{"since", 0}}}}}});
  ASSERT_TRUE(pub);
  EXPECT_EQ(
      json::serialize(pub->payload),
      R"({"status":"error","response":{"reason":"UnableToReplayMessages: Replay is not allowed for public channels"}})");
  auto bad = c->join("realtime:room2", private_config(json::object{{"since", "now"}}));
  ASSERT_TRUE(bad);
  EXPECT_EQ(
      json::serialize(bad->payload),
      R"({"status":"error","response":{"reason":"UnableToReplayMessages: Replay params are not valid"}})");
}

TEST(DatabaseBroadcast, AReplayThatCannotReadTheStoreRefusesTheJoin) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  // The store's statement cannot run: a column it reads is gone (a broken database, as far as
  // replay is concerned; the channel policies' probe does not read it).
  REQUIRE_OK(s->sql("alter table realtime.messages rename column event to event_gone"));
  auto c = connect(*s, s->service_key(), Vsn::v2);
  ASSERT_TRUE(c);
  auto reply = c->join("realtime:room", private_config(json::object{{"since", 0}}));
  ASSERT_TRUE(reply);
  EXPECT_EQ(
      json::serialize(reply->payload),
      R"({"status":"error","response":{"reason":"UnableToReplayMessages: Realtime was unable to replay messages"}})");
  EXPECT_EQ(metric(s->server().metrics_text(), "rtsync_replay_errors_total"), 1);
  // Others keep being served.
  ASSERT_TRUE(c->join("realtime:room", private_config()));
}

// Joins with replay while a writer keeps sending: every client gets each message once, in order,
// the replayed ones first, and nothing committed after its join is missing.
TEST(DatabaseBroadcast, ReplayUnderConcurrentWritesSendsEachMessageOnceInOrder) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  constexpr int kMessages = 400;
  constexpr int kClients = 6;
  std::atomic<int> written{0};
  std::thread writer([&] {
    auto conn = server::pg::Connection::open(s->conninfo());
    ASSERT_TRUE(conn.ok());
    for (int i = 1; i <= kMessages; ++i) {
      auto r = conn.value().exec(
          "select realtime.send(jsonb_build_object('n', $1::int), 'tick', 'room')",
          {std::to_string(i)});
      ASSERT_TRUE(r.ok()) << r.error().describe();
      written = i;
    }
  });
  std::vector<std::unique_ptr<WsClient>> clients;
  std::vector<int> written_at_join;
  for (int k = 0; k < kClients; ++k) {
    while (written.load() < (k + 1) * kMessages / (kClients + 1))
      std::this_thread::yield();
    auto c = connect(*s, s->service_key(), k % 2 ? Vsn::v1 : Vsn::v2);
    ASSERT_TRUE(c);
    auto reply = c->join("realtime:room", private_config(json::object{{"since", 0}}));
    ASSERT_TRUE(reply);
    ASSERT_EQ(core::find_string(reply->payload, "status"), "ok");
    written_at_join.push_back(written.load());
    clients.push_back(std::move(c));
  }
  writer.join();
  for (int k = 0; k < kClients; ++k) {
    std::vector<int> ns;
    std::size_t replays = 0;
    bool live_seen = false;
    while (ns.empty() || ns.back() != kMessages) {
      auto m = clients[k]->wait_for(is_broadcast, 15s);
      ASSERT_TRUE(m) << "client " << k << " stopped at " << (ns.empty() ? 0 : ns.back());
      ns.push_back(static_cast<int>(m->payload.at("payload").at("n").to_number<std::int64_t>()));
      if (replayed(*m)) {
        EXPECT_FALSE(live_seen) << "client " << k << ": a replayed message after a live one";
        ++replays;
      } else {
        live_seen = true;
      }
    }
    EXPECT_LE(replays, 25u);
    EXPECT_EQ(replays, 25u) << "client " << k << " joined after " << written_at_join[k]
                            << " messages";
    for (std::size_t i = 1; i < ns.size(); ++i) {
      ASSERT_EQ(ns[i], ns[i - 1] + 1)
          << "client " << k << ": a gap or a duplicate after " << ns[i - 1] << " (message " << i
          << " of " << ns.size() << ", " << replays << " replayed, first " << ns.front()
          << ", written at join " << written_at_join[k] << ")";
    }
    EXPECT_LE(ns.front(), written_at_join[k] + 1) << "client " << k << " missed messages";
    EXPECT_TRUE(clients[k]->quiet(200ms));
  }
}

// Retention through the server: rows older than the period go, newer ones stay, replays then see
// only what was kept. (That a replay already asked for reads the rows as they were, whatever
// retention does meanwhile, is MessageStoreTest.AReplayAskedForBeforeADeleteReadsTheRowsAsTheyWere:
// both run on the store's one pipelined connection, in the order they were asked for.)
TEST(DatabaseBroadcast, RetentionDeletesOnlyMessagesOlderThanTheRetentionPeriod) {
  StackOptions o;
  o.configure = [](server::ServerOptions& so) { so.message_retention = std::chrono::hours(1); };
  auto s = start_stack(o);
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    insert into realtime.messages (topic, extension, event, payload, private, inserted_at)
    select 'room', 'broadcast', 'old', jsonb_build_object('n', g), true,
           localtimestamp - interval '2 hours' + g * interval '1 second'
    from generate_series(1, 3) g;
    insert into realtime.messages (topic, extension, event, payload, private, inserted_at)
    values ('room', 'broadcast', 'recent', '{"n": 4}', true, localtimestamp - interval '50 minutes');)"));
  const auto three_hours_ago = now_ms() - 3 * 3600 * 1000;
  auto replay_events = [&](Vsn vsn) {
    std::vector<std::string> events;
    auto c = connect(*s, s->service_key(), vsn);
    if (!c) return events;
    auto reply = c->join("realtime:room", private_config(json::object{{"since", three_hours_ago}}));
    EXPECT_TRUE(reply && core::find_string(reply->payload, "status") == "ok");
    while (auto m = c->wait_for(is_broadcast, 500ms)) {
      EXPECT_TRUE(replayed(*m));
      events.push_back(std::string(*core::find_string(m->payload, "event")));
    }
    return events;
  };
  EXPECT_EQ(replay_events(Vsn::v2), (std::vector<std::string>{"old", "old", "old", "recent"}));

  auto deleted = s->server().run_message_retention();
  ASSERT_TRUE(deleted.ok()) << deleted.error().describe();
  EXPECT_EQ(deleted.value(), 3u);
  EXPECT_EQ(s->sql_value("select string_agg(event, ',') from realtime.messages").value(), "recent");
  EXPECT_EQ(metric(s->server().metrics_text(), "rtsync_retention_deleted_total"), 3);
  EXPECT_EQ(replay_events(Vsn::v1), (std::vector<std::string>{"recent"}));
  // Nothing left to do on a second run.
  EXPECT_EQ(s->server().run_message_retention().value(), 0u);
}

// Private-channel authorization decides who gets database messages: a member of the room (by the
// project's SELECT policy on realtime.messages) receives and replays them; a non-member is refused;
// a user allowed only the topic's presence joins but gets no broadcast and no replay.
TEST(DatabaseBroadcast, PolicyAuthorizedUsersReceiveAndReplayAndOthersGetNothing) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  const std::string alice = "a1111111-1111-4111-8111-111111111111";
  const std::string bob = "b2222222-2222-4222-8222-222222222222";
  const std::string carol = "c3333333-3333-4333-8333-333333333333";
  REQUIRE_OK(s->sql(R"(
    create table public.room_members (room text not null, user_id uuid not null);
    grant select on public.room_members to authenticated;
    insert into public.room_members values ('room-a', ')" +
                    alice + R"(');
    create policy members_read on realtime.messages for select to authenticated using (
      extension = 'broadcast' and exists (
        select 1 from public.room_members r
        where r.room = (select realtime.topic()) and r.user_id = (select auth.uid())));
    create policy carol_sees_presence on realtime.messages for select to authenticated using (
      extension = 'presence' and (select auth.uid()) = ')" +
                    carol + R"('::uuid);)"));
  const auto key_of = [&](const std::string& sub) {
    return s->key("authenticated", std::chrono::hours(1), sub);
  };
  auto a = connect(*s, s->anon_key(), Vsn::v2);
  auto b = connect(*s, s->anon_key(), Vsn::v1);
  auto c = connect(*s, s->anon_key(), Vsn::v2);
  ASSERT_TRUE(a && b && c);
  auto ra = a->join("realtime:room-a", private_config(), key_of(alice));
  ASSERT_TRUE(ra);
  EXPECT_EQ(core::find_string(ra->payload, "status"), "ok") << json::serialize(ra->payload);
  auto rb = b->join("realtime:room-a", private_config(), key_of(bob));
  ASSERT_TRUE(rb);
  EXPECT_EQ(
      json::serialize(rb->payload),
      R"({"status":"error","response":{"reason":"Unauthorized: You do not have permissions to read from this Channel topic: room-a"}})");
  ASSERT_TRUE(b->join("realtime:room-a", json::object{}, key_of(bob)));  // the public one
  auto rc = c->join("realtime:room-a",
                    json::object{{"presence", json::object{{"enabled", true}}}, {"private", true}},
                    key_of(carol));
  ASSERT_TRUE(rc);
  EXPECT_EQ(core::find_string(rc->payload, "status"), "ok") << json::serialize(rc->payload);

  REQUIRE_OK(s->sql(R"(select realtime.send('{"n": 1}'::jsonb, 'ping', 'room-a'))"));
  auto got = a->wait_for(is_broadcast, 10s);
  ASSERT_TRUE(got);
  EXPECT_EQ(core::find_string(got->payload, "event"), "ping");
  EXPECT_FALSE(meta_id(*got).empty());
  EXPECT_TRUE(b->quiet(500ms)) << "neither the refused private join nor the public channel";
  EXPECT_FALSE(c->wait_for(is_broadcast, 300ms)) << "presence read is no broadcast read";

  // Replay: the member gets the stored message; the others are refused before anything is read.
  auto a2 = connect(*s, s->anon_key(), Vsn::v1);
  ASSERT_TRUE(a2);
  ASSERT_TRUE(
      a2->join("realtime:room-a", private_config(json::object{{"since", 0}}), key_of(alice)));
  auto replayed_msg = a2->wait_for(is_broadcast, 10s);
  ASSERT_TRUE(replayed_msg);
  EXPECT_TRUE(replayed(*replayed_msg));
  EXPECT_EQ(meta_id(*replayed_msg), meta_id(*got));
  for (const auto& [who, client] : {std::pair{carol, c.get()}, std::pair{bob, b.get()}}) {
    auto r =
        client->join("realtime:room-a", private_config(json::object{{"since", 0}}), key_of(who));
    ASSERT_TRUE(r);
    EXPECT_EQ(
        json::serialize(r->payload),
        R"({"status":"error","response":{"reason":"Unauthorized: You do not have permissions to read from this Channel topic: room-a"}})");
  }
  EXPECT_TRUE(b->quiet(300ms));
}

// The demo schema (db/0006): a task change goes to its project's private topic, which the
// project's owner may read and another user may not.
TEST(DatabaseBroadcast, TheDemoTriggerSendsTaskChangesToTheProjectOwnerOnly) {
  StackOptions o;
  o.migrated = true;
  auto s = start_stack(o);
  ASSERT_TRUE(s);
  const std::string owner = "d4444444-4444-4444-8444-444444444444";
  const std::string other = "e5555555-5555-4555-8555-555555555555";
  const std::string p1 = "f6666666-6666-4666-8666-666666666666";
  const std::string p2 = "f7777777-7777-4777-8777-777777777777";
  REQUIRE_OK(s->sql(R"(
    insert into auth.users (id, email, encrypted_password) values
      (')" + owner + R"(', 'owner@example.com', 'x'), (')" +
                    other + R"(', 'other@example.com', 'x');
    insert into public.projects (id, name, user_id) values
      (')" + p1 + R"(', 'mine', ')" +
                    owner + R"('), (')" + p2 + R"(', 'theirs', ')" + other + R"(');)"));
  auto mine = connect(*s, s->anon_key(), Vsn::v2);
  auto theirs = connect(*s, s->anon_key(), Vsn::v2);
  ASSERT_TRUE(mine && theirs);
  auto ok = mine->join("realtime:project:" + p1, private_config(),
                       s->key("authenticated", std::chrono::hours(1), owner));
  ASSERT_TRUE(ok);
  EXPECT_EQ(core::find_string(ok->payload, "status"), "ok") << json::serialize(ok->payload);
  auto refused = theirs->join("realtime:project:" + p1, private_config(),
                              s->key("authenticated", std::chrono::hours(1), other));
  ASSERT_TRUE(refused);
  EXPECT_EQ(core::find_string(refused->payload, "status"), "error");

  REQUIRE_OK(s->sql(R"(
    insert into public.tasks (id, task_type, params, project_id) values
      ('a8888888-8888-4888-8888-888888888888', 'render', '{}', ')" +
                    p1 + R"('),
      ('a9999999-9999-4999-8999-999999999999', 'render', '{}', ')" +
                    p2 + R"(');
    update public.tasks set status = 'In Progress' where project_id = ')" +
                    p1 + R"(';)"));
  std::vector<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    auto m = mine->wait_for(is_broadcast, 10s);
    ASSERT_TRUE(m);
    const auto& payload = m->payload.at("payload");
    EXPECT_EQ(payload.at("table").as_string(), "tasks");
    EXPECT_EQ(payload.at("schema").as_string(), "public");
    EXPECT_EQ(payload.at("record").at("project_id").as_string(), p1);
    seen.push_back(std::string(*core::find_string(m->payload, "event")) + " " +
                   std::string(payload.at("record").at("status").as_string()));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"INSERT Queued", "UPDATE In Progress"}));
  EXPECT_TRUE(mine->quiet(500ms)) << "nothing of the other user's project";
  EXPECT_TRUE(theirs->quiet(100ms));
}

}  // namespace
}  // namespace rtsync::testkit
