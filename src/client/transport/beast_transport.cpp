// The only translation unit of the client that includes Beast/Asio networking headers (besides
// beast_src.cpp): ws:// and wss:// sessions behind the Transport interface.
//
// Beast/Asio do the resolve, connect, TLS and the HTTP upgrade; after that the WebSocket framing is
// rtsync's own (ws_frame.hpp) over one large receive buffer: every read drains every complete
// frame it brought in one go, instead of one composed Beast read operation (and one scheduler
// round trip) per message.
#include "rtsync/client/transport/beast_transport.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <vector>

#include "beast_transport_testing.hpp"
#include "rtsync/client/transport/names.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/strings.hpp"
#include "rtsync/protocol/close_codes.hpp"
#include "ws_frame.hpp"

namespace rtsync::client {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

auto logger() {
  return log::get(loggers::kTransport);
}

struct Target {
  bool tls = false;
  std::string host;  // for DNS, SNI and certificate checks (no brackets)
  std::string port;
  std::string host_header;  // Host: as in the URL
  std::string target;       // path?query
};

Result<Target> parse_target(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return make_error(Errc::invalid_argument, "invalid WebSocket URL '" + url + "'");
  const auto& u = *parsed;
  Target t;
  const std::string scheme(u.scheme());
  if (scheme == "wss" || scheme == "https") {
    t.tls = true;
  } else if (scheme != "ws" && scheme != "http") {
    return make_error(Errc::invalid_argument, "unsupported URL scheme '" + scheme + "'");
  }
  t.host = u.host_address();
  if (t.host.empty()) return make_error(Errc::invalid_argument, "URL has no host: '" + url + "'");
  t.port = u.has_port() ? std::string(u.port()) : (t.tls ? "443" : "80");
  t.host_header = std::string(u.encoded_host_and_port());
  t.target = std::string(u.encoded_target());
  if (t.target.empty()) t.target = "/";
  return t;
}

// The receive buffer starts this big; one frame larger than it grows it (to exactly that frame,
// at most max_frame_bytes plus a header) until the frame is consumed and what follows fits this
// size again. The stream peer writes ~77 KB per batch.
constexpr std::size_t kReadBufferBytes = 128 * 1024;
// Every receive buffer has kBeastMessagePadding bytes past its capacity that reads never fill:
// a message that ends at the capacity still has its padding (Transport::message_padding).
static_assert(kBeastMessagePadding <= ws::kReassembledPadding);

std::unique_ptr<char[]> receive_buffer(std::size_t capacity) {
  auto buffer = std::make_unique_for_overwrite<char[]>(capacity + kBeastMessagePadding);
  // Never read into; zeroed so that what the parser may load from it is initialised.
  std::memset(buffer.get() + capacity, 0, kBeastMessagePadding);
  return buffer;
}
// At most this many queued frames go out in one write.
constexpr std::size_t kMaxFramesPerWrite = 64;
// The upgrade response's body is only read to report a refusal.
constexpr std::uint64_t kMaxRefusalBodyBytes = 1u << 20;

Errc errc_for(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return Errc::timeout;
  if (ec == net::error::operation_aborted) return Errc::cancelled;
  return Errc::io;
}

// Masking keys and the Sec-WebSocket-Key nonce MUST be unpredictable (RFC 6455 sections 5.3 and
// 10.3): a fast non-cryptographic generator leaks its state through the key visible in a plaintext
// handshake. OpenSSL's CSPRNG, drawn 4 KiB at a time so a masking key costs a copy, not a
// RAND_bytes call. One pool per thread: sessions are confined to their loop's thread.
class RandomPool {
 public:
  // False when OpenSSL cannot produce random bytes (the caller gives up on the connection).
  bool fill(void* out, std::size_t n) {
    if (kBytes - used_ < n) {
      if (RAND_bytes(pool_, static_cast<int>(kBytes)) != 1) return false;
      used_ = 0;
    }
    std::memcpy(out, pool_ + used_, n);
    used_ += n;
    return true;
  }

