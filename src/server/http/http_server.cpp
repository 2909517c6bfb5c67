// Beast HTTP + WebSocket front of the server. The only server TU that includes Beast.
#include "rtsync/server/http/http_server.hpp"

#include <fcntl.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include <array>
#include <atomic>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cstdlib>
#include <ctime>
#include <map>
#include <unordered_set>
#include <vector>

#include "rtsync/core/log.hpp"
#include "rtsync/protocol/close_codes.hpp"
#include "rtsync/server/http/names.hpp"
#include "rtsync/server/http/request_framing.hpp"
#include "rtsync/server/http/write_coalescing.hpp"
#include "rtsync/server/realtime/broadcast_endpoint.hpp"
#include "rtsync/server/realtime/connection.hpp"

namespace rtsync::server::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using realtime::OutFrame;

namespace {

// Asio opens sockets without FD_CLOEXEC: a process this one starts (a throwaway PostgreSQL, a
// worker) would inherit the listener and client connections and hold the port open after the
// server stopped, with connections queueing on it unanswered. (A fork racing between socket()
// and this call still inherits; nothing in rtsync forks from another thread while listening.)
void keep_from_children(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

constexpr std::size_t kMaxHttpBody = 8u << 20;
constexpr auto kHttpTimeout = std::chrono::seconds(30);
// How long, and how many bytes, a closing HTTP connection drains what the client still sends
// (see HttpSession::linger).
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 1u << 20;
// A closing websocket may still have the rest of a message above max_frame_bytes to drain.
constexpr std::size_t kWsDrainBytes = 64u << 20;
// Read buffers that grew past this for one big message are given back, so idle sockets stay small.
constexpr std::size_t kKeepReadCapacity = 16u << 10;
// Largest gather write of queued frames.
constexpr std::size_t kMaxBatchFrames = 256;
constexpr std::size_t kMaxBatchBytes = 256u << 10;

std::string json_error(std::string_view key, std::string_view message) {
  json::object o;
  o[key] = message;
  return json::serialize(o);
}

// The request target's path (still encoded); its query parameters are parsed only when a route
// asks for one — the services behind the listener read the raw query themselves.
struct Target {
  std::string path;
  std::string target;  // as received
  // The first parameter named `key`, decoded; none when absent or when the target is not a valid
  // origin-form.
  std::optional<std::string> param(std::string_view key) const {
    auto u = boost::urls::parse_origin_form(target);
    if (!u) return std::nullopt;
    for (auto p : u->params()) {
      if (p.key == key) return std::string(p.value);
    }
    return std::nullopt;
  }
};

Target parse_target(std::string_view target) {
  // Origin-form is the path, then '?' and the query: the path is what precedes the first '?'.
  return Target{std::string(target.substr(0, target.find('?'))), std::string(target)};
}

std::optional<std::string> header(const bhttp::request<bhttp::string_body>& req,
                                  std::string_view name) {
  auto it = req.find(name);
  if (it == req.end()) return std::nullopt;
  return std::string(it->value());
}

// The websocket sessions' socket: a tcp::socket whose closing-handshake teardown (found by
// Beast through argument-dependent lookup, see async_teardown below) drains what the client
// still sends. Beast's own tcp teardown stops reading after one successful read and closes, so
// a client still sending (the rest of a message above the limit, say) gets a TCP reset instead
// of the close frame (1009), and reports 1006.
class WsSocket : public tcp::socket {
 public:
  explicit WsSocket(tcp::socket&& s) : tcp::socket(std::move(s)) {}
};

// Beast's teardown contract: shut the write side (server role), read until the client closes
// or fails, then close. Bounded by kWsDrainBytes here and by the stream's closing-handshake
// timeout, which closes the socket.
struct DrainingTeardown {
  WsSocket& socket;
  beast::role_type role;
  std::unique_ptr<std::array<char, 4096>> buf = std::make_unique<std::array<char, 4096>>();
  std::size_t drained = 0;
  bool started = false;

  template <class Self>
  void operator()(Self& self, beast::error_code ec = {}, std::size_t n = 0) {
    if (!started) {
      started = true;
      beast::error_code ignored;
      if (role == beast::role_type::server) socket.shutdown(tcp::socket::shutdown_send, ignored);
      return socket.async_read_some(asio::buffer(*buf), std::move(self));
    }
    drained += n;
    if (!ec && drained <= kWsDrainBytes)
      return socket.async_read_some(asio::buffer(*buf), std::move(self));
    if (ec == asio::error::eof) ec = {};
    beast::error_code ignored;
    if (role == beast::role_type::client) socket.shutdown(tcp::socket::shutdown_send, ignored);
    socket.close(ignored);
    self.complete(ec);
  }
};

template <class Handler>
void async_teardown(beast::role_type role, WsSocket& socket, Handler&& handler) {
  asio::async_compose<Handler, void(beast::error_code)>(DrainingTeardown{socket, role}, handler,
                                                        socket);
}

// ---- websocket sessions -----------------------------------------------------------------------
//
// A websocket session is two halves (docs/scaling.md §2). Its WsLink owns the socket and the
// Beast stream on one I/O loop: it reads and checks messages, and writes queued frames in gather
// writes. Its WsSession owns the realtime Connection and the connection's Slot on the main loop
// and is the Connection's SessionIo: it enforces the queue bounds, counts what went out and
// answers when_drained. On the main loop the halves call each other directly (LinkOwner,
// LinkPort). A link on another I/O loop is reached through that loop's LinkLoop, whose two
// mailboxes carry the calls each way, batched per loop pass, sessions named by id.

class WsLink;

// What a link has written so far, read by its session on another loop: the queue bounds count a
// frame from the session's send until its link wrote it, without waiting for a mailbox round
// trip (a session busy with a burst of inbound messages would otherwise see its fast readers'
// queues grow and close them as slow).
struct WrittenCounters {
  std::atomic<std::size_t> frames{0};
  std::atomic<std::size_t> bytes{0};
  // Bytes of inbound messages a link on another loop mailed and its session has not handled
  // yet: the link stops reading at kInboundWindowBytes, so a client cannot queue more than that
  // on the main loop (with one loop, reading waits for each message to be handled).
  std::atomic<std::size_t> inbound{0};
};
constexpr std::size_t kInboundWindowBytes = 64u << 10;

// Frames queued on a loop go out at the end of the loop pass, so that what several broadcasts
// queue in one pass leaves in one gather write per socket; under a burst a little later
// (WriteCoalescing). One per loop.
class WriteFlush {
 public:
  explicit WriteFlush(asio::io_context& io) : timer_(io) {}
  void mark(std::shared_ptr<WsLink> link);

 private:
  void flush();
  std::vector<std::shared_ptr<WsLink>> dirty_;
  asio::steady_timer timer_;
  bool armed_ = false;
  WriteCoalescing coalescing_;
};

// The session half, as its link sees it. Called on the link's loop; never after link_gone.
class LinkOwner {
 public:
  virtual ~LinkOwner() = default;
  virtual void link_open() = 0;  // the handshake succeeded
  virtual void link_message(std::string_view data, bool binary) = 0;
  virtual void link_written(std::size_t frames, std::size_t bytes) = 0;
  // The socket is closed. `too_big`: a message above the limit (Beast answered 1009).
  virtual void link_gone(bool too_big) = 0;
};

// The link half, as its session sees it. Called on the session's loop.
class LinkPort {
 public:
  virtual ~LinkPort() = default;
  virtual void push(const OutFrame& frame) = 0;  // bounds are the session's to enforce
  virtual void close(std::uint16_t code, std::string reason) = 0;
  virtual void abort() = 0;
};

class WsLink final : public LinkPort, public std::enable_shared_from_this<WsLink> {
 public:
  WsLink(WriteFlush& flush, tcp::socket socket, std::size_t max_message_bytes,
         std::shared_ptr<WrittenCounters> written)
      : flush_(flush),
        ws_(std::move(socket)),
        max_message_bytes_(max_message_bytes),
        written_(std::move(written)) {}

  void set_owner(LinkOwner* owner) { owner_ = owner; }

  void start(bhttp::request<bhttp::string_body> req) {
    ws_.read_message_max(max_message_bytes_);
    ws_.auto_fragment(false);
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(5);    // opening and closing handshakes
    t.idle_timeout = websocket::stream_base::none();  // the realtime Connection owns idleness
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::ping) pinged_ = true;
    });
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(bhttp::field::server, "rtsync"); }));
    ws_.async_accept(req,
                     [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

  void push(const OutFrame& f) override {
    if (closing_ || torn_down_) return;
    queue_.push_back(f);
    // Writes start at the end of the loop pass (WriteFlush).
    if (!writing_ && !dirty_) {
      dirty_ = true;
      flush_.mark(shared_from_this());
    }
  }

  void close(std::uint16_t code, std::string reason) override {
    if (closing_ || torn_down_) return;
    closing_ = true;
    close_code_ = code;
    close_reason_ = std::move(reason);
    // Queued frames are abandoned: a closing socket (slow, idle or shutting down) gets only
    // the frame already on the wire, then the close frame.
    if (writing_) {
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(head_ + in_flight_), queue_.end());
    } else {
      queue_.clear();
      head_ = 0;
      do_close();
    }
  }

  void abort() override {
    beast::error_code ignored;
    ws_.next_layer().close(ignored);
  }

  // Reading waits while the session has kInboundWindowBytes of this link's messages unhandled
  // (LinkLoop); this resumes it once they were.
  void resume_reading() {
    if (!parked_ || torn_down_) return;
    parked_ = false;
    read_next();
  }

  // Frames queued and not yet written.
  std::size_t pending() const { return queue_.size() - head_; }

  // Called by WriteFlush.
  void flush() {
    dirty_ = false;
    if (!writing_ && !torn_down_ && head_ < queue_.size()) write_next();
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      log::get(loggers::kServer)->info("websocket handshake failed: {}", ec.message());
      return teardown(false);
    }
    if (owner_) owner_->link_open();
    read_next();
  }

  void read_next() {
    ws_.async_read(rbuf_, [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(beast::error_code ec, std::size_t n) {
    if (ec) {
      // Beast has already sent close 1009 (message too big) for an oversized message.
      return teardown(ec == websocket::error::message_too_big);
    }
    if (owner_ && !closing_) {
      auto data = rbuf_.cdata();
      owner_->link_message(std::string_view(static_cast<const char*>(data.data()), n),
                           !ws_.got_text());
    }
    rbuf_.consume(n);
    if (rbuf_.capacity() > kKeepReadCapacity) rbuf_.shrink_to_fit();
    // Keep reading while closing: Beast needs the read to complete the close handshake.
    if (!closing_ && written_->inbound.load(std::memory_order_acquire) >= kInboundWindowBytes) {
      parked_ = true;  // resume_reading() follows once the session caught up
      return;
    }
    read_next();
  }

  void write_next() {
    writing_ = true;
    const std::size_t avail = queue_.size() - head_;
    if (pinged_) {
      in_flight_ = 1;
      const OutFrame& f = queue_[head_];
      ws_.binary(f.binary);
      ws_.async_write(asio::buffer(*f.bytes),
                      [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                        self->on_write(ec, n);
                      });
      return;
    }
    // Queued frames (one or a backlog) go out as complete frames in one gather write straight to
    // the socket: server frames are unmasked, so a frame is its header plus the shared payload
    // bytes (cheaper than Beast's writer even for one frame). Beast's own writer is idle meanwhile
    // (writing_ serializes the two). A client that pings gets Beast's path from then on, so an
    // automatic pong never lands inside a batch.
    std::size_t n = std::min(avail, kMaxBatchFrames);
    headers_.resize(n);
    bufs_.clear();
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const OutFrame& f = queue_[head_ + i];
      const std::size_t len = f.bytes->size();
      auto& h = headers_[i];
      std::size_t hlen = 2;
      h[0] = static_cast<std::uint8_t>(0x80 | (f.binary ? 0x2 : 0x1));
      if (len < 126) {
        h[1] = static_cast<std::uint8_t>(len);
      } else if (len <= 0xFFFF) {
        h[1] = 126;
        h[2] = static_cast<std::uint8_t>(len >> 8);
        h[3] = static_cast<std::uint8_t>(len);
        hlen = 4;
      } else {
        h[1] = 127;
        for (int b = 0; b < 8; ++b)
          h[2 + b] = static_cast<std::uint8_t>(std::uint64_t(len) >> (56 - 8 * b));
        hlen = 10;
      }
      bufs_.emplace_back(h.data(), hlen);
      bufs_.emplace_back(f.bytes->data(), len);
      bytes += len;
      if (bytes >= kMaxBatchBytes) {
        n = i + 1;
        break;
      }
    }
    in_flight_ = n;
    asio::async_write(ws_.next_layer(), bufs_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                        self->on_write(ec, n);
                      });
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    std::size_t frames = 0;
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < in_flight_ && head_ < queue_.size(); ++i) {
      ++frames;
      bytes += queue_[head_].bytes->size();
      queue_[head_].bytes.reset();
      ++head_;
    }
    in_flight_ = 0;
    if (head_ == queue_.size()) {
      queue_.clear();
      head_ = 0;
    } else if (head_ > 64 && head_ * 2 > queue_.size()) {
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    if (ec) {
      if (!closing_) abort();
      return;
    }
    if (head_ < queue_.size()) {
      write_next();
    } else {
      if (queue_.capacity() > 256) queue_.shrink_to_fit();
      if (bufs_.capacity() > 256) {
        bufs_ = {};
        headers_ = {};
      }
      if (closing_) do_close();
    }
    if (frames > 0) {
      written_->frames.fetch_add(frames, std::memory_order_release);
      written_->bytes.fetch_add(bytes, std::memory_order_release);
      // After the next write was started: frames the owner queues in answer join the queue
      // behind it.
      if (owner_) owner_->link_written(frames, bytes);
    }
  }

  void do_close() {
    if (close_started_) return;
    close_started_ = true;
    websocket::close_reason cr;
    cr.code = close_code_;
    cr.reason = close_reason_;
    ws_.async_close(cr, [self = shared_from_this()](beast::error_code) {
      // The pending read completes with an error and tears down.
      beast::error_code ignored;
      self->ws_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
      self->ws_.next_layer().close(ignored);
    });
  }

  // Runs from a completion handler only (never inside the owner's calls).
  void teardown(bool too_big) {
    if (torn_down_) return;
    torn_down_ = true;
    beast::error_code ignored;
    ws_.next_layer().close(ignored);
    if (auto* owner = std::exchange(owner_, nullptr)) owner->link_gone(too_big);
  }

  WriteFlush& flush_;
  LinkOwner* owner_ = nullptr;
  websocket::stream<WsSocket> ws_;
  std::size_t max_message_bytes_;
  std::shared_ptr<WrittenCounters> written_;
  beast::flat_buffer rbuf_;
  std::vector<OutFrame> queue_;
  std::size_t head_ = 0;
  std::size_t in_flight_ = 0;  // frames of the write in progress (queue_[head_ …])
  std::vector<std::array<std::uint8_t, 10>> headers_;  // headers of the batch in flight
  std::vector<asio::const_buffer> bufs_;
  bool pinged_ = false;
  bool parked_ = false;  // not reading: the session is behind (resume_reading)
  bool dirty_ = false;   // waiting for the WriteFlush
  bool writing_ = false;
  bool closing_ = false;
  bool close_started_ = false;
  bool torn_down_ = false;
  std::uint16_t close_code_ = protocol::close_code::kNormal;
  std::string close_reason_;
};

