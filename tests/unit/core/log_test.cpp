#include "rtsync/core/log.hpp"

#include <gtest/gtest.h>

namespace rtsync::log {
namespace {

// Channels named as upper layers name theirs (include/rtsync/client/sync/names.hpp); core lists
// none of them.
constexpr std::string_view kSimpleRealtime = "SimpleRealtime";
constexpr std::string_view kFreshness = "DataFreshness";

TEST(Log, ComponentLoggersCarryTheSeedPrefixes) {
  Capture capture;
  get(kSimpleRealtime)->info("joined {}", "task-updates:p1");
  get(kFreshness)->debug("status connected");
  EXPECT_TRUE(capture.contains("[SimpleRealtime] joined task-updates:p1"));
  EXPECT_TRUE(capture.contains("[DataFreshness] status connected"));
  EXPECT_EQ(get(kSimpleRealtime).get(), get("SimpleRealtime").get());
}

TEST(Log, LevelsParse) {
  spdlog::level::level_enum l{};
  EXPECT_TRUE(parse_level("debug", l));
  EXPECT_EQ(l, spdlog::level::debug);
  EXPECT_TRUE(parse_level("error", l));
  EXPECT_EQ(l, spdlog::level::err);
  EXPECT_FALSE(parse_level("loud", l));
}

}  // namespace
}  // namespace rtsync::log
