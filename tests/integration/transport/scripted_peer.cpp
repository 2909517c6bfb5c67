#include "scripted_peer.hpp"

#include <openssl/ssl.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace rtsync::testing {

namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
}  // namespace

class ConnBase : public PeerConnection {
 public:
  virtual void start() = 0;
  virtual bool alive() const = 0;
};

struct ScriptedPeer::Impl {
  explicit Impl(PeerOptions o) : options(std::move(o)) {
    if (options.tls) {
      tls.emplace(ssl::context::tls_server);
      tls->use_certificate_chain_file(options.cert_file);
      tls->use_private_key_file(options.key_file, ssl::context::pem);
    }
    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
    acceptor.open(ep.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen();
    port = acceptor.local_endpoint().port();
    accept();
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() {
    net::post(io, [this] {
      beast::error_code ignored;
      acceptor.close(ignored);
      guard.reset();
      io.stop();
    });
    thread.join();
  }

  void accept();

  PeerOptions options;
  // Declared before the io_context so that it outlives the connections the io_context destroys.
  std::optional<ssl::context> tls;
  net::io_context io{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard{
      net::make_work_guard(io)};
  tcp::acceptor acceptor{io};
  std::uint16_t port = 0;
  std::thread thread;

  // Peer-thread state.
  Script script;
  OnOpen on_open;
  std::vector<std::weak_ptr<ConnBase>> conns;
  int next_id = 0;

  // Shared with the test thread.
  mutable std::mutex mu;
  std::size_t upgrades = 0;
  std::size_t refused = 0;
  std::vector<std::string> targets;
  std::vector<std::pair<int, std::string>> closes;
  std::vector<std::string> received;
  std::string sni;
};

namespace {

template <bool Tls>
class Conn final : public ConnBase, public std::enable_shared_from_this<Conn<Tls>> {
  using Next = std::conditional_t<Tls, ssl::stream<beast::tcp_stream>, beast::tcp_stream>;

 public:
  Conn(ScriptedPeer::Impl& peer, tcp::socket socket, int id)
      : peer_(peer), ws_(make(peer, std::move(socket))), id_(id) {}

  int id() const override { return id_; }
  const std::string& target() const override { return target_; }
  bool alive() const override { return open_ && !closed_; }

  void start() override {
    if constexpr (Tls) {
      ws_.next_layer().async_handshake(
          ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
            if (ec) return;
            const char* name = SSL_get_servername(self->ws_.next_layer().native_handle(),
                                                  TLSEXT_NAMETYPE_host_name);
            {
              std::lock_guard lock(self->peer_.mu);
              self->peer_.sni = name ? name : "";
            }
            self->read_request();
          });
    } else {
      read_request();
    }
  }

  void send_text(std::string frame) override { enqueue(std::move(frame), false); }
  void send_binary(std::string frame) override { enqueue(std::move(frame), true); }

  void close(int code, std::string reason) override {
    if (closed_) return;
    closed_ = true;
    ws_.async_close(
        websocket::close_reason(static_cast<websocket::close_code>(code), std::string_view(reason)),
        [self = this->shared_from_this()](beast::error_code) {});
  }

  void drop_mid_frame() override {
    if (closed_) return;
    closed_ = true;
    // FIN + text, 16-bit length 256, then only 11 payload bytes.
    const std::string partial = std::string("\x81\x7e\x01\x00", 4) + "[null,null,";
    beast::error_code ec;
    net::write(ws_.next_layer(), net::buffer(partial), ec);
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

 private:
  static websocket::stream<Next> make(ScriptedPeer::Impl& peer, tcp::socket socket) {
    if constexpr (Tls) {
      return websocket::stream<Next>(std::move(socket), *peer.tls);
    } else {
      return websocket::stream<Next>(std::move(socket));
    }
  }

  void read_request() {
    http::async_read(ws_.next_layer(), buffer_, request_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       self->on_request();
                     });
  }

  void on_request() {
    target_ = std::string(request_.target());
    {
      std::lock_guard lock(peer_.mu);
      peer_.targets.push_back(target_);
    }
    if (peer_.options.refuse_status != 0) {
      {
        std::lock_guard lock(peer_.mu);
        ++peer_.refused;
      }
      response_.result(static_cast<http::status>(peer_.options.refuse_status));
      response_.version(11);
      response_.set(http::field::content_type, "application/json");
      response_.body() = peer_.options.refuse_body;
      response_.keep_alive(false);
      response_.prepare_payload();
      http::async_write(ws_.next_layer(), response_,
                        [self = this->shared_from_this()](beast::error_code, std::size_t) {
                          beast::error_code ec;
                          beast::get_lowest_layer(self->ws_).socket().shutdown(
                              tcp::socket::shutdown_both, ec);
                          beast::get_lowest_layer(self->ws_).socket().close(ec);
                        });
      return;
    }
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(request_, [self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->open_ = true;
      {
        std::lock_guard lock(self->peer_.mu);
        ++self->peer_.upgrades;
      }
      self->peer_.conns.push_back(self);
      if (self->peer_.on_open) self->peer_.on_open(*self);
      self->do_read();
    });
  }

  void do_read() {
    ws_.async_read(read_buffer_, [self = this->shared_from_this()](
                                     beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (ec == websocket::error::closed) {
        std::lock_guard lock(peer_.mu);
        peer_.closes.emplace_back(ws_.reason().code, std::string(ws_.reason().reason.c_str()));
      }
      closed_ = true;
      return;
    }
    const auto data = read_buffer_.cdata();
    const std::string frame(static_cast<const char*>(data.data()), data.size());
    const bool binary = !ws_.got_text();
    read_buffer_.consume(read_buffer_.size());
    if (!binary) {
      std::lock_guard lock(peer_.mu);
      peer_.received.push_back(frame);
    }
    if (peer_.script && !closed_) peer_.script(*this, frame, binary);
    if (!closed_) do_read();
  }

  void enqueue(std::string frame, bool binary) {
    if (closed_) return;
    queue_.emplace_back(std::move(frame), binary);
    if (!writing_) do_write();
  }

  void do_write() {
    if (queue_.empty() || closed_) return;
    writing_ = true;
    ws_.text(!queue_.front().second);
    ws_.async_write(net::buffer(queue_.front().first),
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      self->writing_ = false;
                      self->queue_.pop_front();
                      if (!ec) self->do_write();
                    });
  }

  ScriptedPeer::Impl& peer_;
  websocket::stream<Next> ws_;
  int id_;
  beast::flat_buffer buffer_;
  beast::flat_buffer read_buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  std::string target_;
  std::deque<std::pair<std::string, bool>> queue_;
  bool writing_ = false;
  bool open_ = false;
  bool closed_ = false;
};

}  // namespace

void ScriptedPeer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;  // closed at shutdown
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::shared_ptr<ConnBase> conn;
    if (options.tls) {
      conn = std::make_shared<Conn<true>>(*this, std::move(socket), ++next_id);
    } else {
      conn = std::make_shared<Conn<false>>(*this, std::move(socket), ++next_id);
    }
    conn->start();
    accept();
  });
}

