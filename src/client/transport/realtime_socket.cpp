#include "rtsync/client/transport/realtime_socket.hpp"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <functional>
#include <random>

#include "channel_impl.hpp"
#include "rtsync/client/transport/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/protocol/close_codes.hpp"
#include "rtsync/protocol/reply.hpp"
#include "socket_core.hpp"
#include "ws_frame.hpp"

namespace rtsync::client {

namespace {

auto socket_log() {
  return log::get(loggers::kTransport);
}

std::uint64_t seed_or_random(const std::optional<std::uint64_t>& seed, std::uint64_t offset) {
  if (seed) return *seed + offset;
  return (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
}

// The rejoin jitter draws from its own sequence (seed + 1), so channel rejoins do not shift the
// socket's reconnect delays.
constexpr std::uint64_t kRejoinSeedOffset = 1;

std::string describe_close(int code, std::string_view reason) {
  std::string out = "socket closed: " + std::to_string(code);
  if (!reason.empty()) {
    out += " (";
    out += reason;
    out += ")";
  }
  return out;
}

// {"error": "..."} (Realtime) or {"message": "..."} (gateways); the raw body otherwise.
std::string server_error_text(std::string_view body) {
  auto parsed = core::parse_json(body);
  if (parsed.ok()) {
    if (auto e = core::find_string(parsed.value(), "error")) return std::string(*e);
    if (auto m = core::find_string(parsed.value(), "message")) return std::string(*m);
  }
  constexpr std::size_t kMax = 512;
  return std::string(body.substr(0, kMax));
}

Errc errc_for_http(int status) {
  if (status == 401 || status == 403) return Errc::unauthorized;
  if (status == 404) return Errc::not_found;
  return Errc::remote;
}

}  // namespace

std::string_view to_string(ConnectionState state) noexcept {
  switch (state) {
    case ConnectionState::connecting:
      return "connecting";
    case ConnectionState::open:
      return "open";
    case ConnectionState::closing:
      return "closing";
    case ConnectionState::closed:
      return "closed";
  }
  return "closed";
}

std::string_view to_string(HeartbeatStatus status) noexcept {
  switch (status) {
    case HeartbeatStatus::sent:
      return "sent";
    case HeartbeatStatus::ok:
      return "ok";
    case HeartbeatStatus::error:
      return "error";
    case HeartbeatStatus::timeout:
      return "timeout";
  }
  return "error";
}

std::string_view to_string(PushStatus status) noexcept {
  switch (status) {
    case PushStatus::ok:
      return "ok";
    case PushStatus::error:
      return "error";
    case PushStatus::timeout:
      return "timed out";
  }
  return "error";
}

Result<std::string> build_endpoint_url(const SocketOptions& options) {
  auto parsed = boost::urls::parse_uri(options.url);
  if (!parsed) {
    return make_error(Errc::invalid_argument, "invalid realtime URL '" + options.url + "'");
  }
  boost::urls::url url(*parsed);
  const std::string scheme(url.scheme());
  if (scheme == "http" || scheme == "ws") {
    url.set_scheme("ws");
  } else if (scheme == "https" || scheme == "wss") {
    url.set_scheme("wss");
  } else {
    return make_error(Errc::invalid_argument,
                      "realtime URL must be http(s):// or ws(s)://, got '" + options.url + "'");
  }
  if (url.host().empty()) {
    return make_error(Errc::invalid_argument, "realtime URL has no host: '" + options.url + "'");
  }
  std::string path(url.path());
  while (!path.empty() && path.back() == '/')
    path.pop_back();
  constexpr std::string_view kWebsocket = "/websocket";
  if (!(path.size() >= kWebsocket.size() &&
        path.compare(path.size() - kWebsocket.size(), kWebsocket.size(), kWebsocket) == 0)) {
    path += "/realtime/v1/websocket";
  }
  url.set_path(path);
  url.remove_fragment();
  auto params = url.params();
  params.append({"apikey", options.api_key});
  params.append({"vsn", protocol::to_string(options.vsn)});
  for (const auto& [k, v] : options.params)
    params.append({k, v});
  return std::string(url.buffer());
}

std::string redact_endpoint_url(std::string_view url) {
  std::string out(url);
  for (std::string_view key : {"?apikey=", "&apikey="}) {
    auto pos = out.find(key);
    if (pos == std::string::npos) continue;
    const auto start = pos + key.size();
    auto end = out.find('&', start);
    if (end == std::string::npos) end = out.size();
    out.replace(start, end - start, "***");
  }
  return out;
}

namespace detail {

SocketCore::SocketCore(core::Scheduler& scheduler, std::unique_ptr<Transport> transport,
                       SocketOptions opts)
    : options(std::move(opts)),
      endpoint([this] {
        auto url = build_endpoint_url(options);
        if (url.ok()) return url.value();
        socket_log()->error("{}", url.error().message);
        return std::string();
      }()),
      scheduler_(scheduler),
      transport_(std::move(transport)),
      read_in_place_(transport_->message_padding() >= protocol::FrameReader::kPadding),
      reconnect_jitter_(seed_or_random(options.jitter_seed, 0)),
      rejoin_jitter_(seed_or_random(options.jitter_seed, kRejoinSeedOffset)),
      access_token_(options.access_token) {}

SocketCore::~SocketCore() = default;

void SocketCore::init() {
  // The transport holds the core (hold_owner) across every run of callbacks, so they may use
  // `this`: a callback can destroy the RealtimeSocket that owns the core, and the core must
  // outlive the run. One reference count per read, not per frame.
  TransportHandlers h;
  h.hold_owner = [weak = weak_from_this()]() -> std::shared_ptr<void> { return weak.lock(); };
  h.on_open = [this] { on_open(); };
  h.on_message = [this](std::string_view data, bool binary) { on_message(data, binary); };
  h.on_close = [this](int code, std::string_view reason) { on_close(code, reason); };
  h.on_error = [this](const TransportFailure& failure) { on_error(failure); };
  transport_->set_handlers(std::move(h));
}

void SocketCore::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  manual_close_ = true;
  reconnect_timer_.cancel();
  heartbeat_timer_.cancel();
  if (state_ == ConnectionState::open || state_ == ConnectionState::connecting) {
    transport_->close(protocol::close_code::kNormal, "");
  }
  state_ = ConnectionState::closed;
  pending_.clear();  // their timers cancel with them; nobody is called any more
  send_buffer_.clear();
  for (auto& ch : channels_)
    ch->impl_->detach();
  for (auto& ch : std::exchange(channels_, {}))
    retire(std::move(ch));
  state_listeners.clear();
  error_listeners.clear();
  heartbeat_listeners.clear();
}

// ---- connection lifecycle ----------------------------------------------------------------------

void SocketCore::connect() {
  if (shut_down_) return;
  manual_close_ = false;
  if (state_ == ConnectionState::open || state_ == ConnectionState::connecting) return;
  reconnect_timer_.cancel();
  start_attempt();
}

void SocketCore::ensure_connecting() {
  if (shut_down_) return;
  if (state_ == ConnectionState::open || state_ == ConnectionState::connecting) return;
  if (reconnect_timer_.pending()) return;
  connect();
}

void SocketCore::start_attempt() {
  if (endpoint.empty()) {
    SocketError err{
        make_error(Errc::invalid_argument, "invalid realtime URL '" + options.url + "'"), 0, ""};
    error_listeners.notify(err);
    return;
  }
  const auto previous = state_;
  state_ = ConnectionState::connecting;
  ++counters_.connect_attempts;
  socket_log()->debug("connecting to {}", redact_endpoint_url(endpoint));
  transport_->connect(endpoint, {});
  notify_state(previous);
}

void SocketCore::disconnect(int code, std::string reason) {
  if (shut_down_) return;
  manual_close_ = true;
  reconnect_timer_.cancel();
  reconnect_attempt_ = 0;
  const auto previous = state_;
  if (previous != ConnectionState::open && previous != ConnectionState::connecting) return;
  heartbeat_timer_.cancel();
  pending_heartbeat_.reset();
  state_ = ConnectionState::closing;
  notify_state(previous);
  // A listener may have reconnected or destroyed us meanwhile.
  if (shut_down_ || state_ != ConnectionState::closing) return;
  transport_->close(code, reason);
  state_ = ConnectionState::closed;
  last_close_reason_ = reason.empty() ? "disconnected" : reason;
  const Error err = make_error(Errc::closed, "socket disconnected");
  for (auto& ch : channels()) {
    if (shut_down_) return;
    ch->impl_->on_socket_closed(err);
  }
  if (shut_down_) return;
  notify_state(ConnectionState::closing, code, last_close_reason_);
}

void SocketCore::notify_state(ConnectionState previous, int close_code, std::string reason,
                              bool reconnected) {
  SocketStateChange change{previous, state_, reconnected, close_code, std::move(reason)};
  state_listeners.notify(change);
}

void SocketCore::on_open() {
  if (shut_down_ || state_ != ConnectionState::connecting) return;
  state_ = ConnectionState::open;
  ++counters_.connects;
  const bool reconnected = ever_opened_;
  if (reconnected) ++counters_.reconnects;
  ever_opened_ = true;
  reconnect_attempt_ = 0;
  socket_log()->info("connected to {}{}", redact_endpoint_url(endpoint),
                     reconnected ? " (reconnected)" : "");
  start_heartbeat();
  flush_send_buffer();
  for (auto& ch : channels()) {
    if (shut_down_ || state_ != ConnectionState::open) return;
    ch->impl_->on_socket_open();
  }
  if (shut_down_ || state_ != ConnectionState::open) return;
  notify_state(ConnectionState::connecting, 0, {}, reconnected);
}

void SocketCore::on_close(int code, std::string_view reason) {
  if (shut_down_ || state_ != ConnectionState::open) return;
  if (code == protocol::close_code::kMessageTooBig) ++counters_.oversized_frames;
  socket_log()->warn("connection closed: {} {}", code, reason);
  connection_lost(ConnectionState::open, code, std::string(reason),
                  make_error(Errc::closed, describe_close(code, reason)));
}

void SocketCore::on_error(const TransportFailure& failure) {
  if (shut_down_ || state_ != ConnectionState::connecting) return;
  ++counters_.failed_attempts;
  SocketError err;
  err.http_status = failure.http_status;
  if (failure.http_status != 0) {
    err.server_error = server_error_text(failure.body);
    err.error = make_error(errc_for_http(failure.http_status),
                           "HTTP " + std::to_string(failure.http_status) +
                               (err.server_error.empty() ? "" : ": " + err.server_error));
  } else {
    err.error = failure.error;
  }
  socket_log()->warn("connection attempt failed: {}", err.error.message);
  const auto message = err.error.message;
  const auto code = err.error.code;
  error_listeners.notify(err);
  if (shut_down_ || state_ != ConnectionState::connecting) return;
  connection_lost(ConnectionState::connecting, 0, message, make_error(code, message));
}

void SocketCore::connection_lost(ConnectionState previous, int close_code, std::string reason,
                                 Error channel_error) {
  state_ = ConnectionState::closed;
  heartbeat_timer_.cancel();
  pending_heartbeat_.reset();
  last_close_reason_ = reason;
  // Scheduled before anyone is told, so a listener's disconnect()/connect() has the last word.
  if (!manual_close_) schedule_reconnect();
  for (auto& ch : channels()) {
    if (shut_down_) return;
    ch->impl_->on_socket_closed(channel_error);
  }
  if (shut_down_) return;
  notify_state(previous, close_code, std::move(reason));
}

void SocketCore::schedule_reconnect() {
  const auto attempt = ++reconnect_attempt_;
  const auto delay = options.reconnect_backoff.delay(attempt, reconnect_jitter_.next());
  socket_log()->info("reconnect attempt {} in {} ms", attempt,
                     std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  reconnect_timer_ = scheduler_.schedule(delay, timers::SocketReconnect, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self || self->shut_down_ || self->manual_close_) return;
    if (self->state_ != ConnectionState::closed) return;
    self->start_attempt();
  });
}

// ---- heartbeat
// -----------------------------------------------------------------------------------

void SocketCore::start_heartbeat() {
  pending_heartbeat_.reset();
  heartbeat_timer_ =
      scheduler_.schedule(options.heartbeat_interval, timers::Heartbeat, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->heartbeat_tick();
      });
}

