// /auth/v1 against a real, migrated PostgreSQL: sign-up, password grant, refresh rotation and
// reuse detection, /user, logout scopes, token expiry on the injected clock, GoTrue's error shapes,
// and a token it issues opening /rest/v1 under RLS.
#include <gtest/gtest.h>

#include "rest_fixture.hpp"
#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/server/auth/jwks.hpp"
#include "rtsync/server/gotrue/gotrue_service.hpp"
#include "rtsync/server/pg/db_pool.hpp"
#include "rtsync/server/rest/rest_service.hpp"

namespace rtsync::test {
namespace {

using server::gotrue::GoTrueOptions;
using server::gotrue::GoTrueService;
using server::pg::DbPool;

constexpr auto kTtl = std::chrono::seconds(120);

class GoTrueTest : public MigratedPg {
 protected:
  void SetUp() override {
    MigratedPg::SetUp();
    if (HasFatalFailure()) return;
    pool = std::make_shared<DbPool>(loop.io, conninfo(), 2);
    GoTrueOptions o;
    o.jwt_secret = std::string(kJwtSecret);
    o.access_token_ttl = kTtl;
    service = std::make_unique<GoTrueService>(pool, clock, o);
  }

  HttpResponse post(std::string_view url, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return call_service(loop, *service,
                        make_request("POST", url, std::move(headers), std::move(body)));
  }
  HttpResponse with_bearer(std::string method, std::string_view url, const std::string& token) {
    return call_service(
        loop, *service,
        make_request(std::move(method), url, {{"Authorization", "Bearer " + token}}));
  }
  json::object session_of(const HttpResponse& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    json::value v = body_json(r);
    return v.is_object() ? v.as_object() : json::object{};
  }
  json::object signup(std::string_view email, std::string_view password) {
    return session_of(post("/auth/v1/signup", std::string(R"({"email":")") + std::string(email) +
                                                  R"(","password":")" + std::string(password) +
                                                  R"("})"));
  }
  HttpResponse sign_in(std::string_view email, std::string_view password,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
    return post("/auth/v1/token?grant_type=password",
                std::string(R"({"email":")") + std::string(email) + R"(","password":")" +
                    std::string(password) + R"("})",
                std::move(headers));
  }
  HttpResponse refresh(std::string_view token) {
    return post("/auth/v1/token?grant_type=refresh_token",
                std::string(R"({"refresh_token":")") + std::string(token) + R"("})");
  }
  json::object claims_of(std::string_view access_token) {
    auto v = verifier.verify(access_token, clock.wall_now());
    EXPECT_TRUE(v.ok()) << v.error().message;
    return v.ok() ? v.value().claims : json::object{};
  }

  TestLoop loop;
  // Wall time starts at the real now so that tokens also verify against real clocks.
  core::ManualScheduler clock{
      core::TimePoint{std::chrono::hours(1)},
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now())};
  server::auth::JwtVerifier verifier{std::string(kJwtSecret)};
  std::shared_ptr<DbPool> pool;
  std::unique_ptr<GoTrueService> service;
};

TEST_F(GoTrueTest, SignupReturnsAGoTrueSession) {
  auto s = signup("Alice@Example.com", "correct horse");
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s.at("token_type").as_string(), "bearer");
  EXPECT_EQ(s.at("expires_in").as_int64(), kTtl.count());
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock.wall_now().time_since_epoch()).count();
  EXPECT_EQ(s.at("expires_at").as_int64(), now + kTtl.count());
  EXPECT_FALSE(s.at("refresh_token").as_string().empty());
  const auto& user = s.at("user").as_object();
  EXPECT_EQ(user.at("email").as_string(), "alice@example.com");
  EXPECT_EQ(user.at("aud").as_string(), "authenticated");
  EXPECT_FALSE(user.at("email_confirmed_at").is_null());  // confirmed at once
  EXPECT_EQ(user.at("app_metadata").at("provider").as_string(), "email");

  const auto claims = claims_of(s.at("access_token").as_string());
  EXPECT_EQ(claims.at("sub"), user.at("id"));
  EXPECT_EQ(claims.at("role").as_string(), "authenticated");
  EXPECT_EQ(claims.at("aud").as_string(), "authenticated");
  EXPECT_EQ(claims.at("exp").as_int64(), now + kTtl.count());
  EXPECT_EQ(claims.at("email").as_string(), "alice@example.com");
  EXPECT_FALSE(claims.at("session_id").as_string().empty());

  // Stored as bcrypt, never as given.
  const std::string hash = scalar("SELECT encrypted_password FROM auth.users");
  EXPECT_EQ(hash.substr(0, 4), "$2a$");
  EXPECT_EQ(hash.find("correct horse"), std::string::npos);
}

