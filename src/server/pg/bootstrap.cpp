#include "rtsync/server/pg/bootstrap.hpp"

#include "rtsync/core/log.hpp"

namespace rtsync::server::pg {

namespace {

// One script, one transaction, serialized across concurrent starts by an advisory lock. Every
// object is created only when missing, so a second run changes nothing.
constexpr std::string_view kSchemaScript = R"sql(
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('rtsync.bootstrap'));
DO $rtsync$
DECLARE
  created_roles boolean := false;
  created_functions boolean := false;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
    created_roles := true;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
    created_roles := true;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    created_roles := true;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator NOINHERIT LOGIN;
    created_roles := true;
  END IF;

  -- The server switches to these roles per request (SET ROLE needs membership unless superuser).
  BEGIN
    GRANT anon, authenticated, service_role TO authenticator;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
      EXECUTE format('GRANT anon, authenticated, service_role TO %I', current_user);
    END IF;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'rtsync bootstrap: cannot grant API roles to %: %', current_user, SQLERRM;
  END;

  CREATE SCHEMA IF NOT EXISTS auth;

  IF to_regprocedure('auth.uid()') IS NULL THEN
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $f$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
      )::uuid
    $f$;
    created_functions := true;
  END IF;
  IF to_regprocedure('auth.role()') IS NULL THEN
    CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $f$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
      )::text
    $f$;
    created_functions := true;
  END IF;
  IF to_regprocedure('auth.jwt()') IS NULL THEN
    CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $f$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $f$;
    created_functions := true;
  END IF;

  GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
  GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
  GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt()
    TO anon, authenticated, service_role;

  PERFORM set_config('rtsync.bootstrap_roles', created_roles::text, true);
  PERFORM set_config('rtsync.bootstrap_functions', created_functions::text, true);
END
$rtsync$;
SELECT current_setting('rtsync.bootstrap_roles'), current_setting('rtsync.bootstrap_functions');
)sql";

}  // namespace

Result<void> validate_slot_name(std::string_view name) {
  if (name.empty() || name.size() > 63) {
    return make_error(Errc::invalid_argument, "replication slot name must have 1 to 63 characters");
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return make_error(
          Errc::invalid_argument,
          "replication slot name may contain only a-z, 0-9 and _: " + std::string(name));
    }
  }
  return {};
}

Result<BootstrapReport> bootstrap(Connection& conn, const BootstrapOptions& options) {
  auto logger = log::get(log::kServer);
  BootstrapReport report;
  if (options.create_slot) {
    if (auto v = validate_slot_name(options.slot); !v) return v.error();
  }
  if (options.publication.empty()) {
    return make_error(Errc::invalid_argument, "publication name is empty");
  }

  auto schema = conn.exec_script(kSchemaScript);
  if (!schema) {
    (void)conn.exec_script("ROLLBACK");
    return make_error(schema.error().code,
                      "bootstrap (roles, auth schema): " + schema.error().message);
  }
  report.created_roles = schema->value(0, 0) == "true";
  report.created_functions = schema->value(0, 1) == "true";
  if (auto c = conn.exec_script("COMMIT"); !c) {
    return make_error(c.error().code, "bootstrap commit: " + c.error().message);
  }

  // Publication: CREATE PUBLICATION has no IF NOT EXISTS; a concurrent creator surfaces as
  // duplicate_object (42710), which is success for us.
  auto pub = conn.exec("SELECT 1 FROM pg_publication WHERE pubname = $1", {options.publication});
  if (!pub) return make_error(pub.error().code, "bootstrap publication: " + pub.error().message);
  if (pub->rows() == 0) {
    auto created = conn.exec("CREATE PUBLICATION " + quote_identifier(options.publication));
    if (!created && sqlstate_of(created.error()) != "42710") {
      return make_error(created.error().code, "bootstrap publication: " + created.error().message);
    }
    report.created_publication = created.ok();
  }

  if (options.create_slot) {
    // Slot creation must run outside a transaction that wrote anything, hence its own statement.
    auto slot = conn.exec("SELECT plugin, slot_type FROM pg_replication_slots WHERE slot_name = $1",
                          {options.slot});
    if (!slot) return make_error(slot.error().code, "bootstrap slot: " + slot.error().message);
    if (slot->rows() == 0) {
      auto created =
          conn.exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", {options.slot});
      if (!created && sqlstate_of(created.error()) != "42710") {
        return make_error(created.error().code, "bootstrap slot: " + created.error().message);
      }
      report.created_slot = created.ok();
    } else if (slot->value(0, 0) != "pgoutput" || slot->value(0, 1) != "logical") {
      return make_error(Errc::invalid_argument,
                        "replication slot " + options.slot + " exists with plugin '" +
                            std::string(slot->value(0, 0)) +
                            "'; rtsync needs a logical slot using pgoutput (drop it or choose "
                            "another slot name)");
    }
  }
  logger->info(
      "bootstrap done (roles created: {}, functions created: {}, publication created: "
      "{}, slot created: {})",
      report.created_roles, report.created_functions, report.created_publication,
      report.created_slot);
  return report;
}

}  // namespace rtsync::server::pg
