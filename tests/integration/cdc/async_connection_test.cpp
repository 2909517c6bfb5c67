// AsyncConnection against a real PostgreSQL: pipelined batches, implicit per-batch transactions,
// prepared statements, errors inside a batch, lost connections.
#include "rtsync/server/pg/async_connection.hpp"

#include "pg_fixture.hpp"

namespace rtsync::test {
namespace {

using server::pg::AsyncConnection;
using server::pg::PgResult;
using server::pg::Statement;

class AsyncConnectionTest : public PgSuite {
 protected:
  Result<std::vector<PgResult>> run(AsyncConnection& c, std::vector<Statement> batch) {
    std::optional<Result<std::vector<PgResult>>> out;
    c.execute(std::move(batch), [&](Result<std::vector<PgResult>> r) { out = std::move(r); });
    EXPECT_TRUE(loop.run_until([&] { return out.has_value(); }));
    if (!out) return make_error(Errc::timeout, "batch never finished");
    return std::move(*out);
  }
  TestLoop loop;
};

TEST_F(AsyncConnectionTest, BatchesKeepOrderAndBindParameters) {
  AsyncConnection c(loop.io, cluster()->conninfo());
  std::vector<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    c.query("SELECT $1::int * 2, $2::text IS NULL", {std::to_string(i), std::nullopt},
            [&, i](Result<PgResult> r) {
              ASSERT_TRUE(r.ok()) << r.error().describe();
              EXPECT_EQ(r->value(0, 0), std::to_string(i * 2));
              EXPECT_EQ(r->value(0, 1), "t");
              seen.push_back(std::string(r->value(0, 0)));
            });
  }
  EXPECT_EQ(c.pending(), 20u);  // queued before the connection is even open
  ASSERT_TRUE(loop.run_until([&] { return seen.size() == 20; }));
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(seen[i], std::to_string(i * 2));
  EXPECT_EQ(c.connects(), 1u);
  // Values are never spliced into SQL text.
  auto r = run(c, {Statement{"SELECT $1::text", {"'); DROP TABLE x; --"}, {}}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(0).value(0, 0), "'); DROP TABLE x; --");
}

TEST_F(AsyncConnectionTest, SettingsLastForTheBatchOnly) {
  AsyncConnection c(loop.io, cluster()->conninfo());
  auto r =
      run(c, {Statement{"SELECT set_config('role', 'anon', true)", {}, {}},
              Statement{"SELECT current_user, current_setting('transaction_read_only')", {}, {}}});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->at(1).value(0, 0), "anon");
  auto next = run(c, {Statement{"SELECT current_user", {}, {}}});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->at(0).value(0, 0), "postgres");
}

TEST_F(AsyncConnectionTest, ErrorFailsTheBatchAndTheNextBatchRuns) {
  AsyncConnection c(loop.io, cluster()->conninfo());
  auto r = run(c, {Statement{"SELECT 1", {}, {}}, Statement{"SELECT 1/0", {}, {}},
                   Statement{"SELECT 3", {}, {}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server::pg::sqlstate_of(r.error()), "22012") << r.error().message;
  auto ok = run(c, {Statement{"SELECT 4", {}, {}}});
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  EXPECT_EQ(ok->at(0).value(0, 0), "4");
}

TEST_F(AsyncConnectionTest, PreparedStatementsParseOncePerConnection) {
  AsyncConnection c(loop.io, cluster()->conninfo());
  Statement st{"SELECT $1::int + 1", {"1"}, {}, true};
  for (int i = 0; i < 3; ++i) {
    st.params = {std::to_string(i)};
    auto r = run(c, {st, st});
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->size(), 2u);
    EXPECT_EQ(r->at(1).value(0, 0), std::to_string(i + 1));
  }
  EXPECT_EQ(c.prepared(), 1u);
  auto count = run(c, {Statement{"SELECT count(*) FROM pg_prepared_statements", {}, {}}});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->at(0).value(0, 0), "1");
  // A statement that fails to parse is not remembered as prepared.
  auto bad = run(c, {Statement{"SELEC nonsense", {}, {}, true}});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(c.prepared(), 1u);
}

