// Filters and the prefix index (TanStack queryCache.test: find / findAll).
#include <gtest/gtest.h>

#include <random>

#include "fake_fetcher.hpp"
#include "rtsync/core/log.hpp"

using namespace rtsync;
using namespace rtsync::client::query;
using namespace rtsync::client::query::test;

namespace {

std::vector<std::string> hashes(const std::vector<std::shared_ptr<const Query>>& qs) {
  std::vector<std::string> out;
  for (const auto& q : qs)
    out.push_back(q->hash());
  return out;
}

class FiltersTest : public ::testing::Test {
 protected:
  core::ManualScheduler s;
  QueryClient client{s};
  ManualFetcher f{s};

  void SetUp() override {
    client.set_query_data(QueryKey{"tasks", "paginated", "p1", 1, 50, "Queued"}, J("[]"));
    client.set_query_data(QueryKey{"tasks", "single", "t1"}, J("{}"));
    client.set_query_data(QueryKey{"tasks", "p1", "Queued"}, J("{}"));
    client.set_query_data(QueryKey{"shots", "p1", 3}, J("[]"));
    client.set_query_data(QueryKey{"gen", json::object{{"shot", "s1"}, {"page", 1}}}, J("[]"));
    client.set_query_data(QueryKey{"gen", json::object{{"shot", "s2"}, {"page", 1}}}, J("[]"));
  }
  QueryFilters key(QueryKey k, bool exact = false) {
    QueryFilters f;
    f.query_key = std::move(k);
    f.exact = exact;
    return f;
  }
};

}  // namespace

TEST_F(FiltersTest, PrefixMatchInInsertionOrder) {
  EXPECT_EQ(hashes(client.find_all(key({"tasks"}))),
            (std::vector<std::string>{R"(["tasks","paginated","p1",1,50,"Queued"])",
                                      R"(["tasks","single","t1"])", R"(["tasks","p1","Queued"])"}));
  EXPECT_EQ(client.find_all(key({"tasks", "single"})).size(), 1u);
  EXPECT_EQ(client.find_all(key({"tasks", "single", "t2"})).size(), 0u);
  EXPECT_EQ(client.find_all(key({"task"})).size(), 0u);
  EXPECT_EQ(client.find_all(key({})).size(), 6u);
  EXPECT_EQ(client.find_all().size(), 6u);
  EXPECT_EQ(hashes(client.find_all()).front(), R"(["tasks","paginated","p1",1,50,"Queued"])");
  EXPECT_EQ(hashes(client.find_all()).back(), R"(["gen",{"page":1,"shot":"s2"}])");
}

TEST_F(FiltersTest, ObjectSubsetMatch) {
  EXPECT_EQ(client.find_all(key({"gen", json::object{{"shot", "s1"}}})).size(), 1u);
  EXPECT_EQ(client.find_all(key({"gen", json::object{{"page", 1}}})).size(), 2u);
  EXPECT_EQ(client.find_all(key({"gen", json::object{}})).size(), 2u);
  EXPECT_EQ(client.find_all(key({"gen", json::object{{"page", 2}}})).size(), 0u);
  EXPECT_EQ(client.find_all(key({"gen", json::array{}})).size(), 0u);  // array vs object
}

TEST_F(FiltersTest, ExactMatchByHash) {
  EXPECT_EQ(client.find_all(key({"tasks", "single", "t1"}, true)).size(), 1u);
  EXPECT_EQ(client.find_all(key({"tasks", "single"}, true)).size(), 0u);
  EXPECT_EQ(client.find_all(key({"gen", json::object{{"page", 1}, {"shot", "s1"}}}, true)).size(),
            1u);  // key order does not matter
  EXPECT_NE(client.get_query({"tasks", "single", "t1"}), nullptr);
  EXPECT_EQ(client.get_query({"tasks", "single"}), nullptr);
}

TEST_F(FiltersTest, PredicateRunsOnKeyMatches) {
  QueryFilters p;
  p.predicate = [](const Query& q) { return q.key()[0] == "gen"; };
  EXPECT_EQ(client.find_all(p).size(), 2u);
  p.query_key = QueryKey{"tasks"};
  EXPECT_EQ(client.find_all(p).size(), 0u);  // every given filter must pass
}

TEST_F(FiltersTest, PredicateThatThrowsMatchesNothing) {
  log::Capture capture;
  QueryFilters p;
  p.predicate = [](const Query&) -> bool { throw std::runtime_error("boom"); };
  EXPECT_EQ(client.find_all(p).size(), 0u);
  EXPECT_TRUE(capture.contains("predicate threw"));
  EXPECT_EQ(client.size(), 6u);  // cache intact
}

TEST_F(FiltersTest, TypeActiveInactive) {
  ObserverOptions on;
  on.key = QueryKey{"tasks", "single", "t1"};
  on.query.query_fn = f.fn();
  on.stale_time = StaleTime(std::chrono::hours(1));
  QueryObserver active(client, on);
  auto sub1 = active.subscribe([](const QueryResult&) {});
  ObserverOptions off = on;
  off.key = QueryKey{"tasks", "p1", "Queued"};
  off.enabled = false;
  QueryObserver disabled(client, off);
  auto sub2 = disabled.subscribe([](const QueryResult&) {});

  QueryFilters a = key({"tasks"});
  a.type = QueryType::active;
  EXPECT_EQ(hashes(client.find_all(a)), (std::vector<std::string>{R"(["tasks","single","t1"])"}));
  QueryFilters i = key({"tasks"});
  i.type = QueryType::inactive;
  EXPECT_EQ(client.find_all(i).size(), 2u);  // unobserved + observed-but-disabled
  QueryFilters all = key({"tasks"});
  all.type = QueryType::all;
  EXPECT_EQ(client.find_all(all).size(), 3u);
  sub1.remove();
  EXPECT_EQ(client.find_all(a).size(), 0u);
}

