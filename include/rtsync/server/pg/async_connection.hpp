// A libpq connection driven by an Asio io_context: statements are queued, sent in pipeline mode
// (several batches may be in flight, each one round trip ending in a Sync) and their results are
// read on socket readiness — the loop never blocks on PostgreSQL.
//
// A batch is a list of statements executed back to back; if one fails, PostgreSQL skips the rest
// up to the batch's end and the whole batch completes with that error. Wrap a batch in
// BEGIN … COMMIT/ROLLBACK statements to make it a transaction.
//
// The connection is opened lazily by the first batch (or by `connect()`); when it breaks, the
// batches in flight fail with Errc::io and the next batch reconnects. An idle connection is
// watched too: when PostgreSQL closes it (restart, pg_terminate_backend) it is dropped at once,
// so the next batch opens a fresh one instead of failing on the dead one.
//
// Thread safety: all calls and all callbacks on the io_context's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::pg {

struct Statement {
  std::string sql;
  std::vector<Param> params;
  std::vector<std::uint32_t> types;  // parameter type OIDs; empty or 0 = inferred
  // Keep the parsed statement (and PostgreSQL's cached plan) on this connection: the first use
  // sends a Parse for a named statement in the same round trip, later uses only Bind/Execute.
  // For statements run often with different values; the SQL text is the cache key.
  bool prepare = false;
};

// What is known of a failed batch's effect on the database, for callers deciding whether to run
// it again. A batch is one implicit transaction (it must not COMMIT by itself).
enum class Fate {
  not_sent,     // never reached PostgreSQL (no connection, or it broke before the batch was sent)
  rolled_back,  // PostgreSQL answered it with an error: its transaction did not commit
  unknown,      // sent, then the connection broke before its outcome arrived: it may have committed
};

class AsyncConnection {
 public:
  using BatchCallback = std::function<void(Result<std::vector<PgResult>>)>;
  using QueryCallback = std::function<void(Result<PgResult>)>;
  // `fate` describes a failure; it is meaningless when the result holds a value.
  using FateCallback = std::function<void(Result<std::vector<PgResult>>, Fate fate)>;

  AsyncConnection(boost::asio::io_context& io, std::string conninfo,
                  std::vector<ConnOption> overrides = {});
  // Closes the connection; callbacks of unfinished batches are dropped without being called.
  ~AsyncConnection();
  AsyncConnection(const AsyncConnection&) = delete;
  AsyncConnection& operator=(const AsyncConnection&) = delete;

  // Opens the connection now (otherwise the first batch does). `done` may be empty.
  void connect(std::function<void(Result<void>)> done = {});
  // Queues a batch; `done` gets one result per statement, in order, or the first error.
  void execute(std::vector<Statement> batch, BatchCallback done);
  // The same, telling a failure's Fate (a broken connection is still Errc::io; when PostgreSQL
  // had answered the batch with an error first, 57P01 admin_shutdown say, the fate is
  // rolled_back and the message quotes that error).
  void execute(std::vector<Statement> batch, FateCallback done);
  // A batch of one statement.
  void query(std::string sql, std::vector<Param> params, QueryCallback done);

  // Fails every queued and in-flight batch with Errc::closed and closes the connection.
  void close();

  bool connected() const noexcept;
  // Batches queued or in flight.
  std::size_t pending() const noexcept;
  // Statements sent so far (for metrics and tests).
  std::uint64_t statements_sent() const noexcept;
  // Times the connection was (re)established.
  std::uint64_t connects() const noexcept;
  // Named statements prepared on the current connection.
  std::size_t prepared() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::pg
