// The FaultProxy (rtsync/testkit/fault_proxy.hpp) on real loopback sockets: a client socket →
// proxy → a target the test plays, all on one io_context the test thread drives. Fault durations
// and delays run on a ManualScheduler, so each is checked just before and exactly at its boundary.
// "Nothing arrived" is checked by letting the sockets run for a short real while (settle()).
#include "rtsync/testkit/fault_proxy.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/testkit/names.hpp"

namespace rtsync::testkit {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// One end of a connection the test holds: what it received, and how the other side ended.
struct End : std::enable_shared_from_this<End> {
  explicit End(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  std::string received;
  bool eof = false;
  bool reset = false;  // a read failed with anything but EOF (connection reset)
  std::size_t written = 0;
  std::array<char, 8192> buf{};

  void read() {
    socket.async_read_some(asio::buffer(buf), [self = shared_from_this()](
                                                  boost::system::error_code ec, std::size_t n) {
      if (ec == asio::error::eof) {
        self->eof = true;
        return;
      }
      if (ec) {
        if (ec != asio::error::operation_aborted) self->reset = true;
        return;
      }
      self->received.append(self->buf.data(), n);
      self->read();
    });
  }
  void send(std::string bytes) {
    auto data = std::make_shared<std::string>(std::move(bytes));
    asio::async_write(
        socket, asio::buffer(*data),
        [self = shared_from_this(), data](boost::system::error_code ec, std::size_t n) {
          if (!ec) self->written += n;
        });
  }
};

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target.open(tcp::v4());
    target.set_option(asio::socket_base::reuse_address(true));
    target.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    target.listen();
    accept_next();
  }
  void TearDown() override {
    proxy.reset();
    boost::system::error_code ec;
    target.close(ec);
    io.poll();
  }

  void make_proxy(FaultProxyOptions o = {}) {
    o.target_port = target.local_endpoint().port();
    auto p = FaultProxy::create(io, sched, o);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    proxy = std::move(p).value();
  }

  void accept_next() {
    auto end = std::make_shared<End>(io);
    target.async_accept(end->socket, [this, end](boost::system::error_code ec) {
      if (ec) return;
      end->read();
      accepted.push_back(end);
      accept_next();
    });
  }

  std::shared_ptr<End> connect() {
    auto end = std::make_shared<End>(io);
    end->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), proxy->port()));
    end->read();
    return end;
  }

  // Drives the sockets until `pred` holds (bounded).
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io.run_one_for(5ms);
      sched.run_ready();
    }
    return true;
  }
  // Lets the sockets run for a short real while: for checks that something did NOT happen.
  void settle(std::chrono::milliseconds d = 80ms) {
    const auto deadline = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < deadline) {
      io.run_one_for(5ms);
      sched.run_ready();
    }
  }

  asio::io_context io;
  core::ManualScheduler sched;
  tcp::acceptor target{io};
  std::vector<std::shared_ptr<End>> accepted;
  std::unique_ptr<FaultProxy> proxy;
};

TEST_F(ProxyTest, ForwardsBothWaysAndCountsBytesAndConnections) {
  make_proxy();
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 1; }));
  client->send("hello");
  accepted[0]->send("world!");
  ASSERT_TRUE(run_until([&] { return accepted[0]->received == "hello"; }));
  ASSERT_TRUE(run_until([&] { return client->received == "world!"; }));
  auto s = proxy->stats();
  EXPECT_EQ(s.accepted, 1u);
  EXPECT_EQ(s.connected, 1u);
  EXPECT_EQ(s.open, 1u);
  EXPECT_EQ(s.bytes_upstream, 5u);
  EXPECT_EQ(s.bytes_downstream, 6u);

  // A FIN from one side reaches the other; the proxy closes once both are done.
  client->socket.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(run_until([&] { return accepted[0]->eof; }));
  accepted[0]->socket.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(run_until([&] { return client->eof; }));
  ASSERT_TRUE(run_until([&] { return proxy->stats().open == 0; }));
}

TEST_F(ProxyTest, PartitionHoldsBytesBothWaysUntilItsEndAndParksNewConnections) {
  make_proxy();
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 1; }));
  proxy->cut(CutMode::partition, 2s);
  EXPECT_TRUE(proxy->faulty());
  client->send("up");
  accepted[0]->send("down");
  auto late = connect();  // accepted by the proxy, not joined to the target yet
  settle();
  EXPECT_EQ(accepted[0]->received, "");
  EXPECT_EQ(client->received, "");
  EXPECT_EQ(accepted.size(), 1u);

  sched.advance(2s - 1ns);
  settle();
  EXPECT_TRUE(proxy->faulty());
  EXPECT_EQ(accepted[0]->received, "");
  EXPECT_EQ(accepted.size(), 1u);

  sched.advance(1ns);  // exactly 2 s: the link is back, nothing was lost
  EXPECT_FALSE(proxy->faulty());
  ASSERT_TRUE(run_until([&] { return accepted[0]->received == "up"; }));
  ASSERT_TRUE(run_until([&] { return client->received == "down"; }));
  ASSERT_TRUE(run_until([&] { return accepted.size() == 2; }));
  EXPECT_FALSE(client->reset);
  EXPECT_FALSE(late->reset);
}

