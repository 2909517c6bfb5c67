// Runs the supabase-js conformance script (supabase_js.mjs) with Node against a throwaway
// PostgreSQL with the demo schema and the real server (testkit TestStack: rtsync::server::Server,
// which serves realtime, /rest/v1 and /auth/v1 on one listener, as `rtsync server` does).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "../node_runner.hpp"
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

}  // namespace
}  // namespace rtsync::test
