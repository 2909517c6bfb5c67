// RS256/ES256 verification with keys from a JWKS, key rotation on virtual time, and an attacker's
// tokens: foreign keys, algorithm confusion, `none`, expired tokens, broken and oversized key sets.
#include <gtest/gtest.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include "jwt_fixture.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>

#include "rtsync/core/log.hpp"
#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/server/auth/jwks.hpp"
#include "rtsync/server/auth/jwks_source.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/auth/names.hpp"

namespace rtsync::server::auth {
namespace {

using namespace std::chrono_literals;

using namespace test;  // NOLINT: kNow, kNowS, kSecret

json::object user_claims(std::string role, std::int64_t exp) {
  json::object c;
  c["role"] = role;
  c["exp"] = exp;
  c["sub"] = "user-1";
  return c;
}

std::string b64(std::string_view s) {
  return base64url_encode(s);
}

std::string compact(const json::object& header, const json::object& payload) {
  return b64(json::serialize(header)) + "." + b64(json::serialize(payload));
}

json::object header(std::string alg, std::string kid = {}) {
  json::object h;
  h["alg"] = alg;
  h["typ"] = "JWT";
  if (!kid.empty()) h["kid"] = kid;
  return h;
}

// An RSA test key: signs RS256 and exports its public JWK.
struct RsaKey {
  std::shared_ptr<EVP_PKEY> key{EVP_RSA_gen(2048), EVP_PKEY_free};
  std::string kid = "rsa-1";

  std::string sign(std::string_view input) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get());
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    return sig;
  }
  std::string token(const json::object& payload, std::string alg = "RS256") const {
    auto input = compact(header(alg, kid), payload);
    return input + "." + b64(sign(input));
  }
  static std::string bn(EVP_PKEY* k, const char* name) {
    BIGNUM* b = nullptr;
    EVP_PKEY_get_bn_param(k, name, &b);
    std::string out(static_cast<std::size_t>(BN_num_bytes(b)), '\0');
    BN_bn2bin(b, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(b);
    return out;
  }
  json::object jwk() const {
    json::object o;
    o["kty"] = "RSA";
    o["kid"] = kid;
    o["alg"] = "RS256";
    o["use"] = "sig";
    o["n"] = b64(bn(key.get(), OSSL_PKEY_PARAM_RSA_N));
    o["e"] = b64(bn(key.get(), OSSL_PKEY_PARAM_RSA_E));
    return o;
  }
  std::string public_pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
  }
};

const RsaKey& rsa() {
  static const RsaKey k;  // RSA generation is slow: one key for the suite
  return k;
}

EcSigningKey ec(std::string kid) {
  auto k = EcSigningKey::generate(std::move(kid));
  EXPECT_TRUE(k.ok());
  return std::move(k.value());
}

std::string jwks_text(std::initializer_list<json::object> keys) {
  json::array a;
  for (const auto& k : keys)
    a.push_back(k);
  json::object o;
  o["keys"] = std::move(a);
  return json::serialize(o);
}

std::shared_ptr<KeyRing> ring_of(std::string_view text) {
  auto set = JwkSet::parse(text);
  EXPECT_TRUE(set.ok()) << (set.ok() ? "" : set.error().describe());
  auto ring = std::make_shared<KeyRing>();
  if (set.ok()) ring->replace(std::move(set.value()));
  return ring;
}

TEST(Jwks, Es256TokenFromTheKeySetIsAccepted) {
  auto key = ec("ec-1");
  JwtVerifier v(kSecret, ring_of(jwks_text({key.public_jwk()})));
  auto token = sign_es256(user_claims("authenticated", kNowS + 60), key);
  auto r = v.verify(token, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().role, "authenticated");
  EXPECT_EQ(r.value().claims.at("sub").as_string(), "user-1");
  // The signature is JWS's raw r||s.
  auto sig = base64url_decode(token.substr(token.rfind('.') + 1));
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->size(), 64u);
}

TEST(Jwks, Rs256TokenFromTheKeySetIsAccepted) {
  JwtVerifier v(kSecret, ring_of(jwks_text({rsa().jwk()})));
  auto r = v.verify(rsa().token(user_claims("anon", kNowS + 60)), kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().role, "anon");
}