void WriteFlush::mark(std::shared_ptr<WsLink> link) {
  dirty_.push_back(std::move(link));
  if (armed_) return;
  armed_ = true;
  // A timer even when the delay is zero: it fires after the reactor's next poll, so reads that
  // complete meanwhile still join this flush (a posted flush would run before them, and a burst
  // would then look like single frames to the coalescing; measured: half the fan-out).
  timer_.expires_after(coalescing_.delay());
  timer_.async_wait([this](beast::error_code ec) {
    if (!ec) flush();
  });
}

void WriteFlush::flush() {
  armed_ = false;
  auto batch = std::move(dirty_);
  dirty_.clear();
  // At most two frames count per socket: one socket handed a long run at once (a paced resume
  // replay) is no sign that the loop as a whole is behind.
  std::size_t frames = 0;
  for (const auto& link : batch)
    frames += std::min<std::size_t>(link->pending(), 2);
  WriteCoalescing::Duration wall{}, cpu{};
  if (batch.size() >= WriteCoalescing::kManySockets) {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    cpu = std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
    wall = std::chrono::steady_clock::now().time_since_epoch();
  }
  coalescing_.flushed(batch.size(), frames, wall, cpu);
  for (auto& link : batch)
    link->flush();
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, realtime::Hub& hub, HttpHooks hooks)
      : io(io), hub(hub), hooks(std::move(hooks)), broadcast(hub), acceptor(io) {}

  asio::io_context& io;
  realtime::Hub& hub;
  HttpHooks hooks;
  realtime::BroadcastEndpoint broadcast;
  tcp::acceptor acceptor;
  std::uint16_t port = 0;
  bool stopping = false;

  class WsSession;
  class LinkLoop;
  class HttpSession;
  // Websocket sessions by id, on the main loop (their links may run on other I/O loops).
  std::unordered_map<std::uint64_t, std::unique_ptr<WsSession>> ws_sessions;
  std::uint64_t last_ws_id = 0;
  WsSession* ws_session(std::uint64_t id) {
    auto it = ws_sessions.find(id);
    return it == ws_sessions.end() ? nullptr : it->second.get();
  }
  void forget(std::uint64_t id) { ws_sessions.erase(id); }
  std::unordered_set<HttpSession*> http_sessions;

  // The main loop's write coalescing, for the links it runs itself.
  WriteFlush write_flush{io};
  // The other I/O loops (hooks.ws_loops) and the next to take a websocket, round robin; the
  // main loop takes its turn as loop 0.
  std::vector<std::unique_ptr<LinkLoop>> link_loops;
  std::size_t next_loop = 0;

  void accept();
  core::Duration accept_backoff{};
  core::Timer accept_retry;  // timers::AcceptRetry

  // Open client connections, for the caps (hooks.connection_limits): each accepted connection
  // holds a Slot until its session (HTTP, then websocket after an upgrade) ends.
  class Slot;
  // An upgrade request that passed its checks: the session here, its link on the next loop.
  void start_websocket(Slot slot, tcp::socket socket, bhttp::request<bhttp::string_body> req,
                       protocol::Vsn vsn, auth::VerifiedJwt apikey);
  std::size_t open_connections = 0;
  std::map<asio::ip::address, std::size_t> per_address;
  // The cap a connection from `address` would exceed, if any.
  std::optional<std::string_view> over_cap(const asio::ip::address& address) const;
  void refused(std::string_view reason, const asio::ip::address& address);
  std::optional<core::TimePoint> refusal_logged;  // when the last refusal line was written
  std::uint64_t refusals_unlogged = 0;            // refusals since then
};

