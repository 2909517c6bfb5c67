#include "rtsync/server/auth/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace rtsync::server::auth {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

JwtError fail(JwtFault fault, std::string message) {
  return JwtError{fault, std::move(message)};
}

const char* kNotValid = "The token provided is not a valid JWT";

// A JSON number as whole seconds; nullopt if it is not a number.
std::optional<std::int64_t> seconds_of(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) {
    auto u = v->get_uint64();
    return u > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(u);
  }
  if (v->is_double()) {
    double d = v->get_double();
    if (!std::isfinite(d)) return std::nullopt;
    if (d > 9.2e18) return INT64_MAX;
    if (d < -9.2e18) return INT64_MIN;
    return static_cast<std::int64_t>(std::floor(d));
  }
  return std::nullopt;
}

std::int64_t unix_seconds(core::WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t n = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t n = b(i) << 16;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
  } else if (rest == 2) {
    std::uint32_t n = (b(i) << 16) | (b(i + 1) << 8);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int d = decode_char(c);
    if (d < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero padding, or the text is not a canonical encoding.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string JwtError::join_reason() const {
  switch (fault) {
    case JwtFault::malformed:
      return "MalformedJWT: " + message;
    case JwtFault::bad_signature:
      return "JwtSignatureError: " + message;
    default:
      return "InvalidJWTToken: " + message;
  }
}

std::string JwtError::connect_message() const {
  if (fault == JwtFault::expired) return "Token has expired";
  return message;
}

core::WallTime VerifiedJwt::expires_at() const {
  // WallTime counts nanoseconds: an `exp` beyond ~year 2262 would overflow it (undefined
  // behaviour, and a wrapped expiry could land in the past). Such tokens never expire in practice.
  constexpr auto kMax =
      std::chrono::duration_cast<std::chrono::seconds>(core::WallTime::duration::max()).count() - 1;
  return core::WallTime{std::chrono::seconds(std::clamp<std::int64_t>(exp, 0, kMax))};
}

JwtVerifier::JwtVerifier(std::string secret, std::chrono::seconds leeway)
    : secret_(std::move(secret)), leeway_(leeway) {}

JwtVerifier::JwtVerifier(std::string secret, std::shared_ptr<const KeyRing> keys,
                         std::chrono::seconds leeway)
    : secret_(std::move(secret)), keys_(std::move(keys)), leeway_(leeway) {}

void JwtVerifier::set_api_keys(std::string publishable, std::string secret) {
  publishable_key_ = std::move(publishable);
  secret_key_ = std::move(secret);
}

std::optional<VerifiedJwt> JwtVerifier::api_key(std::string_view token) const {
  auto equal = [](std::string_view a, const std::string& b) {
    return !b.empty() && a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), b.size()) == 0;
  };
  const char* role = nullptr;
  if (equal(token, publishable_key_)) role = "anon";
  if (equal(token, secret_key_)) role = "service_role";
  if (!role) return std::nullopt;
  VerifiedJwt v;
  v.token = std::string(token);
  v.role = role;
  // An API key does not expire: it stays valid until the operator removes it. The expiry stands
  // in year 2223: far enough never to matter, near enough that expiry timers (expires_at() plus
  // the leeway, in nanoseconds) cannot overflow.
  v.exp = 8'000'000'000;
  v.claims["role"] = role;
  v.claims_json = core::canonical_json(v.claims);
  return v;
}

