#include "rtsync/server/cdc/pg_row_authorizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <deque>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "rtsync/core/log.hpp"
#include "rtsync/server/cdc/names.hpp"
#include "rtsync/server/pg/async_connection.hpp"

namespace rtsync::server::cdc {

namespace asio = boost::asio;
using pg::Param;
using pg::Statement;

namespace {

constexpr std::uint32_t kOidArrayType = 1028;   // _oid
constexpr std::uint32_t kTextArrayType = 1009;  // _text
constexpr std::uint32_t kInt8ArrayType = 1016;  // _int8
constexpr std::uint32_t kBoolArrayType = 1000;  // _bool
constexpr std::uint32_t kByteaType = 17;

// Table facts: whether RLS applies, the names the visibility query needs, and the columns (their
// change makes each connection rebuild its image table).
constexpr const char* kTableMetaSql = R"sql(
SELECT c.oid, c.relrowsecurity, n.nspname, c.relname,
       (SELECT string_agg(a.attname || ' ' || a.atttypid || ' ' || a.atttypmod, ',' ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY($1)
)sql";

// Per (role, table): does the role bypass RLS (superuser, BYPASSRLS, or the table's owner without
// FORCE ROW LEVEL SECURITY)? May it SELECT the table? And the USING expressions of the SELECT and
// ALL policies that apply to it (PUBLIC or a role it has the privileges of), permissive ones
// joined with OR and restrictive ones with AND — what PostgreSQL itself adds to a query of the
// table by that role. NULL: no such policy.
constexpr const char* kRolePrivSql = R"sql(
SELECT r.rolname, c.oid,
       r.rolsuper OR r.rolbypassrls OR
         (pg_has_role(r.oid, c.relowner, 'USAGE') AND NOT c.relforcerowsecurity),
       has_schema_privilege(r.oid, c.relnamespace, 'USAGE') AND
         has_table_privilege(r.oid, c.oid, 'SELECT'),
       (SELECT string_agg('(' || pg_get_expr(p.polqual, p.polrelid) || ')', ' OR '
                          ORDER BY p.polname)
        FROM pg_catalog.pg_policy p
        WHERE p.polrelid = c.oid AND p.polpermissive AND p.polcmd IN ('r', '*')
          AND p.polqual IS NOT NULL
          AND EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr(oid)
                      WHERE CASE WHEN pr.oid = 0 THEN true
                                 ELSE pg_has_role(r.oid, pr.oid, 'USAGE') END)),
       (SELECT string_agg('(' || pg_get_expr(p.polqual, p.polrelid) || ')', ' AND '
                          ORDER BY p.polname)
        FROM pg_catalog.pg_policy p
        WHERE p.polrelid = c.oid AND NOT p.polpermissive AND p.polcmd IN ('r', '*')
          AND p.polqual IS NOT NULL
          AND EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr(oid)
                      WHERE CASE WHEN pr.oid = 0 THEN true
                                 ELSE pg_has_role(r.oid, pr.oid, 'USAGE') END))
FROM pg_catalog.pg_roles r CROSS JOIN pg_catalog.pg_class c
WHERE r.rolname = ANY($1) AND c.oid = ANY($2)
)sql";

struct RolePriv {
  bool bypass = false;
  bool can_select = false;
  // The policy query for this role on this table, asking by a list of ordinals and by a mask
  // (build_visibility_sql); empty when no permissive policy applies (then no image is visible
  // and nothing needs asking).
  std::string visibility_sql;
  std::string visibility_mask_sql;
};

struct TableMeta {
  bool found = false;
  bool rls = false;
  std::string qualified;       // "schema"."table"
  std::string alias;           // "table": policies may name the table's columns through it
  std::string schema_literal;  // 'schema', for the live USAGE check
  std::string columns;         // the column list as the catalog has it (name, type, typmod)
  std::unordered_map<std::string, RolePriv> roles;
  core::TimePoint fetched{};
};

// Are the decoded transactions $1 (their 32-bit xids) all visible to a snapshot taken now? Each
// xid is widened to an xid8 in the epoch of the snapshot's xmax (one epoch back when it would lie
// at or beyond xmax: the transaction committed, so it is older). One statement for a whole batch.
constexpr const char* kCommitVisibleSql = R"sql(
SELECT coalesce(bool_and(pg_visible_in_snapshot(
         (CASE WHEN f >= m AND m >= 4294967296 THEN f - 4294967296 ELSE f END)::text::xid8, s)),
       true)
FROM (SELECT s, m, ((m >> 32) << 32) + x AS f
      FROM (SELECT s, pg_snapshot_xmax(s)::text::int8 AS m FROM pg_current_snapshot() AS s) a
      CROSS JOIN unnest($1::int8[]) AS x) b
)sql";

constexpr core::Duration kVisibilityWaitCap = std::chrono::milliseconds(100);

