// Runs the realtime-js conformance script (realtime_js.mjs) with Node against an in-process
// server and a throwaway PostgreSQL, once per protocol version.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "node_runner.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "test_stack.hpp"

namespace rtsync::testkit {
namespace {

using conformance::run_command;
using conformance::shell_quote;

void conformance(const std::string& vsn) {
  auto stack = TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  auto setup = s.sql(R"(
    create table if not exists public.conf_items (id serial primary key, kind text, n int);
    grant select on public.conf_items to anon, authenticated;
    alter publication supabase_realtime add table public.conf_items;)");
  ASSERT_TRUE(setup.ok()) << setup.error().describe();

  auto bad = server::auth::sign_hs256(json::object{{"role", "anon"}, {"exp", 4102444800}},
                                      "some-other-secret-entirely-0123456789");
  std::string pg_url =
      "postgres://postgres@127.0.0.1:" + std::to_string(s.pg().port()) + "/postgres";
  std::string env = "RTSYNC_HTTP=" + shell_quote(s.server().http_url()) +
                    " ANON_KEY=" + shell_quote(s.anon_key()) +
                    " SERVICE_KEY=" + shell_quote(s.service_key()) + " USER_KEY=" +
                    shell_quote(s.key("authenticated", std::chrono::hours(1),
                                      "44444444-4444-4444-4444-444444444444")) +
                    " BAD_KEY=" + shell_quote(bad) + " PG_URL=" + shell_quote(pg_url) +
                    " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r = run_command(env + " node " + shell_quote(RTSYNC_CONFORMANCE_DIR "/realtime_js.mjs") +
                       " " + vsn);
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
}

// Presence: two realtime-js clients track in one channel (presence_js.mjs).
void presence_conformance(const std::string& vsn) {
  auto stack = TestStack::start();
  ASSERT_TRUE(stack.ok()) << stack.error().describe();
  auto& s = *stack.value();
  std::string env = "RTSYNC_HTTP=" + shell_quote(s.server().http_url()) +
                    " ANON_KEY=" + shell_quote(s.anon_key()) +
                    " PEERS_DIR=" + shell_quote(RTSYNC_PEERS_DIR);
  auto r = run_command(env + " node " + shell_quote(RTSYNC_CONFORMANCE_DIR "/presence_js.mjs") +
                       " " + vsn);
  std::cout << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(RealtimeJsConformance, PresenceVsn1) {
  presence_conformance("1.0.0");
}
TEST(RealtimeJsConformance, PresenceVsn2) {
  presence_conformance("2.0.0");
}

TEST(RealtimeJsConformance, Vsn1) {
  conformance("1.0.0");
}
TEST(RealtimeJsConformance, Vsn2) {
  conformance("2.0.0");
}

}  // namespace
}  // namespace rtsync::testkit