std::optional<JwtError> JwtVerifier::check_signature(const json::object& header,
                                                     std::string_view input,
                                                     const std::string& sig) const {
  const auto* alg_v = header.if_contains("alg");
  auto alg = alg_v && alg_v->is_string()
                 ? jws_alg_from_string(std::string_view(alg_v->get_string()))
                 : std::nullopt;
  if (!alg) return fail(JwtFault::malformed, kNotValid);  // `none`, HS512, PS256, …
  // A verifier without a key ring accepts HS256 only, as before asymmetric keys existed.
  if (*alg != JwsAlg::hs256 && !keys_) return fail(JwtFault::malformed, kNotValid);
  const auto* kid_v = header.if_contains("kid");
  if (kid_v && !kid_v->is_string()) return fail(JwtFault::malformed, kNotValid);
  std::string_view kid = kid_v ? std::string_view(kid_v->get_string()) : std::string_view();
  auto keys = keys_ ? keys_->current() : nullptr;
  // A kid naming a key pinned to another algorithm is the algorithm-confusion attack (an RSA
  // public key used as an HMAC secret, or an RS256 key named in an ES256 header): refuse it.
  if (keys && !kid.empty()) {
    if (const Jwk* named = keys->find_kid(kid); named && named->alg != *alg) {
      return fail(JwtFault::malformed, kNotValid);
    }
  }
  if (*alg == JwsAlg::hs256) {
    // No secret configured (asymmetric keys only): an empty HMAC key would let anyone sign.
    if (secret_.empty()) return fail(JwtFault::bad_signature, "Failed to validate JWT signature");
    auto expected = hmac_sha256(secret_, input);
    if (sig.size() != expected.size() ||
        CRYPTO_memcmp(sig.data(), expected.data(), expected.size()) != 0) {
      return fail(JwtFault::bad_signature, "Failed to validate JWT signature");
    }
    return std::nullopt;
  }
  const Jwk* key = keys ? keys->find(kid, *alg) : nullptr;
  if (!key) return fail(JwtFault::bad_signature, "Failed to validate JWT signature");
  std::string der;
  std::string_view signature = sig;
  if (*alg == JwsAlg::es256) {
    // JWS carries r||s (32 bytes each); OpenSSL verifies a DER ECDSA-Sig-Value.
    if (sig.size() != 64) return fail(JwtFault::bad_signature, "Failed to validate JWT signature");
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
      unsigned char* out = nullptr;
      int n = i2d_ECDSA_SIG(es, &out);
      if (n > 0) der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
      OPENSSL_free(out);
    } else {
      BN_free(r);
      BN_free(s);
    }
    ECDSA_SIG_free(es);
    signature = der;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  int ok = 0;
  if (ctx && !signature.empty() &&
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key->key.get()) == 1) {
    ok = EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                          input.size());
  }
  EVP_MD_CTX_free(ctx);
  if (ok != 1) return fail(JwtFault::bad_signature, "Failed to validate JWT signature");
  return std::nullopt;
}

JwtVerifyResult JwtVerifier::verify(std::string_view token, core::WallTime now) const {
  if (auto key = api_key(token)) return std::move(*key);
  auto dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return fail(JwtFault::malformed, kNotValid);
  auto dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return fail(JwtFault::malformed, kNotValid);
  }
  auto header_b64 = token.substr(0, dot1);
  auto payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  auto sig_b64 = token.substr(dot2 + 1);

  auto header_text = base64url_decode(header_b64);
  auto payload_text = base64url_decode(payload_b64);
  auto sig = base64url_decode(sig_b64);
  if (!header_text || !payload_text || !sig) return fail(JwtFault::malformed, kNotValid);

  boost::system::error_code ec;
  json::value header = json::parse(*header_text, ec);
  if (ec || !header.is_object()) return fail(JwtFault::malformed, kNotValid);
  json::value payload = json::parse(*payload_text, ec);
  if (ec || !payload.is_object()) return fail(JwtFault::malformed, kNotValid);
  if (auto err = check_signature(header.get_object(), token.substr(0, dot2), *sig)) {
    return std::move(*err);
  }

  auto& claims = payload.get_object();
  const auto* role = claims.if_contains("role");
  auto exp = seconds_of(claims.if_contains("exp"));
  if (!role || !role->is_string() || !exp) {
    return fail(JwtFault::missing_claims, "Fields `role` and `exp` are required in JWT");
  }
  VerifiedJwt v;
  v.token = std::string(token);
  v.role = std::string(role->get_string());
  v.exp = *exp;
  v.claims_json = core::canonical_json(payload);
  v.claims = std::move(claims);
  if (auto err = check_time(v, now)) return std::move(*err);
  if (auto nbf = seconds_of(v.claims.if_contains("nbf"))) {
    if (*nbf - leeway_.count() > unix_seconds(now)) {
      return fail(JwtFault::not_yet_valid, "The token provided is not yet valid");
    }
  }
  return v;
}

std::optional<JwtError> JwtVerifier::check_time(const VerifiedJwt& jwt, core::WallTime now) const {
  if (jwt.exp <= 0) return fail(JwtFault::invalid_exp, "Token expiration time is invalid");
  auto now_s = unix_seconds(now);
  // Overflow-safe form of `exp + leeway <= now`.
  if (jwt.exp <= now_s - leeway_.count()) {
    return fail(JwtFault::expired,
                "Token has expired " + std::to_string(now_s - jwt.exp) + " seconds ago");
  }
  return std::nullopt;
}

std::string sign_hs256(const json::object& claims, std::string_view secret) {
  std::string signing_input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  signing_input.push_back('.');
  signing_input += base64url_encode(json::serialize(claims));
  auto mac = hmac_sha256(secret, signing_input);
  signing_input.push_back('.');
  signing_input +=
      base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  return signing_input;
}

}  // namespace rtsync::server::auth
