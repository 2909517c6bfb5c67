// One Supabase Realtime channel, topic "realtime:<name>" (docs/protocol.md §2 and §3), created by
// `RealtimeSocket::channel()`.
//
// Lifecycle (states as realtime-js: closed, joining, joined, leaving, errored):
//   - Register bindings (on_broadcast, on_postgres_changes, on_system, on_changes_overflow), then
//     `subscribe()`.
//     The phx_join payload is built from the bindings, the channel options and the socket's current
//     access token. A join is only put on the wire while the socket is open; its timeout starts
//     then.
//   - Status callback (`subscribe(cb)` and `on_status` listeners), exactly when:
//       SUBSCRIBED     join reply ok and every postgres_changes binding matched the reply's echo
//                      (by position); again after every successful rejoin.
//       TIMED_OUT      no join reply within the timeout; a phx_leave is sent and a rejoin follows.
//       CHANNEL_ERROR  join reply error (message = the server's reason; a rejoin follows); the
//                      reply's postgres_changes do not match the bindings (no rejoin: the channel
//                      then leaves and reports CLOSED); the socket dropped while joined or joining
//                      ("socket closed: <code> (<reason>)", "heartbeat timeout"; rejoin on
//                      reconnect); server phx_error (rejoin with backoff); a `system` error from
//                      the server (token expired, permission revoked…; phx_close and CLOSED
//                      follow).
//       CLOSED         after unsubscribe() (leave reply or timeout), or server phx_close (no
//                      automatic rejoin; create a new channel to join again).
//   - Rejoin delays after errors: socket option `rejoin_backoff` (1 s, 2 s, 5 s, 10 s…, jittered),
//     only while the socket is open; a socket (re)open rejoins every errored channel at once.
//     So does a new access token (RealtimeSocket::set_auth): a channel waiting out its rejoin
//     delay, or whose join failed after the token it carried was replaced, rejoins at once with
//     the new token — an expired token refreshed after an outage is used without waiting for the
//     backoff. This rejoin does not advance the backoff, and it happens once per token change.
//   - Frames whose join_ref (or, for phx_close/phx_error, ref) is set and is not the current join
//     ref belong to an earlier join and are dropped (counted).
//   - postgres_changes bindings are snapshotted at each join; a binding added later takes effect at
//     the next join; a removed binding stops firing at once.
//
// Changes overflow. When one transaction changes more rows of one table than the server's
// per-subscriber limit, the server stops sending those changes and sends ONE `system` message
// instead: {"extension":"postgres_changes","status":"ok","message":"Too many changes",
// "channel":…,"schema":…,"table":…,"limit":…} (protocol::parse_changes_overflow). The changes of
// that table received before it are an incomplete picture of the transaction: whatever reads the
// table must refetch it. on_changes_overflow listeners get {schema, table, limit} once per such
// message, after the on_system listeners got the raw payload (realtime-js hands it only to system
// listeners: a client that ignores it stays correct as a protocol peer but misses the refetch).
// The channel's state does not change. A `system` message that merely resembles it (status "error",
// another message, no table) is not an overflow; a status "error" from postgres_changes stays an
// informational error. Like every frame of an earlier join (join_ref set and not current), a stale
// one is dropped.
//
// Private channels (ChannelOptions::is_private; docs/private-channels.md). The server decides by
// the project's policies on `realtime.messages`, with the token the socket has when the join is
// sent (RealtimeSocket::set_auth). A refused join is a CHANNEL_ERROR whose message is the server's
// reason (`Unauthorized: You do not have permissions to read from this Channel topic: <name>`)
// and rejoins with backoff like any join error. A broadcast the token may not send is dropped by
// the server without a reply: with broadcast_ack the push ends timed out, without it the push
// reports ok. When a replaced token may no longer read the topic, the server sends a `system`
// error (`You do not have permissions to read from this Channel topic: <name>`, or `You no longer
// have permission to read from this Channel topic: <name>` when one of two reads was lost) and
// phx_close: on_system listeners get the payload exactly as realtime-js's `system` listeners do,
// then CHANNEL_ERROR (Errc::unauthorized; rtsync's addition, see above) and CLOSED — the channel
// does not rejoin, as in realtime-js; create a new channel to join again.
//
// Presence (docs/presence.md; merge semantics in client/transport/presence.hpp). `track(payload)`
// makes this channel one presence under its key (ChannelOptions::presence_key, or a key the
// server picks per join), `untrack()` removes it. The channel receives the others' presences when
// it joins with presence enabled: ChannelOptions::presence_enabled, or any on_presence_* listener
// registered before the join (as realtime-js decides). `presence_state()` is key → presences;
// on_presence_join / on_presence_leave fire per key and on_presence_sync after each state or diff
// applied. Like realtime-js, a rejoin does not re-track: track again on SUBSCRIBED.
//
// Resumable change streams (rtsync's extension, docs/resume.md; Supabase sends none of it and
// ignores the request, so against Supabase the channel behaves exactly as realtime-js).
//   - Position: every change the server sends carries one (postgres_changes `data.position`,
//     Broadcast-from-Database `meta.position`); the join reply carries the channel's head
//     (`response.rtsync`) and heartbeat replies the socket's stream position. The channel keeps
//     its position(): the head after a first join or a gap, then each change's position as it is
//     applied; a heartbeat reply raises it while the channel is joined and not replaying. A change
//     whose position is at or before the channel's position (same epoch) is a duplicate: it is
//     dropped (counted) and no callback sees it. Broadcasts of a broadcast replay (meta.replayed)
//     are not part of the stream and are left alone. ChangeView::position() and
//     BroadcastMeta::position expose a change's position to callbacks.
//   - Resume: every join that holds a position (a rejoin, or a first join of a channel created
//     with ChannelOptions::resume_from) adds config.rtsync.resume with it, unless the server is
//     known (from an earlier join or heartbeat reply of the socket) to be of another epoch.
//   - Outcome: each successful join sets last_join_outcome() and calls on_join_outcome listeners,
//     before the SUBSCRIBED status: `fresh` (a first join without a position), `resumed` with the
//     number of replayed changes that follow (before live ones), or `gap` with a reason (the
//     server could not replay, no position could be sent, or the server sent no rtsync reply —
//     Supabase). After a gap the application must refetch what the channel feeds.
//
// Thread safety: loop-confined (checked in debug builds, rtsync/core/loop_check.hpp); call every
// method on the socket's loop. Callbacks run on the loop.
// Any method (unsubscribe, removing bindings, dropping the last shared_ptr) may be called from
// inside a callback.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/client/transport/presence.hpp"
#include "rtsync/client/transport/push.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/core/subscription.hpp"
#include "rtsync/protocol/change_view.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/protocol/reply.hpp"
#include "rtsync/protocol/stream_position.hpp"

