#include "rtsync/server/cdc/pg_message_store.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>

#include "rtsync/core/log.hpp"
#include "rtsync/server/cdc/names.hpp"
#include "rtsync/server/pg/async_connection.hpp"
#include "rtsync/server/pg/db_pool.hpp"

namespace rtsync::server::cdc {

namespace {

// PostgreSQL's timestamps start in 4714 BC: an earlier `since` asks for everything all the same.
constexpr std::int64_t kEarliestMs = -210'000'000'000'000;

// ms since the epoch → the session's `timestamp without time zone`, exactly (no float).
constexpr std::string_view kAt =
    "(timestamptz 'epoch' + $%::bigint * interval '1 millisecond')::timestamp";

std::string at(int param) {
  std::string s(kAt);
  s.replace(s.find('%'), 1, std::to_string(param));
  return s;
}

// The replay statement: $1 topic, $2 since (ms), $3 limit, $4 the xids (int8[]) the snapshot
// must see, $5 answer even when it does not. One row with ok = false and no message when a xid
// is not visible yet; otherwise the messages (or one row of NULLs when there are none).
std::string replay_sql() {
  return R"sql(
SELECT v.ok, m.id::text, m.event, m.payload::text
FROM (SELECT coalesce(bool_and(pg_visible_in_snapshot(
               (CASE WHEN f >= x AND x >= 4294967296 THEN f - 4294967296 ELSE f END)::text::xid8,
               s)), true) AS ok
      FROM (SELECT s, x, ((x >> 32) << 32) + id AS f
            FROM (SELECT s, pg_snapshot_xmax(s)::text::int8 AS x
                  FROM pg_current_snapshot() AS s) a
            CROSS JOIN unnest($4::int8[]) AS id) b) v
LEFT JOIN LATERAL (
  SELECT id, event, payload, inserted_at, ctid FROM realtime.messages
  WHERE topic = $1 AND private IS TRUE AND extension = 'broadcast'
    AND inserted_at >= )sql" +
         at(2) + R"sql(
    AND inserted_at < localtimestamp + interval '1 minute'
  ORDER BY inserted_at DESC, ctid DESC LIMIT $3) m ON v.ok OR $5
ORDER BY m.inserted_at, m.ctid)sql";
}

constexpr auto kVisibilityFirstWait = std::chrono::milliseconds(1);
constexpr auto kVisibilityMaxWait = std::chrono::milliseconds(50);
constexpr auto kVisibilityGiveUp = std::chrono::seconds(2);

}  // namespace

struct PgMessageStore::Impl : std::enable_shared_from_this<PgMessageStore::Impl> {
  Impl(boost::asio::io_context& io, core::Scheduler& sched, std::string conninfo)
      : sched(sched),
        conn(io, std::move(conninfo), {{"application_name", "rtsync_messages"}}),
        logger(log::get(loggers::kServer)) {}
  core::Scheduler& sched;
  pg::AsyncConnection conn;
  std::shared_ptr<spdlog::logger> logger;
  std::vector<core::Timer> waits;  // visibility waits in progress

  struct Replay {
    std::string topic;
    std::int64_t since_ms = 0;
    std::int64_t limit = 0;
    std::string xids;  // int8[] literal
    ReplayCallback done;
    bool retried_connection = false;
    core::TimePoint started{};
    core::Duration wait = kVisibilityFirstWait;
  };

