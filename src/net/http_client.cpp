// The REST layer's only translation unit with Beast/Asio networking headers: pooled keep-alive
// HTTP/1.1 (+TLS) exchanges behind rtsync/net/http_client.hpp.
#include "rtsync/net/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <deque>
#include <optional>
#include <unordered_map>

#include "rtsync/core/listener_list.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/strings.hpp"
#include "rtsync/net/names.hpp"

namespace rtsync::net {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

auto logger() {
  return log::get("RestClient");
}

struct Origin {
  bool tls = false;
  std::string host;  // DNS, SNI and certificate name (no brackets)
  std::string port;
  std::string host_header;  // Host: as in the URL
  std::string base_path;    // "" or "/prefix" (no trailing slash)
};

Result<Origin> parse_origin(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return make_error(Errc::invalid_argument, "invalid base URL '" + url + "'");
  const auto& u = *parsed;
  Origin o;
  const std::string scheme(u.scheme());
  if (scheme == "https") {
    o.tls = true;
  } else if (scheme != "http") {
    return make_error(Errc::invalid_argument, "unsupported URL scheme '" + scheme + "'");
  }
  o.host = u.host_address();
  if (o.host.empty()) return make_error(Errc::invalid_argument, "URL has no host: '" + url + "'");
  o.port = u.has_port() ? std::string(u.port()) : (o.tls ? "443" : "80");
  o.host_header = std::string(u.encoded_host_and_port());
  o.base_path = std::string(u.encoded_path());
  while (!o.base_path.empty() && o.base_path.back() == '/')
    o.base_path.pop_back();
  if (u.has_query() || u.has_fragment()) {
    return make_error(Errc::invalid_argument, "base URL must not have a query: '" + url + "'");
  }
  return o;
}

using core::iequals;

}  // namespace

std::string_view HttpResult::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

struct HttpClient::Impl : std::enable_shared_from_this<HttpClient::Impl> {
  struct Request {
    std::uint64_t id = 0;
    std::string method;
    std::string target;
    Headers headers;
    std::string body;
    Callback done;
    bool retried = false;
    bool finished = false;
    core::Timer deadline;
  };
  using RequestPtr = std::shared_ptr<Request>;

  struct Conn {
    std::optional<beast::tcp_stream> plain;
    std::optional<ssl::stream<beast::tcp_stream>> secure;
    beast::flat_buffer buffer;
    bool connected = false;
    bool reused = false;    // a previous exchange completed on it
    bool disposed = false;  // counted out of the pool
    RequestPtr current;
    http::request<http::string_body> req;
    std::optional<http::response_parser<http::string_body>> parser;

    beast::tcp_stream& lowest() { return secure ? secure->next_layer() : *plain; }
    void close() {
      beast::error_code ec;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      lowest().socket().close(ec);
    }
  };
  using ConnPtr = std::shared_ptr<Conn>;

  Impl(asio::io_context& io, core::Scheduler& scheduler, HttpClientOptions options, Origin origin,
       std::shared_ptr<ssl::context> tls)
      : io(io),
        scheduler(scheduler),
        options(std::move(options)),
        origin(std::move(origin)),
        tls(std::move(tls)),
        resolver(io) {}

  asio::io_context& io;
  core::Scheduler& scheduler;
  HttpClientOptions options;
  Origin origin;
  std::shared_ptr<ssl::context> tls;
  tcp::resolver resolver;
  std::optional<tcp::resolver::results_type> resolved;

  std::deque<RequestPtr> queue;
  std::vector<ConnPtr> idle;
  std::unordered_map<std::uint64_t, std::pair<RequestPtr, std::weak_ptr<Conn>>> active;
  std::size_t open = 0;
  std::uint64_t next_id = 1;
  std::uint64_t connects = 0;
  bool destroyed = false;
  core::ListenerList<int> response_listeners{"RestClient", "response listener"};

  // Delivers on a later loop turn: no callback runs inside request()/cancel() or mid-handler.
  void finish(const RequestPtr& r, Result<HttpResult> result) {
    if (r->finished) return;
    r->finished = true;
    r->deadline.cancel();
    active.erase(r->id);
    asio::post(io, [weak = weak_from_this(), done = std::move(r->done),
                    result = std::move(result)]() mutable {
      auto self = weak.lock();
      if (!self || self->destroyed) return;
      if (result.ok()) {
        self->response_listeners.notify(result.value().status);
        if (self->destroyed) return;  // a listener destroyed the client
      }
      done(std::move(result));
    });
  }

  void pump() {
    while (!queue.empty() && !destroyed) {
      RequestPtr r = queue.front();
      if (r->finished) {
        queue.pop_front();
        continue;
      }
      ConnPtr c;
      // A retried request goes on a new connection: its pool siblings may be as stale.
      if (r->retried && open >= options.max_connections && !idle.empty()) {
        dispose(idle.front());
        idle.erase(idle.begin());
      }
      if (!idle.empty() && !r->retried) {
        c = idle.back();
        idle.pop_back();
      } else if (open < options.max_connections) {
        c = make_conn();
        ++open;
      } else {
        return;
      }
      queue.pop_front();
      start(c, r);
    }
  }

