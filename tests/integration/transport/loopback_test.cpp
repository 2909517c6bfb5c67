// RealtimeSocket/RealtimeChannel over real WebSockets (Beast, ws and wss) against a scripted peer
// on 127.0.0.1 replaying the documented frames (docs/protocol.md): joins, postgres_changes, JSON
// and binary broadcasts, heartbeats, refused upgrades, TLS with a CA made by the test, abrupt drops
// mid-frame, oversized frames, server close frames, bad input. Waits are bounded; nothing needs
// PostgreSQL.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "integration/test_ca.hpp"
#include "rtsync/client/transport/beast_transport.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/protocol/message.hpp"
#include "scripted_peer.hpp"

namespace rtsync::client {

using rtsync::testing::TestCa;
namespace {

using namespace std::chrono_literals;
using rtsync::testing::PeerConnection;
using rtsync::testing::PeerOptions;
using rtsync::testing::ScriptedPeer;
using rtsync::testing::wait_until;

std::string encode(protocol::Vsn vsn, std::optional<std::string> join_ref,
                   std::optional<std::string> ref, std::string topic, std::string event,
                   json::value payload) {
  if (vsn == protocol::Vsn::v1) join_ref.reset();  // the server never sends join_ref in V1
  return protocol::encode_text(
      vsn, protocol::Message{std::move(join_ref), std::move(ref), std::move(topic),
                             std::move(event), std::move(payload)});
}

std::string reply_frame(protocol::Vsn vsn, const protocol::Message& to, json::value response) {
  json::object payload;
  payload["status"] = "ok";
  payload["response"] = std::move(response);
  return encode(vsn, to.join_ref, to.ref, to.topic, "phx_reply", std::move(payload));
}

std::string change_frame(const std::string& topic, std::int64_t id, int n) {
  return "[null,null,\"" + topic + R"(","postgres_changes",{"ids":[)" + std::to_string(id) +
         R"(],"data":{"schema":"public","table":"tasks","commit_timestamp":"2025-11-19T00:22:40.877Z","type":"INSERT","columns":[{"name":"id","type":"int8"},{"name":"status","type":"text"}],"record":{"id":)" +
         std::to_string(n) + R"(,"status":"Queued"},"errors":null}}])";
}

// The server side of the protocol as docs/protocol.md describes it: heartbeats and joins answered
// (postgres_changes echoed with ids 100, 101…), leaves answered then closed.
struct RealtimeScript {
  protocol::Vsn vsn = protocol::Vsn::v2;
  bool answer_heartbeats = true;
  std::function<void(PeerConnection&, const protocol::Message& join)> after_join;

  void operator()(PeerConnection& conn, std::string_view frame, bool binary) const {
    if (binary) return;
    auto m = protocol::decode_text(vsn, frame);
    if (!m.ok()) return;
    const auto& msg = m.value();
    if (msg.event == "heartbeat") {
      if (answer_heartbeats) conn.send_text(reply_frame(vsn, msg, json::object()));
    } else if (msg.event == "phx_join") {
      json::array acks;
      if (const auto* config = core::find_object(msg.payload, "config")) {
        if (const auto* pcs = config->if_contains("postgres_changes"); pcs && pcs->is_array()) {
          std::int64_t id = 100;
          for (const auto& spec : pcs->get_array()) {
            json::object o = spec.as_object();
            o["id"] = id++;
            acks.push_back(std::move(o));
          }
        }
      }
      json::object response;
      response["postgres_changes"] = std::move(acks);
      conn.send_text(reply_frame(vsn, msg, std::move(response)));
      if (after_join) after_join(conn, msg);
    } else if (msg.event == "phx_leave") {
      conn.send_text(reply_frame(vsn, msg, json::object()));
      conn.send_text(
          encode(vsn, msg.join_ref, msg.join_ref, msg.topic, "phx_close", json::object()));
    }
  }
};

// What the client saw, written on the loop thread, read by the test thread.
struct Recorder {
  mutable std::mutex mu;
  std::vector<std::string> statuses;
  std::vector<std::string> changes;
  std::vector<std::string> broadcasts;
  std::vector<SocketError> errors;
  std::vector<SocketStateChange> states;
  std::atomic<int> heartbeat_ok{0};

  template <class T>
  std::vector<T> copy(const std::vector<T>& v) const {
    std::lock_guard lock(mu);
    return v;
  }
  std::size_t count(const std::vector<std::string>& v) const {
    std::lock_guard lock(mu);
    return v.size();
  }
  bool has_status(std::string_view s, std::size_t times = 1) const {
    std::lock_guard lock(mu);
    return std::count(statuses.begin(), statuses.end(), s) >= static_cast<long>(times);
  }
};

class Loopback : public ::testing::Test {
 protected:
  void start_client(SocketOptions o, BeastTransportOptions t = {}) {
    loop.start();
    loop.run_sync([&] {
      socket = make_realtime_socket(loop, std::move(o), std::move(t));
      subs.push_back(socket->on_error([this](const SocketError& e) {
        std::lock_guard lock(rec.mu);
        rec.errors.push_back(e);
      }));
      subs.push_back(socket->on_state([this](const SocketStateChange& c) {
        std::lock_guard lock(rec.mu);
        rec.states.push_back(c);
      }));
      subs.push_back(socket->on_heartbeat([this](HeartbeatStatus s, auto) {
        if (s == HeartbeatStatus::ok) ++rec.heartbeat_ok;
      }));
    });
  }

  SocketOptions options(std::string url, protocol::Vsn vsn = protocol::Vsn::v2) {
    SocketOptions o;
    o.url = std::move(url);
    o.api_key = "anon-key";
    o.vsn = vsn;
    o.heartbeat_interval = 200ms;
    o.push_timeout = 2s;
    o.reconnect_backoff = core::ExponentialBackoff{20ms, 50ms};
    o.rejoin_backoff = core::SteppedBackoff{{20ms}, 0.0};
    o.jitter_seed = 7;
    return o;
  }

  // Channel "tasks" with an INSERT binding on public.tasks and a "*" broadcast binding.
  void subscribe_tasks() {
    loop.run_sync([&] {
      channel = socket->channel("tasks");
      subs.push_back(channel->on_postgres_changes(
          PostgresChangesFilter{"INSERT", "public", "tasks", std::nullopt},
          [this](const RealtimeChannel::ChangeView& c) {
            std::lock_guard lock(rec.mu);
            rec.changes.push_back(json::serialize(c.to_object()));
          }));
      subs.push_back(channel->on_broadcast("*", [this](const json::value& m) {
        std::lock_guard lock(rec.mu);
        rec.broadcasts.push_back(json::serialize(m));
      }));
      ASSERT_TRUE(channel
                      ->subscribe([this](SubscribeStatus s, std::optional<Error> e) {
                        std::lock_guard lock(rec.mu);
                        rec.statuses.push_back(std::string(to_string(s)) +
                                               (e ? ": " + e->message : std::string()));
                      })
                      .ok());
    });
  }

  SocketCounters counters() {
    SocketCounters c;
    loop.run_sync([&] { c = socket->counters(); });
    return c;
  }

  void TearDown() override {
    loop.run_sync([&] {
      subs.clear();
      channel.reset();
      socket.reset();
    });
  }

  static std::string http_url(const ScriptedPeer& peer) {
    return "http://127.0.0.1:" + std::to_string(peer.port());
  }

  Recorder rec;
  core::EventLoop loop;
  std::unique_ptr<RealtimeSocket> socket;
  std::shared_ptr<RealtimeChannel> channel;
  std::vector<core::Subscription> subs;
};

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

TEST_F(Loopback, JoinsAndReceivesChangesAndBroadcastsOverWs) {
  ScriptedPeer peer;
  RealtimeScript script;
  script.after_join = [](PeerConnection& conn, const protocol::Message& join) {
    for (int i = 1; i <= 3; ++i)
      conn.send_text(change_frame(join.topic, 100, i));
    conn.send_text(
        R"([null,null,"realtime:tasks","broadcast",{"event":"task-update","type":"broadcast","payload":{"taskId":"t1"}}])");
    protocol::UserBroadcast b;
    b.topic = join.topic;
    b.user_event = "binary-one";
    b.payload = R"({"n":1})";
    conn.send_binary(protocol::encode_user_broadcast(b).value());
  };
  peer.set_script(script);
  start_client(options(http_url(peer)));
  subscribe_tasks();

  ASSERT_TRUE(
      wait_until([&] { return rec.count(rec.changes) == 3 && rec.count(rec.broadcasts) == 2; }));
  EXPECT_EQ(rec.copy(rec.statuses), std::vector<std::string>{"SUBSCRIBED"});
  EXPECT_EQ(peer.targets().at(0), "/realtime/v1/websocket?apikey=anon-key&vsn=2.0.0");
  EXPECT_EQ(
      peer.received().at(0),
      R"(["1","1","realtime:tasks","phx_join",{"config":{"broadcast":{"ack":false,"self":false},"presence":{"key":"","enabled":false},"postgres_changes":[{"event":"INSERT","schema":"public","table":"tasks"}],"private":false}}])");
  EXPECT_EQ(
      rec.copy(rec.changes).at(2),
      R"({"schema":"public","table":"tasks","commit_timestamp":"2025-11-19T00:22:40.877Z","eventType":"INSERT","new":{"id":3,"status":"Queued"},"old":{},"errors":null})");
  EXPECT_EQ(rec.copy(rec.broadcasts).at(1),
            R"({"type":"broadcast","event":"binary-one","payload":{"n":1}})");

  // Heartbeats go out on the interval and are answered.
  ASSERT_TRUE(wait_until([&] { return rec.heartbeat_ok >= 2; }));

  loop.run_sync([&] { channel->unsubscribe(); });
  ASSERT_TRUE(wait_until([&] { return rec.has_status("CLOSED"); }));
  EXPECT_EQ(peer.upgrades(), 1u);
  EXPECT_EQ(counters().malformed_frames, 0u);
}

TEST_F(Loopback, SpeaksVsn1) {
  ScriptedPeer peer;
  RealtimeScript script;
  script.vsn = protocol::Vsn::v1;
  script.after_join = [](PeerConnection& conn, const protocol::Message&) {
    conn.send_text(
        R"({"topic":"realtime:tasks","event":"broadcast","payload":{"event":"hello","type":"broadcast","payload":{}},"ref":null})");
  };
  peer.set_script(script);
  start_client(options(http_url(peer), protocol::Vsn::v1));
  subscribe_tasks();
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.broadcasts) == 1; }));
  EXPECT_EQ(peer.targets().at(0), "/realtime/v1/websocket?apikey=anon-key&vsn=1.0.0");
  EXPECT_TRUE(
      starts_with(peer.received().at(0), R"({"topic":"realtime:tasks","event":"phx_join",)"));
  ASSERT_TRUE(wait_until([&] { return rec.heartbeat_ok >= 1; }));
}

