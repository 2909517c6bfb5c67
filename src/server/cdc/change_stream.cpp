#include "rtsync/server/cdc/change_stream.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <boost/asio/io_context.hpp>
#include <charconv>
#include <deque>
#include <optional>

#include "rtsync/core/log.hpp"
#include "rtsync/server/cdc/names.hpp"
#include "rtsync/server/cdc/pgoutput.hpp"
#include "rtsync/server/pg/bootstrap.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/server/pg/pg_socket.hpp"

namespace rtsync::server::cdc {

namespace asio = boost::asio;

namespace {

std::uint64_t be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void put_be64(char* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

template <class T>
T to_uint(std::string_view s) {
  T v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

struct CopyBuffer {
  char* data = nullptr;
  ~CopyBuffer() {
    if (data) PQfreemem(data);
  }
};

}  // namespace

struct ChangeStream::Impl : std::enable_shared_from_this<ChangeStream::Impl> {
  Impl(asio::io_context& io, core::Scheduler& sched, ChangeSink& sink, ChangeStreamOptions opts)
      : io(io),
        sched(sched),
        sink(sink),
        opts(std::move(opts)),
        jitter(this->opts.jitter_seed ? core::Jitter(this->opts.jitter_seed) : core::Jitter()),
        sock(io),
        decoder(types, DecoderLimits{this->opts.part_changes, this->opts.part_bytes}),
        logger(log::get(loggers::kCdc)) {}

  enum class Phase {
    stopped,
    connecting,
    loading_types,
    checking_publication,
    starting,
    streaming,
    waiting_retry
  };

  asio::io_context& io;
  core::Scheduler& sched;
  ChangeSink& sink;
  ChangeStreamOptions opts;
  core::Jitter jitter;
  pg::PgSocket sock;
  pg::Connection conn;
  pg::PendingConnect connecting;
  TypeRegistry types;
  PgOutputDecoder decoder;
  std::shared_ptr<spdlog::logger> logger;

  Phase phase = Phase::stopped;
  // Whether the messages publication exists (checked on each connect): streaming a publication
  // that does not exist fails at the first change, so a database without one (bootstrap off) is
  // streamed without it.
  bool with_messages = false;
  bool warned_no_messages = false;
  std::deque<std::shared_ptr<Transaction>> queue;
  // Transactions with the sink, in commit order: their end LSN and whether `done` ran. The front's
  // sequence number is `first_seq`; a done() marks its entry and the done prefix is confirmed.
  struct InFlight {
    Lsn end = 0;  // 0 for a part that does not end its transaction
    std::size_t bytes = 0;
    bool done = false;
  };
  std::deque<InFlight> in_flight;
  std::uint64_t first_seq = 0;
  // The last part handed to the sink (confirmed or not), as (commit LSN, part): a copy PostgreSQL
  // sends again after a reconnect is dropped, since the original is still with the sink.
  Lsn handed_commit = 0;
  std::uint32_t handed_part = 0;
  bool handed_any = false;
  // pgoutput bytes of the parts queued and with the sink: what the stream holds in memory.
  std::size_t held_bytes = 0;
  std::size_t peak_held_bytes = 0;
  bool delivering = false;
  bool paused = false;
  bool status_posted = false;
  bool ever_streamed = false;
  std::optional<bool> reported_running;
  std::uint64_t generation = 0;  // bumps on stop(): stale `done` calls are ignored
  std::uint32_t attempt = 0;
  core::Timer status_timer;
  core::Timer retry_timer;
  // Watches the sink while parts are with it. Progress only moves `stall_since`: the timer is not
  // re-armed per transaction (two timer updates each), it re-arms itself for the rest when it
  // fires early.
  core::Timer stall_timer;
  core::TimePoint stall_since{};  // the sink's last progress (or the first part handed to it)

  Lsn confirmed = 0;
  Lsn reported = 0;
  Lsn reported_max = 0;        // the most ever reported as flushed (this run)
  bool hold_released = false;  // PostgreSQL asked for a reply on this connection (see on_copy_data)
  Lsn last_received = 0;
  Lsn server_wal_end = 0;
  std::uint64_t transactions = 0;
  std::uint64_t delivered = 0;
  std::uint64_t deduplicated = 0;
  std::uint64_t bytes = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t status_updates = 0;

  PGconn* pq() const { return conn.native(); }

  // ---- connection set-up ---------------------------------------------------------------------

  void start() {
    if (phase != Phase::stopped) return;
    if (auto v = pg::validate_slot_name(opts.slot); !v) {
      phase = Phase::waiting_retry;
      report(false, v.error().message);
      phase = Phase::stopped;
      return;
    }
    connect();
  }

  void connect() {
    phase = Phase::connecting;
    std::string options = "-c TimeZone=UTC -c DateStyle=ISO,YMD";
    if (auto parsed = pg::ConnParams::parse(opts.conninfo); parsed) {
      if (auto existing = parsed->get("options")) options = *existing + " " + options;
    }
    std::vector<pg::ConnOption> overrides{
        {"replication", "database"}, {"options", options}, {"application_name", "rtsync_cdc"}};
    // A peer that vanished without closing is found by TCP keepalives (the walsender itself stays
    // silent while we keep sending status updates).
    auto parsed = pg::ConnParams::parse(opts.conninfo);
    for (const auto& [k, v] : pg::kKeepaliveDefaults) {
      if (!parsed || !parsed->get(k)) overrides.emplace_back(k, v);
    }
    connecting = pg::async_connect(io, opts.conninfo, overrides,
                                   [weak = weak_from_this()](Result<pg::Connection> r) {
                                     if (auto self = weak.lock()) self->on_connected(std::move(r));
                                   });
    // Bounded set-up: connect, type load and START_REPLICATION must finish in time.
    retry_timer =
        sched.schedule(opts.connect_timeout, timers::ReplicationRetry, [weak = weak_from_this()] {
          auto self = weak.lock();
          if (!self) return;
          if (self->phase == Phase::connecting || self->phase == Phase::loading_types ||
              self->phase == Phase::checking_publication || self->phase == Phase::starting) {
            self->fail("timed out starting the replication stream");
          }
        });
  }

  void on_connected(Result<pg::Connection> r) {
    if (phase != Phase::connecting) return;
    if (!r) return fail(r.error().message);
    conn = std::move(r).value();
    if (PQsetnonblocking(pq(), 1) != 0) return fail("cannot switch to non-blocking mode");
    sock.watch(PQsocket(pq()));
    // Type names and conversions for every type the database knows now; later ones arrive as
    // pgoutput Type messages.
    phase = Phase::loading_types;
    if (PQsendQuery(pq(),
                    "SELECT oid, typname, typcategory, typelem, typbasetype "
                    "FROM pg_catalog.pg_type ORDER BY oid") != 1) {
      return fail(trimmed(PQerrorMessage(pq())));
    }
    flush();
    arm_read();
  }

  void check_messages_publication() {
    with_messages = false;
    if (opts.messages_publication.empty() || opts.messages_publication == opts.publication) {
      send_start_replication();
      return;
    }
    phase = Phase::checking_publication;
    const std::string q = "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = " +
                          pg::quote_literal(opts.messages_publication);
    if (PQsendQuery(pq(), q.c_str()) != 1) return fail(trimmed(PQerrorMessage(pq())));
    flush();
    arm_read();
  }

  void send_start_replication() {
    phase = Phase::starting;
    // One slot for both publications: pgoutput sends a table's changes once even when it is in
    // both, and messages keep their place in commit order among the other changes.
    std::string publications = pg::quote_identifier(opts.publication);
    if (with_messages) {
      publications += "," + pg::quote_identifier(opts.messages_publication);
    }
    const std::string cmd = "START_REPLICATION SLOT " + pg::quote_identifier(opts.slot) +
                            " LOGICAL " + format_lsn(confirmed) +
                            " (proto_version '1', publication_names " +
                            pg::quote_literal(publications) + ")";
    logger->debug("{}", cmd);
    if (PQsendQuery(pq(), cmd.c_str()) != 1) return fail(trimmed(PQerrorMessage(pq())));
    flush();
    arm_read();
  }

  // Results of the set-up queries (simple query protocol).
  void on_query_input() {
    PGconn* c = pq();
    while (phase == Phase::loading_types || phase == Phase::checking_publication ||
           phase == Phase::starting) {
      if (PQisBusy(c)) return arm_read();
      PGresult* res = PQgetResult(c);
      if (phase == Phase::checking_publication) {
        if (!res) {
          send_start_replication();
          return;
        }
        auto r = pg::take_result(res, c);
        if (!r) return fail("checking the messages publication: " + r.error().message);
        with_messages = r->rows() > 0;
        if (!with_messages && !warned_no_messages) {
          warned_no_messages = true;
          logger->warn(
              "publication {} does not exist: Broadcast from Database is off (the server's "
              "bootstrap creates it)",
              opts.messages_publication);
        }
        continue;
      }
      if (phase == Phase::loading_types) {
        if (!res) {
          logger->debug("{} types known", types.size());
          check_messages_publication();
          return;
        }
        auto r = pg::take_result(res, c);
        if (!r) return fail("loading pg_type: " + r.error().message);
        for (int i = 0; i < r->rows(); ++i) {
          const auto cat = r->value(i, 2);
          types.add_catalog_row(to_uint<std::uint32_t>(r->value(i, 0)), r->value(i, 1),
                                cat.empty() ? ' ' : cat[0], to_uint<std::uint32_t>(r->value(i, 3)),
                                to_uint<std::uint32_t>(r->value(i, 4)));
        }
      } else {
        if (!res) return fail("START_REPLICATION returned no result");
        if (PQresultStatus(res) == PGRES_COPY_BOTH) {
          PQclear(res);
          on_streaming();
          return;
        }
        auto r = pg::take_result(res, c);
        return fail("START_REPLICATION: " +
                    (r ? std::string("unexpected result") : r.error().message));
      }
    }
  }

  void on_streaming() {
    phase = Phase::streaming;
    hold_released = false;
    retry_timer.cancel();
    if (ever_streamed) ++reconnects;
    ever_streamed = true;
    attempt = 0;
    logger->info("streaming slot {} from {} (publications {}{}{})", opts.slot,
                 format_lsn(confirmed), opts.publication, with_messages ? ", " : "",
                 with_messages ? opts.messages_publication : std::string());
    schedule_status();
    if (!in_flight.empty()) watch_stall();  // still waiting for the sink: keep watching
    report(true, "");
    if (phase != Phase::streaming) return;
    drain();
  }

  // ---- reading -------------------------------------------------------------------------------

  void arm_read() {
    if (!conn.native()) return;
    sock.wait_read([weak = weak_from_this()](bool) {
      if (auto self = weak.lock()) self->on_readable();
    });
  }

  void on_readable() {
    if (!conn.native()) return;
    auto self = shared_from_this();
    if (PQconsumeInput(pq()) != 1) return fail(trimmed(PQerrorMessage(pq())));
    switch (phase) {
      case Phase::loading_types:
      case Phase::checking_publication:
      case Phase::starting:
        return on_query_input();
      case Phase::streaming:
        return drain();
      default:
        return;
    }
  }

  // Handles every message libpq already holds, then waits for the socket. Stops early when the
  // sink's queue is full (back-pressure) or the stream failed/stopped.
  void drain() {
    PGconn* c = pq();
    while (phase == Phase::streaming && !paused) {
      CopyBuffer buf;
      const int n = PQgetCopyData(c, &buf.data, 1);
      if (n > 0) {
        on_copy_data(buf.data, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return arm_read();
      if (n == -1) {
        PGresult* res = PQgetResult(c);
        auto r = pg::take_result(res, c);
        std::string why = r ? "server ended the replication stream" : r.error().message;
        while (PGresult* more = PQgetResult(c))
          PQclear(more);
        return fail(why);
      }
      return fail(trimmed(PQerrorMessage(c)));
    }
  }

  void on_copy_data(const char* data, std::size_t n) {
    bytes += n;
    if (data[0] == 'w') {
      if (n < 25) return fail("truncated XLogData message");
      const Lsn start = be64(data + 1);
      const Lsn wal_end = be64(data + 9);
      last_received = std::max(last_received, start);
      server_wal_end = std::max(server_wal_end, wal_end);
      auto r = decoder.feed(std::string_view(data + 25, n - 25));
      if (!r) return fail("decoding pgoutput: " + r.error().message);
      if (auto txn = std::move(r).value()) {
        if (txn->last) ++transactions;
        held_bytes += txn->bytes;
        peak_held_bytes = std::max(peak_held_bytes, held_bytes);
        queue.push_back(std::move(txn));
        if (!paused &&
            (queue.size() > opts.max_queued_transactions || held_bytes > opts.max_held_bytes)) {
          paused = true;
          logger->info("{} parts ({} bytes) held for the sink: pausing reads", queue.size(),
                       held_bytes);
        }
        pump();
      }
    } else if (data[0] == 'k') {
      if (n < 18) return fail("truncated keepalive message");
      const Lsn wal_end = be64(data + 1);
      const bool reply = data[17] != 0;
      server_wal_end = std::max(server_wal_end, wal_end);
      // Nothing received is still pending: everything before the server's position was handled.
      if (!decoder.in_transaction() && queue.empty() && in_flight.empty()) {
        if (wal_end > confirmed) {
          confirmed = wal_end;
          if (!reply) request_status();
        }
        sink.on_stream_position(wal_end);
        if (phase != Phase::streaming) return;
      }
      if (reply) {
        // PostgreSQL asks for a reply when it shuts down (and then waits until everything it
        // sent is confirmed) or when it has not heard from us for half its wal_sender_timeout:
        // the sink's hold-back is let go rather than hold up a shutdown.
        hold_released = true;
        send_status();
      }
    } else {
      logger->warn("unknown CopyData message 0x{:02x} ignored",
                   static_cast<unsigned char>(data[0]));
    }
  }

  // ---- delivery ------------------------------------------------------------------------------

  void pump() {
    if (delivering) return;  // re-entered from a synchronous `done`: the loop below continues
    delivering = true;
    const std::size_t limit =
        std::max<std::size_t>(1, std::min(opts.max_in_flight_transactions, sink.max_in_flight()));
    while (phase != Phase::stopped && in_flight.size() < limit && !queue.empty()) {
      auto txn = std::move(queue.front());
      queue.pop_front();
      if (already_handed(*txn)) {
        ++deduplicated;
        held_bytes -= std::min(held_bytes, txn->bytes);
        continue;
      }
      if (txn->last) ++delivered;
      handed_commit = txn->commit_lsn;
      handed_part = txn->part;
      handed_any = true;
      const std::uint64_t seq = first_seq + in_flight.size();
      // Only the last part confirms a position: the slot never moves into a transaction.
      in_flight.push_back(InFlight{txn->last ? txn->end_lsn : 0, txn->bytes, false});
      if (in_flight.size() == 1) watch_stall();
      auto called = std::make_shared<bool>(false);
      sink.on_transaction(std::move(txn), [weak = weak_from_this(), gen = generation, seq, called] {
        if (*called) return;
        *called = true;
        if (auto self = weak.lock()) self->on_done(gen, seq);
      });
    }
    delivering = false;
    maybe_resume();
  }

  // Was this part (or its whole transaction) handed on before? A transaction confirmed before
  // committed below the confirmed position.
  bool already_handed(const Transaction& txn) const {
    if (txn.commit_lsn < confirmed) return true;
    if (!handed_any) return false;
    return txn.commit_lsn < handed_commit ||
           (txn.commit_lsn == handed_commit && txn.part <= handed_part);
  }

  void on_done(std::uint64_t gen, std::uint64_t seq) {
    if (gen != generation || phase == Phase::stopped) return;
    if (seq < first_seq || seq - first_seq >= in_flight.size()) return;
    in_flight[seq - first_seq].done = true;
    // Confirm only the prefix whose every transaction was handed on: a later one finishing first
    // must not move the slot past an earlier one still with the sink.
    bool advanced = false;
    while (!in_flight.empty() && in_flight.front().done) {
      if (in_flight.front().end > confirmed) confirmed = in_flight.front().end;
      held_bytes -= std::min(held_bytes, in_flight.front().bytes);
      in_flight.pop_front();
      ++first_seq;
      advanced = true;
    }
    if (advanced) request_status();
    // Progress: the sink is not stalled. With nothing left in flight the timer may stay armed;
    // when it fires it finds nothing to watch.
    if (!in_flight.empty()) watch_stall();
    pump();
  }

  // The sink made progress now (or was handed its first part): it stalls if it makes none for
  // stall_release from here.
  void watch_stall() {
    if (opts.stall_release <= core::Duration::zero()) return;
    stall_since = sched.now();
    if (!stall_timer.pending()) arm_stall_timer(opts.stall_release);
  }

  void arm_stall_timer(core::Duration delay) {
    stall_timer = sched.schedule(delay, timers::DeliveryStall, [weak = weak_from_this()] {
      auto self = weak.lock();
      if (!self || self->in_flight.empty() || self->phase != Phase::streaming) return;
      const auto waited = self->sched.now() - self->stall_since;
      if (waited < self->opts.stall_release) {
        return self->arm_stall_timer(self->opts.stall_release - waited);
      }
      self->fail(fmt::format(
          "delivery has waited {} ms for the sink; letting the connection go (the slot "
          "resends from the confirmed position)",
          std::chrono::duration_cast<std::chrono::milliseconds>(self->opts.stall_release).count()));
    });
  }

  void maybe_resume() {
    if (!paused || queue.size() > opts.max_queued_transactions / 2 ||
        held_bytes > opts.max_held_bytes / 2) {
      return;
    }
    paused = false;
    logger->info("sink caught up: resuming reads");
    if (phase == Phase::streaming) {
      sched.post([weak = weak_from_this()] {
        if (auto self = weak.lock(); self && self->phase == Phase::streaming) self->drain();
      });
    }
  }

  // ---- feedback ------------------------------------------------------------------------------

  void request_status() {
    if (status_posted || phase != Phase::streaming) return;
    status_posted = true;
    sched.post([weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        self->status_posted = false;
        self->send_status();
      }
    });
  }

  void schedule_status() {
    status_timer =
        sched.schedule(opts.status_interval, timers::StatusFeedback, [weak = weak_from_this()] {
          if (auto self = weak.lock()) {
            self->send_status();
            if (self->phase == Phase::streaming) self->schedule_status();
          }
        });
  }

  // Standby status update: 'r', write, flush, apply (LSNs), clock (µs since 2000), reply flag.
  void send_status() {
    if (phase != Phase::streaming) return;
    // The sink may hold the slot back (its resume history, docs/resume.md): PostgreSQL then
    // decodes that window again after a restart. Within this run nothing is sent twice: a
    // reconnect starts from `confirmed`, which PostgreSQL honours when it is past the slot's.
    Lsn flush_lsn = confirmed;
    if (!hold_released) {
      if (auto limit = sink.confirm_limit()) flush_lsn = std::min(flush_lsn, *limit);
    }
    // Never backwards: PostgreSQL may move the slot back to what it is told.
    flush_lsn = std::max(flush_lsn, reported_max);
    reported_max = flush_lsn;
    char msg[34];
    msg[0] = 'r';
    put_be64(msg + 1, std::max(last_received, confirmed));
    put_be64(msg + 9, flush_lsn);
    put_be64(msg + 17, flush_lsn);
    put_be64(msg + 25, static_cast<std::uint64_t>(wall_to_pg_time(sched.wall_now())));
    // PostgreSQL answers a status that asks for a reply with a keepalive at once.
    msg[33] = sink.wants_stream_position() ? 1 : 0;
    const int r = PQputCopyData(pq(), msg, sizeof msg);
    if (r < 0) return fail(trimmed(PQerrorMessage(pq())));
    if (r == 0) {
      // Output buffer full (non-blocking): retry once the socket drains.
      sock.wait_write([weak = weak_from_this()](bool) {
        if (auto self = weak.lock()) self->send_status();
      });
      return;
    }
    reported = flush_lsn;
    ++status_updates;
    flush();
  }

  void flush() {
    if (!conn.native()) return;
    const int r = PQflush(pq());
    if (r < 0) return fail(trimmed(PQerrorMessage(pq())));
    if (r == 1) {
      sock.wait_write([weak = weak_from_this()](bool) {
        if (auto self = weak.lock()) self->flush();
      });
    }
  }

  // ---- failure and shutdown ------------------------------------------------------------------

  void report(bool running, const std::string& reason) {
    if (reported_running == running) return;
    reported_running = running;
    sink.on_stream_state(running, reason);
  }

  void close_connection() {
    connecting.cancel();
    sock.release();
    conn.close();
    status_timer.cancel();
    status_posted = false;
  }

  void fail(const std::string& reason) {
    if (phase == Phase::stopped || phase == Phase::waiting_retry) return;
    if (reported_running == false) {
      logger->debug("replication stream still down (attempt {}): {}", attempt, reason);
    } else {
      logger->warn("replication stream down: {}", reason);
    }
    close_connection();
    // Undelivered transactions come again from the slot; the one with the sink stays in flight.
    decoder.reset();
    for (const auto& t : queue)
      held_bytes -= std::min(held_bytes, t->bytes);
    queue.clear();
    paused = false;
    phase = Phase::waiting_retry;
    report(false, reason);
    if (phase != Phase::waiting_retry) return;  // the sink stopped us
    ++attempt;
    const auto delay = opts.retry.delay(attempt, jitter.next());
    retry_timer = sched.schedule(delay, timers::ReplicationRetry, [weak = weak_from_this()] {
      if (auto self = weak.lock(); self && self->phase == Phase::waiting_retry) self->connect();
    });
  }

  void stop() {
    if (phase == Phase::stopped) return;
    if (phase == Phase::streaming && confirmed > reported) {
      // Best effort: persist the last handed-on position before closing.
      send_status();
    }
    phase = Phase::stopped;
    ++generation;
    retry_timer.cancel();
    stall_timer.cancel();
    close_connection();
    decoder.reset();
    queue.clear();
    in_flight.clear();
    first_seq = 0;
    handed_any = false;
    held_bytes = 0;
    paused = false;
    reported_running.reset();
  }

  ChangeStreamMetrics metrics() const {
    ChangeStreamMetrics m;
    m.changes_decoded = decoder.changes_decoded();
    m.transactions = transactions;
    m.transactions_delivered = delivered;
    m.transactions_deduplicated = deduplicated;
    m.bytes_received = bytes;
    m.reconnects = reconnects;
    m.status_updates = status_updates;
    m.last_received_lsn = last_received;
    m.confirmed_lsn = confirmed;
    m.reported_lsn = reported;
    m.server_wal_end = server_wal_end;
    m.lag_bytes = server_wal_end > confirmed ? server_wal_end - confirmed : 0;
    m.queued = queue.size();
    m.in_flight = !in_flight.empty();
    m.in_flight_count = in_flight.size();
    m.running = phase == Phase::streaming;
    m.paused = paused;
    m.held_bytes = held_bytes;
    m.peak_held_bytes = peak_held_bytes;
    return m;
  }
};

ChangeStream::ChangeStream(asio::io_context& io, core::Scheduler& scheduler, ChangeSink& sink,
                           ChangeStreamOptions options)
    : impl_(std::make_shared<Impl>(io, scheduler, sink, std::move(options))) {
  sink.set_status_request([weak = std::weak_ptr(impl_)] {
    if (auto self = weak.lock()) self->request_status();
  });
}

ChangeStream::~ChangeStream() {
  impl_->sink.set_status_request(nullptr);
  impl_->stop();
}

void ChangeStream::start() {
  impl_->start();
}
void ChangeStream::stop() {
  impl_->stop();
}
bool ChangeStream::running() const noexcept {
  return impl_->phase == Impl::Phase::streaming;
}
ChangeStreamMetrics ChangeStream::metrics() const {
  return impl_->metrics();
}

json::value ChangeStream::diagnostics() const {
  const auto m = impl_->metrics();
  return json::object{
      {"running", m.running},
      {"slot", impl_->opts.slot},
      {"publication", impl_->opts.publication},
      {"messages_publication", impl_->opts.messages_publication},
      {"changes_decoded", m.changes_decoded},
      {"transactions", m.transactions},
      {"transactions_delivered", m.transactions_delivered},
      {"transactions_deduplicated", m.transactions_deduplicated},
      {"bytes_received", m.bytes_received},
      {"reconnects", m.reconnects},
      {"status_updates", m.status_updates},
      {"last_received_lsn", format_lsn(m.last_received_lsn)},
      {"confirmed_lsn", format_lsn(m.confirmed_lsn)},
      {"reported_lsn", format_lsn(m.reported_lsn)},
      {"server_wal_end", format_lsn(m.server_wal_end)},
      {"lag_bytes", m.lag_bytes},
      {"queued", m.queued},
      {"in_flight", m.in_flight_count},
      {"paused", m.paused},
      {"held_bytes", m.held_bytes},
  };
}

}  // namespace rtsync::server::cdc
