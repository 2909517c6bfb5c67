// Private channels against real PostgreSQL policies on realtime.messages and a real server over
// websockets (docs/private-channels.md): who may join, receive and send, token refreshes, the
// cached rights, PostgreSQL going away during a join, private_only, and the REST API.
#include <gtest/gtest.h>

#include <thread>

#include "realtime_helpers.hpp"

namespace rtsync::testkit {
namespace {

using protocol::Message;
using protocol::Vsn;

const std::string kAlice = "11111111-1111-1111-1111-111111111111";  // member, sends
const std::string kBob = "22222222-2222-2222-2222-222222222222";    // member, may not send
const std::string kEve = "66666666-6666-6666-6666-666666666666";    // not a member (attacker)

// Policies as Supabase's docs write them: members of a topic receive its broadcasts, senders
// among them also its presence, and only senders may send.
constexpr const char* kPolicies = R"sql(
  CREATE TABLE public.room_members (
    topic text NOT NULL, user_id uuid NOT NULL, can_send boolean NOT NULL DEFAULT true,
    PRIMARY KEY (topic, user_id));
  GRANT SELECT ON public.room_members TO authenticated;
  INSERT INTO public.room_members VALUES
    ('room', '11111111-1111-1111-1111-111111111111', true),
    ('room', '22222222-2222-2222-2222-222222222222', false);

  CREATE POLICY "members receive" ON realtime.messages FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.room_members m
                   WHERE m.topic = (SELECT realtime.topic()) AND m.user_id = (SELECT auth.uid())
                     AND (realtime.messages.extension = 'broadcast' OR m.can_send)));
  CREATE POLICY "senders send" ON realtime.messages FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM public.room_members m
                        WHERE m.topic = (SELECT realtime.topic())
                          AND m.user_id = (SELECT auth.uid()) AND m.can_send));
)sql";

const std::string kNoRead =
    "Unauthorized: You do not have permissions to read from this Channel topic: room";

json::object private_config(bool self = false, bool ack = false, bool presence = false) {
  return json::object{{"broadcast", json::object{{"self", self}, {"ack", ack}}},
                      {"presence", json::object{{"key", ""}, {"enabled", presence}}},
                      {"postgres_changes", json::array{}},
                      {"private", true}};
}

std::unique_ptr<TestStack> stack_with_policies(StackOptions o = {}) {
  auto s = start_stack(std::move(o));
  if (!s) return nullptr;
  auto r = s->sql(kPolicies);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.ok() ? std::move(s) : nullptr;
}

std::string user(TestStack& s, const std::string& sub, std::chrono::seconds ttl = 1h) {
  return s.key("authenticated", ttl, sub);
}

std::string status_of(const std::optional<Message>& m) {
  return m ? std::string(core::find_string(m->payload, "status").value_or("")) : "<none>";
}
std::string reason_of(const std::optional<Message>& m) {
  if (!m) return "<none>";
  const auto* r = core::find(m->payload, "response");
  return r ? std::string(core::find_string(*r, "reason").value_or("")) : "";
}

Message broadcast(WsClient& c, const std::string& event,
                  const std::string& topic = "realtime:room") {
  return Message{
      c.join_ref(topic), c.next_ref(), topic, "broadcast",
      json::object{
          {"type", "broadcast"}, {"event", event}, {"payload", json::object{{"from", event}}}}};
}

