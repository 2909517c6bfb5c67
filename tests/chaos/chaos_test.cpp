// CI's fixed set of short chaos runs (profile `ci`, docs/chaos.md): one per fault, each with a
// fixed seed, against a real PostgreSQL, a real `rtsync server` process and the client library
// with the task binding, while a writer commits across three users' six projects. Each run must
// account for every change the victim may see (delivered once, or inside a gap it was told about
// and refetched after), leak nothing to the attacker, and end with the victim's cache equal to the
// database. RTSYNC_CHAOS_SEED=<n> replays a test with another seed; Chaos.Replay replays a
// campaign run (bench/chaos/run.sh) from its seed.
#include <gtest/gtest.h>

#include <iostream>

#include <thread>

#include "plan.hpp"
#include "rtsync/client/client.hpp"
#include "run.hpp"
#include "world.hpp"

namespace rtsync::chaos {
namespace {

RunResult run_fixed(FaultKind fault, std::uint64_t seed) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(info->test_suite_name()) + "." + info->name();
  const auto s = seed_from_env().value_or(seed);
  const auto plan = make_plan(s, Profile::ci, fault);
  auto r = run_chaos(plan, RTSYNC_CHAOS_BINARY,
                     "RTSYNC_CHAOS_SEED=" + std::to_string(s) +
                         " ctest --test-dir build/dev -R '^" + name + "$' --output-on-failure");
  print(r, std::cout);
  return r;
}

// An outage shorter than the server's history window: every rejoin resumes, none is a gap, and the
// resumed rejoins refetch nothing (the checker already fails a change a resume hid).
void expect_resumed(const RunResult& r, const char* why) {
  EXPECT_GE(r.report.resumed, 1u) << why << "\n" << r.report.summary();
  EXPECT_EQ(r.report.told_gaps, 0u) << r.report.summary();
}

void expect_accounted(const RunResult& r) {
  ASSERT_TRUE(r.error.empty()) << r.error << "\n" << r.diagnostics;
  const auto& c = r.report;
  EXPECT_GT(c.expected, 0u) << "the watched project got no changes: the run proves nothing";
  EXPECT_GT(c.delivered_once, 0u);
  EXPECT_EQ(c.silently_lost(), 0u) << c.summary();
  EXPECT_EQ(c.gap_not_refetched, 0u) << c.summary();
  EXPECT_EQ(c.duplicates, 0u) << c.summary();
  EXPECT_EQ(c.reordered, 0u) << c.summary();
  EXPECT_EQ(c.unknown, 0u) << c.summary();
  EXPECT_EQ(c.leaked, 0u) << c.summary();
  EXPECT_EQ(r.attacker_leaks, 0u);
  EXPECT_TRUE(c.final_cache_matches) << c.final_cache_diff;
  EXPECT_TRUE(c.convergence.has_value());
  EXPECT_TRUE(r.ok()) << "replay: " << r.replay;
}

TEST(Chaos, ClientLinkReset) {
  auto r = run_fixed(FaultKind::client_cut_reset, 1801);
  expect_accounted(r);
  expect_resumed(r, "the cut should have made the client rejoin");
}

TEST(Chaos, ClientLinkPartition) {
  // Shorter than any heartbeat timeout: the link holds its bytes and nothing need be missed.
  expect_accounted(run_fixed(FaultKind::client_cut_partition, 1802));
}

TEST(Chaos, ServerKilledAndRestarted) {
  // The restarted server decodes its history window again from the held-back slot.
  auto r = run_fixed(FaultKind::server_kill, 1803);
  expect_accounted(r);
  expect_resumed(r, "the kill should have made the client rejoin");
}

TEST(Chaos, PostgresRestartFast) {
  expect_accounted(run_fixed(FaultKind::pg_restart_fast, 1804));
}

TEST(Chaos, PostgresRestartImmediate) {
  expect_accounted(run_fixed(FaultKind::pg_restart_immediate, 1805));
}

TEST(Chaos, ReplicationConnectionCut) {
  expect_accounted(run_fixed(FaultKind::replication_cut, 1806));
}

TEST(Chaos, AccessTokenExpiresDuringOutage) {
  // The rejoin waits for the refreshed token, then resumes under its claims.
  auto r = run_fixed(FaultKind::token_expiry, 1807);
  expect_accounted(r);
  expect_resumed(r, "the outage should have made the client rejoin");
}

TEST(Chaos, SlowConsumerIsDroppedAndRecovers) {
  auto r = run_fixed(FaultKind::slow_consumer, 1808);
  expect_accounted(r);
  // The stall never closes the link itself: a rejoin means the server dropped the stalled client.
  // Its backlog of 8 KiB rows is larger than the socket's whole queue: the replay is written as
  // the client reads it (docs/resume.md, paced replay), so the rejoin resumes with no gap.
  expect_resumed(r, "the server should have dropped the stalled client");
}

// The finding of Chaos.AccessTokenExpiresDuringOutage (seed 1807), made deterministic: a token
// refresh whose answer the link loses after the server committed the rotation. The client retries
// with the same refresh token; it must get the rotated token back and stay signed in — not be
// signed out as a token replay (which left the victim subscribed as anon, seeing nothing).
TEST(Chaos, ARefreshWhoseAnswerIsLostKeepsTheSession) {
  Plan plan;
  plan.seed = 1809;
  auto made = ChaosWorld::create(plan, RTSYNC_CHAOS_BINARY);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  auto& w = *made.value();
  auto wait = [](const std::function<bool()>& pred, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  };
  ASSERT_TRUE(wait([&] { return w.victim().live(); }, std::chrono::seconds(20)));
  const std::string user = w.users().front().id;
  auto tokens = [&] {
    auto v =
        w.sql_value("SELECT count(*) FROM auth.refresh_tokens WHERE user_id = $1::uuid", {user});
    return v.ok() ? v.value() : std::string("?");
  };
  ASSERT_EQ(tokens(), "1");

  // The answer is held back, the server rotates, then the link is reset: the answer is lost.
  w.client_link().stall(testkit::Flow::downstream);
  w.victim().with_client([](client::Client& c) { c.session().refresh_now(); });
  ASSERT_TRUE(wait([&] { return tokens() == "2"; }, std::chrono::seconds(10)));
  w.client_link().cut(testkit::CutMode::reset);
  w.client_link().clear();

  // The session's retry (5 s later) presents the same refresh token.
  std::uint64_t refreshes = 0;
  bool signed_in = true;
  ASSERT_TRUE(wait(
      [&] {
        w.victim().with_client([&](client::Client& c) {
          refreshes = c.session().refreshes();
          signed_in = c.session().get_session().has_value();
        });
        return refreshes > 0 || !signed_in;
      },
      std::chrono::seconds(20)));
  EXPECT_TRUE(signed_in) << "the retried refresh signed the user out";
  EXPECT_EQ(refreshes, 1u);
  EXPECT_EQ(tokens(), "2") << "the retry should get the rotated token back, not a new one";
  EXPECT_TRUE(wait([&] { return w.victim().live(); }, std::chrono::seconds(20)));
}

// A campaign run again: RTSYNC_CHAOS_SEED=<n> [RTSYNC_CHAOS_FAULT=<fault>] ctest -R Chaos.Replay
TEST(Chaos, Replay) {
  const auto seed = seed_from_env();
  if (!seed) GTEST_SKIP() << "set RTSYNC_CHAOS_SEED to replay a campaign run";
  std::optional<FaultKind> fault;
  if (const char* f = std::getenv("RTSYNC_CHAOS_FAULT")) fault = parse_fault(f);
  const auto plan = make_plan(*seed, Profile::campaign, fault);
  auto r = run_chaos(plan, RTSYNC_CHAOS_BINARY,
                     "RTSYNC_CHAOS_SEED=" + std::to_string(*seed) + " ctest -R Chaos.Replay");
  print(r, std::cout);
  EXPECT_TRUE(r.ok());
}

}  // namespace
}  // namespace rtsync::chaos