ScriptedPeer::ScriptedPeer(PeerOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {}
ScriptedPeer::~ScriptedPeer() = default;

std::uint16_t ScriptedPeer::port() const {
  return impl_->port;
}

void ScriptedPeer::set_script(Script script) {
  post([impl = impl_.get(), s = std::move(script)]() mutable { impl->script = std::move(s); });
}
void ScriptedPeer::set_on_open(OnOpen on_open) {
  post([impl = impl_.get(), s = std::move(on_open)]() mutable { impl->on_open = std::move(s); });
}

void ScriptedPeer::post(std::function<void()> fn) {
  net::post(impl_->io, std::move(fn));
}

void ScriptedPeer::with_latest(std::function<void(PeerConnection&)> fn) {
  post([impl = impl_.get(), fn = std::move(fn)] {
    for (auto it = impl->conns.rbegin(); it != impl->conns.rend(); ++it) {
      if (auto c = it->lock(); c && c->alive()) {
        fn(*c);
        return;
      }
    }
  });
}

std::size_t ScriptedPeer::upgrades() const {
  std::lock_guard lock(impl_->mu);
  return impl_->upgrades;
}
std::size_t ScriptedPeer::refused() const {
  std::lock_guard lock(impl_->mu);
  return impl_->refused;
}
std::vector<std::string> ScriptedPeer::targets() const {
  std::lock_guard lock(impl_->mu);
  return impl_->targets;
}
std::vector<std::pair<int, std::string>> ScriptedPeer::client_closes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->closes;
}
std::vector<std::string> ScriptedPeer::received() const {
  std::lock_guard lock(impl_->mu);
  return impl_->received;
}
std::string ScriptedPeer::last_sni() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sni;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace rtsync::testing
