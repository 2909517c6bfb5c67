// The Beast transport's own WebSocket framing against a raw TCP peer written here: the peer
// answers the upgrade by hand and then sends hand-made bytes (pings, close frames, masked frames,
// oversized frames, many frames in one segment, one frame split over many segments) and decodes
// what the client sends back. POSIX sockets with poll() timeouts (OpenSSL on top for wss); waits
// are bounded.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "beast_transport_testing.hpp"
#include "integration/test_ca.hpp"
#include "rtsync/client/transport/beast_transport.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/protocol/close_codes.hpp"

namespace rtsync::client {

using rtsync::testing::TestCa;
namespace {

using namespace std::chrono_literals;

std::string bytes(std::initializer_list<unsigned> list) {
  std::string out;
  for (unsigned b : list)
    out.push_back(static_cast<char>(b));
  return out;
}

// An unmasked server frame; `mask` set makes it a (forbidden) masked one.
std::string frame(unsigned first, std::string_view payload, bool mask = false) {
  std::string out(1, static_cast<char>(first));
  const std::uint64_t n = payload.size();
  const unsigned m = mask ? 0x80 : 0;
  if (n < 126) {
    out.push_back(static_cast<char>(m | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(m | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(m | 127));
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<char>(n >> (56 - 8 * i)));
  }
  const unsigned char key[4] = {0x11, 0x22, 0x33, 0x44};
  if (mask) out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(payload[i] ^ (mask ? key[i % 4] : 0)));
  return out;
}

std::string text(std::string_view p) {
  return frame(0x81, p);
}

std::string close_frame(int code, std::string_view reason) {
  return frame(0x88, bytes({static_cast<unsigned>(code) >> 8, static_cast<unsigned>(code) & 0xFF}) +
                         std::string(reason));
}

std::string accept_for(const std::string& key) {
  const std::string input = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha1(), nullptr);
  std::string out(4 * ((len + 2) / 3), '\0');
  out.resize(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest, len));
  return out;
}

struct ClientFrame {
  unsigned first = 0;  // FIN, RSV and opcode
  bool masked = false;
  std::uint32_t mask = 0;
  std::string payload;  // unmasked
  unsigned opcode() const { return first & 0x0F; }
  int close_code() const {
    return payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                     static_cast<unsigned char>(payload[1])
                               : 0;
  }
  std::string close_reason() const { return payload.size() > 2 ? payload.substr(2) : ""; }
};

