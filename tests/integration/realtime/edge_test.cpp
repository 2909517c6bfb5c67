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
#include <vector>

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
