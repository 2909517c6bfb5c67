#include "ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace rtsync::testkit {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

Result<HttpResponse> http_request(std::uint16_t port, std::string_view method,
                                  std::string_view target, std::string body,
                                  std::vector<std::pair<std::string, std::string>> headers) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return make_error(Errc::io, ec.message());
  bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(method), target, 11);
  req.set(bhttp::field::host, "127.0.0.1");
  for (auto& [k, v] : headers)
    req.set(k, v);
  if (!body.empty() && req.find(bhttp::field::content_type) == req.end()) {
    req.set(bhttp::field::content_type, "application/json");
  }
  req.body() = std::move(body);
  req.keep_alive(false);
  req.prepare_payload();
  bhttp::write(stream, req, ec);
  if (ec) return make_error(Errc::io, ec.message());
  beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buf, res, ec);
  if (ec) return make_error(Errc::io, ec.message());
  return HttpResponse{res.result_int(), res.body()};
}

struct WsClient::Impl {
  asio::io_context io;
  websocket::stream<tcp::socket> ws{io};
  beast::flat_buffer buf;
  bool reading = false;
  bool have = false;
  beast::error_code read_ec;
  std::size_t read_n = 0;
};

WsClient::WsClient() : impl_(std::make_unique<Impl>()) {}
WsClient::~WsClient() = default;

Result<std::unique_ptr<WsClient>> WsClient::connect(std::uint16_t port, std::string target,
                                                    protocol::Vsn vsn) {
  std::unique_ptr<WsClient> c(new WsClient());
  c->vsn_ = vsn;
  auto& ws = c->impl_->ws;
  beast::error_code ec;
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return make_error(Errc::io, ec.message());
  ws.next_layer().set_option(tcp::no_delay(true));
  ws.read_message_max(64u << 20);
  websocket::response_type res;
  ws.handshake(res, "127.0.0.1:" + std::to_string(port), target, ec);
  if (ec) {
    return make_error(Errc::remote, std::to_string(res.result_int()) + " " + res.body());
  }
  return c;
}

Result<std::unique_ptr<WsClient>> WsClient::connect_key(std::uint16_t port, std::string_view key,
                                                        protocol::Vsn vsn) {
  return connect(port,
                 "/realtime/v1/websocket?apikey=" + std::string(key) +
                     "&vsn=" + std::string(protocol::to_string(vsn)),
                 vsn);
}

void WsClient::set_read_limit(std::size_t bytes) {
  impl_->ws.read_message_max(bytes);
}

void WsClient::send_text(const std::string& text) {
  beast::error_code ec;
  impl_->ws.text(true);
  impl_->ws.write(asio::buffer(text), ec);
}

void WsClient::send_binary(const std::string& bytes) {
  beast::error_code ec;
  impl_->ws.binary(true);
  impl_->ws.write(asio::buffer(bytes), ec);
}

void WsClient::send(const protocol::Message& m) {
  send_text(protocol::encode_text(vsn_, m));
}

std::optional<Frame> WsClient::read(std::chrono::milliseconds timeout) {
  if (closed_) return std::nullopt;
  auto& im = *impl_;
  if (!im.reading) {
    im.reading = true;
    im.have = false;
    im.ws.async_read(im.buf, [&im](beast::error_code ec, std::size_t n) {
      im.read_ec = ec;
      im.read_n = n;
      im.have = true;
      im.reading = false;
      im.io.stop();
    });
  }
  im.io.restart();
  im.io.run_for(timeout);
  if (!im.have) return std::nullopt;
  im.have = false;
  if (im.read_ec) {
    closed_ = true;
    close_code_ = static_cast<std::uint16_t>(im.ws.reason().code);
    return std::nullopt;
  }
  Frame f;
  f.binary = !im.ws.got_text();
  f.data = beast::buffers_to_string(im.buf.data());
  im.buf.consume(im.buf.size());
  return f;
}

std::optional<protocol::Message> WsClient::next(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto f = read(left);
    if (!f) return std::nullopt;
    if (f->binary) {
      auto b = protocol::decode_user_broadcast(f->data);
      if (!b.ok()) continue;
      auto m = protocol::to_message(b.value());
      if (m.ok()) return m.value();
      continue;
    }
    auto m = protocol::decode_text(vsn_, f->data);
    if (m.ok()) return m.value();
  }
}

std::optional<protocol::Message> WsClient::wait_for(
    const std::function<bool(const protocol::Message&)>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto m = next(left);
    if (!m) return std::nullopt;
    if (pred(*m)) return m;
  }
}

std::optional<protocol::Message> WsClient::wait_event(std::string_view event,
                                                      std::chrono::milliseconds timeout) {
  return wait_for([&](const protocol::Message& m) { return m.event == event; }, timeout);
}

bool WsClient::quiet(std::chrono::milliseconds window) {
  auto f = read(window);
  return !f.has_value() && !closed_;
}

std::optional<protocol::Message> WsClient::join(const std::string& topic, json::object config,
                                                std::optional<std::string> access_token) {
  auto ref = next_ref();
  json::object payload{{"config", std::move(config)}};
  if (access_token) payload["access_token"] = *access_token;
  join_refs_.emplace_back(topic, ref);
  send(protocol::Message{ref, ref, topic, "phx_join", std::move(payload)});
  return wait_for(
      [&](const protocol::Message& m) { return m.event == "phx_reply" && m.ref == ref; });
}

bool WsClient::join_pg(const std::string& topic, json::array bindings,
                       std::optional<std::string> access_token) {
  json::object config{{"broadcast", json::object{{"ack", false}, {"self", false}}},
                      {"presence", json::object{{"key", ""}, {"enabled", false}}},
                      {"postgres_changes", std::move(bindings)},
                      {"private", false}};
  auto reply = join(topic, std::move(config), std::move(access_token));
  if (!reply || core::find_string(reply->payload, "status") != "ok") return false;
  auto sys =
      wait_for([&](const protocol::Message& m) { return m.event == "system" && m.topic == topic; });
  return sys && core::find_string(sys->payload, "message") == "Subscribed to PostgreSQL";
}

std::string WsClient::join_ref(const std::string& topic) const {
  for (auto it = join_refs_.rbegin(); it != join_refs_.rend(); ++it) {
    if (it->first == topic) return it->second;
  }
  return {};
}

void WsClient::close() {
  if (closed_) return;
  beast::error_code ec;
  if (impl_->reading) {
    // A read is pending: a close handshake would need it; just drop the connection.
    impl_->ws.next_layer().close(ec);
  } else {
    impl_->ws.close(websocket::close_code::normal, ec);
  }
  closed_ = true;
}

}  // namespace rtsync::testkit
