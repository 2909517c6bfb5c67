#include "rtsync/server/realtime/router.hpp"

#include <gtest/gtest.h>

#include "unit/server_rt/fakes.hpp"

namespace rtsync::server::realtime {
namespace {

using namespace testing;

BindingSpec binding(std::string event, std::string schema, std::string table,
                    std::string filter = "") {
  BindingSpec b;
  b.id = Router::binding_id(event, schema, table, filter);
  b.events = parse_event_mask(event);
  b.schema = schema;
  b.table = table;
  if (!filter.empty()) {
    auto f = protocol::parse_filter(filter);
    EXPECT_TRUE(f.ok()) << filter;
    if (f.ok()) b.filter = f.value();
  }
  return b;
}

AuthClass user(std::string sub) {
  return AuthClass{"authenticated", R"({"role":"authenticated","sub":")" + sub + "\"}"};
}

// Subscribers (by id) that change `i` of `plan` goes to.
std::vector<SubscriberId> receivers(const Router::Plan& plan, std::size_t i) {
  std::vector<SubscriberId> out;
  for (const auto& m : plan.matches[i])
    out.push_back(m.subscriber);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Router, EveryFilterOperator) {
  auto rel = make_relation("public", "tasks");
  struct Case {
    std::string filter;
    std::vector<std::int64_t> scores_that_match;  // among 1..5
  };
  std::vector<Case> cases = {{"score=eq.3", {3}},       {"score=neq.3", {1, 2, 4, 5}},
                             {"score=lt.3", {1, 2}},    {"score=lte.3", {1, 2, 3}},
                             {"score=gt.3", {4, 5}},    {"score=gte.3", {3, 4, 5}},
                             {"score=in.(1,5)", {1, 5}}};
  for (const auto& c : cases) {
    Router router;
    router.add(1, user("u"), {binding("INSERT", "public", "tasks", c.filter)});
    std::vector<RowChange> changes;
    for (int s = 1; s <= 5; ++s)
      changes.push_back(insert(rel, row(s, "u", s)));
    auto plan = router.route(txn(changes));
    std::vector<std::int64_t> got;
    for (int s = 1; s <= 5; ++s) {
      if (!plan.matches[s - 1].empty()) got.push_back(s);
    }
    EXPECT_EQ(got, c.scores_that_match) << c.filter;
  }
}

TEST(Router, TextFiltersCompareAsText) {
  auto rel = make_relation("public", "tasks");
  Router router;
  router.add(1, user("u"), {binding("*", "public", "tasks", "owner=eq.alice")});
  router.add(2, user("u"), {binding("*", "public", "tasks", "title=gt.m")});
  auto plan = router.route(
      txn({insert(rel, row(1, "alice", 0, "zebra")), insert(rel, row(2, "bob", 0, "apple"))}));
  EXPECT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{1, 2}));
  EXPECT_TRUE(receivers(plan, 1).empty());
}

TEST(Router, EventMaskAndWildcards) {
  auto tasks = make_relation("public", "tasks");
  auto other = make_relation("audit", "log");
  Router router;
  router.add(1, user("u"), {binding("INSERT", "public", "tasks")});
  router.add(2, user("u"), {binding("update", "public", "tasks")});
  router.add(3, user("u"), {binding("*", "public", "*")});
  router.add(4, user("u"), {binding("*", "*", "*")});
  router.add(5, user("u"), {binding("DELETE", "*", "log")});
  auto plan = router.route(txn({insert(tasks, row(1, "u", 1)), update(tasks, row(1, "u", 2)),
                                remove(other, row(9, "u", 0))}));
  EXPECT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{1, 3, 4}));
  EXPECT_EQ(receivers(plan, 1), (std::vector<SubscriberId>{2, 3, 4}));
  EXPECT_EQ(receivers(plan, 2), (std::vector<SubscriberId>{4, 5}));
}

TEST(Router, OneMatchPerSubscriberWithEveryMatchingBindingId) {
  auto rel = make_relation("public", "tasks");
  Router router;
  auto a = binding("*", "public", "tasks");
  auto b = binding("INSERT", "public", "tasks", "score=gt.1");
  auto c = binding("INSERT", "public", "tasks", "score=gt.100");
  router.add(1, user("u"), {a, b, c, a /* duplicate collapses */});
  auto plan = router.route(txn({insert(rel, row(1, "u", 5))}));
  ASSERT_EQ(plan.matches[0].size(), 1u);
  std::vector<std::int64_t> expected{a.id, b.id};
  std::sort(expected.begin(), expected.end());
  const auto& ids = plan.matches[0][0].ids;
  EXPECT_EQ(std::vector<std::int64_t>(ids.begin(), ids.end()), expected);
}

TEST(Router, BindingIdsAreStableAndDistinct) {
  auto x = Router::binding_id("*", "public", "tasks", "id=eq.1");
  EXPECT_EQ(x, Router::binding_id("*", "public", "tasks", "id=eq.1"));
  EXPECT_NE(x, Router::binding_id("*", "public", "tasks", "id=eq.2"));
  EXPECT_NE(x, Router::binding_id("INSERT", "public", "tasks", "id=eq.1"));
  EXPECT_GT(x, 0);
  EXPECT_LT(x, std::int64_t{1} << 31);
}

