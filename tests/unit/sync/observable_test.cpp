#include "rtsync/client/sync/observable.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace rtsync::client::sync {
namespace {

TEST(Observable, NotifiesOnlyOnChange) {
  ProjectSelection project;
  std::vector<std::optional<std::string>> seen;
  auto sub = project.subscribe([&](const auto& v) { seen.push_back(v); });
  EXPECT_TRUE(project.set("p1"));
  EXPECT_FALSE(project.set("p1"));
  EXPECT_TRUE(project.set(std::nullopt));
  EXPECT_EQ(seen, (std::vector<std::optional<std::string>>{"p1", std::nullopt}));
  EXPECT_TRUE(project.update([](auto& v) { v = "p2"; }));
  EXPECT_EQ(project.get(), "p2");
  EXPECT_EQ(project.subscriber_count(), 1u);
}

}  // namespace
}  // namespace rtsync::client::sync
