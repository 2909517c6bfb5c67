// Realtime's REST broadcast API as an HTTP service (realtime::BroadcastEndpoint), without sockets:
// who may broadcast, what reaches a joined client (private topics: only what the sender may
// write), and the error answers.
#include "rtsync/server/realtime/broadcast_endpoint.hpp"

#include <gtest/gtest.h>

#include <optional>

#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/server/realtime/connection.hpp"
#include "unit/server_rt/fakes.hpp"

namespace rtsync::server::realtime {
namespace {

using namespace std::chrono_literals;
using namespace testing;

class BroadcastEndpointTest : public ::testing::Test {
 protected:
  BroadcastEndpointTest() : verifier(kSecret, 2s), hub(sched, verifier, &authz, limits()) {
    hub.on_stream_state(true, "");
  }
  static RealtimeLimits limits() {
    RealtimeLimits l;
    l.max_broadcast_payload_bytes = 64;
    return l;
  }
  std::string token(std::string role, std::string sub = "") {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(sched.wall_now().time_since_epoch());
    json::object claims{{"role", role}, {"exp", now.count() + 3600}};
    if (!sub.empty()) claims["sub"] = sub;
    return auth::sign_hs256(claims, kSecret);
  }
  // Starts a request; the answer lands in the returned slot when the endpoint gives it.
  std::shared_ptr<std::optional<http::HttpResponse>> start(std::string target, std::string body,
                                                           std::string bearer) {
    http::HttpRequest r;
    r.method = "POST";
    const auto q = target.find('?');
    r.target = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.headers["authorization"] = "Bearer " + bearer;
    r.body = std::move(body);
    auto out = std::make_shared<std::optional<http::HttpResponse>>();
    endpoint.handle(std::move(r), [out](http::HttpResponse res) { *out = std::move(res); });
    return out;
  }
  http::HttpResponse call(std::string method, std::string target, std::string body,
                          std::optional<std::string> bearer) {
    http::HttpRequest r;
    r.method = std::move(method);
    const auto q = target.find('?');
    r.target = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    if (bearer) r.headers["authorization"] = "Bearer " + *bearer;
    r.body = std::move(body);
    std::optional<http::HttpResponse> out;
    endpoint.handle(std::move(r), [&](http::HttpResponse res) { out = std::move(res); });
    EXPECT_TRUE(out.has_value()) << "the endpoint answers synchronously";
    return out.value_or(http::HttpResponse{0, {}, {}});
  }