TEST(Router, OneVisibilityRequestPerAuthClassNotPerSubscriber) {
  auto rel = make_relation("public", "tasks");
  Router router;
  for (SubscriberId s = 1; s <= 50; ++s) {
    router.add(s, user(s % 2 ? "alice" : "bob"), {binding("*", "public", "tasks")});
  }
  auto plan = router.route(txn({insert(rel, row(1, "alice", 1)), insert(rel, row(2, "bob", 1)),
                                update(rel, row(2, "bob", 2))}));
  ASSERT_EQ(plan.requests.size(), 2u);
  for (const auto& r : plan.requests) {
    EXPECT_EQ(r.changes, (std::vector<std::size_t>{0, 1, 2}));
  }
}

TEST(Router, VisibilityRemovesRowsAClassMayNotSelect) {
  auto rel = make_relation("public", "tasks");
  Router router;
  router.add(1, user("alice"), {binding("*", "public", "tasks")});
  router.add(2, user("bob"), {binding("*", "public", "tasks")});
  auto plan = router.route(txn({insert(rel, row(1, "alice", 1)), insert(rel, row(2, "bob", 1))}));
  std::vector<VisibilityResult> results;
  for (const auto& r : plan.requests) {
    VisibilityResult v;
    bool alice = r.auth.claims_json.find("alice") != std::string::npos;
    for (auto idx : r.changes)
      v.visible.push_back(alice == (idx == 0));
    results.push_back(v);
  }
  EXPECT_EQ(Router::apply_visibility(plan, results), 2u);
  EXPECT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{1}));
  EXPECT_EQ(receivers(plan, 1), (std::vector<SubscriberId>{2}));
}

TEST(Router, AuthorizerFailureDeliversNothing) {
  auto rel = make_relation("public", "tasks", 'f');
  Router router;
  router.add(1, user("alice"), {binding("*", "public", "tasks")});
  auto plan = router.route(txn({insert(rel, row(1, "alice", 1)), remove(rel, row(1, "alice", 1))}));
  Router::apply_visibility(
      plan, Result<std::vector<VisibilityResult>>(make_error(Errc::io, "connection lost")));
  EXPECT_TRUE(plan.matches[0].empty());
  EXPECT_TRUE(plan.matches[1].empty());  // DELETEs too: the class's privilege is unconfirmed
}

TEST(Router, DeleteNeedsFilterMatchOnTheOldRow) {
  auto full = make_relation("public", "tasks", 'f');
  Router router;
  router.add(1, user("alice"), {binding("*", "public", "tasks", "owner=eq.alice")});
  router.add(2, user("bob"), {binding("*", "public", "tasks", "owner=eq.bob")});
  router.add(3, user("carol"), {binding("*", "public", "tasks")});
  router.add(4, AuthClass{"service_role", "{}"}, {binding("*", "public", "tasks")});
  auto plan = router.route(txn({remove(full, row(1, "alice", 1))}));
  EXPECT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{1, 3, 4}));
  // One privilege question per class, DELETE included.
  EXPECT_EQ(plan.requests.size(), 3u);
  for (const auto& m : plan.matches[0]) {
    // Roles under RLS may get only the key of a deleted row (the hub trims when RLS is on).
    EXPECT_EQ(m.key_only, m.subscriber != 4);
  }
}

TEST(Router, DeleteWithKeyOnlyIdentityReachesNoFilteredSubscriber) {
  auto rel = make_relation("public", "tasks", 'd');
  Router router;
  router.add(1, user("alice"), {binding("*", "public", "tasks", "id=eq.1")});
  router.add(2, user("alice"), {binding("*", "public", "tasks", "owner=eq.alice")});
  router.add(3, AuthClass{"service_role", "{}"}, {binding("DELETE", "public", "tasks")});
  auto plan = router.route(txn({remove(rel, json::object{{"id", 1}})}));
  ASSERT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{3}));
  EXPECT_FALSE(plan.matches[0][0].key_only);  // service_role bypasses RLS
}

TEST(Router, RemoveAndReplaceAndSetAuth) {
  auto rel = make_relation("public", "tasks");
  Router router;
  router.add(1, user("a"), {binding("*", "public", "tasks")});
  router.add(1, user("a"), {binding("*", "public", "other")});
  EXPECT_EQ(router.size(), 1u);
  EXPECT_TRUE(router.route(txn({insert(rel, row(1, "a", 1))})).matches[0].empty());
  router.add(2, user("a"), {binding("*", "public", "tasks")});
  router.set_auth(2, user("b"));
  auto plan = router.route(txn({insert(rel, row(1, "a", 1))}));
  ASSERT_EQ(plan.requests.size(), 1u);
  EXPECT_NE(plan.requests[0].auth.claims_json.find("\"b\""), std::string::npos);
  router.remove(2);
  EXPECT_FALSE(router.contains(2));
  EXPECT_TRUE(router.route(txn({insert(rel, row(1, "a", 1))})).matches[0].empty());
}

}  // namespace
}  // namespace rtsync::server::realtime
