#include "rtsync/server/pg/async_connection.hpp"
#include "libpq_text.hpp"

#include <libpq-fe.h>
#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <deque>
#include <unordered_map>

#include "rtsync/core/log.hpp"
#include "rtsync/server/pg/names.hpp"
#include "rtsync/server/pg/pg_socket.hpp"

namespace rtsync::server::pg {

namespace asio = boost::asio;

namespace {

// What was sent, in order: a user statement (its index) or the Parse of a named statement.
struct Item {
  int statement = -1;                         // index into Batch::statements; -1 for a Parse
  const std::string* prepared_sql = nullptr;  // the Parse's cache key
};

struct Batch {
  std::vector<Statement> statements;
  AsyncConnection::FateCallback done;
  std::vector<PgResult> results;
  std::vector<Item> items;
  std::size_t current = 0;     // item whose results are being read
  bool got_result = false;     // current item produced its (first) result
  std::optional<Error> error;  // first failure in the batch
};

enum class PrepState { none, pending, ready };
struct Prepared {
  std::string name;
  PrepState state = PrepState::none;
};

using detail::trimmed;

}  // namespace

struct AsyncConnection::Impl : std::enable_shared_from_this<AsyncConnection::Impl> {
  Impl(asio::io_context& io, std::string conninfo, std::vector<ConnOption> overrides)
      : io(io), conninfo(std::move(conninfo)), overrides(std::move(overrides)), sock(io) {}

  enum class State { idle, connecting, ready };

  asio::io_context& io;
  std::string conninfo;
  std::vector<ConnOption> overrides;
  PgSocket sock;
  Connection conn;
  PendingConnect pending_connect;
  State state = State::idle;
  std::deque<Batch> waiting;   // not yet sent
  std::deque<Batch> inflight;  // sent, results outstanding (in order)
  std::vector<std::function<void(Result<void>)>> connect_waiters;
  std::uint64_t statements_sent = 0;
  std::uint64_t connects = 0;
  std::unordered_map<std::string, Prepared> prepared;  // by SQL text, for this connection
  std::uint64_t next_prepared = 0;
  bool destroyed = false;

  void connect() {
    if (state != State::idle || destroyed) return;
    state = State::connecting;
    pending_connect =
        async_connect(io, conninfo, overrides, [weak = weak_from_this()](Result<Connection> r) {
          if (auto self = weak.lock()) self->on_connected(std::move(r));
        });
  }

  void on_connected(Result<Connection> r) {
    if (destroyed) return;
    if (!r) {
      state = State::idle;
      fail_all(r.error());
      return;
    }
    conn = std::move(r).value();
    PGconn* c = conn.native();
    if (PQsetnonblocking(c, 1) != 0 || PQenterPipelineMode(c) != 1) {
      const Error err = make_error(Errc::io, "entering pipeline mode: " + conn.error_message());
      reset_connection();
      fail_all(err);
      return;
    }
    sock.watch(PQsocket(c));
    state = State::ready;
    ++connects;
    auto waiters = std::move(connect_waiters);
    connect_waiters.clear();
    for (auto& w : waiters) {
      if (w) w(Result<void>());
    }
    send_waiting();
  }

  void reset_connection() {
    sock.release();
    conn.close();
    state = State::idle;
    prepared.clear();
  }

  // Fails everything queued or in flight (used when the connection is lost or closed). A batch
  // in flight that PostgreSQL had already answered with an error did not commit (57P01 when the
  // server shut down, say): its fate says so and its message quotes that error.
  void fail_all(const Error& err) {
    struct Failed {
      FateCallback cb;
      Error error;
      Fate fate;
    };
    std::vector<Failed> failed;
    for (auto& b : inflight) {
      if (b.error) {
        failed.push_back(Failed{
            std::move(b.done),
            Error{err.code, err.message + " (PostgreSQL had answered: " + b.error->message + ")"},
            Fate::rolled_back});
      } else {
        failed.push_back(Failed{std::move(b.done), err, Fate::unknown});
      }
    }
    for (auto& b : waiting)
      failed.push_back(Failed{std::move(b.done), err, Fate::not_sent});
    inflight.clear();
    waiting.clear();
    auto waiters = std::move(connect_waiters);
    connect_waiters.clear();
    for (auto& w : waiters) {
      if (w) w(err);
    }
    for (auto& f : failed) {
      if (f.cb) f.cb(f.error, f.fate);
    }
  }

