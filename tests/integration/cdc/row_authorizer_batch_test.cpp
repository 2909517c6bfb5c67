// PgRowAuthorizer batching: calls queued behind a busy pool share one visibility query per
// (class, table), each keeps its own answer, and the batch waits for every transaction's commit.
#include <algorithm>
#include <optional>

#include "pg_fixture.hpp"
#include "rtsync/server/cdc/pg_row_authorizer.hpp"
#include "visibility.hpp"

namespace rtsync::test {
namespace {

using server::ChangeKind;
using server::RowChange;
using server::Transaction;
using server::VisibilityResult;
using server::cdc::PgRowAuthorizer;
using server::cdc::PgRowAuthorizerOptions;
using Answer = std::optional<Result<std::vector<VisibilityResult>>>;

class RowAuthorizerBatchTest : public PgSuite {
 protected:
  static void SetUpTestSuite() {
    PgSuite::SetUpTestSuite();
    if (!setup_error().empty()) return;
    auto c = server::pg::Connection::open(cluster()->conninfo());
    auto r = c->exec_script(R"sql(
      CREATE TABLE bdocs (id int PRIMARY KEY, owner uuid NOT NULL);
      ALTER TABLE bdocs ENABLE ROW LEVEL SECURITY;
      CREATE POLICY bdocs_owner ON bdocs FOR SELECT USING (owner = auth.uid());
      GRANT SELECT ON bdocs TO authenticated;
      -- A policy that costs 10 ms a row: a batch's time is then known from its rows.
      CREATE FUNCTION slow_true() RETURNS boolean LANGUAGE plpgsql VOLATILE AS
        $$ BEGIN PERFORM pg_sleep(0.01); RETURN true; END $$;
      CREATE TABLE slowdocs (id int PRIMARY KEY, owner uuid NOT NULL);
      ALTER TABLE slowdocs ENABLE ROW LEVEL SECURITY;
      CREATE POLICY slowdocs_owner ON slowdocs FOR SELECT USING (owner = auth.uid() AND slow_true());
      GRANT SELECT ON slowdocs TO authenticated;
    )sql");
    if (!r) setup_error() = r.error().describe();
  }

  // The suite's authorizer: calls queue behind its one connection and are batched 16 at a time.
  static PgRowAuthorizerOptions batching() {
    PgRowAuthorizerOptions o;
    o.conninfo = cluster()->conninfo();
    o.connections = 1;
    o.max_batch_transactions = 16;
    return o;
  }

  void SetUp() override {
    PgSuite::SetUp();
    authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, batching());
    rel = std::make_shared<server::Relation>();
    rel->oid = static_cast<std::uint32_t>(
        std::stoul(std::string(query("SELECT 'bdocs'::regclass::oid").value(0, 0))));
    rel->schema = "public";
    rel->table = "bdocs";
    rel->columns.push_back(server::RelationColumn{"id", 0, "", true});
  }

  // A committed one-row transaction (xid 0: no commit wait).
  std::shared_ptr<Transaction> committed(int id, const char* owner) {
    sql("INSERT INTO bdocs VALUES (" + std::to_string(id) + ", '" + owner + "')");
    return one_row(id, owner, 0);
  }
  std::shared_ptr<Transaction> one_row(int id, const char* owner, std::uint32_t xid) {
    auto t = std::make_shared<Transaction>();
    t->xid = xid;
    RowChange ch;
    ch.kind = ChangeKind::insert;
    ch.relation = rel;
    ch.record = json::object{{"id", id}, {"owner", owner}};
    t->changes.push_back(std::move(ch));
    return t;
  }
  static server::VisibilityRequests both() {
    return asked({{cls("authenticated", claims(kAlice)), rows({0})},
                  {cls("authenticated", claims(kBob)), rows({0})}});
  }
  void ask(std::shared_ptr<const Transaction> t, Answer& out, std::vector<int>& order, int n) {
    authorizer->authorize(std::move(t), both(), [&out, &order, n](auto r) {
      out = std::move(r);
      order.push_back(n);
    });
  }