void SocketCore::heartbeat_tick() {
  if (shut_down_ || state_ != ConnectionState::open) return;
  if (pending_heartbeat_) {
    // The previous heartbeat is still unanswered now that the next one is due.
    ++counters_.heartbeat_timeouts;
    pending_heartbeat_.reset();
    socket_log()->warn("heartbeat timeout; reconnecting");
    heartbeat_listeners.notify(HeartbeatStatus::timeout, std::nullopt);
    if (shut_down_ || state_ != ConnectionState::open) return;
    transport_->close(protocol::close_code::kNormal, "heartbeat timeout");
    connection_lost(ConnectionState::open, protocol::close_code::kNormal, "heartbeat timeout",
                    make_error(Errc::timeout, "heartbeat timeout"));
    return;
  }
  const auto ref = make_ref();
  pending_heartbeat_ = ref;
  heartbeat_sent_at_ = scheduler_.now();
  ++counters_.heartbeats_sent;
  heartbeat_timer_ =
      scheduler_.schedule(options.heartbeat_interval, timers::Heartbeat, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->heartbeat_tick();
      });
  send_now(protocol::Message{std::nullopt, ref, std::string(protocol::kPhoenixTopic),
                             std::string(protocol::events::kHeartbeat), json::object()});
  heartbeat_listeners.notify(HeartbeatStatus::sent, std::nullopt);
}