// One client at a time on 127.0.0.1, driven synchronously by the test thread; TLS when given a
// TestCa (its server certificate).
class RawPeer {
 public:
  explicit RawPeer(const TestCa* tls = nullptr, int receive_buffer = 0) {
    if (tls) {
      ctx_ = SSL_CTX_new(TLS_server_method());
      if (!ctx_ || SSL_CTX_use_certificate_chain_file(ctx_, tls->file("server.pem").c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, tls->file("server.key").c_str(), SSL_FILETYPE_PEM) !=
              1) {
        throw std::runtime_error("cannot load the test certificate");
      }
    }
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    // Accepted sockets inherit it: a small window makes the client's writes back up.
    if (receive_buffer > 0) {
      ::setsockopt(listener_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 4) != 0) {
      throw std::runtime_error("cannot listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~RawPeer() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (conn_ >= 0) ::close(conn_);
    ::close(listener_);
  }

  std::string url() const {
    return std::string(ctx_ ? "wss" : "ws") + "://127.0.0.1:" + std::to_string(port_) + "/ws?x=1";
  }

  // Header lines (each ending in CRLF) added to the 101.
  std::string extra_101_headers;

  // Accepts the TCP connection (and the TLS handshake) without reading anything.
  bool accept_only() {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    conn_ = ::accept(listener_, nullptr, nullptr);
    if (conn_ < 0) return false;
    const int one = 1;
    ::setsockopt(conn_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx_) {
      timeval tv{5, 0};
      ::setsockopt(conn_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ssl_ = SSL_new(ctx_);
      SSL_set_fd(ssl_, conn_);
      if (SSL_accept(ssl_) != 1) return false;
    }
    return true;
  }

  // Accepts the client, reads its upgrade request and answers 101 (with `accept` in place of the
  // right Sec-WebSocket-Accept when given), followed in the same write by `extra`.
  bool accept_upgrade(const std::string& extra = "", std::optional<std::string> accept = {}) {
    if (!accept_only()) return false;
    while (in_.find("\r\n\r\n") == std::string::npos) {
      if (!fill()) return false;
    }
    const auto head_end = in_.find("\r\n\r\n") + 4;
    request_ = in_.substr(0, head_end);
    in_.erase(0, head_end);
    const std::string name = "Sec-WebSocket-Key: ";
    const auto k = request_.find(name);
    if (k == std::string::npos) return false;
    const auto key = request_.substr(k + name.size(), request_.find("\r\n", k) - k - name.size());
    write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        accept.value_or(accept_for(key)) + "\r\n" + extra_101_headers + "\r\n" + extra);
    return true;
  }

  // Answers the upgrade with a refusal.
  bool refuse(int status, const std::string& body) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    conn_ = ::accept(listener_, nullptr, nullptr);
    while (in_.find("\r\n\r\n") == std::string::npos) {
      if (!fill()) return false;
    }
    write("HTTP/1.1 " + std::to_string(status) + " No\r\nContent-Type: application/json\r\n" +
          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    return true;
  }

  const std::string& request() const { return request_; }

  // Ends the TCP connection without a close frame.
  void drop() {
    ::close(conn_);
    conn_ = -1;
  }

  // Sends FIN (after a TLS close_notify on wss): the peer's end of a close handshake.
  void shutdown_send() {
    if (ssl_) SSL_shutdown(ssl_);
    ::shutdown(conn_, SHUT_WR);
  }

  // False when the connection broke (reset) while writing.
  bool write(std::string_view data) {
    while (!data.empty()) {
      const auto n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                          : ::send(conn_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // After the client ended its side: whether writing more (as a server may, before it reads the
  // close) resets the connection, i.e. the client closed its socket instead of reading on.
  bool writing_after_eof_resets() {
    for (int i = 0; i < 3; ++i) {
      if (::send(conn_, "late bytes", 10, MSG_NOSIGNAL) < 0) return true;
      std::this_thread::sleep_for(100ms);
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(conn_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return true;
    }
    return false;
  }

  // wss: whether the client's end arrived as a TLS close_notify (not a bare TCP EOF).
  bool saw_close_notify() const { return close_notify_; }

  // The next frame the client sent, or nullopt on EOF / nothing within the timeout.
  std::optional<ClientFrame> read_frame() {
    auto need = [&](std::size_t n) {
      while (in_.size() < n) {
        if (!fill()) return false;
      }
      return true;
    };
    if (!need(2)) return std::nullopt;
    ClientFrame f;
    f.first = static_cast<unsigned char>(in_[0]);
    f.masked = (static_cast<unsigned char>(in_[1]) & 0x80) != 0;
    std::uint64_t len = static_cast<unsigned char>(in_[1]) & 0x7F;
    std::size_t at = 2;
    if (len >= 126) {
      const std::size_t ext = len == 126 ? 2 : 8;
      if (!need(2 + ext)) return std::nullopt;
      len = 0;
      for (std::size_t i = 0; i < ext; ++i)
        len = (len << 8) | static_cast<unsigned char>(in_[2 + i]);
      at += ext;
    }
    unsigned char key[4] = {0, 0, 0, 0};
    if (f.masked) {
      if (!need(at + 4)) return std::nullopt;
      std::memcpy(key, in_.data() + at, 4);
      std::memcpy(&f.mask, key, 4);
      at += 4;
    }
    if (!need(at + len)) return std::nullopt;
    for (std::size_t i = 0; i < len; ++i)
      f.payload.push_back(static_cast<char>(in_[at + i] ^ key[i % 4]));
    in_.erase(0, at + len);
    return f;
  }

  // True when the client ends the TCP connection (EOF or reset) within `timeout`, all further
  // bytes ignored.
  bool sees_eof(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{conn_, POLLIN, 0};
      if ((ssl_ && SSL_pending(ssl_) > 0) || ::poll(&p, 1, 50) == 1) {
        char buf[4096];
        if (receive(buf, sizeof buf) <= 0) return true;
      }
    }
    return false;
  }

 private:
  long receive(char* buf, std::size_t size) {
    if (!ssl_) return ::recv(conn_, buf, size, 0);
    const int n = SSL_read(ssl_, buf, static_cast<int>(size));
    if (n <= 0 && SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN) close_notify_ = true;
    ERR_clear_error();
    return n;
  }

  bool fill() {
    pollfd p{conn_, POLLIN, 0};
    if (!(ssl_ && SSL_pending(ssl_) > 0) && ::poll(&p, 1, 5000) != 1) return false;
    char buf[65536];
    const auto n = receive(buf, sizeof buf);
    if (n <= 0) return false;
    in_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool close_notify_ = false;

  int listener_ = -1;
  int conn_ = -1;
  std::uint16_t port_ = 0;
  std::string in_;
  std::string request_;
};

// What the transport reported, on the loop thread; read by the test thread.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  bool opened = false;
  std::vector<std::pair<std::string, bool>> messages;
  std::optional<std::pair<int, std::string>> closed;
  std::optional<TransportFailure> failure;
  int callbacks_after_close = 0;
  int close_count = 0;
  // TransportHandlers::hold_owner: how often it was taken, and callbacks made without it.
  int holds = 0;
  int unheld_callbacks = 0;

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return pred(); });
  }
};

class WsFraming : public ::testing::Test {
 protected:
  void SetUp() override { loop.start(); }

  // Connects a transport to `peer`; `on_message` (optional) runs on the loop for each message,
  // `on_close_hook` after each on_close.
  void connect(RawPeer& peer, BeastTransportOptions options = {},
               std::function<void(std::string_view)> on_message = {},
               std::function<void()> on_close_hook = {}) {
    loop.run_sync([&, on_message, on_close_hook] {
      transport = make_beast_transport(loop.io_context(), options);
      TransportHandlers h;
      // Every fixture connection checks the contract: each callback runs under a hold.
      h.hold_owner = [this]() -> std::shared_ptr<void> {
        if (!owner_alive) return nullptr;
        ++held;
        std::lock_guard lock(ev.mu);
        ++ev.holds;
        return std::shared_ptr<void>(this, [this](void*) { --held; });
      };
      h.on_open = [this] {
        std::lock_guard lock(ev.mu);
        if (held == 0) ++ev.unheld_callbacks;
        ev.opened = true;
        ev.cv.notify_all();
      };
      h.on_message = [this, on_message](std::string_view data, bool binary) {
        // The padding after each message is readable (message_padding): read it, so that an ASan
        // build fails any path that delivers a message without it (a reassembled one, one at
        // the end of the receive buffer, one in a grown buffer).
        unsigned char padding = 0;
        for (std::size_t i = 0; i < kBeastMessagePadding; ++i)
          padding ^= static_cast<unsigned char>(data.data()[data.size() + i]);
        padding_sink ^= padding;
        {
          std::lock_guard lock(ev.mu);
          if (held == 0) ++ev.unheld_callbacks;
          if (ev.closed || ev.failure) ++ev.callbacks_after_close;
          ev.messages.emplace_back(std::string(data), binary);
          ev.cv.notify_all();
        }
        if (on_message) on_message(data);
      };
      h.on_close = [this, on_close_hook](int code, std::string_view reason) {
        {
          std::lock_guard lock(ev.mu);
          if (held == 0) ++ev.unheld_callbacks;
          if (ev.closed || ev.failure) ++ev.callbacks_after_close;
          ev.closed.emplace(code, std::string(reason));
          ++ev.close_count;
          ev.cv.notify_all();
        }
        if (on_close_hook) on_close_hook();
      };
      h.on_error = [this](const TransportFailure& f) {
        std::lock_guard lock(ev.mu);
        if (held == 0) ++ev.unheld_callbacks;
        if (ev.closed || ev.failure) ++ev.callbacks_after_close;
        ev.failure = f;
        ev.cv.notify_all();
      };
      transport->set_handlers(std::move(h));
      transport->connect(peer.url(), headers);
    });
  }

  void open(RawPeer& peer, BeastTransportOptions options = {}, const std::string& extra = "") {
    connect(peer, options);
    ASSERT_TRUE(peer.accept_upgrade(extra));
    ASSERT_TRUE(ev.wait([&] { return ev.opened; }));
  }

  std::size_t message_count() {
    std::lock_guard lock(ev.mu);
    return ev.messages.size();
  }

  // The transport failed the connection with `code`: it reported that close to its owner, and
  // the peer reads our close frame carrying the same code. Returns the reported reason.
  std::string expect_failed_with(RawPeer& peer, int code) {
    std::string reason;
    EXPECT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
    {
      std::lock_guard lock(ev.mu);
      if (ev.closed) {
        EXPECT_EQ(ev.closed->first, code);
        reason = ev.closed->second;
      }
    }
    const auto reply = peer.read_frame();
    EXPECT_TRUE(reply);
    if (reply) {
      EXPECT_EQ(reply->opcode(), 0x8u);
      EXPECT_EQ(reply->close_code(), code);
    }
    return reason;
  }

  void TearDown() override {
    loop.run_sync([&] { transport.reset(); });
    std::lock_guard lock(ev.mu);
    EXPECT_EQ(ev.unheld_callbacks, 0);
  }

  core::EventLoop loop;
  std::unique_ptr<Transport> transport;
  Events ev;
  int held = 0;                         // loop thread only
  unsigned char padding_sink = 0;       // loop thread only
  std::atomic<bool> owner_alive{true};  // hold_owner answers null once false
  Transport::Headers headers = {{"X-Test", "yes"}};
};

// ---- upgrade -----------------------------------------------------------------------------------

TEST_F(WsFraming, UpgradeRequestCarriesTheWebSocketHeadersAndTheCallersOwn) {
  RawPeer peer;
  open(peer);
  const auto& r = peer.request();
  EXPECT_EQ(r.rfind("GET /ws?x=1 HTTP/1.1\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Upgrade: websocket\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Sec-WebSocket-Key: "), std::string::npos) << r;
  EXPECT_NE(r.find("X-Test: yes\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Host: 127.0.0.1:"), std::string::npos) << r;
}

TEST_F(WsFraming, FramesInTheSameSegmentAsThe101AreDelivered) {
  RawPeer peer;
  open(peer, {}, text("first") + text("second"));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 2; }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages[0].first, "first");
  EXPECT_EQ(ev.messages[1].first, "second");
}

