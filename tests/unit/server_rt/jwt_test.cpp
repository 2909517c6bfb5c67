#include "rtsync/server/auth/jwt.hpp"

#include <gtest/gtest.h>

#include "jwt_fixture.hpp"

#include <limits>

namespace rtsync::server::auth {
namespace {

using namespace std::chrono_literals;

using namespace test;  // NOLINT: kNow, kNowS, kSecret

json::object claims(std::string role, std::int64_t exp) {
  json::object c;
  c["role"] = role;
  c["exp"] = exp;
  return c;
}

std::string make_token(std::string_view header, std::string_view payload,
                       std::string_view secret = kSecret) {
  // Header and payload only: tokens with foreign algorithms are refused before any signature.
  (void)secret;
  return base64url_encode(header) + "." + base64url_encode(payload);
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    auto enc = base64url_encode(bytes);
    EXPECT_EQ(enc.find('='), std::string::npos);
    EXPECT_EQ(enc.find('+'), std::string::npos);
    auto dec = base64url_decode(enc);
    ASSERT_TRUE(dec.has_value()) << i;
    EXPECT_EQ(*dec, bytes);
    bytes.push_back(static_cast<char>(0xF0 + i));
  }
}

TEST(Base64Url, RefusesForeignCharactersAndPadding) {
  EXPECT_FALSE(base64url_decode("ab+c").has_value());
  EXPECT_FALSE(base64url_decode("abc=").has_value());
  EXPECT_FALSE(base64url_decode("a").has_value());
  EXPECT_EQ(*base64url_decode("YWJj"), "abc");
}

TEST(JwtVerifier, AcceptsItsOwnSignature) {
  JwtVerifier v(kSecret);
  auto c = claims("authenticated", kNowS + 3600);
  c["sub"] = "user-1";
  auto token = sign_hs256(c, kSecret);
  auto r = v.verify(token, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().role, "authenticated");
  EXPECT_EQ(r.value().exp, kNowS + 3600);
  EXPECT_EQ(r.value().claims.at("sub").as_string(), "user-1");
  EXPECT_EQ(r.value().token, token);
}

// exp beyond what a nanosecond clock can hold (year 2262+) must not wrap into the past.
TEST(JwtVerifier, FarFutureExpiryStaysInTheFuture) {
  JwtVerifier v(kSecret);
  for (std::int64_t exp : {std::int64_t{20'200'000'000}, std::int64_t{100'000'000'000},
                           std::numeric_limits<std::int64_t>::max() / 2}) {
    auto r = v.verify(sign_hs256(claims("anon", exp), kSecret), kNow);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_GT(r.value().expires_at(), kNow + std::chrono::hours(24 * 365 * 200)) << exp;
  }
}

TEST(JwtVerifier, KnownVectorFromAnotherImplementation) {
  // HS256 token for {"role":"anon","exp":1900000000} with secret "secret", computed with
  // Python's hmac/hashlib (header {"alg":"HS256","typ":"JWT"}).
  std::string token = sign_hs256(claims("anon", 1900000000), "secret");
  EXPECT_EQ(token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiIsImV4cCI6MTkwMDAwMDAwMH0."
            "r9OmbyUhnqjsFIATKemxubTq-gCXb7OL6EFBCGKQYU4");
}

TEST(JwtVerifier, WrongSecretIsASignatureError) {
  JwtVerifier v(kSecret);
  auto r = v.verify(sign_hs256(claims("anon", kNowS + 60), "another-secret"), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::bad_signature);
  EXPECT_EQ(r.error().join_reason(), "JwtSignatureError: Failed to validate JWT signature");
  EXPECT_EQ(r.error().connect_message(), "Failed to validate JWT signature");
}

TEST(JwtVerifier, TamperedPayloadIsASignatureError) {
  JwtVerifier v(kSecret);
  auto token = sign_hs256(claims("anon", kNowS + 60), kSecret);
  auto parts_end = token.find('.', token.find('.') + 1);
  std::string forged = token.substr(0, token.find('.') + 1) +
                       base64url_encode(R"({"role":"service_role","exp":1900000000})") +
                       token.substr(parts_end);
  auto r = v.verify(forged, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::bad_signature);
}

TEST(JwtVerifier, AlgorithmIsPinnedToHs256) {
  JwtVerifier v(kSecret);
  std::string payload = R"({"role":"service_role","exp":1900000000})";
  for (std::string header : {R"({"alg":"none","typ":"JWT"})", R"({"alg":"HS512"})",
                             R"({"alg":"RS256"})", R"({"typ":"JWT"})", R"({"alg":"hs256"})"}) {
    std::string unsigned_token = make_token(header, payload) + ".";
    auto r = v.verify(unsigned_token, kNow);
    ASSERT_FALSE(r.ok()) << header;
    EXPECT_EQ(r.error().fault, JwtFault::malformed) << header;
    EXPECT_EQ(r.error().join_reason(), "MalformedJWT: The token provided is not a valid JWT");
  }
}

TEST(JwtVerifier, MalformedShapes) {
  JwtVerifier v(kSecret);
  for (std::string t : {"", "abc", "a.b", "a.b.c.d", "!!.??.##", "e30.e30.", "W10.e30.AAAA"}) {
    auto r = v.verify(t, kNow);
    ASSERT_FALSE(r.ok()) << t;
    EXPECT_EQ(r.error().fault, JwtFault::malformed) << t;
    EXPECT_EQ(r.error().message, "The token provided is not a valid JWT");
  }
}

TEST(JwtVerifier, RoleAndExpAreRequired) {
  JwtVerifier v(kSecret);
  json::object no_role{{"exp", kNowS + 60}};
  json::object no_exp{{"role", "anon"}};
  json::object exp_string{{"role", "anon"}, {"exp", "soon"}};
  for (const auto& c : {no_role, no_exp, exp_string}) {
    auto r = v.verify(sign_hs256(c, kSecret), kNow);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().fault, JwtFault::missing_claims);
    EXPECT_EQ(r.error().join_reason(),
              "InvalidJWTToken: Fields `role` and `exp` are required in JWT");
  }
}