TEST_F(FiltersTest, StaleAndFetchStatus) {
  QueryFilters stale = key({"tasks"});
  stale.stale = true;
  EXPECT_EQ(client.find_all(stale).size(), 0u);  // unobserved with data, not invalidated
  InvalidateFilters inv;
  inv.query_key = QueryKey{"tasks", "single"};
  inv.refetch_type = RefetchType::none;
  client.invalidate_queries(inv);
  EXPECT_EQ(hashes(client.find_all(stale)),
            (std::vector<std::string>{R"(["tasks","single","t1"])"}));
  stale.stale = false;
  EXPECT_EQ(client.find_all(stale).size(), 2u);

  FetchQueryOptions fo;
  fo.key = QueryKey{"shots", "p1", 3};
  fo.query.query_fn = f.fn();
  client.fetch_query(fo);
  QueryFilters fetching;
  fetching.fetch_status = FetchStatus::fetching;
  EXPECT_EQ(hashes(client.find_all(fetching)), (std::vector<std::string>{R"(["shots","p1",3])"}));
  EXPECT_EQ(client.is_fetching(), 1u);
  EXPECT_EQ(client.is_fetching(key({"tasks"})), 0u);
}

// The index must answer exactly what a full scan with partial_match answers, through bursts of
// buckets, many levels, object elements and removals.
TEST(PrefixIndex, AgreesWithAFullScan) {
  core::ManualScheduler s;
  QueryClient client(s);
  std::mt19937 rng(42);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::vector<QueryKey> keys;
  const char* families[] = {"tasks", "shots", "gen", "counts"};
  for (int i = 0; i < 3000; ++i) {
    json::array k;
    k.emplace_back(families[pick(4)]);
    const int len = pick(6);
    for (int d = 0; d < len; ++d) {
      switch (pick(4)) {
        case 0:
          k.emplace_back(pick(5));
          break;
        case 1:
          k.emplace_back(std::string("p") + std::to_string(pick(4)));
          break;
        case 2:
          k.emplace_back(json::object{{"page", pick(3)}, {"s", pick(2) ? "a" : "b"}});
          break;
        default:
          k.emplace_back(json::array{pick(2), pick(2)});
          break;
      }
    }
    QueryKey key(std::move(k));
    keys.push_back(key);
    client.set_query_data(key, json::value(i));
  }
  // The full scan: every cached query in insertion order, with its key as JSON.
  std::vector<std::pair<std::string, json::value>> all;
  auto snapshot = [&] {
    all.clear();
    for (const auto& q : client.find_all())
      all.emplace_back(q->hash(), q->key().to_json());
    ASSERT_EQ(all.size(), client.size());  // the index holds every cached query
  };
  snapshot();
  auto check = [&](const QueryKey& filter) {
    QueryFilters f;
    f.query_key = filter;
    const json::value fj = filter.to_json();
    std::vector<std::string> expected;
    for (const auto& [hash, kj] : all) {
      if (partial_match(kj, fj)) expected.push_back(hash);
    }
    EXPECT_EQ(hashes(client.find_all(f)), expected) << filter.hash();
  };
  for (int i = 0; i < 250; ++i) {
    const QueryKey& base = keys[static_cast<std::size_t>(pick(static_cast<int>(keys.size())))];
    json::array prefix;
    const std::size_t n = static_cast<std::size_t>(pick(static_cast<int>(base.size()) + 1));
    for (std::size_t d = 0; d < n; ++d) {
      const json::value& e = base[d];
      if (e.is_object() && pick(2)) {
        prefix.emplace_back(json::object{{"page", e.as_object().at("page")}});  // subset
      } else if (e.is_array() && pick(2)) {
        prefix.emplace_back(json::array{e.as_array().at(0)});  // nested prefix
      } else {
        prefix.push_back(e);
      }
    }
    if (pick(10) == 0) prefix.emplace_back("nope");
    check(QueryKey(std::move(prefix)));
  }
  // Remove a third of the queries, then check again (pruning).
  for (std::size_t i = 0; i < keys.size(); i += 3) {
    QueryFilters f;
    f.query_key = keys[i];
    f.exact = true;
    client.remove_queries(f);
  }
  snapshot();
  for (int i = 0; i < 100; ++i) {
    const QueryKey& base = keys[static_cast<std::size_t>(pick(static_cast<int>(keys.size())))];
    json::array prefix;
    for (std::size_t d = 0; d < std::min<std::size_t>(base.size(), 2); ++d)
      prefix.push_back(base[d]);
    check(QueryKey(std::move(prefix)));
  }
  check(QueryKey{});
  client.clear();
  EXPECT_EQ(client.size(), 0u);
  EXPECT_EQ(client.stats().index_nodes, 1u);  // only the root is left
}
