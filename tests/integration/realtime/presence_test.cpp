// Presence at scale over real websockets: 200 clients track in one channel and every client's
// state (merged from the server's frames by rtsync's client PresenceSync) ends up holding all
// 200; a client process killed with SIGKILL leaves everyone's state within the idle timeout.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "realtime_helpers.hpp"
#include "rtsync/client/transport/presence.hpp"

namespace rtsync::testkit {
namespace {

using protocol::Message;

constexpr int kClients = 200;
const std::string kTopic = "realtime:lobby";

struct Member {
  std::unique_ptr<WsClient> ws;
  client::PresenceSync sync;
  std::string join_ref;
  std::size_t frames = 0;
};

json::object presence_config(const std::string& key) {
  return json::object{{"presence", json::object{{"enabled", true}, {"key", key}}}};
}

void track(WsClient& ws, const std::string& join_ref, const std::string& key) {
  ws.send(Message{
      join_ref, ws.next_ref(), kTopic, "presence",
      json::object{
          {"type", "presence"}, {"event", "track"}, {"payload", json::object{{"name", key}}}}});
}

// Reads `m`'s frames into its state until `done(state)` or the deadline.
template <class Done>
bool read_until(Member& m, std::chrono::steady_clock::time_point deadline, Done done) {
  while (!done(m.sync.raw())) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    auto msg = m.ws->next(left);
    if (!msg) return false;
    ++m.frames;
    if (msg->event == "presence_state") m.sync.apply_state(msg->payload, m.join_ref, {});
    if (msg->event == "presence_diff") m.sync.apply_diff(msg->payload, m.join_ref, {});
  }
  return true;
}

// A child process (forked before any thread exists) that joins and tracks as "doomed" once the
// parent writes "<port> <key>\n" to `to_child`, reports "t" on `from_child`, then waits to be
// killed.
pid_t spawn_doomed(int& to_child, int& from_child) {
  int down[2], up[2];
  if (pipe(down) != 0 || pipe(up) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(down[1]);
    close(up[0]);
    std::string line;
    char c;
    while (read(down[0], &c, 1) == 1 && c != '\n')
      line += c;
    auto sp = line.find(' ');
    auto port = static_cast<std::uint16_t>(std::stoi(line.substr(0, sp)));
    auto ws = WsClient::connect_key(port, line.substr(sp + 1));
    if (!ws.ok()) _exit(3);
    auto reply = ws.value()->join(kTopic, presence_config("doomed"));
    if (!reply) _exit(4);
    track(*ws.value(), ws.value()->join_ref(kTopic), "doomed");
    if (!ws.value()->wait_event("phx_reply")) _exit(5);
    if (write(up[1], "t", 1) != 1) _exit(6);
    for (;;)
      pause();
  }
  close(down[0]);
  close(up[1]);
  to_child = down[1];
  from_child = up[0];
  return pid;
}

TEST(PresenceIntegration, TwoHundredClientsConvergeAndAKilledClientLeaves) {
  int to_child = -1, from_child = -1;
  const pid_t doomed = spawn_doomed(to_child, from_child);
  ASSERT_GT(doomed, 0);
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reap{doomed};

  StackOptions o;
  o.limits.idle_timeout = std::chrono::seconds(10);
  auto s = start_stack(std::move(o));
  ASSERT_TRUE(s);
  const std::string key = s->anon_key();

  // The killed-to-be client joins and tracks first.
  std::string hello = std::to_string(s->port()) + " " + key + "\n";
  ASSERT_EQ(write(to_child, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
  char ack = 0;
  ASSERT_EQ(read(from_child, &ack, 1), 1);

  std::vector<Member> members(kClients);
  for (int i = 0; i < kClients; ++i) {
    auto& m = members[i];
    m.ws = connect(*s, key);
    ASSERT_TRUE(m.ws);
    auto reply = m.ws->join(kTopic, presence_config("user" + std::to_string(i)));
    ASSERT_TRUE(reply) << i;
    m.join_ref = m.ws->join_ref(kTopic);
    track(*m.ws, m.join_ref, "user" + std::to_string(i));
  }

  // Everyone converges on all 200 plus the child.
  const auto all_in = [](const auto& state) { return state.size() == kClients + 1; };
  auto deadline = std::chrono::steady_clock::now() + 20s;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(read_until(members[i], deadline, all_in))
        << "client " << i << " holds " << members[i].sync.raw().size();
    EXPECT_EQ(members[i].sync.raw().count("doomed"), 1u);
    EXPECT_EQ(members[i].sync.raw().count("user" + std::to_string(kClients - 1)), 1u);
  }

  // SIGKILL: the server learns it from the socket (or, at worst, the idle timeout).
  const auto killed_at = std::chrono::steady_clock::now();
  kill(doomed, SIGKILL);
  const auto gone = [](const auto& state) { return state.size() == kClients; };
  deadline = killed_at + std::chrono::seconds(10) + 2s;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(read_until(members[i], deadline, gone)) << "client " << i;
    EXPECT_EQ(members[i].sync.raw().count("doomed"), 0u);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, std::chrono::seconds(12));
  auto metrics = http_request(s->port(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics.value().body.find("rtsync_presences 200\n"), std::string::npos);
}

}  // namespace
}  // namespace rtsync::testkit
