// RealtimeChannel's state and the hooks its socket drives (open/close, routed frames, token
// pushes). Internal.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/client/transport/names.hpp"
#include "rtsync/client/transport/realtime_channel.hpp"
#include "rtsync/core/listener_list.hpp"
#include "rtsync/protocol/frame_reader.hpp"
#include "rtsync/protocol/message.hpp"

namespace rtsync::client::detail {

class SocketCore;

struct BroadcastBinding {
  std::string event;  // as given; "*" matches all
  RealtimeChannel::BroadcastCallback callback;
};

struct ChangeBinding {
  PostgresChangesFilter filter;
  RealtimeChannel::ChangeCallback callback;
  std::optional<std::int64_t> id;  // from the current join's reply
};

using ChangeEntry = core::BasicListenerList<ChangeBinding>::Entry;

struct BufferedPush {
  std::string event;  // "broadcast" | "presence"
  json::value payload;
  PushCallback done;
  core::Timer timer;
};

struct ChannelImpl {
  ChannelImpl(RealtimeChannel& owner, std::string name, ChannelOptions options,
              std::weak_ptr<SocketCore> socket);

  // ---- driven by the socket ----
  void on_socket_open();
  void on_socket_closed(const Error& reason);
  void handle(const protocol::Message& message);
  // A postgres_changes text frame already read by `reader` (`text` is the frame itself, for the
  // DOM path when the reader declines). The caller (the socket, while it delivers the frame) keeps
  // itself and this channel alive for the call: callbacks may drop either.
  void handle_change_frame(SocketCore& socket, const protocol::FrameHead& head,
                           protocol::FrameReader& reader, std::string_view text);
  void push_access_token(const std::string& token);
  // The socket's access token changed (to a token): an errored channel waiting for its rejoin
  // backoff rejoins now.
  void on_access_token_changed();
  // A heartbeat reply's stream position: raises this channel's position when it is joined, not
  // replaying, and of the same epoch.
  void on_stream_head(const protocol::StreamPosition& head);
  // The socket is going away: cancel everything, call nothing (a dispatch running now included).
  void detach();

  // ---- driven by the public API ----
  Result<void> subscribe(RealtimeChannel::StatusCallback callback,
                         std::optional<core::Duration> timeout);
  void unsubscribe();
  void send_broadcast(std::string event, json::value payload, PushCallback done);
  // A channel push (event "broadcast" or "presence"), now or after the join.
  void send_push(std::string event, json::value payload, PushCallback done);
  json::value diagnostics() const;

  // ---- internals ----
  core::Duration timeout() const;
  void send_join();
  void on_join_reply(const std::string& ref, const PushResult& result);
  // The next rejoin: after the rejoin backoff's next step, or `at_once` (a new access token).
  void schedule_rejoin(bool at_once = false);
  // The failed join carried another token than the socket has now.
  bool token_changed_since_join() const;
  void finish_close(std::optional<Error> reason);
  void send_leave_and_forget();
  void send_push_now(SocketCore& socket, const std::string& event, json::value payload,
                     PushCallback done);
  PresenceSync::Events presence_events();
  void flush_buffer();
  void fail_buffer(std::string_view reason);
  void notify(SubscribeStatus status, std::optional<Error> error);
  void dispatch_broadcast(const json::value& payload);
  void dispatch_changes(const json::value& payload);
  // Calls every binding of the current join that asked for ids/type; `make_view()` builds the
  // change's view the first time one does.
  template <class MakeView>
  void deliver_change(const std::vector<std::int64_t>& ids, std::string_view type,
                      MakeView&& make_view);
  void dispatch_system(const json::value& payload);
  // Bookkeeping of one received change's position: false when it is a duplicate (at or before
  // the channel's position) and must not be delivered.
  bool accept_position(const std::optional<protocol::StreamPosition>& position);
  // A positioned change that arrived while the channel is not joined (a frame of a join it does
  // not have: a replaced channel's replay): true when it must be dropped, position untouched.
  bool unjoined_change(const std::optional<protocol::StreamPosition>& position);
  // The resume replay is over: the position is at least the reply's head.
  void finish_replay();
  // The outcome of the join answered with `response` (a successful reply).
  JoinOutcome join_outcome(const json::value& response);
  std::shared_ptr<RealtimeChannel> keep_alive() const { return owner.shared_from_this(); }

  RealtimeChannel& owner;
  std::weak_ptr<SocketCore> socket;
  const std::string name;
  const std::string topic;
  const ChannelOptions options;

  ChannelState state = ChannelState::closed;
  bool subscribed_once = false;
  bool detached = false;
  std::optional<core::Duration> join_timeout;
  std::optional<std::string> join_ref;
  std::optional<std::string> join_push_ref;  // the join awaiting its reply
  std::optional<std::string> join_token;     // the access token the last join carried
  std::optional<std::string> leave_ref;      // the leave awaiting its reply
  std::optional<Error> close_reason;         // the last system error, reported with CLOSED

  core::BasicListenerList<BroadcastBinding> broadcasts;
  core::BasicListenerList<ChangeBinding> changes;
  core::ListenerList<const json::value&> systems{loggers::kChannel, "callback"};
  core::ListenerList<const protocol::ChangesOverflow&> overflows{loggers::kChannel, "callback"};
  // The change bindings of the current join, in the order sent; entries removed since are skipped.
  std::vector<std::shared_ptr<ChangeEntry>> joined_changes;
  core::ListenerList<SubscribeStatus, std::optional<Error>> status_listeners{loggers::kChannel,
                                                                             "callback"};
  PresenceSync presence;
  core::ListenerList<> presence_sync{loggers::kChannel, "callback"};
  core::ListenerList<const PresenceJoin&> presence_joins{loggers::kChannel, "callback"};
  core::ListenerList<const PresenceLeave&> presence_leaves{loggers::kChannel, "callback"};
  core::Subscription subscribe_callback;

  core::Timer rejoin_timer;
  std::uint32_t rejoin_attempt = 0;
  std::deque<std::shared_ptr<BufferedPush>> buffer;

  // ---- resumable streams (docs/resume.md) ----
  std::optional<protocol::StreamPosition> position;     // the last applied (or head)
  std::optional<protocol::StreamPosition> resume_sent;  // with the join in flight / current
  std::optional<protocol::StreamPosition> replay_head;  // the head a running replay ends at
  std::int64_t replay_remaining = 0;
  bool joined_once = false;  // a join of this instance succeeded: later joins are rejoins
  std::optional<JoinOutcome> last_outcome;
  core::ListenerList<const JoinOutcome&> outcome_listeners{loggers::kChannel, "callback"};
  std::uint64_t resumes = 0;
  std::uint64_t gaps = 0;
  std::uint64_t replayed_total = 0;
  std::uint64_t duplicates_dropped = 0;

  std::uint64_t joins_sent = 0;
  std::uint64_t broadcasts_dispatched = 0;
  std::uint64_t changes_dispatched = 0;
  std::uint64_t system_messages = 0;
  std::uint64_t changes_overflows = 0;
};

}  // namespace rtsync::client::detail