TEST_F(Loopback, RefusedUpgradeReportsStatusAndServerErrorAndKeepsRetrying) {
  PeerOptions po;
  po.refuse_status = 401;
  po.refuse_body = R"({"error":"API key is missing"})";
  ScriptedPeer peer(po);
  start_client(options(http_url(peer)));
  loop.run_sync([&] { socket->connect(); });
  ASSERT_TRUE(wait_until([&] { return peer.refused() >= 3 && rec.copy(rec.errors).size() >= 3; }));
  const auto errors = rec.copy(rec.errors);
  EXPECT_EQ(errors[0].http_status, 401);
  EXPECT_EQ(errors[0].server_error, "API key is missing");
  EXPECT_EQ(errors[0].error.message, "HTTP 401: API key is missing");
  EXPECT_EQ(errors[0].error.code, Errc::unauthorized);
  EXPECT_EQ(peer.upgrades(), 0u);
}

TEST_F(Loopback, ConnectionRefusedIsReportedAndRetried) {
  std::uint16_t port = 0;
  {
    ScriptedPeer gone;  // take a free port, then release it
    port = gone.port();
  }
  start_client(options("http://127.0.0.1:" + std::to_string(port)));
  loop.run_sync([&] { socket->connect(); });
  ASSERT_TRUE(wait_until([&] { return rec.copy(rec.errors).size() >= 2; }));
  EXPECT_EQ(rec.copy(rec.errors)[0].error.code, Errc::io);
  EXPECT_GE(counters().failed_attempts, 2u);
}

