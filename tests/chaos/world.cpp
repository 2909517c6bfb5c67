#include "world.hpp"

#include <chrono>
#include <map>
#include <random>

#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/testkit/migrated_cluster.hpp"

namespace rtsync::chaos {

namespace {

// Every committed change of public.tasks, in the transaction that made it: the writer's sequence
// number (params.chaos_seq), the transaction id, the operation, the row, its project and the
// project's owner. Not in the publication: the server never sees it.
constexpr std::string_view kAuditSql = R"sql(
CREATE SCHEMA chaos;
CREATE TABLE chaos.audit (
  seq bigint NOT NULL,
  txid bigint NOT NULL,
  op text NOT NULL,
  row_id uuid NOT NULL,
  project_id uuid NOT NULL,
  owner uuid,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION chaos.audit_tasks() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE r public.tasks;
BEGIN
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  INSERT INTO chaos.audit (seq, txid, op, row_id, project_id, owner)
  VALUES (coalesce((r.params->>'chaos_seq')::bigint, -1), txid_current(), TG_OP, r.id,
          r.project_id, (SELECT p.user_id FROM public.projects p WHERE p.id = r.project_id));
  RETURN NULL;
END $$;
CREATE TRIGGER chaos_audit AFTER INSERT OR UPDATE OR DELETE ON public.tasks
  FOR EACH ROW EXECUTE FUNCTION chaos.audit_tasks();
)sql";

std::string random_hex(std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string s;
  for (std::size_t i = 0; i < n; ++i)
    s.push_back(kHex[rd() % 16]);
  return s;
}

Error step(std::string_view what, const Error& e) {
  return make_error(e.code, std::string(what) + ": " + e.message);
}

Op op_of(std::string_view s) {
  return s == "INSERT" ? Op::insert : s == "UPDATE" ? Op::update : Op::remove;
}

}  // namespace

Result<std::unique_ptr<ChaosWorld>> ChaosWorld::create(const Plan& plan,
                                                       std::string server_binary) {
  std::unique_ptr<ChaosWorld> w(new ChaosWorld());
  if (auto r = w->setup(plan, server_binary); !r.ok()) return r.error();
  return w;
}

Result<void> ChaosWorld::setup(const Plan& plan, const std::string& server_binary) {
  secret_ = random_hex(48);
  auto cluster = testkit::TempCluster::create(testkit::with_migrations());
  if (!cluster.ok()) return step("PostgreSQL", cluster.error());
  pg_ = std::move(cluster.value());

  auto conn = server::pg::Connection::open(pg_->conninfo());
  if (!conn.ok()) return step("connect", conn.error());
  if (auto r = conn->exec_script(kAuditSql); !r.ok()) return step("audit", r.error());
  for (int u = 0; u < plan.users; ++u) {
    User user;
    user.email = "chaos" + std::to_string(u) + "@rtsync.local";
    user.password = random_hex(16);
    auto row = conn->exec(
        "INSERT INTO auth.users (email, encrypted_password, email_confirmed_at) "
        "VALUES ($1, auth.hash_password($2), now()) RETURNING id::text",
        {user.email, user.password});
    if (!row.ok()) return step("user", row.error());
    user.id = std::string(row->value(0, 0));
    for (int p = 0; p < plan.projects_per_user; ++p) {
      auto prow = conn->exec(
          "INSERT INTO public.projects (name, user_id) VALUES ($1, $2::uuid) RETURNING id::text",
          {"chaos " + std::to_string(u) + "." + std::to_string(p), user.id});
      if (!prow.ok()) return step("project", prow.error());
      user.projects.emplace_back(prow->value(0, 0));
    }
    users_.push_back(std::move(user));
  }

  testkit::FaultProxyOptions dbo;
  dbo.target_port = static_cast<std::uint16_t>(pg_->port());
  auto db_link = testkit::FaultProxy::start(dbo);
  if (!db_link.ok()) return step("db link", db_link.error());
  db_link_ = std::move(db_link.value());

  std::vector<std::string> args = {
      "--db",
      "host=127.0.0.1 port=" + std::to_string(db_link_->port()) + " dbname=postgres user=postgres",
      "--jwt-secret",
      secret_,
      "--access-token-ttl",
      std::to_string(plan.token_ttl.count())};
  if (plan.fault == FaultKind::slow_consumer) {
    // A client that stops reading is dropped once this much is queued for it (the default limits
    // would take minutes to reach at these rates).
    for (std::string a : {"--max-queued-frames", "256", "--max-queued-bytes", "262144"})
      args.push_back(a);
  }
  server_ = std::make_unique<ServerProcess>(server_binary, args, pg_->folder() + "/server.log");
  if (auto r = server_->start(); !r.ok()) return step("server", r.error());

  testkit::FaultProxyOptions co;
  co.target_port = server_->port();
  // Small socket buffers: a stalled client back-pressures the server within a few dozen frames.
  co.socket_buffer_bytes = 32 * 1024;
  auto client_link = testkit::FaultProxy::start(co);
  if (!client_link.ok()) return step("client link", client_link.error());
  client_link_ = std::move(client_link.value());

  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  anon_key_ = server::auth::sign_hs256(
      json::object{{"role", "anon"}, {"iss", "rtsync"}, {"iat", now}, {"exp", now + 86400}},
      secret_);

  loop_.start();
  auto client_options = [&](const User& u) {
    ChaosClientOptions o;
    o.url = "http://127.0.0.1:" + std::to_string(client_link_->port());
    o.anon_key = anon_key_;
    o.email = u.email;
    o.password = u.password;
    o.user_id = u.id;
    o.project = watched_project();
    o.refresh_margin = plan.refresh_margin;
    return o;
  };
  auto victim = ChaosClient::start(loop_, client_options(users_[0]));
  if (!victim.ok()) return step("victim client", victim.error());
  victim_ = std::move(victim.value());
  auto attacker = ChaosClient::start(loop_, client_options(users_[1 % users_.size()]));
  if (!attacker.ok()) return step("attacker client", attacker.error());
  attacker_ = std::move(attacker.value());

  WriterOptions wo;
  wo.conninfo = pg_->conninfo();
  for (const auto& u : users_)
    for (const auto& p : u.projects)
      wo.projects.push_back(p);
  wo.watched = 0;  // users_[0].projects[0]
  wo.watched_share = plan.watched_share;
  wo.rate = plan.rate;
  wo.max_changes_per_transaction = plan.max_changes_per_transaction;
  wo.pad_bytes = plan.pad_bytes;
  wo.seed = plan.seed;
  writer_ = std::make_unique<ChaosWriter>(wo);
  return {};
}

ChaosWorld::~ChaosWorld() {
  if (writer_) writer_->stop();
  victim_.reset();
  attacker_.reset();
  loop_.stop();
  loop_.join();
  client_link_.reset();
  if (server_) server_->kill();
  db_link_.reset();
  pg_.reset();
}

Result<void> ChaosWorld::restart_server() {
  if (auto r = server_->start(); !r.ok()) return r.error();
  client_link_->set_target("127.0.0.1", server_->port());
  return {};
}

Result<std::vector<Committed>> ChaosWorld::committed() {
  auto conn = server::pg::Connection::open(pg_->conninfo());
  if (!conn.ok()) return conn.error();
  auto r = conn->exec(
      "SELECT seq, op, row_id::text, project_id::text, coalesce(owner::text, '') "
      "FROM chaos.audit ORDER BY seq");
  if (!r.ok()) return r.error();
  const auto log = writer_->log();
  std::vector<Committed> out;
  out.reserve(static_cast<std::size_t>(r->rows()));
  std::size_t t = 0;  // both in sequence order
  for (int i = 0; i < r->rows(); ++i) {
    Committed c;
    c.seq = std::stoll(std::string(r->value(i, 0)));
    c.op = op_of(r->value(i, 1));
    c.row_id = std::string(r->value(i, 2));
    c.project_id = std::string(r->value(i, 3));
    c.owner = std::string(r->value(i, 4));
    while (t < log.size() && log[t].last_seq < c.seq)
      ++t;
    if (t < log.size() && log[t].first_seq <= c.seq) {
      c.sent = log[t].sent;
      c.acked = log[t].acked;
    }
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::string> ChaosWorld::sql_value(const std::string& query,
                                          const std::vector<std::optional<std::string>>& params) {
  auto conn = server::pg::Connection::open(pg_->conninfo());
  if (!conn.ok()) return conn.error();
  auto r = conn->exec(query, params);
  if (!r.ok()) return r.error();
  if (r->rows() == 0) return std::string();
  return std::string(r->value(0, 0));
}

Result<Rows> ChaosWorld::database_rows() {
  auto conn = server::pg::Connection::open(pg_->conninfo());
  if (!conn.ok()) return conn.error();
  auto r = conn->exec(
      "SELECT id::text, project_id::text, coalesce((params->>'chaos_seq')::bigint, -1) "
      "FROM public.tasks WHERE project_id = $1::uuid",
      {watched_project()});
  if (!r.ok()) return r.error();
  Rows rows;
  for (int i = 0; i < r->rows(); ++i)
    rows[std::string(r->value(i, 0))] =
        RowVersion{std::string(r->value(i, 1)), std::stoll(std::string(r->value(i, 2)))};
  return rows;
}

}  // namespace rtsync::chaos
