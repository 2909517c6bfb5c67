// Runs the realtime-js conformance script (realtime_js.mjs) with Node against an in-process
// server and a throwaway PostgreSQL, once per protocol version.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "node_runner.hpp"
#include "rtsync/client/transport/beast_transport.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "test_stack.hpp"

namespace rtsync::testkit {
namespace {

using conformance::run_command;
using conformance::shell_quote;

void conformance(const std::string& vsn) {
  auto stack = TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  auto setup = s.sql(R"(
    create table if not exists public.conf_items (id serial primary key, kind text, n int);
    grant select on public.conf_items to anon, authenticated;
    alter publication supabase_realtime add table public.conf_items;)");
  ASSERT_TRUE(setup.ok()) << setup.error().describe();

  auto bad = server::auth::sign_hs256(json::object{{"role", "anon"}, {"exp", 4102444800}},
                                      "some-other-secret-entirely-0123456789");
  std::string pg_url =
      "postgres://postgres@127.0.0.1:" + std::to_string(s.pg().port()) + "/postgres";
  std::string env = "RTSYNC_HTTP=" + shell_quote(s.server().http_url()) +
                    " ANON_KEY=" + shell_quote(s.anon_key()) +
                    " SERVICE_KEY=" + shell_quote(s.service_key()) + " USER_KEY=" +
                    shell_quote(s.key("authenticated", std::chrono::hours(1),
                                      "44444444-4444-4444-4444-444444444444")) +
                    " BAD_KEY=" + shell_quote(bad) + " PG_URL=" + shell_quote(pg_url) +
                    " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r = run_command(env + " node " + shell_quote(RTSYNC_CONFORMANCE_DIR "/realtime_js.mjs") +
                       " " + vsn);
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
}

// Presence: two realtime-js clients track in one channel (presence_js.mjs).
void presence_conformance(const std::string& vsn) {
  auto stack = TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  std::string env = "RTSYNC_HTTP=" + shell_quote(s.server().http_url()) +
                    " ANON_KEY=" + shell_quote(s.anon_key()) +
                    " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r = run_command(env + " node " + shell_quote(RTSYNC_CONFORMANCE_DIR "/presence_js.mjs") +
                       " " + vsn);
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
}

// Private channels: realtime-js clients against Supabase-style policies on realtime.messages
// (private_js.mjs): joins allowed and refused with the exact reason, broadcasts between
// authorized members, an unauthorized sender's broadcast not delivered, a revoked token's channel
// ended with the system error and CLOSED.
void private_conformance(const std::string& vsn) {
  auto stack = TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  const std::string topic = "private-room-" + vsn.substr(0, 1);
  const std::string alice = "aaaaaaaa-0000-0000-0000-000000000001";
  const std::string bob = "bbbbbbbb-0000-0000-0000-000000000002";
  const std::string carol = "cccccccc-0000-0000-0000-000000000003";
  const std::string eve = "eeeeeeee-0000-0000-0000-000000000004";
  auto setup = s.sql(R"(
    create table public.room_members (topic text, user_id uuid, can_send boolean,
                                      primary key (topic, user_id));
    grant select on public.room_members to authenticated;
    insert into public.room_members values
      (')" + topic + "', '" +
                     alice + "', true), ('" + topic + "', '" + carol + "', true), ('" + topic +
                     "', '" + bob + R"(', false);
    create policy "members receive" on realtime.messages for select to authenticated
      using (exists (select 1 from public.room_members m
                     where m.topic = (select realtime.topic()) and m.user_id = (select auth.uid())));
    create policy "senders send" on realtime.messages for insert to authenticated
      with check (exists (select 1 from public.room_members m
                          where m.topic = (select realtime.topic())
                            and m.user_id = (select auth.uid()) and m.can_send));)");
  ASSERT_TRUE(setup.ok()) << setup.error().describe();
  auto user = [&](const std::string& sub) {
    return shell_quote(s.key("authenticated", std::chrono::hours(1), sub));
  };
  std::string env = "RTSYNC_HTTP=" + shell_quote(s.server().http_url()) +
                    " ANON_KEY=" + shell_quote(s.anon_key()) + " ALICE_KEY=" + user(alice) +
                    " BOB_KEY=" + user(bob) + " CAROL_KEY=" + user(carol) +
                    " EVE_KEY=" + user(eve) + " TOPIC=" + shell_quote(topic) +
                    " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r = run_command(env + " node " + shell_quote(RTSYNC_CONFORMANCE_DIR "/private_js.mjs") +
                       " " + vsn);
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
}