  ConnPtr make_conn() {
    auto c = std::make_shared<Conn>();
    if (origin.tls) {
      c->secure.emplace(io, *tls);
    } else {
      c->plain.emplace(io);
    }
    return c;
  }

  // Takes a connection out of the pool for good.
  void dispose(const ConnPtr& c) {
    if (c->disposed) return;
    c->disposed = true;
    c->close();
    if (open > 0) --open;
  }

  void start(const ConnPtr& c, const RequestPtr& r) {
    c->current = r;
    active[r->id].second = c;
    if (c->connected) return send(c);
    if (resolved) return connect(c, *resolved);
    resolver.async_resolve(
        origin.host, origin.port,
        [weak = weak_from_this(), c](beast::error_code ec, tcp::resolver::results_type results) {
          auto self = weak.lock();
          if (!self) return;
          if (ec)
            return self->fail(c, Errc::io, "resolving " + self->origin.host + ": " + ec.message());
          self->resolved = results;
          self->connect(c, results);
        });
  }

  void connect(const ConnPtr& c, const tcp::resolver::results_type& results) {
    ++connects;
    c->lowest().async_connect(
        results, [weak = weak_from_this(), c](beast::error_code ec, const tcp::endpoint&) {
          auto self = weak.lock();
          if (!self) return;
          if (ec) {
            self->resolved.reset();  // the next attempt resolves again
            return self->fail(c, Errc::io,
                              "connecting to " + self->origin.host_header + ": " + ec.message());
          }
          beast::error_code nodelay_ec;
          c->lowest().socket().set_option(tcp::no_delay(true), nodelay_ec);
          if (!c->secure) {
            c->connected = true;
            return self->send(c);
          }
          self->handshake(c);
        });
  }

  void handshake(const ConnPtr& c) {
    auto& stream = *c->secure;
    beast::error_code addr_ec;
    asio::ip::make_address(origin.host, addr_ec);
    // SNI is for names only (RFC 6066).
    if (addr_ec && !SSL_set_tlsext_host_name(stream.native_handle(), origin.host.c_str())) {
      return fail(c, Errc::io, "cannot set TLS SNI for " + origin.host);
    }
    stream.set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none);
    if (options.verify_peer) stream.set_verify_callback(ssl::host_name_verification(origin.host));
    stream.async_handshake(ssl::stream_base::client, [weak = weak_from_this(),
                                                      c](beast::error_code ec) {
      auto self = weak.lock();
      if (!self) return;
      if (ec) {
        std::string detail = ec.message();
        const long verify = SSL_get_verify_result(c->secure->native_handle());
        if (verify != X509_V_OK)
          detail += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
        return self->fail(c, Errc::io, "TLS handshake with " + self->origin.host + ": " + detail);
      }
      c->connected = true;
      self->send(c);
    });
  }

  void send(const ConnPtr& c) {
    const RequestPtr& r = c->current;
    if (!r || r->finished) {
      dispose(c);
      return pump();
    }
    c->req = {};
    c->req.version(11);
    const http::verb verb = http::string_to_verb(r->method);
    if (verb == http::verb::unknown) {
      c->req.method_string(r->method);
    } else {
      c->req.method(verb);
    }
    c->req.target(origin.base_path + r->target);
    c->req.set(http::field::host, origin.host_header);
    c->req.set(http::field::user_agent, options.user_agent);
    for (const auto& [k, v] : r->headers)
      c->req.set(k, v);
    c->req.body() = r->body;
    c->req.keep_alive(true);
    c->req.prepare_payload();
    auto on_written = [weak = weak_from_this(), c](beast::error_code ec, std::size_t) {
      auto self = weak.lock();
      if (!self) return;
      if (ec) return self->broken(c, "writing the request: " + ec.message(), true);
      self->receive(c);
    };
    if (c->secure) {
      http::async_write(*c->secure, c->req, std::move(on_written));
    } else {
      http::async_write(*c->plain, c->req, std::move(on_written));
    }
  }

  void receive(const ConnPtr& c) {
    c->parser.emplace();
    c->parser->body_limit(options.max_response_bytes);
    c->parser->header_limit(64 * 1024);
    if (c->current && c->current->method == "HEAD") c->parser->skip(true);
    auto on_read = [weak = weak_from_this(), c](beast::error_code ec, std::size_t) {
      auto self = weak.lock();
      if (!self) return;
      if (ec == http::error::body_limit) {
        return self->fail(c, Errc::too_large, "response larger than the limit");
      }
      if (ec)
        return self->broken(c, "reading the response: " + ec.message(), !c->parser->got_some());
      self->complete(c);
    };
    if (c->secure) {
      http::async_read(*c->secure, c->buffer, *c->parser, std::move(on_read));
    } else {
      http::async_read(*c->plain, c->buffer, *c->parser, std::move(on_read));
    }
  }

  void complete(const ConnPtr& c) {
    RequestPtr r = std::move(c->current);
    auto& msg = c->parser->get();
    const bool keep = msg.keep_alive();
    HttpResult out;
    out.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(msg.body());
    c->parser.reset();
    c->reused = true;
    if (r) finish(r, std::move(out));
    if (keep && !destroyed && !c->disposed) {
      idle.push_back(c);
    } else {
      dispose(c);
    }
    pump();
  }

  // The connection failed mid-exchange. A reused connection that the server had already closed
  // (nothing of a response arrived) gets the request retried once on a fresh connection.
  void broken(const ConnPtr& c, std::string what, bool nothing_received) {
    RequestPtr r = c->current;
    if (r && !r->finished && c->reused && nothing_received && !r->retried) {
      r->retried = true;
      c->current.reset();
      dispose(c);
      logger()->debug("retrying {} {} on a new connection ({})", r->method, r->target, what);
      queue.push_front(r);
      return pump();
    }
    fail(c, Errc::io, std::move(what));
  }

  void fail(const ConnPtr& c, Errc code, std::string what) {
    RequestPtr r = std::move(c->current);
    dispose(c);
    if (r && !r->finished) {
      logger()->debug("{} {} failed: {}", r->method, r->target, what);
      finish(r, make_error(code, std::move(what)));
    }
    pump();
  }

  // Ends a request early (deadline or cancel): a request in flight takes its connection with it.
  void abort(std::uint64_t id, Error error) {
    auto it = active.find(id);
    if (it == active.end()) return;
    RequestPtr r = it->second.first;
    if (auto c = it->second.second.lock(); c && c->current == r) {
      c->current.reset();
      dispose(c);
    }
    finish(r, std::move(error));
    pump();
  }
};