namespace rtsync::client {

namespace detail {
class SocketCore;
struct ChannelImpl;
}  // namespace detail

// The statuses a subscription reports (when each fires: the file comment).
enum class SubscribeStatus { subscribed, timed_out, channel_error, closed };
// "SUBSCRIBED" | "TIMED_OUT" | "CHANNEL_ERROR" | "CLOSED"
std::string_view to_string(SubscribeStatus status) noexcept;

// The channel's lifecycle state, as realtime-js names it.
enum class ChannelState { closed, joining, joined, leaving, errored };
std::string_view to_string(ChannelState state) noexcept;  // "closed" | "joining" | …

// config.broadcast.replay: stored broadcasts (Broadcast from Database, docs/database-broadcast.md)
// the server sends right after each successful join, before live ones.
struct ReplayOptions {
  // Messages inserted at or after this time (sent as milliseconds since the Unix epoch).
  core::WallTime since{};
  // At most this many, the newest (the server clamps to 1..25); unset: the server's 25.
  std::optional<std::int64_t> limit{};
};

// What `meta` of a received broadcast says (docs/database-broadcast.md).
struct BroadcastMeta {
  // The message's id: a realtime.messages row's id (Broadcast from Database, replays), or the id a
  // REST broadcast was sent with. Unset for ordinary client broadcasts.
  std::optional<std::string> id;
  // The message came from a replay (ChannelOptions::replay), not live.
  bool replayed = false;
  // meta.position: its stream position (rtsync, Broadcast from Database; docs/resume.md).
  std::optional<protocol::StreamPosition> position;
};

// A change stream position (docs/resume.md): {epoch, lsn, index}.
using StreamPosition = protocol::StreamPosition;

// What a successful join found about the stream (see "Resumable change streams" above).
enum class JoinOutcomeKind { fresh, resumed, gap };
std::string_view to_string(JoinOutcomeKind kind) noexcept;  // "fresh" | "resumed" | "gap"

// The outcome of one successful join.
struct JoinOutcome {
  JoinOutcomeKind kind = JoinOutcomeKind::fresh;  // fresh, resumed or gap
  std::int64_t replayed = 0;                      // resumed: changes replayed before live ones
  std::string reason;                             // gap: why
  std::optional<StreamPosition> from;             // the position sent with the join, if any
  std::optional<StreamPosition> head;             // the reply's head (response.rtsync)
  bool rtsync = false;                            // the reply carried response.rtsync
};

// The meta of a broadcast message as on_broadcast hands it over ({type, event, payload[, meta]});
// missing or malformed fields read as unset / false.
BroadcastMeta broadcast_meta(const json::value& message);

// Fields of config.broadcast / config.private in the join payload.
struct ChannelOptions {
  bool broadcast_ack = false;   // the server acknowledges each broadcast push
  bool broadcast_self = false;  // the server echoes our own broadcasts back to us
  bool is_private = false;      // a private channel (authorized by policies on realtime.messages)
  // config.presence.key: the key this channel tracks under ("" → the server picks one per join).
  std::string presence_key;
  // Join/leave/push timeout for this channel; the socket's push_timeout when unset.
  std::optional<core::Duration> timeout;
  // config.presence.enabled: receive presence (also on when on_presence_* listeners exist at join
  // time).
  bool presence_enabled = false;
  // config.broadcast.replay: private channels only (subscribe() fails with invalid_argument on a
  // public one, as realtime-js throws). Sent with every (re)join, like realtime-js: after a rejoin
  // the same stored messages may arrive again — meta.id tells them apart (broadcast_meta).
  std::optional<ReplayOptions> replay{};
  // rtsync (docs/resume.md): the position this channel starts from, as if it had applied every
  // change up to it — its first join then asks to resume from there. For a channel that replaces
  // an earlier one of the same topic (RealtimeManager's heal path): pass the old one's position().
  std::optional<StreamPosition> resume_from{};
};

// {event: INSERT|UPDATE|DELETE|*, schema, table, filter}, sent as one config.postgres_changes item.
using PostgresChangesFilter = protocol::PostgresChangesSpec;

// One channel of a RealtimeSocket: bindings, subscribe/unsubscribe, broadcasts (lifecycle and
// thread safety in the file comment).
class RealtimeChannel : public std::enable_shared_from_this<RealtimeChannel> {
 public:
  // Subscription status listener; `error` says why for CHANNEL_ERROR (and TIMED_OUT).
  using StatusCallback = std::function<void(SubscribeStatus status, std::optional<Error> error)>;
  // The broadcast as realtime-js hands it over:
  // {"type":"broadcast","event":…,"payload":…[,"meta":…]} (binary kind-4 frames are reconstructed
  // to the same shape). broadcast_meta(message) reads its meta: the id of a database message and
  // whether it was replayed.
  using BroadcastCallback = std::function<void(const json::value& message)>;
  // The change as realtime-js hands it over, {schema, table, commit_timestamp, eventType, new, old,
  // errors} with values converted by column type, as a read-only view of the received frame: no
  // DOM is built unless asked for. The view is valid only during the call; `change.to_object()`
  // copies it out (protocol/change_view.hpp).
  using ChangeView = protocol::ChangeView;
  using ChangeCallback = std::function<void(const ChangeView& change)>;
  // The system message payload {extension, status, message, channel} (plus whatever else the
  // server sent, e.g. schema/table/limit of a changes overflow).
  using SystemCallback = std::function<void(const json::value& payload)>;
  // {schema, table, limit, channel} of a "Too many changes" system message (see above).
  using ChangesOverflow = protocol::ChangesOverflow;
  using ChangesOverflowCallback = std::function<void(const ChangesOverflow& overflow)>;

