// PgRowAuthorizer against real row-level security.
#include "rtsync/server/cdc/pg_row_authorizer.hpp"

#include "pg_fixture.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::test {
namespace {

using server::AuthClass;
using server::ChangeKind;
using server::RowChange;
using server::Transaction;
using server::VisibilityRequest;
using server::VisibilityResult;
using server::cdc::PgRowAuthorizer;
using server::cdc::PgRowAuthorizerOptions;

constexpr const char* kAlice = "11111111-1111-1111-1111-111111111111";
constexpr const char* kBob = "22222222-2222-2222-2222-222222222222";

std::string claims(const char* sub) {
  return std::string(R"({"sub":")") + sub + R"(","role":"authenticated"})";
}

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
    authorizer->authorize(std::move(txn), std::move(requests),
                          [&](Result<std::vector<VisibilityResult>> r) { out = std::move(r); });
    EXPECT_TRUE(loop.run_until([&] { return out.has_value(); })) << "authorize never finished";
    if (!out) return make_error(Errc::timeout, "authorize never finished");
    return std::move(*out);
  }

  static std::vector<std::size_t> all(const Transaction& t) {
    std::vector<std::size_t> v(t.changes.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = i;
    return v;
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

  const auto idx = all(*txn);
  std::vector<VisibilityRequest> reqs{
      {AuthClass{"authenticated", claims(kAlice)}, idx},
      {AuthClass{"authenticated", claims(kBob)}, idx},
      {AuthClass{"anon", R"({"role":"anon"})"}, idx},
      {AuthClass{"service_role", R"({"role":"service_role"})"}, idx},
  };
  auto r = run(txn, reqs);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].visible, (std::vector<bool>{true, false, true, true}));     // alice
  EXPECT_EQ((*r)[1].visible, (std::vector<bool>{false, true, false, true}));    // bob
  EXPECT_EQ((*r)[2].visible, (std::vector<bool>{false, false, false, false}));  // anon: no grants
  // service_role bypasses RLS on docs; it has no grant on notices.
  EXPECT_EQ((*r)[3].visible, (std::vector<bool>{true, true, true, false}));
  // Only docs (RLS) needs queries, once per authenticated class; notices is decided by privilege.
  EXPECT_EQ(authorizer->queries(), 2u);
  EXPECT_EQ(authorizer->metadata_queries(), 1u);

  // Same transaction again: metadata is cached, queries grow by one per class per table.
  auto again = run(txn, {reqs[0], reqs[1]});
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ((*again)[0].visible, (*r)[0].visible);
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
  // A deleted row cannot be looked up: privilege alone decides.
  txn->changes.push_back(insert(m, "SELECT 1", {{"org", 9}, {"member", kBob}}, ChangeKind::remove));
  // Alice asks about changes 2, 1 and 3 (any order, any subset); bob about 0 and 3.
  auto r = run(txn, {{AuthClass{"authenticated", claims(kAlice)}, {2, 1, 3}},
                     {AuthClass{"authenticated", claims(kBob)}, {0, 3}},
                     {AuthClass{"anon", "{}"}, {3}}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)[0].visible, (std::vector<bool>{true, false, true}));
  EXPECT_EQ((*r)[1].visible, (std::vector<bool>{false, true}));
  EXPECT_EQ((*r)[2].visible, (std::vector<bool>{false}));  // anon may not select memberships
  EXPECT_EQ(authorizer->queries(), 2u);
}

