#include "service_host.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace rtsync::test {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using server::http::HttpRequest;
using server::http::HttpResponse;
using server::http::HttpService;

}  // namespace

struct ServiceHost::Impl : std::enable_shared_from_this<ServiceHost::Impl> {
  Impl(net::io_context& io, std::vector<HttpService*> services)
      : io(io), acceptor(io), services(std::move(services)) {}

  struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket s, std::weak_ptr<Impl> owner, ssl::context* tls) : owner(std::move(owner)) {
      if (tls) {
        secure.emplace(std::move(s), *tls);
      } else {
        plain.emplace(std::move(s));
      }
    }
    std::optional<beast::tcp_stream> plain;
    std::optional<ssl::stream<beast::tcp_stream>> secure;
    std::weak_ptr<Impl> owner;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> res;

    template <class F>
    void with_stream(F&& f) {
      if (secure) {
        f(*secure);
      } else {
        f(*plain);
      }
    }
    beast::tcp_stream& lowest() { return secure ? secure->next_layer() : *plain; }

    void start() {
      if (!secure) return read();
      secure->async_handshake(ssl::stream_base::server,
                              [self = shared_from_this()](beast::error_code ec) {
                                if (ec) return self->close();
                                self->read();
                              });
    }

    void read() {
      parser.emplace();
      parser->body_limit(8 << 20);
      with_stream([&](auto& stream) {
        http::async_read(stream, buffer, *parser,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                           if (ec) return self->close();
                           self->dispatch();
                         });
      });
    }

    void dispatch() {
      auto host = owner.lock();
      if (!host) return close();
      ++host->requests;
      auto& msg = parser->get();
      HttpRequest req;
      req.method = std::string(msg.method_string());
      const std::string_view target = msg.target();
      const auto q = target.find('?');
      req.target = std::string(target.substr(0, q));
      if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
      for (const auto& f : msg) {
        std::string name(f.name_string());
        for (char& c : name)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto [it, added] = req.headers.emplace(name, std::string(f.value()));
        if (!added) it->second += ", " + std::string(f.value());
      }
      req.body = std::move(msg.body());
      const bool keep = msg.keep_alive();
      const bool head = req.method == "HEAD";
      HttpService* service = nullptr;
      for (auto* s : host->services) {
        if (s->matches(req.target)) {
          service = s;
          break;
        }
      }
      if (!service) {
        return respond(
            HttpResponse{404, {{"Content-Type", "application/json"}}, R"({"message":"no route"})"},
            keep, head);
      }
      service->handle(std::move(req), [self = shared_from_this(), keep, head](HttpResponse r) {
        self->respond(std::move(r), keep, head);
      });
    }

    void respond(HttpResponse r, bool keep, bool head) {
      res = {};
      res.version(11);
      res.result(static_cast<unsigned>(r.status));
      for (auto& [k, v] : r.headers)
        res.set(k, v);
      res.keep_alive(keep);
      auto on_written = [self = shared_from_this(), keep](beast::error_code ec, std::size_t) {
        if (ec || !keep) return self->close();
        self->read();
      };
      if (head) {
        // HEAD carries the headers a GET would have, without the body.
        res.content_length(r.body.size());
        auto sr = std::make_shared<http::response_serializer<http::string_body>>(res);
        with_stream([&](auto& stream) {
          http::async_write_header(
              stream, *sr,
              [sr, on_written](beast::error_code ec, std::size_t n) mutable { on_written(ec, n); });
        });
        return;
      }
      res.body() = std::move(r.body);
      res.prepare_payload();
      with_stream([&](auto& stream) { http::async_write(stream, res, std::move(on_written)); });
    }

    void close() {
      beast::error_code ec;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      lowest().socket().close(ec);
    }
  };

  void accept() {
    acceptor.async_accept([weak = weak_from_this()](beast::error_code ec, tcp::socket socket) {
      auto self = weak.lock();
      if (!self || !self->acceptor.is_open()) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        auto session = std::make_shared<Session>(std::move(socket), self, self->tls.get());
        self->sessions.push_back(session);
        session->start();
      }
      self->accept();
    });
  }

  net::io_context& io;
  tcp::acceptor acceptor;
  std::vector<HttpService*> services;
  std::unique_ptr<ssl::context> tls;
  std::vector<std::weak_ptr<Session>> sessions;
  std::uint16_t port = 0;
  std::uint64_t requests = 0;
};

ServiceHost::ServiceHost(net::io_context& io, std::vector<HttpService*> services)
    : impl_(std::make_shared<Impl>(io, std::move(services))) {}

ServiceHost::~ServiceHost() {
  close();
}

Result<std::uint16_t> ServiceHost::listen(std::uint16_t port, const std::string& cert_file,
                                          const std::string& key_file) {
  beast::error_code ec;
  if (!cert_file.empty()) {
    impl_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    impl_->tls->use_certificate_chain_file(cert_file, ec);
    if (!ec) impl_->tls->use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) return make_error(Errc::io, "TLS certificate: " + ec.message());
  }
  const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return make_error(Errc::io, "listen: " + ec.message());
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  return impl_->port;
}

std::uint16_t ServiceHost::port() const noexcept {
  return impl_->port;
}
std::string ServiceHost::url() const {
  return std::string(impl_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(impl_->port);
}
std::uint64_t ServiceHost::requests() const noexcept {
  return impl_->requests;
}

void ServiceHost::drop_connections() {
  for (auto& w : impl_->sessions) {
    if (auto s = w.lock()) s->close();
  }
  impl_->sessions.clear();
}

void ServiceHost::close() {
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace rtsync::test
