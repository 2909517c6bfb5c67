// TempCluster lifecycle and the idempotent bootstrap, against a real PostgreSQL 15.
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "pg_fixture.hpp"
#include "rtsync/core/json.hpp"

namespace rtsync::test {
namespace {

using server::pg::Connection;
using testkit::TempCluster;

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
  testkit::TempClusterOptions o;
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

// A parent folder of its own, so the test's templates start absent and go away with it.
struct ScratchParent {
  std::string path;
  ScratchParent() {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/rtsync-tmpl-test-XXXXXX";
    if (::mkdtemp(tmpl.data())) path = tmpl;
    // PostgreSQL runs as `postgres` when the tests run as root: it must reach its folder.
    std::error_code ec;
    std::filesystem::permissions(
        path,
        std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
            std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
            std::filesystem::perms::others_exec,
        ec);
  }
  ~ScratchParent() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::string scalar_on(const TempCluster& cluster, std::string_view sql) {
  auto conn = Connection::open(cluster.conninfo());
  if (!conn.ok()) return "connect: " + conn.error().describe();
  auto r = conn->exec(sql);
  if (!r.ok()) return "error: " + r.error().describe();
  return r->rows() > 0 ? std::string(r->value(0, 0)) : std::string();
}

TEST(TempClusterTest, PreparedTemplateSkipsPreparationAndKeepsClustersApart) {
  ScratchParent parent;
  ASSERT_FALSE(parent.path.empty());
  int prepared = 0;
  auto options = [&](std::vector<std::string> extra) {
    testkit::TempClusterOptions o;
    o.parent_dir = parent.path;
    o.extra_config = std::move(extra);
    o.template_key = "prepared-template-test";
    o.prepare = [&](TempCluster& c) -> Result<void> {
      ++prepared;
      auto conn = Connection::open(c.conninfo());
      if (!conn.ok()) return conn.error();
      auto r = conn->exec_script(
          "CREATE TABLE schema_mark (v text); INSERT INTO schema_mark "
          "VALUES ('prepared')");
      if (!r.ok()) return r.error();
      return {};
    };
    return o;
  };

  // A failed preparation fails create() and publishes nothing.
  auto failing = options({});
  failing.prepare = [](TempCluster&) -> Result<void> {
    return make_error(Errc::remote, "schema refused");
  };
  auto refused = TempCluster::create(failing);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::remote);
  EXPECT_EQ(refused.error().message, "schema refused");

  auto first = TempCluster::create(options({"max_connections = 37"}));
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(prepared, 1);
  EXPECT_EQ(scalar_on(*first.value(), "SELECT v FROM schema_mark"), "prepared");
  EXPECT_EQ(scalar_on(*first.value(), "SHOW max_connections"), "37");
  ASSERT_EQ(scalar_on(*first.value(), "INSERT INTO schema_mark VALUES ('first only') RETURNING v"),
            "first only");

  auto second = TempCluster::create(options({}));
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_EQ(prepared, 1) << "the second cluster starts from the prepared template";
  EXPECT_NE(second.value()->port(), first.value()->port());
  EXPECT_NE(second.value()->folder(), first.value()->folder());
  EXPECT_EQ(scalar_on(*second.value(), "SELECT string_agg(v, ',') FROM schema_mark"), "prepared")
      << "a row the first cluster wrote after preparing is not in the template";
  EXPECT_EQ(scalar_on(*second.value(), "SHOW max_connections"), "100")
      << "extra_config is not part of the template";
  EXPECT_EQ(scalar_on(*second.value(), "SHOW wal_level"), "logical");

  // A restart keeps the copy's own port.
  const int port = second.value()->port();
  ASSERT_TRUE(second.value()->restart().ok()) << second.value()->log_tail();
  EXPECT_EQ(second.value()->port(), port);
  EXPECT_EQ(scalar_on(*second.value(), "SELECT count(*) FROM schema_mark"), "1");

