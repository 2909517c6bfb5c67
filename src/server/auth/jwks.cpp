#include "rtsync/server/auth/jwks.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <set>

#include "rtsync/server/auth/jwt.hpp"

namespace rtsync::server::auth {

namespace {

constexpr int kMinRsaBits = 2048;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) {
  return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
}

Error bad_key(std::size_t index, std::string why) {
  return make_error(Errc::invalid_argument,
                    "JWKS key " + std::to_string(index) + ": " + std::move(why));
}

std::optional<std::string> b64_field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (!v || !v->is_string()) return std::nullopt;
  auto s = v->get_string();
  return base64url_decode(std::string_view(s.data(), s.size()));
}

std::string str_field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (!v || !v->is_string()) return {};
  return std::string(v->get_string());
}

std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  if (!params) return nullptr;
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) {
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  if (!pkey) return nullptr;
  auto owned = own(pkey);
  // fromdata does not check that an EC point lies on the curve: an invalid-curve point must never
  // become a verification key.
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  int ok = check ? EVP_PKEY_public_check(check) : 0;
  EVP_PKEY_CTX_free(check);
  return ok == 1 ? owned : nullptr;
}

std::shared_ptr<EVP_PKEY> rsa_key(const std::string& n, const std::string& e) {
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                         static_cast<int>(n.size()), nullptr);
  BIGNUM* be = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                         static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  std::shared_ptr<EVP_PKEY> key;
  if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1) {
    key = from_params("RSA", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  return key;
}

std::shared_ptr<EVP_PKEY> p256_key(const std::string& x, const std::string& y) {
  std::string point = "\x04" + x + y;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  std::shared_ptr<EVP_PKEY> key;
  if (bld &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) ==
          1) {
    key = from_params("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  return key;
}

// Parses one JWK. nullopt: well-formed but not a key rtsync verifies with (skipped).
Result<std::optional<Jwk>> parse_key(const json::value& v, std::size_t index) {
  if (!v.is_object()) return bad_key(index, "not an object");
  const auto& o = v.get_object();
  std::string kty = str_field(o, "kty");
  std::string use = str_field(o, "use");
  std::string alg_name = str_field(o, "alg");
  if (kty.empty()) return bad_key(index, "no kty");
  if (!use.empty() && use != "sig") return std::optional<Jwk>{};
  Jwk k;
  k.kid = str_field(o, "kid");
  if (kty == "RSA") {
    k.alg = JwsAlg::rs256;
    auto n = b64_field(o, "n");
    auto e = b64_field(o, "e");
    if (!n || !e || n->empty() || e->empty()) return bad_key(index, "RSA key without n or e");
    k.key = rsa_key(*n, *e);
    if (!k.key) return bad_key(index, "not a valid RSA public key");
    if (EVP_PKEY_get_bits(k.key.get()) < kMinRsaBits) {
      return bad_key(index, "RSA key shorter than 2048 bits");
    }
  } else if (kty == "EC") {
    if (str_field(o, "crv") != "P-256") return std::optional<Jwk>{};
    k.alg = JwsAlg::es256;
    auto x = b64_field(o, "x");
    auto y = b64_field(o, "y");
    if (!x || !y || x->size() != 32 || y->size() != 32) {
      return bad_key(index, "P-256 key without 32-byte x and y");
    }
    k.key = p256_key(*x, *y);
    if (!k.key) return bad_key(index, "not a point on P-256");
  } else {
    return std::optional<Jwk>{};  // "oct", "OKP", …: not verified with
  }
  if (!alg_name.empty() && alg_name != to_string(k.alg)) {
    // A key declared for another algorithm (RS384, PS256, …) is not used at all: pinning is to
    // what the key set says, never widened.
    return std::optional<Jwk>{};
  }
  return std::optional<Jwk>{std::move(k)};
}

std::string bn_bytes(const BIGNUM* bn, int width) {
  std::string out(static_cast<std::size_t>(width), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), width);
  return out;
}

Result<EcSigningKey> not_p256() {
  return make_error(Errc::invalid_argument, "signing key is not an EC P-256 private key");
}

}  // namespace

std::string_view to_string(JwsAlg alg) noexcept {
  switch (alg) {
    case JwsAlg::hs256:
      return "HS256";
    case JwsAlg::rs256:
      return "RS256";
    case JwsAlg::es256:
      return "ES256";
  }
  return "?";
}

std::optional<JwsAlg> jws_alg_from_string(std::string_view name) noexcept {
  if (name == "HS256") return JwsAlg::hs256;
  if (name == "RS256") return JwsAlg::rs256;
  if (name == "ES256") return JwsAlg::es256;
  return std::nullopt;
}

Result<JwkSet> JwkSet::parse(std::string_view text) {
  if (text.size() > kMaxJwksBytes) {
    return make_error(Errc::too_large, "JWKS is " + std::to_string(text.size()) +
                                           " bytes, more than " + std::to_string(kMaxJwksBytes));
  }
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) return make_error(Errc::invalid_json, "JWKS is not JSON: " + ec.message());
  const json::value* keys = doc.is_object() ? doc.get_object().if_contains("keys") : nullptr;
  if (!keys || !keys->is_array()) {
    return make_error(Errc::invalid_argument, "JWKS has no \"keys\" array");
  }
  JwkSet set;
  std::set<std::string> kids;
  std::size_t index = 0;
  for (const auto& v : keys->get_array()) {
    auto k = parse_key(v, index++);
    if (!k.ok()) return k.error();
    if (!k.value()) {
      ++set.skipped_;
      continue;
    }
    if (set.keys_.size() == kMaxJwksKeys) {
      return make_error(Errc::too_large,
                        "JWKS has more than " + std::to_string(kMaxJwksKeys) + " keys");
    }
    if (!k.value()->kid.empty() && !kids.insert(k.value()->kid).second) {
      return make_error(Errc::invalid_argument, "JWKS names kid \"" + k.value()->kid + "\" twice");
    }
    set.keys_.push_back(std::move(*k.value()));
  }
  return set;
}