 private:
  static constexpr std::size_t kBytes = 4096;
  unsigned char pool_[kBytes];
  std::size_t used_ = kBytes;
};

RandomPool& random_pool() {
  thread_local RandomPool pool;
  return pool;
}

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// RFC 6455 section 4.2.2: base64(SHA-1(key + GUID)); nullopt when OpenSSL cannot hash.
std::optional<std::string> expected_accept(std::string_view key) {
  std::string input(key);
  input += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha1(), nullptr) != 1 || len == 0)
    return std::nullopt;
  return base64(digest, len);
}

using core::iequals;

// True when the comma-separated header value lists `token` (case-insensitively).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    auto item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
      item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
      item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void start() = 0;
  virtual Result<void> send(std::string frame, bool binary) = 0;
  // Graceful close handshake; no callback afterwards.
  virtual void close(int code, std::string reason) = 0;
  virtual std::size_t read_buffer_capacity() const = 0;
};

template <bool Tls>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Tls>> {
  // The concrete io_context executor (not any_io_executor): no type-erased executor copies in
  // every read. A plain socket, not beast::basic_stream: the one deadline (connect_timeout, then
  // the close timeout) is a timer of our own, so reads carry no per-operation timeout machinery.
  using Executor = net::io_context::executor_type;
  using Socket = net::basic_stream_socket<tcp, Executor>;
  using Stream = std::conditional_t<Tls, ssl::stream<Socket>, Socket>;
  using Timer = net::basic_waitable_timer<std::chrono::steady_clock,
                                          net::wait_traits<std::chrono::steady_clock>, Executor>;
  using Resolver = net::ip::basic_resolver<tcp, Executor>;

  enum class Phase {
    connecting,  // resolve, connect, TLS, upgrade
    open,        // frames delivered to the owner
    closing,     // our close frame is queued or sent; waiting for the server's (or EOF)
    discarding,  // we failed the connection (close frame queued); reading nothing more of it
    draining,    // close frames exchanged (or ours sent after a failure): our sending side is
                 // shut (TCP FIN or TLS close_notify); discarding input until the server's EOF
    done,        // socket closed
  };

 public:
  Session(net::io_context& io, std::shared_ptr<ssl::context> tls, Target target,
          Transport::Headers headers, std::shared_ptr<const TransportHandlers> handlers,
          const BeastTransportOptions& options)
      : io_(io),
        tls_(std::move(tls)),
        resolver_(io.get_executor()),
        stream_(make_stream(io, tls_.get())),
        timer_(io.get_executor()),
        target_(std::move(target)),
        headers_(std::move(headers)),
        handlers_(std::move(handlers)),
        options_(clamped(options)),
        parser_(options_.max_frame_bytes, options_.check_text_utf8) {}

  // A session that only reports `failure` (posted, never from inside connect()).
  void start_failed(TransportFailure failure) {
    early_failure_ = std::move(failure);
    net::post(io_, [self = this->shared_from_this()] {
      if (self->stopped_) return;
      self->stopped_ = true;
      self->phase_ = Phase::done;
      const auto hold = hold_owner(*self->handlers_);
      if (hold && self->handlers_->on_error) self->handlers_->on_error(*self->early_failure_);
    });
  }

  void start() override {
    // One deadline for resolve + connect + TLS + upgrade.
    timer_.expires_after(options_.connect_timeout);
    timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->phase_ != Phase::connecting) return;
      self->fail(Errc::timeout,
                 self->stage_ + ": timed out after " +
                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        self->options_.connect_timeout)
                                        .count()) +
                     " ms");
    });
    stage_ = "resolve " + target_.host;
    resolver_.async_resolve(
        target_.host, target_.port,
        [self = this->shared_from_this()](beast::error_code ec, typename Resolver::results_type r) {
          self->on_resolve(ec, std::move(r));
        });
  }

  Result<void> send(std::string frame, bool binary) override {
    if (phase_ != Phase::open || stopped_) return make_error(Errc::closed, "WebSocket is not open");
    if (queue_.size() >= options_.max_queued_frames) {
      return make_error(
          Errc::too_large,
          "outbound queue full (" + std::to_string(options_.max_queued_frames) + " frames)");
    }
    enqueue(binary ? ws::Opcode::binary : ws::Opcode::text, frame);
    return {};
  }

  std::size_t read_buffer_capacity() const override { return capacity_; }

  void close(int code, std::string reason) override {
    if (stopped_) return;
    stopped_ = true;
    if (phase_ == Phase::connecting) {
      // Still connecting: just tear the attempt down.
      finish();
      return;
    }
    if (phase_ != Phase::open) return;
    start_closing(Phase::closing, code, reason);
  }

 private:
  struct Outbound {
    std::string bytes;  // header + masked payload
    bool is_close = false;
  };

  static BeastTransportOptions clamped(BeastTransportOptions o) {
    // The frame length on the wire is 63 bits and drives an allocation: never trust it past this.
    o.max_frame_bytes = std::min(o.max_frame_bytes, kMaxFrameBytesLimit);
    return o;
  }

  static Stream make_stream(net::io_context& io, ssl::context* tls) {
    if constexpr (Tls) {
      return Stream(Socket(io.get_executor()), *tls);
    } else {
      (void)tls;
      return Stream(io.get_executor());
    }
  }

  Socket& socket() {
    if constexpr (Tls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  // Closes the socket (pending operations complete with operation_aborted) and the deadline.
  void finish() {
    phase_ = Phase::done;
    resolver_.cancel();
    timer_.cancel();
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

  void fail(Errc code, std::string message, int http_status = 0, std::string body = {}) {
    if (stopped_) return;
    stopped_ = true;
    finish();
    TransportFailure f{make_error(code, std::move(message)), http_status, std::move(body)};
    const auto hold = hold_owner(*handlers_);
    if (hold && handlers_->on_error) handlers_->on_error(f);
  }

  // ---- connecting ------------------------------------------------------------------------------

  void on_resolve(beast::error_code ec, typename Resolver::results_type results) {
    if (stopped_) return;
    if (ec) return fail(errc_for(ec), stage_ + ": " + ec.message());
    stage_ = "connect " + target_.host + ":" + target_.port;
    net::async_connect(socket(), results,
                       [self = this->shared_from_this()](
                           beast::error_code ec, const tcp::endpoint&) { self->on_connect(ec); });
  }

  void on_connect(beast::error_code ec) {
    if (stopped_) return;
    if (ec) return fail(errc_for(ec), stage_ + ": " + ec.message());
    beast::error_code ignored;
    socket().set_option(tcp::no_delay(true), ignored);
    if constexpr (Tls) {
      beast::error_code addr_ec;
      net::ip::make_address(target_.host, addr_ec);
      // SNI is for names only (RFC 6066); hosted Supabase routes by it.
      if (addr_ec && !SSL_set_tlsext_host_name(stream_.native_handle(), target_.host.c_str())) {
        return fail(Errc::io, "cannot set TLS SNI for " + target_.host);
      }
      stream_.set_verify_mode(options_.verify_peer ? ssl::verify_peer : ssl::verify_none);
      if (options_.verify_peer)
        stream_.set_verify_callback(ssl::host_name_verification(target_.host));
      stage_ = "TLS handshake with " + target_.host;
      stream_.async_handshake(
          ssl::stream_base::client,
          [self = this->shared_from_this()](beast::error_code ec) { self->on_tls_handshake(ec); });
    } else {
      send_upgrade();
    }
  }

  void on_tls_handshake(beast::error_code ec) {
    if (stopped_) return;
    if (ec) {
      std::string detail = ec.message();
      if constexpr (Tls) {
        const long verify = SSL_get_verify_result(stream_.native_handle());
        if (verify != X509_V_OK) {
          detail += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
        }
      }
      return fail(errc_for(ec), stage_ + ": " + detail);
    }
    send_upgrade();
  }

  void send_upgrade() {
    stage_ = "WebSocket handshake";
    unsigned char nonce[16];
    if (!random_pool().fill(nonce, sizeof nonce)) {
      return fail(Errc::internal, stage_ + ": no random bytes for Sec-WebSocket-Key");
    }
    key_ = base64(nonce, sizeof nonce);
    request_.method(http::verb::get);
    request_.target(target_.target);
    request_.version(11);
    request_.set(http::field::user_agent, options_.user_agent);
    for (const auto& [k, v] : headers_)
      request_.set(k, v);
    // The handshake's own fields last (set() replaces): a caller header cannot break the upgrade.
    request_.set(http::field::host, target_.host_header);
    request_.set(http::field::upgrade, "websocket");
    request_.set(http::field::connection, "Upgrade");
    request_.set(http::field::sec_websocket_key, key_);
    request_.set(http::field::sec_websocket_version, "13");
    http::async_write(stream_, request_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_upgrade_sent(ec);
                      });
  }

  void on_upgrade_sent(beast::error_code ec) {
    if (stopped_) return;
    if (ec) return fail(errc_for(ec), stage_ + ": " + ec.message());
    response_.emplace();
    response_->body_limit(kMaxRefusalBodyBytes);
    http::async_read(stream_, handshake_buffer_, *response_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_upgrade_response(ec);
                     });
  }

  void on_upgrade_response(beast::error_code ec) {
    if (stopped_) return;
    const auto& res = response_->get();
    const int status = response_->is_header_done() ? static_cast<int>(res.result_int()) : 0;
    if (status != 0 && status != 101) {
      // The refusal's body as far as it arrived (Supabase sends {"error": "<message>"}).
      return fail(Errc::remote, "WebSocket upgrade refused with HTTP " + std::to_string(status),
                  status, res.body());
    }
    if (ec) return fail(errc_for(ec), stage_ + ": " + ec.message());
    if (!iequals(std::string_view(res[http::field::upgrade]), "websocket") ||
        !has_token(std::string_view(res[http::field::connection]), "upgrade")) {
      return fail(Errc::protocol, stage_ + ": 101 response without Upgrade: websocket");
    }
    const auto accept = expected_accept(key_);
    if (!accept) return fail(Errc::internal, stage_ + ": cannot compute Sec-WebSocket-Accept");
    if (std::string_view(res[http::field::sec_websocket_accept]) != *accept) {
      return fail(Errc::protocol, stage_ + ": wrong Sec-WebSocket-Accept");
    }
    if (!res[http::field::sec_websocket_extensions].empty()) {
      return fail(Errc::protocol, stage_ + ": server chose an extension the client did not offer");
    }
    const std::string_view protocol(res[http::field::sec_websocket_protocol]);
    if (!protocol.empty() && !offered_protocol(protocol)) {
      return fail(Errc::protocol, stage_ + ": server chose subprotocol '" + std::string(protocol) +
                                      "' the client did not offer");
    }
    open();
  }

  // True when the caller's Sec-WebSocket-Protocol header lists `chosen` (one token).
  bool offered_protocol(std::string_view chosen) const {
    if (chosen.find(',') != std::string_view::npos) return false;
    for (const auto& [k, v] : headers_) {
      if (iequals(k, "Sec-WebSocket-Protocol") && has_token(v, chosen)) return true;
    }
    return false;
  }

  void open() {
    phase_ = Phase::open;
    timer_.cancel();
    // Bytes read past the response head are the first frames.
    const std::size_t early = handshake_buffer_.size();
    capacity_ = std::max(kReadBufferBytes, early);
    buffer_ = receive_buffer(capacity_);
    if (early != 0) std::memcpy(buffer_.get(), handshake_buffer_.data().data(), early);
    end_ = early;
    handshake_buffer_ = {};
    response_.reset();
    // Held through on_open and the frames that arrived with the upgrade's response.
    const auto hold = hold_owner(*handlers_);
    if (!hold) return finish();
    if (handlers_->on_open) handlers_->on_open();
    if (phase_ == Phase::done) return;
    if (end_ != 0) process();
    if (phase_ != Phase::done) do_read();
  }

  // ---- reading ---------------------------------------------------------------------------------

  void do_read() {
    // Compact: what is left is the start of an incomplete frame (usually short).
    const std::size_t left = end_ - begin_;
    if (capacity_ > kReadBufferBytes && left <= kReadBufferBytes && need_ <= kReadBufferBytes) {
      // The big frame is gone: give its memory back, keeping what follows it (a steady stream
      // rarely leaves the buffer exactly empty).
      auto fresh = receive_buffer(kReadBufferBytes);
      if (left != 0) std::memcpy(fresh.get(), buffer_.get() + begin_, left);
      buffer_ = std::move(fresh);
      capacity_ = kReadBufferBytes;
      begin_ = 0;
      end_ = left;
    } else if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ != 0) {
      std::memmove(buffer_.get(), buffer_.get() + begin_, left);
      end_ = left;
      begin_ = 0;
    }
    if (need_ > capacity_) {
      // One frame bigger than the buffer (the parser has checked it against max_frame_bytes,
      // itself at most kMaxFrameBytesLimit); the memory may still not be there.
      std::unique_ptr<char[]> bigger;
      try {
        bigger = receive_buffer(need_);
      } catch (const std::bad_alloc&) {
        begin_ = end_ = need_ = 0;
        on_protocol_failure(protocol::close_code::kMessageTooBig, "message too big: out of memory");
        if (phase_ == Phase::done) return;
      }
      if (bigger) {
        std::memcpy(bigger.get(), buffer_.get(), end_);
        buffer_ = std::move(bigger);
        capacity_ = need_;
      }
    }
    stream_.async_read_some(net::buffer(buffer_.get() + end_, capacity_ - end_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(beast::error_code ec, std::size_t n) {
    if (phase_ == Phase::done) return;
    // One keep-alive for every callback this read leads to (all the frames it completed). Only
    // an open connection calls back: a closing one (its owner may be gone: the transport's
    // destruction closes it) finishes its close handshake without one.
    std::optional<std::shared_ptr<void>> hold;
    if (phase_ == Phase::open && !(hold = hold_owner(*handlers_))) return finish();
    if (ec) {
      if (phase_ != Phase::open) return finish();  // the server ended the connection (or broke)
      // EOF or a reset without a close frame, or the socket we closed after a failed write.
      std::string reason = write_error_.empty() ? ec.message() : write_error_;
      finish();
      stopped_ = true;
      if (handlers_->on_close) handlers_->on_close(protocol::close_code::kAbnormal, reason);
      return;
    }
    end_ += n;
    process();
    if (phase_ != Phase::done) do_read();
  }

  // Frames are parsed until the server's close frame: nothing after it means anything.
  bool parsing() const {
    return (phase_ == Phase::open || phase_ == Phase::closing) && !close_received_;
  }

  // Delivers every complete frame in the buffer; stops as soon as the connection stops being
  // open (the owner may close or reconnect from inside any callback).
  void process() {
    need_ = 0;
    while (parsing()) {
      ws::Event ev;
      try {
        ev = parser_.next(buffer_.get() + begin_, end_ - begin_);
      } catch (const std::bad_alloc&) {
        // Reassembling a fragmented message within max_frame_bytes ran out of memory.
        ev.kind = ws::Event::Kind::fail;
        ev.code = protocol::close_code::kMessageTooBig;
        ev.payload = "message too big: out of memory";
      }
      begin_ += ev.consumed;
      switch (ev.kind) {
        case ws::Event::Kind::need_more:
          need_ = ev.need;
          return;
        case ws::Event::Kind::fragment:
        case ws::Event::Kind::pong:
          break;
        case ws::Event::Kind::message:
          if (phase_ == Phase::open && handlers_->on_message)
            handlers_->on_message(ev.payload, ev.binary);
          break;
        case ws::Event::Kind::ping:
          if (phase_ == Phase::open) enqueue(ws::Opcode::pong, ev.payload);
          break;
        case ws::Event::Kind::close:
          on_peer_close(ev.code, ev.payload);
          break;
        case ws::Event::Kind::fail:
          on_protocol_failure(ev.code, ev.payload);
          break;
      }
    }
    // After the server's close frame, or our failure close, the rest of the input is dropped.
    if (phase_ != Phase::done) begin_ = end_ = 0;
  }

  void on_peer_close(int code, std::string_view reason) {
    close_received_ = true;
    if (phase_ == Phase::open) {
      // Echo the code (RFC 6455 section 5.5.1); once it is out, end_sending().
      start_closing(Phase::closing, code, {});
      stopped_ = true;
      if (handlers_->on_close) handlers_->on_close(code, reason);
    } else if (close_sent_) {
      end_sending();
    }
    // Else our close frame is still being written; on_write ends the exchange.
  }

  void on_protocol_failure(int code, std::string_view why) {
    if (phase_ != Phase::open) return finish();
    logger()->warn("closing the connection with {}: {}", code, why);
    start_closing(Phase::discarding, code, why);
    stopped_ = true;
    if (handlers_->on_close) handlers_->on_close(code, why);
  }

  // Queues our close frame behind the frames being written (unsent ones are dropped) and bounds
  // the whole close (the server's answer and its end of the connection) by close_timeout.
  void start_closing(Phase next, int code, std::string_view reason) {
    phase_ = next;
    while (queue_.size() > in_flight_)
      queue_.pop_back();
    pong_queued_ = false;  // it was unsent, so it is gone
    enqueue(ws::Opcode::close, ws::close_payload(code, reason));
    timer_.expires_after(options_.close_timeout);
    timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->phase_ == Phase::done) return;
      self->finish();
    });
  }

  // Our last frame is out: shut our sending side (TCP FIN, or TLS close_notify) and read until the
  // server ends the connection (RFC 6455 section 7.1.1: the server closes TCP first), so neither
  // side's unread bytes turn the close into a reset. The close timer still bounds it.
  void end_sending() {
    phase_ = Phase::draining;
    if constexpr (Tls) {
      // Asio serialises the shutdown's reads with the pending read of the frame loop.
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code ec) {
        // Success means the server's close_notify came too; an error is left to the read loop
        // (or the timer), which sees the server's EOF.
        if (!ec && self->phase_ != Phase::done) self->finish();
      });
    } else {
      beast::error_code ignored;
      socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  // ---- writing ---------------------------------------------------------------------------------

  void enqueue(ws::Opcode opcode, std::string_view payload) {
    if (opcode == ws::Opcode::pong && pong_queued_) {
      // At most one unsent pong, answering the latest ping (RFC 6455 section 5.5.3): a server
      // pinging faster than it reads cannot grow the queue.
      encode(queue_[pong_position_ - popped_], opcode, payload);
      return;
    }
    Outbound out;
    out.is_close = opcode == ws::Opcode::close;
    if (!encode(out, opcode, payload)) return;
    if (opcode == ws::Opcode::pong) {
      pong_queued_ = true;
      pong_position_ = popped_ + queue_.size();
    }
    queue_.push_back(std::move(out));
    if (in_flight_ == 0) do_write();
  }

  // Header + masked payload into `out`. False (and the connection is being torn down) when no
  // random masking key can be had.
  bool encode(Outbound& out, ws::Opcode opcode, std::string_view payload) {
    std::uint32_t mask = 0;
    if (!random_pool().fill(&mask, sizeof mask)) {
      logger()->error("no random bytes for a masking key; dropping the connection");
      if (write_error_.empty()) write_error_ = "no random bytes for a masking key";
      beast::error_code ignored;
      socket().close(ignored);  // the pending read reports it (on_close 1006 when open)
      return false;
    }
    out.bytes.resize(ws::kMaxHeaderBytes + payload.size());
    const std::size_t h = ws::write_client_header(
        reinterpret_cast<unsigned char*>(out.bytes.data()), opcode, payload.size(), mask);
    if (!payload.empty()) std::memcpy(out.bytes.data() + h, payload.data(), payload.size());
    ws::apply_mask(out.bytes.data() + h, payload.size(), mask);
    out.bytes.resize(h + payload.size());
    return true;
  }

  void do_write() {
    in_flight_ = std::min(queue_.size(), kMaxFramesPerWrite);
    if (pong_queued_ && pong_position_ < popped_ + in_flight_) pong_queued_ = false;
    auto done = [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_write(ec);
    };
    if (in_flight_ == 1) {
      net::async_write(stream_, net::buffer(queue_.front().bytes), std::move(done));
      return;
    }
    if constexpr (Tls) {
      // TLS writes one buffer per record: join the frames into one.
      gathered_.clear();
      for (std::size_t i = 0; i < in_flight_; ++i)
        gathered_ += queue_[i].bytes;
      net::async_write(stream_, net::buffer(gathered_), std::move(done));
    } else {
      buffers_.clear();
      for (std::size_t i = 0; i < in_flight_; ++i)
        buffers_.push_back(net::buffer(queue_[i].bytes));
      net::async_write(stream_, buffers_, std::move(done));
    }
  }

  void on_write(beast::error_code ec) {
    for (; in_flight_ > 0; --in_flight_) {
      close_sent_ |= queue_.front().is_close;
      queue_.pop_front();
      ++popped_;
    }
    if (phase_ == Phase::done) return;
    if (ec) {
      if (phase_ != Phase::open) return finish();
      // Make the pending read fail so the owner hears about it exactly once, from on_read.
      if (write_error_.empty()) write_error_ = "write failed: " + ec.message();
      beast::error_code ignored;
      socket().close(ignored);
      return;
    }
    // Both close frames exchanged, or ours sent after a protocol failure (the server gets no more
    // from us at once, and unread bytes at close would reset the connection and could destroy
    // the close frame): read until its EOF or the close timeout.
    if (close_sent_ && (close_received_ || phase_ == Phase::discarding)) {
      if (phase_ != Phase::draining) end_sending();
      return;
    }
    if (!queue_.empty()) do_write();
  }

  net::io_context& io_;
  std::shared_ptr<ssl::context> tls_;
  Resolver resolver_;
  Stream stream_;
  Timer timer_;
  Target target_;
  Transport::Headers headers_;
  std::shared_ptr<const TransportHandlers> handlers_;
  BeastTransportOptions options_;
  Phase phase_ = Phase::connecting;
  bool stopped_ = false;  // the owner hears nothing more from this session
  std::string stage_;     // what the connect deadline interrupts, for its message

  // Upgrade.
  std::string key_;
  http::request<http::empty_body> request_;
  beast::flat_buffer handshake_buffer_;
  std::optional<http::response_parser<http::string_body>> response_;

  // Inbound: frames live in buffer_[begin_, end_).
  ws::FrameParser parser_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t need_ = 0;  // the incomplete frame at begin_ needs this many bytes in all

  // Outbound: queue_[0, in_flight_) is being written.
  std::deque<Outbound> queue_;
  std::size_t in_flight_ = 0;
  std::uint64_t popped_ = 0;  // frames written and removed from the front of queue_, ever
  bool pong_queued_ = false;  // an unsent pong is at queue_[pong_position_ - popped_]
  std::uint64_t pong_position_ = 0;
  std::vector<net::const_buffer> buffers_;
  std::string gathered_;
  bool close_sent_ = false;
  bool close_received_ = false;
  std::string write_error_;

  std::optional<TransportFailure> early_failure_;
};