// ---- sending
// -------------------------------------------------------------------------------------

void SocketCore::send_now(const protocol::Message& message) {
  auto frame = protocol::encode_text(options.vsn, message);
  const auto size = frame.size();
  auto sent = transport_->send(std::move(frame), false);
  if (!sent.ok()) {
    ++counters_.send_failures;
    socket_log()->warn("frame not sent ({} {}): {}", message.topic, message.event,
                       sent.error().message);
    return;
  }
  ++counters_.frames_out;
  counters_.bytes_out += size;
}

void SocketCore::expect_reply(const std::string& ref, std::string topic, core::Duration timeout,
                              PushCallback done) {
  PendingReply pending{std::move(topic), std::move(done), {}};
  pending.timer = scheduler_.schedule(timeout, timers::PushTimeout, [weak = weak_from_this(), ref] {
    auto self = weak.lock();
    if (!self) return;
    self->resolve(ref, PushResult{PushStatus::timeout, {}});
  });
  pending_[ref] = std::move(pending);
}

void SocketCore::cancel_reply(const std::string& ref) {
  pending_.erase(ref);
}

void SocketCore::resolve(const std::string& ref, const PushResult& result) {
  auto it = pending_.find(ref);
  if (it == pending_.end()) return;
  auto done = std::move(it->second.done);
  pending_.erase(it);  // before the call: exactly once, even if the callback pushes again
  core::call_guarded(loggers::kTransport, "callback", done, result);
}

