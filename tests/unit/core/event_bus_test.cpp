#include "rtsync/core/event_bus.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "rtsync/core/log.hpp"

namespace rtsync::core {
namespace {

TEST(EventBus, DispatchesInSubscriptionOrderWithDetail) {
  EventBus bus;
  std::vector<std::string> seen;
  auto a = bus.subscribe("realtime:task-update", [&](const json::value& d) {
    seen.push_back("a:" + std::string(d.at("id").as_string()));
  });
  auto b = bus.subscribe("realtime:task-update", [&](const json::value& d) {
    seen.push_back("b:" + std::string(d.at("id").as_string()));
  });
  auto other = bus.subscribe("realtime:task-new", [&](const json::value&) { seen.push_back("x"); });
  EXPECT_EQ(bus.emit("realtime:task-update", json::object{{"id", "t1"}}), 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a:t1", "b:t1"}));
}

TEST(EventBus, RemoveIsIdempotentAndSafeInsideOwnHandler) {
  EventBus bus;
  int calls = 0;
  Subscription self;
  self = bus.subscribe("e", [&](const json::value&) {
    ++calls;
    self.remove();
    self.remove();
  });
  bus.emit("e");
  bus.emit("e");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(bus.handler_count("e"), 0u);
}

TEST(EventBus, HandlerRemovedByEarlierHandlerIsNotCalled) {
  EventBus bus;
  std::vector<int> seen;
  Subscription second;
  auto first = bus.subscribe("e", [&](const json::value&) {
    seen.push_back(1);
    second.remove();
  });
  second = bus.subscribe("e", [&](const json::value&) { seen.push_back(2); });
  auto third = bus.subscribe("e", [&](const json::value&) { seen.push_back(3); });
  bus.emit("e");
  EXPECT_EQ(seen, (std::vector<int>{1, 3}));
}

TEST(EventBus, HandlerAddedDuringDispatchWaitsForNextEvent) {
  EventBus bus;
  int late_calls = 0;
  std::optional<Subscription> late;
  auto first = bus.subscribe("e", [&](const json::value&) {
    if (!late) late = bus.subscribe("e", [&](const json::value&) { ++late_calls; });
  });
  bus.emit("e");
  EXPECT_EQ(late_calls, 0);
  bus.emit("e");
  EXPECT_EQ(late_calls, 1);
}

TEST(EventBus, ThrowingHandlerIsLoggedCountedAndOthersRun) {
  log::Capture capture;
  EventBus bus;
  int after = 0;
  auto bad = bus.subscribe("e", [](const json::value&) { throw std::runtime_error("boom"); });
  auto good = bus.subscribe("e", [&](const json::value&) { ++after; });
  EXPECT_EQ(bus.emit("e"), 2u);
  EXPECT_EQ(after, 1);
  EXPECT_EQ(bus.handler_errors(), 1u);
  EXPECT_TRUE(capture.contains("[EventBus] handler for e threw: boom"));
}

TEST(EventBus, DestroyingHandleUnsubscribesAndSubscriptionMayOutliveBus) {
  auto bus = std::make_unique<EventBus>();
  int calls = 0;
  {
    auto scoped = bus->subscribe("e", [&](const json::value&) { ++calls; });
    bus->emit("e");
  }
  bus->emit("e");
  EXPECT_EQ(calls, 1);
  auto survivor = bus->subscribe("e", [&](const json::value&) { ++calls; });
  EXPECT_TRUE(survivor.active());
  bus.reset();
  survivor.remove();  // the bus is gone: removing is a no-op that leaves the handle inactive
  EXPECT_FALSE(survivor.active());
  EXPECT_EQ(calls, 1);
}

TEST(EventBus, NestedEmitDispatchesDepthFirst) {
  EventBus bus;
  std::vector<std::string> order;
  auto a = bus.subscribe("outer", [&](const json::value&) {
    order.push_back("outer-1");
    bus.emit("inner");
    order.push_back("outer-2");
  });
  auto b = bus.subscribe("inner", [&](const json::value&) { order.push_back("inner"); });
  bus.emit("outer");
  EXPECT_EQ(order, (std::vector<std::string>{"outer-1", "inner", "outer-2"}));
  EXPECT_EQ(bus.emitted(), 2u);
}

TEST(EventBus, DestroyingTheBusInsideAHandlerStopsTheDispatch) {
  auto bus = std::make_unique<EventBus>();
  std::vector<int> seen;
  auto a = bus->subscribe("e", [&](const json::value&) {
    seen.push_back(1);
    bus.reset();
    seen.push_back(2);  // the running handler returns normally
  });
  auto b = bus->subscribe("e", [&](const json::value&) { seen.push_back(3); });
  EXPECT_EQ(bus->emit("e"), 1u);
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace rtsync::core