HttpClient::HttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpClient>> HttpClient::create(boost::asio::io_context& io,
                                                       core::Scheduler& scheduler,
                                                       HttpClientOptions options) {
  auto origin = parse_origin(options.base_url);
  if (!origin) return origin.error();
  std::shared_ptr<ssl::context> tls;
  if (origin->tls) {
    tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    tls->set_default_verify_paths(ec);
    if (ec && options.verify_peer && options.ca_file.empty()) {
      return make_error(Errc::io, "cannot load the system's CA certificates: " + ec.message());
    }
    if (!options.ca_file.empty()) {
      tls->load_verify_file(options.ca_file, ec);
      if (ec) return make_error(Errc::io, "cannot load " + options.ca_file + ": " + ec.message());
    }
  }
  if (options.max_connections == 0) options.max_connections = 1;
  auto impl = std::make_shared<Impl>(io, scheduler, std::move(options), std::move(origin).value(),
                                     std::move(tls));
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

HttpClient::~HttpClient() {
  impl_->destroyed = true;
  impl_->resolver.cancel();
  for (auto& [id, entry] : impl_->active) {
    entry.first->finished = true;
    entry.first->deadline.cancel();
    if (auto c = entry.second.lock()) c->close();
  }
  for (auto& c : impl_->idle)
    c->close();
  impl_->active.clear();
  impl_->queue.clear();
  impl_->idle.clear();
}

std::uint64_t HttpClient::request(std::string method, std::string target, Headers headers,
                                  std::string body, Callback done) {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler);
  auto r = std::make_shared<Impl::Request>();
  r->id = impl_->next_id++;
  r->method = std::move(method);
  r->target = std::move(target);
  r->headers = std::move(headers);
  r->body = std::move(body);
  r->done = std::move(done);
  const std::uint64_t id = r->id;
  r->deadline = impl_->scheduler.schedule(
      impl_->options.timeout, timers::HttpTimeout,
      [weak = std::weak_ptr<Impl>(impl_), id, method = r->method, target = r->target] {
        if (auto self = weak.lock()) {
          self->abort(id, make_error(Errc::timeout, method + " " + target + " timed out"));
        }
      });
  impl_->active.emplace(id, std::make_pair(r, std::weak_ptr<Impl::Conn>()));
  impl_->queue.push_back(std::move(r));
  impl_->pump();
  return id;
}

void HttpClient::cancel(std::uint64_t id) {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler);
  impl_->abort(id, make_error(Errc::cancelled, "request cancelled"));
}

core::Subscription HttpClient::on_response(std::function<void(int status)> listener) {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler);
  return impl_->response_listeners.add(std::move(listener));
}

std::size_t HttpClient::open_connections() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler);
  return impl_->open;
}
std::size_t HttpClient::queued() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler);
  return impl_->queue.size();
}
std::uint64_t HttpClient::connects() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(impl_->scheduler);
  return impl_->connects;
}

}  // namespace rtsync::net
