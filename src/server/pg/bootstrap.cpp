#include "rtsync/server/pg/bootstrap.hpp"

#include <functional>

#include "rtsync/core/log.hpp"
#include "rtsync/server/pg/names.hpp"

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
  r text;
  f record;
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
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
      IF NOT pg_has_role('authenticator', r, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO authenticator', r);
      END IF;
      IF NOT pg_has_role(current_user, r, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', r, current_user);
      END IF;
    END LOOP;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'rtsync bootstrap: cannot grant API roles to %: %', current_user, SQLERRM;
  END;

  IF to_regnamespace('auth') IS NULL THEN
    CREATE SCHEMA auth;
  END IF;

  -- Supabase's definitions. Created when missing; replaced only when rtsync made them (comment
  -- 'rtsync') and the body changed, so a hosted project's own functions are left alone.
  FOR f IN SELECT * FROM (VALUES
    ('auth.uid()', 'uuid', $src$
      SELECT nullif(coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
      ), '')::uuid
    $src$),
    ('auth.role()', 'text', $src$
      SELECT nullif(coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
      ), '')::text
    $src$),
    ('auth.jwt()', 'jsonb', $src$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $src$)) AS t(sig, ret, src)
  LOOP
    IF to_regprocedure(f.sig) IS NULL OR EXISTS (
         SELECT 1 FROM pg_proc p WHERE p.oid = to_regprocedure(f.sig)
           AND obj_description(p.oid, 'pg_proc') = 'rtsync' AND p.prosrc <> f.src) THEN
      EXECUTE format('CREATE OR REPLACE FUNCTION %s RETURNS %s LANGUAGE sql STABLE AS %L',
                     f.sig, f.ret, f.src);
      EXECUTE format('COMMENT ON FUNCTION %s IS %L', f.sig, 'rtsync');
      created_functions := true;
    END IF;
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
      IF NOT has_function_privilege(r, f.sig, 'EXECUTE') THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.sig, r);
      END IF;
    END LOOP;
  END LOOP;

  FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
    IF NOT has_schema_privilege(r, 'auth', 'USAGE') THEN
      EXECUTE format('GRANT USAGE ON SCHEMA auth TO %I', r);
    END IF;
    IF NOT has_schema_privilege(r, 'public', 'USAGE') THEN
      EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);
    END IF;
  END LOOP;

  PERFORM set_config('rtsync.bootstrap_roles', created_roles::text, true);
  PERFORM set_config('rtsync.bootstrap_functions', created_functions::text, true);
END
$rtsync$;
SELECT current_setting('rtsync.bootstrap_roles'), current_setting('rtsync.bootstrap_functions');
)sql";

// Supabase's Broadcast-from-Database objects (schema realtime), created only when missing so a
// hosted project's own definitions are left alone. Functions rtsync made (comment 'rtsync') are
// replaced when their body changed. The table is not partitioned (Supabase partitions it by day):
// retention deletes old rows instead (the server's schedule), and the messages publication carries
// inserts only, so those deletes never reach the change stream.
constexpr std::string_view kRealtimeScript = R"sql(
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('rtsync.bootstrap'));
DO $rtsync$
DECLARE
  created_table boolean := false;
  r text;
  f record;
