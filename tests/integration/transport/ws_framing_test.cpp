// The Beast transport's own WebSocket framing against a raw TCP peer written here: the peer
// answers the upgrade by hand and then sends hand-made bytes (pings, close frames, masked frames,
// oversized frames, many frames in one segment, one frame split over many segments) and decodes
// what the client sends back. POSIX sockets with poll() timeouts; waits are bounded.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rtsync/client/transport/beast_transport.hpp"
#include "rtsync/core/event_loop.hpp"

namespace rtsync::client {
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

// One client at a time on 127.0.0.1, driven synchronously by the test thread.
class RawPeer {
 public:
  RawPeer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
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
    if (conn_ >= 0) ::close(conn_);
    ::close(listener_);
  }

  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ws?x=1"; }

  // Accepts the client, reads its upgrade request and answers 101 (with `accept` in place of the
  // right Sec-WebSocket-Accept when given), followed in the same write by `extra`.
  bool accept_upgrade(const std::string& extra = "", std::optional<std::string> accept = {}) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    conn_ = ::accept(listener_, nullptr, nullptr);
    if (conn_ < 0) return false;
    const int one = 1;
    ::setsockopt(conn_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
        accept.value_or(accept_for(key)) + "\r\n\r\n" + extra);
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

  void write(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(conn_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

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
      if (::poll(&p, 1, 50) == 1) {
        char buf[4096];
        const auto n = ::recv(conn_, buf, sizeof buf, 0);
        if (n <= 0) return true;
      }
    }
    return false;
  }

 private:
  bool fill() {
    pollfd p{conn_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    char buf[65536];
    const auto n = ::recv(conn_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

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

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return pred(); });
  }
};

class WsFraming : public ::testing::Test {
 protected:
  void SetUp() override { loop.start(); }

  // Connects a transport to `peer`; `on_message` (optional) runs on the loop for each message.
  void connect(RawPeer& peer, BeastTransportOptions options = {},
               std::function<void(std::string_view)> on_message = {}) {
    loop.run_sync([&, on_message] {
      transport = make_beast_transport(loop.io_context(), options);
      TransportHandlers h;
      h.on_open = [this] {
        std::lock_guard lock(ev.mu);
        ev.opened = true;
        ev.cv.notify_all();
      };
      h.on_message = [this, on_message](std::string_view data, bool binary) {
        {
          std::lock_guard lock(ev.mu);
          if (ev.closed || ev.failure) ++ev.callbacks_after_close;
          ev.messages.emplace_back(std::string(data), binary);
          ev.cv.notify_all();
        }
        if (on_message) on_message(data);
      };
      h.on_close = [this](int code, std::string_view reason) {
        std::lock_guard lock(ev.mu);
        if (ev.closed || ev.failure) ++ev.callbacks_after_close;
        ev.closed.emplace(code, std::string(reason));
        ev.cv.notify_all();
      };
      h.on_error = [this](const TransportFailure& f) {
        std::lock_guard lock(ev.mu);
        if (ev.closed || ev.failure) ++ev.callbacks_after_close;
        ev.failure = f;
        ev.cv.notify_all();
      };
      transport->set_handlers(std::move(h));
      transport->connect(peer.url(), {{"X-Test", "yes"}});
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

  void TearDown() override {
    loop.run_sync([&] { transport.reset(); });
  }

  core::EventLoop loop;
  std::unique_ptr<Transport> transport;
  Events ev;
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
    if (from < f.size() - 9) EXPECT_EQ(message_count(), 0u);
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
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  {
    std::lock_guard lock(ev.mu);
    EXPECT_EQ(*ev.closed, std::make_pair(1009, std::string("message too big")));
    ASSERT_EQ(ev.messages.size(), 1u);
    EXPECT_EQ(ev.messages[0].first, "fine");
  }
  const auto reply = peer.read_frame();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->opcode(), 0x8u);
  EXPECT_EQ(reply->close_code(), 1009);
}

TEST_F(WsFraming, MaskedServerFrameCloses1002) {
  RawPeer peer;
  open(peer);
  peer.write(frame(0x81, "masked", true));
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  {
    std::lock_guard lock(ev.mu);
    EXPECT_EQ(ev.closed->first, 1002);
    EXPECT_NE(ev.closed->second.find("masked"), std::string::npos) << ev.closed->second;
    EXPECT_TRUE(ev.messages.empty());
  }
  const auto reply = peer.read_frame();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->close_code(), 1002);
  // The client does not wait for a close frame from a broken peer: its side ends right away.
  EXPECT_TRUE(peer.sees_eof(1s));
}

TEST_F(WsFraming, InvalidUtf8TextCloses1007) {
  RawPeer peer;
  open(peer);
  peer.write(frame(0x81, bytes({'o', 'k', 0xC0, 0xAF})));
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  {
    std::lock_guard lock(ev.mu);
    EXPECT_EQ(ev.closed->first, 1007);
  }
  const auto reply = peer.read_frame();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->close_code(), 1007);
}

TEST_F(WsFraming, DropWithoutACloseFrameIs1006) {
  RawPeer peer;
  open(peer);
  peer.write(bytes({0x81, 0x7E, 0x01}));  // half a header, then the peer goes away
  peer.drop();
  ASSERT_TRUE(ev.wait([&] { return ev.closed.has_value(); }));
  std::lock_guard lock(ev.mu);
  EXPECT_EQ(ev.closed->first, kCloseAbnormal);
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

}  // namespace
}  // namespace rtsync::client
