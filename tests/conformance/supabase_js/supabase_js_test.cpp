// Runs the supabase-js conformance script (supabase_js.mjs) with Node against a throwaway
// PostgreSQL with the demo schema: the realtime server (testkit TestStack) and /rest/v1 +
// /auth/v1 (RestService + GoTrueService on their own loop thread, served by the test host until
// `rtsync server` serves them itself).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/gotrue/gotrue_service.hpp"
#include "rtsync/server/rest/db_pool.hpp"
#include "rtsync/server/rest/migrations.hpp"
#include "rtsync/server/rest/rest_service.hpp"
#include "service_host.hpp"
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

// REST and auth on their own loop thread (node blocks this one).
struct RestStack {
  core::EventLoop loop;
  std::shared_ptr<server::rest::DbPool> pool;
  std::unique_ptr<server::rest::RestService> rest;
  std::unique_ptr<server::gotrue::GoTrueService> auth;
  std::unique_ptr<ServiceHost> host;
  std::string url;

  Result<void> start(const std::string& conninfo) {
    loop.start();
    Result<void> out;
    loop.run_sync([&] {
      pool = std::make_shared<server::rest::DbPool>(loop.io_context(), conninfo, 4);
      rest = std::make_unique<server::rest::RestService>(
          pool, server::auth::JwtVerifier(std::string(testkit::kTestSecret)), loop.scheduler());
      server::gotrue::GoTrueOptions go;
      go.jwt_secret = std::string(testkit::kTestSecret);
      auth = std::make_unique<server::gotrue::GoTrueService>(pool, loop.scheduler(), go);
      host = std::make_unique<ServiceHost>(
          loop.io_context(), std::vector<server::rest::HttpService*>{rest.get(), auth.get()});
      auto port = host->listen(0);
      if (!port) {
        out = port.error();
        return;
      }
      url = host->url();
    });
    return out;
  }
  ~RestStack() {
    loop.run_sync([&] {
      host.reset();
      auth.reset();
      rest.reset();
      pool.reset();
    });
    loop.stop();
    loop.join();
  }
};

TEST(SupabaseJsConformance, AuthRestAndRealtime) {
  auto stack = testkit::TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  auto migrated = server::migrate::run_migrations(s.conninfo());
  ASSERT_TRUE(migrated.ok()) << migrated.error().describe();
  RestStack rest;
  auto started = rest.start(s.conninfo());
  ASSERT_TRUE(started.ok()) << started.error().describe();

  const std::string env =
      "RTSYNC_URL=" + shell_quote(s.server().http_url()) + " REST_URL=" + shell_quote(rest.url) +
      " ANON_KEY=" + shell_quote(s.anon_key()) + " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r = run_command(env + " node " + shell_quote(RTSYNC_SUPABASE_JS_DIR "/supabase_js.mjs"));
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
}

}  // namespace
}  // namespace rtsync::test