BEGIN
  IF to_regnamespace('realtime') IS NULL THEN
    CREATE SCHEMA realtime;
  END IF;
  IF to_regclass('realtime.messages') IS NULL THEN
    CREATE TABLE realtime.messages (
      topic text NOT NULL,
      extension text NOT NULL,
      payload jsonb,
      event text,
      private boolean DEFAULT false,
      updated_at timestamp without time zone NOT NULL DEFAULT now(),
      inserted_at timestamp without time zone NOT NULL DEFAULT now(),
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      PRIMARY KEY (id, inserted_at)
    );
    CREATE INDEX messages_inserted_at_topic_index
      ON realtime.messages (inserted_at DESC, topic)
      WHERE extension = 'broadcast' AND private IS TRUE;
    ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
    created_table := true;
  END IF;

  FOR f IN SELECT * FROM (VALUES
    ('realtime.topic()', 'realtime.topic()', 'text', 'sql', 'STABLE', $src$
      SELECT nullif(current_setting('realtime.topic', true), '')::text
    $src$),
    ('realtime.send(jsonb,text,text,boolean)',
     'realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)',
     'void', 'plpgsql', 'VOLATILE', $src$
DECLARE
  generated_id uuid;
  final_payload jsonb;
BEGIN
  BEGIN
    generated_id := gen_random_uuid();
    final_payload := CASE WHEN payload ? 'id' THEN payload
                          ELSE payload || jsonb_build_object('id', generated_id) END;
    PERFORM set_config('realtime.topic', topic, true);
    INSERT INTO realtime.messages (id, payload, event, topic, private, extension)
    VALUES (generated_id, final_payload, event, topic, private, 'broadcast');
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'ErrorSendingBroadcastMessage: %', SQLERRM;
  END;
END
    $src$),
    ('realtime.broadcast_changes(text,text,text,text,text,record,record,text)',
     'realtime.broadcast_changes(topic_name text, event_name text, operation text, '
     'table_name text, table_schema text, new record, old record, level text DEFAULT ''ROW'')',
     'void', 'plpgsql', 'VOLATILE', $src$
DECLARE
  row_data jsonb;
BEGIN
  IF level = 'STATEMENT' THEN
    RAISE EXCEPTION 'function can only be triggered for each row, not for each statement';
  END IF;
  IF operation NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
    RAISE EXCEPTION 'Unexpected operation type: %', operation;
  END IF;
  row_data := jsonb_build_object('old_record', old, 'record', new, 'operation', operation,
                                 'table', table_name, 'schema', table_schema);
  PERFORM realtime.send(row_data, event_name, topic_name);
END
    $src$)) AS t(sig, decl, ret, lang, volatility, src)
  LOOP
    IF to_regprocedure(f.sig) IS NULL OR EXISTS (
         SELECT 1 FROM pg_proc p WHERE p.oid = to_regprocedure(f.sig)
           AND obj_description(p.oid, 'pg_proc') = 'rtsync' AND p.prosrc <> f.src) THEN
      EXECUTE format('CREATE OR REPLACE FUNCTION %s RETURNS %s LANGUAGE %s %s AS %L',
                     f.decl, f.ret, f.lang, f.volatility, f.src);
      EXECUTE format('COMMENT ON FUNCTION %s IS %L', f.sig, 'rtsync');
    END IF;
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
      IF NOT has_function_privilege(r, f.sig, 'EXECUTE') THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.sig, r);
      END IF;
    END LOOP;
  END LOOP;

  FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
    IF NOT has_schema_privilege(r, 'realtime', 'USAGE') THEN
      EXECUTE format('GRANT USAGE ON SCHEMA realtime TO %I', r);
    END IF;
    IF NOT has_table_privilege(r, 'realtime.messages', 'SELECT,INSERT,UPDATE') THEN
      EXECUTE format('GRANT SELECT, INSERT, UPDATE ON realtime.messages TO %I', r);
    END IF;
  END LOOP;

  PERFORM set_config('rtsync.bootstrap_messages', created_table::text, true);
END
$rtsync$;
SELECT current_setting('rtsync.bootstrap_messages');
)sql";

}  // namespace

std::size_t bootstrap_fingerprint() {
  const std::hash<std::string_view> h;
  return h(kSchemaScript) * 31 + h(kRealtimeScript);
}

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
  auto logger = log::get(loggers::kServer);
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

  auto realtime = conn.exec_script(kRealtimeScript);
  if (!realtime) {
    (void)conn.exec_script("ROLLBACK");
    return make_error(realtime.error().code,
                      "bootstrap (realtime schema): " + realtime.error().message);
  }
  report.created_messages = realtime->value(0, 0) == "true";
  if (auto c = conn.exec_script("COMMIT"); !c) {
    return make_error(c.error().code, "bootstrap commit: " + c.error().message);
  }

  // Publications: CREATE PUBLICATION has no IF NOT EXISTS; a concurrent creator surfaces as
  // duplicate_object (42710), which is success for us.
  auto ensure_publication = [&](const std::string& name, std::string_view what) -> Result<bool> {
    auto pub = conn.exec("SELECT 1 FROM pg_publication WHERE pubname = $1", {name});
    if (!pub) return make_error(pub.error().code, "bootstrap publication: " + pub.error().message);
    if (pub->rows() > 0) return false;
    auto created = conn.exec("CREATE PUBLICATION " + quote_identifier(name) + std::string(what));
    if (!created && sqlstate_of(created.error()) != "42710") {
      return make_error(created.error().code, "bootstrap publication: " + created.error().message);
    }
    return created.ok();
  };
  auto pub = ensure_publication(options.publication, "");
  if (!pub) return pub.error();
  report.created_publication = *pub;
  auto messages_pub = ensure_publication(options.messages_publication,
                                         " FOR TABLE realtime.messages WITH (publish = 'insert')");
  if (!messages_pub) return messages_pub.error();
  report.created_messages_publication = *messages_pub;

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
      "bootstrap done (roles created: {}, functions created: {}, publication created: {}, "
      "realtime.messages created: {}, slot created: {})",
      report.created_roles, report.created_functions, report.created_publication,
      report.created_messages, report.created_slot);
  return report;
}

}  // namespace rtsync::server::pg