std::string SocketCore::push(std::string topic, std::string event, json::value payload,
                             PushCallback done, std::optional<core::Duration> timeout) {
  const auto ref = make_ref();
  protocol::Message m{std::nullopt, ref, std::move(topic), std::move(event), std::move(payload)};
  if (shut_down_) return ref;
  expect_reply(ref, m.topic, timeout.value_or(options.push_timeout), std::move(done));
  if (is_open()) {
    send_now(m);
    return ref;
  }
  send_buffer_.push_back(std::move(m));
  if (send_buffer_.size() > options.send_buffer_limit) {
    auto dropped = std::move(send_buffer_.front());
    send_buffer_.pop_front();
    ++counters_.dropped_buffered;
    socket_log()->warn("send buffer full ({}): dropped {} {} ref {}", options.send_buffer_limit,
                       dropped.topic, dropped.event, dropped.ref.value_or(""));
    json::object reason;
    reason["reason"] = "send buffer full";
    resolve(dropped.ref.value_or(""), PushResult{PushStatus::error, std::move(reason)});
  }
  return ref;
}

void SocketCore::flush_send_buffer() {
  while (!send_buffer_.empty() && is_open() && !shut_down_) {
    auto m = std::move(send_buffer_.front());
    send_buffer_.pop_front();
    send_now(m);
  }
}