TEST_F(WsFraming, WrongSecWebSocketAcceptFailsTheAttempt) {
  RawPeer peer;
  connect(peer);
  ASSERT_TRUE(peer.accept_upgrade("", std::string("dGhlIHNhbXBsZSBub25jZQ==")));
  ASSERT_TRUE(ev.wait([&] { return ev.failure.has_value(); }));
  std::lock_guard lock(ev.mu);
  EXPECT_FALSE(ev.opened);
  EXPECT_EQ(ev.failure->error.code, Errc::protocol);
  EXPECT_NE(ev.failure->error.message.find("Sec-WebSocket-Accept"), std::string::npos);
}

TEST_F(WsFraming, RefusalReportsStatusAndBody) {
  RawPeer peer;
  connect(peer);
  ASSERT_TRUE(peer.refuse(403, R"({"error":"bad key"})"));
  ASSERT_TRUE(ev.wait([&] { return ev.failure.has_value(); }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.failure->http_status, 403);
  EXPECT_EQ(ev.failure->body, R"({"error":"bad key"})");
  EXPECT_EQ(ev.failure->error.code, Errc::remote);
}

// ---- inbound -----------------------------------------------------------------------------------

TEST_F(WsFraming, ManyFramesInOneSegmentAreAllDeliveredInOrder) {
  RawPeer peer;
  open(peer);
  std::string burst;
  for (int i = 0; i < 2000; ++i)
    burst += text("message " + std::to_string(i));
  burst += frame(0x82, bytes({0x00, 0xFF}));
  peer.write(burst);
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 2001; }));
  std::lock_guard lock(ev.mu);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(ev.messages[i].first, "message " + std::to_string(i));
    ASSERT_FALSE(ev.messages[i].second);
  }
  EXPECT_EQ(ev.messages[2000], std::make_pair(bytes({0x00, 0xFF}), true));
}

TEST_F(WsFraming, MessagesArePaddedForInPlaceReaders) {
  RawPeer peer;
  open(peer);
  EXPECT_EQ(transport->message_padding(), kBeastMessagePadding);
  // One frame that fills the 128 KiB receive buffer exactly (10-byte header): its padding lies
  // past the capacity. The fixture's on_message reads every message's padding.
  const auto whole = frame(0x82, std::string(128 * 1024 - 10, 'x'));
  ASSERT_EQ(whole.size(), 128u * 1024);
  peer.write(whole);
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 1; }));
  loop.run_sync([&] { EXPECT_EQ(testing::read_buffer_capacity(*transport), 128u * 1024); });
  // Unfragmented and reassembled.
  peer.write(text("one") + frame(0x01, "tw") + frame(0x80, "o"));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 3; }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages[1].first, "one");
  EXPECT_EQ(ev.messages[2].first, "two");
}