class HttpServer::Impl::Slot {
 public:
  Slot() = default;
  Slot(Impl& server, asio::ip::address address) : server_(&server), address_(address) {
    ++server.open_connections;
    ++server.per_address[address];
    server.hub.metrics().client_connections = static_cast<std::int64_t>(server.open_connections);
  }
  Slot(Slot&& other) noexcept
      : server_(std::exchange(other.server_, nullptr)), address_(other.address_) {}
  Slot& operator=(Slot&& other) noexcept {
    if (this != &other) {
      release();
      server_ = std::exchange(other.server_, nullptr);
      address_ = other.address_;
    }
    return *this;
  }
  ~Slot() { release(); }

 private:
  void release() noexcept {
    if (!server_) return;
    --server_->open_connections;
    if (auto it = server_->per_address.find(address_);
        it != server_->per_address.end() && --it->second == 0) {
      server_->per_address.erase(it);
    }
    server_->hub.metrics().client_connections =
        static_cast<std::int64_t>(server_->open_connections);
    server_ = nullptr;
  }
  Impl* server_ = nullptr;
  asio::ip::address address_;
};

// ---- websocket sessions: the main loop's half -----------------------------------------------

class HttpServer::Impl::WsSession final : public realtime::SessionIo, public LinkOwner {
 public:
  WsSession(Impl& server, std::uint64_t id, Slot slot, protocol::Vsn vsn, auth::VerifiedJwt apikey)
      : server_(server), id_(id), slot_(std::move(slot)), vsn_(vsn), apikey_(std::move(apikey)) {}
  ~WsSession() override { conn_.reset(); }