TEST_F(GoTrueTest, SignupValidation) {
  signup("a@example.com", "secret1");
  auto dup = post("/auth/v1/signup", R"({"email":"A@EXAMPLE.COM","password":"secret2"})",
                  {{"X-Supabase-Api-Version", "2024-01-01"}});
  EXPECT_EQ(dup.status, 422);
  EXPECT_EQ(body_json(dup).at("code").as_string(), "user_already_exists");
  EXPECT_EQ(body_json(dup).at("message").as_string(), "User already registered");

  auto weak = post("/auth/v1/signup", R"({"email":"w@example.com","password":"123"})");
  EXPECT_EQ(weak.status, 422);
  EXPECT_EQ(body_json(weak).at("error_code").as_string(), "weak_password");
  EXPECT_EQ(body_json(weak).at("weak_password").at("reasons").at(0).as_string(), "length");
  auto too_long = post("/auth/v1/signup",
                       R"({"email":"l@example.com","password":")" + std::string(73, 'p') + R"("})");
  EXPECT_EQ(too_long.status, 422);
  EXPECT_EQ(body_json(too_long).at("error_code").as_string(), "validation_failed");
  for (auto bad : {R"({"email":"nope","password":"secret1"})", R"({"password":"secret1"})",
                   R"({"email":"a b@x.io","password":"secret1"})"}) {
    auto r = post("/auth/v1/signup", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(body_json(r).at("error_code").as_string(), "validation_failed");
  }
  EXPECT_EQ(post("/auth/v1/signup", "{not json").status, 400);
  EXPECT_EQ(scalar("SELECT count(*) FROM auth.users"), "1");
}

TEST_F(GoTrueTest, PasswordGrantAndIdenticalRefusals) {
  auto created = signup("b@example.com", "right-password");
  const std::string before = scalar("SELECT last_sign_in_at FROM auth.users");
  clock.advance(std::chrono::seconds(5));
  auto s = session_of(sign_in("B@example.com", "right-password"));
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s.at("user").at("id"), created.at("user").at("id"));
  EXPECT_NE(s.at("refresh_token"), created.at("refresh_token"));
  EXPECT_NE(scalar("SELECT last_sign_in_at FROM auth.users"), before);
  // A new session per sign-in.
  EXPECT_NE(claims_of(s.at("access_token").as_string()).at("session_id"),
            claims_of(created.at("access_token").as_string()).at("session_id"));

  auto wrong = sign_in("b@example.com", "wrong-password");
  auto unknown = sign_in("nobody@example.com", "right-password");
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(wrong.body, unknown.body);
  EXPECT_EQ(body_json(wrong).at("error_code").as_string(), "invalid_credentials");
  EXPECT_EQ(body_json(wrong).at("msg").as_string(), "Invalid login credentials");
  EXPECT_EQ(sign_in("b@example.com", "").status, 400);
  auto grant = post("/auth/v1/token?grant_type=magic", "{}");
  EXPECT_EQ(grant.status, 400);
  EXPECT_EQ(body_json(grant).at("error_code").as_string(), "unsupported_grant_type");
}

