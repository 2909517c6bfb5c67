#include "rtsync/server/cdc/pg_channel_authorizer.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "rtsync/core/log.hpp"
#include "rtsync/server/cdc/names.hpp"
#include "rtsync/server/pg/async_connection.hpp"
#include "rtsync/server/pg/db_pool.hpp"
#include "rtsync/server/pg/pg_errors.hpp"

namespace rtsync::server::cdc {

namespace asio = boost::asio;
using pg::Statement;

namespace {

// The settings Supabase Realtime gives a policy check, local to the check's transaction, plus
// what the probe below reads: the caller's role and which rights to evaluate.
constexpr const char* kSettingsSql =
    "SELECT set_config('realtime.topic', $1, true), "
    "set_config('request.jwt.claims', $2, true), "
    "set_config('request.jwt.claim.sub', coalesce($2::jsonb ->> 'sub', ''), true), "
    "set_config('request.jwt.claim.role', $3, true), "
    "set_config('request.headers', '{}', true), "
    "set_config('rtsync.probe_role', $3, true), "
    "set_config('rtsync.probe_want', $4, true)";

// The probe (see the header). Everything it writes happens inside the block whose last statement
// raises RTPRB, so the block's sub-transaction rolls back the probe rows and the role switch; the
// answers survive in PL/pgSQL variables and leave through a transaction-local setting. Any other
// error (a policy that raises) ends the whole check with that error. `want`: b = broadcast read,
// p = presence read, w = both writes.
constexpr const char* kProbeSql = R"sql(DO $rtsync_probe$
DECLARE
  want text := current_setting('rtsync.probe_want');
  probe_topic text := current_setting('realtime.topic');
  broadcast_id uuid := gen_random_uuid();
  presence_id uuid := gen_random_uuid();
  broadcast_read boolean;
  presence_read boolean;
  broadcast_write boolean;
  presence_write boolean;
BEGIN
  BEGIN
    IF want ~ '[bp]' THEN
      INSERT INTO realtime.messages (id, topic, extension)
      VALUES (broadcast_id, probe_topic, 'broadcast'), (presence_id, probe_topic, 'presence');
    END IF;
    PERFORM set_config('role', current_setting('rtsync.probe_role'), true);
    IF strpos(want, 'b') > 0 THEN
      broadcast_read := EXISTS (SELECT 1 FROM realtime.messages WHERE id = broadcast_id);
    END IF;
    IF strpos(want, 'p') > 0 THEN
      presence_read := EXISTS (SELECT 1 FROM realtime.messages WHERE id = presence_id);
    END IF;
    IF strpos(want, 'w') > 0 THEN
      BEGIN
        INSERT INTO realtime.messages (topic, extension) VALUES (probe_topic, 'broadcast');
        broadcast_write := true;
      EXCEPTION WHEN insufficient_privilege THEN
        broadcast_write := false;
      END;
      BEGIN
        INSERT INTO realtime.messages (topic, extension) VALUES (probe_topic, 'presence');
        presence_write := true;
      EXCEPTION WHEN insufficient_privilege THEN
        presence_write := false;
      END;
    END IF;
    RAISE SQLSTATE 'RTPRB';
  EXCEPTION WHEN SQLSTATE 'RTPRB' THEN
    NULL;
  END;
  PERFORM set_config('rtsync.probe_result',
                     concat_ws(',', coalesce(broadcast_read::text, '-'),
                               coalesce(presence_read::text, '-'),
                               coalesce(broadcast_write::text, '-'),
                               coalesce(presence_write::text, '-')), true);
END
$rtsync_probe$)sql";

constexpr const char* kResultSql = "SELECT current_setting('rtsync.probe_result')";

std::string want_of(const ChannelCheck& c) {
  std::string w;
  if (c.broadcast_read) w += 'b';
  if (c.presence_read) w += 'p';
  if (c.write) w += 'w';
  return w;
}

// "true,false,-,-" → rights (positions: broadcast read, presence read, broadcast write, presence
// write; "-" not evaluated).
std::optional<ChannelRights> parse_answer(std::string_view text) {
  std::optional<bool> v[4];
  std::size_t i = 0;
  while (i < 4) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    if (item == "true") {
      v[i] = true;
    } else if (item == "false") {
      v[i] = false;
    } else if (item != "-") {
      return std::nullopt;
    }
    ++i;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (i != 4) return std::nullopt;
  return ChannelRights{v[0], v[1], v[2], v[3]};
}

ChannelAuthError classify(const Error& error) {
  if (pg::is_connection_failure(error) || error.code == Errc::closed ||
      error.code == Errc::timeout) {
    return {ChannelAuthFailure::unavailable, error.message};
  }
  const auto fields = pg::split_pg_error(error);
  const std::string message = fields.message.empty() ? error.message : fields.message;
  if (fields.sqlstate == "57014") return {ChannelAuthFailure::query_canceled, message};
  // Out of connections or memory, shutting down: the database, not the policies.
  if (fields.sqlstate.starts_with("53") || fields.sqlstate.starts_with("57") ||
      fields.sqlstate.starts_with("58")) {
    return {ChannelAuthFailure::unavailable, message};
  }
  return {ChannelAuthFailure::policy_error, message};
}

}  // namespace