// ---- receiving
// -----------------------------------------------------------------------------------

void SocketCore::on_message(std::string_view data, bool binary) {
  struct Dispatch {
    SocketCore& core;
    explicit Dispatch(SocketCore& c) : core(c) { ++core.dispatch_depth_; }
    ~Dispatch() {
      if (--core.dispatch_depth_ > 0 || core.retired_.empty()) return;
      // Moved out first: a destructor below may retire more (it is then released at once).
      auto released = std::move(core.retired_);
      core.retired_.clear();
    }
  } dispatch(*this);
  receive(data, binary);
}

void SocketCore::receive(std::string_view data, bool binary) {
  if (shut_down_ || state_ != ConnectionState::open) return;
  ++counters_.frames_in;
  counters_.bytes_in += data.size();
  if (data.size() > options.max_frame_bytes) {
    ++counters_.oversized_frames;
    socket_log()->warn("inbound frame of {} bytes exceeds the {} byte limit; closing with 1009",
                       data.size(), options.max_frame_bytes);
    transport_->close(protocol::close_code::kMessageTooBig, "message too big");
    connection_lost(ConnectionState::open, protocol::close_code::kMessageTooBig, "message too big",
                    make_error(Errc::too_large, describe_close(protocol::close_code::kMessageTooBig,
                                                               "message too big")));
    return;
  }
  if (binary) {
    if (options.vsn == protocol::Vsn::v1) {
      ++counters_.malformed_frames;
      socket_log()->warn("binary frame of {} bytes on a vsn 1.0.0 socket dropped", data.size());
      return;
    }
    auto decoded = protocol::decode_user_broadcast(data);
    if (!decoded.ok()) {
      ++counters_.malformed_frames;
      socket_log()->warn("binary frame of {} bytes dropped: {}", data.size(),
                         decoded.error().describe());
      return;
    }
    auto message = protocol::to_message(decoded.value());
    if (!message.ok()) {
      ++counters_.malformed_frames;
      socket_log()->warn("binary broadcast dropped: {}", message.error().describe());
      return;
    }
    route(std::move(message.value()));
    return;
  }
  if (route_change_frame(data)) return;
  auto decoded = protocol::decode_text(options.vsn, data);
  if (!decoded.ok()) {
    ++counters_.malformed_frames;
    // Both JSON parsers validate UTF-8, so text that parsed is UTF-8 and only a frame that did
    // not needs the check; the transport's own is off (make_realtime_socket).
    if (!ws::valid_utf8(data.data(), data.size())) {
      constexpr std::string_view kWhy = "text message is not valid UTF-8";
      socket_log()->warn("text frame of {} bytes is not valid UTF-8; closing with 1007",
                         data.size());
      transport_->close(protocol::close_code::kInvalidPayload, std::string(kWhy));
      connection_lost(
          ConnectionState::open, protocol::close_code::kInvalidPayload, std::string(kWhy),
          make_error(Errc::closed, describe_close(protocol::close_code::kInvalidPayload, kWhy)));
      return;
    }
    constexpr std::size_t kShown = 120;
    socket_log()->warn("malformed frame dropped ({}): {}", decoded.error().describe(),
                       data.substr(0, kShown));
    return;
  }
  route(std::move(decoded.value()));
}