TEST_F(WsFraming, ABurstOfFramesIsDeliveredUnderOneHoldPerRead) {
  RawPeer peer;
  open(peer);
  std::string burst;
  for (int i = 0; i < 2000; ++i)
    burst += text("message " + std::to_string(i));
  peer.write(burst);
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 2000; }));
  std::lock_guard lock(ev.mu);
  // One for the open, then one per read: 2000 frames of 14 bytes take a few reads, not 2000.
  EXPECT_GE(ev.holds, 2);
  EXPECT_LT(ev.holds, 100);
}

TEST_F(WsFraming, AnOwnerThatIsGoneGetsNoMoreCallbacksAndTheConnectionEnds) {
  RawPeer peer;
  open(peer);
  peer.write(text("first"));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 1; }));
  owner_alive = false;
  peer.write(text("second"));
  EXPECT_TRUE(peer.sees_eof());
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages.size(), 1u);
  EXPECT_FALSE(ev.closed);
}

// The owner's destruction closes its transport; the connection then finishes its close handshake
// without the owner (whose hold is now null) instead of cutting TCP at the next read.
TEST_F(WsFraming, AClosingConnectionFinishesItsHandshakeAfterItsOwnerIsGone) {
  RawPeer peer;
  open(peer);
  owner_alive = false;
  loop.run_sync([&] { transport.reset(); });
  const auto ours = peer.read_frame();
  ASSERT_TRUE(ours);
  EXPECT_EQ(ours->close_code(), 1000);
  ASSERT_TRUE(peer.write(text("late")));  // read while the client waits for our close frame
  EXPECT_FALSE(peer.sees_eof(300ms));
  ASSERT_TRUE(peer.write(close_frame(1000, "")));
  EXPECT_TRUE(peer.sees_eof());
  std::lock_guard lock(ev.mu);
  EXPECT_TRUE(ev.messages.empty());
}

TEST_F(WsFraming, AFrameSplitAcrossManySegmentsArrivesWhole) {
  RawPeer peer;
  open(peer);
  std::string payload;
  for (int i = 0; i < 3000; ++i)
    payload.push_back(static_cast<char>('a' + i % 26));
  const auto f = text(payload) + text("after");
  // The first byte alone, then the rest of the 16-bit length header in two, then the payload in
  // pieces of varying size: each its own write with a pause, so each is its own segment.
  std::vector<std::size_t> cuts = {1, 2, 4};
  for (std::size_t at = 4, step = 1; at < f.size(); at += step, step = step * 2 % 997 + 1)
    cuts.push_back(at);
  cuts.push_back(f.size());
  std::size_t from = 0;
  for (auto to : cuts) {
    if (to <= from) continue;
    peer.write(std::string_view(f).substr(from, to - from));
    from = to;
    std::this_thread::sleep_for(1ms);
    if (from < f.size() - 9) {
      EXPECT_EQ(message_count(), 0u);
    }
  }
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 2; }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages[0].first, payload);
  EXPECT_EQ(ev.messages[1].first, "after");
}

TEST_F(WsFraming, AFrameLargerThanTheReceiveBufferGrowsIt) {
  RawPeer peer;
  BeastTransportOptions o;
  o.max_frame_bytes = 1u << 20;
  open(peer, o);
  const std::string big(600 * 1024, 'B');
  peer.write(text("small") + frame(0x82, big) + text("small again"));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 3; }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages[1].first.size(), big.size());
  EXPECT_EQ(ev.messages[1].first, big);
  EXPECT_EQ(ev.messages[2].first, "small again");
}

TEST_F(WsFraming, FragmentedMessageWithAPingInBetween) {
  RawPeer peer;
  open(peer);
  peer.write(frame(0x01, "Hel") + frame(0x89, "mid") + frame(0x80, "lo"));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 1; }));
  {
    std::lock_guard lock(ev.mu);
    EXPECT_EQ(ev.messages[0].first, "Hello");
  }
  const auto pong = peer.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode(), 0xAu);
  EXPECT_EQ(pong->payload, "mid");
}

// ---- control frames ----------------------------------------------------------------------------

TEST_F(WsFraming, PingIsAnsweredWithAMaskedPongWithTheSamePayload) {
  RawPeer peer;
  open(peer);
  peer.write(frame(0x89, "are you there?"));
  const auto pong = peer.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->first, 0x8Au);  // FIN + pong
  EXPECT_TRUE(pong->masked);
  EXPECT_EQ(pong->payload, "are you there?");
  // The connection carries on.
  peer.write(text("still here"));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 1; }));
  std::lock_guard lock(ev.mu);
  EXPECT_FALSE(ev.closed);
}

TEST_F(WsFraming, ServerCloseSurfacesCodeAndReasonAndIsEchoed) {
  RawPeer peer;
  open(peer);
  peer.write(close_frame(4001, "bye now"));
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  {
    std::lock_guard lock(ev.mu);
    EXPECT_EQ(*ev.closed, std::make_pair(4001, std::string("bye now")));
  }
  const auto reply = peer.read_frame();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->opcode(), 0x8u);
  EXPECT_TRUE(reply->masked);
  EXPECT_EQ(reply->close_code(), 4001);
  EXPECT_TRUE(peer.sees_eof());
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.callbacks_after_close, 0);
}

