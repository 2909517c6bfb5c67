// `rtsync migrate`: the demo schema lands completely on a fresh database, a second run changes
// nothing, concurrent runs serialize, an edited applied migration is refused.
#include <gtest/gtest.h>

#include <thread>

#include "rtsync/server/migrate/migrations.hpp"
#include "rtsync/server/pg/bootstrap.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/server/migrate/migrations.hpp"
#include "rtsync/testkit/temp_cluster.hpp"
#include "support/pg_suite.hpp"

namespace rtsync::test {
namespace {

namespace migrate = server::migrate;
namespace pg = server::pg;

// The shared fixture's fresh (unmigrated) cluster, and a fresh database in it per test.
class MigrateTest : public PgSuiteBase<MigrateTest> {
 protected:
  void SetUp() override {
    PgSuiteBase::SetUp();  // `db` on the cluster's `postgres` database
    if (HasFatalFailure()) return;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dbname = std::string("m_") + info->name();
    for (char& ch : dbname)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    sql("DROP DATABASE IF EXISTS " + pg::quote_identifier(dbname));
    sql("CREATE DATABASE " + pg::quote_identifier(dbname));
    conninfo = cluster()->conninfo(dbname);
    auto c = pg::Connection::open(conninfo);
    ASSERT_TRUE(c.ok());
    db = std::move(c).value();
  }

  std::string scalar(std::string_view sql) {
    auto r = db.exec(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << (r.ok() ? "" : r.error().describe());
    return r.ok() && r->rows() > 0 ? std::string(r->value(0, 0)) : std::string();
  }

  std::vector<int> all_versions() {
    std::vector<int> v;
    for (const auto& m : migrate::embedded_migrations())
      v.push_back(m.version);
    return v;
  }

  std::string dbname;
  std::string conninfo;  // the test's database
};

TEST_F(MigrateTest, EmbeddedMigrationsAreTheDbFilesInOrder) {
  const auto ms = migrate::embedded_migrations();
  ASSERT_GE(ms.size(), 5u);
  for (std::size_t i = 0; i < ms.size(); ++i) {
    EXPECT_EQ(ms[i].version, static_cast<int>(i + 1));
    EXPECT_FALSE(ms[i].sql.empty());
  }
  EXPECT_EQ(ms[0].name, "auth_users");
}

TEST_F(MigrateTest, FreshDatabaseGetsTheWholeSchema) {
  auto report = migrate::apply_migrations(conninfo, migrate::embedded_migrations());
  ASSERT_TRUE(report.ok()) << report.error().describe();
  EXPECT_EQ(report->applied, all_versions());
  EXPECT_TRUE(report->skipped.empty());

  EXPECT_EQ(scalar("SELECT count(*) FROM rtsync.schema_migrations"),
            std::to_string(all_versions().size()));
  EXPECT_EQ(scalar("SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum "
                   "WHERE enumtypid = 'public.task_status'::regtype"),
            "Queued,In Progress,Complete,Failed,Cancelled");
  for (const char* t :
       {"projects", "tasks", "generations", "shots", "shot_generations", "workers"}) {
    EXPECT_EQ(scalar(std::string("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.") + t +
                     "'::regclass"),
              "t")
        << t;
  }
  EXPECT_EQ(
      scalar("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables "
             "WHERE pubname = 'supabase_realtime'"),
      "generations,shot_generations,tasks");
  for (const char* t : {"tasks", "generations", "shot_generations"}) {
    EXPECT_EQ(scalar(std::string("SELECT relreplident FROM pg_class WHERE oid = 'public.") + t +
                     "'::regclass"),
              "f")
        << t;
  }
  // Defaults, foreign keys and indexes of the original schema.
  EXPECT_EQ(scalar("SELECT column_default FROM information_schema.columns WHERE table_name = "
                   "'tasks' AND column_name = 'status'"),
            "'Queued'::task_status");
  EXPECT_EQ(scalar("SELECT is_nullable FROM information_schema.columns WHERE table_name = "
                   "'shot_generations' AND column_name = 'position'"),
            "YES");
  EXPECT_EQ(
      scalar("SELECT confdeltype FROM pg_constraint WHERE conrelid = 'public.tasks'::regclass "
             "AND confrelid = 'public.projects'::regclass"),
      "c");
  EXPECT_EQ(
      scalar("SELECT confdeltype FROM pg_constraint WHERE conrelid = 'public.tasks'::regclass "
             "AND confrelid = 'public.workers'::regclass"),
      "n");
  for (const char* idx : {"idx_status_created", "idx_dependant_on", "idx_project_status"}) {
    EXPECT_EQ(
        scalar(std::string("SELECT count(*) FROM pg_indexes WHERE indexname = '") + idx + "'"), "1")
        << idx;
  }
  // Roles and grants as Supabase sets them; helpers; RPC functions.
  EXPECT_EQ(scalar("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'"), "t");
  EXPECT_EQ(scalar("SELECT has_table_privilege('anon', 'public.tasks', 'SELECT')"), "t");
  EXPECT_EQ(scalar("SELECT has_table_privilege('authenticated', 'auth.users', 'SELECT')"), "f");
  EXPECT_EQ(scalar("SELECT has_function_privilege('authenticated', "
                   "'auth.hash_password(text)', 'EXECUTE')"),
            "f");
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_proc WHERE proname IN ('task_status_counts', "
                   "'unpositioned_count', 'project_video_counts')"),
            "3");
  EXPECT_EQ(scalar("SELECT auth.check_password('pw', auth.hash_password('pw'))"), "t");
  EXPECT_EQ(scalar("SELECT auth.check_password('px', auth.hash_password('pw'))"), "f");
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_publication WHERE pubname = 'supabase_realtime'"), "1");
  // migrate leaves the replication slot to the server.
  EXPECT_EQ(scalar("SELECT count(*) FROM pg_replication_slots"), "0");
}

TEST_F(MigrateTest, SecondRunChangesNothing) {
  ASSERT_TRUE(migrate::run_migrations(conninfo).ok());
  const std::string before = scalar(
      "SELECT string_agg(version || ':' || applied_at, ',') FROM "
      "rtsync.schema_migrations");
  auto again = migrate::apply_migrations(conninfo, migrate::embedded_migrations());
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(again->skipped, all_versions());
  EXPECT_EQ(scalar("SELECT string_agg(version || ':' || applied_at, ',') FROM "
                   "rtsync.schema_migrations"),
            before);
}

TEST_F(MigrateTest, RunsOnADatabaseTheServerAlreadyBootstrapped) {
  auto boot = pg::bootstrap(db);  // as `rtsync server` does, slot included
  ASSERT_TRUE(boot.ok()) << boot.error().describe();
  auto report = migrate::apply_migrations(conninfo, migrate::embedded_migrations());
  ASSERT_TRUE(report.ok()) << report.error().describe();
  EXPECT_EQ(report->applied, all_versions());
  EXPECT_EQ(
      scalar("SELECT count(*) FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"),
      "3");
  (void)db.exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots");
}

TEST_F(MigrateTest, ConcurrentRunsApplyEachMigrationOnce) {
  std::vector<Result<migrate::MigrationReport>> results;
  results.reserve(3);
  for (int i = 0; i < 3; ++i)
    results.emplace_back(migrate::MigrationReport{});
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      results[i] = migrate::apply_migrations(conninfo, migrate::embedded_migrations());
    });
  }
  for (auto& t : threads)
    t.join();
  std::size_t applied = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.error().describe();
    applied += r->applied.size();
  }
  EXPECT_EQ(applied, all_versions().size());
  EXPECT_EQ(scalar("SELECT count(*) FROM rtsync.schema_migrations"),
            std::to_string(all_versions().size()));
}