  std::uint64_t id() const noexcept { return id_; }
  const std::shared_ptr<WrittenCounters>& written() const noexcept { return written_; }
  // The link: the WsLink itself on the main loop, a LinkLoop's port for another I/O loop.
  void set_port(std::shared_ptr<LinkPort> port) { port_ = std::move(port); }
  void abort() {
    if (port_) port_->abort();
  }

  // ---- realtime::SessionIo
  bool send(const OutFrame& f) override {
    if (closing_ || gone_) return false;
    const auto& limits = server_.hub.limits();
    const std::size_t frames = queued_frames();
    const std::size_t bytes = queued_bytes();
    const bool too_many = frames >= limits.max_queued_frames;
    if (too_many || bytes + f.bytes->size() > limits.max_queued_bytes) {
      server_.hub.metrics().drop(realtime::drop::kSlowConsumer);
      // The close reason says which limit was hit (it must fit a close frame's 123 bytes).
      const std::string reason =
          too_many ? fmt::format("slow consumer: {} frames queued (limit {})", frames,
                                 limits.max_queued_frames)
                   : fmt::format("slow consumer: {} bytes queued (limit {})",
                                 bytes + f.bytes->size(), limits.max_queued_bytes);
      log::get(loggers::kServer)
          ->warn("closing session {}: {} ({} frames, {} bytes queued)", id_, reason, frames, bytes);
      close(protocol::close_code::kPolicyViolation, reason);
      return false;
    }
    ++sent_frames_;
    sent_bytes_ += f.bytes->size();
    port_->push(f);
    return true;
  }
  std::size_t queued_frames() const override {
    return sent_frames_ - std::min(sent_frames_, written_->frames.load(std::memory_order_acquire));
  }
  std::size_t queued_bytes() const override {
    return sent_bytes_ - std::min(sent_bytes_, written_->bytes.load(std::memory_order_acquire));
  }
  void when_drained(std::size_t frames, std::size_t bytes, std::function<void()> drained) override {
    drain_frames_ = frames;
    drain_bytes_ = bytes;
    drained_ = std::move(drained);
  }
  void close(std::uint16_t code, std::string_view reason) override {
    if (closing_ || gone_) return;
    closing_ = true;
    drained_ = nullptr;
    port_->close(code, std::string(reason));
  }

  // ---- LinkOwner
  void link_open() override {
    if (server_.stopping) {
      close(protocol::close_code::kGoingAway, "server shutting down");
      return;
    }
    conn_ = std::make_unique<realtime::Connection>(server_.hub, *this, vsn_, std::move(apikey_));
  }
  void link_message(std::string_view data, bool binary) override {
    if (!conn_ || closing_) return;
    if (binary) {
      conn_->on_binary(data);
    } else {
      conn_->on_text(data);
    }
  }
  void link_written(std::size_t frames, std::size_t bytes) override {
    auto& metrics = server_.hub.metrics();
    metrics.frames_out += frames;
    metrics.bytes_out += bytes;
    notify_drained();
  }
  void link_gone(bool too_big) override {
    if (too_big) {
      server_.hub.metrics().drop(realtime::drop::kFrameTooLarge);
      log::get(loggers::kServer)
          ->info("closing socket: message above {} bytes", server_.hub.limits().max_frame_bytes);
    }
    gone_ = true;
    drained_ = nullptr;
    // Unregisters the channels: safe here, never inside Hub iteration (the link reports from a
    // completion handler, or from its LinkLoop's mailbox).
    conn_.reset();
    server_.forget(id_);  // destroys this session
  }

 private:
  void notify_drained() {
    if (!drained_ || closing_ || gone_) return;
    if (queued_frames() > drain_frames_ || queued_bytes() > drain_bytes_) return;
    auto drained = std::move(drained_);
    drained_ = nullptr;
    drained();
  }