void SocketCore::route(protocol::Message message) {
  if (message.event == protocol::events::kReply) {
    handle_reply(message);
    return;
  }
  if (message.topic == protocol::kPhoenixTopic) {
    ++counters_.unknown_events;
    socket_log()->debug("ignored {} on topic phoenix", message.event);
    return;
  }
  bool routed = false;
  for (auto& ch : channels()) {
    if (shut_down_) return;
    if (ch->topic() != message.topic || ch->state() == ChannelState::closed) continue;
    routed = true;
    ch->impl_->handle(message);
  }
  if (!routed) {
    ++counters_.unroutable_frames;
    socket_log()->debug("frame for {} ({}) has no channel", message.topic, message.event);
  }
}

bool SocketCore::route_change_frame(std::string_view data) {
  // Only frames that can be postgres_changes events pay for the extra pass; the rest (and any
  // frame the reader declines) take the DOM path, which reports errors precisely.
  // Boyer-Moore-Horspool: the needle usually sits some 30 bytes in, past quotes that a
  // first-character scan (string_view::find) stops at and compares from, once per quote.
  static constexpr std::string_view kNeedle = "\"postgres_changes\"";
  static const std::boyer_moore_horspool_searcher kSearcher(kNeedle.begin(), kNeedle.end());
  if (!protocol::FrameReader::available() ||
      std::search(data.begin(), data.end(), kSearcher) == data.end()) {
    return false;
  }
  auto head = reader_.read(options.vsn, data, read_in_place_);
  if (!head || head->event != protocol::events::kPostgresChanges ||
      head->topic == protocol::kPhoenixTopic) {
    return false;
  }
  // Usually one channel has the topic: then hold just that one instead of copying the list
  // (a callback may add or remove channels).
  auto wants = [&](const std::shared_ptr<RealtimeChannel>& ch) {
    return ch->topic() == head->topic && ch->state() != ChannelState::closed;
  };
  const auto first = std::find_if(channels_.begin(), channels_.end(), wants);
  if (first != channels_.end() && std::none_of(first + 1, channels_.end(), wants)) {
    // A plain pointer: a channel its callback takes out is retired, not destroyed (retire()).
    RealtimeChannel* const ch = first->get();
    ch->impl_->handle_change_frame(*this, *head, reader_, data);
    return true;
  }
  bool routed = false;
  for (auto& ch : channels()) {
    if (shut_down_) return true;
    if (!wants(ch)) continue;
    routed = true;
    ch->impl_->handle_change_frame(*this, *head, reader_, data);
  }
  if (!routed) {
    ++counters_.unroutable_frames;
    socket_log()->debug("frame for {} ({}) has no channel", head->topic, head->event);
  }
  return true;
}

