#include "rtsync/core/diagnostics.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "rtsync/core/manual_scheduler.hpp"

namespace rtsync::core {
namespace {

TEST(Diagnostics, SnapshotGathersProvidersWithTimestamp) {
  ManualScheduler clock;
  Diagnostics d(clock);
  int events = 3;
  auto a = d.add("realtime", [&] { return json::value(json::object{{"channelState", "joined"}}); });
  auto b = d.add("freshness", [&] { return json::value(json::object{{"events", events}}); });
  clock.advance(std::chrono::seconds(2));
  auto snap = d.snapshot();
  EXPECT_EQ(snap.at("timestamp").as_int64(), clock.wall_ms());
  EXPECT_EQ(snap.at("realtime").at("channelState").as_string(), "joined");
  EXPECT_EQ(snap.at("freshness").at("events").as_int64(), 3);
  events = 4;
  EXPECT_EQ(d.snapshot().at("freshness").at("events").as_int64(), 4);
}

TEST(Diagnostics, RemovedProviderDisappearsAndThrowingProviderIsContained) {
  ManualScheduler clock;
  Diagnostics d(clock);
  auto gone = d.add("gone", [] { return json::value(1); });
  auto bad = d.add("bad", []() -> json::value { throw std::runtime_error("broken"); });
  auto good = d.add("good", [] { return json::value(true); });
  gone.remove();
  auto snap = d.snapshot();
  EXPECT_FALSE(snap.contains("gone"));
  EXPECT_EQ(snap.at("bad").at("error").as_string(), "broken");
  EXPECT_TRUE(snap.at("good").as_bool());
}

TEST(Diagnostics, ReplacedNameIsNotRemovedByStaleHandle) {
  ManualScheduler clock;
  Diagnostics d(clock);
  auto first = d.add("x", [] { return json::value(1); });
  auto second = d.add("x", [] { return json::value(2); });
  first.remove();
  EXPECT_EQ(d.snapshot().at("x").as_int64(), 2);
}

TEST(Diagnostics, AProviderMayRemoveAndAddProvidersDuringASnapshot) {
  ManualScheduler clock;
  Diagnostics d(clock);
  Subscription later;
  Subscription added;
  auto first = d.add("a", [&] {
    later.remove();
    if (!added.active()) added = d.add("c", [] { return json::value(3); });
    return json::value(1);
  });
  later = d.add("b", [] { return json::value(2); });
  auto snap = d.snapshot();
  EXPECT_EQ(snap.at("a").as_int64(), 1);
  EXPECT_FALSE(snap.contains("b"));  // removed before its turn
  EXPECT_FALSE(snap.contains("c"));  // added during this snapshot: from the next one on
  EXPECT_EQ(d.snapshot().at("c").as_int64(), 3);
  EXPECT_EQ(d.names(), (std::vector<std::string>{"a", "c"}));
}

}  // namespace
}  // namespace rtsync::core