TEST(Jwks, Hs256KeepsWorkingNextToAKeySet) {
  auto key = ec("ec-1");
  JwtVerifier v(kSecret, ring_of(jwks_text({key.public_jwk(), rsa().jwk()})));
  auto r = v.verify(sign_hs256(user_claims("anon", kNowS + 60), kSecret), kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(
      v.verify(sign_hs256(user_claims("anon", kNowS + 60), "another-secret-of-32-bytes-at-least!"),
               kNow)
          .ok());
}

TEST(Jwks, TokenWithoutKidUsesTheOnlyKeyOfItsAlgorithm) {
  auto key = ec("ec-1");
  JwtVerifier v(kSecret, ring_of(jwks_text({key.public_jwk()})));
  auto input = compact(header("ES256"), user_claims("anon", kNowS + 60));
  EXPECT_TRUE(v.verify(input + "." + b64(key.sign(input)), kNow).ok());
  // With two ES256 keys a token must say which one.
  auto other = ec("ec-2");
  JwtVerifier two(kSecret, ring_of(jwks_text({key.public_jwk(), other.public_jwk()})));
  auto r = two.verify(input + "." + b64(key.sign(input)), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::bad_signature);
}

// --- an attacker's tokens ---

TEST(JwksAttack, TokenSignedByAKeyNotInTheSetIsRefused) {
  auto trusted = ec("ec-1");
  auto attacker = ec("ec-1");  // same kid, different key
  JwtVerifier v(kSecret, ring_of(jwks_text({trusted.public_jwk()})));
  auto r = v.verify(sign_es256(user_claims("service_role", kNowS + 60), attacker), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::bad_signature);
  EXPECT_EQ(r.error().join_reason(), "JwtSignatureError: Failed to validate JWT signature");
}

TEST(JwksAttack, UnknownKidIsRefused) {
  auto trusted = ec("ec-1");
  auto attacker = ec("attacker");
  JwtVerifier v(kSecret, ring_of(jwks_text({trusted.public_jwk()})));
  auto r = v.verify(sign_es256(user_claims("service_role", kNowS + 60), attacker), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::bad_signature);
  // Without any key set at all, asymmetric tokens are refused too.
  JwtVerifier hs_only(kSecret);
  EXPECT_FALSE(hs_only.verify(sign_es256(user_claims("anon", kNowS + 60), trusted), kNow).ok());
}

TEST(JwksAttack, KidOfAnRsaKeyWithAlgEs256IsRefused) {
  auto attacker = ec("x");
  JwtVerifier v(kSecret, ring_of(jwks_text({rsa().jwk()})));
  auto input = compact(header("ES256", rsa().kid), user_claims("service_role", kNowS + 60));
  auto r = v.verify(input + "." + b64(attacker.sign(input)), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::malformed);
}

TEST(JwksAttack, Hs256WithTheRsaPublicKeyAsSecretIsRefused) {
  JwtVerifier v(kSecret, ring_of(jwks_text({rsa().jwk()})));
  // Every form of the public key an attacker could feed a library that uses "the key" as the
  // HMAC secret: PEM, the raw modulus, the JWK text.
  for (const std::string& secret :
       {rsa().public_pem(), RsaKey::bn(rsa().key.get(), OSSL_PKEY_PARAM_RSA_N),
        json::serialize(rsa().jwk())}) {
    for (const std::string& kid : {std::string(), rsa().kid}) {
      auto input = compact(header("HS256", kid), user_claims("service_role", kNowS + 60));
      unsigned char mac[32];
      unsigned int len = 0;
      HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
      auto r =
          v.verify(input + "." + b64(std::string_view(reinterpret_cast<char*>(mac), len)), kNow);
      EXPECT_FALSE(r.ok()) << kid;
    }
  }
}

TEST(JwksAttack, AlgNoneIsRefused) {
  auto key = ec("ec-1");
  JwtVerifier v(kSecret, ring_of(jwks_text({key.public_jwk()})));
  for (std::string alg : {"none", "None", "NONE", "ES384", "RS512", "PS256", "HS512"}) {
    auto input = compact(header(alg, "ec-1"), user_claims("service_role", kNowS + 60));
    for (const std::string& sig : {std::string(), b64(key.sign(input))}) {
      auto r = v.verify(input + "." + sig, kNow);
      ASSERT_FALSE(r.ok()) << alg;
      EXPECT_EQ(r.error().fault, JwtFault::malformed) << alg;
    }
  }
}

TEST(JwksAttack, ExpiredTokenIsRefused) {
  auto key = ec("ec-1");
  JwtVerifier v(kSecret, ring_of(jwks_text({key.public_jwk()})), 2s);
  auto r = v.verify(sign_es256(user_claims("authenticated", kNowS - 2), key), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::expired);
  EXPECT_EQ(r.error().message, "Token has expired 2 seconds ago");
  EXPECT_TRUE(v.verify(sign_es256(user_claims("authenticated", kNowS - 1), key), kNow).ok());
}

TEST(JwksAttack, TamperedPayloadAndDerSignaturesAreRefused) {
  auto key = ec("ec-1");
  JwtVerifier v(kSecret, ring_of(jwks_text({key.public_jwk()})));
  auto token = sign_es256(user_claims("authenticated", kNowS + 60), key);
  auto dot1 = token.find('.');
  auto dot2 = token.rfind('.');
  auto forged = token.substr(0, dot1) + "." +
                b64(json::serialize(user_claims("service_role", kNowS + 60))) + token.substr(dot2);
  EXPECT_EQ(v.verify(forged, kNow).error().fault, JwtFault::bad_signature);
  // Signatures of the wrong length (a DER-encoded one is 70-72 bytes) are refused.
  auto input = token.substr(0, dot2);
  auto raw = key.sign(input);
  EXPECT_FALSE(v.verify(input + "." + b64(raw + raw), kNow).ok());
  EXPECT_FALSE(v.verify(input + "." + b64(raw.substr(0, 63)), kNow).ok());
}

TEST(JwksAttack, EmptySecretNeverVerifiesHs256) {
  JwtVerifier v("", ring_of(jwks_text({rsa().jwk()})));
  auto r = v.verify(sign_hs256(user_claims("service_role", kNowS + 60), ""), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().fault, JwtFault::bad_signature);
}

// --- key set parsing ---

TEST(JwkSetParse, RefusesGarbageOversizedAndBadKeys) {
  EXPECT_EQ(JwkSet::parse("not json").error().code, Errc::invalid_json);
  EXPECT_EQ(JwkSet::parse("{\"keys\":{}}").error().code, Errc::invalid_argument);
  EXPECT_EQ(JwkSet::parse(std::string(kMaxJwksBytes + 1, ' ')).error().code, Errc::too_large);
  // Too many keys.
  json::array many;
  auto key = ec("k").public_jwk();
  for (std::size_t i = 0; i <= kMaxJwksKeys; ++i) {
    key["kid"] = "k" + std::to_string(i);
    many.push_back(key);
  }
  json::object o;
  o["keys"] = many;
  EXPECT_EQ(JwkSet::parse(json::serialize(o)).error().code, Errc::too_large);
  // Duplicate kid.
  auto a = ec("same").public_jwk();
  auto b = ec("same").public_jwk();
  EXPECT_EQ(JwkSet::parse(jwks_text({a, b})).error().code, Errc::invalid_argument);
  // A point that is not on P-256.
  auto off = ec("off").public_jwk();
  auto y = *base64url_decode(std::string(off["y"].as_string()));
  y[31] = static_cast<char>(y[31] ^ 1);
  off["y"] = b64(y);
  EXPECT_EQ(JwkSet::parse(jwks_text({off})).error().code, Errc::invalid_argument);
  // An RSA key shorter than 2048 bits.
  std::shared_ptr<EVP_PKEY> small(EVP_RSA_gen(1024), EVP_PKEY_free);
  json::object s;
  s["kty"] = "RSA";
  s["n"] = b64(RsaKey::bn(small.get(), OSSL_PKEY_PARAM_RSA_N));
  s["e"] = b64(RsaKey::bn(small.get(), OSSL_PKEY_PARAM_RSA_E));
  EXPECT_EQ(JwkSet::parse(jwks_text({s})).error().code, Errc::invalid_argument);
}

TEST(JwkSetParse, SkipsKeysNotForSigningWithOurAlgorithms) {
  json::object oct;
  oct["kty"] = "oct";
  oct["k"] = b64(kSecret);
  oct["kid"] = "hmac";
  auto enc = ec("enc").public_jwk();
  enc["use"] = "enc";
  auto es384 = ec("es384").public_jwk();
  es384["alg"] = "ES384";
  auto good = ec("good").public_jwk();
  auto set = JwkSet::parse(jwks_text({oct, enc, es384, good}));
  ASSERT_TRUE(set.ok()) << set.error().describe();
  ASSERT_EQ(set.value().keys().size(), 1u);
  EXPECT_EQ(set.value().keys()[0].kid, "good");
  EXPECT_EQ(set.value().skipped(), 3u);
}

// --- opaque API keys ---

TEST(ApiKeys, OpaqueKeysStandForAnonAndServiceRole) {
  JwtVerifier v(kSecret);
  v.set_api_keys("sb_publishable_abc123", "sb_secret_def456");
  auto anon = v.verify("sb_publishable_abc123", kNow);
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon.value().role, "anon");
  EXPECT_FALSE(v.check_time(anon.value(), kNow + std::chrono::hours(24 * 365 * 100)));
  // What the realtime connection schedules its expiry check at must stay far in the future.
  EXPECT_GT(anon.value().expires_at() + v.leeway(), kNow + std::chrono::hours(24 * 365 * 100));
  auto service = v.verify("sb_secret_def456", kNow);
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service.value().role, "service_role");
  EXPECT_FALSE(v.verify("sb_secret_def45", kNow).ok());
  EXPECT_FALSE(v.verify("sb_publishable_abc1234", kNow).ok());
  EXPECT_FALSE(v.verify("", kNow).ok());
  JwtVerifier none(kSecret);
  EXPECT_FALSE(none.verify("sb_publishable_abc123", kNow).ok());
}

