// ChangeStream: PostgreSQL logical replication (pgoutput over a publication, through a
// persistent slot) streamed with libpq's replication protocol on the server's event loop, decoded
// into Transactions and handed to a ChangeSink one at a time, in commit order.
//
//   connect (replication=database) → load pg_type names → does the messages publication exist?
//   → START_REPLICATION SLOT s LOGICAL <lsn>
//   (proto_version '1', publication_names '<publication>,<messages_publication>') → CopyBoth:
//   XLogData 'w' / keepalive 'k' in, standby status updates 'r' out.
//
// Delivery contract (see rtsync/server/change_feed.hpp): at least once. Transactions are
// handed on in parts of at most `part_changes` changes / `part_bytes` bytes (a part is what the
// sink sees as a Transaction), so a transaction of any size is held in bounded memory. Up to
// min(max_in_flight_transactions, sink.max_in_flight()) parts are with the sink at once, in
// commit order. A transaction's end LSN is confirmed to PostgreSQL (standby status "flush") only
// after the sink called `done` for its last part and for every part before it; parts at or below
// the last handed-on (commit LSN, part), and transactions that committed below the confirmed
// position, are dropped (dedupe after a reconnect while earlier ones are still with the sink).
// When idle (nothing pending), keepalives advance the confirmed position to the server's WAL
// position so the slot never holds WAL for nothing.
//
// Status updates go out after each `done` (coalesced per loop turn), on request by a keepalive,
// and every `status_interval` (timers::StatusFeedback). When more than
// `max_queued_transactions` parts are waiting for the sink, or the parts queued and with the sink
// hold more than `max_held_bytes` of change messages, the socket is not read (back-pressure
// through TCP to the walsender, which spills to disk); reading resumes below half of both.
//
// PostgreSQL going away (or any stream error): on_stream_state(false, reason) once, then
// reconnect with ExponentialBackoff (timers::ReplicationRetry) from the confirmed position;
// on_stream_state(true, "") once streaming again. Parts still with the sink stay there; their
// copies in the resent stream are dropped.
//
// A sink that finishes nothing for `stall_release` while parts are with it (the server's row
// authorizer waiting out a PostgreSQL restart) makes the stream let go of its connection
// (timers::DeliveryStall) and reconnect as after an error: PostgreSQL's fast shutdown waits
// until the client confirms everything it was sent, so a held connection would keep the
// database from stopping until wal_sender_timeout.
//
// The sink may hold the slot back (ChangeSink::confirm_limit: the resume history,
// docs/resume.md): status updates report no more than its limit as flushed, and never less than
// before. A keepalive that asks for a reply (PostgreSQL shutting down, or not having heard from
// us for half its wal_sender_timeout) lets go of the limit on that connection, so a fast shutdown
// is never held up by it (the window then no longer survives a restart of the server).
//
// Thread safety: construct, call and destroy on the loop thread that runs `io`; `scheduler` must
// run on that same loop. Sink callbacks run on it; `done` must be called on it (calling it after
// stop() or twice is harmless).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "rtsync/core/backoff.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/change_feed.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::cdc {

struct ChangeStreamOptions {
  // Normal libpq conninfo of a role with REPLICATION; `replication=database` is added.
  std::string conninfo;
  std::string slot = "rtsync_realtime";
  std::string publication = "supabase_realtime";
  // Broadcast from Database: also streamed through the same slot, so its messages reach the sink
  // in commit order with every other change. Empty, or a publication that does not exist (checked
  // at each connect, a warning logged once): only `publication`.
  std::string messages_publication = "supabase_realtime_messages_publication";
  core::Duration status_interval = std::chrono::seconds(10);
  // Connecting and starting the stream must finish within this (timers::ReplicationRetry).
  core::Duration connect_timeout = std::chrono::seconds(15);
  // Reconnect delays after the stream failed: full jitter, 0.2 s doubling to a cap of 2 s, so the
  // stream is back at most 2 s after PostgreSQL or the link to it is (a cap of 10 s made the
  // chaos suite's replication cuts converge up to 10 s late); one connection attempt a second to
  // the server's own database while it is away costs nothing.
  core::ExponentialBackoff retry{std::chrono::milliseconds(200), std::chrono::seconds(2)};
  std::size_t max_queued_transactions = 1000;  // parts waiting for the sink
  // pgoutput bytes of change messages held (queued + with the sink) before reads pause; decoded
  // rows take a few times this in memory.
  std::size_t max_held_bytes = 32u << 20;
  // A transaction is handed on in parts of at most this many changes / bytes of change messages.
  std::size_t part_changes = 1000;
  std::size_t part_bytes = 1u << 20;
  // Transactions handed to the sink before the first of them is done: the smaller of this and
  // ChangeSink::max_in_flight().
  std::size_t max_in_flight_transactions = 128;
  // See above; zero disables.
  core::Duration stall_release = std::chrono::seconds(5);
  std::uint64_t jitter_seed = 0;  // 0: random
};

struct ChangeStreamMetrics {
  std::uint64_t changes_decoded = 0;
  std::uint64_t transactions = 0;               // decoded (committed) transactions
  std::uint64_t transactions_delivered = 0;     // handed to the sink (their last part)
  std::uint64_t transactions_deduplicated = 0;  // parts dropped as already handed on
  std::uint64_t bytes_received = 0;             // CopyData payload bytes
  std::uint64_t reconnects = 0;                 // successful starts after the first
  std::uint64_t status_updates = 0;
  Lsn last_received_lsn = 0;        // highest XLogData start seen
  Lsn confirmed_lsn = 0;            // handed on (done) or idle-advanced
  Lsn reported_lsn = 0;             // last flush position sent to PostgreSQL
  Lsn server_wal_end = 0;           // highest WAL end the server reported
  std::uint64_t lag_bytes = 0;      // server_wal_end - confirmed_lsn
  std::size_t queued = 0;           // transactions waiting for the sink
  bool in_flight = false;           // a transaction is with the sink
  std::size_t in_flight_count = 0;  // how many (at most max_in_flight_transactions)
  bool running = false;
  bool paused = false;              // back-pressure: socket not being read
  std::size_t held_bytes = 0;       // change-message bytes queued and with the sink
  std::size_t peak_held_bytes = 0;  // the most held_bytes has been
};

class ChangeStream {
 public:
  ChangeStream(boost::asio::io_context& io, core::Scheduler& scheduler, ChangeSink& sink,
               ChangeStreamOptions options);
  // Stops without calling the sink.
  ~ChangeStream();
  ChangeStream(const ChangeStream&) = delete;
  ChangeStream& operator=(const ChangeStream&) = delete;

  // Connects and streams; failures are retried forever until stop(). Idempotent.
  void start();
  // Sends a last status update (best effort), closes the connection, cancels timers. No sink
  // callback runs after stop(); pending `done` calls become no-ops. start() may be called again.
  void stop();

  bool running() const noexcept;
  ChangeStreamMetrics metrics() const;
  json::value diagnostics() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::cdc