TEST_F(WsFraming, ServerCloseWithoutACodeIs1005) {
  RawPeer peer;
  open(peer);
  peer.write(frame(0x88, ""));
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  {
    std::lock_guard lock(ev.mu);
    EXPECT_EQ(*ev.closed, std::make_pair(1005, std::string()));
  }
  const auto reply = peer.read_frame();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->opcode(), 0x8u);
  EXPECT_EQ(reply->payload, "");  // 1005 never goes on the wire
}

TEST_F(WsFraming, FramesAfterTheServersCloseAreNotDelivered) {
  RawPeer peer;
  open(peer);
  peer.write(text("before") + close_frame(1000, "") + text("after"));
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  EXPECT_TRUE(peer.read_frame());
  EXPECT_TRUE(peer.sees_eof());
  std::lock_guard lock(ev.mu);
  ASSERT_EQ(ev.messages.size(), 1u);
  EXPECT_EQ(ev.messages[0].first, "before");
}

// ---- protocol errors
// -----------------------------------------------------------------------------

TEST_F(WsFraming, OversizedFrameCloses1009) {
  RawPeer peer;
  BeastTransportOptions o;
  o.max_frame_bytes = 1000;
  open(peer, o);
  peer.write(text("fine") + text(std::string(1001, 'x')) + text("never"));
  EXPECT_EQ(expect_failed_with(peer, 1009), "message too big");
  std::lock_guard lock(ev.mu);
  ASSERT_EQ(ev.messages.size(), 1u);
  EXPECT_EQ(ev.messages[0].first, "fine");
}

TEST_F(WsFraming, MaskedServerFrameCloses1002) {
  RawPeer peer;
  open(peer);
  peer.write(frame(0x81, "masked", true));
  const auto reason = expect_failed_with(peer, 1002);
  EXPECT_NE(reason.find("masked"), std::string::npos) << reason;
  EXPECT_EQ(message_count(), 0u);
  // The client does not wait for a close frame from a broken peer: its side ends right away.
  EXPECT_TRUE(peer.sees_eof(1s));
}

TEST_F(WsFraming, InvalidUtf8TextCloses1007) {
  RawPeer peer;
  open(peer);
  peer.write(frame(0x81, bytes({'o', 'k', 0xC0, 0xAF})));
  expect_failed_with(peer, 1007);
}

TEST_F(WsFraming, DropWithoutACloseFrameIs1006) {
  RawPeer peer;
  open(peer);
  peer.write(bytes({0x81, 0x7E, 0x01}));  // half a header, then the peer goes away
  peer.drop();
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.closed->first, protocol::close_code::kAbnormal);
}

// ---- outbound and close()
// ------------------------------------------------------------------------

TEST_F(WsFraming, SentFramesAreMaskedWithFreshKeysInOrder) {
  RawPeer peer;
  open(peer);
  loop.run_sync([&] {
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(transport->send("frame " + std::to_string(i), false).ok());
    ASSERT_TRUE(transport->send(std::string(70000, 'z'), true).ok());
  });
  std::vector<std::uint32_t> masks;
  for (int i = 0; i < 20; ++i) {
    const auto f = peer.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->first, 0x81u);
    EXPECT_TRUE(f->masked);
    EXPECT_EQ(f->payload, "frame " + std::to_string(i));
    masks.push_back(f->mask);
  }
  const auto big = peer.read_frame();
  ASSERT_TRUE(big);
  EXPECT_EQ(big->first, 0x82u);
  EXPECT_EQ(big->payload, std::string(70000, 'z'));
  std::sort(masks.begin(), masks.end());
  EXPECT_GT(std::unique(masks.begin(), masks.end()) - masks.begin(), 15);
}

TEST_F(WsFraming, CloseSendsTheCloseFrameAndEndsTheConnectionOnTheServersAnswer) {
  RawPeer peer;
  open(peer);
  loop.run_sync([&] {
    ASSERT_TRUE(transport->send("last words", false).ok());
    transport->close(1000, "bye");
    EXPECT_FALSE(transport->send("too late", false).ok());
  });
  auto f = peer.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "last words");
  f = peer.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode(), 0x8u);
  EXPECT_EQ(f->close_code(), 1000);
  EXPECT_EQ(f->close_reason(), "bye");
  peer.write(text("ignored") + close_frame(1000, ""));
  EXPECT_TRUE(peer.sees_eof(1s));
  std::lock_guard lock(ev.mu);
  EXPECT_TRUE(ev.messages.empty());
  EXPECT_FALSE(ev.closed);  // no callback after close()
}

TEST_F(WsFraming, CloseGivesUpOnASilentServerAfterTheCloseTimeout) {
  RawPeer peer;
  BeastTransportOptions o;
  o.close_timeout = 300ms;
  open(peer, o);
  const auto start = std::chrono::steady_clock::now();
  loop.run_sync([&] { transport->close(1000, ""); });
  const auto f = peer.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode(), 0x8u);
  EXPECT_TRUE(peer.sees_eof(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  std::lock_guard lock(ev.mu);
  EXPECT_FALSE(ev.closed);
}

TEST_F(WsFraming, ClosingFromInsideOnMessageStopsDeliveryAtOnce) {
  RawPeer peer;
  int seen = 0;
  connect(peer, {}, [&](std::string_view) {
    if (++seen == 3) transport->close(1000, "enough");
  });
  std::string burst;
  for (int i = 0; i < 10; ++i)
    burst += text("m" + std::to_string(i));
  ASSERT_TRUE(peer.accept_upgrade());
  ASSERT_TRUE(ev.wait([&] { return ev.opened; }));
  peer.write(burst);
  const auto f = peer.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode(), 0x8u);
  EXPECT_EQ(f->close_reason(), "enough");
  peer.write(close_frame(1000, ""));
  EXPECT_TRUE(peer.sees_eof());
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages.size(), 3u);
}

