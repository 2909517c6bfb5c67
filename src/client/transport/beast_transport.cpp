// The only translation unit of the client that includes Beast/Asio networking headers (besides
// beast_src.cpp): ws:// and wss:// sessions behind the Transport interface.
#include "rtsync/client/transport/beast_transport.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/buffered_read_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>
#include <deque>
#include <optional>
#include <type_traits>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/log.hpp"

// WebSocket close for a buffered_read_stream layer: tear down the stream below it (Beast finds
// teardown by argument-dependent lookup in the layer's namespace).
namespace boost::beast {
template <class Next, class Buffer>
void teardown(role_type role, buffered_read_stream<Next, Buffer>& stream, error_code& ec) {
  using websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}
template <class Next, class Buffer, class Handler>
void async_teardown(role_type role, buffered_read_stream<Next, Buffer>& stream, Handler&& handler) {
  using websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<Handler>(handler));
}
}  // namespace boost::beast

namespace rtsync::client {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

auto logger() {
  return log::get(log::kTransport);
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

constexpr std::size_t kReadBufferBytes = 64 * 1024;

Errc errc_for(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return Errc::timeout;
  if (ec == net::error::operation_aborted) return Errc::cancelled;
  return Errc::io;
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void start() = 0;
  virtual Result<void> send(std::string frame, bool binary) = 0;
  // Graceful close handshake; no callback afterwards.
  virtual void close(int code, std::string reason) = 0;
};

template <bool Tls>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Tls>> {
  // The concrete io_context executor (not any_io_executor): no type-erased executor copies in
  // every composed read. Plain ws reads go through a 64 KiB buffer: Beast reads at most 1536
  // bytes per call from the layer below, which would be one or two recvmsg per frame; TLS
  // streams already read whole records.
  using Tcp = beast::basic_stream<tcp, net::io_context::executor_type>;
  using Next = std::conditional_t<Tls, ssl::stream<Tcp>,
                                  beast::buffered_read_stream<Tcp, beast::flat_buffer>>;
  using Ws = websocket::stream<Next>;

 public:
  Session(net::io_context& io, std::shared_ptr<ssl::context> tls, Target target,
          Transport::Headers headers, std::shared_ptr<const TransportHandlers> handlers,
          const BeastTransportOptions& options)
      : io_(io),
        tls_(std::move(tls)),
        resolver_(io),
        ws_(make_stream(io, tls_.get())),
        target_(std::move(target)),
        headers_(std::move(headers)),
        handlers_(std::move(handlers)),
        options_(options) {}

  // A session that only reports `failure` (posted, never from inside connect()).
  void start_failed(TransportFailure failure) {
    early_failure_ = std::move(failure);
    net::post(io_, [self = this->shared_from_this()] {
      if (self->stopped_) return;
      self->stopped_ = true;
      auto h = self->handlers_;
      if (h->on_error) h->on_error(*self->early_failure_);
    });
  }

  void start() override {
    resolver_.async_resolve(
        target_.host, target_.port,
        [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
          self->on_resolve(ec, std::move(r));
        });
  }

  Result<void> send(std::string frame, bool binary) override {
    if (!open_ || stopped_) return make_error(Errc::closed, "WebSocket is not open");
    if (queue_.size() >= options_.max_queued_frames) {
      return make_error(
          Errc::too_large,
          "outbound queue full (" + std::to_string(options_.max_queued_frames) + " frames)");
    }
    queue_.push_back(Outbound{std::move(frame), binary});
    if (!writing_) do_write();
    return {};
  }

  void close(int code, std::string reason) override {
    if (stopped_) return;
    stopped_ = true;
    if (!open_) {
      // Still connecting: just tear the attempt down.
      resolver_.cancel();
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return;
    }
    // Keep only the frame being written; the close frame follows it.
    while (queue_.size() > (writing_ ? 1u : 0u))
      queue_.pop_back();
    if (reason.size() > 123) reason.resize(123);  // the limit of a close frame's reason
    close_after_write_ =
        websocket::close_reason(static_cast<websocket::close_code>(code), std::string_view(reason));
    if (!writing_) do_close();
  }

 private:
  struct Outbound {
    std::string data;
    bool binary = false;
  };

  static Ws make_stream(net::io_context& io, ssl::context* tls) {
    if constexpr (Tls) {
      return Ws(io, *tls);
    } else {
      (void)tls;
      Ws ws(io);
      // Reads go to the buffer's free space (at least 512 bytes): reserve it all up front.
      ws.next_layer().capacity(kReadBufferBytes);
      ws.next_layer().buffer().reserve(kReadBufferBytes);
      return ws;
    }
  }

  void fail(Errc code, std::string message, int http_status = 0, std::string body = {}) {
    if (stopped_) return;
    stopped_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    TransportFailure f{make_error(code, std::move(message)), http_status, std::move(body)};
    auto h = handlers_;
    if (h->on_error) h->on_error(f);
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (stopped_) return;
    if (ec) return fail(errc_for(ec), "resolve " + target_.host + ": " + ec.message());
    beast::get_lowest_layer(ws_).expires_after(options_.connect_timeout);
    beast::get_lowest_layer(ws_).async_connect(
        results, [self = this->shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
          self->on_connect(ec);
        });
  }

  void on_connect(beast::error_code ec) {
    if (stopped_) return;
    if (ec) {
      return fail(errc_for(ec),
                  "connect " + target_.host + ":" + target_.port + ": " + ec.message());
    }
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
    if constexpr (Tls) {
      auto& stream = ws_.next_layer();
      beast::error_code addr_ec;
      net::ip::make_address(target_.host, addr_ec);
      // SNI is for names only (RFC 6066); hosted Supabase routes by it.
      if (addr_ec && !SSL_set_tlsext_host_name(stream.native_handle(), target_.host.c_str())) {
        return fail(Errc::io, "cannot set TLS SNI for " + target_.host);
      }
      stream.set_verify_mode(options_.verify_peer ? ssl::verify_peer : ssl::verify_none);
      if (options_.verify_peer)
        stream.set_verify_callback(ssl::host_name_verification(target_.host));
      beast::get_lowest_layer(ws_).expires_after(options_.connect_timeout);
      stream.async_handshake(
          ssl::stream_base::client,
          [self = this->shared_from_this()](beast::error_code ec) { self->on_tls_handshake(ec); });
    } else {
      websocket_handshake();
    }
  }

  void on_tls_handshake(beast::error_code ec) {
    if (stopped_) return;
    if (ec) {
      std::string detail = ec.message();
      if constexpr (Tls) {
        const long verify = SSL_get_verify_result(ws_.next_layer().native_handle());
        if (verify != X509_V_OK) {
          detail += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
        }
      }
      return fail(errc_for(ec), "TLS handshake with " + target_.host + ": " + detail);
    }
    websocket_handshake();
  }

  void websocket_handshake() {
    // The WebSocket stream has its own timeouts; the TCP one must not interfere.
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = options_.connect_timeout;
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [ua = options_.user_agent, headers = headers_](websocket::request_type& req) {
          req.set(http::field::user_agent, ua);
          for (const auto& [k, v] : headers)
            req.set(k, v);
        }));
    ws_.read_message_max(options_.max_frame_bytes);
    ws_.auto_fragment(false);
    ws_.async_handshake(
        response_, target_.host_header, target_.target,
        [self = this->shared_from_this()](beast::error_code ec) { self->on_ws_handshake(ec); });
  }