// {"a","b \"c\""} — every element quoted so empty strings and the word NULL stay values.
void append_array_element(std::string& out, std::string_view v) {
  out.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string oid_array(const std::vector<std::uint32_t>& oids) {
  std::string s = "{";
  for (std::size_t i = 0; i < oids.size(); ++i) {
    if (i) s.push_back(',');
    s += std::to_string(oids[i]);
  }
  s.push_back('}');
  return s;
}

std::string text_array(const std::vector<std::string>& items) {
  std::string s = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) s.push_back(',');
    append_array_element(s, items[i]);
  }
  s.push_back('}');
  return s;
}

template <class T>
T to_num(std::string_view s) {
  T v{};
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// The first line of a PostgreSQL message (the error itself, without CONTEXT lines and the final
// newline), for a log line or a wrapped error.
std::string_view first_line(std::string_view m) {
  return m.substr(0, m.find('\n'));
}

// An error that PostgreSQL being away (or busy) explains: a retry may well not meet it again.
bool outage_error(const Error& error) {
  switch (error.code) {
    case Errc::io:
    case Errc::closed:
    case Errc::timeout:
    case Errc::cancelled:
      return true;
    default:
      break;
  }
  // Connection exceptions (08), insufficient resources (53), operator intervention — shutdown,
  // crash recovery, cancelled statements (57), system errors (58), and serialization failures
  // and deadlocks (40) pass; anything else would fail the same way again.
  const std::string_view state = pg::sqlstate_of(error);
  if (state.size() != 5) return false;
  const std::string_view cls = state.substr(0, 2);
  return cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "40";
}

// A batch writes the images of each table once into a temporary table typed like the table
// (`pg_temp.rtsync_images_<oid>`: an ordinal, then the table's columns), each image a row built by
// jsonb_populate_record (missing columns are NULL). Each class's query then reads the rows it asks
// about under the table's name, so the policies' column references — bare or qualified by the
// table's name — read the image, and no image is parsed once per class. The ordinals of the
// images that pass come back. The image is not read from the table, so the role's schema USAGE
// and table SELECT privileges are checked as they are now (the cached metadata may be a second
// old).
std::string image_table(std::uint32_t oid) {
  return fmt::format("pg_temp.rtsync_images_{}", oid);
}

// How a class's query names the images it asks about. A list (`= ANY($1)`) costs a search of the
// list per image of the batch: with a generic plan the array is a parameter, which PostgreSQL
// never hashes, so a class asking about all n images of a big batch costs n² comparisons (30,000
// images: 1.2 s a class, measured). A mask (`$1[ordinal]`, true where asked) costs one lookup per
// image but its text grows with the highest ordinal asked, not with the images asked about: it is
// used where the images asked about are dense enough (choose_mask).
enum class Membership { list, mask };

std::string build_visibility_sql(std::uint32_t oid, const TableMeta& m, std::string_view permissive,
                                 std::string_view restrictive, Membership membership) {
  const std::string member =
      membership == Membership::list
          ? fmt::format("{}.rtsync_ordinal = ANY($1::int8[])", m.alias)
          : fmt::format("coalesce(($1::bool[])[{}.rtsync_ordinal], false)", m.alias);
  std::string sql = fmt::format(
      "SELECT {alias}.rtsync_ordinal FROM {images} AS {alias} WHERE {member} AND "
      "has_schema_privilege({schema}, 'USAGE') AND "
      "has_table_privilege({oid}::oid, 'SELECT') AND ({permissive})",
      fmt::arg("alias", m.alias), fmt::arg("images", image_table(oid)), fmt::arg("member", member),
      fmt::arg("schema", m.schema_literal), fmt::arg("oid", oid),
      fmt::arg("permissive", permissive));
  if (!restrictive.empty()) fmt::format_to(std::back_inserter(sql), " AND ({})", restrictive);
  return sql;
}

// A mask where at least one ordinal in kMaskDensity up to the highest asked is asked: its text
// (two bytes an ordinal) is then at most a few times the list's, and a list short enough to be
// chosen costs at most images × highest / kMaskDensity comparisons.
constexpr std::size_t kMaskDensity = 32;
bool choose_mask(std::size_t asked, std::size_t highest) {
  return highest <= asked * kMaskDensity;
}

// (Re)creates a connection's image table of `oid`. ON COMMIT DELETE ROWS: each batch's rows go
// with its transaction. Only the table's type is used, so no privilege on the table is needed.
std::vector<std::string> image_table_ddl(std::uint32_t oid, const TableMeta& m) {
  const std::string t = image_table(oid);
  return {fmt::format("DROP TABLE IF EXISTS {}", t),
          fmt::format("CREATE TEMP TABLE rtsync_images_{} ON COMMIT DELETE ROWS AS SELECT "
                      "NULL::int8 AS rtsync_ordinal, r.* FROM jsonb_populate_record(NULL::{}, "
                      "'{{}}') AS r WITH NO DATA",
                      oid, m.qualified),
          fmt::format("GRANT SELECT ON {} TO PUBLIC", t)};
}

std::string image_insert_sql(std::uint32_t oid, const TableMeta& m) {
  return fmt::format(
      "INSERT INTO {} SELECT u.o, r.* FROM unnest($1::text[]) WITH ORDINALITY AS u(j, o) "
      "CROSS JOIN LATERAL jsonb_populate_record(NULL::{}, u.j::jsonb) AS r",
      image_table(oid), m.qualified);
}

// A row image as the JSON jsonb_populate_record reads back into the table's types: bytea values
// get back the \x their decoding removed.
std::string image_json(const Relation& rel, const json::object& image) {
  bool has_bytea = false;
  for (const auto& c : rel.columns)
    has_bytea |= c.type_oid == kByteaType;
  if (!has_bytea) return json::serialize(image);
  json::object copy = image;
  for (const auto& c : rel.columns) {
    if (c.type_oid != kByteaType) continue;
    auto* v = copy.if_contains(c.name);
    if (v && v->is_string()) *v = "\\x" + std::string(v->get_string());
  }
  return json::serialize(copy);
}

}  // namespace

