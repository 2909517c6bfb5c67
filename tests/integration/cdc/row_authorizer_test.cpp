// PgRowAuthorizer against real row-level security.
#include "rtsync/server/cdc/pg_row_authorizer.hpp"

#include "pg_fixture.hpp"
#include "rtsync/core/log.hpp"
#include "visibility.hpp"

namespace rtsync::test {
namespace {

using server::ChangeKind;
using server::RowChange;
using server::Transaction;
using server::Visibility;
using server::VisibilityRequest;
using server::VisibilityResult;
using server::cdc::PgRowAuthorizer;
using server::cdc::PgRowAuthorizerOptions;

class RowAuthorizerTest : public PgSuite {
 protected:
  static void SetUpTestSuite() {
    PgSuite::SetUpTestSuite();
    if (!setup_error().empty()) return;
    auto c = server::pg::Connection::open(cluster()->conninfo());
    auto r = c->exec_script(R"sql(
      CREATE TABLE docs (id uuid PRIMARY KEY, owner uuid NOT NULL, title text);
      ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
      CREATE POLICY docs_owner ON docs FOR SELECT USING (owner = auth.uid());
      GRANT SELECT ON docs TO authenticated, service_role;

      CREATE TABLE memberships (org int, member uuid, role text, PRIMARY KEY (org, member));
      ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
      CREATE POLICY own_membership ON memberships FOR SELECT USING (member = auth.uid());
      GRANT SELECT ON memberships TO authenticated;

      CREATE TABLE notices (id int PRIMARY KEY, body text);  -- RLS disabled
      GRANT SELECT ON notices TO authenticated;              -- not to anon
    )sql");
    if (!r) setup_error() = r.error().describe();
  }

  void SetUp() override {
    PgSuite::SetUp();
    PgRowAuthorizerOptions o;
    o.conninfo = cluster()->conninfo();
    authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  }

  std::shared_ptr<server::Relation> relation(const std::string& table,
                                             std::vector<std::string> keys) {
    auto rel = std::make_shared<server::Relation>();
    rel->oid = static_cast<std::uint32_t>(
        std::stoul(std::string(query("SELECT $1::regclass::oid", {table}).value(0, 0))));
    rel->schema = "public";
    rel->table = table;
    for (auto& k : keys)
      rel->columns.push_back(server::RelationColumn{k, 0, "", true});
    return rel;
  }

  // Inserts a row and returns the change the stream would have decoded for it.
  RowChange insert(const std::shared_ptr<server::Relation>& rel, const std::string& sql_text,
                   json::object record, ChangeKind kind = ChangeKind::insert) {
    this->sql(sql_text);
    RowChange ch;
    ch.kind = kind;
    ch.relation = rel;
    if (kind == ChangeKind::remove) {
      ch.old_record = std::move(record);
    } else {
      ch.record = std::move(record);
    }
    return ch;
  }

  Result<std::vector<VisibilityResult>> run(std::shared_ptr<const Transaction> txn,
                                            std::vector<VisibilityRequest> requests) {
    std::optional<Result<std::vector<VisibilityResult>>> out;
    authorizer->authorize(std::move(txn), asked(std::move(requests)),
                          [&](Result<std::vector<VisibilityResult>> r) { out = std::move(r); });
    EXPECT_TRUE(loop.run_until([&] { return out.has_value(); })) << "authorize never finished";
    if (!out) return make_error(Errc::timeout, "authorize never finished");
    return std::move(*out);
  }