// ---- review fixes ------------------------------------------------------------------------------

TEST_F(WsFraming, APingFloodLeavesAtMostOnePongPendingAnsweringTheLatestPing) {
  // The peer's tiny receive window and its not reading make the client's writes back up; every
  // ping answered would queue ~8 MB of pongs, beyond any socket buffer.
  RawPeer peer(nullptr, 4096);
  open(peer);
  constexpr int kPings = 60000;
  std::string flood;
  for (int i = 0; i < kPings; ++i) {
    std::string payload = "ping " + std::to_string(i);
    payload.resize(125, '.');
    flood += frame(0x89, payload);
  }
  ASSERT_TRUE(peer.write(flood + text("done")));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 1; }, 20s));
  std::string last_ping = "ping " + std::to_string(kPings - 1);
  last_ping.resize(125, '.');
  int pongs = 0;
  std::string last;
  while (last != last_ping) {
    const auto f = peer.read_frame();
    ASSERT_TRUE(f) << "after " << pongs << " pongs";
    ASSERT_EQ(f->opcode(), 0xAu);
    last = f->payload;
    ++pongs;
  }
  EXPECT_LT(pongs, kPings);
  std::lock_guard lock(ev.mu);
  EXPECT_FALSE(ev.closed);
}

// splitmix64, the generator the masking keys once came from, is invertible: its state can be read
// back from the key a plaintext handshake shows.
std::uint64_t splitmix_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
std::uint64_t undo_xorshift(std::uint64_t x, int s) {
  std::uint64_t y = x;
  for (int i = 0; i < 64 / s + 1; ++i)
    y = x ^ (y >> s);
  return y;
}
std::uint64_t inverse_odd(std::uint64_t a) {
  std::uint64_t x = a;
  for (int i = 0; i < 6; ++i)
    x *= 2 - a * x;
  return x;
}
std::uint64_t splitmix_unmix(std::uint64_t z) {
  z = undo_xorshift(z, 31) * inverse_odd(0x94D049BB133111EBull);
  z = undo_xorshift(z, 27) * inverse_odd(0xBF58476D1CE4E5B9ull);
  return undo_xorshift(z, 30);
}

TEST_F(WsFraming, MaskingKeysCannotBePredictedFromTheHandshakeKey) {
  for (std::uint64_t x : {0ull, 1ull, 0x0123456789ABCDEFull, ~0ull})
    ASSERT_EQ(splitmix_unmix(splitmix_mix(x)), x);
  constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ull;
  RawPeer peer;
  open(peer);
  loop.run_sync([&] { ASSERT_TRUE(transport->send("x", false).ok()); });
  const auto f = peer.read_frame();
  ASSERT_TRUE(f);
  const auto& r = peer.request();
  const std::string name = "Sec-WebSocket-Key: ";
  const auto k = r.find(name) + name.size();
  const std::string key = r.substr(k, r.find("\r\n", k) - k);
  ASSERT_EQ(key.size(), 24u);
  unsigned char nonce[18];
  ASSERT_EQ(EVP_DecodeBlock(nonce, reinterpret_cast<const unsigned char*>(key.data()), 24), 18);
  std::uint64_t a = 0, b = 0;
  std::memcpy(&a, nonce, 8);
  std::memcpy(&b, nonce + 8, 8);
  const std::uint64_t state = splitmix_unmix(b);
  EXPECT_NE(splitmix_unmix(a) + kGamma, state) << "the nonce is a splitmix64 sequence";
  EXPECT_NE(f->mask, static_cast<std::uint32_t>(splitmix_mix(state + kGamma) >> 32));
}

TEST_F(WsFraming, GarbageAfterTheServersCloseIsIgnoredAndTheCloseCompletes) {
  RawPeer peer;
  open(peer);
  // A masked frame (a protocol error) right behind the close frame, in the same segment.
  ASSERT_TRUE(peer.write(close_frame(4002, "going") + frame(0x81, "junk", true) + "\xFF\xFF"));
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  const auto reply = peer.read_frame();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->opcode(), 0x8u);
  EXPECT_EQ(reply->close_code(), 4002);
  ASSERT_TRUE(peer.sees_eof());
  // The client half-closed and reads on; it did not tear the connection down over the garbage.
  EXPECT_FALSE(peer.writing_after_eof_resets());
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(*ev.closed, std::make_pair(4002, std::string("going")));
  EXPECT_EQ(ev.callbacks_after_close, 0);
}

TEST_F(WsFraming, AfterTheServerStartedCloseTheClientReadsUntilTheServerEndsTcp) {
  RawPeer peer;
  open(peer);
  ASSERT_TRUE(peer.write(close_frame(1000, "")));
  const auto reply = peer.read_frame();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->opcode(), 0x8u);
  ASSERT_TRUE(peer.sees_eof());                   // the client's FIN
  EXPECT_FALSE(peer.writing_after_eof_resets());  // but its socket is still open and reading
}

TEST_F(WsFraming, AfterClosePeerAnswerTheClientReadsUntilTheServerEndsTcp) {
  RawPeer peer;
  open(peer);
  loop.run_sync([&] { transport->close(1000, "bye"); });
  const auto f = peer.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode(), 0x8u);
  ASSERT_TRUE(peer.write(close_frame(1000, "")));
  ASSERT_TRUE(peer.sees_eof(1s));
  EXPECT_FALSE(peer.writing_after_eof_resets());
}

