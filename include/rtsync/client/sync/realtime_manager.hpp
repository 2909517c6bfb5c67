// RealtimeManager — the seed's SimpleRealtimeManager: one channel per project, its events on the
// EventBus, its status in the FreshnessTracker and the realtime snapshot, and the heal cycle.
//
// join_project(id):
//   1. Auth check from the cached session (AuthSession::get_session, no I/O). No session (or an
//      empty access token) → freshness `error` "No valid session", returns false; the current
//      project and channel are left as they were.
//   2. socket.set_auth(token).
//   3. Leaves the current channel, if any (freshness `disconnected` "Channel unsubscribed").
//   4. One channel "task-updates:<id>" (topic "realtime:task-updates:<id>") with broadcast
//      `task-update` and postgres_changes INSERT and UPDATE on public.tasks filtered
//      `project_id=eq.<id>`, registered before subscribing.
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
//                               follows the channel's real state, DESIGN.md)
// leave() → snapshot `closed`, freshness `disconnected` "Channel unsubscribed" (only when a channel
// existed), no project, attempts 0, every timer cleared.
//
// Events: INSERT → `realtime:task-new`; UPDATE and the broadcast `task-update` →
// `realtime:task-update`; the detail is the payload as the transport delivers it (the
// realtime-js change shape / broadcast message). Each event first stamps the snapshot
// (channelState `joined`, lastEventAt) and reports to the FreshnessTracker for
// ['tasks'], ['task-status-counts'], ['unified-generations'], ['tasks','paginated',<id>].
//
// Changes overflow. The channel's "Too many changes" signal (RealtimeChannel::on_changes_overflow:
// one transaction changed more rows of a table than the server sends one by one) → log warn and
// `realtime:changes-overflow` with detail {"schema","table","limit" (null when unknown),
// "projectId"}: the changes of that table are incomplete, whoever shows it refetches. It counts
// as realtime activity like a change event (snapshot lastEventAt) and, for the table the manager
// binds (options.schema/table), stamps the same four FreshnessTracker keys; a table it does not
// bind touches no keys. Counted in status_json's "overflows" (not in "events").
//
// Heal (listens for `realtime:auth-heal`): with a project and no subscription, starts a heal cycle
// unless one is running or a join is still waiting for its first status (its guard decides): at
// most 3 attempts (re-joins), 1 s, 2 s, 4 s after the heal / previous failure, whatever the failure
// (DESIGN.md decision; the seed's endless loop is not reproduced). Success ends the cycle. After
// the third failure realtime stays `error` ("Reconnect attempts exhausted", polling at 5 s) until
// the next heal intent starts a new cycle. Every timer (join guard, heal retry) is a member Timer:
// leave, destroy and success clear them.
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
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/observable.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::sync {

inline constexpr std::string_view kTaskUpdateEvent = "realtime:task-update";
inline constexpr std::string_view kTaskNewEvent = "realtime:task-new";
inline constexpr std::string_view kChangesOverflowEvent = "realtime:changes-overflow";

struct RealtimeManagerOptions {
  core::Duration join_timeout = std::chrono::seconds(10);
  std::uint32_t max_heal_attempts = 3;
  core::Duration heal_base_delay = std::chrono::seconds(1);  // 1 s, 2 s, 4 s …
  core::Duration heal_max_delay = std::chrono::seconds(10);
  std::string schema = "public";
  std::string table = "tasks";
  std::string broadcast_event = "task-update";
};

// getStatus(): {isSubscribed, projectId, channelState, reconnectAttempts}
struct RealtimeManagerStatus {
  bool subscribed = false;
  std::optional<std::string> project_id;
  std::string channel_state = "closed";  // the channel's state, "closed" without one
  std::uint32_t reconnect_attempts = 0;
};

// window.__REALTIME_SNAPSHOT__ (wall-clock epoch ms).
struct RealtimeSnapshot {
  std::string channel_state = "closed";  // joined | error | closed
  std::optional<std::int64_t> last_event_at;
  std::int64_t timestamp = 0;
  std::optional<std::int64_t> last_message_at;  // from a MessageClock, when one is attached
};

// What the provider needs to follow the channel's real state.
enum class ChannelPhase : std::uint8_t { joining, subscribed, error, closed, left };
std::string_view to_string(ChannelPhase phase) noexcept;
struct ChannelPhaseChange {
  ChannelPhase phase = ChannelPhase::left;
  std::string project_id;
  std::string reason;
};

// Time of the last frame received on the socket: the seed's lastPhoenixMsgAt instrumentation.
// Fed by `instrument_transport` (a Transport decorator), read by the manager's snapshot.
class MessageClock {
 public:
  explicit MessageClock(const core::Scheduler& scheduler) : scheduler_(scheduler) {}
  void stamp() {
    last_ = scheduler_.wall_ms();
    ++messages_;
  }
  std::optional<std::int64_t> last() const noexcept { return last_; }
  std::uint64_t messages() const noexcept { return messages_; }

 private:
  const core::Scheduler& scheduler_;
  std::optional<std::int64_t> last_;
  std::uint64_t messages_ = 0;
};

// Wraps `inner` so every received frame stamps `clock` before the socket sees it. The clock must
// outlive the transport.
std::unique_ptr<Transport> instrument_transport(std::unique_ptr<Transport> inner,
                                                MessageClock& clock);

class RealtimeManager {
 public:
  using JoinCallback = std::function<void(bool joined)>;

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
  void leave();
  // Heal attempts back to 0 and the pending retry cleared (the seed's reset()).
  void reset();

  RealtimeManagerStatus status() const;
  const RealtimeSnapshot& snapshot() const noexcept { return snapshot_; }
  bool subscribed() const noexcept { return subscribed_; }
  const std::optional<std::string>& project_id() const noexcept { return project_id_; }
  std::uint32_t reconnect_attempts() const noexcept { return attempts_; }
  // A heal cycle is running: a retry is scheduled or a heal join is in flight.
  bool healing() const noexcept;

  // Every phase of the current channel, and `left` on leave.
  core::Subscription on_phase(std::function<void(const ChannelPhaseChange&)> listener);

  // {channelState, lastEventAt, timestamp, lastMessageAt}
  json::value snapshot_json() const;
  // {isSubscribed, projectId, channelState, reconnectAttempts, healing, events, overflows}
  json::value status_json() const;
  std::uint64_t events_received() const noexcept { return events_; }
  std::uint64_t overflows_received() const noexcept { return overflows_; }
  // The payload of the task event (change or broadcast; not an overflow) being (or last) emitted,
  // shared: a bus handler that wants to keep the
  // detail (the provider's lastTaskUpdate) checks `&detail == last_event_payload().get()` and
  // shares it instead of copying. Each payload is copied once out of the transport's frame into
  // its own arena (one allocation block instead of one per string).
  const std::shared_ptr<const json::value>& last_event_payload() const noexcept {
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
  void announce(ChannelPhase phase, std::string reason);

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
  std::shared_ptr<const json::value> last_payload_;
  RealtimeSnapshot snapshot_;
  ListenerList<const ChannelPhaseChange&> phase_listeners_;
  core::Timer heal_timer_;
  core::Subscription heal_sub_;
};

// Keeps the socket's token in step with the session: SIGNED_IN / TOKEN_REFRESHED →
// set_auth(token), SIGNED_OUT → set_auth(nullopt) (the seed's AuthStateManager).
core::Subscription bind_socket_auth(AuthSession& auth, RealtimeSocket& socket);

class ReconnectTriggers;
// Tells `triggers` when the socket opens again after a drop (SocketStateChange::reconnected).
core::Subscription bind_socket_reconnects(RealtimeSocket& socket, ReconnectTriggers& triggers);

}  // namespace rtsync::client::sync
