// The client side of a Supabase Realtime WebSocket connection (docs/protocol.md §1–§3):
// URL and wire version, refs, heartbeats, push replies and timeouts, the send buffer, reconnects,
// token refresh, and routing frames to its channels.
//
// Behaviour:
//   - Endpoint: `<url>/realtime/v1/websocket?apikey=<key>&vsn=<1.0.0|2.0.0>[&<params>]`, where
//     `url` is an http(s):// or ws(s):// base (http→ws, https→wss). A base whose path already ends
//     in "/websocket" (self-hosted "/socket/websocket") is used as is.
//   - Refs: decimal strings from one counter starting at "1" (heartbeats, joins, pushes).
//   - Heartbeat: topic "phoenix", event "heartbeat", every `heartbeat_interval` from the moment
//     the socket opens (a fixed cadence). A heartbeat still unanswered when the next one is due is
//     a timeout: status `timeout`, the connection is closed with 1000 "heartbeat timeout", channels
//     report CHANNEL_ERROR, and the socket reconnects. Statuses: sent, ok (with latency), error
//     (the reply was an error), timeout.
//   - Pushes carry a timeout (`push_timeout`, 10 s) and resolve exactly once: ok / error / timeout.
//     Pushes made while the socket is not open wait in a send buffer (`send_buffer_limit`; when
//     full the oldest is dropped, counted, and resolved as error {"reason":"send buffer full"}),
//     flushed in order on open. Their timeout runs from the push.
//   - Reconnect: after any close or failed attempt the socket did not ask for, attempt n waits
//     uniform[0, min(cap, base·2^(n-1))) (full jitter; by default base 0.5 s, cap 2 s: 0–0.5 s,
//     0–1 s, then 0–2 s) and never gives up until `disconnect()`. The attempt counter resets when
//     a connection opens. After a reconnect every errored channel rejoins. The low cap is chosen:
//     once the network or the server is back, the next attempt is at most 2 s away, where a
//     schedule growing to 10 s (realtime-js: 1, 2, 5, 10 s) or 30 s leaves the data that long
//     stale; the price is about one handshake attempt a second per client while an outage lasts
//     (a failed TCP connect or a refused upgrade: cheap for a server). The jitter spreads clients
//     that lost the same server over the window instead of returning together.
//     `SocketOptions::reconnect_backoff` changes it (docs/user-guide.md §2.6).
//   - Access token: set_auth() with a new token pushes it to every joined channel, and an
//     errored channel waiting for its rejoin backoff rejoins at once with it
//     (realtime_channel.hpp).
//   - Messages (after reassembly of fragments) larger than `max_frame_bytes` (8 MiB) close the
//     connection with 1009 and reconnect; WebSocket framing violations by the server close it
//     with 1002 (protocol error) or 1007 (text that is not UTF-8) and reconnect.
//   - A refused upgrade is reported to `on_error` with the HTTP status and the server's JSON
//     "error" text ("HTTP 401: API key is missing").
//   - Bad input (malformed JSON, unknown events, binary frames of unknown kind or short) is logged
//     ([RealtimeSocket]) and counted; the connection stays up.
//
// Thread safety: loop-confined (checked in debug builds, rtsync/core/loop_check.hpp). Construct,
// call and destroy on the loop that runs the scheduler
// and the transport (for EventLoop users: inside `loop.post(...)`/`run_sync(...)`). Callbacks run
// on the loop. Listener Subscriptions may be removed from inside callbacks and may outlive the
// socket. Do not destroy the socket from inside one of its own callbacks; post the destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/client/transport/push.hpp"
#include "rtsync/client/transport/realtime_channel.hpp"
#include "rtsync/client/transport/transport.hpp"
#include "rtsync/core/backoff.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/core/subscription.hpp"
#include "rtsync/protocol/close_codes.hpp"
#include "rtsync/protocol/message.hpp"