TEST_F(WsFraming, AServerThatNeverEndsTcpAfterTheExchangeIsCutOffAtTheCloseTimeout) {
  RawPeer peer;
  BeastTransportOptions o;
  o.close_timeout = 300ms;
  open(peer, o);
  const auto start = std::chrono::steady_clock::now();
  loop.run_sync([&] { transport->close(1000, ""); });
  ASSERT_TRUE(peer.read_frame());
  ASSERT_TRUE(peer.write(close_frame(1000, "")));
  ASSERT_TRUE(peer.sees_eof(1s));  // the client's FIN; the peer keeps its side open
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(peer.writing_after_eof_resets());  // the client's socket is gone
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
}

TEST_F(WsFraming, UnlimitedMaxFrameBytesIsClampedSoAHugeLengthCloses1009) {
  RawPeer peer;
  BeastTransportOptions o;
  o.max_frame_bytes = SIZE_MAX;
  open(peer, o);
  // A binary frame header announcing 2^40 bytes, and a few of them.
  ASSERT_TRUE(peer.write(bytes({0x82, 0x7F, 0, 0, 0x01, 0, 0, 0, 0, 0}) + "abc"));
  expect_failed_with(peer, 1009);
}

TEST_F(WsFraming, CallerHeadersCannotOverrideTheHandshakesOwnFields) {
  RawPeer peer;
  headers = {{"host", "evil.example"},         {"Upgrade", "h2c"},
             {"Connection", "close"},          {"Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="},
             {"Sec-WebSocket-Version", "8"},   {"User-Agent", "mine/1.0"},
             {"Authorization", "Bearer token"}};
  open(peer);
  const auto& r = peer.request();
  EXPECT_EQ(r.find("evil.example"), std::string::npos) << r;
  EXPECT_EQ(r.find("h2c"), std::string::npos) << r;
  EXPECT_EQ(r.find("AAAAAAAAAAAAAAAAAAAAAA=="), std::string::npos) << r;
  EXPECT_NE(r.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << r;
  EXPECT_EQ(r.find("Sec-WebSocket-Version: 8"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: Upgrade\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("User-Agent: mine/1.0\r\n"), std::string::npos) << r;  // not a handshake field
  EXPECT_NE(r.find("Authorization: Bearer token\r\n"), std::string::npos) << r;
}

TEST_F(WsFraming, ASubprotocolTheClientDidNotOfferFailsTheAttempt) {
  RawPeer peer;
  peer.extra_101_headers = "Sec-WebSocket-Protocol: chat\r\n";
  connect(peer);
  ASSERT_TRUE(peer.accept_upgrade());
  ASSERT_TRUE(ev.wait([&] { return ev.failure.has_value(); }));
  std::lock_guard lock(ev.mu);
  EXPECT_FALSE(ev.opened);
  EXPECT_EQ(ev.failure->error.code, Errc::protocol);
  EXPECT_NE(ev.failure->error.message.find("subprotocol 'chat'"), std::string::npos)
      << ev.failure->error.message;
}

TEST_F(WsFraming, ASubprotocolTheClientOfferedIsAccepted) {
  RawPeer peer;
  peer.extra_101_headers = "Sec-WebSocket-Protocol: chat\r\n";
  headers = {{"Sec-WebSocket-Protocol", "superchat, chat"}};
  open(peer);
  EXPECT_NE(peer.request().find("Sec-WebSocket-Protocol: superchat, chat\r\n"), std::string::npos);
}

TEST_F(WsFraming, TheReadBufferShrinksBackWhileFramesKeepArriving) {
  RawPeer peer;
  BeastTransportOptions o;
  o.max_frame_bytes = 1u << 20;
  open(peer, o);
  const std::string big = frame(0x82, std::string(600 * 1024, 'B'));
  const std::string next = text("next");
  // Everything but the big frame's last bytes, then its tail together with the start of the next
  // frame in one segment: the buffer is never empty after the big frame is delivered.
  ASSERT_TRUE(peer.write(std::string_view(big).substr(0, big.size() - 10)));
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(peer.write(big.substr(big.size() - 10) + next.substr(0, 3)));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 1; }));
  std::size_t capacity = 0;
  loop.run_sync([&] { capacity = testing::read_buffer_capacity(*transport); });
  EXPECT_LE(capacity, 128u * 1024);
  ASSERT_TRUE(peer.write(next.substr(3)));
  ASSERT_TRUE(ev.wait([&] { return ev.messages.size() == 2; }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages[1].first, "next");
}

TEST_F(WsFraming, AFragmentedMessageOverTheLimitOnlyAtItsLastFragmentCloses1009) {
  RawPeer peer;
  BeastTransportOptions o;
  o.max_frame_bytes = 1000;
  open(peer, o);
  ASSERT_TRUE(peer.write(frame(0x01, std::string(400, 'a'))));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(peer.write(frame(0x00, std::string(400, 'b'))));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(peer.write(frame(0x80, std::string(201, 'c')) + text("never")));
  expect_failed_with(peer, 1009);
  EXPECT_EQ(message_count(), 0u);
}

TEST_F(WsFraming, CloseWhileConnectingEndsTheAttemptSilently) {
  RawPeer peer;
  connect(peer);
  ASSERT_TRUE(peer.accept_only());  // TCP up, the upgrade never answered
  loop.run_sync([&] { transport->close(1000, ""); });
  EXPECT_TRUE(peer.sees_eof());
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(ev.mu);
  EXPECT_FALSE(ev.opened);
  EXPECT_FALSE(ev.closed);
  EXPECT_FALSE(ev.failure);
}