void SocketCore::handle_reply(protocol::Message& message) {
  if (!message.ref) {
    ++counters_.malformed_frames;
    socket_log()->warn("phx_reply without ref on {} dropped", message.topic);
    return;
  }
  const auto& ref = *message.ref;
  if (message.topic == protocol::kPhoenixTopic && pending_heartbeat_ &&
      ref == *pending_heartbeat_) {
    pending_heartbeat_.reset();
    const auto latency = scheduler_.now() - heartbeat_sent_at_;
    last_heartbeat_latency_ = latency;
    auto reply = protocol::parse_reply(message.payload);
    const bool ok = reply.ok() && reply.value().status == protocol::ReplyStatus::ok;
    if (ok) {
      // rtsync: every change up to this position has been handed to this socket (docs/resume.md).
      if (auto head = protocol::parse_rtsync_heartbeat(reply.value().response)) {
        server_epoch_ = head->epoch;
        for (auto& ch : channels()) {
          if (shut_down_) return;
          ch->impl_->on_stream_head(*head);
        }
      }
    }
    heartbeat_listeners.notify(ok ? HeartbeatStatus::ok : HeartbeatStatus::error, latency);
    return;
  }
  auto it = pending_.find(ref);
  if (it == pending_.end() || it->second.topic != message.topic) {
    ++counters_.unmatched_replies;
    socket_log()->debug("reply to unknown ref {} on {} ignored", ref, message.topic);
    return;
  }
  auto reply = protocol::parse_reply(message.payload);
  if (!reply.ok()) {
    ++counters_.malformed_frames;
    socket_log()->warn("malformed reply to ref {} on {}: {}", ref, message.topic,
                       reply.error().describe());
    resolve(ref, PushResult{PushStatus::error, std::move(message.payload)});
    return;
  }
  resolve(ref, PushResult{reply.value().status == protocol::ReplyStatus::ok ? PushStatus::ok
                                                                            : PushStatus::error,
                          std::move(reply.value().response)});
}

// ---- channels and auth
// -----------------------------------------------------------------------------

std::shared_ptr<RealtimeChannel> SocketCore::channel(std::string_view name,
                                                     ChannelOptions channel_options) {
  std::string topic(protocol::kTopicPrefix);
  topic += name;
  for (auto& ch : channels_) {
    if (ch->topic() == topic) return ch;
  }
  auto ch = std::make_shared<RealtimeChannel>(RealtimeChannel::Passkey{}, std::string(name),
                                              std::move(channel_options), weak_from_this());
  channels_.push_back(ch);
  return ch;
}

void SocketCore::remove_channel(const std::shared_ptr<RealtimeChannel>& channel) {
  if (!channel) return;
  channel->unsubscribe();
  forget_channel(channel.get());
}

void SocketCore::forget_channel(const RealtimeChannel* channel) {
  const auto it = std::find_if(channels_.begin(), channels_.end(),
                               [&](auto& ch) { return ch.get() == channel; });
  if (it == channels_.end()) return;
  auto taken = std::move(*it);
  channels_.erase(it);
  retire(std::move(taken));
}

void SocketCore::retire(std::shared_ptr<void> keep) {
  if (dispatch_depth_ > 0) retired_.push_back(std::move(keep));
}

void SocketCore::set_auth(std::optional<std::string> token) {
  if (shut_down_ || token == access_token_) return;
  access_token_ = std::move(token);
  if (!access_token_) return;
  for (auto& ch : channels()) {
    if (shut_down_) return;
    ch->impl_->push_access_token(*access_token_);
    ch->impl_->on_access_token_changed();
  }
}

// ---- diagnostics
// ---------------------------------------------------------------------------------