namespace rtsync::client {

// The socket's connection: an attempt in progress, open, closing, closed (also between attempts).
enum class ConnectionState { connecting, open, closing, closed };
std::string_view to_string(ConnectionState state) noexcept;  // "connecting" | "open" | …

// What happened to a heartbeat (see the file comment).
enum class HeartbeatStatus { sent, ok, error, timeout };
std::string_view to_string(HeartbeatStatus status) noexcept;  // "sent" | "ok" | "error" | "timeout"

// Settings of a RealtimeSocket; the defaults are realtime-js's where it has one.
struct SocketOptions {
  std::string url;      // https://<ref>.supabase.co, http://127.0.0.1:54321, wss://…
  std::string api_key;  // sent as ?apikey=
  protocol::Vsn vsn = protocol::Vsn::v2;  // wire format: vsn 1.0.0 (JSON objects) or 2.0.0
  // Extra query parameters (e.g. {"log_level","info"}).
  std::vector<std::pair<std::string, std::string>> params;
  // Initial access token (user JWT) for joins; set_auth() changes it.
  std::optional<std::string> access_token;

  // Time between heartbeats; one unanswered when the next is due is a timeout.
  core::Duration heartbeat_interval = std::chrono::seconds(25);
  // Default timeout of pushes, joins and leaves.
  core::Duration push_timeout = std::chrono::seconds(10);
  // Socket reconnect delays: full jitter, base 0.5 s, cap 2 s (why so low: the file comment).
  // realtime-js's schedule, for fewer attempts during long outages and slower recovery after
  // them: e.g. {1 s, 10 s}.
  core::ExponentialBackoff reconnect_backoff{std::chrono::milliseconds(500),
                                             std::chrono::seconds(2)};
  // Channel rejoin delays after an error: 1, 2, 5, then 10 s, ±10 % jitter.
  core::SteppedBackoff rejoin_backoff{{std::chrono::seconds(1), std::chrono::seconds(2),
                                       std::chrono::seconds(5), std::chrono::seconds(10)},
                                      0.1};
  // Pushes held while the socket is not open; past it the oldest is dropped.
  std::size_t send_buffer_limit = 100;
  // Largest inbound message; the Beast transport caps it at 1 GiB (kMaxFrameBytesLimit).
  std::size_t max_frame_bytes = 8u << 20;
  // Seeds the jitter (tests): reconnect delays draw from core::Jitter(seed), channel rejoin
  // delays from core::Jitter(seed + 1), one draw per scheduled attempt. Random when unset.
  std::optional<std::uint64_t> jitter_seed;
};

// Builds the endpoint URL from the options (invalid_argument for an unusable base URL).
Result<std::string> build_endpoint_url(const SocketOptions& options);
// The same URL with the apikey value replaced by "***", for logs and diagnostics.
std::string redact_endpoint_url(std::string_view url);

// A change of the socket's ConnectionState, as on_state listeners receive it.
struct SocketStateChange {
  ConnectionState previous = ConnectionState::closed;  // the state before
  ConnectionState current = ConnectionState::closed;   // the state now
  // current == open and an earlier connection of this socket had opened: a reconnect.
  bool reconnected = false;
  // For transitions to closed: the close code (0 when an attempt failed before opening) and a
  // description ("heartbeat timeout", "HTTP 401: API key is missing", the peer's reason…).
  int close_code = 0;
  std::string reason;
};

// A connection attempt that failed, or a connection that failed at the protocol level.
struct SocketError {
  Error error;               // "HTTP 401: API key is missing", "heartbeat timeout", TLS errors…
  int http_status = 0;       // when the server refused the upgrade
  std::string server_error;  // the body's "error" text (or the raw body)
};

// What the socket has seen since it was created (diagnostics; counters only grow).
struct SocketCounters {
  std::uint64_t frames_in = 0;             // frames received
  std::uint64_t frames_out = 0;            // frames sent
  std::uint64_t bytes_in = 0;              // bytes received
  std::uint64_t bytes_out = 0;             // bytes sent
  std::uint64_t malformed_frames = 0;      // undecodable text/binary frames, bad payload shapes
  std::uint64_t unknown_events = 0;        // well-formed frames with an event we do not handle
  std::uint64_t unroutable_frames = 0;     // frames for a topic with no live channel
  std::uint64_t stale_frames_dropped = 0;  // of an earlier join, or positioned before the reply
  std::uint64_t unmatched_replies = 0;     // phx_reply for a ref nobody waits for
  std::uint64_t dropped_buffered = 0;      // pushes dropped from a full send buffer
  std::uint64_t send_failures = 0;         // the transport refused a frame (queue full)
  std::uint64_t oversized_frames = 0;      // inbound frames over max_frame_bytes
  std::uint64_t connect_attempts = 0;      // connection attempts started
  std::uint64_t connects = 0;              // connections opened
  std::uint64_t reconnects = 0;            // connections opened after the first
  std::uint64_t failed_attempts = 0;       // attempts that never opened
  std::uint64_t heartbeats_sent = 0;       // heartbeats sent
  std::uint64_t heartbeat_timeouts = 0;    // heartbeats unanswered in time
};

// A Supabase Realtime connection: its channels, heartbeats, pushes and reconnects (behaviour and
// thread safety in the file comment).
class RealtimeSocket {
 public:
  // Listener types of on_state, on_error and on_heartbeat.
  using StateCallback = std::function<void(const SocketStateChange& change)>;
  using ErrorCallback = std::function<void(const SocketError& error)>;
  using HeartbeatCallback =
      std::function<void(HeartbeatStatus status, std::optional<core::Duration> latency)>;