TEST_F(WsFraming, AnUnansweredUpgradeFailsWithATimeoutAfterConnectTimeout) {
  RawPeer peer;
  BeastTransportOptions o;
  o.connect_timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  connect(peer, o);
  ASSERT_TRUE(peer.accept_only());
  ASSERT_TRUE(ev.wait([&] { return ev.failure.has_value(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_TRUE(peer.sees_eof());
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.failure->error.code, Errc::timeout);
  EXPECT_NE(ev.failure->error.message.find("WebSocket handshake: timed out after 300 ms"),
            std::string::npos)
      << ev.failure->error.message;
}

TEST_F(WsFraming, ConnectFromInsideOnMessageAbandonsTheOldConnection) {
  RawPeer first;
  RawPeer second;
  connect(first, {}, [&](std::string_view data) {
    if (data == "switch") transport->connect(second.url(), {});
  });
  ASSERT_TRUE(first.accept_upgrade());
  ASSERT_TRUE(ev.wait([&] { return ev.opened; }));
  {
    std::lock_guard lock(ev.mu);
    ev.opened = false;
  }
  ASSERT_TRUE(first.write(text("switch") + text("stale")));
  // The old connection is closed normally; the new one opens and delivers.
  const auto f = first.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 1000);
  ASSERT_TRUE(second.accept_upgrade(text("fresh")));
  ASSERT_TRUE(ev.wait([&] { return ev.opened && ev.messages.size() == 2; }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages[0].first, "switch");
  EXPECT_EQ(ev.messages[1].first, "fresh");
  EXPECT_FALSE(ev.closed);
}

TEST_F(WsFraming, ConnectFromInsideOnCloseStartsANewConnection) {
  RawPeer first;
  RawPeer second;
  // Only the first close reconnects: the second connection ends when `second` goes out of
  // scope, which may be before TearDown, and must not reach for it then.
  connect(first, {}, {}, [&, reconnected = false]() mutable {
    if (!std::exchange(reconnected, true)) transport->connect(second.url(), {});
  });
  ASSERT_TRUE(first.accept_upgrade());
  ASSERT_TRUE(ev.wait([&] { return ev.opened; }));
  {
    std::lock_guard lock(ev.mu);
    ev.opened = false;
  }
  ASSERT_TRUE(first.write(close_frame(1001, "away") + text("after close")));
  ASSERT_TRUE(second.accept_upgrade(text("hello again")));
  ASSERT_TRUE(ev.wait([&] { return ev.opened && ev.messages.size() == 1; }));
  // The first connection still completes its close handshake.
  const auto f = first.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 1001);
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.messages[0].first, "hello again");
  EXPECT_EQ(ev.close_count, 1);
}

TEST_F(WsFraming, DestroyingTheTransportInsideOnMessageDropsTheBufferedFrames) {
  RawPeer peer;
  connect(peer, {}, [&](std::string_view data) {
    if (data == "last") transport.reset();
  });
  ASSERT_TRUE(peer.accept_upgrade());
  ASSERT_TRUE(ev.wait([&] { return ev.opened; }));
  std::string burst = text("first") + text("last");
  for (int i = 0; i < 100; ++i)
    burst += text("buffered " + std::to_string(i));
  burst += frame(0x89, "ping");
  ASSERT_TRUE(peer.write(burst));
  const auto f = peer.read_frame();  // no pong: only the close frame follows
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode(), 0x8u);
  EXPECT_EQ(f->close_code(), 1000);
  ASSERT_TRUE(peer.write(close_frame(1000, "")));
  EXPECT_TRUE(peer.sees_eof());
  std::lock_guard lock(ev.mu);
  ASSERT_EQ(ev.messages.size(), 2u);
  EXPECT_EQ(ev.messages[1].first, "last");
  EXPECT_FALSE(ev.closed);
}

// ---- wss ---------------------------------------------------------------------------------------

TEST_F(WsFraming, WssJoinedWritesPingPongAndServerCloseEndWithCloseNotify) {
  TestCa ca;
  ASSERT_TRUE(ca.ok()) << "openssl failed; see " << ca.file("openssl.log");
  RawPeer peer(&ca);
  BeastTransportOptions o;
  o.ca_file = ca.file("ca.pem");
  connect(peer, o);
  ASSERT_TRUE(peer.accept_upgrade(text("over tls")));
  ASSERT_TRUE(ev.wait([&] { return ev.opened && ev.messages.size() == 1; }));
  // Many frames queued at once go out joined into one TLS write.
  loop.run_sync([&] {
    for (int i = 0; i < 200; ++i)
      ASSERT_TRUE(transport->send("tls " + std::to_string(i), false).ok());
  });
  for (int i = 0; i < 200; ++i) {
    const auto f = peer.read_frame();
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->masked);
    ASSERT_EQ(f->payload, "tls " + std::to_string(i));
  }
  ASSERT_TRUE(peer.write(frame(0x89, "tls ping")));
  auto f = peer.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode(), 0xAu);
  EXPECT_EQ(f->payload, "tls ping");
  ASSERT_TRUE(peer.write(close_frame(4000, "tls bye")));
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  f = peer.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 4000);
  ASSERT_TRUE(peer.sees_eof());
  EXPECT_TRUE(peer.saw_close_notify());
  peer.shutdown_send();
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(*ev.closed, std::make_pair(4000, std::string("tls bye")));
  EXPECT_EQ(ev.callbacks_after_close, 0);
}

TEST_F(WsFraming, WssCloseSendsCloseNotifyAfterTheExchange) {
  TestCa ca;
  ASSERT_TRUE(ca.ok()) << "openssl failed; see " << ca.file("openssl.log");
  RawPeer peer(&ca);
  BeastTransportOptions o;
  o.ca_file = ca.file("ca.pem");
  open(peer, o);
  loop.run_sync([&] { transport->close(1000, "done"); });
  const auto f = peer.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_reason(), "done");
  ASSERT_TRUE(peer.write(close_frame(1000, "")));
  ASSERT_TRUE(peer.sees_eof());
  EXPECT_TRUE(peer.saw_close_notify());
}

}  // namespace
}  // namespace rtsync::client