TEST_F(GoTrueTest, RefreshRotatesAndRefusesAnUsedToken) {
  auto s = signup("c@example.com", "password-c");
  const std::string first = std::string(s.at("refresh_token").as_string());
  clock.advance(std::chrono::seconds(30));
  auto r1 = session_of(refresh(first));
  ASSERT_FALSE(r1.empty());
  const std::string second = std::string(r1.at("refresh_token").as_string());
  EXPECT_NE(second, first);
  const auto c1 = claims_of(r1.at("access_token").as_string());
  EXPECT_EQ(c1.at("session_id"), claims_of(s.at("access_token").as_string()).at("session_id"));
  EXPECT_EQ(c1.at("exp").as_int64(),
            claims_of(s.at("access_token").as_string()).at("exp").as_int64() + 30);
  auto r2 = session_of(refresh(second));
  ASSERT_FALSE(r2.empty());
  const std::string third = std::string(r2.at("refresh_token").as_string());

  // A token two rotations behind the active one is a replay: refused…
  auto again = refresh(first);
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(body_json(again).at("error_code").as_string(), "refresh_token_already_used");
  // …and its reuse revoked the whole session: the active token is dead too.
  auto child = refresh(third);
  EXPECT_EQ(child.status, 400);
  EXPECT_EQ(scalar("SELECT count(*) FROM auth.refresh_tokens WHERE NOT revoked"), "0");

  auto unknown = refresh("no-such-token");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(body_json(unknown).at("error_code").as_string(), "refresh_token_not_found");
}

// The answer to a refresh can be lost after PostgreSQL committed the rotation (the connection
// dropped; found by the chaos suite's token-expiry run). The client then presents the same token
// again: as GoTrue, it gets the token issued in its place — not a new one, and not a sign-out.
TEST_F(GoTrueTest, TheParentOfTheActiveTokenGetsTheActiveTokenAgain) {
  auto s = signup("lost@example.com", "password-lost");
  const std::string first = std::string(s.at("refresh_token").as_string());
  auto r1 = session_of(refresh(first));
  ASSERT_FALSE(r1.empty());
  const std::string second = std::string(r1.at("refresh_token").as_string());

  auto retried = refresh(first);
  ASSERT_EQ(retried.status, 200) << retried.body;
  auto r1b = session_of(retried);
  EXPECT_EQ(r1b.at("refresh_token").as_string(), second);
  EXPECT_EQ(claims_of(r1b.at("access_token").as_string()).at("session_id"),
            claims_of(s.at("access_token").as_string()).at("session_id"));
  // No token was minted for the retry, and the active one stays active.
  EXPECT_EQ(scalar("SELECT count(*) FROM auth.refresh_tokens WHERE session_id = "
                   "(SELECT session_id FROM auth.refresh_tokens WHERE token = $1)",
                   {first}),
            "2");
  EXPECT_EQ(
      scalar("SELECT count(*) FROM auth.refresh_tokens WHERE NOT revoked AND token = $1", {second}),
      "1");

  // The chain goes on from the active token; the first one is then two behind, a replay.
  auto r2 = session_of(refresh(second));
  ASSERT_FALSE(r2.empty());
  const std::string third = std::string(r2.at("refresh_token").as_string());
  EXPECT_NE(third, second);
  EXPECT_EQ(refresh(first).status, 400);
  EXPECT_EQ(refresh(third).status, 400);
}