// ---- TLS
// -------------------------------------------------------------------------------------------

TEST_F(Loopback, WssWithTheTestCaVerifiesTheCertificateAndSendsSni) {
  TestCa ca;
  ASSERT_TRUE(ca.ok()) << "openssl failed; see " << ca.file("openssl.log");
  PeerOptions po;
  po.tls = true;
  po.cert_file = ca.file("server.pem");
  po.key_file = ca.file("server.key");
  ScriptedPeer peer(po);
  RealtimeScript script;
  script.after_join = [](PeerConnection& conn, const protocol::Message& join) {
    conn.send_text(change_frame(join.topic, 100, 7));
  };
  peer.set_script(script);
  BeastTransportOptions t;
  t.ca_file = ca.file("ca.pem");
  start_client(options("https://localhost:" + std::to_string(peer.port())), t);
  subscribe_tasks();
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.changes) == 1; }));
  EXPECT_EQ(rec.copy(rec.statuses), std::vector<std::string>{"SUBSCRIBED"});
  EXPECT_EQ(peer.last_sni(), "localhost");
  ASSERT_TRUE(wait_until([&] { return rec.heartbeat_ok >= 1; }));
}

TEST_F(Loopback, WssRejectsACertificateNotSignedByATrustedCa) {
  TestCa ca;
  ASSERT_TRUE(ca.ok());
  PeerOptions po;
  po.tls = true;
  po.cert_file = ca.file("server.pem");
  po.key_file = ca.file("server.key");
  ScriptedPeer peer(po);
  start_client(options("wss://localhost:" + std::to_string(peer.port())));  // system CAs only
  loop.run_sync([&] { socket->connect(); });
  ASSERT_TRUE(wait_until([&] { return !rec.copy(rec.errors).empty(); }));
  const auto e = rec.copy(rec.errors)[0];
  EXPECT_NE(e.error.message.find("TLS handshake"), std::string::npos) << e.error.message;
  EXPECT_NE(e.error.message.find("certificate"), std::string::npos) << e.error.message;
  EXPECT_EQ(peer.upgrades(), 0u);
}

