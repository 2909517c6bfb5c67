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
  ASSERT_EQ(plan.requests->size(), 2u);
  for (const auto& r : *plan.requests) {
    EXPECT_EQ(r.rows, (std::vector<RowCheck>{
                          {0, RowImage::new_row}, {1, RowImage::new_row}, {2, RowImage::new_row}}));
  }
}

TEST(Router, VisibilityRemovesRowsAClassMayNotSelect) {
  auto rel = make_relation("public", "tasks");
  Router router;
  router.add(1, user("alice"), {binding("*", "public", "tasks")});
  router.add(2, user("bob"), {binding("*", "public", "tasks")});
  auto plan = router.route(txn({insert(rel, row(1, "alice", 1)), insert(rel, row(2, "bob", 1))}));
  std::vector<VisibilityResult> results;
  for (const auto& r : *plan.requests) {
    VisibilityResult v;
    bool alice = r.auth->claims_json.find("alice") != std::string::npos;
    for (const auto& check : r.rows)
      v.rows.push_back(alice == (check.change == 0) ? Visibility::full : Visibility::hidden);
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
  EXPECT_TRUE(plan.matches[1].empty());  // DELETEs too: nothing is known about the old image
}

// Answers every question of `plan` with `answer(auth, check)`.
std::vector<VisibilityResult> answer_all(
    const Router::Plan& plan, const std::function<Visibility(const AuthClass&, RowCheck)>& answer) {
  std::vector<VisibilityResult> out;
  for (const auto& r : *plan.requests) {
    VisibilityResult v;
    for (const auto& check : r.rows)
      v.rows.push_back(answer(*r.auth, check));
    out.push_back(std::move(v));
  }
  return out;
}

TEST(Router, DeleteNeedsFilterMatchOnTheOldRowAndTheOldImageDecides) {
  auto full = make_relation("public", "tasks", 'f');
  Router router;
  router.add(1, user("alice"), {binding("*", "public", "tasks", "owner=eq.alice")});
  router.add(2, user("bob"), {binding("*", "public", "tasks", "owner=eq.bob")});
  router.add(3, user("carol"), {binding("*", "public", "tasks")});
  router.add(4, AuthClass{"service_role", "{}"}, {binding("*", "public", "tasks")});
  router.add(5, user("bob"), {binding("DELETE", "public", "tasks", "owner=eq.alice")});
  auto plan = router.route(txn({remove(full, row(1, "alice", 1))}));
  EXPECT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{1, 3, 4, 5}));
  // One question per class about the old image, DELETE included.
  ASSERT_EQ(plan.requests->size(), 4u);
  for (const auto& r : *plan.requests)
    EXPECT_EQ(r.rows, (std::vector<RowCheck>{{0, RowImage::old_row}}));
  // Alice and the service role may see the old row; Bob's filter names Alice, but he may not see
  // her row, so his filter decides nothing; Carol may not see it either.
  auto results = answer_all(plan, [](const AuthClass& a, RowCheck) {
    const bool sees = a.role == "service_role" || a.claims_json.find("alice") != std::string::npos;
    return sees ? Visibility::full : Visibility::hidden;
  });
  EXPECT_EQ(Router::apply_visibility(plan, results), 2u);
  EXPECT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{1, 4}));
  for (const auto& m : plan.matches[0])
    EXPECT_FALSE(m.key_only);
}

TEST(Router, DeleteWithKeyOnlyIdentityReachesNoFilteredSubscriber) {
  auto rel = make_relation("public", "tasks", 'd');
  auto index = make_relation("public", "tasks", 'i');
  Router router;
  router.add(1, user("alice"), {binding("*", "public", "tasks", "id=eq.1")});
  router.add(2, user("alice"), {binding("*", "public", "tasks", "owner=eq.alice")});
  router.add(3, AuthClass{"service_role", "{}"}, {binding("DELETE", "public", "tasks")});
  router.add(4, user("bob"), {binding("DELETE", "public", "tasks")});
  auto plan = router.route(txn({remove(rel, json::object{{"id", 1}}),
                                remove(index, json::object{{"id", 1}, {"owner", "alice"}})}));
  ASSERT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{3, 4}));
  ASSERT_EQ(receivers(plan, 1), (std::vector<SubscriberId>{3, 4}));
  // What the authorizer answers for an image it cannot judge: the key only, or everything for a
  // role that bypasses RLS.
  auto results = answer_all(plan, [](const AuthClass& a, RowCheck) {
    return a.role == "service_role" ? Visibility::full : Visibility::key_only;
  });
  EXPECT_EQ(Router::apply_visibility(plan, results), 0u);
  for (std::size_t i = 0; i < 2; ++i) {
    for (const auto& m : plan.matches[i])
      EXPECT_EQ(m.key_only, m.subscriber == 4);
  }
}

