// TempCluster lifecycle and the idempotent bootstrap, against a real PostgreSQL 15.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "pg_fixture.hpp"

namespace rtsync::test {
namespace {

using server::pg::Connection;
using server::pg::TempCluster;

bool alive(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto p = line.rfind(')');
  return p == std::string::npos || p + 2 >= line.size() || line[p + 2] != 'Z';
}

TEST(TempClusterTest, ServesConnectionsAndLeavesNothingBehind) {
  auto created = TempCluster::create();
  ASSERT_TRUE(created.ok()) << created.error().describe();
  auto cluster = std::move(created).value();
  const std::string folder = cluster->folder();
  const int pid = cluster->postmaster_pid();
  EXPECT_TRUE(std::filesystem::exists(folder + "/data/PG_VERSION"));
  EXPECT_TRUE(alive(pid));
  EXPECT_GT(cluster->port(), 0);
  EXPECT_EQ(cluster->conninfo(), "host=127.0.0.1 port=" + std::to_string(cluster->port()) +
                                     " dbname=postgres user=postgres");

  auto conn = Connection::open(cluster->conninfo());
  ASSERT_TRUE(conn.ok()) << conn.error().describe();
  auto r = conn->exec(
      "SELECT current_setting('wal_level'), current_setting('max_replication_slots'), "
      "current_setting('fsync'), current_setting('server_version_num')::int / 10000");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->value(0, 0), "logical");
  EXPECT_EQ(r->value(0, 1), "10");
  EXPECT_EQ(r->value(0, 2), "off");
  EXPECT_EQ(r->value(0, 3), "15");
  conn->close();

  // Restart keeps port and data.
  ASSERT_TRUE(cluster->stop().ok());
  EXPECT_FALSE(cluster->running());
  EXPECT_FALSE(alive(pid));
  EXPECT_TRUE(cluster->stop().ok());  // idempotent
  ASSERT_TRUE(cluster->start().ok()) << cluster->log_tail();
  EXPECT_TRUE(Connection::open(cluster->conninfo()).ok());
  const int pid2 = cluster->postmaster_pid();
  EXPECT_TRUE(alive(pid2));

  cluster.reset();
  EXPECT_FALSE(std::filesystem::exists(folder));
  EXPECT_FALSE(alive(pid2));
}

TEST(TempClusterTest, MissingBinariesNameThePackage) {
  server::pg::TempClusterOptions o;
  o.bin_dir = "/nonexistent/postgresql/bin";
  auto created = TempCluster::create(o);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code, Errc::not_found);
  EXPECT_NE(created.error().message.find("postgresql-15"), std::string::npos)
      << created.error().message;
}

TEST(TempClusterTest, CleanupAllStopsEveryLiveCluster) {
  auto created = TempCluster::create();
  ASSERT_TRUE(created.ok()) << created.error().describe();
  auto cluster = std::move(created).value();
  const std::string folder = cluster->folder();
  const int pid = cluster->postmaster_pid();
  TempCluster::cleanup_all();
  EXPECT_FALSE(std::filesystem::exists(folder));
  EXPECT_FALSE(alive(pid));
  EXPECT_TRUE(cluster->destroy().ok());  // idempotent after cleanup_all
}

class BootstrapTest : public PgSuite {};

TEST_F(BootstrapTest, CreatesOnceThenChangesNothing) {
  ASSERT_TRUE(first_report());
  EXPECT_TRUE(first_report()->created_roles);
  EXPECT_TRUE(first_report()->created_functions);
  EXPECT_TRUE(first_report()->created_publication);

  server::pg::BootstrapOptions bo;
  bo.slot = "bootstrap_slot";
  auto second = server::pg::bootstrap(db, bo);
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_FALSE(second->created_roles);
  EXPECT_FALSE(second->created_functions);
  EXPECT_FALSE(second->created_publication);
  EXPECT_TRUE(second->created_slot);
  auto third = server::pg::bootstrap(db, bo);
  ASSERT_TRUE(third.ok()) << third.error().describe();
  EXPECT_FALSE(third->created_roles || third->created_functions || third->created_publication ||
               third->created_slot);

  auto slot = query(
      "SELECT plugin, slot_type, temporary FROM pg_replication_slots "
      "WHERE slot_name = 'bootstrap_slot'");
  ASSERT_EQ(slot.rows(), 1);
  EXPECT_EQ(slot.value(0, 0), "pgoutput");
  EXPECT_EQ(slot.value(0, 1), "logical");
  EXPECT_EQ(slot.value(0, 2), "f");
  EXPECT_EQ(query("SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime'").rows(), 1);
}

TEST_F(BootstrapTest, RolesAndAuthFunctionsExist) {
  auto roles = query(
      "SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles "
      "WHERE rolname IN ('anon','authenticated','service_role') ORDER BY rolname");
  ASSERT_EQ(roles.rows(), 3);
  EXPECT_EQ(roles.value(0, 0), "anon");
  EXPECT_EQ(roles.value(0, 1), "f");
  EXPECT_EQ(roles.value(0, 2), "f");
  EXPECT_EQ(roles.value(1, 0), "authenticated");
  EXPECT_EQ(roles.value(1, 2), "f");
  EXPECT_EQ(roles.value(2, 0), "service_role");
  EXPECT_EQ(roles.value(2, 1), "f");
  EXPECT_EQ(roles.value(2, 2), "t");
  auto fns = query(
      "SELECT to_regprocedure('auth.uid()') IS NOT NULL, to_regprocedure('auth.role()') IS NOT "
      "NULL, to_regprocedure('auth.jwt()') IS NOT NULL, "
      "has_schema_privilege('anon', 'auth', 'USAGE'), "
      "has_schema_privilege('authenticated', 'public', 'USAGE')");
  for (int c = 0; c < 5; ++c)
    EXPECT_EQ(fns.value(0, c), "t") << c;
}

TEST_F(BootstrapTest, AuthUidReturnsTheSubOfTheClaims) {
  sql("BEGIN");
  sql("SET LOCAL ROLE authenticated");
  auto set = query("SELECT set_config('request.jwt.claims', $1, true)",
                   {R"({"sub":"8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e","role":"authenticated"})"});
  auto r = query("SELECT auth.uid()::text, auth.role(), auth.jwt() ->> 'sub', current_user");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.value(0, 0), "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e");
  EXPECT_EQ(r.value(0, 1), "authenticated");
  EXPECT_EQ(r.value(0, 2), "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e");
  EXPECT_EQ(r.value(0, 3), "authenticated");
  query("SELECT set_config('request.jwt.claims', $1, true)", {R"({"sub":""})"});
  auto empty = query("SELECT auth.uid() IS NULL");
  EXPECT_EQ(empty.value(0, 0), "t");
  sql("ROLLBACK");
  // Outside the transaction the claims are gone.
  EXPECT_EQ(query("SELECT auth.uid() IS NULL").value(0, 0), "t");
}

TEST_F(BootstrapTest, RejectsBadSlotNamesAndForeignPlugins) {
  EXPECT_FALSE(server::pg::validate_slot_name("Bad-Name").ok());
  EXPECT_FALSE(server::pg::validate_slot_name("").ok());
  EXPECT_TRUE(server::pg::validate_slot_name("rtsync_realtime").ok());
  query("SELECT pg_create_logical_replication_slot('decoding_slot', 'test_decoding')");
  server::pg::BootstrapOptions bo;
  bo.slot = "decoding_slot";
  auto r = server::pg::bootstrap(db, bo);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("pgoutput"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace rtsync::test
