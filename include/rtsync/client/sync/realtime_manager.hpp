// RealtimeManager — the seed's SimpleRealtimeManager (docs/original-app.md §2), generic over a
// SyncBinding (binding.hpp): one channel per scope (the task app's project, a chat app's room), its
// events on the EventBus, its status in the FreshnessTracker and the realtime snapshot, and the
// heal cycle. The examples below name the task app's binding (client::domain::task_binding()).
//
// join_project(id) (`id` is the scope):
//   1. Auth check from the cached session (AuthSession::get_session, no I/O). No session (or an
//      empty access token) → freshness `error` "No valid session", returns false; the current
//      scope and channel are left as they were.
//   2. socket.set_auth(token).
//   3. Leaves the current channel, if any (freshness `disconnected` "Channel unsubscribed").
//   4. One channel `binding.channel_name(id)` (task app: "task-updates:<id>", topic
//      "realtime:task-updates:<id>") with the binding's broadcasts, then its postgres_changes specs
//      in order (task app: broadcast `task-update`, INSERT and UPDATE on public.tasks filtered
//      `project_id=eq.<id>`), registered before subscribing; a private channel when
//      binding.private_channel (task app with TaskSource::broadcast: "project:<id>").
//   5. Subscribes; the outcome goes to `done(bool)` once: true on SUBSCRIBED; false on
//      CHANNEL_ERROR / TIMED_OUT / CLOSED, when the 10 s join guard expires first (no snapshot or
//      freshness change for that), or when the join is abandoned (leave, another join, destroy).
//   A public join_project ends any heal cycle in progress.
//
// Status mapping, for every status of the current channel (the transport rejoins by itself, so
// statuses keep coming after the first):
//   SUBSCRIBED                → subscribed, heal cycle over (attempts 0, timer cleared), snapshot
//                               `joined`, freshness `connected` "Supabase subscription successful"
//   CHANNEL_ERROR / TIMED_OUT → not subscribed, snapshot `error`, freshness `error`
//                               "Subscription failed: <STATUS>[: <reason>]"
//   CLOSED (server phx_close) → not subscribed, snapshot `closed`, freshness `disconnected`
//                               "Channel closed by server" (the seed ignores CLOSED; rtsync
//                               follows the channel's real state, docs/original-app.md §8)
// leave() → snapshot `closed`, freshness `disconnected` "Channel unsubscribed" (only when a channel
// existed), no scope, attempts 0, every timer cleared.
//
// Resumable streams (docs/resume.md). The channel keeps its stream position across its own
// rejoins; when the manager replaces the channel of a scope (a heal, a join of the same scope
// again) the new channel starts from the old one's position (ChannelOptions::resume_from), so
// its first join resumes too. Every SUBSCRIBED carries the join's outcome in the phase change
// (ChannelPhaseChange::outcome): `resumed` (the server replays what was missed: nothing to
// refetch, and the freshness keys count as fresh — mark_queries_fresh), `gap` (refetch what the
// channel feeds: a told gap, a server without rtsync such as Supabase, a replaced channel that
// had no position), or `fresh` (the scope's first subscription). Counted in status_json
// ("resumes", "gaps", "replayed") beside the channel's position.
//
// Events: each change of a spec → the spec's `bus_event`, each broadcast → its `bus_event` (task
// app: INSERT → `realtime:task-new`; UPDATE and the broadcast `task-update` →
// `realtime:task-update`); the detail is the payload as the transport delivers it (the
// realtime-js change shape / broadcast message). Each event first stamps the snapshot
// (channelState `joined`, lastEventAt) and reports to the FreshnessTracker for the binding's
// freshness_keys(scope) (task app: ['tasks'], ['task-status-counts'], ['unified-generations'],
// ['tasks','paginated',<id>]).
//
// Changes overflow. The channel's "Too many changes" signal (RealtimeChannel::on_changes_overflow:
// one transaction changed more rows of a table than the server sends one by one) → log warn and
// `realtime:changes-overflow` with detail {"schema","table","limit" (null when unknown),
// <binding.scope_name>: scope} (task app: "projectId"): the changes of that table are incomplete,
// whoever shows it refetches. It counts as realtime activity like a change event (snapshot
// lastEventAt) and, for a table one of the binding's change specs reads, stamps the same
// FreshnessTracker keys; a table it does not bind touches no keys. Counted in status_json's
// "overflows" (not in "events").
//
// Presence (optional; docs/presence.md). `set_presence(key, payload)` makes the application one
// presence on its scope's channel: from the next join on, the channel joins with presence enabled
// under `key` (config.presence.key; "" lets the server pick one per join) and `payload` is tracked
// on every SUBSCRIBED — the first and every rejoin, because the server forgets a channel's
// presence with its join and the transport, like realtime-js, does not re-track by itself. Called
// while subscribed, it tracks `payload` at once (the key applies from the next join).
// `clear_presence()` untracks and stops tracking. Presence listeners (`on_presence`) registered
// before a join enable presence for it too, without tracking. Listeners get the channel's state
// (RealtimeChannel::presence_state(): key → presences) after each presence_state / presence_diff
// applied, and an empty state when the channel is left (a scope change, leave()). A track the
// server refuses is logged (warn) and retried at the next SUBSCRIBED.
//
// Heal (listens for `realtime:auth-heal`): with a scope and no subscription, starts a heal cycle
// unless one is running, a join is still waiting for its first status (its guard decides), or the
// channel's own rejoin is waiting for its reply on an open socket (its outcome decides; a heal
// that replaced the channel then would discard that join and the replay it carries): at
// most 3 attempts (re-joins), 1 s, 2 s, 4 s after the heal / previous failure, whatever the failure
// (docs/original-app.md §8; the seed's endless loop is not reproduced). Success ends the cycle.
// After the third failure realtime stays `error` with the reason "Reconnect attempts exhausted" (it
// replaces the last failure's reason, e.g. "No valid session"; polling at 5 s) until the next heal
// intent starts a new cycle. Every timer (join guard, heal retry) is a member Timer: leave,
// destroy and success clear them.
//
// Thread safety: loop-confined (checked in debug builds, rtsync/core/loop_check.hpp). The socket,
// session, tracker and bus must outlive the manager.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/client/sync/auth_session.hpp"
#include "rtsync/client/sync/binding.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/listener_list.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::sync {