TEST_F(RowAuthorizerTest, RoleOutsideTheAllowListAndBadIndexesSeeNothing) {
  auto notices = relation("notices", {"id"});
  auto txn = std::make_shared<Transaction>();
  txn->changes.push_back(insert(notices, "INSERT INTO notices VALUES (2, 'x')", {{"id", 2}}));
  auto r = run(txn, {{AuthClass{"postgres", "{}"}, {0}},
                     {AuthClass{"no_such_role", "{}"}, {0}},
                     {AuthClass{"authenticated", claims(kAlice)}, {0, 7}}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)[0].visible, (std::vector<bool>{false}));
  EXPECT_EQ((*r)[1].visible, (std::vector<bool>{false}));
  EXPECT_EQ((*r)[2].visible, (std::vector<bool>{true, false}));
  EXPECT_EQ(authorizer->queries(), 0u);

  // Allowed by configuration but unknown to PostgreSQL: invisible, and no failure.
  PgRowAuthorizerOptions o;
  o.conninfo = cluster()->conninfo();
  o.allowed_roles = {"authenticated", "no_such_role"};
  authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  auto unknown = run(txn, {{AuthClass{"no_such_role", "{}"}, {0}},
                           {AuthClass{"authenticated", claims(kBob)}, {0}}});
  ASSERT_TRUE(unknown.ok()) << unknown.error().describe();
  EXPECT_EQ((*unknown)[0].visible, (std::vector<bool>{false}));
  EXPECT_EQ((*unknown)[1].visible, (std::vector<bool>{true}));
  EXPECT_EQ(authorizer->failures(), 0u);
}

TEST_F(RowAuthorizerTest, RevokedGrantFailsOnceThenIsSeenAfterRefresh) {
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
  const VisibilityRequest alice{AuthClass{"authenticated", claims(kAlice)}, {0}};
  auto first = run(txn, {alice});
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ((*first)[0].visible, (std::vector<bool>{true}));

  // Revoked while the metadata is cached: the visibility query fails with permission denied.
  sql("REVOKE SELECT ON secrets FROM authenticated");
  auto second = run(txn, {alice});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("42501"), std::string::npos) << second.error().message;
  EXPECT_EQ(authorizer->failures(), 1u);

  // The connection is usable again and fresh metadata says: no privilege, not visible.
  auto third = run(txn, {alice});
  ASSERT_TRUE(third.ok()) << third.error().describe();
  EXPECT_EQ((*third)[0].visible, (std::vector<bool>{false}));
  sql("GRANT SELECT ON secrets TO authenticated");
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
  int visible = 0;
  for (int i = 0; i < 10; ++i) {
    authorizer->authorize(txn, {{AuthClass{"authenticated", claims(i % 2 ? kAlice : kBob)}, {0}}},
                          [&](Result<std::vector<VisibilityResult>> r) {
                            ASSERT_TRUE(r.ok()) << r.error().describe();
                            ++finished;
                            visible += (*r)[0].visible[0];
                          });
  }
  EXPECT_GT(authorizer->waiting(), 0u);  // two connections, ten calls
  ASSERT_TRUE(loop.run_until([&] { return finished == 10; }));
  EXPECT_EQ(visible, 5);
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
  authorizer->authorize(txn, {{AuthClass{"authenticated", claims(kAlice)}, {0}}},
                        [&](Result<std::vector<VisibilityResult>> r) { out = std::move(r); });
  // Still waiting after a while: answering now would refuse a row its owner may read.
  EXPECT_FALSE(loop.run_until([&] { return out.has_value(); }, 300ms));
  EXPECT_GT(authorizer->visibility_waits(), 0u);

  writer.commit();
  ASSERT_TRUE(loop.run_until([&] { return out.has_value(); }));
  ASSERT_TRUE(out->ok()) << out->error().describe();
  EXPECT_EQ((**out)[0].visible, (std::vector<bool>{true}));
}

TEST_F(RowAuthorizerTest, GivesUpWaitingForACommitAfterTheLimitAndAnswersWhatItSees) {
  PgRowAuthorizerOptions o;
  o.conninfo = cluster()->conninfo();
  o.visibility_wait_max = 200ms;
  authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  auto docs = relation("docs", {"id"});
  OpenTransaction writer(cluster()->conninfo());
  auto txn = writer.insert_doc(docs, "c0000000-0000-0000-0000-000000000002");

  rtsync::log::Capture logs;
  auto r = run(txn, {{AuthClass{"authenticated", claims(kAlice)}, {0}}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ((*r)[0].visible, (std::vector<bool>{false}));
  EXPECT_TRUE(logs.contains("still not visible"));
  writer.rollback();
}

}  // namespace
}  // namespace rtsync::test