class BeastTransport final : public Transport {
 public:
  BeastTransport(net::io_context& io, BeastTransportOptions options)
      : io_(io), options_(std::move(options)), handlers_(std::make_shared<TransportHandlers>()) {}

  ~BeastTransport() override {
    if (session_) session_->close(protocol::close_code::kNormal, "");
  }

  void set_handlers(TransportHandlers handlers) override {
    handlers_ = std::make_shared<const TransportHandlers>(std::move(handlers));
  }

  void connect(std::string url, Headers headers) override {
    if (session_) session_->close(protocol::close_code::kNormal, "");
    session_.reset();
    auto target = parse_target(url);
    if (!target.ok()) return start_failed(TransportFailure{target.error(), 0, {}});
    if (target.value().tls) {
      auto ctx = tls_context();
      if (!ctx.ok()) return start_failed(TransportFailure{ctx.error(), 0, {}});
      auto s = std::make_shared<Session<true>>(io_, ctx.value(), std::move(target.value()),
                                               std::move(headers), handlers_, options_);
      session_ = s;
      s->start();
    } else {
      auto s = std::make_shared<Session<false>>(io_, nullptr, std::move(target.value()),
                                                std::move(headers), handlers_, options_);
      session_ = s;
      s->start();
    }
  }

  Result<void> send(std::string frame, bool binary) override {
    if (!session_) return make_error(Errc::closed, "not connected");
    return session_->send(std::move(frame), binary);
  }