  ~RealtimeChannel();
  RealtimeChannel(const RealtimeChannel&) = delete;
  RealtimeChannel& operator=(const RealtimeChannel&) = delete;

  const std::string& topic() const noexcept;       // "realtime:<name>"
  std::string_view name() const noexcept;          // "<name>"
  ChannelState state() const noexcept;             // the lifecycle state now
  const ChannelOptions& options() const noexcept;  // as given to RealtimeSocket::channel
  // Ref of the current phx_join; empty before the first join.
  const std::optional<std::string>& join_ref() const noexcept;

  // Broadcast events named `event` (case-insensitive), or every broadcast with "*".
  core::Subscription on_broadcast(std::string event, BroadcastCallback callback);
  // Changes matching `filter` (event, schema, table, filter); sent with the next join.
  core::Subscription on_postgres_changes(PostgresChangesFilter filter, ChangeCallback callback);
  // Every `system` message, as its payload.
  core::Subscription on_system(SystemCallback callback);
  // Only the server's "Too many changes" signal: the changes of `overflow.table` in one
  // transaction went over the server's limit and were not all delivered; refetch that table.
  // Takes effect at once (no rejoin needed).
  core::Subscription on_changes_overflow(ChangesOverflowCallback callback);
  // Status listeners besides the one given to subscribe().
  core::Subscription on_status(StatusCallback callback);
  // Called with the outcome of each successful join, before its SUBSCRIBED status.
  core::Subscription on_join_outcome(std::function<void(const JoinOutcome&)> callback);
  // The outcome of the last successful join; unset before the first.
  const std::optional<JoinOutcome>& last_join_outcome() const noexcept;
  // The channel's stream position now (see above); unset until the server gave one.
  const std::optional<StreamPosition>& position() const noexcept;
  // Changes of a resume replay still expected (0 when not replaying).
  std::int64_t replay_remaining() const noexcept;
  // Presence events (see above). Registered before subscribe(), they enable presence for the
  // join; registered later, they take effect at the next join if presence was off.
  core::Subscription on_presence_sync(std::function<void()> callback);
  core::Subscription on_presence_join(std::function<void(const PresenceJoin&)> callback);
  core::Subscription on_presence_leave(std::function<void(const PresenceLeave&)> callback);
  // Key → presences ("presence_ref" plus the tracked payload), as realtime-js's presenceState().
  PresenceMap presence_state() const;