// Broadcast from Database and replay (db_broadcast_js.mjs).
void db_broadcast_conformance(const std::string& vsn) {
  auto stack = TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  std::string pg_url =
      "postgres://postgres@127.0.0.1:" + std::to_string(s.pg().port()) + "/postgres";
  // The member is let read by a policy the script writes; the stranger is not.
  const std::string member = "55555555-5555-4555-8555-555555555555";
  std::string env =
      "RTSYNC_HTTP=" + shell_quote(s.server().http_url()) +
      " ANON_KEY=" + shell_quote(s.anon_key()) + " MEMBER_ID=" + member +
      " MEMBER_KEY=" + shell_quote(s.key("authenticated", std::chrono::hours(1), member)) +
      " STRANGER_KEY=" +
      shell_quote(
          s.key("authenticated", std::chrono::hours(1), "66666666-6666-4666-8666-666666666666")) +
      " PG_URL=" + shell_quote(pg_url) + " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r = run_command(env + " node " + shell_quote(RTSYNC_CONFORMANCE_DIR "/db_broadcast_js.mjs") +
                       " " + vsn);
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(RealtimeJsConformance, PrivateChannelsVsn1) {
  private_conformance("1.0.0");
}
TEST(RealtimeJsConformance, PrivateChannelsVsn2) {
  private_conformance("2.0.0");
}
TEST(RealtimeJsConformance, DatabaseBroadcastVsn1) {
  db_broadcast_conformance("1.0.0");
}
TEST(RealtimeJsConformance, DatabaseBroadcastVsn2) {
  db_broadcast_conformance("2.0.0");
}

TEST(RealtimeJsConformance, PresenceVsn1) {
  presence_conformance("1.0.0");
}
TEST(RealtimeJsConformance, PresenceVsn2) {
  presence_conformance("2.0.0");
}

// rtsync's client tracks in the same channel as two realtime-js clients; when the script prints
// realtime-js's presenceState(), rtsync's client must hold the same presences.
void mixed_presence(protocol::Vsn vsn) {
  auto stack = TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  const std::string topic = std::string("presence-mixed-") + (vsn == protocol::Vsn::v1 ? "1" : "2");

  core::EventLoop loop;
  loop.start();
  std::unique_ptr<client::RealtimeSocket> socket;
  std::shared_ptr<client::RealtimeChannel> channel;
  std::vector<core::Subscription> subs;
  loop.run_sync([&] {
    client::SocketOptions o;
    o.url = s.server().http_url();
    o.api_key = s.anon_key();
    o.vsn = vsn;
    socket = client::make_realtime_socket(loop, o);
    client::ChannelOptions co;
    co.presence_key = "rtsync";
    co.presence_enabled = true;
    channel = socket->channel(topic, co);
    // Like realtime-js, the client does not re-track after a rejoin: track on every SUBSCRIBED.
    ASSERT_TRUE(channel
                    ->subscribe([&](client::SubscribeStatus st, auto) {
                      if (st == client::SubscribeStatus::subscribed)
                        channel->track(json::object{{"client", "rtsync"}});
                    })
                    .ok());
  });
  auto ours = [&] {
    json::object o;
    loop.run_sync([&] {
      for (const auto& [key, ps] : channel->presence_state()) {
        json::array a;
        for (const auto& p : ps)
          a.push_back(p);
        o[key] = std::move(a);
      }
    });
    return json::value(o);
  };

  std::string env = "RTSYNC_HTTP=" + shell_quote(s.server().http_url()) +
                    " ANON_KEY=" + shell_quote(s.anon_key()) +
                    " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR) +
                    " OTHER_KEY=rtsync TOPIC=" + shell_quote(topic);
  std::string cmd = env + " node " + shell_quote(RTSYNC_CONFORMANCE_DIR "/presence_js.mjs") + " " +
                    std::string(protocol::to_string(vsn)) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  bool compared = false;
  char line[65536];
  while (fgets(line, sizeof line, p)) {
    output += line;
    std::string_view l(line);
    if (l.substr(0, 6) != "STATE ") continue;
    auto theirs = json::parse(l.substr(6));
    // Presence travels through the server: give rtsync's client a moment to apply the same diffs.
    json::value mine;
    for (int i = 0; i < 100; ++i) {
      mine = ours();
      if (mine == theirs) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Equal as JSON values (key order aside).
    EXPECT_TRUE(mine == theirs) << "rtsync: " << json::serialize(mine)
                                << "\nrealtime-js: " << json::serialize(theirs);
    EXPECT_TRUE(theirs.as_object().contains("alice"));
    EXPECT_TRUE(theirs.as_object().contains("rtsync"));
    compared = true;
  }
  const int st = pclose(p);
  std::cout << output;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << output;
  EXPECT_TRUE(compared) << output;
  loop.run_sync([&] {
    subs.clear();
    channel.reset();
    socket.reset();
  });
  loop.stop();
}

TEST(RealtimeJsConformance, RtsyncClientBesideRealtimeJsVsn1) {
  mixed_presence(protocol::Vsn::v1);
}
TEST(RealtimeJsConformance, RtsyncClientBesideRealtimeJsVsn2) {
  mixed_presence(protocol::Vsn::v2);
}

TEST(RealtimeJsConformance, Vsn1) {
  conformance("1.0.0");
}
TEST(RealtimeJsConformance, Vsn2) {
  conformance("2.0.0");
}

}  // namespace
}  // namespace rtsync::testkit