/// The EventBus event of the server's "Too many changes" signal (detail: see the file comment).
inline constexpr std::string_view kChangesOverflowEvent = "realtime:changes-overflow";

// The manager's timings and the table and broadcast it binds.
struct RealtimeManagerOptions {
  core::Duration join_timeout = std::chrono::seconds(10);    // the join guard
  std::uint32_t max_heal_attempts = 3;                       // re-joins per heal cycle
  core::Duration heal_base_delay = std::chrono::seconds(1);  // 1 s, 2 s, 4 s …
  core::Duration heal_max_delay = std::chrono::seconds(10);  // cap of the heal delay
  // What to join and emit (binding.hpp). The provider on this manager invalidates by the same
  // binding, so the two cannot disagree.
  SyncBinding binding;
};

// getStatus(): {isSubscribed, projectId, channelState, reconnectAttempts}
struct RealtimeManagerStatus {
  bool subscribed = false;                // the channel is SUBSCRIBED
  std::optional<std::string> project_id;  // the project joined or joining
  std::string channel_state = "closed";   // the channel's state, "closed" without one
  std::uint32_t reconnect_attempts = 0;   // heal attempts in the current cycle
};

// window.__REALTIME_SNAPSHOT__ (wall-clock epoch ms).
struct RealtimeSnapshot {
  std::string channel_state = "closed";         // joined | error | closed
  std::optional<std::int64_t> last_event_at;    // the last event or overflow
  std::int64_t timestamp = 0;                   // the last change of the snapshot
  std::optional<std::int64_t> last_message_at;  // from a MessageClock, when one is attached
};

// What the provider needs to follow the channel's real state.
enum class ChannelPhase : std::uint8_t { joining, subscribed, error, closed, left };
std::string_view to_string(ChannelPhase phase) noexcept;  // "joining", "subscribed", …
// One phase change, as on_phase listeners receive it.
struct ChannelPhaseChange {
  ChannelPhase phase = ChannelPhase::left;  // the new phase
  std::string project_id;                   // the project of the channel
  std::string reason;                       // why (errors, closes); may be empty
  // `subscribed` only: what the join found about the stream (fresh, resumed, gap; see the file
  // comment). A rejoin of the scope is never `fresh`.
  std::optional<JoinOutcome> outcome;
};