TEST_F(GoTrueTest, RefreshChainKeepsWorking) {
  auto s = signup("d@example.com", "password-d");
  std::string token = std::string(s.at("refresh_token").as_string());
  for (int i = 0; i < 5; ++i) {
    auto r = session_of(refresh(token));
    ASSERT_FALSE(r.empty()) << i;
    token = std::string(r.at("refresh_token").as_string());
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM auth.refresh_tokens"), "6");
  EXPECT_EQ(scalar("SELECT count(*) FROM auth.refresh_tokens WHERE NOT revoked"), "1");
}

TEST_F(GoTrueTest, UserEndpointAndTokenExpiryOnTheInjectedClock) {
  auto s = signup("e@example.com", "password-e");
  const std::string access = std::string(s.at("access_token").as_string());
  auto me = with_bearer("GET", "/auth/v1/user", access);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(body_json(me).at("email").as_string(), "e@example.com");

  // Valid until exp + the verifier's leeway (2 s), refused from then on.
  clock.advance(kTtl + std::chrono::seconds(1));
  EXPECT_EQ(with_bearer("GET", "/auth/v1/user", access).status, 200);
  clock.advance(std::chrono::seconds(1));
  auto expired = with_bearer("GET", "/auth/v1/user", access);
  EXPECT_EQ(expired.status, 403);
  EXPECT_EQ(body_json(expired).at("error_code").as_string(), "bad_jwt");

  auto none = call_service(loop, *service, make_request("GET", "/auth/v1/user"));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(body_json(none).at("error_code").as_string(), "no_authorization");
  EXPECT_EQ(with_bearer("GET", "/auth/v1/user", mint("authenticated", std::nullopt)).status, 403);
  EXPECT_EQ(with_bearer("GET", "/auth/v1/user",
                        mint("authenticated", kUserA, 3600s, "other-secret-other-secret-1234567"))
                .status,
            403);
  // A valid token for a user that is gone.
  auto gone = with_bearer("GET", "/auth/v1/user", mint("authenticated", kUserB));
  EXPECT_EQ(gone.status, 403);
  EXPECT_EQ(body_json(gone).at("error_code").as_string(), "user_not_found");
}

// A sign-in waiting on a row lock is cancelled at the statement timeout and answered 500; the
// pool's connections are free for the next request.
TEST_F(GoTrueTest, AStatementOverTheTimeoutIsCancelled) {
  GoTrueOptions o;
  o.jwt_secret = std::string(kJwtSecret);
  o.statement_timeout = std::chrono::milliseconds(200);
  service = std::make_unique<GoTrueService>(pool, clock, o);
  signup("lock@example.com", "password-1");
  sql("BEGIN; SELECT 1 FROM auth.users WHERE email = 'lock@example.com' FOR UPDATE");
  const auto started = std::chrono::steady_clock::now();
  const auto blocked = sign_in("lock@example.com", "password-1");
  const auto took = std::chrono::steady_clock::now() - started;
  sql("ROLLBACK");
  EXPECT_EQ(blocked.status, 500) << blocked.body;
  EXPECT_EQ(body_json(blocked).at("error_code").as_string(), "unexpected_failure") << blocked.body;
  EXPECT_LT(took, std::chrono::seconds(5));  // cancelled, not waiting for the lock
  EXPECT_EQ(sign_in("lock@example.com", "password-1").status, 200);
  EXPECT_EQ(sign_in("lock@example.com", "password-1").status, 200);  // both connections
}

// With a signing key, sessions carry ES256 tokens whose key /.well-known/jwks.json publishes; the
// endpoint's own /user accepts them. Without one the key set is empty and tokens stay HS256.
TEST_F(GoTrueTest, Es256SigningKeyAndItsPublishedKeySet) {
  auto empty = call_service(loop, *service, make_request("GET", "/auth/v1/.well-known/jwks.json"));
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body, R"({"keys":[]})");

  auto key = server::auth::EcSigningKey::generate();
  ASSERT_TRUE(key.ok());
  auto ring = std::make_shared<server::auth::KeyRing>();
  ring->replace(server::auth::JwkSet::of({key.value().public_key()}));
  GoTrueOptions o;
  o.jwt_secret = std::string(kJwtSecret);
  o.access_token_ttl = kTtl;
  o.signing_key = std::make_shared<const server::auth::EcSigningKey>(key.value());
  o.keys = ring;
  service = std::make_unique<GoTrueService>(pool, clock, o);

  auto published =
      call_service(loop, *service, make_request("GET", "/auth/v1/.well-known/jwks.json"));
  ASSERT_EQ(published.status, 200);
  auto set = server::auth::JwkSet::parse(published.body);
  ASSERT_TRUE(set.ok()) << published.body;
  ASSERT_EQ(set.value().keys().size(), 1u);
  EXPECT_EQ(set.value().keys()[0].kid, key.value().kid());
  EXPECT_EQ(set.value().keys()[0].alg, server::auth::JwsAlg::es256);
  EXPECT_EQ(published.body.find("\"d\""), std::string::npos) << "no private key material";

  auto session = signup("es256@example.com", "password-1");
  const std::string token(session["access_token"].as_string());
  auto published_ring = std::make_shared<server::auth::KeyRing>();
  published_ring->replace(std::move(set.value()));
  server::auth::JwtVerifier with_published(std::string(kJwtSecret), published_ring);
  auto v = with_published.verify(token, clock.wall_now());
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v.value().role, "authenticated");
  EXPECT_FALSE(verifier.verify(token, clock.wall_now()).ok()) << "an HS256-only verifier";
  EXPECT_EQ(with_bearer("GET", "/auth/v1/user", token).status, 200);
}

