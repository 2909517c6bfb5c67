// JSON Web Tokens: the verifier the realtime server checks every apikey, join token and
// access_token push with, and an HS256 signer for tests, `rtsync token` and the auth endpoints.
//
// Algorithms are pinned. HS256 tokens are checked with the configured secret. RS256 and ES256
// tokens are checked only against a key of a KeyRing (jwks.hpp) chosen by the header's `kid`, and
// only when that key is pinned to the header's algorithm; anything else — `none`, other
// algorithms, an unknown `kid`, a `kid` of an RS256 key in an ES256 or HS256 header — is refused
// before any claim is read. Claims `role` and `exp` are required, as Supabase Realtime requires
// them; `exp` and `nbf` are checked against the caller's wall clock (the injected Scheduler's
// wall_now()) with a small leeway. Signatures are compared in constant time.
//
// Failure messages are Supabase Realtime's (docs/protocol.md §1.1, §2.4, §2.5), so clients can
// match on them.
//
// Opaque API keys (a publishable and a secret key that are not JWTs, as current Supabase projects
// issue them) may be configured: a token equal to one of them verifies as role `anon` or
// `service_role` with no expiry.
//
// Thread safety: JwtVerifier is immutable after construction (the KeyRing it reads is itself
// thread-safe and may be replaced while tokens are verified); all functions are pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/auth/jwks.hpp"

namespace rtsync::server::auth {

// base64url without padding (RFC 7515 section 2).
std::string base64url_encode(std::string_view bytes);
// Accepts unpadded base64url only; nullopt on any other character or an impossible length.
std::optional<std::string> base64url_decode(std::string_view text);

// Why a token was refused.
enum class JwtFault {
  malformed,       // not three base64url parts of JSON objects, or an algorithm not accepted
  bad_signature,   // signature does not match, or no key is known for the token's kid
  missing_claims,  // `role` (string) or `exp` (number) absent
  invalid_exp,     // exp <= 0
  expired,         // exp + leeway <= now
  not_yet_valid,   // nbf - leeway > now
};

struct JwtError {
  JwtFault fault = JwtFault::malformed;
  std::string message;  // "Token has expired 12 seconds ago", "Failed to validate JWT signature"…

  // The join error reason: "<Code>: <message>" — InvalidJWTToken, MalformedJWT, JwtSignatureError.
  std::string join_reason() const;
  // The body text of the HTTP 401 refusing a websocket upgrade ("Token has expired", without the
  // age, as Supabase's connect errors read).
  std::string connect_message() const;
};

// A token that passed verification.
struct VerifiedJwt {
  std::string token;        // the compact form as received
  json::object claims;      // the payload
  std::string role;         // claims.role
  std::int64_t exp = 0;     // claims.exp, seconds since the Unix epoch
  std::string claims_json;  // claims as core::canonical_json: equal claims ⇒ equal text (class key)
  core::WallTime expires_at() const;
};

// A verified token or why it was refused.
using JwtVerifyResult = Result<VerifiedJwt, JwtError>;

class JwtVerifier {
 public:
  // `leeway` tolerates clock skew on exp and nbf.
  explicit JwtVerifier(std::string secret, std::chrono::seconds leeway = std::chrono::seconds(2));
  // Also accepts RS256/ES256 tokens signed by a key of `keys` (nullptr: none).
  JwtVerifier(std::string secret, std::shared_ptr<const KeyRing> keys,
              std::chrono::seconds leeway = std::chrono::seconds(2));

  // Opaque API keys standing for `anon` (publishable) and `service_role` (secret); empty: none.
  void set_api_keys(std::string publishable, std::string secret);

  JwtVerifyResult verify(std::string_view token, core::WallTime now) const;
  // Re-checks only the time claims of an already verified token (periodic expiry checks).
  std::optional<JwtError> check_time(const VerifiedJwt& jwt, core::WallTime now) const;

  std::chrono::seconds leeway() const noexcept { return leeway_; }

 private:
  std::optional<JwtError> check_signature(const json::object& header, std::string_view input,
                                          const std::string& sig) const;
  std::optional<VerifiedJwt> api_key(std::string_view token) const;

  std::string secret_;
  std::shared_ptr<const KeyRing> keys_;
  std::string publishable_key_;
  std::string secret_key_;
  std::chrono::seconds leeway_;
};

// {"alg":"HS256","typ":"JWT"} . claims . HMAC-SHA256 — for tests, tools and the auth endpoints.
std::string sign_hs256(const json::object& claims, std::string_view secret);

}  // namespace rtsync::server::auth