// Time of the last frame received on the socket: the seed's lastPhoenixMsgAt instrumentation.
// Fed by `instrument_transport` (a Transport decorator), read by the manager's snapshot.
class MessageClock {
 public:
  // Reads wall time from `scheduler`, which must outlive the clock.
  explicit MessageClock(const core::Scheduler& scheduler) : scheduler_(scheduler) {}
  // Records a frame received now.
  void stamp() {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    last_ = scheduler_.wall_ms();
    ++messages_;
  }
  // Wall ms of the last frame stamped.
  std::optional<std::int64_t> last() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return last_;
  }
  // Frames stamped so far.
  std::uint64_t messages() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return messages_;
  }

 private:
  const core::Scheduler& scheduler_;
  std::optional<std::int64_t> last_;
  std::uint64_t messages_ = 0;
};

// Wraps `inner` so every received frame stamps `clock` before the socket sees it. The clock must
// outlive the transport.
std::unique_ptr<Transport> instrument_transport(std::unique_ptr<Transport> inner,
                                                MessageClock& clock);

// One channel per project and its heal cycle (behaviour and thread safety: the file comment).
class RealtimeManager {
 public:
  // The outcome of a join: true on SUBSCRIBED.
  using JoinCallback = std::function<void(bool joined)>;

  // Listens for heals on `bus`; the socket, session, tracker, bus and (optional) message clock
  // must outlive the manager.
  RealtimeManager(core::Scheduler& scheduler, RealtimeSocket& socket, AuthSession& auth,
                  FreshnessTracker& freshness, core::EventBus& bus,
                  RealtimeManagerOptions options = {}, const MessageClock* message_clock = nullptr);
  // destroy(): stops listening for heals, clears every timer, leaves the channel.
  ~RealtimeManager();
  RealtimeManager(const RealtimeManager&) = delete;
  RealtimeManager& operator=(const RealtimeManager&) = delete;

  // Returns false when the join could not start (auth check failed, empty id, the socket refused
  // the subscription); `done` is then not called. Otherwise `done` runs once, later (never inside
  // this call) — unless the manager is destroyed first.
  bool join_project(std::string_view project_id, JoinCallback done = {});
  // Leaves the channel and forgets the project (see leave() in the file comment).
  void leave();
  // Heal attempts back to 0 and the pending retry cleared (the seed's reset()).
  void reset();

