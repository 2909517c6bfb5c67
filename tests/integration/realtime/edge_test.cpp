// Protocol and operational edges of the server, end to end (throwaway PostgreSQL, the server on
// port 0, real sockets): request framing (smuggling), oversized websocket frames, connection
// caps, and REST/auth across PostgreSQL restarts.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>

#include "test_stack.hpp"
#include "ws_client.hpp"

namespace rtsync::testkit {
namespace {

namespace asio = boost::asio;

std::unique_ptr<TestStack> start_stack(StackOptions o = {}) {
  auto s = TestStack::start(std::move(o));
  if (!s.ok()) {
    ADD_FAILURE() << "stack: " << s.error().describe();
    return nullptr;
  }
  return std::move(s.value());
}

// Writes `bytes` on a fresh connection (from `local`, any loopback address) and returns
// everything the server sends until it closes.
std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                         const std::string& local = "127.0.0.1") {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  boost::system::error_code ec;
  sock.open(asio::ip::tcp::v4(), ec);
  if (!ec) sock.bind({asio::ip::make_address(local), 0}, ec);
  if (!ec) sock.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return "connect: " + ec.message();
  asio::write(sock, asio::buffer(bytes), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    const auto n = sock.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

std::size_t count(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// True once the server's /metrics text contains `line` (sessions end asynchronously).
bool eventually_metric(TestStack& s, std::string_view line,
                       std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (s.server().metrics_text().find(line) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// ---- 1. request framing ------------------------------------------------------------------------

TEST(ServerEdge, AmbiguousRequestFramingGets400AndTheSmuggledRequestIsNeverAnswered) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  // Each head is followed by a second request; a server that reads the first one as bodiless (or
  // by a length another hop may not share) answers that one too.
  const std::string smuggled = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::vector<std::string> heads = {
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 3\r\n\r\n",
      "GET /health HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked"
      "\r\n\r\n0\r\n\r\n",
  };
  for (const auto& head : heads) {
    const std::string reply = raw_exchange(s->port(), head + smuggled);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << head << "\n→ " << reply;
    EXPECT_EQ(count(reply, "HTTP/1.1 "), 1u) << head << "\n→ " << reply;
    EXPECT_EQ(reply.find("rtsync_connections"), std::string::npos) << head;
    EXPECT_NE(reply.find("Connection: close"), std::string::npos) << head << "\n→ " << reply;
  }
  // Valid framings still work, and the server keeps serving.
  const std::string chunked =
      raw_exchange(s->port(),
                   "POST /api/broadcast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n"
                   "Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
  EXPECT_TRUE(chunked.starts_with("HTTP/1.1 401")) << chunked;
  auto health = http_request(s->port(), "GET", "/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health.value().status, 200u);
  EXPECT_NE(s->server().metrics_text().find(R"(rtsync_drops_total{reason="bad_http_request"} 7)"),
            std::string::npos)
      << s->server().metrics_text();
}

// ---- 3. websocket frames above the limit -------------------------------------------------------

// A websocket client on a raw socket, so one message goes out as one frame of any size (Beast's
// client would fragment it) and a reset is seen as such. Every read and write times out.
class RawWs {
 public:
  static std::unique_ptr<RawWs> connect(std::uint16_t port, const std::string& key) {
    auto ws = std::unique_ptr<RawWs>(new RawWs());
    boost::system::error_code ec;
    ws->sock_.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) return nullptr;
    timeval tv{10, 0};
    ::setsockopt(ws->sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(ws->sock_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const std::string req = "GET /realtime/v1/websocket?vsn=2.0.0&apikey=" + key +
                            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n";
    asio::write(ws->sock_, asio::buffer(req), ec);
    std::string head;
    while (!ec && head.find("\r\n\r\n") == std::string::npos) {
      char c;
      if (asio::read(ws->sock_, asio::buffer(&c, 1), ec) == 1) head.push_back(c);
    }
    if (ec || !head.starts_with("HTTP/1.1 101")) return nullptr;
    return ws;
  }

  // One masked text frame (mask 0: the payload goes as is).
  boost::system::error_code send_text(const std::string& payload) {
    std::string frame = "\x81";
    const std::uint64_t n = payload.size();
    if (n < 126) {
      frame.push_back(static_cast<char>(0x80 | n));
    } else if (n <= 0xFFFF) {
      frame.push_back(static_cast<char>(0x80 | 126));
      frame.push_back(static_cast<char>(n >> 8));
      frame.push_back(static_cast<char>(n));
    } else {
      frame.push_back(static_cast<char>(0x80 | 127));
      for (int b = 7; b >= 0; --b)
        frame.push_back(static_cast<char>(n >> (8 * b)));
    }
    frame.append(4, '\0');
    frame += payload;
    boost::system::error_code ec;
    asio::write(sock_, asio::buffer(frame), ec);
    return ec;
  }

  // Reads frames until a close frame: its status code, or an error describing how it failed.
  Result<int> close_code() {
    boost::system::error_code ec;
    for (;;) {
      unsigned char h[2];
      asio::read(sock_, asio::buffer(h), ec);
      if (ec) return make_error(Errc::io, ec.message());
      std::uint64_t len = h[1] & 0x7f;
      if (len >= 126) {
        unsigned char ext[8];
        const std::size_t k = len == 126 ? 2 : 8;
        asio::read(sock_, asio::buffer(ext, k), ec);
        if (ec) return make_error(Errc::io, ec.message());
        len = 0;
        for (std::size_t i = 0; i < k; ++i)
          len = (len << 8) | ext[i];
      }
      std::string payload(len, '\0');
      asio::read(sock_, asio::buffer(payload), ec);
      if (ec) return make_error(Errc::io, ec.message());
      if ((h[0] & 0x0f) == 0x8) {
        if (payload.size() < 2) return 1005;
        return (static_cast<unsigned char>(payload[0]) << 8) |
               static_cast<unsigned char>(payload[1]);
      }
    }
  }

 private:
  RawWs() = default;
  asio::io_context io_;
  asio::ip::tcp::socket sock_{io_};
};

TEST(ServerEdge, SixMiBFrameAgainstTheDefaultLimitClosesWith1009NotAReset) {
  auto s = start_stack();  // default limits: max_frame_bytes 5,000,000
  ASSERT_TRUE(s);
  ASSERT_EQ(server::realtime::RealtimeLimits{}.max_frame_bytes, 5'000'000u);
  auto other = WsClient::connect_key(s->port(), s->anon_key());
  ASSERT_TRUE(other.ok());
  for (int round = 0; round < 3; ++round) {
    auto victim = RawWs::connect(s->port(), s->anon_key());
    ASSERT_TRUE(victim);
    const auto sent = victim->send_text(std::string(6u << 20, ' '));
    EXPECT_FALSE(sent) << "round " << round << ": sending: " << sent.message();
    auto code = victim->close_code();
    ASSERT_TRUE(code.ok()) << "round " << round << ": " << code.error().describe();
    EXPECT_EQ(code.value(), 1009) << "round " << round;
  }
  other.value()->send_text(R"([null,"1","phoenix","heartbeat",{}])");
  EXPECT_TRUE(other.value()->wait_event("phx_reply"));
  EXPECT_TRUE(eventually_metric(*s, R"(rtsync_drops_total{reason="frame_too_large"} 3)"))
      << s->server().metrics_text();
}

// ---- 6. connection caps ------------------------------------------------------------------------

StackOptions capped(std::size_t total, std::size_t per_address) {
  StackOptions o;
  o.configure = [total, per_address](server::ServerOptions& so) {
    so.max_connections = total;
    so.max_connections_per_address = per_address;
  };
  return o;
}

// An open, idle connection from `local`.
std::unique_ptr<asio::ip::tcp::socket> idle_connection(asio::io_context& io, std::uint16_t port,
                                                       const std::string& local) {
  auto sock = std::make_unique<asio::ip::tcp::socket>(io);
  boost::system::error_code ec;
  sock->open(asio::ip::tcp::v4(), ec);
  if (!ec) sock->bind({asio::ip::make_address(local), 0}, ec);
  if (!ec) sock->connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) ADD_FAILURE() << "connect from " << local << ": " << ec.message();
  return sock;
}

const std::string kHealth = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

// GET /health on fresh connections until one is answered 200 (a freed slot is released when the
// server sees the close, asynchronously).
bool eventually_served(std::uint16_t port, const std::string& local = "127.0.0.1") {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (raw_exchange(port, kHealth, local).starts_with("HTTP/1.1 200")) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(ServerEdge, PerAddressConnectionCapAnswers503AndAFreedSlotServesAgain) {
  auto s = start_stack(capped(100, 2));
  ASSERT_TRUE(s);
  auto a = WsClient::connect_key(s->port(), s->anon_key());
  auto b = WsClient::connect_key(s->port(), s->anon_key());
  ASSERT_TRUE(a.ok() && b.ok());
  // A third upgrade from the same address is refused before the handshake.
  auto c = WsClient::connect_key(s->port(), s->anon_key());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, R"(503 {"error":"too many connections from this address",)"
                               R"("reason":"max_connections_per_address"})");
  // So is plain HTTP; another address is served.
  const std::string refused = raw_exchange(s->port(), kHealth);
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 503")) << refused;
  EXPECT_NE(refused.find("Connection: close"), std::string::npos) << refused;
  EXPECT_NE(refused.find(R"("reason":"max_connections_per_address")"), std::string::npos);
  EXPECT_TRUE(raw_exchange(s->port(), kHealth, "127.0.0.2").starts_with("HTTP/1.1 200"));
  // The existing sessions keep working.
  b.value()->send_text(R"([null,"1","phoenix","heartbeat",{}])");
  EXPECT_TRUE(b.value()->wait_event("phx_reply"));
  // Closing one frees its slot.
  a.value()->close();
  a.value().reset();
  EXPECT_TRUE(eventually_served(s->port()));
  auto d = WsClient::connect_key(s->port(), s->anon_key());
  EXPECT_TRUE(d.ok()) << d.error().describe();
  const auto metrics = s->server().metrics_text();
  EXPECT_NE(metrics.find("rtsync_client_connections 2\n"), std::string::npos) << metrics;
  EXPECT_NE(
      metrics.find(R"(rtsync_connection_refusals_total{reason="max_connections_per_address"} 2)"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(rtsync_connection_refusals_total{reason="max_connections"} 0)"),
            std::string::npos)
      << metrics;
}

TEST(ServerEdge, TotalConnectionCapAnswers503ToEveryAddressAndAFreedSlotServesAgain) {
  auto s = start_stack(capped(3, 2));
  ASSERT_TRUE(s);
  asio::io_context io;
  auto one = idle_connection(io, s->port(), "127.0.0.1");
  auto two = idle_connection(io, s->port(), "127.0.0.1");
  auto three = idle_connection(io, s->port(), "127.0.0.2");
  ASSERT_TRUE(eventually_metric(*s, "rtsync_client_connections 3\n"));
  for (const char* local : {"127.0.0.3", "127.0.0.1"}) {
    const std::string refused = raw_exchange(s->port(), kHealth, local);
    EXPECT_TRUE(refused.starts_with("HTTP/1.1 503")) << local << ": " << refused;
    EXPECT_NE(refused.find(R"({"error":"too many connections","reason":"max_connections"})"),
              std::string::npos)
        << refused;
  }
  auto ws = WsClient::connect_key(s->port(), s->anon_key());
  ASSERT_FALSE(ws.ok());
  EXPECT_TRUE(ws.error().message.starts_with("503 ")) << ws.error().message;
  three->close();
  EXPECT_TRUE(eventually_served(s->port(), "127.0.0.3"));
  EXPECT_TRUE(
      eventually_metric(*s, R"(rtsync_connection_refusals_total{reason="max_connections"} 3)"))
      << s->server().metrics_text();
}

// ---- 4. JWT secret length ----------------------------------------------------------------------

TEST(ServerEdge, JwtSecretShorterThan32BytesIsRefusedAtStart) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  for (const std::string secret : {std::string("x"), std::string(31, 'k')}) {
    server::ServerOptions o;
    o.db = s->conninfo();
    o.listen = "127.0.0.1:0";
    o.slot = "rtsync_edge_short_secret";
    o.jwt_secret = secret;
    server::Server srv(o);
    auto r = srv.start();
    ASSERT_FALSE(r.ok()) << secret.size() << "-byte secret accepted";
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_EQ(r.error().message,
              "the JWT secret (--jwt-secret) must be at least 32 bytes long, got " +
                  std::to_string(secret.size()));
    EXPECT_EQ(srv.port(), 0);
  }
  server::ServerOptions o;
  o.db = s->conninfo();
  o.jwt_secret = std::string(32, 'k');
  EXPECT_TRUE(server::validate_options(o).ok());
  // The test secrets are long enough, and the running server still serves.
  EXPECT_GE(kTestSecret.size(), server::kMinJwtSecretBytes);
  auto health = http_request(s->port(), "GET", "/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health.value().status, 200u);
}

}  // namespace
}  // namespace rtsync::testkit
