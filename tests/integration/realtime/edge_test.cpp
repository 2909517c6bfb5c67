// Protocol and operational edges of the server, end to end (throwaway PostgreSQL, the server on
// port 0, real sockets): request framing (smuggling), oversized websocket frames, connection
// caps, and REST/auth across PostgreSQL restarts.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>

#include "realtime_helpers.hpp"

namespace rtsync::testkit {
namespace {

namespace asio = boost::asio;

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

// ---- 5. REST and auth across PostgreSQL restarts ---------------------------------------------

constexpr std::string_view kUser = "aaaaaaaa-0000-4000-8000-00000000000a";

// The stack with the demo schema, one user (a@example.com / password-a) owning one project.
std::unique_ptr<TestStack> start_rest_stack() {
  StackOptions o;
  o.migrated = true;
  auto s = start_stack(std::move(o));
  if (!s) return nullptr;
  auto seeded = s->sql("INSERT INTO auth.users (id, email, encrypted_password) VALUES ('" +
                       std::string(kUser) +
                       "', 'a@example.com', auth.hash_password('password-a'));"
                       "INSERT INTO projects (name, user_id) VALUES ('edge', '" +
                       std::string(kUser) + "');");
  if (!seeded.ok()) {
    ADD_FAILURE() << "seed: " << seeded.error().describe();
    return nullptr;
  }
  return s;
}

Result<HttpResponse> rest_get(TestStack& s, const std::string& target) {
  const std::string token = s.key("authenticated", 1h, std::string(kUser));
  return http_request(s.port(), "GET", target, {},
                      {{"apikey", s.anon_key()}, {"Authorization", "Bearer " + token}});
}

Result<HttpResponse> password_grant(TestStack& s) {
  return http_request(s.port(), "POST", "/auth/v1/token?grant_type=password",
                      R"({"email":"a@example.com","password":"password-a"})",
                      {{"apikey", s.anon_key()}});
}

// Every pooled connection (4) serves a read and a sign-in, then PostgreSQL restarts: the very
// first requests after it are answered as if nothing happened.
TEST(ServerEdge, RestReadsAndPasswordGrantsSucceedFirstTryAfterPostgresRestarts) {
  auto s = start_rest_stack();
  ASSERT_TRUE(s);
  auto all_succeed = [&](const char* when) {
    for (int i = 0; i < 8; ++i) {
      auto get = rest_get(*s, "/rest/v1/projects?select=name");
      ASSERT_TRUE(get.ok()) << when << ": " << get.error().describe();
      EXPECT_EQ(get.value().status, 200u) << when << " GET " << i << ": " << get.value().body;
      EXPECT_EQ(get.value().body, R"([{"name":"edge"}])") << when;
      auto grant = password_grant(*s);
      ASSERT_TRUE(grant.ok()) << when << ": " << grant.error().describe();
      EXPECT_EQ(grant.value().status, 200u) << when << " grant " << i << ": " << grant.value().body;
    }
  };
  all_succeed("before");
  using Mode = testkit::TempCluster::StopMode;
  for (auto [mode, name] :
       {std::pair{Mode::fast, "after -m fast"}, std::pair{Mode::immediate, "after -m immediate"}}) {
    auto restarted = s->pg().restart(mode);
    ASSERT_TRUE(restarted.ok()) << restarted.error().describe();
    all_succeed(name);
  }
}

// A table whose inserts take 1.5 s (a trigger sleeps) and a view whose reads do, for catching a
// request while its statement runs.
constexpr std::string_view kSlowSchema = R"sql(
  CREATE TABLE edge_writes (id bigserial PRIMARY KEY, note text);
  CREATE FUNCTION edge_slow_insert() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$;
  CREATE TRIGGER edge_slow BEFORE INSERT ON edge_writes
    FOR EACH ROW EXECUTE FUNCTION edge_slow_insert();
  CREATE VIEW edge_slow_read AS SELECT 42 AS n FROM pg_sleep(1.5);
  GRANT ALL ON edge_writes, edge_slow_read TO service_role;
  GRANT ALL ON SEQUENCE edge_writes_id_seq TO service_role;
)sql";

// Runs `request` on a thread and `during()` once a backend sleeps in pg_sleep (the request's
// statement is running); returns the request's answer.
Result<HttpResponse> while_running(TestStack& s,
                                   const std::function<Result<HttpResponse>()>& request,
                                   const std::function<void()>& during) {
  std::optional<Result<HttpResponse>> answer;
  std::thread t([&] { answer.emplace(request()); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool caught = false;
  while (!caught && std::chrono::steady_clock::now() < deadline) {
    auto n = s.sql_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'");
    caught = n.ok() && n.value() == "1";
    if (caught) {
      during();
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  t.join();
  if (!caught) ADD_FAILURE() << "the request's statement was never seen running";
  return std::move(*answer);
}

std::string retries_line(std::uint64_t n) {
  return "rtsync_rest_db_retries_total " + std::to_string(n) + "\n";
}

// PostgreSQL ends the session under a running read and a running write (pg_terminate_backend:
// 57P01 admin_shutdown, so neither committed): both run again on a fresh connection and succeed.
TEST(ServerEdge, ReadAndWriteEndedByAdminShutdownRunAgainOnAFreshConnection) {
  auto s = start_rest_stack();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->sql(std::string(kSlowSchema)).ok());
  const std::vector<std::pair<std::string, std::string>> service = {
      {"apikey", s->service_key()}, {"Authorization", "Bearer " + s->service_key()}};
  auto terminate = [&] {
    auto r = s->sql_value(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'");
    EXPECT_TRUE(r.ok() && r.value() == "t");
  };
  auto read = while_running(
      *s, [&] { return http_request(s->port(), "GET", "/rest/v1/edge_slow_read", {}, service); },
      terminate);
  ASSERT_TRUE(read.ok()) << read.error().describe();
  EXPECT_EQ(read.value().status, 200u) << read.value().body;
  EXPECT_EQ(read.value().body, R"([{"n":42}])");
  EXPECT_NE(s->server().metrics_text().find(retries_line(1)), std::string::npos);

  auto write = while_running(
      *s,
      [&] {
        return http_request(s->port(), "POST", "/rest/v1/edge_writes", R"({"note":"once"})",
                            service);
      },
      terminate);
  ASSERT_TRUE(write.ok()) << write.error().describe();
  EXPECT_EQ(write.value().status, 201u) << write.value().body;
  EXPECT_EQ(s->sql_value("SELECT count(*) FROM edge_writes").value(), "1");
  EXPECT_NE(s->server().metrics_text().find(retries_line(2)), std::string::npos);
}

// PostgreSQL crashes (stop -m immediate) under a running insert: the connection ends with no
// answer, so the insert may or may not have committed. It is not run again; the client gets
// 503 PGRST001 and decides.
TEST(ServerEdge, WriteWhoseFateIsUnknownIsNotRunAgainAndAnswers503) {
  auto s = start_rest_stack();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->sql(std::string(kSlowSchema)).ok());
  const std::vector<std::pair<std::string, std::string>> service = {
      {"apikey", s->service_key()}, {"Authorization", "Bearer " + s->service_key()}};
  auto write = while_running(
      *s,
      [&] {
        return http_request(s->port(), "POST", "/rest/v1/edge_writes", R"({"note":"maybe"})",
                            service);
      },
      [&] {
        auto r = s->pg().restart(testkit::TempCluster::StopMode::immediate);
        EXPECT_TRUE(r.ok()) << r.error().describe();
      });
  ASSERT_TRUE(write.ok()) << write.error().describe();
  EXPECT_EQ(write.value().status, 503u) << write.value().body;
  EXPECT_NE(write.value().body.find(R"("code":"PGRST001")"), std::string::npos)
      << write.value().body;
  EXPECT_NE(s->server().metrics_text().find(retries_line(0)), std::string::npos);
  EXPECT_EQ(s->sql_value("SELECT count(*) FROM edge_writes").value(), "0");
  // The server serves on: the same insert now goes through.
  auto again =
      http_request(s->port(), "POST", "/rest/v1/edge_writes", R"({"note":"again"})", service);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().status, 201u) << again.value().body;
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
  // Probe once the server has seen the close: a probe before it is refused and counted.
  ASSERT_TRUE(eventually_metric(*s, "rtsync_client_connections 1\n"));
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
  // Probe once the server has seen the close: a probe before it is refused and counted.
  ASSERT_TRUE(eventually_metric(*s, "rtsync_client_connections 2\n"));
  EXPECT_TRUE(eventually_served(s->port(), "127.0.0.3"));
  EXPECT_TRUE(
      eventually_metric(*s, R"(rtsync_connection_refusals_total{reason="max_connections"} 3)"))
      << s->server().metrics_text();
}

// ---- 4. JWT secret length ----------------------------------------------------------------------

TEST(ServerEdge, JwtSecretShorterThan32BytesIsRefusedAtStart) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  for (const std::string& secret : {std::string("x"), std::string(31, 'k')}) {
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