// Two batches pipelined back to back use one named statement. The first fails before its Parse
// runs (PostgreSQL skips the rest of a failed batch), so the statement never exists: the second,
// sent while the Parse was still pending, must not depend on it (it failed with 26000, "prepared
// statement does not exist", before).
TEST_F(AsyncConnectionTest, ABatchSentWhileAnotherBatchsParseIsPendingDoesNotDependOnIt) {
  AsyncConnection c(loop.io, cluster()->conninfo());
  const Statement st{"SELECT $1::int * 10", {"4"}, {}, true};
  std::optional<Result<std::vector<PgResult>>> first, second;
  c.execute({Statement{"SELECT 1/0", {}, {}}, st},
            [&](Result<std::vector<PgResult>> r) { first = std::move(r); });
  c.execute({st}, [&](Result<std::vector<PgResult>> r) { second = std::move(r); });
  ASSERT_TRUE(loop.run_until([&] { return first.has_value() && second.has_value(); }));
  ASSERT_FALSE(first->ok());
  EXPECT_EQ(server::pg::sqlstate_of(first->error()), "22012");
  ASSERT_TRUE(second->ok()) << second->error().describe();
  EXPECT_EQ(second->value().at(0).value(0, 0), "40");
  // And the statement is prepared by the next batch that uses it.
  auto third = run(c, {st});
  ASSERT_TRUE(third.ok()) << third.error().describe();
  EXPECT_EQ(third->at(0).value(0, 0), "40");
  EXPECT_EQ(c.prepared(), 1u);
}

TEST_F(AsyncConnectionTest, LostConnectionFailsInFlightAndReconnects) {
  AsyncConnection c(loop.io, cluster()->conninfo());
  auto pid = run(c, {Statement{"SELECT pg_backend_pid()", {}, {}}});
  ASSERT_TRUE(pid.ok());
  std::optional<Result<std::vector<PgResult>>> slow;
  c.execute({Statement{"SELECT pg_sleep(5)", {}, {}}},
            [&](Result<std::vector<PgResult>> r) { slow = std::move(r); });
  loop.run_until([] { return false; }, 100ms);
  query("SELECT pg_terminate_backend($1::int)", {std::string(pid->at(0).value(0, 0))});
  ASSERT_TRUE(loop.run_until([&] { return slow.has_value(); }, 5s));
  ASSERT_FALSE(slow->ok());
  EXPECT_EQ(slow->error().code, Errc::io);
  EXPECT_FALSE(c.connected());
  auto again = run(c, {Statement{"SELECT 42", {}, {}}});
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(again->at(0).value(0, 0), "42");
  EXPECT_EQ(c.connects(), 2u);
}

TEST_F(AsyncConnectionTest, UnreachableServerIsAnErrorAndCloseFailsQueued) {
  AsyncConnection bad(loop.io,
                      "host=127.0.0.1 port=1 dbname=postgres user=postgres connect_timeout=2");
  std::optional<Result<std::vector<PgResult>>> r;
  bad.execute({Statement{"SELECT 1", {}, {}}}, [&](auto res) { r = std::move(res); });
  ASSERT_TRUE(loop.run_until([&] { return r.has_value(); }));
  ASSERT_FALSE(r->ok());
  EXPECT_EQ(r->error().code, Errc::io);

  AsyncConnection c(loop.io, cluster()->conninfo());
  std::optional<Errc> closed;
  c.execute({Statement{"SELECT 1", {}, {}}},
            [&](auto res) { closed = res.ok() ? Errc::internal : res.error().code; });
  c.close();
  EXPECT_EQ(closed, Errc::closed);
}

}  // namespace
}  // namespace rtsync::test
