// What a realtime node tells the other nodes of a cluster (docs/scaling.md §3): the broadcasts
// that originated on it and the presence changes of its own channels. The hub calls the bus; the
// cluster layer (src/server/cluster) implements it over Redis and hands what other nodes sent
// back to the hub (Hub::broadcast_from_node, PresenceTracker::apply_remote). Without a bus the
// hub is a single node.
//
// Thread safety: called on the hub's loop only.
#pragma once

#include <string>

namespace rtsync::server::realtime {

struct BroadcastMessage;

// One presence change of a meta: a join (track) or a leave (untrack), under `key` in the topic
// of `member_key` ("private|realtime:room" for a private topic).
struct PresenceChange {
  std::string member_key;
  std::string topic;  // "realtime:room1"
  bool join = false;
  std::string key;
  std::string ref;
  std::string text;  // the meta's JSON text, as receivers get it
};

class ClusterBus {
 public:
  virtual ~ClusterBus() = default;
  // A broadcast a client or the REST endpoint sent to this node (already fanned out here).
  virtual void broadcast(const BroadcastMessage& msg) = 0;
  // A meta of one of this node's channels joined or left.
  virtual void presence(const PresenceChange& change) = 0;
};

}  // namespace rtsync::server::realtime