  Impl& server_;
  std::uint64_t id_;
  Slot slot_;
  protocol::Vsn vsn_;
  auth::VerifiedJwt apikey_;
  std::shared_ptr<LinkPort> port_;
  std::unique_ptr<realtime::Connection> conn_;
  std::shared_ptr<WrittenCounters> written_ = std::make_shared<WrittenCounters>();
  std::size_t sent_frames_ = 0;  // handed to the link so far
  std::size_t sent_bytes_ = 0;
  std::function<void()> drained_;
  std::size_t drain_frames_ = 0;
  std::size_t drain_bytes_ = 0;
  bool closing_ = false;
  bool gone_ = false;
};

// The mailboxes between the main loop and one other I/O loop, and the links that loop runs.
// Each side touches only its own members; a batch moves across in a posted handler, so nothing
// here takes a lock beyond the io_contexts' own queues.
class HttpServer::Impl::LinkLoop {
 public:
  LinkLoop(Impl& server, asio::io_context& io) : server_(server), io_(io), flush_(io) {}

  // ---- main loop side
  // Moves an upgraded connection's socket to this loop and starts its handshake there.
  void adopt(WsSession& session, tcp::socket socket, bhttp::request<bhttp::string_body> req) {
    beast::error_code ec;
    const auto protocol = socket.local_endpoint(ec).protocol();
    const int fd = ec ? -1 : socket.release(ec);
    if (ec) {
      // The socket closes with this scope; the session, which has no link to talk to, goes too
      // (and with it its connection slot) instead of waiting for a link that never reports.
      log::get(loggers::kServer)->warn("could not hand a websocket to its loop: {}", ec.message());
      server_.forget(session.id());
      return;
    }
    session.set_port(std::make_shared<Port>(*this, session.id()));
    asio::post(
        io_, [this, id = session.id(), protocol, fd, req = std::move(req),
              max = server_.hub.limits().max_frame_bytes, written = session.written()]() mutable {
          start_link(id, tcp::socket(io_, protocol, fd), std::move(req), max, std::move(written));
        });
  }

  // ---- this loop's side
  WriteFlush& write_flush() { return flush_; }

 private:
  struct Call {
    enum Kind : std::uint8_t { kFrame, kClose, kAbort, kResumeReading };
    Kind kind = kFrame;
    std::uint64_t id = 0;
    OutFrame frame{};
    std::uint16_t code = 0;
    std::string reason{};
  };
  struct Event {
    enum Kind : std::uint8_t { kOpen, kMessage, kWritten, kGone };
    Kind kind = kOpen;
    std::uint64_t id = 0;
    std::string data{};
    bool flag = false;  // message: binary; gone: too big
    std::size_t frames = 0;
    std::size_t bytes = 0;
  };

  // On the main loop: the WsSession's LinkPort.
  class Port final : public LinkPort {
   public:
    Port(LinkLoop& loop, std::uint64_t id) : loop_(loop), id_(id) {}
    void push(const OutFrame& f) override {
      Call c;
      c.id = id_;
      c.frame = f;
      loop_.call(std::move(c));
    }
    void close(std::uint16_t code, std::string reason) override {
      Call c;
      c.kind = Call::kClose;
      c.id = id_;
      c.code = code;
      c.reason = std::move(reason);
      loop_.call(std::move(c));
    }
    void abort() override {
      Call c;
      c.kind = Call::kAbort;
      c.id = id_;
      loop_.call(std::move(c));
    }

   private:
    LinkLoop& loop_;
    std::uint64_t id_;
  };

  // On this loop: the link's LinkOwner, which mails what the link says to the main loop.
  class Owner final : public LinkOwner {
   public:
    Owner(LinkLoop& loop, std::uint64_t id, std::shared_ptr<WrittenCounters> written)
        : loop_(loop), id_(id), written_(std::move(written)) {}
    void link_open() override { loop_.event(make(Event::kOpen)); }
    void link_message(std::string_view data, bool binary) override {
      written_->inbound.fetch_add(data.size(), std::memory_order_acq_rel);
      Event e = make(Event::kMessage);
      e.data = std::string(data);
      e.flag = binary;
      loop_.event(std::move(e));
    }
    void link_written(std::size_t frames, std::size_t bytes) override {
      Event e = make(Event::kWritten);
      e.frames = frames;
      e.bytes = bytes;
      loop_.event(std::move(e));
    }
    void link_gone(bool too_big) override {
      Event e = make(Event::kGone);
      e.flag = too_big;
      loop_.event(std::move(e));
      // Not inside this call: the link is still on its way out of it.
      asio::post(loop_.io_, [&loop = loop_, id = id_] { loop.links_.erase(id); });
    }

   private:
    Event make(Event::Kind kind) const {
      Event e;
      e.kind = kind;
      e.id = id_;
      return e;
    }
    LinkLoop& loop_;
    std::uint64_t id_;
    std::shared_ptr<WrittenCounters> written_;
  };

  struct Entry {
    std::shared_ptr<WsLink> link;
    std::unique_ptr<Owner> owner;
  };

  void start_link(std::uint64_t id, tcp::socket socket, bhttp::request<bhttp::string_body> req,
                  std::size_t max_message_bytes, std::shared_ptr<WrittenCounters> written) {
    auto owner = std::make_unique<Owner>(*this, id, written);
    auto link =
        std::make_shared<WsLink>(flush_, std::move(socket), max_message_bytes, std::move(written));
    link->set_owner(owner.get());
    links_[id] = Entry{link, std::move(owner)};
    link->start(std::move(req));
  }

  // Main loop → this loop, handed over once per main-loop pass.
  void call(Call c) {
    calls_.push_back(std::move(c));
    if (calls_posted_) return;
    calls_posted_ = true;
    asio::post(server_.io, [this] {
      calls_posted_ = false;
      asio::post(io_, [this, batch = std::move(calls_)] {
        for (const Call& c : batch) {
          auto it = links_.find(c.id);
          if (it == links_.end()) continue;  // gone: its session learns it from the mailbox
          auto& link = *it->second.link;
          switch (c.kind) {
            case Call::kFrame:
              link.push(c.frame);
              break;
            case Call::kClose:
              link.close(c.code, c.reason);
              break;
            case Call::kAbort:
              link.abort();
              break;
            case Call::kResumeReading:
              link.resume_reading();
              break;
          }
        }
      });
      calls_.clear();
    });
  }

