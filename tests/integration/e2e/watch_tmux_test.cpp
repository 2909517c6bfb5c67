// `rtsync watch` in a real terminal (tmux, 120×40) against the demo's world run in this process:
// the header, counts and rows; every key (s, p, d, ?, ←/→, k, q); resizing to a narrow window.
#include <gtest/gtest.h>

#include "cli_util.hpp"
#include "e2e_world.hpp"
#include "view/text.hpp"

namespace {

using namespace rtsync::e2e::cli;
using rtsync::e2e::World;
using rtsync::e2e::WorldOptions;

bool has(const std::string& screen, std::string_view text) {
  return screen.find(text) != std::string::npos;
}

int widest_line(const std::string& screen) {
  int widest = 0;
  std::size_t start = 0;
  while (start <= screen.size()) {
    auto end = screen.find('\n', start);
    if (end == std::string::npos) end = screen.size();
    widest = std::max(widest, rtsync::app::view::display_width(
                                  std::string_view(screen).substr(start, end - start)));
    start = end + 1;
  }
  return widest;
}

TEST(WatchE2E, TaskPaneInTmuxFollowsTheServerAndEveryKey) {
  if (std::system("command -v tmux >/dev/null 2>&1") != 0) GTEST_SKIP() << "tmux not installed";
  WorldOptions wo;
  wo.rate = 4;
  wo.start_client = false;
  auto world = World::create(wo);
  ASSERT_TRUE(world.ok()) << world.error().describe();
  auto& env = world.value()->env();
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  Tmux tmux("rtsync-watch-" + std::to_string(getpid()));
  const std::string command = "LANG=C.UTF-8 TERM=screen " + kBinary + " watch --url " +
                              env.http_url() + " --anon-key " + env.anon_key() + " --email " +
                              env.user().email + " --password " + env.user().password +
                              " --log-file " + dir + "/log 2>" + dir + "/err" + exit_status_to(dir);
  ASSERT_EQ(tmux.run("new-session -d -s demo -x 120 -y 40 \"" + command + "\""), 0);
  const auto screen = [&] { return tmux.capture(); };
  const auto shows = [&](std::string_view text) {
    return [&, text] { return has(screen(), text); };
  };

  ASSERT_TRUE(poll(
      [&] {
        const std::string s = screen();
        return has(s, "● Connected") && has(s, "Queued ") && has(s, "In Progress") &&
               (has(s, "image_") || has(s, "video_"));
      },
      60s, 200ms))
      << screen() << "\nstderr:\n"
      << read_file(dir + "/err");
  std::string s = screen();
  EXPECT_TRUE(has(s, "Lighthouse Shorts (1/2)")) << s;
  EXPECT_TRUE(has(s, "realtime: connected · polling: ")) << s;
  EXPECT_TRUE(has(s, "Tasks, newest first · status: All · page 1/")) << s;
  EXPECT_TRUE(has(s, "generations ")) << s;
  EXPECT_TRUE(has(s, "TYPE")) << s;
  EXPECT_LE(widest_line(s), 120);
  // Presence: nobody else has the project open.
  EXPECT_TRUE(poll(shows("Lighthouse Shorts (1/2) · no one else watching"), 10s)) << screen();

  // s: the next status filter; → and ← page; p: the next project; d / ?: diagnostics and help.
  tmux.run("send-keys -t demo s");
  EXPECT_TRUE(poll(shows("status: Queued"), 5s)) << screen();
  tmux.run("send-keys -t demo s s s s s");  // back to All
  EXPECT_TRUE(poll(shows("status: All"), 5s)) << screen();
  EXPECT_TRUE(poll(shows("page 1/2"), 30s)) << "wants more than one page of tasks\n" << screen();
  tmux.run("send-keys -t demo Right");
  EXPECT_TRUE(poll(shows("page 2/"), 5s)) << screen();
  tmux.run("send-keys -t demo Left");
  EXPECT_TRUE(poll(shows("page 1/"), 5s)) << screen();
  tmux.run("send-keys -t demo p");
  EXPECT_TRUE(poll(shows("Neon Rain (2/2)"), 5s)) << screen();
  EXPECT_TRUE(poll(shows("● Connected"), 20s)) << screen();
  tmux.run("send-keys -t demo p");
  EXPECT_TRUE(poll(shows("Lighthouse Shorts (1/2)"), 5s)) << screen();
  tmux.run("send-keys -t demo d");
  EXPECT_TRUE(poll(shows("Diagnostics (JSON snapshot)"), 5s)) << screen();
  EXPECT_TRUE(poll(shows("\"freshness\": {"), 5s)) << screen();
  tmux.run("send-keys -t demo PageDown");  // one page: the 35 lines that fit at 40 rows
  EXPECT_TRUE(poll(shows("lines 36–70 of "), 5s)) << screen();
  tmux.run("send-keys -t demo d");
  EXPECT_TRUE(poll(shows("Tasks, newest first"), 5s)) << screen();
  tmux.run("send-keys -t demo '?'");
  EXPECT_TRUE(poll(shows("Keys · ? back"), 5s)) << screen();
  tmux.run("send-keys -t demo '?'");
  EXPECT_TRUE(poll(shows("TYPE"), 5s)) << screen();

  // Resizing redraws; a narrow window truncates cleanly.
  tmux.run("resize-window -t demo -x 50 -y 20");
  EXPECT_TRUE(poll([&] { return widest_line(screen()) <= 50 && has(screen(), "● Connected"); }, 5s))
      << screen();
  EXPECT_FALSE(has(screen(), "UPDATED")) << screen();
  tmux.run("resize-window -t demo -x 120 -y 40");
  EXPECT_TRUE(poll(shows("UPDATED"), 5s)) << screen();

  // k: realtime dropped, polling at 5 s, then the reconnect.
  tmux.run("send-keys -t demo k");
  EXPECT_TRUE(poll([&] { return !has(screen(), "● Connected"); }, 10s)) << screen();
  EXPECT_TRUE(poll(shows("polling: 5 s"), 10s)) << screen();
  EXPECT_TRUE(poll(shows("● Connected"), 60s, 200ms)) << screen();

  tmux.run("send-keys -t demo q");
  ASSERT_TRUE(poll([&] { return exists(dir + "/done"); }, 30s)) << screen();
  EXPECT_EQ(read_file(dir + "/done"), "0\n") << read_file(dir + "/err");
  remove_tree(dir);
}

}  // namespace

