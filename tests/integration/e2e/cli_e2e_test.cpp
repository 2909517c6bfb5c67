// The `rtsync` binary end to end: `rtsync demo --no-tui` stopped by SIGTERM leaves no process and
// no folder behind; the task pane in a real terminal (tmux, 120×40) shows Connected, the status
// counts and task rows, and `k` makes the badge leave Connected and come back.
#include <gtest/gtest.h>

#include "cli_util.hpp"

namespace {

using namespace rtsync::e2e::cli;

TEST(CliE2E, DemoStoppedBySigtermLeavesNoProcessAndNoFolder) {
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const pid_t pid = spawn({kBinary, "demo", "--no-tui", "--duration", "120", "--rate", "5"}, dir);
  ASSERT_GT(pid, 0);
  const auto out = [&] { return read_file(dir + "/out"); };
  const auto err = [&] { return read_file(dir + "/err"); };
  const bool running = poll(
      [&] {
        return out().find("\"type\":\"event\"") != std::string::npos ||
               err().find("rtsync demo:") != std::string::npos;
      },
      90s);
  if (demo_cannot_sign_up(err())) {
    wait_exit(pid, 30s);
    const std::string why = err();
    remove_tree(dir);
    GTEST_SKIP() << "rtsync server does not serve /auth/v1 yet:\n" << why;
  }
  ASSERT_TRUE(running) << "no realtime event within 90 s\nstderr:\n" << err();
  const std::string folder = cluster_folder(err());
  ASSERT_FALSE(folder.empty()) << err();
  ASSERT_TRUE(exists(folder));
  ASSERT_FALSE(processes_mentioning(folder).empty()) << "the cluster should be running";

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(wait_exit(pid, 60s), 0) << err();
  EXPECT_FALSE(exists(folder)) << folder << " is still there";
  EXPECT_TRUE(poll([&] { return processes_mentioning(folder).empty(); }, 10s))
      << "processes of " << folder << " left running";
  // The stream ended with the summary line naming the signal.
  const std::string text = out();
  const auto last = text.rfind("{\"type\":\"summary\"");
  ASSERT_NE(last, std::string::npos) << text.substr(text.size() > 500 ? text.size() - 500 : 0);
  EXPECT_NE(text.find("\"reason\":\"SIGTERM\"", last), std::string::npos);
  remove_tree(dir);
}

TEST(CliE2E, TaskPaneInTmuxShowsConnectedCountsRowsAndReconnectsAfterK) {
  if (std::system("command -v tmux >/dev/null 2>&1") != 0) GTEST_SKIP() << "tmux not installed";
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  Tmux tmux("rtsync-e2e-" + std::to_string(getpid()));
  const std::string command = "LANG=C.UTF-8 TERM=screen " + kBinary + " demo --rate 4 --log-file " +
                              dir + "/log 2>" + dir + "/err; echo $? > " + dir + "/done";
  ASSERT_EQ(tmux.run("new-session -d -s demo -x 120 -y 40 \"" + command + "\""), 0);
  const auto err = [&] { return read_file(dir + "/err"); };

  auto connected = [&] { return tmux.capture().find("● Connected") != std::string::npos; };
  const bool up = poll(
      [&] {
        const std::string screen = tmux.capture();
        return (screen.find("● Connected") != std::string::npos &&
                screen.find("Queued ") != std::string::npos &&
                (screen.find("image_") != std::string::npos ||
                 screen.find("video_") != std::string::npos)) ||
               exists(dir + "/done");
      },
      90s, 200ms);
  if (demo_cannot_sign_up(err())) {
    const std::string why = err();
    remove_tree(dir);
    GTEST_SKIP() << "rtsync server does not serve /auth/v1 yet:\n" << why;
  }
  ASSERT_TRUE(up) << "screen:\n" << tmux.capture() << "\nstderr:\n" << err();
  const std::string screen = tmux.capture();
  EXPECT_NE(screen.find("In Progress"), std::string::npos) << screen;
  EXPECT_NE(screen.find("Complete"), std::string::npos) << screen;
  EXPECT_NE(screen.find("Cancelled"), std::string::npos) << screen;
  EXPECT_NE(screen.find("generations"), std::string::npos) << screen;
  EXPECT_NE(screen.find("polling: "), std::string::npos) << screen;
  const std::string folder = cluster_folder(err());

  // k: realtime dropped — the badge leaves Connected, polling takes over at 5 s…
  ASSERT_EQ(tmux.run("send-keys -t demo k"), 0);
  ASSERT_TRUE(poll([&] { return !connected(); }, 10s)) << tmux.capture();
  const std::string dropped = tmux.capture();
  EXPECT_TRUE(dropped.find("○ Disconnected") != std::string::npos ||
              dropped.find("◌ Connecting…") != std::string::npos)
      << dropped;
  EXPECT_TRUE(poll([&] { return tmux.capture().find("polling: 5 s") != std::string::npos; }, 10s))
      << tmux.capture();
  // …and comes back by itself.
  ASSERT_TRUE(poll(connected, 60s, 200ms)) << tmux.capture();

  // q stops everything and removes the cluster.
  ASSERT_EQ(tmux.run("send-keys -t demo q"), 0);
  ASSERT_TRUE(poll([&] { return exists(dir + "/done"); }, 60s)) << tmux.capture();
  EXPECT_EQ(read_file(dir + "/done"), "0\n");
  if (!folder.empty()) {
    EXPECT_FALSE(exists(folder));
    EXPECT_TRUE(poll([&] { return processes_mentioning(folder).empty(); }, 10s));
  }
  remove_tree(dir);
}

}  // namespace
