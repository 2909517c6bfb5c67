#include "rtsync/core/listener_list.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rtsync/core/log.hpp"

namespace rtsync::core {
namespace {

constexpr std::string_view kComponent = "ListenerListTest";

TEST(ListenerList, RunsInRegistrationOrderAndReturnsHowManyRan) {
  ListenerList<int> list(kComponent);
  std::vector<std::string> seen;
  auto a = list.add([&](int v) { seen.push_back("a" + std::to_string(v)); });
  auto b = list.add([&](int v) { seen.push_back("b" + std::to_string(v)); });
  auto c = list.add([&](int v) { seen.push_back("c" + std::to_string(v)); });
  EXPECT_EQ(list.notify(7), 3u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a7", "b7", "c7"}));
  EXPECT_EQ(list.size(), 3u);
  b.remove();
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list.notify(8), 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a7", "b7", "c7", "a8", "c8"}));
}

TEST(ListenerList, ListenerAddedDuringNotifyIsCalledFromTheNextNotifyOn) {
  ListenerList<> list(kComponent);
  int late_calls = 0;
  Subscription late;
  auto first = list.add([&] {
    if (!late.active()) late = list.add([&] { ++late_calls; });
  });
  EXPECT_EQ(list.notify(), 1u);
  EXPECT_EQ(late_calls, 0);
  EXPECT_EQ(list.size(), 2u);  // counted at once
  EXPECT_EQ(list.notify(), 2u);
  EXPECT_EQ(late_calls, 1);
}

TEST(ListenerList, ListenerRemovingItselfFinishesItsCallAndIsNotCalledAgain) {
  ListenerList<> list(kComponent);
  std::vector<std::string> seen;
  Subscription self;
  auto text = std::make_shared<std::string>("still here");
  self = list.add([&, text] {
    self.remove();
    self.remove();  // idempotent
    // The function object (and so `text`, its capture) lives until the dispatch ends.
    seen.push_back(*text);
  });
  auto other = list.add([&] { seen.push_back("other"); });
  text.reset();
  EXPECT_EQ(list.notify(), 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"still here", "other"}));
  EXPECT_EQ(list.size(), 1u);
  EXPECT_EQ(list.notify(), 1u);
  EXPECT_EQ(seen, (std::vector<std::string>{"still here", "other", "other"}));
}

TEST(ListenerList, RemovingALaterListenerDuringNotifySkipsItAnEarlierOneIsUnaffected) {
  ListenerList<int> list(kComponent);
  std::vector<std::string> seen;
  Subscription a;
  Subscription c;
  a = list.add([&](int v) { seen.push_back("a" + std::to_string(v)); });
  auto b = list.add([&](int v) {
    seen.push_back("b" + std::to_string(v));
    a.remove();  // already ran in this notify
    c.remove();  // not yet
    EXPECT_EQ(list.size(), 1u);
  });
  c = list.add([&](int v) { seen.push_back("c" + std::to_string(v)); });
  EXPECT_EQ(list.notify(1), 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a1", "b1"}));
  EXPECT_EQ(list.notify(2), 1u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a1", "b1", "b2"}));
}

TEST(ListenerList, DestroyingTheObjectHoldingTheHandleDuringNotifyIsARemoval) {
  // A listener destroys the object that owns its own Subscription (a component tearing itself
  // down from its own callback) and reads its captures afterwards.
  struct Owner {
    Subscription sub;
    std::vector<std::string>* seen = nullptr;
  };
  ListenerList<int> list(kComponent);
  std::vector<std::string> seen;
  auto owner = std::make_unique<Owner>();
  owner->seen = &seen;
  auto label = std::make_shared<std::string>("owner");
  owner->sub = list.add([&owner, label](int v) {
    auto* out = owner->seen;
    owner.reset();  // destroys the Subscription of this very listener
    out->push_back(*label + std::to_string(v));
  });
  label.reset();
  auto after = list.add([&](int v) { seen.push_back("after" + std::to_string(v)); });
  EXPECT_EQ(list.notify(1), 2u);
  EXPECT_EQ(owner, nullptr);
  EXPECT_EQ(seen, (std::vector<std::string>{"owner1", "after1"}));
  EXPECT_EQ(list.notify(2), 1u);
  EXPECT_EQ(seen, (std::vector<std::string>{"owner1", "after1", "after2"}));
}

TEST(ListenerList, DestroyingTheListDuringNotifyStopsThatNotifyAfterTheRunningListener) {
  auto list = std::make_unique<ListenerList<const std::string&>>(kComponent);
  std::vector<std::string> seen;
  auto a = list->add([&](const std::string& v) { seen.push_back("a" + v); });
  auto b = list->add([&](const std::string& v) {
    list.reset();
    seen.push_back("b" + v);  // the running listener returns normally
  });
  auto c = list->add([&](const std::string& v) { seen.push_back("c" + v); });
  const std::string arg = "!";
  EXPECT_EQ(list->notify(arg), 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a!", "b!"}));
  // The handles outlived the list: removing does nothing.
  c.remove();
  EXPECT_FALSE(c.active());
}

TEST(ListenerList, DestroyingTheListInANestedNotifyStopsTheEnclosingOneToo) {
  auto list = std::make_unique<ListenerList<int>>(kComponent);
  std::vector<std::string> seen;
  auto a = list->add([&](int v) {
    seen.push_back("a" + std::to_string(v));
    if (v == 1) {
      EXPECT_EQ(list->notify(2), 2u);  // a2, then b2 destroys the list
      seen.push_back("a-after-nested");
    }
  });
  auto b = list->add([&](int v) {
    seen.push_back("b" + std::to_string(v));
    if (v == 2) list.reset();
  });
  auto c = list->add([&](int v) { seen.push_back("c" + std::to_string(v)); });
  EXPECT_EQ(list->notify(1), 1u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a1", "a2", "b2", "a-after-nested"}));
}

TEST(ListenerList, NestedNotifyIsDepthFirstAndSeesTheListAsItIsThen) {
  ListenerList<int> list(kComponent);
  std::vector<std::string> seen;
  Subscription added;
  Subscription c;
  auto a = list.add([&](int v) {
    seen.push_back("a" + std::to_string(v));
    if (v != 1) return;
    added = list.add([&](int w) { seen.push_back("x" + std::to_string(w)); });
    EXPECT_EQ(list.notify(2), 3u);  // a, b and the just-added x; b removes c first
    seen.push_back("a1-end");
  });
  auto b = list.add([&](int v) {
    seen.push_back("b" + std::to_string(v));
    if (v == 2) c.remove();  // removed inside the nested notify: the outer skips it
  });
  c = list.add([&](int v) { seen.push_back("c" + std::to_string(v)); });
  EXPECT_EQ(list.notify(1), 2u);  // a and b; c removed meanwhile, x added meanwhile
  EXPECT_EQ(seen, (std::vector<std::string>{"a1", "a2", "b2", "x2", "a1-end", "b1"}));
  EXPECT_EQ(list.size(), 3u);
}

TEST(ListenerList, ThrowingListenersAreLoggedCountedAndTheOthersRun) {
  log::Capture capture;
  ListenerList<int> list(kComponent, "test listener");
  std::vector<int> seen;
  auto bad = list.add([](int) { throw std::runtime_error("boom"); });
  auto odd = list.add([](int) { throw 42; });
  auto good = list.add([&](int v) { seen.push_back(v); });
  EXPECT_EQ(list.notify(5), 3u);
  EXPECT_EQ(seen, (std::vector<int>{5}));
  EXPECT_EQ(list.errors(), 2u);
  EXPECT_TRUE(capture.contains("[ListenerListTest] test listener threw: boom"));
  EXPECT_TRUE(capture.contains("[ListenerListTest] test listener threw a non-exception"));
}

TEST(ListenerList, ClearDuringNotifySkipsTheRestAndLeavesHandlesInert) {
  ListenerList<> list(kComponent);
  int later = 0;
  auto a = list.add([&] { list.clear(); });
  auto b = list.add([&] { ++later; });
  EXPECT_EQ(list.notify(), 1u);
  EXPECT_EQ(later, 0);
  EXPECT_TRUE(list.empty());
  b.remove();  // inert
  auto c = list.add([&] { ++later; });
  EXPECT_EQ(list.notify(), 1u);
  EXPECT_EQ(later, 1);
}

TEST(ListenerList, SubscriptionMayOutliveTheList) {
  Subscription sub;
  {
    ListenerList<> list(kComponent);
    sub = list.add([] {});
    EXPECT_TRUE(sub.active());
  }
  sub.remove();  // no crash, no effect
  EXPECT_FALSE(sub.active());
}

TEST(ListenerList, ARemovedListenersCapturesMayRemoveOtherListenersWhenDestroyed) {
  // `a` owns `b`'s Subscription in its capture: destroying `a`'s function removes `b`, while the
  // list drops `a` (inside a notify, at its end; outside, at once).
  ListenerList<> list(kComponent);
  std::vector<std::string> seen;
  auto b_sub = std::make_shared<Subscription>(list.add([&] { seen.push_back("b"); }));
  Subscription a;
  a = list.add([&, hold = std::move(b_sub)] {
    seen.push_back("a");
    a.remove();
  });
  EXPECT_EQ(list.notify(), 2u);  // b was registered first and is not removed until a is dropped
  EXPECT_EQ(seen, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(list.size(), 0u);
  EXPECT_EQ(list.notify(), 0u);

  auto d_sub = std::make_shared<Subscription>(list.add([&] { seen.push_back("d"); }));
  auto c = list.add([hold = std::move(d_sub)] {});
  EXPECT_EQ(list.size(), 2u);
  c.remove();
  EXPECT_EQ(list.size(), 0u);
}

TEST(BasicListenerList, VisitsEntriesWithTheirDataAndRemoveIfRemovesMatches) {
  struct Binding {
    std::string event;
    int hits = 0;
  };
  BasicListenerList<Binding> list;
  auto x = list.add(Binding{"insert"});
  auto y = list.add(Binding{"update"});
  auto z = list.add(Binding{"insert"});
  EXPECT_EQ(list.for_each([](Binding& b) {
    if (b.event == "insert") ++b.hits;
  }),
            3u);
  std::vector<int> hits;
  std::as_const(list).for_each([&](const Binding& b) { hits.push_back(b.hits); });
  EXPECT_EQ(hits, (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(list.remove_if([](const Binding& b) { return b.event == "insert"; }), 2u);
  EXPECT_EQ(list.size(), 1u);
  x.remove();  // already removed: nothing happens
  EXPECT_EQ(list.size(), 1u);
}

TEST(BasicListenerList, SnapshotEntriesReportTheirRemovalLater) {
  BasicListenerList<int> list;
  auto a = list.add(1);
  auto b = list.add(2);
  const auto joined = list.snapshot();
  ASSERT_EQ(joined.size(), 2u);
  EXPECT_EQ(joined[1]->value, 2);
  EXPECT_FALSE(joined[0]->removed());
  a.remove();
  EXPECT_TRUE(joined[0]->removed());
  EXPECT_FALSE(joined[1]->removed());
  list.clear();
  EXPECT_TRUE(joined[1]->removed());
}

TEST(BasicListenerList, AfterRemoveRunsOnlyForARemovalThroughTheSubscription) {
  BasicListenerList<int> list;
  int after = 0;
  std::size_t left_when_called = 99;
  auto a = list.add(1, [&] {
    ++after;
    left_when_called = list.size();
  });
  auto b = list.add(2, [&] { ++after; });
  a.remove();
  a.remove();
  EXPECT_EQ(after, 1);
  EXPECT_EQ(left_when_called, 1u);  // runs after the entry is gone
  list.clear();
  b.remove();
  EXPECT_EQ(after, 1);
}

TEST(BasicListenerList, AVisitorThatThrowsLeavesTheListConsistent) {
  BasicListenerList<int> list;
  Subscription first = list.add(1);
  auto second = list.add(2);
  EXPECT_THROW(list.for_each([&](int v) {
    first.remove();
    if (v == 1) throw std::runtime_error("visitor");
  }),
               std::runtime_error);
  EXPECT_EQ(list.size(), 1u);
  std::vector<int> seen;
  EXPECT_EQ(list.for_each([&](int v) { seen.push_back(v); }), 1u);
  EXPECT_EQ(seen, (std::vector<int>{2}));
}

TEST(CallGuarded, EmptyFunctionIsSkippedAndExceptionsAreContained) {
  log::Capture capture;
  std::function<void(int)> empty;
  EXPECT_TRUE(call_guarded(kComponent, "callback", empty, 1));
  int got = 0;
  EXPECT_TRUE(
      call_guarded(kComponent, "callback", std::function<void(int)>([&](int v) { got = v; }), 3));
  EXPECT_EQ(got, 3);
  EXPECT_FALSE(call_guarded(kComponent, "callback",
                            std::function<void()>([] { throw std::runtime_error("x"); })));
  EXPECT_TRUE(capture.contains("[ListenerListTest] callback threw: x"));
}

}  // namespace
}  // namespace rtsync::core