  RealtimeManagerStatus status() const;  // getStatus()
  /// The binding this manager joins by (RealtimeManagerOptions::binding).
  const SyncBinding& binding() const noexcept { return options_.binding; }
  // The snapshot now.
  const RealtimeSnapshot& snapshot() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return snapshot_;
  }
  // The channel is SUBSCRIBED.
  bool subscribed() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return subscribed_;
  }
  // The project joined or joining.
  const std::optional<std::string>& project_id() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return project_id_;
  }
  // Heal attempts in this cycle.
  std::uint32_t reconnect_attempts() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return attempts_;
  }
  // A heal cycle is running: a retry is scheduled or a heal join is in flight.
  bool healing() const noexcept;

  // Every phase of the current channel, and `left` on leave.
  core::Subscription on_phase(std::function<void(const ChannelPhaseChange&)> listener);

  /// Tracks `payload` under `key` on the scope's channel, now if subscribed and after every
  /// SUBSCRIBED (see Presence in the file comment).
  void set_presence(std::string key, json::object payload);
  /// Untracks (when subscribed) and stops tracking; the channel keeps receiving presence until
  /// the next join.
  void clear_presence();
  /// The payload set_presence() tracks, if any.
  const std::optional<json::object>& presence_payload() const noexcept { return presence_payload_; }
  /// The current channel's presence state (key → presences); empty without a channel.
  PresenceMap presence_state() const;
  /// Called with the channel's presence state after each sync, and with an empty one when the
  /// channel is left.
  core::Subscription on_presence(std::function<void(const PresenceMap&)> listener);

  // {channelState, lastEventAt, timestamp, lastMessageAt}
  json::value snapshot_json() const;
  // {isSubscribed, projectId, channelState, reconnectAttempts, healing, events, overflows,
  //  resumes, gaps, replayed, position, lastJoin}
  json::value status_json() const;
  // Change and broadcast events received.
  std::uint64_t events_received() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return events_;
  }
  // Overflows received.
  std::uint64_t overflows_received() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return overflows_;
  }
  // Rejoins that resumed without a gap.
  std::uint64_t resumes() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return resumes_;
  }
  // Rejoins with a gap (told, or a server that does not resume).
  std::uint64_t gaps() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return gaps_;
  }
  // Changes announced as replayed by resumed rejoins, summed.
  std::uint64_t replayed() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return replayed_;
  }
  // The current channel's stream position (the saved one between channels); unset without one.
  std::optional<StreamPosition> position() const;
  // The payload of the event (change or broadcast; not an overflow) being (or last) emitted,
  // shared: a bus handler that wants to keep the detail (the provider's stamped events) checks
  // `&detail == last_event_payload().get()` and shares it instead of copying. Each payload is
  // copied once out of the transport's frame into its own arena (one allocation block instead of
  // one per string).
  const std::shared_ptr<const json::value>& last_event_payload() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return last_payload_;
  }

 private:
  struct Join;
  bool join(std::string_view project_id, bool from_heal, JoinCallback done);
  void leave_channel();
  void on_status(const std::shared_ptr<Join>& join, SubscribeStatus status,
                 const std::optional<Error>& error);
  void on_event(std::string_view type, std::string_view bus_event, const json::value& payload);
  void on_change(std::string_view type, std::string_view bus_event,
                 const RealtimeChannel::ChangeView& change);
  void on_overflow(const RealtimeChannel::ChangesOverflow& overflow);
  void settle(const std::shared_ptr<Join>& join, bool ok);
  void on_heal(const json::value& detail);
  void attempt_reconnect();
  void end_heal_cycle();
  void set_snapshot(std::string_view channel_state);
  void log_auth_state() const;
  void announce(ChannelPhase phase, std::string reason,
                std::optional<JoinOutcome> outcome = std::nullopt);
  void track_presence(const std::shared_ptr<Join>& join);

  core::Scheduler& scheduler_;
  RealtimeSocket& socket_;
  AuthSession& auth_;
  FreshnessTracker& freshness_;
  core::EventBus& bus_;
  RealtimeManagerOptions options_;
  const MessageClock* message_clock_;
  std::shared_ptr<spdlog::logger> log_;

  std::shared_ptr<Join> join_;  // the current channel and its bindings
  std::optional<std::string> project_id_;
  bool subscribed_ = false;
  std::uint32_t attempts_ = 0;
  bool heal_in_flight_ = false;
  bool destroying_ = false;
  std::uint64_t events_ = 0;
  std::uint64_t overflows_ = 0;
  std::uint64_t resumes_ = 0;
  std::uint64_t gaps_ = 0;
  std::uint64_t replayed_ = 0;
  std::optional<JoinOutcome> last_outcome_;
  // The position of the last channel left, with its scope: the next channel of that scope
  // starts from it.
  std::optional<std::pair<std::string, StreamPosition>> saved_position_;
  // The scope last SUBSCRIBED: a later subscription of it is a rejoin.
  std::optional<std::string> subscribed_scope_;
  std::shared_ptr<const json::value> last_payload_;
  RealtimeSnapshot snapshot_;
  core::ListenerList<const ChannelPhaseChange&> phase_listeners_;
  std::string presence_key_;
  std::optional<json::object> presence_payload_;
  core::ListenerList<const PresenceMap&> presence_listeners_;
  core::Timer heal_timer_;
  core::Subscription heal_sub_;
};

// `position` as {"epoch","lsn","index"}, or null.
json::value position_json(const std::optional<StreamPosition>& position);
// {"kind","replayed","reason" (null unless a gap),"from" (position or null)}, or null.
json::value outcome_json(const std::optional<JoinOutcome>& outcome);

// Keeps the socket's token in step with the session: SIGNED_IN / TOKEN_REFRESHED →
// set_auth(token), SIGNED_OUT → set_auth(nullopt) (the seed's AuthStateManager).
core::Subscription bind_socket_auth(AuthSession& auth, RealtimeSocket& socket);

// Tells the session whenever the socket opens (AuthSession::network_answered): a token refresh
// that failed while the network was down is retried as soon as the socket is back.
core::Subscription bind_socket_answers(RealtimeSocket& socket, AuthSession& auth);

class ReconnectTriggers;
// Tells `triggers` when the socket opens again after a drop (SocketStateChange::reconnected).
core::Subscription bind_socket_reconnects(RealtimeSocket& socket, ReconnectTriggers& triggers);

}  // namespace rtsync::client::sync