  // Another key is another template.
  auto other_options = options({});
  other_options.template_key = "another-key";
  auto third = TempCluster::create(other_options);
  ASSERT_TRUE(third.ok()) << third.error().describe();
  EXPECT_EQ(prepared, 2);
}

TEST(TempClusterTest, TemplatesOffPreparesEveryCluster) {
  // With templates off nothing is published, so the default parent folder stays clean.
  ::setenv("RTSYNC_PG_TEMPLATE", "0", 1);
  int prepared = 0;
  testkit::TempClusterOptions o;
  o.template_key = "templates-off-test";
  o.prepare = [&](TempCluster&) -> Result<void> {
    ++prepared;
    return {};
  };
  auto a = TempCluster::create(o);
  auto b = TempCluster::create(o);
  ::unsetenv("RTSYNC_PG_TEMPLATE");
  ASSERT_TRUE(a.ok()) << a.error().describe();
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ(prepared, 2);
}

class BootstrapTest : public PgSuite {};

TEST_F(BootstrapTest, CreatesOnceThenChangesNothing) {
  ASSERT_TRUE(first_report());
  EXPECT_TRUE(first_report()->created_roles);
  EXPECT_TRUE(first_report()->created_functions);
  EXPECT_TRUE(first_report()->created_publication);
  EXPECT_TRUE(first_report()->created_messages);
  EXPECT_TRUE(first_report()->created_messages_publication);

  server::pg::BootstrapOptions bo;
  bo.slot = "bootstrap_slot";
  auto second = server::pg::bootstrap(db, bo);
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_FALSE(second->created_roles);
  EXPECT_FALSE(second->created_functions);
  EXPECT_FALSE(second->created_publication);
  EXPECT_FALSE(second->created_messages);
  EXPECT_FALSE(second->created_messages_publication);
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

// Broadcast from Database: what realtime.send and realtime.broadcast_changes write is what
// Supabase's functions write (extension 'broadcast', payload.id added when absent, private by
// default), errors inside send become a warning instead of failing the caller's transaction, and
// the messages publication carries inserts of realtime.messages only.
TEST_F(BootstrapTest, BroadcastFromDatabaseObjectsBehaveLikeSupabases) {
  sql("SELECT realtime.send('{\"msg\":1}'::jsonb, 'ev', 'room:1')");
  sql("SELECT realtime.send('{\"id\":\"own\"}'::jsonb, 'ev2', 'room:2', false)");
  auto sent = query(
      "SELECT topic, extension, event, private, payload->>'msg', payload->>'id' = id::text, "
      "payload->>'id' FROM realtime.messages ORDER BY inserted_at, event");
  ASSERT_EQ(sent.rows(), 2);
  EXPECT_EQ(sent.value(0, 0), "room:1");
  EXPECT_EQ(sent.value(0, 1), "broadcast");
  EXPECT_EQ(sent.value(0, 2), "ev");
  EXPECT_EQ(sent.value(0, 3), "t");
  EXPECT_EQ(sent.value(0, 4), "1");
  EXPECT_EQ(sent.value(0, 5), "t") << "payload.id is the message id when the payload has none";
  EXPECT_EQ(sent.value(1, 3), "f");
  EXPECT_EQ(sent.value(1, 6), "own") << "a payload's own id is kept";

  sql("CREATE TABLE bc_items (id int PRIMARY KEY, details text)");
  sql(R"(CREATE FUNCTION bc_items_changes() RETURNS trigger SECURITY DEFINER LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM realtime.broadcast_changes('items:' || coalesce(NEW.id, OLD.id)::text,
                                              TG_OP, TG_OP, TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
           RETURN NULL;
         END $$)");
  sql("CREATE TRIGGER bc AFTER INSERT OR UPDATE OR DELETE ON bc_items FOR EACH ROW "
      "EXECUTE FUNCTION bc_items_changes()");
  sql("INSERT INTO bc_items VALUES (7, 'seven')");
  sql("DELETE FROM bc_items WHERE id = 7");
  auto changes = query(
      "SELECT topic, event, payload - 'id' FROM realtime.messages WHERE topic = 'items:7' "
      "ORDER BY inserted_at, event DESC");
  ASSERT_EQ(changes.rows(), 2);
  EXPECT_EQ(changes.value(0, 1), "INSERT");
  EXPECT_EQ(json::parse(changes.value(0, 2)),
            json::parse(R"({"old_record":null,"operation":"INSERT","record":{"details":"seven",
                            "id":7},"schema":"public","table":"bc_items"})"));
  EXPECT_EQ(changes.value(1, 1), "DELETE");
  EXPECT_EQ(json::parse(changes.value(1, 2)),
            json::parse(R"({"old_record":{"details":"seven","id":7},"operation":"DELETE",
                            "record":null,"schema":"public","table":"bc_items"})"));

  // A failing send does not fail the caller (Supabase swallows it as a warning).
  sql("BEGIN");
  sql("SET LOCAL ROLE anon");
  EXPECT_EQ(query("SELECT realtime.send('{}'::jsonb, 'e', 'denied')").rows(), 1)
      << "RLS refuses anon's insert, and the caller's statement still succeeds";
  sql("ROLLBACK");
  EXPECT_EQ(query("SELECT count(*) FROM realtime.messages WHERE topic = 'denied'").value(0, 0),
            "0");

  auto pub = query(
      "SELECT pubinsert, pubupdate, pubdelete, "
      "(SELECT string_agg(schemaname || '.' || tablename, ',') FROM pg_publication_tables t "
      " WHERE t.pubname = p.pubname) FROM pg_publication p "
      "WHERE pubname = 'supabase_realtime_messages_publication'");
  ASSERT_EQ(pub.rows(), 1);
  EXPECT_EQ(pub.value(0, 0), "t");
  EXPECT_EQ(pub.value(0, 1), "f");
  EXPECT_EQ(pub.value(0, 2), "f");
  EXPECT_EQ(pub.value(0, 3), "realtime.messages");
  EXPECT_EQ(query("SELECT relrowsecurity FROM pg_class WHERE oid = 'realtime.messages'::regclass")
                .value(0, 0),
            "t");
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
