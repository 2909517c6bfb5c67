// Positions and the recent history of the change stream (docs/resume.md).
//
// A change's position is (commit LSN of its transaction, 1-based index among all of that
// transaction's changes, counted across its parts); positions are ordered by (lsn, index) and
// belong to an epoch (the replication slot's identity). ChangeHistory keeps the decoded
// transactions (or parts) the hub delivered during the last `window` and at most `max_bytes` of
// them (pgoutput bytes), so a client that rejoins with a position can be replayed what it missed.
// Its *floor* is the position up to which history was trimmed (or, before anything was trimmed,
// where the stream started): every change after the floor is in history, so a position at or
// after the floor resumes and one before it is a gap. The replication slot must never be
// confirmed past `floor().lsn` (Hub::confirm_limit), so that after a restart the slot decodes
// the window again.
//
// Thread safety: none (the hub's loop owns it).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/change_feed.hpp"

namespace rtsync::server::realtime {

// A place in the change stream: index 0 precedes every change of the transaction at `lsn`.
struct StreamPosition {
  Lsn lsn = 0;
  std::uint64_t index = 0;
  friend auto operator<=>(const StreamPosition&, const StreamPosition&) = default;
};

// {"epoch":…,"lsn":"X/Y","index":n}: as JSON text, and as a value.
std::string position_text(std::string_view epoch, StreamPosition p);
json::value position_json(std::string_view epoch, StreamPosition p);
// Reads {"epoch","lsn","index"}; nullopt when a field is missing or malformed.
struct EpochPosition {
  std::string epoch;
  StreamPosition position;
};
std::optional<EpochPosition> parse_position(const json::value& v);

// One delivered transaction (or part) and where its changes sit.
struct HistoryEntry {
  std::shared_ptr<const Transaction> txn;
  std::uint64_t first_index = 1;  // index of txn->changes[0]
  core::TimePoint at{};           // when it was delivered
  StreamPosition position(std::size_t i) const { return {txn->commit_lsn, first_index + i}; }
  // The position of its last change ((lsn, first_index - 1) for a part without changes).
  StreamPosition end() const { return {txn->commit_lsn, first_index - 1 + txn->changes.size()}; }
};

class ChangeHistory {
 public:
  ChangeHistory(core::Duration window, std::size_t max_bytes)
      : window_(window), max_bytes_(max_bytes) {}

  // Empties the history; positions before `floor` are gaps from now on.
  void reset(StreamPosition floor);
  // Appends a delivered transaction (commit order), then trims.
  void append(std::shared_ptr<const Transaction> txn, std::uint64_t first_index,
              core::TimePoint now);
  // Drops the entries delivered `window` or longer ago, and the oldest ones while the history
  // holds more than max_bytes; the floor moves to the end of the last one dropped.
  void trim(core::TimePoint now);

  StreamPosition floor() const noexcept { return floor_; }
  // When the floor last moved (reset or trim).
  core::TimePoint floor_since() const noexcept { return floor_since_; }
  bool covers(StreamPosition p) const noexcept { return p >= floor_; }
  // Entries holding a change after `after` and at or before `upto`, oldest first.
  std::vector<const HistoryEntry*> between(StreamPosition after, StreamPosition upto) const;

  std::size_t transactions() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void drop_front(core::TimePoint now);

  core::Duration window_;
  std::size_t max_bytes_;
  std::deque<HistoryEntry> entries_;
  std::size_t bytes_ = 0;
  StreamPosition floor_{};
  core::TimePoint floor_since_{};
};

}  // namespace rtsync::server::realtime