namespace {

// `rtsync demo --nodes 3`: a throwaway Redis and three server nodes; the pane says which node its
// realtime connection is on, and `k` moves it to the next one (where it reconnects and rejoins).
TEST(DemoE2E, ThreeNodesThePaneShowsItsNodeAndKMovesItToTheNext) {
  if (std::system("command -v tmux >/dev/null 2>&1") != 0) GTEST_SKIP() << "tmux not installed";
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  Tmux tmux("rtsync-nodes-" + std::to_string(getpid()));
  const std::string command = "LANG=C.UTF-8 TERM=screen " + kBinary +
                              " demo --nodes 3 --drop-seconds 1 --log-file " + dir + "/log 2>" +
                              dir + "/err" + exit_status_to(dir);
  ASSERT_EQ(tmux.run("new-session -d -s demo -x 120 -y 40 \"" + command + "\""), 0);
  const auto screen = [&] { return tmux.capture(); };
  const auto shows = [&](std::string_view text) {
    return [&, text] { return has(screen(), text); };
  };
  ASSERT_TRUE(
      poll([&] { return has(screen(), "● Connected") && has(screen(), "realtime on node 1 of 3"); },
           90s, 200ms))
      << screen() << "\nstderr:\n"
      << read_file(dir + "/err");
  tmux.run("send-keys -t demo k");
  EXPECT_TRUE(poll(shows("node 2 of 3"), 10s)) << screen();
  EXPECT_TRUE(
      poll([&] { return has(screen(), "● Connected") && has(screen(), "realtime on node 2 of 3"); },
           60s, 200ms))
      << screen();
  tmux.run("send-keys -t demo k");
  EXPECT_TRUE(
      poll([&] { return has(screen(), "● Connected") && has(screen(), "realtime on node 3 of 3"); },
           60s, 200ms))
      << screen();
  tmux.run("send-keys -t demo q");
  ASSERT_TRUE(poll([&] { return exists(dir + "/done"); }, 30s)) << screen();
  EXPECT_EQ(read_file(dir + "/done"), "0\n") << read_file(dir + "/err");
  remove_tree(dir);
}

}  // namespace