TEST_F(GoTrueTest, LogoutScopes) {
  auto s1 = signup("f@example.com", "password-f");
  auto s2 = session_of(sign_in("f@example.com", "password-f"));
  auto s3 = session_of(sign_in("f@example.com", "password-f"));

  auto others = with_bearer("POST", "/auth/v1/logout?scope=others",
                            std::string(s3.at("access_token").as_string()));
  EXPECT_EQ(others.status, 204);
  EXPECT_EQ(refresh(s1.at("refresh_token").as_string()).status, 400);
  EXPECT_EQ(refresh(s2.at("refresh_token").as_string()).status, 400);
  auto kept = session_of(refresh(s3.at("refresh_token").as_string()));
  ASSERT_FALSE(kept.empty());

  auto local = with_bearer("POST", "/auth/v1/logout?scope=local",
                           std::string(kept.at("access_token").as_string()));
  EXPECT_EQ(local.status, 204);
  EXPECT_EQ(refresh(kept.at("refresh_token").as_string()).status, 400);

  auto s4 = session_of(sign_in("f@example.com", "password-f"));
  auto global =
      with_bearer("POST", "/auth/v1/logout", std::string(s4.at("access_token").as_string()));
  EXPECT_EQ(global.status, 204);
  EXPECT_EQ(refresh(s4.at("refresh_token").as_string()).status, 400);
  EXPECT_EQ(scalar("SELECT count(*) FROM auth.refresh_tokens WHERE NOT revoked"), "0");

  EXPECT_EQ(call_service(loop, *service, make_request("POST", "/auth/v1/logout")).status, 401);
  EXPECT_EQ(with_bearer("POST", "/auth/v1/logout?scope=everything",
                        std::string(s4.at("access_token").as_string()))
                .status,
            400);
}

TEST_F(GoTrueTest, RoutesAndErrorShapes) {
  auto missing = call_service(loop, *service, make_request("GET", "/auth/v1/nothing"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.header("X-Supabase-Api-Version"), "2024-01-01");
  EXPECT_EQ(body_json(missing).at("code").as_int64(), 404);
  auto modern = call_service(
      loop, *service,
      make_request("GET", "/auth/v1/nothing", {{"X-Supabase-Api-Version", "2024-01-01"}}));
  EXPECT_EQ(body_json(modern).at("code").as_string(), "not_found");
  EXPECT_EQ(call_service(loop, *service, make_request("GET", "/auth/v1/health")).status, 200);
  EXPECT_EQ(call_service(loop, *service, make_request("GET", "/auth/v1/settings")).status, 200);
  EXPECT_TRUE(service->matches("/auth/v1/token"));
  EXPECT_FALSE(service->matches("/auth/v10"));
  EXPECT_FALSE(service->matches("/rest/v1/tasks"));
}

TEST_F(GoTrueTest, IssuedTokensOpenRestUnderRls) {
  auto s = signup("g@example.com", "password-g");
  const std::string uid = std::string(s.at("user").at("id").as_string());
  const std::string access = std::string(s.at("access_token").as_string());
  seed();  // users A and B with their projects
  server::rest::RestService rest(pool, server::auth::JwtVerifier(std::string(kJwtSecret)),
                                 loop.sched);
  auto created = call_service(loop, rest,
                              make_request("POST", "/rest/v1/projects?select=name,user_id",
                                           {{"Authorization", "Bearer " + access},
                                            {"Prefer", "return=representation"},
                                            {"Content-Type", "application/json"}},
                                           R"({"name":"mine","user_id":")" + uid + R"("})"));
  ASSERT_EQ(created.status, 201) << created.body;
  auto mine = call_service(loop, rest,
                           make_request("GET", "/rest/v1/projects?select=name",
                                        {{"Authorization", "Bearer " + access}}));
  ASSERT_EQ(mine.status, 200);
  EXPECT_EQ(mine.body, R"([{"name":"mine"}])");
}

}  // namespace
}  // namespace rtsync::test