TEST(JwtVerifier, ExpiryBoundaryWithLeeway) {
  JwtVerifier v(kSecret, 2s);
  auto token = sign_hs256(claims("anon", kNowS), kSecret);
  // exp == now is still inside the 2 s leeway; it fails exactly at exp + leeway.
  EXPECT_TRUE(v.verify(token, kNow).ok());
  EXPECT_TRUE(v.verify(token, kNow + 1999ms).ok());
  auto r = v.verify(token, kNow + 2s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::expired);
  EXPECT_EQ(r.error().message, "Token has expired 2 seconds ago");
  EXPECT_EQ(r.error().join_reason(), "InvalidJWTToken: Token has expired 2 seconds ago");
  EXPECT_EQ(r.error().connect_message(), "Token has expired");
  auto later = v.verify(token, kNow + 75s);
  EXPECT_EQ(later.error().message, "Token has expired 75 seconds ago");
}

TEST(JwtVerifier, NonPositiveExpIsInvalid) {
  JwtVerifier v(kSecret);
  auto r = v.verify(sign_hs256(claims("anon", 0), kSecret), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().join_reason(), "InvalidJWTToken: Token expiration time is invalid");
}

TEST(JwtVerifier, NotBeforeBoundaryWithLeeway) {
  JwtVerifier v(kSecret, 2s);
  auto c = claims("anon", kNowS + 3600);
  c["nbf"] = kNowS + 10;
  auto token = sign_hs256(c, kSecret);
  EXPECT_FALSE(v.verify(token, kNow + 7s).ok());
  EXPECT_EQ(v.verify(token, kNow + 7s).error().fault, JwtFault::not_yet_valid);
  EXPECT_TRUE(v.verify(token, kNow + 8s).ok());
}

TEST(JwtVerifier, CheckTimeRechecksAVerifiedToken) {
  JwtVerifier v(kSecret, 1s);
  auto r = v.verify(sign_hs256(claims("anon", kNowS + 30), kSecret), kNow);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().expires_at(), kNow + 30s);
  EXPECT_FALSE(v.check_time(r.value(), kNow + 30s).has_value());
  auto err = v.check_time(r.value(), kNow + 31s);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->message, "Token has expired 1 seconds ago");
}

TEST(CanonicalJson, SortsKeysRecursively) {
  auto a = json::parse(R"({"b":1,"a":{"y":[{"d":1,"c":2}],"x":null}})");
  auto b = json::parse(R"({"a":{"x":null,"y":[{"c":2,"d":1}]},"b":1})");
  EXPECT_EQ(core::canonical_json(a), core::canonical_json(b));
  EXPECT_EQ(core::canonical_json(a), R"({"a":{"x":null,"y":[{"c":2,"d":1}]},"b":1})");
}

TEST(JwtVerifier, EqualClaimsShareTheClassKey) {
  JwtVerifier v(kSecret);
  json::object c1{{"role", "authenticated"}, {"sub", "u1"}, {"exp", kNowS + 60}};
  json::object c2{{"exp", kNowS + 60}, {"sub", "u1"}, {"role", "authenticated"}};
  auto r1 = v.verify(sign_hs256(c1, kSecret), kNow);
  auto r2 = v.verify(sign_hs256(c2, kSecret), kNow);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1.value().claims_json, r2.value().claims_json);
}

}  // namespace
}  // namespace rtsync::server::auth
