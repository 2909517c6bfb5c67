// What the server needs in the database, created the way Supabase defines it, idempotently (run
// on every server start; safe to run concurrently from two processes):
//   - roles anon, authenticated, service_role (NOLOGIN; service_role BYPASSRLS), granted to the
//     connecting role (and to `authenticator`) so the server can SET ROLE to them;
//   - schema auth with auth.uid(), auth.role(), auth.jwt() reading `request.jwt.claims`
//     (created only when missing: a hosted Supabase's own definitions are left alone);
//   - USAGE on schemas auth and public for the three roles;
//   - the publication `supabase_realtime` (empty) when missing;
//   - Broadcast from Database, as Supabase defines it (each object only when missing): schema
//     `realtime`, table `realtime.messages` (RLS enabled; SELECT/INSERT/UPDATE granted to the three
//     roles, so policies decide), `realtime.topic()`, `realtime.send(payload, event, topic,
//     private default true)`, `realtime.broadcast_changes(topic, event, operation, table, schema,
//     new, old, level default 'ROW')`, and the insert-only publication
//     `supabase_realtime_messages_publication` for that table;
//   - a persistent logical replication slot using the built-in `pgoutput` plugin when missing.
//
// Thread safety: blocking, on whichever thread calls it (start-up); shares nothing.
#pragma once

#include <string>

#include "rtsync/core/result.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::server::pg {

struct BootstrapOptions {
  std::string slot = "rtsync_realtime";
  std::string publication = "supabase_realtime";
  std::string messages_publication = "supabase_realtime_messages_publication";
  bool create_slot = true;
};

struct BootstrapReport {
  bool created_roles = false;      // at least one role was created
  bool created_functions = false;  // at least one auth.* function was created
  bool created_publication = false;
  bool created_messages = false;  // realtime.messages was created
  bool created_messages_publication = false;
  bool created_slot = false;
};

// Slot names: 1-63 of [a-z0-9_] (PostgreSQL's rule). Errc::invalid_argument otherwise.
Result<void> validate_slot_name(std::string_view name);

// Changes whenever what bootstrap() creates changes (the text of its scripts); test templates of
// bootstrapped clusters key on it so a stale copy is never reused.
std::size_t bootstrap_fingerprint();

// Runs the bootstrap on `conn` (blocking; start-up only). Errors name the failing step.
Result<BootstrapReport> bootstrap(Connection& conn, const BootstrapOptions& options = {});

}  // namespace rtsync::server::pg