  // This loop → main loop, handed over once per pass of this loop.
  void event(Event e) {
    events_.push_back(std::move(e));
    if (events_posted_) return;
    events_posted_ = true;
    asio::post(io_, [this] {
      events_posted_ = false;
      auto batch = std::make_shared<std::vector<Event>>(std::move(events_));
      events_.clear();
      asio::post(server_.io, [this, batch] { deliver(batch, 0); });
    });
  }

  // On the main loop, from `from` on. A turn stops after kEventsPerTurn events or
  // kEventBytesPerTurn of messages and the rest waits behind what the turn queued: the frames
  // sessions sent meanwhile go to their links first, as with one loop, where each message is a
  // turn of its own (a burst of inbound broadcasts handled in one turn would queue its whole
  // fan-out before any of it could be written, and close fast readers as slow).
  void deliver(const std::shared_ptr<std::vector<Event>>& batch, std::size_t from) {
    std::size_t bytes = 0;
    std::size_t i = from;
    for (; i < batch->size() && i - from < kEventsPerTurn && bytes < kEventBytesPerTurn; ++i) {
      const Event& e = (*batch)[i];
      bytes += e.data.size();
      WsSession* s = server_.ws_session(e.id);
      if (!s) continue;
      switch (e.kind) {
        case Event::kOpen:
          s->link_open();
          break;
        case Event::kMessage: {
          s->link_message(e.data, e.flag);
          // Handled: the link may read on if this brought it back under its window.
          const std::size_t before =
              s->written()->inbound.fetch_sub(e.data.size(), std::memory_order_acq_rel);
          if (before >= kInboundWindowBytes && before - e.data.size() < kInboundWindowBytes) {
            Call c;
            c.kind = Call::kResumeReading;
            c.id = e.id;
            call(std::move(c));
          }
          break;
        }
        case Event::kWritten:
          s->link_written(e.frames, e.bytes);
          break;
        case Event::kGone:
          s->link_gone(e.flag);
          break;
      }
    }
    if (i < batch->size()) asio::post(server_.io, [this, batch, i] { deliver(batch, i); });
  }

  static constexpr std::size_t kEventsPerTurn = 64;
  static constexpr std::size_t kEventBytesPerTurn = 64u << 10;

  Impl& server_;
  asio::io_context& io_;
  // Main loop's.
  std::vector<Call> calls_;
  bool calls_posted_ = false;
  // This loop's.
  WriteFlush flush_;
  std::unordered_map<std::uint64_t, Entry> links_;
  std::vector<Event> events_;
  bool events_posted_ = false;
};

// ---- plain HTTP session -----------------------------------------------------------------------