TEST_F(Loopback, WssRejectsAHostNameTheCertificateDoesNotName) {
  TestCa ca;
  ASSERT_TRUE(ca.ok());
  PeerOptions po;
  po.tls = true;
  po.cert_file = ca.file("other.pem");  // trusted CA, but names only other.example
  po.key_file = ca.file("other.key");
  ScriptedPeer peer(po);
  BeastTransportOptions t;
  t.ca_file = ca.file("ca.pem");
  start_client(options("wss://localhost:" + std::to_string(peer.port())), t);
  loop.run_sync([&] { socket->connect(); });
  ASSERT_TRUE(wait_until([&] { return !rec.copy(rec.errors).empty(); }));
  const auto e = rec.copy(rec.errors)[0];
  EXPECT_NE(e.error.message.find("TLS handshake"), std::string::npos) << e.error.message;
  EXPECT_EQ(peer.upgrades(), 0u);
}

// ---- failures mid-connection -------------------------------------------------------------------

TEST_F(Loopback, AbruptDropMidFrameReconnectsAndRejoins) {
  ScriptedPeer peer;
  peer.set_script(RealtimeScript{});
  start_client(options(http_url(peer)));
  subscribe_tasks();
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED"); }));
  peer.with_latest([](PeerConnection& c) { c.drop_mid_frame(); });
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED", 2); }));
  const auto statuses = rec.copy(rec.statuses);
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(starts_with(statuses[1], "CHANNEL_ERROR: socket closed: 1006")) << statuses[1];
  EXPECT_EQ(peer.upgrades(), 2u);
  // The new connection delivers.
  peer.with_latest([](PeerConnection& c) { c.send_text(change_frame("realtime:tasks", 100, 9)); });
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.changes) == 1; }));
  bool reconnected = false;
  for (const auto& s : rec.copy(rec.states))
    reconnected |= s.reconnected;
  EXPECT_TRUE(reconnected);
  EXPECT_EQ(counters().reconnects, 1u);
}

TEST_F(Loopback, OversizedFrameClosesWith1009AndReconnects) {
  ScriptedPeer peer;
  peer.set_script(RealtimeScript{});
  auto o = options(http_url(peer));
  o.max_frame_bytes = 4096;
  start_client(o);
  subscribe_tasks();
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED"); }));
  peer.with_latest([](PeerConnection& c) {
    c.send_text(R"([null,null,"realtime:tasks","broadcast",{"event":"big","payload":")" +
                std::string(10000, 'x') + "\"}]");
  });
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED", 2); }));
  bool closed_1009 = false;
  for (const auto& st : rec.copy(rec.states)) {
    closed_1009 |= st.current == ConnectionState::closed && st.close_code == 1009;
  }
  EXPECT_TRUE(closed_1009);
  // The close frame reaches the peer unless the unread rest of the big frame makes the client's
  // kernel reset the connection first; when it arrives it says 1009.
  if (wait_until([&] { return !peer.client_closes().empty(); }, 1s)) {
    EXPECT_EQ(peer.client_closes()[0].first, 1009);
  }
  EXPECT_EQ(counters().oversized_frames, 1u);
  EXPECT_EQ(rec.count(rec.broadcasts), 0u);
}

