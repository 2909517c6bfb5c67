// The stored side of Broadcast from Database (docs/database-broadcast.md): reading a channel's
// recent messages back for a replay, and deleting old ones for retention. Implemented over
// PostgreSQL by cdc::PgMessageStore; the realtime hub and the retention schedule use only this
// interface, so unit tests drive them with a fake.
//
// Thread safety: calls and callbacks on the server loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rtsync/core/result.hpp"

namespace rtsync::server {

// One stored broadcast, as a replay sends it.
struct StoredMessage {
  std::string id;       // uuid text: meta.id
  std::string event;    // the broadcast event
  std::string payload;  // JSON text
  // Field by field.
  friend bool operator==(const StoredMessage&, const StoredMessage&) = default;
};

// Replays and retention deletes over realtime.messages (see the file comment).
class MessageStore {
 public:
  // The stored messages of a replay, oldest first, or the database's error.
  using ReplayCallback = std::function<void(Result<std::vector<StoredMessage>>)>;
  // How many rows a delete removed, or the database's error.
  using DeleteCallback = std::function<void(Result<std::size_t>)>;
  virtual ~MessageStore() = default;

  // The last `limit` (1..25) messages of `topic` (the channel name without "realtime:") that are
  // private, of extension 'broadcast', and inserted at or after `since_ms` (milliseconds since the
  // Unix epoch) — oldest first. Read from a snapshot that sees every transaction of
  // `visible_xids` (32-bit xids of decoded transactions the caller already handed on: logical
  // decoding hands a commit on a moment before snapshots see it, so the read waits for them).
  // Asynchronous: `done` runs later on the loop, with an error when the database could not answer.
  virtual void replay(std::string topic, std::int64_t since_ms, std::int64_t limit,
                      std::vector<std::uint32_t> visible_xids, ReplayCallback done) = 0;

  // Deletes at most `max_rows` messages inserted before `cutoff_ms` (milliseconds since the Unix
  // epoch; a message inserted exactly at the cutoff stays); `done` gets how many were deleted.
  // A replay asked for before this call is answered from the rows as they were before it.
  virtual void delete_before(std::int64_t cutoff_ms, std::size_t max_rows, DeleteCallback done) = 0;
};

}  // namespace rtsync::server
