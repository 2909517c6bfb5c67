#include "rtsync/client/sync/observable.hpp"
#include "rtsync/client/sync/names.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rtsync::client::sync {
namespace {

TEST(ListenerList, RunsInOrderAndSkipsListenersRemovedDuringNotify) {
  ListenerList<int> list(rtsync::client::sync::loggers::kProvider);
  std::vector<std::string> seen;
  core::Subscription b;
  auto a = list.add([&](int v) {
    seen.push_back("a" + std::to_string(v));
    b.remove();  // removes a later listener mid-notification
  });
  b = list.add([&](int v) { seen.push_back("b" + std::to_string(v)); });
  auto c = list.add([&](int v) { seen.push_back("c" + std::to_string(v)); });
  EXPECT_EQ(list.notify(1), 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a1", "c1"}));
  EXPECT_EQ(list.size(), 2u);
}

TEST(ListenerList, ListenerAddedDuringNotifyWaitsForTheNextOne) {
  ListenerList<> list(rtsync::client::sync::loggers::kProvider);
  int late_calls = 0;
  core::Subscription late;
  auto first = list.add([&] {
    if (!late.active()) late = list.add([&] { ++late_calls; });
  });
  list.notify();
  EXPECT_EQ(late_calls, 0);
  list.notify();
  EXPECT_EQ(late_calls, 1);
}

TEST(ListenerList, NestedNotifyIsDepthFirstAndThrowingListenerIsContained) {
  ListenerList<int> list(rtsync::client::sync::loggers::kProvider);
  std::vector<int> seen;
  auto a = list.add([&](int v) {
    seen.push_back(v);
    if (v == 1) list.notify(2);
  });
  auto bad = list.add([](int) { throw std::runtime_error("x"); });
  auto c = list.add([&](int v) { seen.push_back(10 * v); });
  list.notify(1);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 20, 10}));
  EXPECT_EQ(list.errors(), 2u);
}

TEST(ListenerList, SubscriptionMayOutliveTheList) {
  core::Subscription sub;
  {
    ListenerList<> list(rtsync::client::sync::loggers::kProvider);
    sub = list.add([] {});
  }
  sub.remove();  // no crash, no effect
  EXPECT_FALSE(sub.active());
}

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