TEST_F(MigrateTest, AnEditedAppliedMigrationIsRefused) {
  ASSERT_TRUE(migrate::run_migrations(conninfo).ok());
  std::vector<migrate::Migration> edited(migrate::embedded_migrations().begin(),
                                         migrate::embedded_migrations().end());
  const std::string changed = std::string(edited[1].sql) + "\n-- edited\n";
  edited[1].sql = changed;
  auto r = migrate::apply_migrations(conninfo, edited);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("migration 2_app_schema"), std::string::npos);
}

TEST_F(MigrateTest, AFailingMigrationLeavesNoTrace) {
  std::vector<migrate::Migration> ms = {
      {1, "good", "CREATE TABLE public.one (id int)"},
      {2, "bad", "CREATE TABLE public.two (id int); SELECT 1/0"},
  };
  auto r = migrate::apply_migrations(conninfo, ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::remote);
  EXPECT_NE(r.error().message.find("migration 2_bad"), std::string::npos);
  EXPECT_NE(r.error().message.find("division by zero"), std::string::npos);
  EXPECT_EQ(scalar("SELECT to_regclass('public.one') IS NOT NULL"), "t");
  EXPECT_EQ(scalar("SELECT to_regclass('public.two') IS NULL"), "t");
  EXPECT_EQ(scalar("SELECT string_agg(version::text, ',') FROM rtsync.schema_migrations"), "1");
}

TEST_F(MigrateTest, UnreachableDatabaseIsAnIoError) {
  auto r = migrate::run_migrations("host=127.0.0.1 port=1 dbname=x connect_timeout=2");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::io);
}

}  // namespace
}  // namespace rtsync::test