  void connection_lost(std::string why) {
    auto logger = rtsync::log::get(loggers::kServer);
    if (inflight.empty() && waiting.empty()) {
      // Nothing was riding on it (PostgreSQL restarted, or ended the session): the next batch
      // connects afresh.
      logger->info("PostgreSQL closed an idle connection: {}", why);
    } else {
      logger->warn("PostgreSQL connection lost: {}", why);
    }
    reset_connection();
    fail_all(make_error(Errc::io, "PostgreSQL connection lost: " + why));
  }

  void enqueue(Batch b) {
    waiting.push_back(std::move(b));
    if (state == State::idle) {
      connect();
    } else if (state == State::ready) {
      send_waiting();
    }
  }

  void send_waiting() {
    if (state != State::ready) return;
    PGconn* c = conn.native();
    while (!waiting.empty()) {
      Batch& b = waiting.front();
      b.items.reserve(b.statements.size());
      std::vector<const std::string*> parsed_here;  // named statements this batch parses
      for (std::size_t i = 0; i < b.statements.size(); ++i) {
        const Statement& st = b.statements[i];
        std::vector<const char*> values;
        values.reserve(st.params.size());
        for (const auto& p : st.params)
          values.push_back(p ? p->c_str() : nullptr);
        std::vector<Oid> types;
        if (!st.types.empty()) {
          types.assign(st.params.size(), 0);
          for (std::size_t k = 0; k < st.types.size() && k < types.size(); ++k) {
            types[k] = st.types[k];
          }
        }
        const int n = static_cast<int>(values.size());
        const Oid* type_ptr = types.empty() ? nullptr : types.data();
        int ok = 0;
        auto [it, inserted] =
            st.prepare ? prepared.try_emplace(st.sql) : std::pair{prepared.end(), false};
        if (inserted) it->second.name = "rtsync_" + std::to_string(++next_prepared);
        // A Parse still pending belongs to an earlier batch, which may fail before it runs
        // (PostgreSQL skips the rest of a failed batch): this batch must not depend on it, so it
        // sends the statement unnamed until the name is known to exist.
        // (A Parse earlier in this same batch is safe: if it is skipped, so is this statement.)
        const bool named = st.prepare && (it->second.state != PrepState::pending ||
                                          std::find(parsed_here.begin(), parsed_here.end(),
                                                    &it->first) != parsed_here.end());
        if (named && it->second.state == PrepState::none) {
          parsed_here.push_back(&it->first);
          if (PQsendPrepare(c, it->second.name.c_str(), st.sql.c_str(), n, type_ptr) != 1) {
            return connection_lost(trimmed(PQerrorMessage(c)));
          }
          it->second.state = PrepState::pending;
          b.items.push_back(Item{-1, &it->first});
        }
        if (named) {
          ok = PQsendQueryPrepared(c, it->second.name.c_str(), n, values.data(), nullptr, nullptr,
                                   0);
        } else {
          ok =
              PQsendQueryParams(c, st.sql.c_str(), n, type_ptr, values.data(), nullptr, nullptr, 0);
        }
        if (ok != 1) return connection_lost(trimmed(PQerrorMessage(c)));
        b.items.push_back(Item{static_cast<int>(i), nullptr});
        ++statements_sent;
      }
      if (PQpipelineSync(c) != 1) return connection_lost(trimmed(PQerrorMessage(c)));
      b.results.resize(b.statements.size());
      inflight.push_back(std::move(b));
      waiting.pop_front();
    }
    flush();
    arm_read();
  }

  void flush() {
    if (state != State::ready) return;
    const int r = PQflush(conn.native());
    if (r < 0) return connection_lost(trimmed(PQerrorMessage(conn.native())));
    if (r == 1) {
      sock.wait_write([weak = weak_from_this()](bool) {
        if (auto self = weak.lock()) self->flush();
      });
    }
  }

  // Armed while the connection is open, idle ones included: PostgreSQL's closing of an idle
  // connection (the error it sends, then EOF) is noticed when it happens.
  void arm_read() {
    if (state != State::ready) return;
    sock.wait_read([weak = weak_from_this()](bool) {
      if (auto self = weak.lock()) self->on_readable();
    });
  }

