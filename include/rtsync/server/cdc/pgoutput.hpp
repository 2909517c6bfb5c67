// Decoder for pgoutput's logical replication messages (protocol version 1), sans I/O: fed the
// payload of each XLogData message, it keeps the relation cache and the open transaction, and
// returns the transaction in parts (Transaction::part, ::last): a part as soon as it holds
// `part_changes` changes or `part_bytes` bytes of change messages, and the last part at Commit.
// Parts depend only on the change messages, so a transaction sent again after a reconnect splits
// the same way (the stream dedupes parts by (commit_lsn, part)).
//
// Message formats: PostgreSQL "Logical Replication Message Formats" (Begin 'B', Commit 'C',
// Origin 'O', Relation 'R', Type 'Y', Insert 'I', Update 'U', Delete 'D', Truncate 'T',
// Message 'M'). All integers are big-endian; strings are NUL-terminated.
//
// Tuple values (text format) become typed JSON through TypeRegistry. Unchanged TOASTed values
// ('u') are filled from the old tuple when it carries them, otherwise left out of `record`.
// UPDATE under REPLICA IDENTITY DEFAULT/INDEX without an old tuple (key unchanged) gets
// `old_record` = the key columns of the new row, as Supabase reports it; under NOTHING there is
// no old_record.
//
// Thread safety: single-threaded value.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/server/cdc/pg_values.hpp"
#include "rtsync/server/change_feed.hpp"

namespace rtsync::server::cdc {

// PostgreSQL timestamps: microseconds since 2000-01-01 00:00:00 UTC.
core::WallTime pg_time_to_wall(std::int64_t micros_since_2000) noexcept;
std::int64_t wall_to_pg_time(core::WallTime t) noexcept;

struct DecoderLimits {
  std::size_t part_changes = static_cast<std::size_t>(-1);
  std::size_t part_bytes = static_cast<std::size_t>(-1);
};

class PgOutputDecoder {
 public:
  explicit PgOutputDecoder(TypeRegistry& types, DecoderLimits limits = {})
      : types_(types), limits_(limits) {}

  // Feeds one pgoutput message. Returns a part of the open transaction when it is full or
  // committed (see above); otherwise nullptr.
  // Errc::protocol for truncated or out-of-order input (the caller should reconnect: the stream
  // position is no longer trustworthy).
  Result<std::shared_ptr<Transaction>> feed(std::string_view message);

  // A transaction is open (Begin seen, Commit not yet).
  bool in_transaction() const noexcept { return current_ != nullptr; }
  // Drops a partially received transaction (after a disconnect). Relations are kept: they are
  // replaced when the server re-sends them.
  void reset() noexcept { current_.reset(); }

  std::shared_ptr<const Relation> relation(std::uint32_t oid) const;
  std::uint64_t changes_decoded() const noexcept { return changes_decoded_; }
  std::uint64_t truncates_ignored() const noexcept { return truncates_ignored_; }

 private:
  class Reader;
  Result<void> on_begin(Reader& r);
  Result<std::shared_ptr<Transaction>> end_part_if_full(std::size_t message_bytes);
  Result<std::shared_ptr<Transaction>> on_commit(Reader& r);
  Result<void> on_relation(Reader& r);
  Result<void> on_type(Reader& r);
  Result<void> on_insert(Reader& r);
  Result<void> on_update(Reader& r);
  Result<void> on_delete(Reader& r);
  Result<void> on_truncate(Reader& r);
  struct CachedRelation {
    std::shared_ptr<const Relation> relation;
    std::vector<Conversion> conversions;  // per column, resolved when the Relation arrives
  };
  Result<const CachedRelation*> lookup(std::uint32_t oid);

  TypeRegistry& types_;
  DecoderLimits limits_;
  std::unordered_map<std::uint32_t, CachedRelation> relations_;
  std::shared_ptr<Transaction> current_;
  std::uint64_t changes_decoded_ = 0;
  std::uint64_t truncates_ignored_ = 0;
};

}  // namespace rtsync::server::cdc
