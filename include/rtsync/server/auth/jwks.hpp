// Asymmetric JWT keys: public keys read from a JSON Web Key Set (RFC 7517), the thread-safe ring
// the verifier looks them up in, and the ES256 key `/auth/v1` may sign its tokens with.
//
// Every key is pinned to one algorithm: an RSA key (kty "RSA", at least 2048 bits) verifies only
// RS256, a P-256 key (kty "EC", crv "P-256") only ES256. A JWK's `alg`, when present, must name
// that algorithm; a key whose `use` is not "sig" is skipped, as are key types rtsync does not
// verify with (symmetric "oct" keys are never taken from a key set: HS256 uses the configured
// secret).
//
// Thread safety: JwkSet and Jwk are immutable after parsing and may be shared between threads.
// KeyRing's methods may be called from any thread. EcSigningKey is immutable after loading.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace rtsync::server::auth {

enum class JwsAlg { hs256, rs256, es256 };

// "HS256", "RS256", "ES256".
std::string_view to_string(JwsAlg alg) noexcept;
// nullopt for every other name, "none" included.
std::optional<JwsAlg> jws_alg_from_string(std::string_view name) noexcept;

// One public verification key.
struct Jwk {
  std::string kid;  // may be empty when the key set names none
  JwsAlg alg = JwsAlg::rs256;
  std::shared_ptr<evp_pkey_st> key;
};

// Largest key set accepted (bytes of JSON) and most keys kept from one.
inline constexpr std::size_t kMaxJwksBytes = 64 * 1024;
inline constexpr std::size_t kMaxJwksKeys = 32;

class JwkSet {
 public:
  // Parses {"keys":[…]}. Errors (Errc::too_large above kMaxJwksBytes or kMaxJwksKeys usable
  // keys, Errc::invalid_json, Errc::invalid_argument for a malformed key or two keys with one
  // kid) refuse the whole set: a half-read set would silently drop keys tokens are signed with.
  // Keys that are well-formed but not for rtsync (use "enc", kty "oct", another curve) are
  // skipped; `skipped()` counts them.
  static Result<JwkSet> parse(std::string_view text);

  // The key named `kid`; with an empty `kid`, the only key pinned to `alg` if there is exactly
  // one. nullptr if none.
  const Jwk* find(std::string_view kid, JwsAlg alg) const;
  // The key named `kid` whatever its algorithm (to refuse a token naming it with another alg).
  const Jwk* find_kid(std::string_view kid) const;

  const std::vector<Jwk>& keys() const noexcept { return keys_; }
  std::size_t skipped() const noexcept { return skipped_; }

  // The union of two sets (for the server: the keys of a JWKS plus /auth/v1's own signing key).
  // Errc::invalid_argument if a kid appears in both.
  static Result<JwkSet> merge(const JwkSet& a, const JwkSet& b);
  static JwkSet of(std::vector<Jwk> keys);

 private:
  std::vector<Jwk> keys_;
  std::size_t skipped_ = 0;
};

// The current key set, replaced whole when keys are reloaded; readers keep the snapshot they took.
class KeyRing {
 public:
  KeyRing() : current_(std::make_shared<const JwkSet>()) {}
  std::shared_ptr<const JwkSet> current() const;
  void replace(JwkSet set);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const JwkSet> current_;
};

// An ECDSA P-256 private key for ES256 tokens.
class EcSigningKey {
 public:
  // A PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY") on the P-256 curve. `kid` empty: the
  // RFC 7638 thumbprint of the public key, base64url.
  static Result<EcSigningKey> from_pem(std::string_view pem, std::string kid = {});
  // A fresh random key (tests, demo).
  static Result<EcSigningKey> generate(std::string kid = {});

  const std::string& kid() const noexcept { return kid_; }
  // {"kty":"EC","crv":"P-256","x":…,"y":…,"kid":…,"alg":"ES256","use":"sig"}
  json::object public_jwk() const;
  // The public half as a verification key.
  Jwk public_key() const;
  // JWS ES256 signature of `input`: raw r||s, 64 bytes. Empty only if OpenSSL fails.
  std::string sign(std::string_view input) const;
  // PEM (PKCS#8) of the private key, for tools and tests that hand it to the server.
  std::string private_pem() const;

 private:
  static Result<EcSigningKey> adopt(std::shared_ptr<evp_pkey_st> key, std::string kid);

  std::shared_ptr<evp_pkey_st> key_;
  std::string kid_;
  std::string x_, y_;  // affine coordinates, 32 bytes each
};

// {"alg":"ES256","typ":"JWT","kid":…} . claims . signature.
std::string sign_es256(const json::object& claims, const EcSigningKey& key);

}  // namespace rtsync::server::auth