TEST(PrivateChannels, ThePoliciesOnRealtimeMessagesDecideWhoJoinsReceivesAndSends) {
  auto s = stack_with_policies();
  ASSERT_TRUE(s);
  auto alice = connect(*s, s->anon_key(), Vsn::v2);
  auto bob = connect(*s, s->anon_key(), Vsn::v1);
  auto eve = connect(*s, s->anon_key(), Vsn::v2);
  auto pub = connect(*s, s->anon_key(), Vsn::v2);
  ASSERT_TRUE(alice && bob && eve && pub);

  EXPECT_EQ(status_of(alice->join("realtime:room", private_config(false, true), user(*s, kAlice))),
            "ok");
  EXPECT_EQ(status_of(bob->join("realtime:room", private_config(), user(*s, kBob))), "ok");
  // The attacker (a valid token of a non-member) and the anon key are refused with the exact text.
  EXPECT_EQ(reason_of(eve->join("realtime:room", private_config(), user(*s, kEve))), kNoRead);
  EXPECT_EQ(reason_of(eve->join("realtime:room", private_config())), kNoRead);
  // The public channel of the same name is another stream.
  EXPECT_EQ(status_of(pub->join("realtime:room", json::object{})), "ok");

  // Alice (a sender) broadcasts with ack: acknowledged, bob receives, nobody else does.
  auto m = broadcast(*alice, "from-alice");
  alice->send(m);
  auto ack = alice->wait_for([&](const Message& r) { return r.ref == m.ref; });
  EXPECT_EQ(status_of(ack), "ok");
  auto got = bob->wait_event("broadcast");
  ASSERT_TRUE(got);
  EXPECT_EQ(core::find_string(got->payload, "event"), "from-alice");
  EXPECT_TRUE(pub->quiet(300ms));
  EXPECT_TRUE(eve->quiet(100ms));

  // Bob may receive but not send: his broadcast is dropped without a reply even with ack.
  // (Rejoining with ack closes his earlier channel first.)
  ASSERT_EQ(status_of(bob->join("realtime:room", private_config(false, true), user(*s, kBob))),
            "ok");
  auto bm = broadcast(*bob, "from-bob");
  bob->send(bm);
  EXPECT_TRUE(bob->quiet(700ms)) << "no ack for an unauthorized broadcast";
  EXPECT_TRUE(alice->quiet(300ms));

  // A public broadcast does not reach the private members.
  pub->send(broadcast(*pub, "public"));
  EXPECT_TRUE(alice->quiet(300ms));

  // REST: alice's token may write the topic, eve's may not (still 202).
  auto ok = http_request(
      s->port(), "POST", "/realtime/v1/api/broadcast",
      R"({"messages":[{"topic":"room","event":"rest-alice","payload":{"k":1},"private":true}]})",
      {{"apikey", s->anon_key()}, {"Authorization", "Bearer " + user(*s, kAlice)}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value().status, 202u);
  auto rest = bob->wait_event("broadcast");
  ASSERT_TRUE(rest);
  EXPECT_EQ(core::find_string(rest->payload, "event"), "rest-alice");
  auto own = alice->wait_event("broadcast");  // REST messages reach every member, sender too
  ASSERT_TRUE(own);
  EXPECT_EQ(core::find_string(own->payload, "event"), "rest-alice");
  EXPECT_TRUE(pub->quiet(100ms));
  auto refused = http_request(
      s->port(), "POST", "/realtime/v1/api/broadcast/room/events/rest-eve?private=true", "{}",
      {{"apikey", s->anon_key()}, {"Authorization", "Bearer " + user(*s, kEve)}});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused.value().status, 202u);
  EXPECT_TRUE(bob->quiet(500ms));
  EXPECT_TRUE(alice->quiet(100ms));

  const auto metrics = s->server().metrics_text();
  EXPECT_NE(metrics.find("rtsync_channel_auth_refusals_total{reason=\"read\"} 2"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("rtsync_channel_auth_refusals_total{reason=\"broadcast_write\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("rtsync_channel_auth_refusals_total{reason=\"rest_write\"} 1"),
            std::string::npos);
  // Nothing of the probes was left in the table.
  EXPECT_EQ(s->sql_value("SELECT count(*) FROM realtime.messages").value_or("?"), "0");
}

TEST(PrivateChannels, ATokenRefreshToAUserWithoutTheRightClosesTheChannel) {
  auto s = stack_with_policies();
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  ASSERT_EQ(status_of(c->join("realtime:room", private_config(), user(*s, kAlice))), "ok");
  c->send(Message{c->join_ref("realtime:room"), c->next_ref(), "realtime:room", "access_token",
                  json::object{{"access_token", user(*s, kEve)}}});
  auto sys = c->wait_event("system");
  ASSERT_TRUE(sys);
  EXPECT_EQ(
      json::serialize(sys->payload),
      R"({"extension":"system","status":"error","message":"You do not have permissions to read from this Channel topic: room","channel":"room"})");
  auto close = c->wait_event("phx_close");
  ASSERT_TRUE(close);
  EXPECT_EQ(close->ref, c->join_ref("realtime:room"));

  // Alice with presence reads broadcasts and presence; bob's token keeps the broadcasts only: a
  // read the channel had is gone.
  ASSERT_EQ(
      status_of(c->join("realtime:room", private_config(false, false, true), user(*s, kAlice))),
      "ok");
  c->send(Message{c->join_ref("realtime:room"), c->next_ref(), "realtime:room", "access_token",
                  json::object{{"access_token", user(*s, kBob)}}});
  auto lost = c->wait_event("system");
  ASSERT_TRUE(lost);
  EXPECT_EQ(core::find_string(lost->payload, "message"),
            "You no longer have permission to read from this Channel topic: room");
  EXPECT_TRUE(c->wait_event("phx_close"));
}

TEST(PrivateChannels, TheRightsAreCachedPerChannelUntilTheTokenChanges) {
  auto s = stack_with_policies();
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  ASSERT_EQ(status_of(c->join("realtime:room", private_config(/*self=*/true), user(*s, kAlice))),
            "ok");
  c->send(broadcast(*c, "one"));
  ASSERT_TRUE(c->wait_event("broadcast")) << "alice may send";

  // The project revokes alice's right to send. The channel keeps the answer it has (Supabase's
  // per-channel cache)…
  REQUIRE_OK(
      s->sql("UPDATE public.room_members SET can_send = false WHERE user_id = '" + kAlice + "'"));
  c->send(broadcast(*c, "two"));
  auto cached = c->wait_event("broadcast");
  ASSERT_TRUE(cached);
  EXPECT_EQ(core::find_string(*core::find(cached->payload, "payload"), "from"), "two");
  // …until its token is replaced: then the policies are asked again.
  c->send(Message{c->join_ref("realtime:room"), c->next_ref(), "realtime:room", "access_token",
                  json::object{{"access_token", user(*s, kAlice, 2h)}}});
  c->send(broadcast(*c, "three"));
  EXPECT_TRUE(c->quiet(700ms)) << "the refreshed token may no longer send";
  const auto metrics = s->server().metrics_text();
  EXPECT_NE(metrics.find("rtsync_channel_auth_cache_hits_total 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("rtsync_channel_auth_checks_total{kind=\"write\"} 2"), std::string::npos);
}

TEST(PrivateChannels, PostgresDownDuringAPrivateJoinIsTheDatabaseReasonNotAHang) {
  auto s = stack_with_policies();
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  REQUIRE_OK(s->pg().stop());
  const auto start = std::chrono::steady_clock::now();
  auto refused = c->join("realtime:room", private_config(), user(*s, kAlice));
  ASSERT_TRUE(refused) << "no join reply while PostgreSQL is down";
  EXPECT_EQ(reason_of(refused),
            "UnableToConnectToProject: Realtime was unable to connect to the project database");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 6s);
  // The socket and public channels are unaffected.
  EXPECT_EQ(status_of(c->join("realtime:lobby", json::object{})), "ok");

  REQUIRE_OK(s->pg().start());
  std::optional<Message> reply;
  for (int i = 0; i < 20; ++i) {
    reply = c->join("realtime:room", private_config(), user(*s, kAlice));
    if (status_of(reply) == "ok") break;
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(status_of(reply), "ok") << reason_of(reply);
}

TEST(PrivateChannels, PrivateOnlyRefusesPublicJoins) {
  StackOptions o;
  o.limits.private_only = true;
  auto s = stack_with_policies(o);
  ASSERT_TRUE(s);
  auto c = connect(*s, s->anon_key());
  ASSERT_TRUE(c);
  EXPECT_EQ(reason_of(c->join("realtime:lobby", json::object{})),
            "PrivateOnly: This project only allows private channels");
  EXPECT_EQ(status_of(c->join("realtime:room", private_config(), user(*s, kAlice))), "ok");
}

}  // namespace
}  // namespace rtsync::testkit
