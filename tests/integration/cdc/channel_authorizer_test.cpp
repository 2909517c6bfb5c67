// PgChannelAuthorizer against real policies on realtime.messages (the bootstrap's table), written
// the way Supabase's docs write them: realtime.topic() and realtime.messages.extension.
#include "rtsync/server/cdc/pg_channel_authorizer.hpp"

#include "pg_fixture.hpp"

namespace rtsync::test {
namespace {

using server::AuthClass;
using server::ChannelAuthFailure;
using server::ChannelAuthResult;
using server::ChannelCheck;
using server::ChannelRights;
using server::cdc::PgChannelAuthorizer;
using server::cdc::PgChannelAuthorizerOptions;

// kAlice (pg_fixture.hpp) reads and writes broadcasts, kBob reads them only.
constexpr const char* kEve = "33333333-3333-3333-3333-333333333333";  // nothing

AuthClass user(const char* sub) {
  return AuthClass{"authenticated",
                   std::string(R"({"role":"authenticated","sub":")") + sub + R"("})"};
}

class ChannelAuthorizerTest : public PgSuite {
 protected:
  static void SetUpTestSuite() {
    PgSuite::SetUpTestSuite();
    if (!setup_error().empty()) return;
    auto c = server::pg::Connection::open(cluster()->conninfo());
    auto r = c->exec_script(R"sql(
      CREATE TABLE public.room_members (topic text, member uuid, can_send bool);
      INSERT INTO room_members VALUES
        ('room', '11111111-1111-1111-1111-111111111111', true),
        ('room', '22222222-2222-2222-2222-222222222222', false);
      GRANT SELECT ON room_members TO authenticated;

      CREATE POLICY members_receive ON realtime.messages FOR SELECT TO authenticated
        USING (EXISTS (SELECT 1 FROM public.room_members m
                       WHERE m.topic = realtime.topic() AND m.member = auth.uid())
               AND (realtime.messages.extension = 'broadcast'
                    OR auth.uid() = '11111111-1111-1111-1111-111111111111'));
      CREATE POLICY senders_send ON realtime.messages FOR INSERT TO authenticated
        WITH CHECK (EXISTS (SELECT 1 FROM public.room_members m
                            WHERE m.topic = realtime.topic() AND m.member = auth.uid()
                              AND m.can_send));

      -- A topic whose policy raises, and one whose policy is slow (permissive, so they only
      -- come into play on their own topics).
      CREATE FUNCTION public.explode() RETURNS boolean LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'policy exploded'; END $$;
      CREATE POLICY exploding ON realtime.messages FOR SELECT TO authenticated
        USING (realtime.topic() = 'boom' AND public.explode());
      CREATE POLICY slow ON realtime.messages FOR SELECT TO authenticated
        USING (realtime.topic() = 'slow' AND pg_sleep(2) IS NOT NULL);
    )sql");
    if (!r) setup_error() = r.error().describe();
  }

  void SetUp() override {
    PgSuite::SetUp();
    make(PgChannelAuthorizerOptions{});
  }

  void make(PgChannelAuthorizerOptions o) {
    o.conninfo = cluster()->conninfo();
    authorizer.reset();
    authorizer = std::make_unique<PgChannelAuthorizer>(loop.io, loop.sched, std::move(o));
  }

  ChannelAuthResult run(ChannelCheck check) {
    std::optional<ChannelAuthResult> out;
    authorizer->check(std::move(check), [&](ChannelAuthResult r) { out = std::move(r); });
    EXPECT_TRUE(loop.run_until([&] { return out.has_value(); })) << "check never answered";
    if (!out) return server::ChannelAuthError{ChannelAuthFailure::unavailable, "no answer"};
    return std::move(*out);
  }

  static ChannelCheck all(AuthClass who, std::string topic) {
    return ChannelCheck{std::move(who), std::move(topic), true, true, true};
  }

  TestLoop loop;
  std::unique_ptr<PgChannelAuthorizer> authorizer;
};

TEST_F(ChannelAuthorizerTest, SelectPoliciesGiveReadsAndInsertPoliciesGiveWrites) {
  auto alice = run(all(user(kAlice), "room"));
  ASSERT_TRUE(alice.ok()) << alice.error().message;
  EXPECT_EQ(alice.value(), (ChannelRights{true, true, true, true}));

  auto bob = run(all(user(kBob), "room"));
  ASSERT_TRUE(bob.ok()) << bob.error().message;
  EXPECT_EQ(bob.value(), (ChannelRights{true, false, false, false}));

  // The attacker: a valid token of another user gets nothing on the room.
  auto eve = run(all(user(kEve), "room"));
  ASSERT_TRUE(eve.ok()) << eve.error().message;
  EXPECT_EQ(eve.value(), (ChannelRights{false, false, false, false}));
  EXPECT_FALSE(eve.value().may_join());

  // Alice's rights are the room's: realtime.topic() is what the policies see.
  auto elsewhere = run(all(user(kAlice), "another-room"));
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_FALSE(elsewhere.value().may_join());
  EXPECT_EQ(elsewhere.value().broadcast_write, false);

  // anon has the table grants but no policy; service_role bypasses RLS.
  auto anon = run(all(AuthClass{"anon", R"({"role":"anon"})"}, "room"));
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon.value(), (ChannelRights{false, false, false, false}));
  auto service = run(all(AuthClass{"service_role", R"({"role":"service_role"})"}, "room"));
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(service.value(), (ChannelRights{true, true, true, true}));
  EXPECT_EQ(authorizer->probes(), 6u);
}

TEST_F(ChannelAuthorizerTest, OnlyTheRightsAskedForAreEvaluatedAndNothingIsLeftBehind) {
  auto reads = run(ChannelCheck{user(kAlice), "room", true, false, false});
  ASSERT_TRUE(reads.ok());
  EXPECT_EQ(reads.value(), (ChannelRights{true, std::nullopt, std::nullopt, std::nullopt}));
  auto writes = run(ChannelCheck{user(kBob), "room", false, false, true});
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(writes.value(), (ChannelRights{std::nullopt, std::nullopt, false, false}));
  // The probe rows (owner-inserted and caller-inserted) were all rolled back.
  EXPECT_EQ(scalar("SELECT count(*) FROM realtime.messages"), "0");
  // And the checks' settings did not leak into the session of a later check.
  auto again = run(ChannelCheck{user(kEve), "room", true, true, false});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again.value().may_join());
}

TEST_F(ChannelAuthorizerTest, APolicyThatRaisesIsAPolicyErrorAndOtherChecksAreUnharmed) {
  std::optional<ChannelAuthResult> boom, fine;
  // Both pipelined on the same connection: the failing one must not take the other down.
  PgChannelAuthorizerOptions o;
  o.connections = 1;
  make(o);
  authorizer->check(all(user(kAlice), "boom"), [&](ChannelAuthResult r) { boom = r; });
  authorizer->check(all(user(kAlice), "room"), [&](ChannelAuthResult r) { fine = r; });
  ASSERT_TRUE(loop.run_until([&] { return boom && fine; }));
  ASSERT_FALSE(boom->ok());
  EXPECT_EQ(boom->error().failure, ChannelAuthFailure::policy_error);
  EXPECT_NE(boom->error().message.find("policy exploded"), std::string::npos)
      << boom->error().message;
  ASSERT_TRUE(fine->ok()) << fine->error().message;
  EXPECT_TRUE(fine->value().may_join());
}

TEST_F(ChannelAuthorizerTest, RolesOutsideTheApiRolesAreRefusedWithoutAQuery) {
  // A token signed with the project's key could claim any role; the probe never runs as it.
  auto r = run(all(AuthClass{"postgres", R"({"role":"postgres"})"}, "room"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().failure, ChannelAuthFailure::policy_error);
  EXPECT_EQ(authorizer->probes(), 0u);
}

TEST_F(ChannelAuthorizerTest, IdenticalChecksInFlightShareOneProbe) {
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    authorizer->check(all(user(kAlice), "room"), [&](ChannelAuthResult r) {
      EXPECT_TRUE(r.ok() && r.value().may_join());
      ++answered;
    });
  }
  authorizer->check(all(user(kEve), "room"), [&](ChannelAuthResult r) {
    EXPECT_TRUE(r.ok() && !r.value().may_join());
    ++answered;
  });
  ASSERT_TRUE(loop.run_until([&] { return answered == 6; }));
  EXPECT_EQ(authorizer->probes(), 2u);
  EXPECT_EQ(authorizer->coalesced(), 4u);
}

TEST_F(ChannelAuthorizerTest, ASlowPolicyIsCancelledByTheStatementTimeout) {
  PgChannelAuthorizerOptions o;
  o.statement_timeout = std::chrono::milliseconds(200);
  make(o);
  auto r = run(all(user(kAlice), "slow"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().failure, ChannelAuthFailure::query_canceled) << r.error().message;
  EXPECT_NE(r.error().message.find("statement timeout"), std::string::npos) << r.error().message;
}

TEST_F(ChannelAuthorizerTest, AnUnreachableDatabaseIsUnavailableNotAHang) {
  PgChannelAuthorizerOptions o;
  o.conninfo = "host=127.0.0.1 port=1 connect_timeout=2 user=postgres dbname=postgres";
  authorizer = std::make_unique<PgChannelAuthorizer>(loop.io, loop.sched, o);
  const auto start = std::chrono::steady_clock::now();
  auto r = run(all(user(kAlice), "room"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().failure, ChannelAuthFailure::unavailable) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(authorizer->probes(), 2u);  // tried once more on a fresh connection
}

}  // namespace
}  // namespace rtsync::test