  void on_readable() {
    if (state != State::ready) return;
    auto self = shared_from_this();  // callbacks below may drop the owner
    PGconn* c = conn.native();
    if (PQconsumeInput(c) != 1) return connection_lost(trimmed(PQerrorMessage(c)));
    std::vector<Batch> completed;
    while (!inflight.empty() && !PQisBusy(c)) {
      Batch& b = inflight.front();
      PGresult* res = PQgetResult(c);
      if (!res) {
        // NULL ends one statement's results; without a result first it means "nothing yet".
        if (!b.got_result) break;
        ++b.current;
        b.got_result = false;
        continue;
      }
      const auto status = PQresultStatus(res);
      if (status == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        completed.push_back(std::move(b));
        inflight.pop_front();
        continue;
      }
      b.got_result = true;
      auto r = take_result(res, c);
      const Item item = b.current < b.items.size() ? b.items[b.current] : Item{};
      if (item.prepared_sql) {
        // A Parse: the named statement exists only if it succeeded.
        if (auto it = prepared.find(*item.prepared_sql); it != prepared.end()) {
          it->second.state = r ? PrepState::ready : PrepState::none;
        }
      }
      if (!r) {
        if (!b.error) b.error = r.error();
      } else if (item.statement >= 0 &&
                 static_cast<std::size_t>(item.statement) < b.results.size()) {
        b.results[static_cast<std::size_t>(item.statement)] = std::move(r).value();
      }
    }
    if (PQstatus(c) == CONNECTION_BAD) {
      // Deliver what finished before the connection went.
      for (auto& b : completed)
        finish(b);
      if (!destroyed && state == State::ready) connection_lost(trimmed(PQerrorMessage(c)));
      return;
    }
    flush();
    arm_read();
    for (auto& b : completed) {
      if (destroyed) return;
      finish(b);
    }
  }

  static void finish(Batch& b) {
    auto cb = std::move(b.done);
    if (!cb) return;
    if (b.error) {
      cb(*b.error, Fate::rolled_back);
    } else {
      cb(std::move(b.results), Fate::rolled_back);
    }
  }
};

AsyncConnection::AsyncConnection(asio::io_context& io, std::string conninfo,
                                 std::vector<ConnOption> overrides)
    : impl_(std::make_shared<Impl>(io, std::move(conninfo), std::move(overrides))) {}

AsyncConnection::~AsyncConnection() {
  impl_->destroyed = true;
  impl_->pending_connect.cancel();
  impl_->waiting.clear();
  impl_->inflight.clear();
  impl_->connect_waiters.clear();
  impl_->reset_connection();
}

void AsyncConnection::connect(std::function<void(Result<void>)> done) {
  if (impl_->state == Impl::State::ready) {
    if (done) asio::post(impl_->io, [done = std::move(done)] { done(Result<void>()); });
    return;
  }
  impl_->connect_waiters.push_back(std::move(done));
  impl_->connect();
}

void AsyncConnection::execute(std::vector<Statement> batch, BatchCallback done) {
  execute(std::move(batch), FateCallback([done = std::move(done)](Result<std::vector<PgResult>> r,
                                                                  Fate) { done(std::move(r)); }));
}

void AsyncConnection::execute(std::vector<Statement> batch, FateCallback done) {
  if (batch.empty()) {
    asio::post(impl_->io,
               [done = std::move(done)] { done(std::vector<PgResult>{}, Fate::rolled_back); });
    return;
  }
  Batch b;
  b.statements = std::move(batch);
  b.done = std::move(done);
  impl_->enqueue(std::move(b));
}

void AsyncConnection::query(std::string sql, std::vector<Param> params, QueryCallback done) {
  std::vector<Statement> batch;
  batch.push_back(Statement{std::move(sql), std::move(params), {}});
  execute(std::move(batch), [done = std::move(done)](Result<std::vector<PgResult>> r) {
    if (!r) return done(r.error());
    done(std::move(r.value().front()));
  });
}

void AsyncConnection::close() {
  impl_->pending_connect.cancel();
  impl_->reset_connection();
  impl_->fail_all(make_error(Errc::closed, "connection closed"));
}

bool AsyncConnection::connected() const noexcept {
  return impl_->state == Impl::State::ready;
}
std::size_t AsyncConnection::pending() const noexcept {
  return impl_->waiting.size() + impl_->inflight.size();
}
std::uint64_t AsyncConnection::statements_sent() const noexcept {
  return impl_->statements_sent;
}
std::uint64_t AsyncConnection::connects() const noexcept {
  return impl_->connects;
}

std::size_t AsyncConnection::prepared() const noexcept {
  std::size_t n = 0;
  for (const auto& [sql, p] : impl_->prepared)
    n += p.state != PrepState::none;
  return n;
}

}  // namespace rtsync::server::pg