  TestLoop loop;
  std::unique_ptr<PgRowAuthorizer> authorizer;
};

TEST_F(RowAuthorizerTest, RlsPolicyDecidesPerClassWithOneQueryPerClassPerTable) {
  auto docs = relation("docs", {"id"});
  auto notices = relation("notices", {"id"});
  auto txn = std::make_shared<Transaction>();
  txn->changes.push_back(
      insert(docs,
             std::string("INSERT INTO docs VALUES ('a0000000-0000-0000-0000-000000000001', '") +
                 kAlice + "', 'alice 1')",
             {{"id", "a0000000-0000-0000-0000-000000000001"}, {"owner", kAlice}}));
  txn->changes.push_back(
      insert(docs,
             std::string("INSERT INTO docs VALUES ('a0000000-0000-0000-0000-000000000002', '") +
                 kBob + "', 'bob 1')",
             {{"id", "a0000000-0000-0000-0000-000000000002"}, {"owner", kBob}}));
  txn->changes.push_back(
      insert(docs,
             std::string("INSERT INTO docs VALUES ('a0000000-0000-0000-0000-000000000003', '") +
                 kAlice + "', 'alice 2')",
             {{"id", "a0000000-0000-0000-0000-000000000003"}, {"owner", kAlice}}));
  txn->changes.push_back(insert(notices, "INSERT INTO notices VALUES (1, 'hello')", {{"id", 1}}));

  const auto idx = rows({0, 1, 2, 3});
  std::vector<VisibilityRequest> reqs{
      {cls("authenticated", claims(kAlice)), idx},
      {cls("authenticated", claims(kBob)), idx},
      {cls("anon", R"({"role":"anon"})"), idx},
      {cls("service_role", R"({"role":"service_role"})"), idx},
  };
  auto r = run(txn, reqs);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ(visible((*r)[0]), (std::vector<bool>{true, false, true, true}));     // alice
  EXPECT_EQ(visible((*r)[1]), (std::vector<bool>{false, true, false, true}));    // bob
  EXPECT_EQ(visible((*r)[2]), (std::vector<bool>{false, false, false, false}));  // anon: no grants
  // service_role bypasses RLS on docs; it has no grant on notices.
  EXPECT_EQ(visible((*r)[3]), (std::vector<bool>{true, true, true, false}));
  // Only docs (RLS) needs queries, once per authenticated class; notices is decided by privilege.
  EXPECT_EQ(authorizer->queries(), 2u);
  EXPECT_EQ(authorizer->metadata_queries(), 1u);

  // Same transaction again: metadata is cached, queries grow by one per class per table.
  auto again = run(txn, {reqs[0], reqs[1]});
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(visible((*again)[0]), visible((*r)[0]));
  EXPECT_EQ(authorizer->queries(), 4u);
  EXPECT_EQ(authorizer->metadata_queries(), 1u);
}

TEST_F(RowAuthorizerTest, CompositeKeysSubsetsAndDeletes) {
  auto m = relation("memberships", {"org", "member"});
  auto txn = std::make_shared<Transaction>();
  txn->changes.push_back(
      insert(m, std::string("INSERT INTO memberships VALUES (1, '") + kAlice + "', 'owner')",
             {{"org", 1}, {"member", kAlice}, {"role", "owner"}}));
  txn->changes.push_back(
      insert(m, std::string("INSERT INTO memberships VALUES (1, '") + kBob + "', 'member')",
             {{"org", 1}, {"member", kBob}, {"role", "member"}}));
  txn->changes.push_back(
      insert(m, std::string("INSERT INTO memberships VALUES (2, '") + kAlice + "', 'member')",
             {{"org", 2}, {"member", kAlice}, {"role", "member"}}));
  // A DELETE under the default identity: its old image is the key alone, which the policy
  // cannot judge — the key only, to roles that may read the table.
  txn->changes.push_back(insert(m, "SELECT 1", {{"org", 9}, {"member", kBob}}, ChangeKind::remove));
  const auto old_row = server::RowCheck{3, server::RowImage::old_row};
  // Alice asks about changes 2, 1 and 3 (any order, any subset); bob about 0 and 3.
  auto alice = rows({2, 1});
  alice.push_back(old_row);
  auto bob = rows({0});
  bob.push_back(old_row);
  auto r = run(txn, {{cls("authenticated", claims(kAlice)), alice},
                     {cls("authenticated", claims(kBob)), bob},
                     {cls("anon", "{}"), {old_row}}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  using V = std::vector<Visibility>;
  EXPECT_EQ((*r)[0].rows, (V{Visibility::full, Visibility::hidden, Visibility::key_only}));
  EXPECT_EQ((*r)[1].rows, (V{Visibility::hidden, Visibility::key_only}));
  EXPECT_EQ((*r)[2].rows, (V{Visibility::hidden}));  // anon may not select memberships
  EXPECT_EQ(authorizer->queries(), 2u);
}

// The image decides, not the row as it is in the table when the check runs: a row that has
// since moved to another owner, or is gone, is judged as it was committed.
TEST_F(RowAuthorizerTest, JudgesTheCommittedImageNotTheRowAsItIsNow) {
  sql(R"sql(
    CREATE TABLE moves (id int PRIMARY KEY, owner uuid NOT NULL, note text, shared bool);
    ALTER TABLE moves REPLICA IDENTITY FULL;
    ALTER TABLE moves ENABLE ROW LEVEL SECURITY;
    CREATE POLICY mine ON moves FOR SELECT TO authenticated USING (owner = auth.uid());
    CREATE POLICY shared ON moves FOR SELECT TO authenticated USING (moves.shared);
    CREATE POLICY not_archived ON moves AS RESTRICTIVE FOR SELECT USING (note IS DISTINCT FROM 'archived');
    GRANT SELECT ON moves TO authenticated;
  )sql");
  auto moves = relation("moves", {"id"});
  moves->replica_identity = 'f';
  sql(std::string("INSERT INTO moves VALUES (1, '") + kAlice + "', 'a', false)");
  sql(std::string("UPDATE moves SET owner = '") + kBob + "' WHERE id = 1");
  sql("DELETE FROM moves");
  auto image = [](int id, const char* owner, const char* note, bool shared) {
    return json::object{{"id", id}, {"owner", owner}, {"note", note}, {"shared", shared}};
  };
  auto txn = std::make_shared<Transaction>();
  RowChange ins;  // the INSERT, as committed: Alice's
  ins.kind = ChangeKind::insert;
  ins.relation = moves;
  ins.record = image(1, kAlice, "a", false);
  RowChange upd;  // the UPDATE that moved it to Bob
  upd.kind = ChangeKind::update;
  upd.relation = moves;
  upd.record = image(1, kBob, "a", false);
  upd.old_record = image(1, kAlice, "a", false);
  RowChange del;  // Bob's row deleted
  del.kind = ChangeKind::remove;
  del.relation = moves;
  del.old_record = image(1, kBob, "a", false);
  RowChange shared;  // visible to both through the permissive `shared` policy…
  shared.kind = ChangeKind::insert;
  shared.relation = moves;
  shared.record = image(2, kBob, "s", true);
  RowChange archived;  // …unless the restrictive policy refuses it
  archived.kind = ChangeKind::insert;
  archived.relation = moves;
  archived.record = image(3, kAlice, "archived", true);
  txn->changes = {ins, upd, del, shared, archived};
  std::vector<server::RowCheck> ask{{0, server::RowImage::new_row}, {1, server::RowImage::new_row},
                                    {1, server::RowImage::old_row}, {2, server::RowImage::old_row},
                                    {3, server::RowImage::new_row}, {4, server::RowImage::new_row}};
  auto r = run(txn, {{cls("authenticated", claims(kAlice)), ask},
                     {cls("authenticated", claims(kBob)), ask}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(visible((*r)[0]), (std::vector<bool>{true, false, true, false, true, false}));
  EXPECT_EQ(visible((*r)[1]), (std::vector<bool>{false, true, false, true, true, false}));
  // One query per class for the table, whatever the mix of images.
  EXPECT_EQ(authorizer->queries(), 2u);
}

TEST_F(RowAuthorizerTest, RoleOutsideTheAllowListAndBadIndexesSeeNothing) {
  auto notices = relation("notices", {"id"});
  auto txn = std::make_shared<Transaction>();
  txn->changes.push_back(insert(notices, "INSERT INTO notices VALUES (2, 'x')", {{"id", 2}}));
  auto r = run(txn, {{cls("postgres", "{}"), rows({0})},
                     {cls("no_such_role", "{}"), rows({0})},
                     {cls("authenticated", claims(kAlice)), rows({0, 7})}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(visible((*r)[0]), (std::vector<bool>{false}));
  EXPECT_EQ(visible((*r)[1]), (std::vector<bool>{false}));
  EXPECT_EQ(visible((*r)[2]), (std::vector<bool>{true, false}));
  EXPECT_EQ(authorizer->queries(), 0u);

  // Allowed by configuration but unknown to PostgreSQL: invisible, and no failure.
  PgRowAuthorizerOptions o;
  o.conninfo = cluster()->conninfo();
  o.allowed_roles = {"authenticated", "no_such_role"};
  authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  auto unknown = run(txn, {{cls("no_such_role", "{}"), rows({0})},
                           {cls("authenticated", claims(kBob)), rows({0})}});
  ASSERT_TRUE(unknown.ok()) << unknown.error().describe();
  EXPECT_EQ(visible((*unknown)[0]), (std::vector<bool>{false}));
  EXPECT_EQ(visible((*unknown)[1]), (std::vector<bool>{true}));
  EXPECT_EQ(authorizer->failures(), 0u);
}

TEST_F(RowAuthorizerTest, RevokedPrivilegesCountAtOnceEvenWithCachedMetadata) {
  PgRowAuthorizerOptions o;
  o.conninfo = cluster()->conninfo();
  o.metadata_ttl = std::chrono::hours(1);
  authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  sql(R"sql(
    CREATE TABLE secrets (id int PRIMARY KEY, owner uuid);
    ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
    CREATE POLICY s ON secrets FOR SELECT USING (owner = auth.uid());
    GRANT SELECT ON secrets TO authenticated;
  )sql");
  auto secrets = relation("secrets", {"id"});
  auto txn = std::make_shared<Transaction>();
  txn->changes.push_back(insert(secrets,
                                std::string("INSERT INTO secrets VALUES (1, '") + kAlice + "')",
                                {{"id", 1}, {"owner", kAlice}}));
  const VisibilityRequest alice{cls("authenticated", claims(kAlice)), rows({0})};
  auto first = run(txn, {alice});
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(visible((*first)[0]), (std::vector<bool>{true}));

  // Revoked while the metadata is cached: the query checks the privilege as it is now.
  sql("REVOKE SELECT ON secrets FROM authenticated");
  auto second = run(txn, {alice});
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_EQ(visible((*second)[0]), (std::vector<bool>{false}));
  EXPECT_EQ(authorizer->failures(), 0u);

  // USAGE on the schema taken away counts at once too.
  sql("GRANT SELECT ON secrets TO authenticated; CREATE SCHEMA hidden; "
      "CREATE TABLE hidden.t (id int PRIMARY KEY, owner uuid); "
      "ALTER TABLE hidden.t ENABLE ROW LEVEL SECURITY; "
      "CREATE POLICY h ON hidden.t FOR SELECT USING (owner = auth.uid()); "
      "GRANT USAGE ON SCHEMA hidden TO authenticated; GRANT SELECT ON hidden.t TO authenticated");
  auto hidden = relation("hidden.t", {"id"});
  hidden->schema = "hidden";
  hidden->table = "t";
  auto htxn = std::make_shared<Transaction>();
  RowChange hch;
  hch.kind = ChangeKind::insert;
  hch.relation = hidden;
  hch.record = json::object{{"id", 1}, {"owner", kAlice}};
  htxn->changes.push_back(hch);
  auto fourth = run(htxn, {alice});
  ASSERT_TRUE(fourth.ok()) << fourth.error().describe();
  EXPECT_EQ(visible((*fourth)[0]), (std::vector<bool>{true}));
  sql("REVOKE USAGE ON SCHEMA hidden FROM authenticated");
  auto fifth = run(htxn, {alice});
  ASSERT_TRUE(fifth.ok()) << fifth.error().describe();
  EXPECT_EQ(visible((*fifth)[0]), (std::vector<bool>{false}));
  EXPECT_EQ(authorizer->failures(), 0u);
}

TEST_F(RowAuthorizerTest, ConcurrentCallsQueueOnThePool) {
  auto docs = relation("docs", {"id"});
  auto txn = std::make_shared<Transaction>();
  txn->changes.push_back(
      insert(docs,
             std::string("INSERT INTO docs VALUES ('b0000000-0000-0000-0000-000000000001', '") +
                 kAlice + "', 'x')",
             {{"id", "b0000000-0000-0000-0000-000000000001"}, {"owner", kAlice}}));
  int finished = 0;
  int seen = 0;
  for (int i = 0; i < 10; ++i) {
    authorizer->authorize(txn,
                          asked({{cls("authenticated", claims(i % 2 ? kAlice : kBob)), rows({0})}}),
                          [&](Result<std::vector<VisibilityResult>> r) {
                            ASSERT_TRUE(r.ok()) << r.error().describe();
                            ++finished;
                            seen += visible((*r)[0])[0];
                          });
  }
  EXPECT_GT(authorizer->waiting(), 0u);  // two connections, ten calls
  ASSERT_TRUE(loop.run_until([&] { return finished == 10; }));
  EXPECT_EQ(seen, 5);
  EXPECT_EQ(authorizer->queries(), 10u);
}

// Logical decoding can hand a transaction on a moment before its commit is visible to new
// snapshots. Reproduced deterministically: the row's transaction is still open (its xid is what
// decoding would report), so the check must hold its answer until the commit shows.
class OpenTransaction {
 public:
  explicit OpenTransaction(const std::string& conninfo)
      : conn_(server::pg::Connection::open(conninfo).value()) {}
  std::uint32_t begin_and_run(const std::string& statement) {
    EXPECT_TRUE(conn_.exec("BEGIN").ok());
    auto r = conn_.exec(statement);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    auto x = conn_.exec("SELECT txid_current() & 4294967295");
    return static_cast<std::uint32_t>(std::stoul(std::string(x->value(0, 0))));
  }
  void commit() { EXPECT_TRUE(conn_.exec("COMMIT").ok()); }
  void rollback() { EXPECT_TRUE(conn_.exec("ROLLBACK").ok()); }

  // Inserts Alice's doc `id` in a transaction left open; returns what decoding would deliver.
  std::shared_ptr<Transaction> insert_doc(std::shared_ptr<server::Relation> docs,
                                          const std::string& id) {
    auto txn = std::make_shared<Transaction>();
    txn->xid = begin_and_run("INSERT INTO docs VALUES ('" + id + "', '" + kAlice + "', 'open')");
    RowChange ch;
    ch.kind = ChangeKind::insert;
    ch.relation = std::move(docs);
    ch.record = json::object{{"id", id}, {"owner", kAlice}};
    txn->changes.push_back(std::move(ch));
    return txn;
  }

 private:
  server::pg::Connection conn_;
};

TEST_F(RowAuthorizerTest, HoldsTheAnswerUntilTheDecodedCommitIsVisible) {
  auto docs = relation("docs", {"id"});
  OpenTransaction writer(cluster()->conninfo());
  auto txn = writer.insert_doc(docs, "c0000000-0000-0000-0000-000000000001");

  std::optional<Result<std::vector<VisibilityResult>>> out;
  authorizer->authorize(txn, asked({{cls("authenticated", claims(kAlice)), rows({0})}}),
                        [&](Result<std::vector<VisibilityResult>> r) { out = std::move(r); });
  // Still waiting after a while: answering now would refuse a row its owner may read.
  EXPECT_FALSE(loop.run_until([&] { return out.has_value(); }, 300ms));
  EXPECT_GT(authorizer->visibility_waits(), 0u);

  writer.commit();
  ASSERT_TRUE(loop.run_until([&] { return out.has_value(); }));
  ASSERT_TRUE(out->ok()) << out->error().describe();
  EXPECT_EQ(visible((**out)[0]), (std::vector<bool>{true}));
}

TEST_F(RowAuthorizerTest, GivesUpWaitingForACommitAfterTheLimitAndJudgesTheImage) {
  PgRowAuthorizerOptions o;
  o.conninfo = cluster()->conninfo();
  o.visibility_wait_max = 200ms;
  authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  auto docs = relation("docs", {"id"});
  OpenTransaction writer(cluster()->conninfo());
  auto txn = writer.insert_doc(docs, "c0000000-0000-0000-0000-000000000002");

  rtsync::log::Capture logs;
  auto r = run(txn, {{cls("authenticated", claims(kAlice)), rows({0})}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  // The policy reads only the image's owner, so the answer does not depend on the commit.
  EXPECT_EQ(visible((*r)[0]), (std::vector<bool>{true}));
  EXPECT_TRUE(logs.contains("still not visible"));
  writer.rollback();
}

// Policies written for PostgREST's per-claim settings (`request.jwt.claim.sub`) judge by the same
// claims as auth.uid(), and a class never sees the claims of the class before it in the batch: a
// token without `sub` asked right after Alice's sees none of her rows.
TEST_F(RowAuthorizerTest, PerClaimSettingsFollowEachClassAndNeverCarryOver) {
  sql(R"sql(
    CREATE TABLE IF NOT EXISTS legacy_docs (id int PRIMARY KEY, owner text NOT NULL);
    ALTER TABLE legacy_docs ENABLE ROW LEVEL SECURITY;
    CREATE POLICY legacy_owner ON legacy_docs FOR SELECT
      USING (owner = current_setting('request.jwt.claim.sub', true));
    GRANT SELECT ON legacy_docs TO authenticated;
  )sql");
  auto legacy = relation("legacy_docs", {"id"});
  auto docs = relation("docs", {"id"});
  auto txn = std::make_shared<Transaction>();
  txn->changes.push_back(insert(legacy,
                                std::string("INSERT INTO legacy_docs VALUES (1, '") + kAlice + "')",
                                {{"id", 1}, {"owner", kAlice}}));
  txn->changes.push_back(
      insert(docs,
             std::string("INSERT INTO docs VALUES ('a0000000-0000-0000-0000-0000000000c1', '") +
                 kAlice + "', 'alice c')",
             {{"id", "a0000000-0000-0000-0000-0000000000c1"}, {"owner", kAlice}}));
  const auto idx = rows({0, 1});
  auto r = run(txn, {{cls("authenticated", claims(kAlice)), idx},
                     {cls("authenticated", R"({"role":"authenticated"})"), idx},
                     {cls("authenticated", claims(kBob)), idx}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(visible((*r)[0]), (std::vector<bool>{true, true}));    // alice, by either setting
  EXPECT_EQ(visible((*r)[1]), (std::vector<bool>{false, false}));  // no sub: the setting is ''
  EXPECT_EQ(visible((*r)[2]), (std::vector<bool>{false, false}));  // bob
}

}  // namespace
}  // namespace rtsync::test