  core::ManualScheduler sched;
  auth::JwtVerifier verifier;
  FakeAuthorizer authz;
  Hub hub;
  BroadcastEndpoint endpoint{hub};
};

TEST_F(BroadcastEndpointTest, MatchesBothPrefixes) {
  EXPECT_TRUE(endpoint.matches("/api/broadcast"));
  EXPECT_TRUE(endpoint.matches("/realtime/v1/api/broadcast"));
  EXPECT_TRUE(endpoint.matches("/realtime/v1/api/broadcast/room/events/hi"));
  EXPECT_FALSE(endpoint.matches("/rest/v1/tasks"));
  EXPECT_FALSE(endpoint.matches("/realtime/v1/websocket"));
}

TEST_F(BroadcastEndpointTest, AServiceRoleBatchReachesAJoinedClient) {
  FakeSession io(protocol::Vsn::v2);
  Connection conn(hub, io, protocol::Vsn::v2,
                  verifier.verify(token("anon"), sched.wall_now()).value());
  conn.on_text(
      protocol::encode_text(io.vsn, protocol::Message{"1", "1", "realtime:room", "phx_join",
                                                      json::object{{"config", json::object{}}}}));
  io.take();
  auto res = call("POST", "/realtime/v1/api/broadcast",
                  R"({"messages":[{"topic":"room","event":"hi","payload":{"n":1}}]})",
                  token("service_role"));
  EXPECT_EQ(res.status, 202);
  EXPECT_TRUE(res.body.empty());
  ASSERT_EQ(io.frames.size(), 1u);
  EXPECT_EQ(
      *io.frames[0].bytes,
      R"([null,null,"realtime:room","broadcast",{"type":"broadcast","event":"hi","payload":{"n":1}}])");
}

TEST_F(BroadcastEndpointTest, RefusesMissingAndForgedTokensAndOtherMethods) {
  const std::string batch = R"({"messages":[{"topic":"room","event":"hi","payload":{}}]})";
  EXPECT_EQ(call("POST", "/api/broadcast", batch, std::nullopt).status, 401);
  auto forged = call("POST", "/api/broadcast", batch,
                     auth::sign_hs256(json::object{{"role", "service_role"}, {"exp", 4102444800}},
                                      "another-secret-another-secret-0123456789"));
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(forged.body, R"({"message":"Unauthorized"})");
  EXPECT_EQ(call("GET", "/api/broadcast", "", token("service_role")).status, 405);
  // The apikey query parameter is a credential too.
  EXPECT_EQ(
      call("POST", "/api/broadcast?apikey=" + token("service_role"), batch, std::nullopt).status,
      202);
}

// As in Supabase, any token the project signed may broadcast to public topics — anon too (what
// realtime-js does when it sends before joining); a private message from anon goes only where a
// policy lets anon write, here nowhere: skipped, 202 all the same.
TEST_F(BroadcastEndpointTest, AnAnonTokenBroadcastsToPublicTopicsButNotToPrivateOnes) {
  FakeChannelAuthorizer channels(sched);
  channels.rule = [](const ChannelCheck& c) -> ChannelAuthResult {
    const bool anon = c.auth.role == "anon";
    return ChannelRights{!anon, !anon, !anon, !anon};
  };
  hub.set_channel_authorizer(&channels);
  FakeSession pub(protocol::Vsn::v2), priv(protocol::Vsn::v2);
  Connection listener(hub, pub, protocol::Vsn::v2,
                      verifier.verify(token("anon"), sched.wall_now()).value());
  Connection member(hub, priv, protocol::Vsn::v2,
                    verifier.verify(token("authenticated", "alice"), sched.wall_now()).value());
  listener.on_text(
      protocol::encode_text(pub.vsn, protocol::Message{"1", "1", "realtime:room", "phx_join",
                                                       json::object{{"config", json::object{}}}}));
  member.on_text(protocol::encode_text(
      priv.vsn, protocol::Message{"1", "1", "realtime:room", "phx_join",
                                  json::object{{"config", json::object{{"private", true}}}}}));
  sched.run_ready();
  pub.take();
  priv.take();

  auto res = start("/api/broadcast",
                   R"({"messages":[{"topic":"room","event":"open","payload":{"n":1}},)"
                   R"({"topic":"room","event":"secret","payload":{"n":2},"private":true}]})",
                   token("anon"));
  sched.run_ready();
  ASSERT_TRUE(res->has_value());
  EXPECT_EQ((*res)->status, 202);
  auto got = pub.take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(core::find_string(got[0].payload, "event"), "open");
  EXPECT_TRUE(priv.frames.empty()) << "anon may not write the private topic";
}

TEST_F(BroadcastEndpointTest, BadBatchesAndOversizedPayloadsAreRefused) {
  const auto admin = token("service_role");
  EXPECT_EQ(call("POST", "/api/broadcast", "{}", admin).status, 422);
  EXPECT_EQ(call("POST", "/api/broadcast", R"({"messages":[{"topic":"room"}]})", admin).status,
            422);
  const std::string big(100, 'x');
  EXPECT_EQ(call("POST", "/api/broadcast/room/events/hi", "\"" + big + "\"", admin).status, 413);
  EXPECT_EQ(call("POST", "/api/broadcast/room/nope/hi", "{}", admin).status, 404);
  EXPECT_EQ(call("POST", "/api/broadcast/room/events/hi", R"({"n":1})", admin).status, 202);
}

// Private messages: sent only if the caller's token may INSERT into realtime.messages for the
// topic (asked once per topic of the request), otherwise skipped — 202 either way.
TEST_F(BroadcastEndpointTest, PrivateMessagesGoOutOnlyWhenTheSenderMayWriteTheTopic) {
  FakeChannelAuthorizer channels(sched);
  channels.rule = [](const ChannelCheck& c) -> ChannelAuthResult {
    const bool alice = c.auth.claims_json.find("\"alice\"") != std::string::npos;
    return ChannelRights{alice, alice, alice && c.topic == "room", false};
  };
  hub.set_channel_authorizer(&channels);
  FakeSession priv(protocol::Vsn::v2), pub(protocol::Vsn::v2);
  Connection reader(hub, priv, protocol::Vsn::v2,
                    verifier.verify(token("authenticated", "alice"), sched.wall_now()).value());
  Connection other(hub, pub, protocol::Vsn::v2,
                   verifier.verify(token("anon"), sched.wall_now()).value());
  reader.on_text(protocol::encode_text(
      priv.vsn, protocol::Message{"1", "1", "realtime:room", "phx_join",
                                  json::object{{"config", json::object{{"private", true}}}}}));
  other.on_text(
      protocol::encode_text(pub.vsn, protocol::Message{"1", "1", "realtime:room", "phx_join",
                                                       json::object{{"config", json::object{}}}}));
  sched.run_ready();
  priv.take();
  pub.take();
  channels.calls.clear();

  // Alice: her private message and a public one, to the same name.
  auto res =
      start("/api/broadcast",
            R"({"messages":[{"topic":"room","event":"secret","payload":{"n":1},"private":true},)"
            R"({"topic":"room","event":"open","payload":{"n":2}},)"
            R"({"topic":"room","event":"secret2","payload":{"n":3},"private":true}]})",
            token("authenticated", "alice"));
  // The public one went out at once; the answer waits for the one check of topic "room".
  ASSERT_EQ(pub.frames.size(), 1u);
  EXPECT_TRUE(priv.frames.empty());
  EXPECT_FALSE(res->has_value());
  ASSERT_EQ(channels.calls.size(), 1u);
  EXPECT_EQ(channels.calls[0].topic, "room");
  EXPECT_TRUE(channels.calls[0].write);
  sched.run_ready();
  ASSERT_TRUE(res->has_value());
  EXPECT_EQ((*res)->status, 202);
  auto got = priv.take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(core::find_string(got[0].payload, "event"), "secret");
  EXPECT_EQ(core::find_string(got[1].payload, "event"), "secret2");
  EXPECT_EQ(pub.take().size(), 1u);  // the private ones never reach the public channel

  // Eve (a valid token without the right) and alice on a topic she may not write: skipped, 202.
  auto eve = start("/api/broadcast/room/events/x?private=true", R"({"n":4})",
                   token("authenticated", "eve"));
  auto elsewhere =
      start("/api/broadcast",
            R"({"messages":[{"topic":"hall","event":"x","payload":{},"private":true}]})",
            token("authenticated", "alice"));
  sched.run_ready();
  ASSERT_TRUE(eve->has_value() && elsewhere->has_value());
  EXPECT_EQ((*eve)->status, 202);
  EXPECT_EQ((*elsewhere)->status, 202);
  EXPECT_TRUE(priv.frames.empty());
  EXPECT_EQ(hub.metrics().channel_refusals_for(auth_refusal::kRestWrite), 2u);
  EXPECT_EQ(hub.metrics().channel_auth_write_checks, 3u);

  // Without an authorizer (no PostgreSQL) private messages are skipped, still 202.
  hub.set_channel_authorizer(nullptr);
  auto none = start("/api/broadcast/room/events/x?private=true", "{}", token("service_role"));
  ASSERT_TRUE(none->has_value());
  EXPECT_EQ((*none)->status, 202);
  EXPECT_TRUE(priv.frames.empty());
}

}  // namespace
}  // namespace rtsync::server::realtime
