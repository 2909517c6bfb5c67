// A RealtimeManager on virtual time: RealtimeSocket over the in-memory transport, a fake server
// peer, a real EventBus, AuthSession and FreshnessTracker.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fake_realtime_peer.hpp"
#include "rtsync/client/domain/task_binding.hpp"
#include "rtsync/client/sync/auth_session.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/realtime_manager.hpp"
#include "rtsync/client/sync/reconnect_scheduler.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/testkit/fake_transport.hpp"

namespace rtsync::client::sync::testing {

// The task binding's channel of project p1.
inline const std::string kTopic1 = "realtime:task-updates:p1";

using testkit::FakeTransport;

using core::ManualScheduler;
using core::TimerId;
using domain::kTaskNewEvent;
using domain::kTaskUpdateEvent;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The manager's options with the task app's binding (the seed's behaviour).
inline RealtimeManagerOptions task_manager_options() {
  RealtimeManagerOptions o;
  o.binding = domain::task_binding();
  return o;
}

inline SocketOptions test_socket_options() {
  SocketOptions o;
  o.url = "http://127.0.0.1:54321";
  o.api_key = "anon";
  o.jitter_seed = 7;
  return o;
}

// The server's "Too many changes" system message on the project channel "realtime:<sub>", as the
// exact text of a vsn 2 frame ([join_ref,null,topic,"system",payload]) or a vsn 1 frame
// ({"topic","event":"system","payload","ref":null}).
inline std::string overflow_payload(std::string_view sub, std::string_view table = "tasks",
                                    std::string_view status = "ok") {
  return R"({"extension":"postgres_changes","status":")" + std::string(status) +
         R"(","message":"Too many changes","channel":")" + std::string(sub) +
         R"(","schema":"public","table":")" + std::string(table) + R"(","limit":1000})";
}
inline std::string overflow_frame_v2(std::string_view join_ref, std::string_view sub,
                                     std::string_view table = "tasks",
                                     std::string_view status = "ok") {
  return R"([")" + std::string(join_ref) + R"(",null,"realtime:)" + std::string(sub) +
         R"(","system",)" + overflow_payload(sub, table, status) + "]";
}
inline std::string overflow_frame_v1(std::string_view sub, std::string_view table = "tasks",
                                     std::string_view status = "ok") {
  return R"({"topic":"realtime:)" + std::string(sub) + R"(","event":"system","payload":)" +
         overflow_payload(sub, table, status) + R"(,"ref":null})";
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
                                                task_manager_options(), &messages);
  }

  // Replaces the manager by one whose task binding `change` adjusted.
  void rebind(const std::function<void(SyncBinding&)>& change) {
    auto o = task_manager_options();
    change(o.binding);
    manager.reset();
    manager = std::make_unique<RealtimeManager>(clock, *socket, auth, freshness, bus, std::move(o),
                                                &messages);
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

  // The server's "Too many changes" for `project`'s channel, as the exact frame of the socket's
  // vsn (vsn 2 carries the current join's join_ref).
  void send_overflow(std::string_view project, std::string_view table = "tasks",
                     std::string_view status = "ok") {
    const std::string sub = "task-updates:" + std::string(project);
    if (socket->vsn() == protocol::Vsn::v1) {
      fake->receive_text(overflow_frame_v1(sub, table, status));
      return;
    }
    const auto* j = peer->join_of("realtime:" + sub);
    if (!j || !j->join_ref) {
      ADD_FAILURE() << "no current join of " << sub;
      return;
    }
    fake->receive_text(overflow_frame_v2(*j->join_ref, sub, table, status));
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
