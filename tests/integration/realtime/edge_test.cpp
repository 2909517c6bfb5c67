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

// Writes `bytes` on a fresh connection and returns everything the server sends until it closes.
std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  boost::system::error_code ec;
  sock.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
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