// Read-only, the class's role and claims, for the statements after it in the batch. The `sub` and
// `role` claims also go in `request.jwt.claim.sub`/`.role`, which auth.uid()/auth.role() read
// before parsing the whole claims text: once per class here instead of once per row evaluated.
constexpr const char* kClassSettingsSql =
    "SELECT set_config('transaction_read_only', 'on', true), set_config('role', $1, true), "
    "set_config('request.jwt.claims', $2, true), "
    "set_config('request.jwt.claim.sub', coalesce($2::jsonb ->> 'sub', ''), true), "
    "set_config('request.jwt.claim.role', coalesce($2::jsonb ->> 'role', ''), true)";

struct PgRowAuthorizer::Impl : std::enable_shared_from_this<PgRowAuthorizer::Impl> {
  Impl(asio::io_context& io, core::Scheduler& sched, PgRowAuthorizerOptions opts)
      : io(io), sched(sched), opts(std::move(opts)), logger(log::get(loggers::kServer)) {
    if (this->opts.connections == 0) this->opts.connections = 1;
    std::vector<pg::ConnOption> overrides{
        {"application_name", "rtsync_rls"},
        // Generic plans: the visibility statements run once per class and batch with only the
        // ordinals changing, and a custom plan would re-plan (and re-inline auth.uid()) each time.
        {"options", fmt::format("-c statement_timeout={} -c plan_cache_mode=force_generic_plan",
                                this->opts.statement_timeout.count())}};
    auto parsed = pg::ConnParams::parse(this->opts.conninfo);
    if (parsed) {
      if (auto existing = parsed->get("options"))
        overrides[1].second = *existing + " " + overrides[1].second;
    }
    for (const auto& [k, v] : pg::kKeepaliveDefaults) {
      if (!parsed || !parsed->get(k)) overrides.emplace_back(k, v);
    }
    for (std::size_t i = 0; i < this->opts.connections; ++i) {
      Slot slot;
      slot.conn = std::make_unique<pg::AsyncConnection>(io, this->opts.conninfo, overrides);
      slots.push_back(std::move(slot));
    }
    allowed.insert(this->opts.allowed_roles.begin(), this->opts.allowed_roles.end());
  }

  std::size_t batch_checks_bound() const {
    return sched.now() < shrunk_until ? checks_bound : opts.max_batch_checks;
  }

  struct Call {
    std::shared_ptr<const Transaction> txn;
    VisibilityRequests requests;
    std::function<void(Result<std::vector<VisibilityResult>>)> done;
    std::vector<VisibilityResult> results;
    std::size_t checks = 0;  // rows asked about, over all its requests
    // The commit-visibility wait: time waited so far and the next delay.
    core::Duration waited{};
    core::Duration next_wait{};
  };

  struct Slot {
    std::unique_ptr<pg::AsyncConnection> conn;
    bool busy = false;
    core::Timer wait;  // timers::VisibilityWait: re-runs the slot's call once its commit shows
    // The image tables this connection has, by table oid, with the column list they were made
    // for; forgotten when a batch fails (its creations were rolled back) or the connection is new.
    std::unordered_map<std::uint32_t, std::string> image_tables;
    std::uint64_t image_tables_connects = 0;
  };

  // Where one image's answer goes: group[call]->results[request].rows[pos].
  struct Target {
    std::size_t call = 0;
    std::size_t request = 0;
    std::size_t pos = 0;
  };
  // One visibility statement of the main batch and where its answers go: (image ordinal, whose
  // answer it is), sorted by ordinal. A flat vector: one is built per class and table of every
  // batch, and with single-row transactions that is dozens per change.
  struct Check {
    std::vector<std::pair<std::size_t, Target>> targets;
  };
  using Group = std::vector<std::shared_ptr<Call>>;