  // A committed row for each answer from `first_id` on, Alice's and Bob's in turn, each asked
  // about by both classes (order 1, 2, …).
  void ask_in_turn(int first_id, std::vector<Answer>& answers, std::vector<int>& order) {
    for (int i = 0; i < static_cast<int>(answers.size()); ++i)
      ask(committed(first_id + i, i % 2 ? kBob : kAlice), answers[i], order, i + 1);
  }

  // One answered call (order 0) for a committed row `id` of Alice's: the table's and roles'
  // metadata are then cached, so the calls after it can be batched.
  void warm_up(int id, Answer& warm, std::vector<int>& order) {
    ask(committed(id, kAlice), warm, order, 0);
    ASSERT_TRUE(loop.run_until([&] { return warm.has_value(); }));
  }

  // answers[i] is for a row of Alice's when i is even, of Bob's when odd (both() asks Alice's
  // class first): each row is visible to its owner only.
  static void expect_each_row_seen_by_its_owner(const std::vector<Answer>& answers) {
    for (std::size_t i = 0; i < answers.size(); ++i) {
      ASSERT_TRUE(answers[i].has_value()) << i;
      ASSERT_TRUE(answers[i]->ok()) << i << ": " << answers[i]->error().describe();
      const bool alice_row = i % 2 == 0;
      EXPECT_EQ(visible((**answers[i])[0]), (std::vector<bool>{alice_row})) << i;
      EXPECT_EQ(visible((**answers[i])[1]), (std::vector<bool>{!alice_row})) << i;
    }
  }