// --- rotation through the JWKS file ---

class JwksFile : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> n{0};
    path_ = std::filesystem::temp_directory_path() /
            ("rtsync-jwks-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".json");
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void write(std::string_view text) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << text;
  }
  std::filesystem::path path_;
  core::ManualScheduler sched_;
  std::shared_ptr<KeyRing> ring_ = std::make_shared<KeyRing>();
};

TEST_F(JwksFile, RotationTakesEffectExactlyAtTheReloadInterval) {
  auto old_key = ec("2026-01");
  auto new_key = ec("2026-02");
  write(jwks_text({old_key.public_jwk()}));
  JwksSource source(sched_, ring_, {path_.string(), 300s, {}});
  ASSERT_TRUE(source.start().ok());
  JwtVerifier v(kSecret, ring_);
  auto old_token = sign_es256(user_claims("authenticated", kNowS + 3600), old_key);
  auto new_token = sign_es256(user_claims("authenticated", kNowS + 3600), new_key);
  EXPECT_TRUE(v.verify(old_token, kNow).ok());
  EXPECT_FALSE(v.verify(new_token, kNow).ok());

  write(jwks_text({new_key.public_jwk()}));
  EXPECT_EQ(sched_.time_until(timers::JwksReload), core::Duration(300s));
  sched_.advance(300s - 1ns);
  EXPECT_TRUE(v.verify(old_token, kNow).ok()) << "reloaded before the interval";
  EXPECT_FALSE(v.verify(new_token, kNow).ok());
  sched_.advance(1ns);
  EXPECT_FALSE(v.verify(old_token, kNow).ok()) << "not reloaded at the interval";
  EXPECT_TRUE(v.verify(new_token, kNow).ok());
  EXPECT_EQ(source.loads(), 2u);
  EXPECT_EQ(sched_.time_until(timers::JwksReload), core::Duration(300s));
}

