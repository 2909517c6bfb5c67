// Runs the supabase-js conformance script (supabase_js.mjs) with Node against a throwaway
// PostgreSQL with the demo schema and the real server (testkit TestStack: rtsync::server::Server,
// which serves realtime, /rest/v1 and /auth/v1 on one listener, as `rtsync server` does).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "rtsync/server/rest/migrations.hpp"
#include "test_stack.hpp"

namespace rtsync::test {
namespace {

struct Run {
  int status = -1;
  std::string output;
};

Run run_command(const std::string& command) {
  Run r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (auto n = fread(buf.data(), 1, buf.size(), p))
    r.output.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

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