struct PgChannelAuthorizer::Impl : std::enable_shared_from_this<PgChannelAuthorizer::Impl> {
  Impl(asio::io_context& io, core::Scheduler& sched, PgChannelAuthorizerOptions opts)
      : sched(sched), opts(std::move(opts)), logger(log::get(loggers::kServer)) {
    if (this->opts.connections == 0) this->opts.connections = 1;
    std::vector<pg::ConnOption> overrides{
        {"application_name", "rtsync_channel_auth"},
        {"options", fmt::format("-c statement_timeout={}", this->opts.statement_timeout.count())}};
    auto parsed = pg::ConnParams::parse(this->opts.conninfo);
    if (parsed) {
      if (auto existing = parsed->get("options"))
        overrides[1].second = *existing + " " + overrides[1].second;
    }
    for (const auto& [k, v] : pg::kKeepaliveDefaults) {
      if (!parsed || !parsed->get(k)) overrides.emplace_back(k, v);
    }
    for (std::size_t i = 0; i < this->opts.connections; ++i) {
      conns.push_back(std::make_unique<pg::AsyncConnection>(io, this->opts.conninfo, overrides));
    }
    allowed.insert(this->opts.allowed_roles.begin(), this->opts.allowed_roles.end());
  }

  // One probe in flight and every caller waiting for its answer.
  struct Flight {
    std::string key;
    ChannelCheck check;
    std::vector<std::function<void(ChannelAuthResult)>> waiters;
    core::Timer deadline;  // timers::ChannelAuthDeadline
    bool retried = false;
  };

  core::Scheduler& sched;
  PgChannelAuthorizerOptions opts;
  std::shared_ptr<spdlog::logger> logger;
  std::vector<std::unique_ptr<pg::AsyncConnection>> conns;
  std::unordered_set<std::string> allowed;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights;
  std::size_t next = 0;
  std::uint64_t probes = 0;
  std::uint64_t coalesced = 0;
  std::uint64_t failures = 0;
  bool destroyed = false;

  void answer_later(std::function<void(ChannelAuthResult)> done, ChannelAuthResult result) {
    if (!result) ++failures;
    sched.post([weak = weak_from_this(), done = std::move(done), result = std::move(result)] {
      auto self = weak.lock();
      if (!self || self->destroyed) return;
      done(result);
    });
  }

  void check(ChannelCheck c, std::function<void(ChannelAuthResult)> done) {
    if (!allowed.count(c.auth.role)) {
      return answer_later(std::move(done),
                          ChannelAuthError{ChannelAuthFailure::policy_error,
                                           "role '" + c.auth.role + "' is not an API role"});
    }
    const std::string want = want_of(c);
    if (want.empty()) return answer_later(std::move(done), ChannelRights{});
    std::string key = c.auth.role;
    for (std::string_view part : {std::string_view(c.auth.claims_json), std::string_view(c.topic),
                                  std::string_view(want)}) {
      key.push_back('\0');
      key += part;
    }
    if (auto it = flights.find(key); it != flights.end()) {
      ++coalesced;
      it->second->waiters.push_back(std::move(done));
      return;
    }
    auto f = std::make_shared<Flight>();
    f->key = key;
    f->check = std::move(c);
    f->waiters.push_back(std::move(done));
    f->deadline = sched.schedule(
        opts.answer_timeout, timers::ChannelAuthDeadline,
        [weak = weak_from_this(), f = std::weak_ptr<Flight>(f)] {
          auto self = weak.lock();
          auto flight = f.lock();
          if (!self || !flight || self->destroyed) return;
          self->logger->warn(
              "private channel check of {} got no answer from PostgreSQL "
              "in {} ms",
              flight->check.topic,
              std::chrono::duration_cast<std::chrono::milliseconds>(self->opts.answer_timeout)
                  .count());
          self->finish(flight, ChannelAuthError{ChannelAuthFailure::unavailable,
                                                "no answer from PostgreSQL in time"});
        });
    flights.emplace(key, f);
    send(f);
  }