  void on_ws_handshake(beast::error_code ec) {
    if (stopped_) return;
    if (ec) {
      const int status = static_cast<int>(response_.result_int());
      if (status != 0 && status != 101) {
        return fail(Errc::remote, "WebSocket upgrade refused with HTTP " + std::to_string(status),
                    status, response_.body());
      }
      return fail(errc_for(ec), "WebSocket handshake: " + ec.message());
    }
    open_ = true;
    auto h = handlers_;
    if (h->on_open) h->on_open();
    if (!stopped_) do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (stopped_) return;
    if (ec) {
      stopped_ = true;
      int code = kCloseAbnormal;
      std::string reason;
      if (ec == websocket::error::closed) {
        code = ws_.reason().code;
        reason = std::string(ws_.reason().reason.c_str());
      } else if (ec == websocket::error::message_too_big) {
        code = kCloseTooBig;
        reason = "message too big";
      } else {
        reason = write_error_.empty() ? ec.message() : write_error_;
      }
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      auto h = handlers_;
      if (h->on_close) h->on_close(code, reason);
      return;
    }
    const auto data = buffer_.cdata();
    const std::string_view view(static_cast<const char*>(data.data()), data.size());
    auto h = handlers_;
    if (h->on_message) h->on_message(view, !ws_.got_text());
    buffer_.consume(buffer_.size());
    if (!stopped_) do_read();
  }

  void do_write() {
    writing_ = true;
    auto& front = queue_.front();
    ws_.text(!front.binary);
    ws_.async_write(net::buffer(front.data),
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      self->on_write(ec);
                    });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (!queue_.empty()) queue_.pop_front();
    if (close_after_write_ && !ec) return do_close();
    if (stopped_) return;
    if (ec) {
      // Make the pending read fail so the owner hears about it exactly once, from on_read.
      write_error_ = "write failed: " + ec.message();
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return;
    }
    if (!queue_.empty()) do_write();
  }

  void do_close() {
    auto reason = *close_after_write_;
    close_after_write_.reset();
    ws_.async_close(reason, [self = this->shared_from_this()](beast::error_code) {
      // Beast tore the connection down (or its close timeout did); nothing to report.
    });
  }

  net::io_context& io_;
  std::shared_ptr<ssl::context> tls_;
  tcp::resolver resolver_;
  Ws ws_;
  Target target_;
  Transport::Headers headers_;
  std::shared_ptr<const TransportHandlers> handlers_;
  BeastTransportOptions options_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  std::deque<Outbound> queue_;
  std::optional<websocket::close_reason> close_after_write_;
  std::optional<TransportFailure> early_failure_;
  std::string write_error_;
  bool open_ = false;
  bool writing_ = false;
  bool stopped_ = false;
};

class BeastTransport final : public Transport {
 public:
  BeastTransport(net::io_context& io, BeastTransportOptions options)
      : io_(io), options_(std::move(options)), handlers_(std::make_shared<TransportHandlers>()) {}

  ~BeastTransport() override {
    if (session_) session_->close(kCloseNormal, "");
  }

  void set_handlers(TransportHandlers handlers) override {
    handlers_ = std::make_shared<const TransportHandlers>(std::move(handlers));
  }

  void connect(std::string url, Headers headers) override {
    if (session_) session_->close(kCloseNormal, "");
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

std::unique_ptr<Transport> make_beast_transport(net::io_context& io,
                                                BeastTransportOptions options) {
  return std::make_unique<BeastTransport>(io, std::move(options));
}

std::unique_ptr<RealtimeSocket> make_realtime_socket(core::EventLoop& loop, SocketOptions options,
                                                     BeastTransportOptions transport) {
  transport.max_frame_bytes = options.max_frame_bytes;
  auto t = make_beast_transport(loop.io_context(), std::move(transport));
  return std::make_unique<RealtimeSocket>(loop.scheduler(), std::move(t), std::move(options));
}

}  // namespace rtsync::client