TEST(Router, UpdateAsksAboutTheOldImageOnlyWhenItCarriesOne) {
  auto rel = make_relation("public", "tasks", 'f');
  Router router;
  router.add(1, user("bob"), {binding("UPDATE", "public", "tasks")});
  router.add(2, user("bob"), {binding("UPDATE", "public", "tasks", "owner=eq.bob")});
  router.add(3, user("alice"), {binding("UPDATE", "public", "tasks")});
  // Row 1 moves from Alice to Bob; row 2 is updated without an old tuple.
  auto plan = router.route(txn({update(rel, row(1, "bob", 2), row(1, "alice", 1)),
                                update(make_relation("public", "tasks"), row(2, "bob", 1))}));
  ASSERT_EQ(plan.requests->size(), 2u);  // one per class, both subscribers of Bob share one
  EXPECT_EQ((*plan.requests)[0].rows,
            (std::vector<RowCheck>{
                {0, RowImage::new_row}, {0, RowImage::old_row}, {1, RowImage::new_row}}));
  // Owner-only policy, judged on each image.
  auto results = answer_all(plan, [&](const AuthClass& a, RowCheck c) {
    const RowChange& ch = plan.txn->changes[c.change];
    const auto& image = c.image == RowImage::old_row ? *ch.old_record : *ch.record;
    const std::string owner(image.at("owner").as_string());
    return a.claims_json.find(owner) != std::string::npos ? Visibility::full : Visibility::hidden;
  });
  EXPECT_EQ(Router::apply_visibility(plan, results), 2u);  // Alice sees neither new image
  EXPECT_EQ(receivers(plan, 0), (std::vector<SubscriberId>{1, 2}));
  for (const auto& m : plan.matches[0])
    EXPECT_TRUE(m.key_only);  // Bob may not see Alice's old row
  EXPECT_EQ(receivers(plan, 1), (std::vector<SubscriberId>{1, 2}));
  for (const auto& m : plan.matches[1])
    EXPECT_FALSE(m.key_only);  // no old tuple: the old record is the new row's key anyway
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
  ASSERT_EQ(plan.requests->size(), 1u);
  EXPECT_NE((*plan.requests)[0].auth->claims_json.find("\"b\""), std::string::npos);
  router.remove(2);
  EXPECT_FALSE(router.contains(2));
  EXPECT_TRUE(router.route(txn({insert(rel, row(1, "a", 1))})).matches[0].empty());
}

TEST(Router, SubscribersShareTheirClassUntilTheirTokensDiffer) {
  auto rel = make_relation("public", "tasks");
  Router router;
  router.add(1, user("a"), {binding("*", "public", "tasks")});
  router.add(2, user("a"), {binding("*", "public", "tasks")});
  auto claims_of = [&] {
    std::vector<std::string> out;
    const auto plan = router.route(txn({insert(rel, row(1, "a", 1))}));
    for (const auto& r : *plan.requests)
      out.push_back(r.auth->claims_json);
    return out;
  };
  EXPECT_EQ(claims_of(), (std::vector<std::string>{user("a").claims_json}));  // one question
  router.set_auth(2, user("b"));  // 2 refreshed to another identity; 1 keeps "a"
  EXPECT_EQ(claims_of(), (std::vector<std::string>{user("a").claims_json, user("b").claims_json}));
  router.set_auth(1, user("b"));
  EXPECT_EQ(claims_of(), (std::vector<std::string>{user("b").claims_json}));
  router.remove(1);
  router.remove(2);
  router.add(3, user("a"), {binding("*", "public", "tasks")});  // "a" was released; made anew
  EXPECT_EQ(claims_of(), (std::vector<std::string>{user("a").claims_json}));
}

}  // namespace
}  // namespace rtsync::server::realtime
