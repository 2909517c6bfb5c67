// Runs the supabase-js conformance script (supabase_js.mjs) with Node against a throwaway
// PostgreSQL with the demo schema and the real server (testkit TestStack: rtsync::server::Server,
// which serves realtime, /rest/v1 and /auth/v1 on one listener, as `rtsync server` does).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "../node_runner.hpp"
#include "rtsync/server/auth/jwks.hpp"
#include "rtsync/server/migrate/migrations.hpp"
#include "test_stack.hpp"

namespace rtsync::test {
namespace {

using conformance::run_command;
using conformance::shell_quote;

TEST(SupabaseJsConformance, AuthRestAndRealtime) {
  auto stack = testkit::TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  auto migrated = server::migrate::run_migrations(s.conninfo());
  ASSERT_TRUE(migrated.ok()) << migrated.error().describe();
  ASSERT_TRUE(s.server().options().rest) << "the server must serve /rest/v1 and /auth/v1";

  // One base URL for everything, as supabase-js addresses a Supabase project.
  const std::string env = "RTSYNC_URL=" + shell_quote(s.server().http_url()) +
                          " ANON_KEY=" + shell_quote(s.anon_key()) +
                          " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r = run_command(env + " node " + shell_quote(RTSYNC_SUPABASE_JS_DIR "/supabase_js.mjs"));
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
}

// Asymmetric keys end to end (supabase_js_es256.mjs): /auth/v1 signs ES256, the server also trusts
// a JWKS file (rotated by the script, re-read every second: no restart), refuses alg confusion, and
// the client holds an opaque publishable key instead of an anon JWT.
TEST(SupabaseJsConformance, Es256SessionsJwksFileAndPublishableKey) {
  auto signing = server::auth::EcSigningKey::generate();
  auto external = server::auth::EcSigningKey::generate("external-2026");
  ASSERT_TRUE(signing.ok() && external.ok());
  const auto jwks_path = std::filesystem::temp_directory_path() /
                         ("rtsync-conformance-jwks-" + std::to_string(::getpid()) + ".json");
  {
    json::object set;
    set["keys"] = json::array{external.value().public_jwk()};
    std::ofstream(jwks_path) << json::serialize(set);
  }
  const std::string publishable = "sb_publishable_rtsync_conformance_0123";
  const std::string secret = "sb_secret_rtsync_conformance_4567";
  testkit::StackOptions so;
  so.configure = [&](server::ServerOptions& o) {
    o.auth_signing_key_pem = signing.value().private_pem();
    o.jwks = jwks_path.string();
    o.publishable_key = publishable;
    o.secret_key = secret;
    o.jwks_reload_interval = std::chrono::seconds(1);  // the script's rotation waits for a read
  };
  auto stack = testkit::TestStack::start(so);
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  auto migrated = server::migrate::run_migrations(s.conninfo());
  ASSERT_TRUE(migrated.ok()) << migrated.error().describe();

  const std::string env = "RTSYNC_URL=" + shell_quote(s.server().http_url()) +
                          " PUBLISHABLE_KEY=" + shell_quote(publishable) +
                          " SECRET_KEY=" + shell_quote(secret) +
                          " JWKS_KEY_PEM=" + shell_quote(external.value().private_pem()) +
                          " JWKS_KEY_KID=" + shell_quote(external.value().kid()) +
                          " JWKS_PATH=" + shell_quote(jwks_path.string()) +
                          " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r =
      run_command(env + " node " + shell_quote(RTSYNC_SUPABASE_JS_DIR "/supabase_js_es256.mjs"));
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
  std::filesystem::remove(jwks_path);
}

}  // namespace
}  // namespace rtsync::test
