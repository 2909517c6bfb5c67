// Realtime's REST broadcast API as an HTTP service (realtime::BroadcastEndpoint), without sockets:
// who may broadcast, what reaches a joined client, and the error answers.
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

const std::string kSecret = "unit-test-secret-unit-test-secret-0123";

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
  std::string token(std::string role) {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(sched.wall_now().time_since_epoch());
    return auth::sign_hs256(json::object{{"role", role}, {"exp", now.count() + 3600}}, kSecret);
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

TEST_F(BroadcastEndpointTest, RefusesAnonAndMissingTokensAndOtherMethods) {
  const std::string batch = R"({"messages":[{"topic":"room","event":"hi","payload":{}}]})";
  EXPECT_EQ(call("POST", "/api/broadcast", batch, std::nullopt).status, 401);
  auto anon = call("POST", "/api/broadcast", batch, token("anon"));
  EXPECT_EQ(anon.status, 401);
  EXPECT_EQ(anon.body, R"({"message":"Unauthorized"})");
  EXPECT_EQ(call("GET", "/api/broadcast", "", token("service_role")).status, 405);
  // The apikey query parameter is a credential too.
  EXPECT_EQ(
      call("POST", "/api/broadcast?apikey=" + token("service_role"), batch, std::nullopt).status,
      202);
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

}  // namespace
}  // namespace rtsync::server::realtime