  // Joins (once per channel instance; a second call fails with invalid_argument, as does a call
  // after the socket is gone, or replay options on a public channel). Connects the socket if it is
  // closed and not already retrying.
  Result<void> subscribe(StatusCallback callback = {},
                         std::optional<core::Duration> timeout = std::nullopt);
  // Sends phx_leave; CLOSED follows on the leave reply or its timeout (at once when the socket is
  // not open or the channel is not joined). Idempotent.
  void unsubscribe();

  // Pushes event "broadcast" with payload {"type":"broadcast","event":…,"payload":…} as a JSON
  // text frame. With config broadcast.ack the result follows the server's reply (ok / error /
  // timeout); without it the result is ok once the frame is handed to the transport. While the
  // channel is joining or errored the push waits in a bounded buffer (socket option
  // send_buffer_limit, oldest dropped with an error result) and goes out when the channel joins;
  // on a channel that is closed or leaving it fails at once.
  void send_broadcast(std::string event, json::value payload, PushCallback done = {});

  // Pushes {"type":"presence","event":"track","payload":payload} / {…"event":"untrack"} and
  // reports the server's reply (ok, error with the server's response, timeout). Buffered while
  // joining like send_broadcast; fails at once on a closed or leaving channel.
  void track(json::object payload, PushCallback done = {});
  void untrack(PushCallback done = {});

  // {topic, state, join_ref, bindings, events_dispatched, system_messages, changes_overflows,
  //  position, resumes, gaps, replayed, duplicates_dropped, last_join_outcome, …}
  json::value diagnostics() const;

  // Construction is reserved to the socket (RealtimeSocket::channel).
  class Passkey {
    friend class detail::SocketCore;
    Passkey() = default;
  };
  // Used by the socket only: the Passkey cannot be made elsewhere.
  RealtimeChannel(const Passkey&, std::string name, ChannelOptions options,
                  std::weak_ptr<detail::SocketCore> socket);

 private:
  friend class detail::SocketCore;
  friend struct detail::ChannelImpl;
  std::unique_ptr<detail::ChannelImpl> impl_;
};

}  // namespace rtsync::client