  // `transport` must deliver its callbacks on the loop `scheduler` runs on.
  RealtimeSocket(core::Scheduler& scheduler, std::unique_ptr<Transport> transport,
                 SocketOptions options);
  // Closes the connection (1000) and cancels every timer; no callback runs afterwards.
  ~RealtimeSocket();
  RealtimeSocket(const RealtimeSocket&) = delete;
  RealtimeSocket& operator=(const RealtimeSocket&) = delete;

  // Opens the connection (no-op when connecting or open). Cancels a pending reconnect wait.
  void connect();
  // Closes on purpose: no reconnect until connect(). Joined channels report CHANNEL_ERROR
  // ("socket disconnected") and rejoin on the next connect().
  void disconnect(int code = protocol::close_code::kNormal, std::string reason = "");

  // The connection's state; is_connected() when it is open.
  ConnectionState state() const noexcept;
  bool is_connected() const noexcept { return state() == ConnectionState::open; }
  // The endpoint URL (apikey included); empty when the base URL is invalid.
  const std::string& endpoint_url() const noexcept;
  const SocketOptions& options() const noexcept;  // as given
  protocol::Vsn vsn() const noexcept;             // the wire format in use

  // The channel for topic "realtime:<name>": the existing one unless it is closed after a
  // subscription, else a new one (as realtime-js). The socket keeps it until it is CLOSED or
  // removed.
  std::shared_ptr<RealtimeChannel> channel(std::string_view name, ChannelOptions options = {});
  // Unsubscribes and forgets the channel.
  void remove_channel(const std::shared_ptr<RealtimeChannel>& channel);
  // The channels the socket holds now.
  std::vector<std::shared_ptr<RealtimeChannel>> channels() const;

  // Sets (or clears, with nullopt) the access token: used by every later join, and, when it
  // changed, pushed as `access_token` to every joined channel; an errored channel waiting to
  // rejoin rejoins at once (its join may have been refused for the old token).
  void set_auth(std::optional<std::string> token);
  // The access token now (nullopt: none; joins then rely on the API key).
  const std::optional<std::string>& access_token() const noexcept;

  // A raw push (topic, event, payload) with a fresh ref; returns the ref. `done` is called exactly
  // once (ok / error / timeout after `timeout`, default push_timeout).
  std::string push(std::string topic, std::string event, json::value payload,
                   PushCallback done = {}, std::optional<core::Duration> timeout = std::nullopt);

  // Listeners for state changes, connection failures and heartbeat outcomes, called on the loop
  // until their Subscription is removed.
  core::Subscription on_state(StateCallback callback);
  core::Subscription on_error(ErrorCallback callback);
  core::Subscription on_heartbeat(HeartbeatCallback callback);

  // Counters since construction (SocketCounters).
  const SocketCounters& counters() const noexcept;
  // {state, url (apikey redacted), vsn, counters…, heartbeat…, channels:[…]}
  json::value diagnostics() const;

 private:
  std::shared_ptr<detail::SocketCore> core_;
};

}  // namespace rtsync::client