const Jwk* JwkSet::find(std::string_view kid, JwsAlg alg) const {
  if (!kid.empty()) {
    const Jwk* k = find_kid(kid);
    return k && k->alg == alg ? k : nullptr;
  }
  const Jwk* only = nullptr;
  for (const auto& k : keys_) {
    if (k.alg != alg) continue;
    if (only) return nullptr;  // ambiguous: a token must name its key
    only = &k;
  }
  return only;
}

const Jwk* JwkSet::find_kid(std::string_view kid) const {
  for (const auto& k : keys_) {
    if (!k.kid.empty() && k.kid == kid) return &k;
  }
  return nullptr;
}

Result<JwkSet> JwkSet::merge(const JwkSet& a, const JwkSet& b) {
  JwkSet out = a;
  for (const auto& k : b.keys_) {
    if (!k.kid.empty() && a.find_kid(k.kid)) {
      return make_error(Errc::invalid_argument, "kid \"" + k.kid + "\" names two keys");
    }
    out.keys_.push_back(k);
  }
  out.skipped_ += b.skipped_;
  return out;
}

JwkSet JwkSet::of(std::vector<Jwk> keys) {
  JwkSet s;
  s.keys_ = std::move(keys);
  return s;
}

std::shared_ptr<const JwkSet> KeyRing::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

void KeyRing::replace(JwkSet set) {
  auto next = std::make_shared<const JwkSet>(std::move(set));
  std::lock_guard lock(mu_);
  current_ = std::move(next);
}

Result<EcSigningKey> EcSigningKey::adopt(std::shared_ptr<EVP_PKEY> key, std::string kid) {
  EcSigningKey k;
  std::string& x_out = k.x_;
  std::string& y_out = k.y_;
  char group[32] = {0};
  std::size_t group_len = 0;
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &group_len) != 1 ||
      std::string_view(group, group_len) != "prime256v1") {
    return not_p256();
  }
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  bool ok = EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
            EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1;
  if (ok) {
    x_out = bn_bytes(x, 32);
    y_out = bn_bytes(y, 32);
  }
  BN_free(x);
  BN_free(y);
  if (!ok) return not_p256();
  if (kid.empty()) {
    // RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order, no spaces.
    std::string canon = R"({"crv":"P-256","kty":"EC","x":")" + base64url_encode(x_out) +
                        R"(","y":")" + base64url_encode(y_out) + R"("})";
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_Digest(canon.data(), canon.size(), digest, &len, EVP_sha256(), nullptr);
    kid = base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), len));
  }
  k.key_ = std::move(key);
  k.kid_ = std::move(kid);
  return k;
}

Result<EcSigningKey> EcSigningKey::from_pem(std::string_view pem, std::string kid) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (!pkey) return make_error(Errc::invalid_argument, "signing key is not a PEM private key");
  return adopt(own(pkey), std::move(kid));
}

Result<EcSigningKey> EcSigningKey::generate(std::string kid) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  if (!pkey) return make_error(Errc::internal, "could not generate a P-256 key");
  return adopt(own(pkey), std::move(kid));
}

json::object EcSigningKey::public_jwk() const {
  json::object o;
  o["kty"] = "EC";
  o["crv"] = "P-256";
  o["x"] = base64url_encode(x_);
  o["y"] = base64url_encode(y_);
  o["kid"] = kid_;
  o["alg"] = "ES256";
  o["use"] = "sig";
  return o;
}

Jwk EcSigningKey::public_key() const {
  return Jwk{kid_, JwsAlg::es256, p256_key(x_, y_)};
}

std::string EcSigningKey::sign(std::string_view input) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string der;
  std::size_t len = 0;
  if (ctx && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_.get()) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) == 1) {
    der.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1) {
      der.resize(len);
    } else {
      der.clear();
    }
  }
  EVP_MD_CTX_free(ctx);
  if (der.empty()) return {};
  // OpenSSL produces a DER ECDSA-Sig-Value; JWS wants r and s as fixed 32-byte big-endian values.
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig) return {};
  std::string out = bn_bytes(ECDSA_SIG_get0_r(sig), 32) + bn_bytes(ECDSA_SIG_get0_s(sig), 32);
  ECDSA_SIG_free(sig);
  return out;
}

std::string EcSigningKey::private_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio && PEM_write_bio_PrivateKey(bio, key_.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<std::size_t>(n));
  }
  BIO_free(bio);
  return out;
}

std::string sign_es256(const json::object& claims, const EcSigningKey& key) {
  json::object header;
  header["alg"] = "ES256";
  header["typ"] = "JWT";
  header["kid"] = key.kid();
  std::string input = base64url_encode(json::serialize(header));
  input.push_back('.');
  input += base64url_encode(json::serialize(claims));
  auto sig = key.sign(input);
  input.push_back('.');
  input += base64url_encode(sig);
  return input;
}

}  // namespace rtsync::server::auth
