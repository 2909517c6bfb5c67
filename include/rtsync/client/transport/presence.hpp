// Client-side presence: the state a channel keeps from the server's presence_state and
// presence_diff frames (docs/presence.md), with the semantics of realtime-js (its Phoenix
// Presence):
//   - presence_state is merged into the current state: metas (by phx_ref) missing from it leave,
//     new ones join; then every diff held back (below) is applied, then `sync` fires.
//   - presence_diff {"joins":{key:{"metas":[…]}},"leaves":{…}} applies joins first (a key's new
//     metas are added after the ones it keeps), then leaves (a key with no meta left is removed),
//     then `sync` fires. A diff that arrives before the state of the current join (first join, or
//     after a rejoin) is held and applied right after that state.
//   - join events carry {key, current_presences (before the join), new_presences}; leave events
//     {key, current_presences (after the leave), left_presences}.
//   - Presences are exposed as realtime-js does: each meta's "phx_ref" renamed "presence_ref",
//     "phx_ref_prev" removed.
// A rejoin does not clear the state: the new join's presence_state is merged as above, so who
// left while the channel was away gets a leave event. Like realtime-js, nothing is re-tracked
// after a rejoin: the server forgot this channel's presence with the old join, so track again
// when the channel reports SUBSCRIBED.
//
// Thread safety: a plain value; the channel that owns it uses it on its loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/core/json.hpp"

namespace rtsync::client {

// One presence as realtime-js hands it out: the tracked payload plus "presence_ref".
using Presence = json::object;
// Presence key → its presences (one per tracking socket), as RealtimeChannel::presence_state().
using PresenceMap = std::map<std::string, std::vector<Presence>>;

// A `join` event: presences of `key` arrived.
struct PresenceJoin {
  std::string key;                          // the presence key
  std::vector<Presence> current_presences;  // the key's presences before this join
  std::vector<Presence> new_presences;      // the presences that joined
};

// A `leave` event: presences of `key` left.
struct PresenceLeave {
  std::string key;                          // the presence key
  std::vector<Presence> current_presences;  // the key's presences after this leave
  std::vector<Presence> left_presences;     // the presences that left
};

// The presence state of one channel, merged from presence_state / presence_diff payloads (the
// semantics above).
class PresenceSync {
 public:
  // What to call while merging; any may be empty.
  struct Events {
    std::function<void(const PresenceJoin&)> on_join;    // per key that gained presences
    std::function<void(const PresenceLeave&)> on_leave;  // per key that lost presences
    std::function<void()> on_sync;                       // after each state or diff applied
  };

  // A presence_state received while the channel's join ref is `join_ref`. Payloads that are not
  // objects are ignored (false).
  bool apply_state(const json::value& state, const std::string& join_ref, const Events& events);
  // A presence_diff received while the channel's join ref is `current_join_ref`: applied, or held
  // until the state of that join arrives. False when the payload is malformed (ignored).
  bool apply_diff(const json::value& diff, const std::optional<std::string>& current_join_ref,
                  const Events& events);

  // Key → presences as realtime-js exposes them.
  PresenceMap state() const;
  // The raw metas (with phx_ref), by key.
  const std::map<std::string, std::vector<json::object>>& raw() const noexcept { return state_; }
  // Diffs held until the current join's presence_state arrives.
  std::size_t held_diffs() const noexcept { return pending_.size(); }

 private:
  using Raw = std::map<std::string, std::vector<json::object>>;
  static bool to_raw(const json::value& v, Raw& out);
  void sync_diff(const Raw& joins, const Raw& leaves, const Events& events);

  Raw state_;
  std::optional<std::string> join_ref_;  // of the last state applied
  std::vector<std::pair<Raw, Raw>> pending_;
};

}  // namespace rtsync::client
