// What the nodes of a cluster send each other through Redis (docs/scaling.md §3), as bytes:
// decoded transactions (the change stream's entries), broadcasts and presence changes.
//
// Transactions are JSON: relations travel with every entry that uses them (a receiver keeps the
// last one per OID so equal relations share one object), rows as their typed JSON. Broadcasts are
// length-prefixed fields, because a binary user broadcast's payload is arbitrary bytes.
//
// Thread safety: free functions; a RelationCache belongs to one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/server/change_feed.hpp"
#include "rtsync/server/realtime/cluster_bus.hpp"
#include "rtsync/server/realtime/hub.hpp"

namespace rtsync::server::cluster {

// A transaction (or part) is identified in the stream by its position: Redis entry id
// "<commit LSN>-<part>", so entries are ordered as the slot decodes them and a second append of
// the same transaction (a new leader decoding again from the slot's confirmed position) is
// refused by Redis itself.
struct EntryId {
  Lsn lsn = 0;
  std::uint32_t part = 0;
  friend auto operator<=>(const EntryId&, const EntryId&) = default;
};
std::string to_string(EntryId id);  // "<lsn>-<part>"
Result<EntryId> parse_entry_id(std::string_view text);
inline EntryId entry_id(const Transaction& txn) {
  return {txn.commit_lsn, txn.part};
}

std::string encode_transaction(const Transaction& txn);
using RelationCache = std::unordered_map<std::uint32_t, std::shared_ptr<const Relation>>;
Result<std::shared_ptr<const Transaction>> decode_transaction(std::string_view text,
                                                              RelationCache& relations);

// `node` travels with the message so a node can ignore its own.
std::string encode_broadcast(std::string_view node, const realtime::BroadcastMessage& msg);
struct NodeBroadcast {
  std::string node;
  realtime::BroadcastMessage message;
};
Result<NodeBroadcast> decode_broadcast(std::string_view bytes);

// A presence message: one change, or a node's whole snapshot (`snapshot` true: `changes` are all
// of the node's metas, which replace what the receiver held of it).
struct NodePresence {
  std::string node;
  bool snapshot = false;
  bool request = false;  // a node that just (re)joined asks every node for its snapshot
  std::vector<realtime::PresenceChange> changes;
};
std::string encode_presence(const NodePresence& p);
Result<NodePresence> decode_presence(std::string_view text);

}  // namespace rtsync::server::cluster
