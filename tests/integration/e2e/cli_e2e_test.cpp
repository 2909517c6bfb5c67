// The `rtsync` binary end to end: `rtsync demo --no-tui` stopped by SIGTERM leaves no process and
// no folder behind (and its stream shows the demo's second viewer); the task pane in a real
// terminal (tmux, 120×40) shows Connected, the status counts and task rows, and `k` makes the badge
// leave Connected and come back; `rtsync bench
// --json` accounts for every commit.
#include <gtest/gtest.h>

#include "cli_util.hpp"
#include "rtsync/core/json.hpp"

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
  // The demo's second, headless viewer is someone to see on the project the pane opens.
  EXPECT_NE(text.find(R"j("count":1,"viewers":[{"name":"demo viewer","user_id":)j"),
            std::string::npos)
      << text.substr(0, 2000);
  EXPECT_NE(text.find(R"j("client":"rtsync demo (headless viewer)")j"), std::string::npos);
  remove_tree(dir);
}

// `rtsync bench --json`: one line for the fetch floor, one per rate, every commit accounted for.
TEST(CliE2E, BenchMeasuresEveryCommitAsEventAndFreshCache) {
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const pid_t pid = spawn(
      {kBinary, "bench", "--rates", "20,50", "--seconds", "2", "--tasks", "10", "--json"}, dir);
  ASSERT_GT(pid, 0);
  const int code = wait_exit(pid, 120s);
  const std::string out = read_file(dir + "/out");
  const std::string err = read_file(dir + "/err");
  EXPECT_EQ(code, 0) << err;
  std::vector<rtsync::json::object> rates;
  bool fetch = false;
  std::size_t start = 0;
  while (start < out.size()) {
    const auto end = out.find('\n', start);
    const std::string line = out.substr(start, end - start);
    start = end == std::string::npos ? out.size() : end + 1;
    auto v = rtsync::core::parse_json(line);
    ASSERT_TRUE(v.ok() && v.value().is_object()) << line;
    const auto& o = v.value().as_object();
    if (o.at("type") == "fetch") fetch = o.at("p50_ms").to_number<double>() > 0;
    if (o.at("type") == "rate") rates.push_back(o);
  }
  EXPECT_TRUE(fetch) << out;
  ASSERT_EQ(rates.size(), 2u) << out << err;
  for (const auto& r : rates) {
    const auto rate = r.at("changes_per_s").to_number<std::int64_t>();
    EXPECT_EQ(r.at("commits").to_number<std::int64_t>(), rate * 2);
    EXPECT_EQ(r.at("missing_event").to_number<std::int64_t>(), 0) << rtsync::json::serialize(r);
    EXPECT_EQ(r.at("missing_fresh").to_number<std::int64_t>(), 0) << rtsync::json::serialize(r);
    const auto& ev = r.at("event_ms").as_object();
    const auto& fr = r.at("fresh_ms").as_object();
    EXPECT_GT(ev.at("p50").to_number<double>(), 0.0);
    EXPECT_LE(ev.at("p50").to_number<double>(), ev.at("p99").to_number<double>());
    // Fresh data needs the event first, then a refetch.
    EXPECT_GE(fr.at("p50").to_number<double>(), ev.at("p50").to_number<double>());
    EXPECT_GT(r.at("fetches").to_number<std::int64_t>(), 0);
  }
  remove_tree(dir);
}

TEST(CliE2E, TaskPaneInTmuxShowsConnectedCountsRowsAndReconnectsAfterK) {
  if (std::system("command -v tmux >/dev/null 2>&1") != 0) GTEST_SKIP() << "tmux not installed";
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  Tmux tmux("rtsync-e2e-" + std::to_string(getpid()));
  const std::string command = "LANG=C.UTF-8 TERM=screen " + kBinary + " demo --rate 4 --log-file " +
                              dir + "/log 2>" + dir + "/err" + exit_status_to(dir);
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
  ASSERT_TRUE(up) << "screen:\n" << tmux.capture() << "\nstderr:\n" << err();
  const std::string screen = tmux.capture();
  EXPECT_NE(screen.find("In Progress"), std::string::npos) << screen;
  EXPECT_NE(screen.find("Complete"), std::string::npos) << screen;
  EXPECT_NE(screen.find("Cancelled"), std::string::npos) << screen;
  EXPECT_NE(screen.find("generations"), std::string::npos) << screen;
  EXPECT_NE(screen.find("polling: "), std::string::npos) << screen;
  const std::string folder = cluster_folder(err());
  ASSERT_FALSE(folder.empty()) << "the demo did not name its cluster folder:\n" << err();

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
  EXPECT_FALSE(exists(folder)) << folder << " is still there";
  EXPECT_TRUE(poll([&] { return processes_mentioning(folder).empty(); }, 10s))
      << "processes of " << folder << " left running";
  remove_tree(dir);
}

}  // namespace