  asio::io_context& io;
  core::Scheduler& sched;
  PgRowAuthorizerOptions opts;
  std::shared_ptr<spdlog::logger> logger;
  std::vector<Slot> slots;
  std::deque<std::shared_ptr<Call>> waiting;
  std::unordered_set<std::string> allowed;
  std::unordered_set<std::string> warned_roles;
  std::unordered_map<std::uint32_t, TableMeta> tables;
  std::uint64_t queries = 0;
  std::uint64_t metadata_queries = 0;
  std::uint64_t failures = 0;
  std::uint64_t visibility_waits = 0;
  // Rows asked about per batch after a batch was cancelled (on_batch_timeout): until
  // `shrunk_until`, then opts.max_batch_checks again.
  std::size_t checks_bound = 0;
  core::TimePoint shrunk_until{};
  bool destroyed = false;

  static void reset_answers(Call& call) {
    const auto& requests = *call.requests;
    call.results.resize(requests.size());
    call.checks = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      call.results[i].rows.assign(requests[i].rows.size(), Visibility::hidden);
      call.checks += requests[i].rows.size();
    }
  }

  void authorize(std::shared_ptr<Call> call) {
    reset_answers(*call);
    waiting.push_back(std::move(call));
    dispatch();
  }

  void dispatch() {
    while (!waiting.empty() && !destroyed) {
      auto it = std::find_if(slots.begin(), slots.end(), [](const Slot& s) { return !s.busy; });
      if (it == slots.end()) return;
      const bool running =
          std::any_of(slots.begin(), slots.end(), [](const Slot& s) { return s.busy; });
      if (running && waiting.size() < opts.parallel_batch_from) return;  // the next batch waits
      auto call = std::move(waiting.front());
      waiting.pop_front();
      it->busy = true;
      const auto slot = static_cast<std::size_t>(it - slots.begin());
      if (needs_metadata(*call)) {
        run(slot, std::move(call));
        continue;
      }
      // Calls queued behind it whose metadata is known share its batch: one visibility query
      // per (class, table) for all of them instead of one per transaction — up to a bound on the
      // rows asked about, so that a batch's statements stay short (the statement timeout, and
      // the change stream's stall watch, see a batch as one step).
      std::size_t checks = call->checks;
      const std::size_t bound = batch_checks_bound();
      Group group{std::move(call)};
      while (group.size() < opts.max_batch_transactions && !waiting.empty() &&
             !needs_metadata(*waiting.front()) && checks + waiting.front()->checks <= bound) {
        checks += waiting.front()->checks;
        group.push_back(std::move(waiting.front()));
        waiting.pop_front();
      }
      check(slot, std::move(group));
    }
  }

  void release(std::size_t slot) {
    slots[slot].busy = false;
    if (!waiting.empty()) {
      sched.post([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->dispatch();
      });
    }
  }

  void finish(std::size_t slot, const std::shared_ptr<Call>& call,
              Result<std::vector<VisibilityResult>> result) {
    if (!result) ++failures;
    release(slot);
    auto done = std::move(call->done);
    if (done) done(std::move(result));
  }

  // Answers every call of the group, in order (an error answers each with it).
  void finish(std::size_t slot, const Group& group, const Error* error) {
    if (error) ++failures;
    release(slot);
    auto alive = weak_from_this();
    for (const auto& call : group) {
      if (alive.expired() || destroyed) return;
      auto done = std::move(call->done);
      if (!done) continue;
      if (error) {
        done(*error);
      } else {
        done(std::move(call->results));
      }
    }
  }

  // Does this call need step 1 (table/role metadata missing or aged out)?
  bool needs_metadata(const Call& call) const {
    const auto now = sched.now();
    for (const auto& req : *call.requests) {
      const bool role_ok = allowed.count(req.auth->role) != 0;
      for (const RowCheck& rc : req.rows) {
        const std::size_t idx = rc.change;
        if (idx >= call.txn->changes.size() || !call.txn->changes[idx].relation) continue;
        auto t = tables.find(call.txn->changes[idx].relation->oid);
        if (t == tables.end() || now - t->second.fetched >= opts.metadata_ttl) return true;
        if (role_ok && !t->second.roles.count(req.auth->role)) return true;
      }
    }
    return false;
  }

  bool role_allowed(const std::string& role) {
    if (allowed.count(role)) return true;
    if (warned_roles.insert(role).second) {
      logger->warn("RLS check: role '{}' is not an allowed API role; its rows stay invisible",
                   role);
    }
    return false;
  }

  // Step 1: metadata for the tables and roles this call needs, when not cached and fresh.
  void run(std::size_t slot, std::shared_ptr<Call> call) {
    const auto now = sched.now();
    std::vector<std::uint32_t> oids;
    std::vector<std::string> roles;
    std::unordered_set<std::uint32_t> seen_oids;
    std::unordered_set<std::string> seen_roles;
    for (const auto& req : *call->requests) {
      if (!allowed.count(req.auth->role)) continue;
      if (seen_roles.insert(req.auth->role).second) roles.push_back(req.auth->role);
    }
    bool stale = false;
    for (const auto& req : *call->requests) {
      for (const RowCheck& rc : req.rows) {
        const std::size_t idx = rc.change;
        if (idx >= call->txn->changes.size() || !call->txn->changes[idx].relation) continue;
        const std::uint32_t oid = call->txn->changes[idx].relation->oid;
        if (!seen_oids.insert(oid).second) continue;
        oids.push_back(oid);
        auto t = tables.find(oid);
        if (t == tables.end() || now - t->second.fetched >= opts.metadata_ttl) {
          stale = true;
          continue;
        }
        for (const auto& r : roles) {
          if (!t->second.roles.count(r)) stale = true;
        }
      }
    }
    if (!stale || oids.empty()) return check(slot, Group{std::move(call)});

    // Refresh every table of this call with every role known for it plus this call's roles.
    std::unordered_set<std::string> all_roles(roles.begin(), roles.end());
    for (auto oid : oids) {
      if (auto t = tables.find(oid); t != tables.end()) {
        for (const auto& [r, _] : t->second.roles)
          all_roles.insert(r);
      }
    }
    std::vector<std::string> role_list(all_roles.begin(), all_roles.end());
    std::vector<Statement> batch;
    batch.push_back(Statement{kTableMetaSql, {oid_array(oids)}, {kOidArrayType}});
    batch.push_back(Statement{
        kRolePrivSql, {text_array(role_list), oid_array(oids)}, {kTextArrayType, kOidArrayType}});
    ++metadata_queries;
    slots[slot].conn->execute(
        std::move(batch), [weak = weak_from_this(), slot, call, oids,
                           role_list](Result<std::vector<pg::PgResult>> r) mutable {
          auto self = weak.lock();
          if (!self || self->destroyed) return;
          if (!r) {
            // An outage's failures are the caller's to report (it retries, and says so once in
            // a while); anything else is news.
            self->logger->log(outage_error(r.error()) ? spdlog::level::debug : spdlog::level::warn,
                              "RLS metadata query failed: {}", r.error().message);
            return self->finish(slot, call, r.error());
          }
          self->store_metadata(oids, role_list, r.value());
          self->check(slot, Group{std::move(call)});
        });
  }

  void store_metadata(const std::vector<std::uint32_t>& oids, const std::vector<std::string>& roles,
                      const std::vector<pg::PgResult>& res) {
    const auto now = sched.now();
    for (auto oid : oids) {
      TableMeta m;
      m.fetched = now;
      tables[oid] = std::move(m);
    }
    const auto& t = res[0];
    for (int i = 0; i < t.rows(); ++i) {
      auto& m = tables[to_num<std::uint32_t>(t.value(i, 0))];
      m.found = true;
      m.rls = t.value(i, 1) == "t";
      m.qualified = pg::quote_identifier(t.value(i, 2)) + "." + pg::quote_identifier(t.value(i, 3));
      m.alias = pg::quote_identifier(t.value(i, 3));
      m.schema_literal = pg::quote_literal(t.value(i, 2));
      m.columns = std::string(t.value(i, 4));
    }
    for (auto oid : oids) {
      // Roles the catalog does not know see nothing; recording them avoids re-asking.
      for (const auto& r : roles)
        tables[oid].roles[r] = RolePriv{};
    }
    const auto& p = res[1];
    for (int i = 0; i < p.rows(); ++i) {
      const auto oid = to_num<std::uint32_t>(p.value(i, 1));
      auto& m = tables[oid];
      RolePriv priv{p.value(i, 2) == "t", p.value(i, 3) == "t", {}, {}};
      if (m.found && !p.is_null(i, 4)) {
        const std::string_view restrictive = p.is_null(i, 5) ? "" : p.value(i, 5);
        priv.visibility_sql =
            build_visibility_sql(oid, m, p.value(i, 4), restrictive, Membership::list);
        priv.visibility_mask_sql =
            build_visibility_sql(oid, m, p.value(i, 4), restrictive, Membership::mask);
      }
      m.roles[std::string(p.value(i, 0))] = std::move(priv);
    }
  }

  // Step 2: answer what metadata decides; one query per (class, table) for the rest, over every
  // call of the group (several transactions' rows in one query per class).
  void check(std::size_t slot, Group group) {
    std::vector<Statement> batch;
    std::vector<std::optional<Check>>
        checks;  // parallel to batch (nullopt: not a visibility query)
    auto add = [&](Statement st, std::optional<Check> c) {
      batch.push_back(std::move(st));
      checks.push_back(std::move(c));
    };
    // No BEGIN/ROLLBACK: everything up to the batch's Sync runs in one implicit transaction
    // (extended query protocol), so the role and claims set below hold for the rest of the batch
    // and vanish at its end; an error aborts the rest and rolls the transaction back by itself.
    const std::size_t header = batch.size();

    // Images to evaluate per class, with the tables (few: a linear search) in first-seen order.
    struct ClassRows {
      const AuthClass* auth = nullptr;
      std::vector<std::pair<std::uint32_t, std::vector<Target>>> tables;
      std::vector<Target>& of(std::uint32_t oid) {
        for (auto& [t, targets] : tables)
          if (t == oid) return targets;
        return tables.emplace_back(oid, std::vector<Target>{}).second;
      }
    };
    std::vector<ClassRows> classes;
    // By the requests' shared class object first: a router keeps one per (role, claims), so the
    // claims text is hashed once per object and batch, not once per request. Equal classes behind
    // different objects (a resume's own router, a class made anew) still share one question.
    std::unordered_map<const AuthClass*, std::size_t> class_of;
    struct ClassKeyHash {
      std::size_t operator()(const std::pair<std::string_view, std::string_view>& k) const {
        return std::hash<std::string_view>{}(k.second) * 31 +
               std::hash<std::string_view>{}(k.first);
      }
    };
    std::unordered_map<std::pair<std::string_view, std::string_view>, std::size_t, ClassKeyHash>
        class_of_text;  // views into the requests, which outlive this call
    for (std::size_t ci = 0; ci < group.size(); ++ci) {
      Call& call = *group[ci];
      const Transaction& txn = *call.txn;
      const auto& requests = *call.requests;
      for (std::size_t ri = 0; ri < requests.size(); ++ri) {
        const auto& req = requests[ri];
        auto& answers = call.results[ri].rows;
        if (!role_allowed(req.auth->role)) continue;
        ClassRows* cr = nullptr;
        for (std::size_t pos = 0; pos < req.rows.size(); ++pos) {
          const RowCheck& rc = req.rows[pos];
          if (rc.change >= txn.changes.size() || !txn.changes[rc.change].relation) continue;
          const RowChange& ch = txn.changes[rc.change];
          auto t = tables.find(ch.relation->oid);
          if (t == tables.end() || !t->second.found) continue;
          const TableMeta& meta = t->second;
          auto rp = meta.roles.find(req.auth->role);
          if (rp == meta.roles.end() || !rp->second.can_select) continue;
          if (!meta.rls || rp->second.bypass) {
            answers[pos] = Visibility::full;
            continue;
          }
          const bool old_image = rc.image == RowImage::old_row;
          const auto& image = old_image ? ch.old_record : ch.record;
          if (old_image && ch.relation->replica_identity != 'f') {
            // The key (or index) columns alone cannot be judged by the policies.
            answers[pos] = Visibility::key_only;
            continue;
          }
          if (!image || rp->second.visibility_sql.empty()) continue;  // hidden
          if (!cr) {
            auto [it, fresh] = class_of.try_emplace(req.auth.get(), classes.size());
            if (fresh) {
              auto [text, new_class] =
                  class_of_text.try_emplace(std::pair<std::string_view, std::string_view>(
                                                req.auth->role, req.auth->claims_json),
                                            classes.size());
              if (new_class) classes.push_back(ClassRows{req.auth.get(), {}});
              it->second = text->second;
            }
            cr = &classes[it->second];
          }
          cr->of(ch.relation->oid).push_back(Target{ci, ri, pos});
        }
      }
    }

    // Every image of the batch goes in once per table, numbered; classes ask by number.
    struct TableImages {
      std::string array = "{";
      std::size_t count = 0;
      std::unordered_map<const json::object*, std::size_t> ordinal;
    };
    std::unordered_map<std::uint32_t, TableImages> images;
    std::vector<std::uint32_t> image_order;
    std::vector<Statement> class_statements;
    std::vector<std::optional<Check>> class_checks;
    for (const auto& cr : classes) {
      if (cr.tables.empty()) continue;
      class_statements.push_back(
          Statement{kClassSettingsSql, {cr.auth->role, cr.auth->claims_json}, {}, true});
      class_checks.push_back(std::nullopt);
      for (const auto& [oid, targets] : cr.tables) {
        const TableMeta& meta = tables[oid];
        auto [tit, first] = images.try_emplace(oid);
        if (first) image_order.push_back(oid);
        TableImages& ti = tit->second;
        Check c;
        c.targets.reserve(targets.size());
        for (const Target& tg : targets) {
          const Call& call = *group[tg.call];
          const RowCheck& rc = (*call.requests)[tg.request].rows[tg.pos];
          const RowChange& ch = call.txn->changes[rc.change];
          const json::object& image = rc.image == RowImage::old_row ? *ch.old_record : *ch.record;
          auto [oit, fresh] = ti.ordinal.try_emplace(&image, ti.count + 1);
          if (fresh) {
            if (ti.count++) ti.array.push_back(',');
            append_array_element(ti.array, image_json(*ch.relation, image));
          }
          c.targets.emplace_back(oit->second, tg);
        }
        std::sort(c.targets.begin(), c.targets.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        const RolePriv& priv = meta.roles.at(cr.auth->role);
        Statement st;
        st.prepare = true;
        std::string asked = "{";
        if (choose_mask(c.targets.size(), c.targets.back().first)) {
          st.sql = priv.visibility_mask_sql;
          st.types.push_back(kBoolArrayType);
          std::size_t next = 1;  // the mask's next ordinal
          for (const auto& [ordinal, target] : c.targets) {
            for (; next <= ordinal; ++next) {
              if (next > 1) asked.push_back(',');
              asked.push_back(next == ordinal ? 't' : 'f');
            }
          }
        } else {
          st.sql = priv.visibility_sql;
          st.types.push_back(kInt8ArrayType);
          for (const auto& [ordinal, target] : c.targets) {
            if (asked.size() > 1) asked.push_back(',');
            asked += std::to_string(ordinal);
          }
        }
        asked.push_back('}');
        st.params.emplace_back(std::move(asked));
        class_statements.push_back(std::move(st));
        class_checks.push_back(std::move(c));
      }
    }
    // Image tables first (made or remade where this connection lacks them or the columns
    // changed), then the images, then the classes: the read-only setting comes after the writes.
    Slot& sl = slots[slot];
    // The connection this batch will run on: the current one, or (when it broke and is not back
    // yet) the next — whose session has no temporary tables, whatever the last batch made.
    const std::uint64_t runs_on = sl.conn->connects() + (sl.conn->connected() ? 0 : 1);
    if (sl.image_tables_connects != runs_on) {
      sl.image_tables.clear();
      sl.image_tables_connects = runs_on;
    }
    for (std::uint32_t oid : image_order) {
      const TableMeta& meta = tables[oid];
      auto have = sl.image_tables.find(oid);
      if (have == sl.image_tables.end() || have->second != meta.columns) {
        for (auto& ddl : image_table_ddl(oid, meta))
          add(Statement{std::move(ddl), {}, {}, false}, std::nullopt);
        sl.image_tables[oid] = meta.columns;
      }
      TableImages& ti = images[oid];
      ti.array.push_back('}');
      add(Statement{image_insert_sql(oid, meta), {std::move(ti.array)}, {kTextArrayType}, true},
          std::nullopt);
    }
    for (std::size_t k = 0; k < class_statements.size(); ++k)
      add(std::move(class_statements[k]), std::move(class_checks[k]));

    if (batch.size() == header) {
      // Everything was decided by metadata: answer on the next loop turn, like a query would.
      release(slot);
      sched.post([weak = weak_from_this(), group = std::move(group)] {
        for (const auto& call : group) {
          auto self = weak.lock();
          if (!self || self->destroyed) return;
          auto done = std::move(call->done);
          if (done) done(std::move(call->results));
        }
      });
      return;
    }

    // Read committed: every statement of the batch takes a newer snapshot than the first ones, so
    // once they see every transaction's commit, every visibility query does too.
    std::string xids;
    for (const auto& call : group) {
      if (call->txn->xid == 0) continue;
      xids += xids.empty() ? '{' : ',';
      xids += std::to_string(call->txn->xid);
    }
    const std::size_t waits = xids.empty() ? 0 : 1;
    if (waits) {
      xids += '}';
      batch.insert(batch.begin(), Statement{kCommitVisibleSql, {xids}, {kInt8ArrayType}, true});
      checks.insert(checks.begin(), std::nullopt);
    }

    std::size_t n_checks = 0;
    for (const auto& c : checks)
      n_checks += c.has_value();
    queries += n_checks;
    slots[slot].conn->execute(
        std::move(batch), [weak = weak_from_this(), slot, group, checks = std::move(checks),
                           waits](Result<std::vector<pg::PgResult>> r) mutable {
          auto self = weak.lock();
          if (!self || self->destroyed) return;
          if (!r) return self->on_batch_error(slot, group, r.error());
          auto& results = r.value();
          for (std::size_t w = 0; w < waits && w < results.size(); ++w) {
            if (results[w].rows() == 1 && results[w].value(0, 0) != "t") {
              if (self->wait_for_visibility(slot, group)) return;
              break;
            }
          }
          for (std::size_t s = 0; s < checks.size() && s < results.size(); ++s) {
            if (!checks[s]) continue;
            const Check& c = *checks[s];
            for (int row = 0; row < results[s].rows(); ++row) {
              const auto ord = to_num<std::size_t>(results[s].value(row, 0));
              auto t = std::lower_bound(c.targets.begin(), c.targets.end(), ord,
                                        [](const auto& e, std::size_t o) { return e.first < o; });
              for (; t != c.targets.end() && t->first == ord; ++t) {
                const Target& tg = t->second;
                group[tg.call]->results[tg.request].rows[tg.pos] = Visibility::full;
              }
            }
          }
          self->finish(slot, group, nullptr);
        });
  }

  // A transaction of the group is not yet visible: re-run the group's batch later on the same
  // connection (the wait is counted on the group's first call). Returns false when the wait is
  // over (the answers then stand as they are).
  bool wait_for_visibility(std::size_t slot, const Group& group) {
    Call& first = *group.front();
    if (first.waited >= opts.visibility_wait_max) {
      logger->warn(
          "RLS check: transaction {} (batch of {}) still not visible to snapshots after {} ms; its "
          "rows are answered as the snapshot sees them",
          first.txn->xid, group.size(),
          std::chrono::duration_cast<std::chrono::milliseconds>(first.waited).count());
      return false;
    }
    ++visibility_waits;
    if (first.next_wait <= core::Duration::zero()) first.next_wait = opts.visibility_wait_first;
    const auto delay = std::min(first.next_wait, opts.visibility_wait_max - first.waited);
    first.waited += delay;
    first.next_wait = std::min(first.next_wait * 2, kVisibilityWaitCap);
    // The answers gathered so far are discarded: the re-run starts from the metadata's.
    for (const auto& call : group)
      reset_answers(*call);
    slots[slot].wait =
        sched.schedule(delay, timers::VisibilityWait, [weak = weak_from_this(), slot, group] {
          auto self = weak.lock();
          if (!self || self->destroyed) return;
          self->check(slot, group);
        });
    return true;
  }

  void on_batch_error(std::size_t slot, const Group& group, const Error& err) {
    if (pg::sqlstate_of(err) == "57014") return on_batch_timeout(slot, group, err);
    logger->log(outage_error(err) ? spdlog::level::debug : spdlog::level::warn,
                "RLS visibility batch failed: {}", err.message);
    forget(slot, group);
    finish(slot, group, &err);
  }

  // A statement of the batch was cancelled (its statement timeout, or an operator). Several
  // calls: the batch was too big for the policies' cost — the calls are answered with the error
  // (an outage's kind: their callers retry) and the next batches hold half as many rows. One
  // call alone: a retry meets the same policies on the same rows, so the answer is an error that
  // is not transient (too_large) and the caller's retries end.
  void on_batch_timeout(std::size_t slot, const Group& group, const Error& err) {
    std::size_t asked = 0;
    for (const auto& call : group)
      asked += call->checks;
    forget(slot, group);
    if (group.size() > 1) {
      checks_bound = std::max<std::size_t>(1, std::min(batch_checks_bound(), asked) / 2);
      shrunk_until = sched.now() + opts.shrunk_batches_for;
      logger->warn(
          "RLS visibility batch of {} transaction parts ({} rows asked about) was cancelled ({}); "
          "batches hold at most {} rows for the next {} s",
          group.size(), asked, first_line(err.message), checks_bound,
          std::chrono::duration_cast<std::chrono::seconds>(opts.shrunk_batches_for).count());
      return finish(slot, group, &err);
    }
    const Error alone = make_error(
        Errc::too_large,
        fmt::format("the row security check of one transaction part ({} rows asked about) was "
                    "cancelled ({}): its policies take longer than the statement timeout "
                    "({} ms) on these rows",
                    asked, first_line(err.message), opts.statement_timeout.count()));
    logger->warn("RLS visibility check failed: {}", alone.message);
    finish(slot, group, &alone);
  }

  // After a failed batch: the image tables it created were rolled back with it, and privileges or
  // tables may have changed under us — what we knew about its calls' tables is read again.
  void forget(std::size_t slot, const Group& group) {
    slots[slot].image_tables.clear();
    for (const auto& call : group) {
      for (const auto& req : *call->requests) {
        for (const RowCheck& rc : req.rows) {
          if (rc.change < call->txn->changes.size() && call->txn->changes[rc.change].relation) {
            tables.erase(call->txn->changes[rc.change].relation->oid);
          }
        }
      }
    }
  }
};