TEST_F(JwksFile, ReloadOnDemandRestartsTheInterval) {
  auto a = ec("a");
  auto b = ec("b");
  write(jwks_text({a.public_jwk()}));
  JwksSource source(sched_, ring_, {"file:" + path_.string(), 300s, {}});
  ASSERT_TRUE(source.start().ok());
  JwtVerifier v(kSecret, ring_);
  sched_.advance(100s);
  write(jwks_text({a.public_jwk(), b.public_jwk()}));
  ASSERT_TRUE(source.reload().ok());  // what SIGHUP does
  EXPECT_TRUE(v.verify(sign_es256(user_claims("anon", kNowS + 60), b), kNow).ok());
  EXPECT_EQ(sched_.time_until(timers::JwksReload), core::Duration(300s));
}

TEST_F(JwksFile, GarbageKeepsTheLastGoodKeysAndLogsAnError) {
  auto a = ec("a");
  write(jwks_text({a.public_jwk()}));
  JwksSource source(sched_, ring_, {path_.string(), 60s, {}});
  ASSERT_TRUE(source.start().ok());
  JwtVerifier v(kSecret, ring_);
  auto token = sign_es256(user_claims("anon", kNowS + 3600), a);

  log::Capture logs;
  write("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"garbage");
  sched_.advance(60s);
  EXPECT_EQ(source.failures(), 1u);
  EXPECT_TRUE(v.verify(token, kNow).ok());
  EXPECT_TRUE(logs.contains("JWKS reload failed, keeping the previous 1 key(s)"));

  // Oversized: refused without reading it all, keys kept.
  write("{\"keys\":[]" + std::string(kMaxJwksBytes, ' ') + "}");
  sched_.advance(60s);
  EXPECT_EQ(source.failures(), 2u);
  EXPECT_TRUE(v.verify(token, kNow).ok());
  EXPECT_TRUE(logs.contains("too_large"));

  // A deleted file, then the file back: the next reload recovers.
  std::filesystem::remove(path_);
  sched_.advance(60s);
  EXPECT_EQ(source.failures(), 3u);
  EXPECT_TRUE(v.verify(token, kNow).ok());
  write(jwks_text({}));
  sched_.advance(60s);
  EXPECT_FALSE(v.verify(token, kNow).ok()) << "an empty, valid key set removes the key";
}

TEST_F(JwksFile, StartFailsOnAnUnreadableOrBrokenFirstLoadAndOnUrls) {
  JwksSource missing(sched_, ring_, {path_.string(), 60s, {}});
  EXPECT_EQ(missing.start().error().code, Errc::io);
  write("[]");
  JwksSource broken(sched_, ring_, {path_.string(), 60s, {}});
  EXPECT_FALSE(broken.start().ok());
  JwksSource url(sched_, ring_, {"https://example.invalid/jwks.json", 60s, {}});
  EXPECT_EQ(url.start().error().code, Errc::invalid_argument);
  EXPECT_FALSE(sched_.pending(timers::JwksReload));
}

TEST_F(JwksFile, ExtraKeysSurviveEveryReload) {
  auto own = ec("auth-signing");
  auto a = ec("a");
  write(jwks_text({a.public_jwk()}));
  JwksSource source(sched_, ring_, {path_.string(), 60s, JwkSet::of({own.public_key()})});
  ASSERT_TRUE(source.start().ok());
  JwtVerifier v(kSecret, ring_);
  write(jwks_text({}));
  sched_.advance(60s);
  EXPECT_TRUE(v.verify(sign_es256(user_claims("anon", kNowS + 60), own), kNow).ok());
  EXPECT_FALSE(v.verify(sign_es256(user_claims("anon", kNowS + 60), a), kNow).ok());
}

// An http(s) location is read through the injected fetch, asynchronously; these drive it by hand.
class JwksUrl : public ::testing::Test {
 protected:
  struct Request {
    std::string url;
    std::function<void(Result<std::string>)> done;
  };
  JwksSourceOptions options(std::chrono::seconds interval = 300s) {
    JwksSourceOptions o{kUrl, interval, {}};
    o.fetch = [this](const std::string& url, std::function<void(Result<std::string>)> done) {
      requests_.push_back({url, std::move(done)});
    };
    o.on_load = [this](const Result<void>& r) { loads_.push_back(r); };
    return o;
  }
  // Answers the oldest unanswered request.
  void answer(Result<std::string> body) {
    ASSERT_GT(requests_.size(), answered_);
    requests_[answered_++].done(std::move(body));
  }
  static constexpr const char* kUrl = "https://project.example/auth/v1/.well-known/jwks.json";
  core::ManualScheduler sched_;
  std::shared_ptr<KeyRing> ring_ = std::make_shared<KeyRing>();
  std::vector<Request> requests_;
  std::size_t answered_ = 0;
  std::vector<Result<void>> loads_;
};

TEST_F(JwksUrl, TheFirstReadInstallsTheKeysAndStartsTheInterval) {
  auto a = ec("a");
  JwksSource source(sched_, ring_, options());
  ASSERT_TRUE(source.start().ok());
  EXPECT_TRUE(source.remote());
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0].url, kUrl);
  EXPECT_TRUE(loads_.empty()) << "nothing is known before the answer";
  EXPECT_FALSE(sched_.pending(timers::JwksReload)) << "the interval starts with the answer";

  JwtVerifier v(kSecret, ring_);
  auto token = sign_es256(user_claims("authenticated", kNowS + 3600), a);
  EXPECT_FALSE(v.verify(token, kNow).ok());
  answer(jwks_text({a.public_jwk()}));
  ASSERT_EQ(loads_.size(), 1u);
  EXPECT_TRUE(loads_[0].ok());
  EXPECT_TRUE(v.verify(token, kNow).ok());
  EXPECT_EQ(source.loads(), 1u);
  EXPECT_EQ(sched_.time_until(timers::JwksReload), core::Duration(300s));

  sched_.advance(300s - 1ns);
  EXPECT_EQ(requests_.size(), 1u);
  sched_.advance(1ns);
  EXPECT_EQ(requests_.size(), 2u) << "read again exactly at the interval";
}

