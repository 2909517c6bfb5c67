// The README's program (examples/quickstart.cpp) against the demo's world: it signs in, prints the
// project's newest tasks, and prints them again when the worker changes them — the client entry
// point end to end, as a user runs it.
#include <gtest/gtest.h>

#include <csignal>
#include <set>

#include "cli_util.hpp"
#include "e2e_world.hpp"

namespace {

using namespace rtsync::e2e::cli;
using rtsync::e2e::World;
using rtsync::e2e::WorldOptions;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    if (end == std::string::npos) break;  // a line still being written
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

TEST(QuickstartE2E, PrintsTheProjectsTasksThenAgainWhenTheyChange) {
  WorldOptions wo;
  wo.rate = 4;
  wo.start_client = false;
  auto world = World::create(wo);
  ASSERT_TRUE(world.ok()) << world.error().describe();
  auto& env = world.value()->env();
  const std::string project = world.value()->project_id();
  const std::string dir = temp_dir();
  ASSERT_FALSE(dir.empty());
  const pid_t pid = spawn({RTSYNC_QUICKSTART_BINARY, env.http_url(), env.anon_key(),
                           env.user().email, env.user().password, project},
                          dir);
  ASSERT_GT(pid, 0);
  // Each line is the query's data: up to five rows of the project, newest first. Changes made by
  // the worker arrive as realtime events and refetch it, so new lines keep coming.
  const auto distinct_pages = [&] {
    std::set<std::string> pages;
    for (const auto& line : lines_of(read_file(dir + "/out"))) {
      auto v = rtsync::core::parse_json(line);
      if (!v.ok() || !v.value().is_array()) return std::size_t{0};
      pages.insert(line);
    }
    return pages.size();
  };
  EXPECT_TRUE(poll([&] { return distinct_pages() >= 3; }, 60s, 200ms))
      << "out:\n"
      << read_file(dir + "/out") << "\nerr:\n"
      << read_file(dir + "/err");
  const auto lines = lines_of(read_file(dir + "/out"));
  ASSERT_FALSE(lines.empty());
  auto first = rtsync::core::parse_json(lines.back());
  ASSERT_TRUE(first.ok() && first.value().is_array());
  EXPECT_LE(first.value().as_array().size(), 5u);
  for (const auto& row : first.value().as_array()) {
    EXPECT_TRUE(row.as_object().contains("id"));
    EXPECT_TRUE(row.as_object().contains("status"));
  }
  kill(pid, SIGTERM);
  EXPECT_NE(wait_exit(pid, 10s), -1);
  remove_tree(dir);
}

}  // namespace