  TestLoop loop;
  std::unique_ptr<PgRowAuthorizer> authorizer;
  std::shared_ptr<server::Relation> rel;
};

TEST_F(RowAuthorizerBatchTest, QueuedCallsShareOneQueryPerClassAndKeepTheirOwnAnswers) {
  Answer warm;
  std::vector<int> order;
  ASSERT_NO_FATAL_FAILURE(warm_up(1, warm, order));
  const auto before = authorizer->queries();

  std::vector<Answer> answers(6);
  ask_in_turn(10, answers, order);
  EXPECT_EQ(authorizer->waiting(), 5u);  // the first took the connection
  ASSERT_TRUE(loop.run_until([&] { return order.size() == 7; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  expect_each_row_seen_by_its_owner(answers);
  // The first call alone (2 classes), then the five queued ones together (2 classes) — not 12.
  EXPECT_EQ(authorizer->queries() - before, 4u);
}

TEST_F(RowAuthorizerBatchTest, ABatchWaitsUntilEveryTransactionIsVisible) {
  Answer warm;
  std::vector<int> order;
  ASSERT_NO_FATAL_FAILURE(warm_up(100, warm, order));

  // Bob's row is committed; Alice's is in a transaction still open (as decoding may report it).
  auto open = server::pg::Connection::open(cluster()->conninfo()).value();
  ASSERT_TRUE(open.exec("BEGIN").ok());
  ASSERT_TRUE(open.exec(std::string("INSERT INTO bdocs VALUES (102, '") + kAlice + "')").ok());
  const auto xid = static_cast<std::uint32_t>(
      std::stoul(std::string(open.exec("SELECT txid_current() & 4294967295")->value(0, 0))));

  Answer first, bob, alice;
  ask(committed(101, kAlice), first, order, 1);  // takes the connection
  ask(committed(103, kBob), bob, order, 2);      // these two queue and are batched
  ask(one_row(102, kAlice, xid), alice, order, 3);
  ASSERT_TRUE(loop.run_until([&] { return first.has_value(); }));
  // The batch holds both answers while one of its transactions is not visible yet.
  EXPECT_FALSE(loop.run_until([&] { return bob.has_value() || alice.has_value(); }, 300ms));
  EXPECT_GT(authorizer->visibility_waits(), 0u);

  ASSERT_TRUE(open.exec("COMMIT").ok());
  ASSERT_TRUE(loop.run_until([&] { return bob.has_value() && alice.has_value(); }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  ASSERT_TRUE(bob->ok() && alice->ok());
  EXPECT_EQ(visible((**bob)[1]), (std::vector<bool>{true}));
  EXPECT_EQ(visible((**bob)[0]), (std::vector<bool>{false}));
  EXPECT_EQ(visible((**alice)[0]), (std::vector<bool>{true}));  // seen once committed
  EXPECT_EQ(visible((**alice)[1]), (std::vector<bool>{false}));
}

// Two connections: while a batch runs, the second takes the waiting calls only once a whole batch
// of them waits — smaller batches side by side would each repeat the per-class work.
TEST_F(RowAuthorizerBatchTest, ASecondConnectionTakesABatchOnlyOnceAFullOneWaits) {
  PgRowAuthorizerOptions o = batching();
  o.connections = 2;
  o.max_batch_transactions = 3;
  o.parallel_batch_from = 3;
  authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  Answer warm;
  std::vector<int> order;
  ASSERT_NO_FATAL_FAILURE(warm_up(300, warm, order));
  const auto before = authorizer->queries();

  std::vector<Answer> answers(5);
  ask(committed(301, kAlice), answers[0], order, 1);  // takes the first connection
  ask(committed(302, kBob), answers[1], order, 2);
  ask(committed(303, kAlice), answers[2], order, 3);
  EXPECT_EQ(authorizer->waiting(), 2u);  // the second connection is idle, and stays so
  ask(committed(304, kBob), answers[3], order, 4);
  EXPECT_EQ(authorizer->waiting(), 0u);  // a full batch waited: the second connection took it
  ask(committed(305, kAlice), answers[4], order, 5);
  EXPECT_EQ(authorizer->waiting(), 1u);
  // Batches on different connections may answer in either order (callers keep commit order).
  ASSERT_TRUE(loop.run_until([&] { return order.size() == 6; }));
  expect_each_row_seen_by_its_owner(answers);
  // Three batches of two classes each: {301}, {302, 303, 304}, {305}.
  EXPECT_EQ(authorizer->queries() - before, 6u);
}

// A batch stops short of `max_batch_checks` rows asked about: the calls behind it wait for the
// next batch instead of making one long statement.
TEST_F(RowAuthorizerBatchTest, ABatchHoldsNoMoreRowsThanItsBound) {
  PgRowAuthorizerOptions o = batching();
  o.max_batch_checks = 4;  // two calls of two rows (one per class) each
  authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  Answer warm;
  std::vector<int> order;
  ASSERT_NO_FATAL_FAILURE(warm_up(400, warm, order));
  const auto before = authorizer->queries();

  std::vector<Answer> answers(5);
  ask_in_turn(401, answers, order);
  EXPECT_EQ(authorizer->waiting(), 4u);
  ASSERT_TRUE(loop.run_until([&] { return order.size() == 6; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  expect_each_row_seen_by_its_owner(answers);
  // Batches {401}, {402, 403}, {404, 405}, two classes each: 6 queries (one batch of four: 4).
  EXPECT_EQ(authorizer->queries() - before, 6u);
}

// One big transaction, asked about densely by two classes (all its rows; its last third) and
// sparsely by a third (every 100th row): each image gets its own answer whichever way the class
// names the images it asks about (a mask or a list of ordinals).
TEST_F(RowAuthorizerBatchTest, EveryImageOfABigTransactionGetsItsOwnAnswer) {
  constexpr std::size_t kRows = 3000;
  constexpr const char* kCarol = "33333333-3333-3333-3333-333333333333";
  auto txn = std::make_shared<Transaction>();
  auto owner = [&](std::size_t i) { return i % 3 == 0 ? kAlice : i % 3 == 1 ? kBob : kCarol; };
  for (std::size_t i = 0; i < kRows; ++i) {
    RowChange ch;
    ch.kind = ChangeKind::insert;
    ch.relation = rel;
    ch.record = json::object{{"id", static_cast<std::int64_t>(5000 + i)}, {"owner", owner(i)}};
    txn->changes.push_back(std::move(ch));
  }
  std::vector<server::RowCheck> all, last_third, every_100th;
  for (std::size_t i = 0; i < kRows; ++i) {
    const server::RowCheck rc{i, server::RowImage::new_row};
    all.push_back(rc);
    if (i >= 2 * kRows / 3) last_third.push_back(rc);
    if (i % 100 == 2) every_100th.push_back(rc);  // Carol's rows (i % 3 == 2) where i % 300 == 2
  }
  Answer answer;
  authorizer->authorize(txn,
                        asked({{cls("authenticated", claims(kAlice)), all},
                               {cls("authenticated", claims(kBob)), last_third},
                               {cls("authenticated", claims(kCarol)), every_100th}}),
                        [&](auto r) { answer = std::move(r); });
  ASSERT_TRUE(loop.run_until([&] { return answer.has_value(); }));
  ASSERT_TRUE(answer->ok()) << answer->error().describe();
  const auto& r = **answer;
  auto expected = [&](const std::vector<server::RowCheck>& asked_rows, const char* who) {
    std::vector<bool> out;
    for (const auto& rc : asked_rows)
      out.push_back(owner(rc.change) == who);
    return out;
  };
  EXPECT_EQ(visible(r[0]), expected(all, kAlice));
  EXPECT_EQ(visible(r[1]), expected(last_third, kBob));
  EXPECT_EQ(visible(r[2]), expected(every_100th, kCarol));
  // Not vacuous: each class sees some of what it asked about, and not all.
  for (std::size_t k = 0; k < 3; ++k) {
    const auto seen = visible(r[k]);
    const auto n = std::count(seen.begin(), seen.end(), true);
    EXPECT_GT(n, 0) << k;
    EXPECT_LT(static_cast<std::size_t>(n), seen.size()) << k;
  }
}

// Policies that cost 10 ms a row, under a 1 s statement timeout.
class SlowPolicyTest : public RowAuthorizerBatchTest {
 protected:
  void SetUp() override {
    RowAuthorizerBatchTest::SetUp();
    slow = std::make_shared<server::Relation>(*rel);
    slow->oid = static_cast<std::uint32_t>(
        std::stoul(std::string(query("SELECT 'slowdocs'::regclass::oid").value(0, 0))));
    slow->table = "slowdocs";
  }

  void use(core::Duration shrunk_batches_for) {
    PgRowAuthorizerOptions o = batching();
    o.statement_timeout = std::chrono::milliseconds(1000);
    o.shrunk_batches_for = shrunk_batches_for;
    authorizer = std::make_unique<PgRowAuthorizer>(loop.io, loop.sched, o);
  }

  // `calls` transactions of `rows` of Alice's rows each (not committed anywhere: xid 0, no commit
  // wait), asked about by her class.
  void make_calls(int calls, int rows) {
    txns.clear();
    for (int c = 0; c < calls; ++c) {
      auto t = std::make_shared<Transaction>();
      std::vector<server::RowCheck> checks;
      for (int i = 0; i < rows; ++i) {
        RowChange ch;
        ch.kind = ChangeKind::insert;
        ch.relation = slow;
        ch.record = json::object{{"id", i}, {"owner", kAlice}};
        t->changes.push_back(std::move(ch));
        checks.push_back(server::RowCheck{static_cast<std::size_t>(i), server::RowImage::new_row});
      }
      txns.emplace_back(std::move(t),
                        asked({{cls("authenticated", claims(kAlice)), std::move(checks)}}));
    }
  }

  // Asks about calls [from, end) at once: the first takes the connection alone, the rest queue
  // behind it and are batched.
  std::vector<Answer> ask_from(std::size_t from) {
    std::vector<Answer> answers(txns.size());
    for (std::size_t i = from; i < txns.size(); ++i)
      authorizer->authorize(txns[i].first, txns[i].second,
                            [&answers, i](auto r) { answers[i] = std::move(r); });
    EXPECT_TRUE(loop.run_until(
        [&] {
          return std::all_of(answers.begin() + static_cast<std::ptrdiff_t>(from), answers.end(),
                             [](const Answer& a) { return a.has_value(); });
        },
        30s));
    return answers;
  }

  // Calls from `from` on (ten rows, 0.1 s each) were batched together, longer than the timeout,
  // and cancelled: each was answered with an error its caller retries.
  void expect_batch_cancelled(const std::vector<Answer>& answers, std::size_t from) {
    for (std::size_t i = from; i < answers.size(); ++i) {
      ASSERT_TRUE(answers[i].has_value()) << i;
      ASSERT_FALSE(answers[i]->ok()) << i << ": the batch should have been cancelled";
      EXPECT_TRUE(authorizer->transient(answers[i]->error())) << answers[i]->error().describe();
    }
  }

  std::shared_ptr<server::Relation> slow;
  std::vector<std::pair<std::shared_ptr<const Transaction>, server::VisibilityRequests>> txns;
};

// A batch of 12 calls of 10 rows (1.2 s: pg_sleep only ever sleeps longer) is cancelled; its
// calls, asked again (as the hub does with a transient error), go 6 at a time (0.6 s, inside the
// timeout on a loaded machine; unshrunk, the 11 after the first would take 1.1 s) and are
// answered. One call whose rows alone take
// 1.5 s gets an error that is not transient: retrying would meet the same policies on the same
// rows.
TEST_F(SlowPolicyTest, ACancelledBatchIsRetriedInHalvesAndACancelledCallAloneIsRefused) {
  use(std::chrono::seconds(60));
  make_calls(13, 10);
  auto first = ask_from(0);
  ASSERT_TRUE(first[0].has_value() && first[0]->ok()) << "the first call, alone: 0.1 s";
  ASSERT_NO_FATAL_FAILURE(expect_batch_cancelled(first, 1));
  auto again = ask_from(1);
  for (std::size_t i = 1; i < again.size(); ++i) {
    ASSERT_TRUE(again[i]->ok()) << i << ": " << again[i]->error().describe();
    EXPECT_EQ(visible((**again[i])[0]), std::vector<bool>(10, true)) << i;
  }

  make_calls(1, 150);
  auto alone = ask_from(0);
  ASSERT_FALSE(alone[0]->ok());
  EXPECT_EQ(alone[0]->error().code, Errc::too_large) << alone[0]->error().describe();
  EXPECT_FALSE(authorizer->transient(alone[0]->error()));
}

// The smaller batches last `shrunk_batches_for`: with none, the calls asked again are batched as
// before and cancelled again.
TEST_F(SlowPolicyTest, BatchesShrinkOnlyForTheirWindow) {
  use(core::Duration::zero());
  make_calls(15, 10);
  auto first = ask_from(0);
  ASSERT_NO_FATAL_FAILURE(expect_batch_cancelled(first, 1));
  auto again = ask_from(1);  // call 1 alone, then 13 batched: 1.3 s
  ASSERT_TRUE(again[1]->ok()) << again[1]->error().describe();
  ASSERT_NO_FATAL_FAILURE(expect_batch_cancelled(again, 2));
}

// PostgreSQL ends the authorizer's session (a restart, an operator's pg_terminate_backend) while
// it is idle: the session's image tables went with it, so the next batch runs on a new connection
// and must make them again instead of failing once on a missing table and being retried.
TEST_F(RowAuthorizerBatchTest, ASessionEndedWhileIdleIsReplacedWithoutAFailedBatch) {
  Answer warm;
  std::vector<int> order;
  ASSERT_NO_FATAL_FAILURE(warm_up(200, warm, order));
  ASSERT_TRUE(warm->ok()) << warm->error().describe();

  ASSERT_EQ(query("SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity "
                  "WHERE application_name = 'rtsync_rls'")
                .value(0, 0),
            "1");
  // The connection notices the close while idle (it watches its socket), then is asked again.
  loop.run_until([] { return false; }, 200ms);

  Answer after;
  ask(committed(201, kAlice), after, order, 1);
  ASSERT_TRUE(loop.run_until([&] { return after.has_value(); }));
  ASSERT_TRUE(after->ok()) << after->error().describe();
  EXPECT_EQ(visible((**after)[0]), (std::vector<bool>{true}));
  EXPECT_EQ(visible((**after)[1]), (std::vector<bool>{false}));
}

}  // namespace
}  // namespace rtsync::test
