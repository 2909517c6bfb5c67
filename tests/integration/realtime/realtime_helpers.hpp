// GoogleTest helpers shared by the realtime server's integration suites (realtime_test.cpp,
// security_test.cpp, no_loss_test.cpp, bulk_test.cpp, edge_test.cpp): start a TestStack, connect,
// build bindings and collect the postgres_changes a client receives. Every wait is bounded.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/protocol/postgres_changes.hpp"
#include "test_stack.hpp"
#include "ws_client.hpp"

#define REQUIRE_OK(expr)                                            \
  do {                                                              \
    auto _r = (expr);                                               \
    ASSERT_TRUE(_r.ok()) << #expr << ": " << _r.error().describe(); \
  } while (0)

namespace rtsync::testkit {

// A stack, or nullptr after recording the failure.
inline std::unique_ptr<TestStack> start_stack(StackOptions o = {}) {
  auto s = TestStack::start(std::move(o));
  if (!s.ok()) {
    ADD_FAILURE() << "stack: " << s.error().describe();
    return nullptr;
  }
  return std::move(s.value());
}

inline std::unique_ptr<WsClient> connect(TestStack& s, std::string key,
                                         protocol::Vsn vsn = protocol::Vsn::v2) {
  auto c = WsClient::connect_key(s.port(), key, vsn);
  if (!c.ok()) {
    ADD_FAILURE() << "connect: " << c.error().describe();
    return nullptr;
  }
  return std::move(c.value());
}

inline json::object binding(std::string event, std::string table, std::string filter = "") {
  json::object b{{"event", event}, {"schema", "public"}, {"table", table}};
  if (!filter.empty()) b["filter"] = filter;
  return b;
}

// postgres_changes messages on `topic` until `n` arrived or `timeout`.
inline std::vector<protocol::ChangeEvent> changes(WsClient& c, const std::string& topic,
                                                  std::size_t n,
                                                  std::chrono::milliseconds timeout = 10s) {
  std::vector<protocol::ChangeEvent> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto m = c.wait_for(
        [&](const protocol::Message& m) {
          return m.event == "postgres_changes" && m.topic == topic;
        },
        left);
    if (!m) break;
    auto ev = protocol::parse_change_event(m->payload);
    EXPECT_TRUE(ev.ok());
    if (ev.ok()) out.push_back(ev.value());
  }
  return out;
}

using ChangesByTopic = std::map<std::string, std::vector<protocol::ChangeEvent>>;

// All postgres_changes messages within `window`, grouped by topic.
inline ChangesByTopic drain(WsClient& c, std::chrono::milliseconds window) {
  ChangesByTopic out;
  auto deadline = std::chrono::steady_clock::now() + window;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto m = c.next(left);
    if (!m) break;
    if (m->event != "postgres_changes") continue;
    auto ev = protocol::parse_change_event(m->payload);
    if (ev.ok()) out[m->topic].push_back(ev.value());
  }
  return out;
}

// drain() appended to what was collected before.
inline void drain_into(WsClient& c, ChangesByTopic& into, std::chrono::milliseconds window) {
  for (auto& [topic, evs] : drain(c, window))
    into[topic].insert(into[topic].end(), evs.begin(), evs.end());
}

inline std::int64_t id_of(const json::object& rec) {
  return rec.at("id").to_number<std::int64_t>();
}

// The value of `rtsync_drops_total{reason="<reason>"}` in a /metrics text; 0 when absent.
inline std::uint64_t drops_in(const std::string& metrics, std::string_view reason) {
  const std::string prefix = "rtsync_drops_total{reason=\"" + std::string(reason) + "\"} ";
  auto at = metrics.find(prefix);
  if (at == std::string::npos) return 0;
  return std::stoull(metrics.substr(at + prefix.size()));
}

// Writes `bytes` on a fresh TCP connection (from `local`, any loopback address) and returns
// everything the server sends until it closes.
inline std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                                const std::string& local = "127.0.0.1") {
  namespace asio = boost::asio;
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

}  // namespace rtsync::testkit