TEST_F(ProxyTest, ResetCutResetsCurrentConnectionsAndRefusesNewOnesUntilItsEnd) {
  make_proxy();
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 1; }));
  proxy->cut(CutMode::reset, 3s);
  ASSERT_TRUE(run_until([&] { return client->reset; }));
  ASSERT_TRUE(run_until([&] { return accepted[0]->reset || accepted[0]->eof; }));
  EXPECT_EQ(proxy->stats().closed_by_fault, 1u);

  sched.advance(3s - 1ns);
  auto refused = connect();
  ASSERT_TRUE(run_until([&] { return refused->reset || refused->eof; }));
  EXPECT_EQ(accepted.size(), 1u);
  EXPECT_EQ(proxy->stats().refused, 1u);

  sched.advance(1ns);
  auto after = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 2; }));
  after->send("back");
  ASSERT_TRUE(run_until([&] { return accepted[1]->received == "back"; }));
}

TEST_F(ProxyTest, StallStopsReadingSoTheSenderIsBackPressuredAndEverythingFlowsAfter) {
  FaultProxyOptions o;
  o.buffer_bytes = 16 * 1024;
  o.socket_buffer_bytes = 16 * 1024;
  make_proxy(o);
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 1; }));
  auto& server = accepted[0];
  // Not read by the client side, so only the server's socket buffers limit what it can write.
  server->socket.set_option(asio::socket_base::send_buffer_size(16 * 1024));
  proxy->stall(Flow::downstream);
  const std::string big(8u << 20, 'x');
  server->send(big);
  client->send("still flows up");
  ASSERT_TRUE(run_until([&] { return server->received == "still flows up"; }));
  settle(200ms);
  // The server could not hand the kernel its 8 MiB: its write is still in progress.
  EXPECT_LT(server->written, big.size());
  EXPECT_EQ(client->received.size(), 0u);
  EXPECT_EQ(proxy->stats().bytes_downstream, 0u);

  proxy->clear();
  ASSERT_TRUE(run_until([&] { return client->received.size() == big.size(); }, 20s));
  EXPECT_EQ(server->written, big.size());
  EXPECT_EQ(client->received, big);
}

// With small socket buffers the window the proxy offers can fall below what a sender on
// loopback (64 KiB MSS) will send into: it then sends only when its persist timer fires, a timer
// that backed off while a partition kept the window shut, and a healed partition's backlog came
// out one window per probe, seconds apart (the chaos campaign's late partitions, seen with `ss`:
// docs/chaos.md §6). The proxy's sockets announce an Ethernet-sized MSS instead, so that both of
// its peers send segments that always fit many times into its window.
int segment_size(tcp::socket& s) {
  int mss = 0;
  socklen_t len = sizeof mss;
  if (::getsockopt(s.native_handle(), IPPROTO_TCP, TCP_MAXSEG, &mss, &len) != 0) return -1;
  return mss;
}

TEST_F(ProxyTest, SmallSocketBuffersComeWithSegmentsThatFitTheirWindowManyTimes) {
  FaultProxyOptions o;
  o.socket_buffer_bytes = 32 * 1024;  // what the chaos world uses
  make_proxy(o);
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 1; }));
  // Each peer's segments toward the proxy are bounded by what the proxy announced.
  EXPECT_GT(segment_size(accepted[0]->socket), 0);
  EXPECT_LE(segment_size(accepted[0]->socket), 1448);
  EXPECT_GT(segment_size(client->socket), 0);
  EXPECT_LE(segment_size(client->socket), 1448);
  // And the link still carries everything, both ways.
  const std::string big(1u << 20, 'y');
  accepted[0]->send(big);
  client->send("up");
  ASSERT_TRUE(run_until([&] { return client->received.size() == big.size(); }));
  ASSERT_TRUE(run_until([&] { return accepted[0]->received == "up"; }));
  EXPECT_EQ(client->received, big);
}

TEST_F(ProxyTest, DefaultSocketBuffersKeepTheKernelsSegmentSize) {
  make_proxy();
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 1; }));
  EXPECT_GT(segment_size(accepted[0]->socket), 1448);  // loopback's, far above Ethernet's
}

TEST_F(ProxyTest, DelayHoldsEachChunkForTheLatencyInOrder) {
  make_proxy();
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 1; }));
  proxy->delay(Flow::upstream, 300ms);
  client->send("first");
  ASSERT_TRUE(run_until(
      [&] { return proxy->stats().bytes_upstream == 0 && sched.pending(timers::ProxyDelay); }));
  sched.advance(100ms);
  client->send("second");
  settle();
  sched.advance(200ms - 1ns);
  settle();
  EXPECT_EQ(accepted[0]->received, "");
  sched.advance(1ns);  // "first" is due
  ASSERT_TRUE(run_until([&] { return accepted[0]->received == "first"; }));
  sched.advance(100ms);  // "second" is due 300 ms after it was read
  ASSERT_TRUE(run_until([&] { return accepted[0]->received == "firstsecond"; }));
  // The other flow is not delayed.
  accepted[0]->send("reply");
  ASSERT_TRUE(run_until([&] { return client->received == "reply"; }));
}

