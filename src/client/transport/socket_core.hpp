// The socket's state machine, shared (through weak_ptr) with its channels and the transport's
// callbacks so that neither outlives it by accident. The public RealtimeSocket is a thin owner.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "rtsync/client/transport/realtime_channel.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/backoff.hpp"
#include "rtsync/core/listener_list.hpp"
#include "rtsync/protocol/frame_reader.hpp"
#include "rtsync/protocol/message.hpp"

namespace rtsync::client::detail {

class SocketCore : public std::enable_shared_from_this<SocketCore> {
 public:
  SocketCore(core::Scheduler& scheduler, std::unique_ptr<Transport> transport,
             SocketOptions options);
  ~SocketCore();

  // Hooks the transport's callbacks (needs shared_from_this, so not in the constructor).
  void init();
  // The owner is going away: cancel everything, close, and call nothing any more.
  void shutdown();

  // ---- public operations (RealtimeSocket forwards here) ----
  void connect();
  void disconnect(int code, std::string reason);
  std::shared_ptr<RealtimeChannel> channel(std::string_view name, ChannelOptions options);
  void remove_channel(const std::shared_ptr<RealtimeChannel>& channel);
  void set_auth(std::optional<std::string> token);
  std::string push(std::string topic, std::string event, json::value payload, PushCallback done,
                   std::optional<core::Duration> timeout);
  json::value diagnostics() const;

  // ---- for channels ----
  std::string make_ref() { return std::to_string(++ref_counter_); }
  bool is_open() const noexcept { return state_ == ConnectionState::open; }
  // Connects unless open, connecting, or waiting for a scheduled reconnect.
  void ensure_connecting();
  // Encodes and hands one frame to the transport (the socket must be open).
  void send_now(const protocol::Message& message);
  // Waits for the phx_reply to `ref` for at most `timeout`; `done` runs exactly once unless
  // cancel_reply() comes first.
  void expect_reply(const std::string& ref, std::string topic, core::Duration timeout,
                    PushCallback done);
  void cancel_reply(const std::string& ref);
  // A channel reached CLOSED: stop routing to it.
  void forget_channel(const RealtimeChannel* channel);
  // A user callback may take out the very channel (or binding list) that is calling it. While an
  // inbound frame is being dispatched, what is taken out is parked here instead of destroyed, so
  // the dispatch can use plain pointers rather than a reference count per frame; the outermost
  // dispatch releases it. Outside a dispatch `keep` is released at once.
  void retire(std::shared_ptr<void> keep);
  bool dispatching() const noexcept { return dispatch_depth_ > 0; }

  core::Scheduler& scheduler() noexcept { return scheduler_; }
  core::Jitter& rejoin_jitter() noexcept { return rejoin_jitter_; }
  SocketCounters& counters() noexcept { return counters_; }
  bool shut_down() const noexcept { return shut_down_; }

  // ---- state ----
  const SocketOptions options;
  const std::string endpoint;
  ConnectionState state() const noexcept { return state_; }
  const std::optional<std::string>& access_token() const noexcept { return access_token_; }
  std::vector<std::shared_ptr<RealtimeChannel>> channels() const { return channels_; }

  // The epoch of the server's change stream (docs/resume.md), from the last join or heartbeat
  // reply that carried one; a channel sends no resume request for a position of another epoch.
  const std::optional<std::string>& server_epoch() const noexcept { return server_epoch_; }
  void set_server_epoch(const std::string& epoch) { server_epoch_ = epoch; }

  core::ListenerList<const SocketStateChange&> state_listeners{loggers::kTransport, "callback"};
  core::ListenerList<const SocketError&> error_listeners{loggers::kTransport, "callback"};
  core::ListenerList<HeartbeatStatus, std::optional<core::Duration>> heartbeat_listeners{
      loggers::kTransport, "callback"};

 private:
  struct PendingReply {
    std::string topic;
    PushCallback done;
    core::Timer timer;
  };

  // Transport events.
  void on_open();
  void on_message(std::string_view data, bool binary);
  void receive(std::string_view data, bool binary);
  void on_close(int code, std::string_view reason);
  void on_error(const TransportFailure& failure);

  void start_attempt();
  void schedule_reconnect();
  // The connection ended without the user asking: channels error, reconnect is scheduled.
  void connection_lost(ConnectionState previous, int close_code, std::string reason,
                       Error channel_error);
  void notify_state(ConnectionState previous, int close_code = 0, std::string reason = {},
                    bool reconnected = false);
  void start_heartbeat();
  void heartbeat_tick();
  void route(protocol::Message message);
  // The fast path for postgres_changes text frames (FrameReader); false: take the DOM path.
  bool route_change_frame(std::string_view data);
  void handle_reply(protocol::Message& message);
  void flush_send_buffer();
  void resolve(const std::string& ref, const PushResult& result);

  core::Scheduler& scheduler_;
  std::unique_ptr<Transport> transport_;
  const bool read_in_place_;  // the transport pads its messages enough for reader_
  ConnectionState state_ = ConnectionState::closed;
  bool shut_down_ = false;
  bool manual_close_ = false;
  bool ever_opened_ = false;
  std::uint64_t ref_counter_ = 0;

  core::Jitter reconnect_jitter_;
  core::Jitter rejoin_jitter_;
  core::Timer reconnect_timer_;
  std::uint32_t reconnect_attempt_ = 0;

  core::Timer heartbeat_timer_;
  std::optional<std::string> pending_heartbeat_;
  core::TimePoint heartbeat_sent_at_{};
  std::optional<core::Duration> last_heartbeat_latency_;

  std::unordered_map<std::string, PendingReply> pending_;
  std::deque<protocol::Message> send_buffer_;
  std::vector<std::shared_ptr<RealtimeChannel>> channels_;
  std::optional<std::string> access_token_;
  std::optional<std::string> server_epoch_;
  SocketCounters counters_;
  std::string last_close_reason_;
  protocol::FrameReader reader_;  // reused for every inbound text frame
  int dispatch_depth_ = 0;
  std::vector<std::shared_ptr<void>> retired_;
};

}  // namespace rtsync::client::detail