json::value SocketCore::diagnostics() const {
  json::object o;
  o["state"] = to_string(state_);
  o["url"] = redact_endpoint_url(endpoint);
  o["vsn"] = protocol::to_string(options.vsn);
  o["has_access_token"] = access_token_.has_value();
  o["server_epoch"] = server_epoch_ ? json::value(*server_epoch_) : json::value(nullptr);
  json::object c;
  c["frames_in"] = counters_.frames_in;
  c["frames_out"] = counters_.frames_out;
  c["bytes_in"] = counters_.bytes_in;
  c["bytes_out"] = counters_.bytes_out;
  c["malformed_frames"] = counters_.malformed_frames;
  c["unknown_events"] = counters_.unknown_events;
  c["unroutable_frames"] = counters_.unroutable_frames;
  c["stale_frames_dropped"] = counters_.stale_frames_dropped;
  c["unmatched_replies"] = counters_.unmatched_replies;
  c["dropped_buffered"] = counters_.dropped_buffered;
  c["send_failures"] = counters_.send_failures;
  c["oversized_frames"] = counters_.oversized_frames;
  c["connect_attempts"] = counters_.connect_attempts;
  c["connects"] = counters_.connects;
  c["reconnects"] = counters_.reconnects;
  c["failed_attempts"] = counters_.failed_attempts;
  c["heartbeats_sent"] = counters_.heartbeats_sent;
  c["heartbeat_timeouts"] = counters_.heartbeat_timeouts;
  o["counters"] = std::move(c);
  o["reconnect_attempt"] = reconnect_attempt_;
  o["reconnect_pending"] = reconnect_timer_.pending();
  o["pending_pushes"] = pending_.size();
  o["send_buffer"] = send_buffer_.size();
  if (last_heartbeat_latency_) {
    o["heartbeat_latency_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(*last_heartbeat_latency_).count();
  }
  if (!last_close_reason_.empty()) o["last_close_reason"] = last_close_reason_;
  json::array chans;
  for (const auto& ch : channels_)
    chans.push_back(ch->diagnostics());
  o["channels"] = std::move(chans);
  return o;
}

}  // namespace detail

// ---- facade
// --------------------------------------------------------------------------------------

RealtimeSocket::RealtimeSocket(core::Scheduler& scheduler, std::unique_ptr<Transport> transport,
                               SocketOptions options)
    : core_(std::make_shared<detail::SocketCore>(scheduler, std::move(transport),
                                                 std::move(options))) {
  core_->init();
}

RealtimeSocket::~RealtimeSocket() {
  core_->shutdown();
}

void RealtimeSocket::connect() {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  auto keep = core_;  // a listener may destroy this facade meanwhile
  keep->connect();
}
void RealtimeSocket::disconnect(int code, std::string reason) {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  auto keep = core_;
  keep->disconnect(code, std::move(reason));
}
ConnectionState RealtimeSocket::state() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->state();
}
const std::string& RealtimeSocket::endpoint_url() const noexcept {
  return core_->endpoint;
}
const SocketOptions& RealtimeSocket::options() const noexcept {
  return core_->options;
}
protocol::Vsn RealtimeSocket::vsn() const noexcept {
  return core_->options.vsn;
}

std::shared_ptr<RealtimeChannel> RealtimeSocket::channel(std::string_view name,
                                                         ChannelOptions options) {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->channel(name, std::move(options));
}
void RealtimeSocket::remove_channel(const std::shared_ptr<RealtimeChannel>& channel) {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  auto keep = core_;
  keep->remove_channel(channel);
}
std::vector<std::shared_ptr<RealtimeChannel>> RealtimeSocket::channels() const {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->channels();
}

void RealtimeSocket::set_auth(std::optional<std::string> token) {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  auto keep = core_;
  keep->set_auth(std::move(token));
}
const std::optional<std::string>& RealtimeSocket::access_token() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->access_token();
}

std::string RealtimeSocket::push(std::string topic, std::string event, json::value payload,
                                 PushCallback done, std::optional<core::Duration> timeout) {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  auto keep = core_;
  return keep->push(std::move(topic), std::move(event), std::move(payload), std::move(done),
                    timeout);
}

core::Subscription RealtimeSocket::on_state(StateCallback callback) {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->state_listeners.add(std::move(callback));
}
core::Subscription RealtimeSocket::on_error(ErrorCallback callback) {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->error_listeners.add(std::move(callback));
}
core::Subscription RealtimeSocket::on_heartbeat(HeartbeatCallback callback) {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->heartbeat_listeners.add(std::move(callback));
}

const SocketCounters& RealtimeSocket::counters() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->counters();
}
json::value RealtimeSocket::diagnostics() const {
  RTSYNC_ASSERT_ON_LOOP(core_->scheduler());
  return core_->diagnostics();
}

}  // namespace rtsync::client