TEST_F(ProxyTest, TimedDelayEndsAtItsBoundary) {
  make_proxy();
  proxy->delay(Flow::both, 50ms, 1s);
  sched.advance(1s - 1ns);
  EXPECT_TRUE(proxy->faulty());
  sched.advance(1ns);
  EXPECT_FALSE(proxy->faulty());
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 1; }));
  client->send("now");
  ASSERT_TRUE(run_until([&] { return accepted[0]->received == "now"; }));
}

TEST_F(ProxyTest, CloseAllResetsOrClosesEveryCurrentConnection) {
  make_proxy();
  auto a = connect();
  auto b = connect();
  ASSERT_TRUE(run_until([&] { return proxy->stats().connected == 2; }));
  EXPECT_EQ(proxy->close_all(true), 2u);
  ASSERT_TRUE(run_until([&] { return a->reset && b->reset; }));

  auto c = connect();
  ASSERT_TRUE(run_until([&] { return proxy->stats().connected == 3; }));
  EXPECT_EQ(proxy->close_all(false), 1u);
  ASSERT_TRUE(run_until([&] { return c->eof; }));
  EXPECT_FALSE(c->reset);
  ASSERT_TRUE(run_until([&] { return accepted[2]->eof; }));
  EXPECT_EQ(proxy->stats().closed_by_fault, 3u);
}

TEST_F(ProxyTest, AMatchPicksConnectionsByTheirFirstBytes) {
  make_proxy();
  const std::string needle("replication\0database", 20);
  auto plain = connect();
  auto repl = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 2; }));
  plain->send(std::string("user\0postgres\0", 14));
  repl->send(std::string("user\0postgres\0replication\0database\0", 35));
  ASSERT_TRUE(run_until([&] { return proxy->stats().bytes_upstream == 14 + 35; }));

  EXPECT_EQ(proxy->close_all(true, {needle}), 1u);
  ASSERT_TRUE(run_until([&] { return repl->reset; }));
  EXPECT_FALSE(plain->reset);

  // While a reset cut with that needle is on, a new connection lasts until it shows the needle.
  proxy->cut(CutMode::reset, 5s, {needle});
  EXPECT_FALSE(plain->reset);
  auto again = connect();
  ASSERT_TRUE(run_until([&] { return accepted.size() == 3; }));
  again->send(std::string("user\0postgres\0replication\0database\0", 35));
  ASSERT_TRUE(run_until([&] { return again->reset; }));
  plain->send("x");
  ASSERT_TRUE(run_until([&] { return accepted[0]->received.size() == 15; }));
  EXPECT_FALSE(plain->reset);
}

TEST_F(ProxyTest, ATargetThatRefusesResetsTheClient) {
  // A port nothing listens on: bind one and close it.
  tcp::acceptor gone(io);
  gone.open(tcp::v4());
  gone.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto dead_port = gone.local_endpoint().port();
  gone.close();
  make_proxy();
  proxy->set_target("127.0.0.1", dead_port);
  auto client = connect();
  ASSERT_TRUE(run_until([&] { return client->reset || client->eof; }));
  EXPECT_EQ(proxy->stats().refused, 1u);
  EXPECT_EQ(proxy->stats().open, 0u);
}

// start(): the proxy's own thread; the test calls it from the test thread with blocking sockets.
TEST(FaultProxyThreaded, ControlsWorkFromAnotherThread) {
  asio::io_context io;
  tcp::acceptor target(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  FaultProxyOptions o;
  o.target_port = target.local_endpoint().port();
  auto p = FaultProxy::start(o);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  auto& proxy = *p.value();

  tcp::socket client(io);
  client.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), proxy.port()));
  tcp::socket server(io);
  target.accept(server);
  asio::write(client, asio::buffer(std::string("ping")));
  std::string got(4, '\0');
  asio::read(server, asio::buffer(got));
  EXPECT_EQ(got, "ping");

  proxy.cut(CutMode::reset);  // until cleared
  char byte = 0;
  boost::system::error_code ec;
  asio::read(client, asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec);  // reset (or EOF): the link is gone
  EXPECT_TRUE(proxy.faulty());
  proxy.clear();
  EXPECT_FALSE(proxy.faulty());

  tcp::socket again(io);
  again.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), proxy.port()));
  tcp::socket server2(io);
  target.accept(server2);
  asio::write(again, asio::buffer(std::string("pong")));
  asio::read(server2, asio::buffer(got));
  EXPECT_EQ(got, "pong");
  EXPECT_EQ(proxy.stats().connected, 2u);
}

TEST(FaultProxyThreaded, BadAddressesAndATakenPortAreErrors) {
  FaultProxyOptions bad;
  bad.listen_host = "not-an-address";
  auto p = FaultProxy::start(bad);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::invalid_argument);

  asio::io_context io;
  tcp::acceptor taken(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  FaultProxyOptions clash;
  clash.listen_port = taken.local_endpoint().port();
  auto q = FaultProxy::start(clash);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, Errc::io);
}

}  // namespace
}  // namespace rtsync::testkit
