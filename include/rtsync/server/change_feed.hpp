// The server's change feed: what PostgreSQL logical decoding (pgoutput over the publications
// `supabase_realtime` and `supabase_realtime_messages_publication`) yields, decoded once, as typed
// JSON rows grouped by transaction.
//
// Producer: ChangeStream (src/server/cdc). Consumer: the realtime router (src/server/realtime),
// which routes each change to matching subscriptions, authorizes rows under RLS (RowAuthorizer),
// and hands frames to sessions. Delivery is at-least-once from the slot's point of view: the
// stream confirms a transaction's LSN to PostgreSQL only after the consumer called `done()` for it
// and every earlier one, and drops transactions at or below the last confirmed (or handed-on) LSN
// after a reconnect.
//
// Thread safety: loop-confined. ChangeSink methods are called on the server's loop, and `done`
// must be called there too (possibly later, never from another thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/protocol/postgres_changes.hpp"

namespace rtsync::server {

using Lsn = std::uint64_t;

// "16/B374D848" ↔ Lsn
std::string format_lsn(Lsn lsn);
Result<Lsn> parse_lsn(std::string_view text);

struct RelationColumn {
  std::string name;
  std::uint32_t type_oid = 0;
  std::string type_name;  // pg_type.typname (int4, text, _int4, jsonb…)
  bool is_key = false;    // part of the replica identity key
};

struct Relation {
  std::uint32_t oid = 0;
  std::string schema;
  std::string table;
  char replica_identity = 'd';  // d default (PK), f full, i index, n nothing
  std::vector<RelationColumn> columns;

  // The `columns` array of a postgres_changes payload.
  std::vector<protocol::Column> wire_columns() const;
  std::vector<std::string> key_columns() const;
};

// Is this `realtime.messages` (or one of its partitions, `realtime.messages_<suffix>`, as a
// Supabase project partitions it by day)? Its inserts are Broadcast from Database: they reach
// subscribers as broadcasts (docs/database-broadcast.md), never as postgres_changes.
bool is_messages_relation(const Relation& relation) noexcept;

enum class ChangeKind { insert, update, remove };
std::string_view to_string(ChangeKind kind) noexcept;  // "INSERT" | "UPDATE" | "DELETE"

struct RowChange {
  ChangeKind kind = ChangeKind::insert;
  std::shared_ptr<const Relation> relation;
  // New tuple (INSERT, UPDATE), typed JSON by type OID; unchanged TOASTed values are filled from
  // the old tuple when it is known.
  std::optional<json::object> record;
  // Old tuple (UPDATE when the key changed or REPLICA IDENTITY FULL; DELETE): the replica identity
  // columns only, or every column under REPLICA IDENTITY FULL.
  std::optional<json::object> old_record;
};

// A committed transaction, or one part of it: a large transaction reaches the sink as consecutive
// parts (part 0, 1, …) of bounded size, so holding it takes bounded memory whatever its size.
// All parts carry the transaction's xid, commit LSN and time; only the last carries end_lsn.
struct Transaction {
  std::uint32_t xid = 0;
  Lsn commit_lsn = 0;  // LSN of the commit record
  Lsn end_lsn = 0;     // the position to confirm once handed on (last part only; 0 before)
  core::WallTime commit_time{};
  std::string commit_timestamp;  // "YYYY-MM-DDTHH:MM:SS.mmmZ"
  std::vector<RowChange> changes;
  std::uint32_t part = 0;  // index of this part within the transaction
  bool last = true;        // the part that ends the transaction
  std::size_t bytes = 0;   // pgoutput bytes of its change messages
};

// Receives decoded transactions on the server's loop, in commit order.
class ChangeSink {
 public:
  virtual ~ChangeSink() = default;
  // Call `done` once every change of `txn` (a whole transaction or one part of it) has been
  // handed to the sessions (possibly later, after asynchronous authorization). At most
  // max_in_flight() transactions are with the sink at once (handed on, `done` not yet called); they
  // arrive in commit order and the sink must hand their changes to the sessions in that same order.
  // The stream confirms a position only once `done` ran for every transaction up to it, whatever
  // order the `done` calls come in.
  virtual void on_transaction(std::shared_ptr<const Transaction> txn,
                              std::function<void()> done) = 0;
  // 1 (the default): the next transaction is handed on only after `done` of the previous one.
  virtual std::size_t max_in_flight() const { return 1; }
  // The furthest LSN the slot may be confirmed to (status updates report no more than this), so
  // that a restart decodes again what the sink keeps (docs/resume.md); nullopt: no limit.
  virtual std::optional<Lsn> confirm_limit() { return std::nullopt; }
  // Every transaction that committed before `lsn` was handed on and `done` (nothing is with the
  // sink): a quiet stream's progress, from PostgreSQL's keepalives.
  virtual void on_stream_position(Lsn /*lsn*/) {}
  // While true, the stream's status updates ask PostgreSQL for an immediate keepalive, so
  // on_stream_position follows soon even on a quiet stream.
  virtual bool wants_stream_position() { return false; }
  // The stream installs this at construction: calling it sends a status update soon.
  virtual void set_status_request(std::function<void()> /*request*/) {}
  // The stream went down (PostgreSQL unreachable, slot error) or came back up.
  virtual void on_stream_state(bool running, const std::string& reason) = 0;
};

}  // namespace rtsync::server
