// The epoch of a replication slot's history (docs/resume.md): a random identifier kept in the
// server-owned table `realtime.rtsync_slot_epochs` (one row per slot name), replaced when the
// server's bootstrap creates the slot, so a re-created slot is a new epoch; and where the slot's
// stream starts (its confirmed_flush_lsn), the floor of what the server decodes again at start.
//
// Thread safety: a blocking call on a connection the caller owns (Server::start, before the loop
// serves anyone).
#pragma once

#include <string>
#include <string_view>

#include "rtsync/core/result.hpp"
#include "rtsync/server/change_feed.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::server::cdc {

struct SlotEpoch {
  std::string epoch;  // 16 hex digits
  Lsn start_lsn = 0;  // the slot's confirmed_flush_lsn now: decoding starts here
  Lsn live_from = 0;  // the WAL flush position now: transactions before it are catch-up
};

// Reads (creating the table and the row when missing) the epoch of `slot`; `slot_created`: the
// slot was created just now, so any earlier row belongs to a slot that is gone and is replaced.
// Errors: the database's (no rights on schema realtime, say); Errc::not_found when the slot does
// not exist.
Result<SlotEpoch> read_slot_epoch(pg::Connection& conn, std::string_view slot, bool slot_created);

}  // namespace rtsync::server::cdc
