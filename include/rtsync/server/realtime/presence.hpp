// Presence of one realtime server: who tracks what in which topic, and the presence_state /
// presence_diff frames that tell the channels (docs/presence.md has the wire format).
//
// Each tracking channel is one meta {"phx_ref": <unique>, …payload} under its presence key; many
// channels (sockets) may track under the same key. Changes are numbered (a sequence per tracker)
// and gathered per topic in a window (timers::PresenceDiff) that opens with the topic's first
// change and closes once the topic has been quiet for RealtimeLimits::presence_diff_window, or
// presence_diff_max_delay after it opened, whichever comes first. When it closes, every receiver
// of the topic gets one presence_diff {"joins":{key:{"metas":[…]}},"leaves":{…}} holding the
// changes its presence_state did not already contain. A meta that joined and left within one
// window appears in neither. Receivers are the topic's members with presence enabled (at join,
// or since their first track) — on a private topic only those whose token may read its presence
// (Channel::rights.presence_read); the frame of each group of receivers is serialized once per
// wire format.
//
// presence_state: a channel joining with presence enabled gets it right after its join reply
// when the topic's window is closed. While a window is open, its state waits for the window to
// close and then holds everything up to then, in place of that window's diff: during a join
// storm each joiner gets one presence_state (and no diff for the storm's window), rather than a
// state now and a diff moments later. Supabase Realtime sends the state asynchronously after the
// join as well; realtime-js (and rtsync's client) hold diffs until it arrives.
//
// A track replacing a channel's earlier payload is a leave of the old meta and a join of a new
// one whose meta carries "phx_ref_prev" (the old ref); tracking an identical payload again
// changes nothing.
//
// Thread safety: loop-confined, like the Hub that owns it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/realtime/channel.hpp"
#include "rtsync/server/realtime/cluster_bus.hpp"
#include "rtsync/server/realtime/session_io.hpp"

namespace rtsync::server::realtime {

class Hub;

class PresenceTracker {
 public:
  explicit PresenceTracker(Hub& hub);
  PresenceTracker(const PresenceTracker&) = delete;
  PresenceTracker& operator=(const PresenceTracker&) = delete;

  enum class TrackResult : std::uint8_t {
    tracked,    // a new meta, or a replaced one: a diff follows
    unchanged,  // the same payload was already tracked by this channel
    full,       // max_presences_per_channel reached: nothing tracked
  };
  TrackResult track(Channel& ch, json::object payload);
  // Removes the channel's meta, if any (untrack, leave, close, any channel end).
  void untrack(Channel& ch);

  // A channel joined with presence enabled: sends its presence_state now, or when the topic's
  // open window closes (see above).
  void joined(Channel& ch);
  // The presence_state payload of the channel's topic as JSON text, {key:{"metas":[…]}};
  // remembers that the channel has seen every change up to now.
  std::string state_for(Channel& ch);
  // Sends the presence_state frame to the channel now.
  void send_state(Channel& ch);

  // Closes the topic's window now: its diff, and the states that waited for it (the window timer
  // calls it).
  void flush(const std::string& member_key);

  // Tracked metas over all topics, and in one topic (by member key).
  std::size_t size() const noexcept { return total_; }
  std::size_t size(std::string_view member_key) const;

  // A fresh presence key for a join that gave none (UUID text, unique per server run).
  std::string fresh_key();

  // ---- a cluster's other nodes (docs/scaling.md §3) ----
  // Every change of a local meta also goes to Hub::cluster_bus(). A change another node sent:
  // its meta joins or leaves this node's view of the topic (a join of a ref already held, or a
  // leave of one not held, changes nothing), and the topic's receivers get it in their next diff.
  void apply_remote(const std::string& node, const PresenceChange& change);
  // The metas of this node's own channels, as joins (what another node needs to converge).
  std::vector<PresenceChange> local_snapshot() const;
  // Makes `node`'s metas exactly `snapshot` (joins for new refs, leaves for the missing ones);
  // an empty snapshot is that node leaving (it died, or its liveness key expired).
  void replace_node(const std::string& node, const std::vector<PresenceChange>& snapshot);

 private:
  struct Meta {
    const Channel* channel = nullptr;  // null: another node's meta
    std::string node;                  // that node (empty for a local meta)
    std::string ref;
    json::object payload;  // as tracked, without phx_ref
    std::string text;  // the meta object as sent: {"phx_ref":…[,"phx_ref_prev":…],…payload}
  };
  struct Change {
    std::uint64_t seq = 0;
    bool join = false;
    std::string key;
    std::string ref;
    std::string text;  // the meta's JSON text
  };
  struct Topic {
    std::string topic;                               // "realtime:room1"
    std::map<std::string, std::vector<Meta>> metas;  // by presence key, in track order
    std::vector<Change> pending;                     // since the last flush, in seq order
    core::Timer window;                              // timers::PresenceDiff
    core::TimePoint opened{};                        // the window's first change
    core::TimePoint last_change{};                   // the window's latest change
    std::size_t size = 0;
  };
  void record(Topic& t, const std::string& member_key, bool join, const std::string& key,
              const Meta& meta);
  void on_window_timer(const std::string& member_key);
  std::string diff_payload(const Topic& t, std::uint64_t after) const;
  std::string state_payload(const Topic* t) const;
  OutFrame state_frame(Channel& ch, const std::string& payload);
  std::string next_ref();

  Hub& hub_;
  std::unordered_map<std::string, Topic> topics_;  // by Channel::member_key
  std::uint64_t seq_ = 0;
  std::uint64_t salt_ = 0;
  std::uint64_t refs_ = 0;
  std::size_t total_ = 0;
};

}  // namespace rtsync::server::realtime