class HttpServer::Impl::HttpSession final : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(std::shared_ptr<Impl> server, tcp::socket socket)
      : server_(std::move(server)), stream_(std::move(socket)) {
    server_->http_sessions.insert(this);
  }
  ~HttpSession() { server_->http_sessions.erase(this); }

  void start(Slot slot) {
    slot_ = std::move(slot);
    read_next();
  }

  // A connection over a cap: 503 at once, before any request is read (so an upgrade request
  // never reaches the handshake), then the usual close.
  void refuse(std::string_view reason) {
    json::object o;
    o["error"] = reason == realtime::refusal::kMaxConnections
                     ? "too many connections"
                     : "too many connections from this address";
    o["reason"] = reason;
    send_response(503, {{"Content-Type", "application/json"}, {"Retry-After", "1"}},
                  json::serialize(o), false, false);
  }

  void stop() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  using Request = bhttp::request<bhttp::string_body>;

  void read_next() {
    parser_.emplace();
    parser_->body_limit(kMaxHttpBody);
    stream_.expires_after(kHttpTimeout);
    // The head first: its framing is checked before a single body byte is read.
    bhttp::async_read_header(
        stream_, buf_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read(ec);
    const auto& head = parser_->get();
    std::vector<HeaderField> fields;
    for (const auto& f : head) {
      if (f.name() == bhttp::field::content_length || f.name() == bhttp::field::transfer_encoding) {
        fields.push_back(HeaderField{f.name_string(), f.value()});
      }
    }
    if (auto framing = request_framing(head.version(), fields); !framing.ok()) {
      // Beast would read such a request as bodiless (or by a length an intermediary may not
      // share), and the bytes after it as the next request: refuse and close instead.
      server_->hub.metrics().drop(realtime::drop::kBadHttpRequest);
      log::get(loggers::kServer)
          ->info("refused HTTP request from {}: {}", peer(), framing.error().message);
      return respond(400, json_error("error", "bad request framing: " + framing.error().message),
                     false);
    }
    if (parser_->is_done()) return on_read({});
    bhttp::async_read(
        stream_, buf_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  std::string peer() {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (ec == bhttp::error::body_limit) {
        respond(413, json_error("error", "request body too large"), false);
        return;
      }
      // The peer went away (or timed out) mid-request: nobody to answer.
      if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
          ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) {
        return;
      }
      // A request Beast could not parse: say so, then close (the stream is out of step).
      server_->hub.metrics().drop(realtime::drop::kBadHttpRequest);
      log::get(loggers::kServer)->debug("bad HTTP request: {}", ec.message());
      if (ec == bhttp::error::header_limit) {
        respond(431, json_error("error", "request header fields too large"), false);
      } else {
        respond(400, json_error("error", "malformed HTTP request: " + ec.message()), false);
      }
      return;
    }
    Request req = parser_->release();
    Target target = parse_target(req.target());
    const std::string& path = target.path;

    if (path == "/realtime/v1/websocket" || path == "/socket/websocket") {
      return upgrade(std::move(req), target);
    }
    if (path == "/health" && req.method() == bhttp::verb::get) {
      bool ok = !server_->hooks.healthy || server_->hooks.healthy();
      json::object body{{"status", ok ? "ok" : "starting"}};
      if (server_->hooks.health_fields) server_->hooks.health_fields(body);
      return respond(ok ? 200 : 503, json::serialize(body), req.keep_alive());
    }
    if (path == "/metrics" && req.method() == bhttp::verb::get) {
      return respond(200, server_->hub.metrics().render(), req.keep_alive(),
                     "text/plain; version=0.0.4");
    }
    // Realtime's REST broadcast (realtime/broadcast_endpoint.hpp) before the other services.
    if (server_->broadcast.matches(path)) return serve(server_->broadcast, std::move(req), target);
    for (const auto& service : server_->hooks.services) {
      if (service->matches(path)) return serve(*service, std::move(req), target);
    }
    respond(404, json_error("error", "not found"), req.keep_alive());
  }

  // Hands the request to a service; the reply is written when the service answers (the session
  // reads nothing more until then, so responses stay in request order).
  void serve(http::HttpService& service, Request req, const Target& target) {
    http::HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = target.path;
    const auto full = std::string_view(req.target());
    if (auto q = full.find('?'); q != std::string_view::npos) r.query = full.substr(q + 1);
    for (const auto& field : req) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto [it, fresh] = r.headers.try_emplace(std::move(name), std::string(field.value()));
      if (!fresh) it->second.append(", ").append(field.value());
    }
    r.body = std::move(req.body());
    const bool keep = req.keep_alive();
    const bool head = req.method() == bhttp::verb::head;
    service.handle(std::move(r), [self = shared_from_this(), keep, head](http::HttpResponse res) {
      self->respond_with(std::move(res), keep, head);
    });
  }

  void respond_with(http::HttpResponse r, bool keep_alive, bool head) {
    send_response(r.status, std::move(r.headers), std::move(r.body), keep_alive, head);
  }

  void upgrade(Request req, const Target& target) {
    if (!websocket::is_upgrade(req)) {
      return respond(400, json_error("error", "expected a websocket upgrade"), false);
    }
    auto key = header(req, "x-api-key");
    if (!key) key = target.param("apikey");
    if (!key) key = header(req, "apikey");
    if (!key || key->empty()) return respond(401, json_error("error", "API key is missing"), false);
    auto vsn = protocol::parse_vsn(target.param("vsn").value_or(""));
    if (!vsn.ok()) {
      return respond(400, json_error("error", "unsupported vsn: " + vsn.error().message), false);
    }
    auto& hub = server_->hub;
    auto verified = hub.verifier().verify(*key, hub.scheduler().wall_now());
    if (!verified.ok()) {
      log::get(loggers::kServer)->info("upgrade refused: {}", verified.error().message);
      return respond(401, json_error("error", verified.error().connect_message()), false);
    }
    stream_.expires_never();
    server_->start_websocket(std::move(slot_), stream_.release_socket(), std::move(req),
                             vsn.value(), std::move(verified.value()));
  }

  void respond(unsigned status, std::string body, bool keep_alive,
               std::string_view content_type = "application/json") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!body.empty()) headers.emplace_back("Content-Type", std::string(content_type));
    send_response(static_cast<int>(status), std::move(headers), std::move(body), keep_alive, false);
  }

  // Writes an HTTP/1.1 response as Beast's serializer would lay it out — the status line,
  // "Server: rtsync", the headers in order (a later header replaces an earlier one of the same
  // name, as basic_fields::set does), "Connection: close" when not kept alive, Content-Length
  // (none for 1xx, 204 and 304) — but as one string and the body, in one gather write: Beast's
  // generic serializer cost more CPU than the rest of a cached page's response path.
  void send_response(int status, std::vector<std::pair<std::string, std::string>> headers,
                     std::string body, bool keep_alive, bool head) {
    keep_alive = keep_alive && !server_->stopping;
    std::vector<std::pair<std::string, std::string>> fields;
    fields.reserve(headers.size() + 3);
    fields.emplace_back("Server", "rtsync");
    auto set = [&fields](std::string name, std::string value) {
      std::erase_if(fields, [&](const auto& f) { return beast::iequals(f.first, name); });
      fields.emplace_back(std::move(name), std::move(value));
    };
    for (auto& [name, value] : headers)
      set(std::move(name), std::move(value));
    if (!keep_alive) set("Connection", "close");
    if (status / 100 == 1 || status == 204 || status == 304) {
      std::erase_if(fields,
                    [](const auto& f) { return beast::iequals(f.first, "Content-Length"); });
    } else {
      set("Content-Length", std::to_string(body.size()));
    }
    out_head_.clear();
    out_head_ += "HTTP/1.1 ";
    out_head_ += std::to_string(status);
    out_head_ += ' ';
    out_head_ += bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    out_head_ += "\r\n";
    for (const auto& [name, value] : fields) {
      out_head_ += name;
      out_head_ += ": ";
      out_head_ += value;
      out_head_ += "\r\n";
    }
    out_head_ += "\r\n";
    out_body_ = std::move(body);
    if (head) out_body_.clear();  // Content-Length stays that of the GET
    const std::array<asio::const_buffer, 2> bufs{asio::buffer(out_head_), asio::buffer(out_body_)};
    asio::async_write(stream_, bufs,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        self->out_body_ = std::string();  // an idle session keeps no page
                        if (ec || !keep_alive) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          if (!ec) self->linger();
                          return;
                        }
                        self->read_next();
                      });
  }

  // After the last response of a connection (sent, write side shut): closing while request bytes
  // the client already sent sit unread makes the kernel answer with a reset, which can destroy
  // the response before the client reads it. So read and discard until the client closes, for at
  // most kLingerTimeout and kLingerBytes.
  void linger() {
    buf_.clear();
    stream_.expires_after(kLingerTimeout);
    linger_read(0);
  }
  void linger_read(std::size_t drained) {
    stream_.async_read_some(buf_.prepare(4096), [self = shared_from_this(), drained](
                                                    beast::error_code ec, std::size_t n) {
      if (ec || drained + n > kLingerBytes) return;  // the stream closes with the session
      self->linger_read(drained + n);
    });
  }

  std::shared_ptr<Impl> server_;
  Slot slot_;  // none while refusing; moved to the websocket session on upgrade
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string out_head_;  // the response being written (one at a time per session)
  std::string out_body_;
};