TEST_F(JwksUrl, AFailedReadKeepsTheKeysAndAReadInFlightAbsorbsReloads) {
  auto a = ec("a");
  auto b = ec("b");
  JwksSource source(sched_, ring_, options(60s));
  ASSERT_TRUE(source.start().ok());
  answer(jwks_text({a.public_jwk()}));
  JwtVerifier v(kSecret, ring_);
  auto token_a = sign_es256(user_claims("anon", kNowS + 3600), a);

  ASSERT_TRUE(source.reload().ok());
  ASSERT_TRUE(source.reload().ok());
  EXPECT_EQ(requests_.size(), 2u) << "one read in flight answers both reloads";
  EXPECT_FALSE(sched_.pending(timers::JwksReload));

  log::Capture logs;
  answer(make_error(Errc::remote, "the JWKS URL answered HTTP 503"));
  EXPECT_EQ(source.failures(), 1u);
  ASSERT_EQ(loads_.size(), 2u);
  EXPECT_FALSE(loads_[1].ok());
  EXPECT_TRUE(v.verify(token_a, kNow).ok()) << "a failed read keeps the last good keys";
  EXPECT_TRUE(logs.contains("JWKS reload failed, keeping the previous 1 key(s)"));
  EXPECT_TRUE(logs.contains("HTTP 503"));
  EXPECT_EQ(sched_.time_until(timers::JwksReload), core::Duration(60s));

  sched_.advance(60s);
  answer(std::string("{\"keys\":[]") + std::string(kMaxJwksBytes, ' ') + "}");
  EXPECT_EQ(source.failures(), 2u);
  EXPECT_EQ(loads_.back().error().code, Errc::too_large);
  EXPECT_TRUE(v.verify(token_a, kNow).ok());

  sched_.advance(60s);
  answer(jwks_text({b.public_jwk()}));  // rotation
  EXPECT_FALSE(v.verify(token_a, kNow).ok());
  EXPECT_TRUE(v.verify(sign_es256(user_claims("anon", kNowS + 3600), b), kNow).ok());
}

TEST_F(JwksUrl, AFailedFirstReadIsReportedAndAnAnswerAfterDestructionIsIgnored) {
  {
    JwksSource source(sched_, ring_, options());
    ASSERT_TRUE(source.start().ok());
    answer(std::string("not json"));
    ASSERT_EQ(loads_.size(), 1u);
    EXPECT_FALSE(loads_[0].ok());
    EXPECT_EQ(source.failures(), 0u) << "the first read's failure is start's to report";
    ASSERT_TRUE(source.reload().ok());
  }
  answer(jwks_text({ec("late").public_jwk()}));  // the source is gone: nothing happens
  EXPECT_EQ(loads_.size(), 1u);
  EXPECT_TRUE(ring_->current()->keys().empty());

  JwksSourceOptions no_fetch{kUrl, 60s, {}};
  JwksSource url(sched_, ring_, no_fetch);
  EXPECT_EQ(url.start().error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace rtsync::server::auth