  void close(int code, std::string reason) override {
    if (!session_) return;
    session_->close(code, std::move(reason));
    session_.reset();
  }

  std::size_t message_padding() const noexcept override { return kBeastMessagePadding; }

  std::size_t read_buffer_capacity() const {
    return session_ ? session_->read_buffer_capacity() : 0;
  }

 private:
  void start_failed(TransportFailure failure) {
    auto s =
        std::make_shared<Session<false>>(io_, nullptr, Target{}, Headers{}, handlers_, options_);
    session_ = s;
    s->start_failed(std::move(failure));
  }

  Result<std::shared_ptr<ssl::context>> tls_context() {
    if (tls_) return tls_;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    beast::error_code ec;
    ctx->set_default_verify_paths(ec);
    if (ec) logger()->warn("system CA store not loaded: {}", ec.message());
    if (!options_.ca_file.empty()) {
      ctx->load_verify_file(options_.ca_file, ec);
      if (ec) {
        return make_error(Errc::io,
                          "cannot load CA file '" + options_.ca_file + "': " + ec.message());
      }
    }
    ctx->set_verify_mode(options_.verify_peer ? ssl::verify_peer : ssl::verify_none);
    tls_ = ctx;
    return ctx;
  }

  net::io_context& io_;
  BeastTransportOptions options_;
  std::shared_ptr<const TransportHandlers> handlers_;
  std::shared_ptr<ssl::context> tls_;
  std::shared_ptr<SessionBase> session_;
};

}  // namespace

namespace testing {
std::size_t read_buffer_capacity(const Transport& transport) {
  const auto* t = dynamic_cast<const BeastTransport*>(&transport);
  return t ? t->read_buffer_capacity() : 0;
}
}  // namespace testing

std::unique_ptr<Transport> make_beast_transport(net::io_context& io,
                                                BeastTransportOptions options) {
  return std::make_unique<BeastTransport>(io, std::move(options));
}

std::unique_ptr<RealtimeSocket> make_realtime_socket(core::EventLoop& loop, SocketOptions options,
                                                     BeastTransportOptions transport) {
  transport.max_frame_bytes = options.max_frame_bytes;
  transport.check_text_utf8 = false;  // SocketCore::receive checks, by parsing
  auto t = make_beast_transport(loop.io_context(), std::move(transport));
  return std::make_unique<RealtimeSocket>(loop.scheduler(), std::move(t), std::move(options));
}

}  // namespace rtsync::client