  void run(std::shared_ptr<Replay> r) {
    const bool force = sched.now() - r->started >= kVisibilityGiveUp;
    std::vector<pg::Statement> batch;
    batch.push_back({"SELECT set_config('statement_timeout', '5000', true)", {}, {}, false});
    batch.push_back({replay_sql(),
                     {r->topic, std::to_string(std::max(r->since_ms, kEarliestMs)),
                      std::to_string(std::clamp<std::int64_t>(r->limit, 1, 25)), r->xids,
                      force ? "true" : "false"},
                     {},
                     true});
    conn.execute(std::move(batch), [weak = weak_from_this(), r,
                                    force](Result<std::vector<pg::PgResult>> res) {
      auto self = weak.lock();
      if (!self) return;
      if (!res.ok()) {
        // A read: safe to run once more when the connection, not the statement, failed.
        if (!r->retried_connection && pg::is_connection_failure(res.error())) {
          r->retried_connection = true;
          return self->run(r);
        }
        return r->done(res.error());
      }
      const auto& rows = res.value().back();
      if (rows.rows() > 0 && rows.value(0, 0) != "t" && !force) {
        // A transaction the caller already handed on is not visible yet: wait, then ask again.
        auto delay = r->wait;
        r->wait = std::min<core::Duration>(r->wait * 2, kVisibilityMaxWait);
        self->waits.push_back(self->sched.schedule(delay, timers::VisibilityWait, [weak, r] {
          if (auto s = weak.lock()) s->run(r);
        }));
        if (self->waits.size() > 64) {
          std::erase_if(self->waits, [](const core::Timer& t) { return !t.pending(); });
        }
        return;
      }
      if (force && rows.rows() > 0 && rows.value(0, 0) != "t") {
        self->logger->warn(
            "replay of {}: handed-on transactions still invisible after {} ms", r->topic,
            std::chrono::duration_cast<std::chrono::milliseconds>(kVisibilityGiveUp).count());
      }
      std::vector<StoredMessage> out;
      out.reserve(static_cast<std::size_t>(rows.rows()));
      for (int i = 0; i < rows.rows(); ++i) {
        // No message (NULL id), or a row without payload or event: the live path does not
        // broadcast such a row either.
        if (rows.is_null(i, 1) || rows.is_null(i, 2) || rows.is_null(i, 3)) continue;
        out.push_back(StoredMessage{std::string(rows.value(i, 1)), std::string(rows.value(i, 2)),
                                    std::string(rows.value(i, 3))});
      }
      r->done(std::move(out));
    });
  }
};

PgMessageStore::PgMessageStore(boost::asio::io_context& io, core::Scheduler& scheduler,
                               std::string conninfo)
    : impl_(std::make_shared<Impl>(io, scheduler, std::move(conninfo))) {}

PgMessageStore::~PgMessageStore() {
  for (auto& t : impl_->waits)
    t.cancel();
}

void PgMessageStore::replay(std::string topic, std::int64_t since_ms, std::int64_t limit,
                            std::vector<std::uint32_t> visible_xids, ReplayCallback done) {
  auto r = std::make_shared<Impl::Replay>();
  r->topic = std::move(topic);
  r->since_ms = since_ms;
  r->limit = limit;
  r->xids = "{";
  for (std::size_t i = 0; i < visible_xids.size(); ++i) {
    if (i) r->xids += ',';
    r->xids += std::to_string(visible_xids[i]);
  }
  r->xids += '}';
  r->done = std::move(done);
  r->started = impl_->sched.now();
  impl_->run(std::move(r));
}

void PgMessageStore::delete_before(std::int64_t cutoff_ms, std::size_t max_rows,
                                   DeleteCallback done) {
  std::vector<pg::Statement> batch;
  batch.push_back({"SELECT set_config('statement_timeout', '60000', true)", {}, {}, false});
  batch.push_back(
      {"DELETE FROM realtime.messages WHERE ctid = ANY (ARRAY("
       " SELECT ctid FROM realtime.messages WHERE inserted_at < " +
           at(1) + " LIMIT $2))",
       {std::to_string(std::max(cutoff_ms, kEarliestMs)), std::to_string(max_rows)},
       {},
       true});
  impl_->conn.execute(std::move(batch), [weak = std::weak_ptr(impl_), done = std::move(done)](
                                            Result<std::vector<pg::PgResult>> r) {
    if (!weak.lock()) return;
    if (!r.ok()) return done(r.error());
    done(static_cast<std::size_t>(r.value().back().affected_rows()));
  });
}

}  // namespace rtsync::server::cdc
