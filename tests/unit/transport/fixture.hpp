// A RealtimeSocket on virtual time over the in-memory transport, plus small helpers to play the
// server side of the Supabase Realtime protocol.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rtsync/client/transport/realtime_channel.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/testkit/fake_transport.hpp"

namespace rtsync::client::testing {

// The channel most tests join: the task binding's channel of project p1.
inline constexpr std::string_view kTopic = "realtime:task-updates:p1";

using testkit::FakeTransport;

using namespace std::chrono_literals;
using core::TimerId;

inline constexpr std::uint64_t kSeed = 42;

inline SocketOptions default_options(protocol::Vsn vsn = protocol::Vsn::v2) {
  SocketOptions o;
  o.url = "https://abc.supabase.co";
  o.api_key = "anon-key";
  o.vsn = vsn;
  o.jitter_seed = kSeed;
  return o;
}

struct StatusLog {
  std::vector<std::pair<SubscribeStatus, std::optional<Error>>> entries;
  RealtimeChannel::StatusCallback callback() {
    return [this](SubscribeStatus s, std::optional<Error> e) { entries.emplace_back(s, e); };
  }
  std::vector<SubscribeStatus> statuses() const {
    std::vector<SubscribeStatus> out;
    for (const auto& [s, e] : entries)
      out.push_back(s);
    return out;
  }
  std::string last_message() const {
    if (entries.empty() || !entries.back().second) return {};
    return entries.back().second->message;
  }
};

class SocketFixture : public ::testing::Test {
 public:
  static std::string quoted_or_null(std::string_view s) {
    return s.empty() ? "null" : "\"" + std::string(s) + "\"";
  }
  // A vsn 2 text frame; empty refs are null.
  static std::string frame(std::string_view join_ref, std::string_view ref, std::string_view topic,
                           std::string_view event, std::string_view payload) {
    return "[" + quoted_or_null(join_ref) + "," + quoted_or_null(ref) + ",\"" + std::string(topic) +
           "\",\"" + std::string(event) + "\"," + std::string(payload) + "]";
  }

 protected:
  void make(SocketOptions options = default_options()) {
    auto t = std::make_unique<FakeTransport>();
    fake = t.get();
    socket = std::make_unique<RealtimeSocket>(sched, std::move(t), std::move(options));
  }
  void SetUp() override { make(); }

  // connect + the server accepts.
  void open() {
    socket->connect();
    fake->accept();
  }
  // Frames the client sent since the last call.
  std::vector<std::string> sent() {
    std::vector<std::string> out;
    for (auto& f : fake->take_sent())
      out.push_back(std::move(f.data));
    return out;
  }
  std::string last_sent() {
    auto all = sent();
    return all.empty() ? std::string() : all.back();
  }
  // The server replies to `ref` on `topic` (vsn 2 text frame).
  void reply(std::string_view join_ref, std::string_view ref, std::string_view topic,
             std::string_view status = "ok", std::string_view response = "{}") {
    fake->receive_text(frame(join_ref, ref, topic, "phx_reply",
                             std::string(R"({"status":")") + std::string(status) +
                                 R"(","response":)" + std::string(response) + "}"));
  }
  core::ManualScheduler sched;
  FakeTransport* fake = nullptr;
  std::unique_ptr<RealtimeSocket> socket;
};

}  // namespace rtsync::client::testing
