#include "rtsync/server/migrate/migrations.hpp"

#include <string>

#include "rtsync/core/log.hpp"
#include "rtsync/server/pg/bootstrap.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::server::migrate {
namespace {

// A fixed key for pg_advisory_lock, "rtsyncmg".
constexpr long long kLockKey = 0x7274'7379'6e63'6d67LL;

Error step_error(const Error& e, const std::string& what) {
  return make_error(e.code, what + ": " + e.message);
}

// One migration and its ledger row, in one transaction.
Result<void> apply_one(pg::Connection& c, const Migration& m, MigrationReport& report) {
  const std::string label = "migration " + std::to_string(m.version) + "_" + std::string(m.name);
  if (auto r = c.exec("BEGIN"); !r) return step_error(r.error(), label);
  auto rollback = [&](const Error& e) -> Result<void> {
    (void)c.exec("ROLLBACK");
    return step_error(e, label);
  };
  const std::string version = std::to_string(m.version);
  const std::string sql(m.sql);
  auto found = c.exec("SELECT checksum = md5($2) FROM rtsync.schema_migrations WHERE version = $1",
                      {version, sql});
  if (!found) return rollback(found.error());
  if (found->rows() == 1) {
    (void)c.exec("ROLLBACK");
    if (found->value(0, 0) != "t") {
      return make_error(Errc::invalid_argument,
                        label +
                            " was applied with a different text; add a new migration instead "
                            "of editing an applied one");
    }
    report.skipped.push_back(m.version);
    return {};
  }
  if (auto r = c.exec_script(sql); !r) return rollback(r.error());
  auto rec = c.exec(
      "INSERT INTO rtsync.schema_migrations (version, name, checksum) VALUES ($1, $2, md5($3))",
      {version, std::string(m.name), sql});
  if (!rec) return rollback(rec.error());
  if (auto r = c.exec("COMMIT"); !r) return step_error(r.error(), label);
  report.applied.push_back(m.version);
  return {};
}

}  // namespace

Result<MigrationReport> apply_migrations(std::string_view conninfo,
                                         std::span<const Migration> migrations) {
  auto conn = pg::Connection::open(conninfo);
  if (!conn) return conn.error();
  pg::Connection& c = conn.value();
  (void)c.exec("SET client_min_messages = warning");

  // Serialize concurrent runs; the lock goes with the connection.
  if (auto r = c.exec("SELECT pg_advisory_lock(" + std::to_string(kLockKey) + ")"); !r) {
    return step_error(r.error(), "advisory lock");
  }
  // The server's own prerequisites (roles, auth helpers, publication); the replication slot is
  // left to the server, which consumes it.
  pg::BootstrapOptions boot;
  boot.create_slot = false;
  if (auto b = pg::bootstrap(c, boot); !b) return step_error(b.error(), "bootstrap");

  auto ledger = c.exec_script(
      "CREATE SCHEMA IF NOT EXISTS rtsync;"
      "CREATE TABLE IF NOT EXISTS rtsync.schema_migrations ("
      " version integer PRIMARY KEY,"
      " name text NOT NULL,"
      " checksum text NOT NULL,"
      " applied_at timestamptz NOT NULL DEFAULT now())");
  if (!ledger) return step_error(ledger.error(), "schema_migrations");

  MigrationReport report;
  for (const auto& m : migrations) {
    if (auto r = apply_one(c, m, report); !r) return r.error();
  }
  return report;
}

Result<void> run_migrations(std::string_view conninfo) {
  auto log = log::get("Migrate");
  auto report = apply_migrations(conninfo, embedded_migrations());
  if (!report) {
    log->error("{}", report.error().describe());
    return report.error();
  }
  for (int v : report->applied)
    log->info("applied migration {}", v);
  log->info("{} applied, {} already present", report->applied.size(), report->skipped.size());
  return {};
}

}  // namespace rtsync::server::migrate