// The transport under make_realtime_socket leaves text to the socket's JSON parsers; invalid
// UTF-8 still fails the connection with 1007, sent to the server in a close frame.
TEST_F(Loopback, TextThatIsNotUtf8ClosesWith1007AndReconnects) {
  ScriptedPeer peer;
  peer.set_script(RealtimeScript{});
  start_client(options(http_url(peer)));
  subscribe_tasks();
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED"); }));
  peer.with_latest([](PeerConnection& c) {
    c.send_text(
        "[null,null,\"realtime:tasks\",\"broadcast\",{\"event\":\"e\",\"p\":\"\xC3\x28\"}]");
  });
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED", 2); }));
  ASSERT_TRUE(wait_until([&] { return !peer.client_closes().empty(); }));
  EXPECT_EQ(peer.client_closes()[0],
            std::make_pair(1007, std::string("text message is not valid UTF-8")));
  EXPECT_EQ(rec.copy(rec.statuses)[1],
            "CHANNEL_ERROR: socket closed: 1007 (text message is not valid UTF-8)");
  EXPECT_EQ(rec.count(rec.broadcasts), 0u);
  // The socket judged the frame (the transport's own check would have closed before it).
  EXPECT_EQ(counters().malformed_frames, 1u);
}

TEST_F(Loopback, ServerCloseFrameReconnects) {
  ScriptedPeer peer;
  peer.set_script(RealtimeScript{});
  start_client(options(http_url(peer)));
  subscribe_tasks();
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED"); }));
  peer.with_latest([](PeerConnection& c) { c.close(1001, "going away"); });
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED", 2); }));
  EXPECT_EQ(rec.copy(rec.statuses)[1], "CHANNEL_ERROR: socket closed: 1001 (going away)");
}

TEST_F(Loopback, UnansweredHeartbeatClosesWithHeartbeatTimeoutAndReconnects) {
  ScriptedPeer peer;
  RealtimeScript script;
  script.answer_heartbeats = false;
  peer.set_script(script);
  start_client(options(http_url(peer)));
  subscribe_tasks();
  ASSERT_TRUE(wait_until([&] { return rec.has_status("SUBSCRIBED", 2); }));
  // The peer reads the old connection's close frame on its own thread.
  ASSERT_TRUE(wait_until([&] { return !peer.client_closes().empty(); }));
  const auto closes = peer.client_closes();
  EXPECT_EQ(closes[0], std::make_pair(1000, std::string("heartbeat timeout")));
  EXPECT_EQ(rec.copy(rec.statuses)[1], "CHANNEL_ERROR: heartbeat timeout");
}

TEST_F(Loopback, BadInputIsCountedAndTheConnectionStaysUp) {
  ScriptedPeer peer;
  RealtimeScript script;
  script.after_join = [](PeerConnection& conn, const protocol::Message&) {
    conn.send_text("{this is not json");
    conn.send_text(R"(["only","three","items"])");
    conn.send_binary(std::string("\x09\x00\x00", 3));  // unknown kind
    conn.send_binary(std::string("\x04\x20\x01", 3));  // kind 4, short
    conn.send_text(R"([null,null,"realtime:tasks","no_such_event",{}])");
    conn.send_text(
        R"([null,null,"realtime:tasks","broadcast",{"event":"after","type":"broadcast","payload":{}}])");
  };
  peer.set_script(script);
  start_client(options(http_url(peer)));
  subscribe_tasks();
  ASSERT_TRUE(wait_until([&] { return rec.count(rec.broadcasts) == 1; }));
  const auto c = counters();
  EXPECT_EQ(c.malformed_frames, 4u);
  EXPECT_EQ(c.unknown_events, 1u);
  EXPECT_EQ(peer.upgrades(), 1u);
  loop.run_sync([&] { EXPECT_EQ(socket->state(), ConnectionState::open); });
}

}  // namespace
}  // namespace rtsync::client
