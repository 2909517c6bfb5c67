// `rtsync migrate`: applies the demo schema (db/NNNN_name.sql, embedded in the binary at build
// time) to a PostgreSQL database, idempotently.
//
// Each migration runs in its own transaction together with its row in rtsync.schema_migrations
// (version, name, md5 of the text, applied_at); versions already recorded are skipped, so running
// it again is a no-op. A recorded migration whose text has changed since is refused rather than
// silently skipped. Concurrent runs are serialized by an advisory lock.
//
// The connection role needs the right to create schemas, roles and extensions (a superuser, or
// Supabase's `postgres`).
//
// Thread safety: blocking calls on the caller's thread; each opens its own connection.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/result.hpp"

namespace rtsync::server::migrate {

struct Migration {
  int version = 0;        // NNNN of the file name
  std::string_view name;  // the file name's rest, without ".sql"
  std::string_view sql;   // the file's text
};

// db/*.sql in version order.
std::span<const Migration> embedded_migrations();

struct MigrationReport {
  std::vector<int> applied;  // versions run by this call, in order
  std::vector<int> skipped;  // versions already recorded
};

// Applies `migrations` (in the order given) to the database at `conninfo` (a libpq connection
// string or URI). Errors: Errc::io (cannot connect), Errc::remote (a statement failed: the message
// names the migration and carries PostgreSQL's error), Errc::invalid_argument (a recorded
// migration's text changed).
Result<MigrationReport> apply_migrations(std::string_view conninfo,
                                         std::span<const Migration> migrations);

// The `rtsync migrate --db <conninfo>` entry point: applies embedded_migrations() and logs each
// applied version under [Migrate].
Result<void> run_migrations(std::string_view conninfo);

}  // namespace rtsync::server::migrate
