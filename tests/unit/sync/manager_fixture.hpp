// A RealtimeManager on virtual time: RealtimeSocket over the in-memory transport, a fake server
// peer, a real EventBus, AuthSession and FreshnessTracker.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "fake_realtime_peer.hpp"
#include "rtsync/client/sync/auth_session.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/realtime_manager.hpp"
#include "rtsync/client/sync/reconnect_scheduler.hpp"
#include "rtsync/client/transport/fake_transport.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::client::sync::testing {

using core::ManualScheduler;
using core::TimerId;
using std::chrono::milliseconds;
using std::chrono::seconds;

inline SocketOptions test_socket_options() {
  SocketOptions o;
  o.url = "http://127.0.0.1:54321";
  o.api_key = "anon";
  o.jitter_seed = 7;
  return o;
}

struct BusRecorder {
  std::vector<std::pair<std::string, json::value>> events;
  std::vector<core::Subscription> subs;
  BusRecorder(core::EventBus& bus, std::initializer_list<std::string_view> names) {
    for (auto n : names) {
      subs.push_back(bus.subscribe(n, [this, name = std::string(n)](const json::value& d) {
        events.emplace_back(name, d);
      }));
    }
  }
  std::size_t count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& [e, d] : events)
      n += e == name ? 1 : 0;
    return n;
  }
};

class ManagerFixture : public ::testing::Test {
 protected:
  explicit ManagerFixture(SocketOptions options = test_socket_options()) {
    auto t = std::make_unique<FakeTransport>();
    fake = t.get();
    socket = std::make_unique<RealtimeSocket>(clock, instrument_transport(std::move(t), messages),
                                              std::move(options));
    peer = std::make_unique<FakeRealtimePeer>(*fake);
    manager = std::make_unique<RealtimeManager>(clock, *socket, auth, freshness, bus,
                                                RealtimeManagerOptions{}, &messages);
  }

  void sign_in(std::string token = "jwt-user-1") {
    Session s;
    s.access_token = std::move(token);
    s.user_id = "user-1";
    auth.sign_in(s);
  }

  // Joins and lets the peer accept: SUBSCRIBED unless the peer is told otherwise.
  bool join(std::string_view project, std::vector<bool>* results = nullptr) {
    const bool started = manager->join_project(project, [results](bool ok) {
      if (results) results->push_back(ok);
    });
    peer->accept();
    return started;
  }

  // Moves time in small steps, letting the peer answer (heartbeats, joins) as a server would.
  void run_for(core::Duration d, core::Duration step = milliseconds(100)) {
    const auto end = clock.now() + d;
    while (clock.now() < end) {
      clock.advance(std::min(step, end - clock.now()));
      peer->accept();
    }
  }

  static inline const FreshnessTracker::Key kPaginated{"tasks", "paginated", "p1", 1, 50, "Queued"};

  ManualScheduler clock;
  MessageClock messages{clock};
  FakeTransport* fake = nullptr;
  std::unique_ptr<RealtimeSocket> socket;
  std::unique_ptr<FakeRealtimePeer> peer;
  core::EventBus bus;
  AuthSession auth{clock};
  FreshnessTracker freshness{clock};
  std::unique_ptr<RealtimeManager> manager;
};

}  // namespace rtsync::client::sync::testing