PgRowAuthorizer::PgRowAuthorizer(asio::io_context& io, core::Scheduler& scheduler,
                                 PgRowAuthorizerOptions options)
    : impl_(std::make_shared<Impl>(io, scheduler, std::move(options))) {}

PgRowAuthorizer::~PgRowAuthorizer() {
  impl_->destroyed = true;
  impl_->waiting.clear();
  impl_->slots.clear();
}

void PgRowAuthorizer::start() {
  for (auto& s : impl_->slots)
    s.conn->connect();
}

void PgRowAuthorizer::authorize(std::shared_ptr<const Transaction> txn, VisibilityRequests requests,
                                std::function<void(Result<std::vector<VisibilityResult>>)> done) {
  auto call = std::make_shared<Impl::Call>();
  call->txn = std::move(txn);
  call->requests = std::move(requests);
  call->done = std::move(done);
  if (!call->txn || !call->requests) {
    impl_->sched.post(
        [call] { call->done(make_error(Errc::invalid_argument, "no transaction or requests")); });
    return;
  }
  impl_->authorize(std::move(call));
}

bool PgRowAuthorizer::transient(const Error& error) const {
  return outage_error(error);
}

std::uint64_t PgRowAuthorizer::queries() const {
  return impl_->queries;
}
std::uint64_t PgRowAuthorizer::metadata_queries() const {
  return impl_->metadata_queries;
}
std::uint64_t PgRowAuthorizer::failures() const {
  return impl_->failures;
}
std::uint64_t PgRowAuthorizer::visibility_waits() const {
  return impl_->visibility_waits;
}
std::size_t PgRowAuthorizer::waiting() const {
  return impl_->waiting.size();
}

}  // namespace rtsync::server::cdc
