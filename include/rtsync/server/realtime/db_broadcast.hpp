// Broadcast from Database: a row inserted into `realtime.messages` (docs/database-broadcast.md),
// decoded from the change stream, as the broadcast it becomes — pure, no I/O.
//
// The row's columns: topic (the channel name, without "realtime:"), event, payload (jsonb),
// private, id (uuid), extension, inserted_at. Like Supabase Realtime, a row without topic, event,
// id, private or payload is not broadcast (it is logged and counted); the extension is not looked
// at (realtime.send always writes 'broadcast').
//
// The broadcast goes to `realtime:<topic>`: to the private channel of that name when `private` is
// true, to the public one otherwise, with metadata {"id": <row id>} — a kind-4 frame for vsn 2
// sockets, the JSON broadcast {type, event, payload, meta:{id}} for vsn 1 sockets.
//
// Thread safety: pure functions over values.
#pragma once

#include <string>

#include "rtsync/core/result.hpp"
#include "rtsync/server/change_feed.hpp"

namespace rtsync::server::realtime {

struct BroadcastMessage;

// One realtime.messages row, as broadcast.
struct DbBroadcast {
  std::string topic;       // realtime.messages.topic, e.g. "project:42"
  std::string event;       // the broadcast event, e.g. "INSERT"
  std::string payload;     // JSON text of the payload column
  bool is_private = true;  // to the private channel of the topic (else the public one)
  std::string id;          // the row id (uuid text): meta.id, and what replay de-duplicates by
};

// The broadcast of an INSERT into realtime.messages (is_messages_relation). Errors
// (Errc::invalid_argument, naming the column): not an insert, or a required column missing or
// null, or of the wrong type.
Result<DbBroadcast> decode_db_broadcast(const RowChange& change);

// The fan-out message: topic "realtime:<topic>", a JSON-encoded user broadcast with metadata
// {"id":…}, `id` set for de-duplication against replayed messages.
BroadcastMessage to_broadcast_message(const DbBroadcast& b);

}  // namespace rtsync::server::realtime