  pg::AsyncConnection& pick() {
    // Least outstanding work first; ties rotate so every connection gets used.
    const std::size_t n = conns.size();
    std::size_t best = next % n;
    for (std::size_t k = 1; k < n; ++k) {
      const std::size_t i = (next + k) % n;
      if (conns[i]->pending() < conns[best]->pending()) best = i;
    }
    next = best + 1;
    return *conns[best];
  }

  void send(const std::shared_ptr<Flight>& f) {
    ++probes;
    // Not prepared: a check is pipelined behind others on the connection, and a named statement
    // whose Parse sat in an earlier batch that failed (a policy that raises) would not exist.
    std::vector<Statement> batch;
    batch.push_back(Statement{
        kSettingsSql,
        {f->check.topic, f->check.auth.claims_json, f->check.auth.role, want_of(f->check)},
        {},
        false});
    batch.push_back(Statement{kProbeSql, {}, {}, false});
    batch.push_back(Statement{kResultSql, {}, {}, false});
    pick().execute(std::move(batch),
                   [weak = weak_from_this(), f](Result<std::vector<pg::PgResult>> r) {
                     auto self = weak.lock();
                     if (!self || self->destroyed) return;
                     self->on_result(f, std::move(r));
                   });
  }

  void on_result(const std::shared_ptr<Flight>& f, Result<std::vector<pg::PgResult>> r) {
    auto it = flights.find(f->key);
    if (it == flights.end() || it->second != f) return;  // answered already (deadline)
    if (!r) {
      if (!f->retried && pg::is_connection_failure(r.error())) {
        // A connection PostgreSQL closed (a restart): the probe commits nothing, run it again on
        // a fresh one.
        f->retried = true;
        logger->info("private channel check re-run after: {}", r.error().message);
        return send(f);
      }
      auto err = classify(r.error());
      logger->warn("private channel check of {} failed: {}", f->check.topic, r.error().message);
      return finish(f, std::move(err));
    }
    auto& results = r.value();
    std::optional<ChannelRights> rights;
    if (!results.empty() && results.back().rows() == 1) {
      rights = parse_answer(results.back().value(0, 0));
    }
    if (!rights) {
      return finish(f, ChannelAuthError{ChannelAuthFailure::policy_error,
                                        "unexpected answer from the probe"});
    }
    finish(f, *rights);
  }

  void finish(const std::shared_ptr<Flight>& f, ChannelAuthResult result) {
    flights.erase(f->key);
    f->deadline.cancel();
    if (!result) failures += f->waiters.size();
    auto waiters = std::move(f->waiters);
    auto alive = weak_from_this();
    for (auto& w : waiters) {
      if (alive.expired() || destroyed) return;
      if (w) w(result);
    }
  }
};

PgChannelAuthorizer::PgChannelAuthorizer(asio::io_context& io, core::Scheduler& scheduler,
                                         PgChannelAuthorizerOptions options)
    : impl_(std::make_shared<Impl>(io, scheduler, std::move(options))) {}

PgChannelAuthorizer::~PgChannelAuthorizer() {
  impl_->destroyed = true;
  for (auto& [key, f] : impl_->flights)
    f->deadline.cancel();
  impl_->flights.clear();
  impl_->conns.clear();
}

void PgChannelAuthorizer::start() {
  for (auto& c : impl_->conns)
    c->connect();
}

void PgChannelAuthorizer::check(ChannelCheck check, std::function<void(ChannelAuthResult)> done) {
  impl_->check(std::move(check), std::move(done));
}

std::uint64_t PgChannelAuthorizer::probes() const {
  return impl_->probes;
}
std::uint64_t PgChannelAuthorizer::coalesced() const {
  return impl_->coalesced;
}
std::uint64_t PgChannelAuthorizer::failures() const {
  return impl_->failures;
}

}  // namespace rtsync::server::cdc