void HttpServer::Impl::start_websocket(Slot slot, tcp::socket socket,
                                       bhttp::request<bhttp::string_body> req, protocol::Vsn vsn,
                                       auth::VerifiedJwt apikey) {
  const std::uint64_t id = ++last_ws_id;
  auto owned = std::make_unique<WsSession>(*this, id, std::move(slot), vsn, std::move(apikey));
  WsSession& session = *owned;
  ws_sessions.emplace(id, std::move(owned));
  const std::size_t loop = next_loop;
  next_loop = (next_loop + 1) % (link_loops.size() + 1);
  log::get(loggers::kServer)->debug("websocket session {} on I/O loop {}", id, loop);
  if (loop > 0) return link_loops[loop - 1]->adopt(session, std::move(socket), std::move(req));
  auto link = std::make_shared<WsLink>(write_flush, std::move(socket), hub.limits().max_frame_bytes,
                                       session.written());
  link->set_owner(&session);
  session.set_port(link);
  link->start(std::move(req));
}

void HttpServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopping) return;
    if (!ec) {
      keep_from_children(socket.native_handle());
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      const auto remote = socket.remote_endpoint(ignored);
      if (ignored) {
        // Gone already (reset before we got to it): nothing to serve.
      } else if (auto reason = self->over_cap(remote.address())) {
        self->refused(*reason, remote.address());
        std::make_shared<HttpSession>(self, std::move(socket))->refuse(*reason);
      } else {
        std::make_shared<HttpSession>(self, std::move(socket))
            ->start(Slot(*self, remote.address()));
      }
    } else if (ec == asio::error::operation_aborted) {
      return;
    } else {
      // Out of descriptors (EMFILE) and the like: accepting again at once would spin the loop
      // and the log; back off (10 ms doubling to 1 s) and let existing sessions finish.
      self->accept_backoff =
          self->accept_backoff == core::Duration::zero()
              ? std::chrono::milliseconds(10)
              : std::min<core::Duration>(self->accept_backoff * 2, std::chrono::seconds(1));
      log::get(loggers::kServer)
          ->warn(
              "accept failed: {}; accepting again in {} ms", ec.message(),
              std::chrono::duration_cast<std::chrono::milliseconds>(self->accept_backoff).count());
      self->accept_retry = self->hub.scheduler().schedule(
          self->accept_backoff, timers::AcceptRetry, [weak = std::weak_ptr<Impl>(self)] {
            if (auto s = weak.lock(); s && !s->stopping) s->accept();
          });
      return;
    }
    self->accept_backoff = core::Duration::zero();
    self->accept();
  });
}

std::optional<std::string_view> HttpServer::Impl::over_cap(const asio::ip::address& address) const {
  const auto& limits = hooks.connection_limits;
  if (limits.max_connections > 0 && open_connections >= limits.max_connections) {
    return realtime::refusal::kMaxConnections;
  }
  if (limits.max_connections_per_address > 0) {
    auto it = per_address.find(address);
    if (it != per_address.end() && it->second >= limits.max_connections_per_address) {
      return realtime::refusal::kMaxConnectionsPerAddress;
    }
  }
  return std::nullopt;
}

void HttpServer::Impl::refused(std::string_view reason, const asio::ip::address& address) {
  hub.metrics().refuse(reason);
  // A flood of refusals must not become a flood of log lines: one a second, with a count.
  const auto now = hub.scheduler().now();
  if (refusal_logged && now - *refusal_logged < std::chrono::seconds(1)) {
    ++refusals_unlogged;
    return;
  }
  const auto& limits = hooks.connection_limits;
  log::get(loggers::kServer)
      ->warn("refused a connection from {}: {} (open {}, caps {} total, {} per address){}",
             address.to_string(), reason, open_connections, limits.max_connections,
             limits.max_connections_per_address,
             refusals_unlogged > 0
                 ? fmt::format("; {} more refused since the last line", refusals_unlogged)
                 : std::string());
  refusal_logged = now;
  refusals_unlogged = 0;
}

// ---- HttpServer -------------------------------------------------------------------------------

HttpServer::HttpServer(asio::io_context& io, realtime::Hub& hub, HttpHooks hooks)
    : impl_(std::make_shared<Impl>(io, hub, std::move(hooks))) {
  for (asio::io_context* loop : impl_->hooks.ws_loops)
    impl_->link_loops.push_back(std::make_unique<Impl::LinkLoop>(*impl_, *loop));
}

HttpServer::~HttpServer() {
  beast::error_code ignored;
  impl_->stopping = true;
  impl_->acceptor.close(ignored);
}

Result<std::uint16_t> HttpServer::listen(std::string_view host, std::uint16_t port) {
  beast::error_code ec;
  auto address = asio::ip::make_address(std::string(host), ec);
  if (ec)
    return make_error(Errc::invalid_argument, "bad listen address '" + std::string(host) + "'");
  tcp::endpoint ep(address, port);
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) keep_from_children(acc.native_handle());
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acc.close(ignored);
    return make_error(Errc::io, "listen on " + std::string(host) + ":" + std::to_string(port) +
                                    ": " + ec.message());
  }
  impl_->port = acc.local_endpoint().port();
  impl_->accept();
  log::get(loggers::kServer)->info("listening on {}:{}", host, impl_->port);
  return impl_->port;
}

std::uint16_t HttpServer::port() const noexcept {
  return impl_->port;
}

void HttpServer::shutdown() {
  impl_->stopping = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  std::vector<Impl::WsSession*> ws;
  for (auto& [id, s] : impl_->ws_sessions)
    ws.push_back(s.get());
  for (auto* s : ws)
    s->close(protocol::close_code::kGoingAway, "server shutting down");
  std::vector<Impl::HttpSession*> hs(impl_->http_sessions.begin(), impl_->http_sessions.end());
  for (auto* s : hs)
    s->stop();
}

void HttpServer::abort() {
  impl_->stopping = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  for (auto& [id, s] : impl_->ws_sessions)
    s->abort();
  std::vector<Impl::HttpSession*> hs(impl_->http_sessions.begin(), impl_->http_sessions.end());
  for (auto* s : hs)
    s->stop();
}

std::size_t HttpServer::sessions() const noexcept {
  return impl_->ws_sessions.size() + impl_->http_sessions.size();
}

}  // namespace rtsync::server::http
