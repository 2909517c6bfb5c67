// The six query families' fetchers against the real services with seeded data: each returns what
// SQL says it should, under the caller's RLS, with the seed's query keys.
#include <gtest/gtest.h>

#include "client_fixture.hpp"
#include "rtsync/client/domain/fetchers.hpp"
#include "rtsync/client/query/query_client.hpp"

namespace rtsync::test {
namespace {

using client::domain::Fetchers;
using client::domain::QueryDef;

const std::string kShot1 = "51000000-0000-4000-8000-000000000001";
const std::string kShot2 = "51000000-0000-4000-8000-000000000002";
const std::string kShot3 = "51000000-0000-4000-8000-000000000003";
const std::string kShotB = "5b000000-0000-4000-8000-000000000001";

class FetchersTest : public ClientStack {
 protected:
  void SetUp() override {
    ClientStack::SetUp();
    if (HasFatalFailure()) return;
    seed();
    const std::string pa(kProjectA), pb(kProjectB);
    // 25 generations in A: every 3rd a video, every 4th starred; 2 in B.
    sql("INSERT INTO generations (id, type, location, created_at, project_id, starred) "
        "SELECT ('6a000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, "
        "CASE WHEN i % 3 = 0 THEN 'video_travel_output' ELSE 'image' END, 'loc/' || i, "
        "timestamptz '2025-02-01 00:00:00+00' + i * interval '1 hour', '" +
        pa +
        "', i % 4 = 0 "
        "FROM generate_series(1, 25) i;"
        "INSERT INTO generations (type, project_id) VALUES ('video', '" +
        pb + "'), ('image', '" + pb +
        "');"
        "INSERT INTO shots (id, name, project_id, position) VALUES ('" +
        kShot1 + "', 's1', '" + pa + "', 1), ('" + kShot2 + "', 's2', '" + pa + "', 2), ('" +
        kShot3 + "', 's3', '" + pa + "', 3), ('" + kShotB + "', 'sb', '" + pb +
        "', 1);"
        // shot 1: generations 1..6 at positions 4,3,2,1,0 then two unpositioned (6, 7)
        "INSERT INTO shot_generations (shot_id, generation_id, position, created_at) "
        "SELECT '" +
        kShot1 +
        "', ('6a000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, "
        "CASE WHEN i <= 5 THEN 5 - i END, timestamptz '2025-03-01' + i * interval '1 minute' "
        "FROM generate_series(1, 7) i;"
        // shot 2: generations 3, 6, 9 (videos) unpositioned
        "INSERT INTO shot_generations (shot_id, generation_id, position) "
        "SELECT '" +
        kShot2 +
        "', ('6a000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, NULL "
        "FROM unnest(ARRAY[3, 6, 9]) i;"
        "INSERT INTO shot_generations (shot_id, generation_id, position) "
        "SELECT '" +
        kShotB + "', id, 0 FROM generations WHERE project_id = '" + pb + "';");
    rest->set_access_token(mint("authenticated", kUserA));
    qc = std::make_unique<client::query::QueryClient>(loop.sched);
    fetchers = std::make_unique<Fetchers>(*rest);
  }
  void TearDown() override {
    qc.reset();
    ClientStack::TearDown();
  }

  json::value fetch(const QueryDef& def) {
    std::optional<Result<client::query::Data>> out;
    client::query::FetchQueryOptions o;
    o.key = def.key;
    o.query.query_fn = def.fn;
    qc->fetch_query(o, [&](const Result<client::query::Data>& r) { out.emplace(r); });
    EXPECT_TRUE(loop.run_until([&] { return out.has_value(); }));
    if (!out) return nullptr;
    EXPECT_TRUE(out->ok()) << out->error().describe();
    return out->ok() ? out->value().to_json() : json::value(nullptr);
  }

  std::vector<std::string> column(std::string_view sql_text,
                                  const std::vector<server::pg::Param>& params = {}) {
    auto r = query(sql_text, params);
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i)
      out.emplace_back(r.value(i, 0));
    return out;
  }
  static std::vector<std::string> ids(const json::value& rows, std::string_view key = "id") {
    std::vector<std::string> out;
    for (const auto& row : rows.as_array())
      out.emplace_back(row.at(key).as_string());
    return out;
  }

  std::unique_ptr<client::query::QueryClient> qc;
  std::unique_ptr<Fetchers> fetchers;
};

TEST_F(FetchersTest, KeysAreTheSeeds) {
  EXPECT_EQ(
      client::domain::paginated_tasks_key("p", 2, 10, std::vector<std::string>{"Queued"}).hash(),
      R"(["tasks","paginated","p",2,10,["Queued"]])");
  EXPECT_EQ(client::domain::paginated_tasks_key("p", 1, 50, std::nullopt).hash(),
            R"(["tasks","paginated","p",1,50,null])");
  EXPECT_EQ(client::domain::task_status_counts_key("p").hash(), R"(["task-status-counts","p"])");
  EXPECT_EQ(
      client::domain::project_generations_key("p", 1, 20, json::object{{"mediaType", "video"}})
          .hash(),
      R"(["unified-generations","project","p",1,20,{"mediaType":"video"}])");
  EXPECT_EQ(client::domain::shot_generations_key("s").hash(),
            R"(["unified-generations","shot","s"])");
  EXPECT_EQ(client::domain::shots_key("p", 5).hash(), R"(["shots","p",5])");
  EXPECT_EQ(client::domain::unpositioned_count_key("s").hash(), R"(["unpositioned-count","s"])");
  EXPECT_EQ(client::domain::project_video_counts_key("p").hash(),
            R"(["project-video-counts","p"])");
  // Every key falls under its family prefix (what the provider invalidates).
  const auto& families = client::domain::family_prefixes();
  ASSERT_EQ(families.size(), 6u);
  EXPECT_TRUE(client::domain::shots_key("p", 5).matches(families[3]));
  EXPECT_TRUE(client::domain::shot_generations_key("s").matches(families[2]));
}

TEST_F(FetchersTest, PaginatedTasks) {
  const std::string pa(kProjectA);
  auto def =
      fetchers->paginated_tasks(pa, 2, 10, std::vector<std::string>{"Queued", "In Progress"});
  EXPECT_EQ(def.key, client::domain::paginated_tasks_key(
                         pa, 2, 10, std::vector<std::string>{"Queued", "In Progress"}));
  const json::value v = fetch(def);
  EXPECT_EQ(
      ids(v.at("tasks")),
      column("SELECT id FROM tasks WHERE project_id = $1 AND status IN ('Queued', 'In Progress') "
             "ORDER BY created_at DESC, id DESC LIMIT 10 OFFSET 10",
             {pa}));
  EXPECT_EQ(v.at("total").as_int64(), 24);
  EXPECT_EQ(v.at("hasMore").as_bool(), true);
  EXPECT_EQ(v.at("totalPages").as_int64(), 3);
  EXPECT_EQ(v.at("currentPage").as_int64(), 2);

  const json::value last = fetch(fetchers->paginated_tasks(pa, 6, 10));
  EXPECT_EQ(last.at("total").as_int64(), 60);
  EXPECT_EQ(last.at("hasMore").as_bool(), false);
  EXPECT_EQ(ids(last.at("tasks")),
            column("SELECT id FROM tasks WHERE project_id = $1 ORDER BY created_at DESC, id DESC "
                   "LIMIT 10 OFFSET 50",
                   {pa}));
}

TEST_F(FetchersTest, TaskStatusCounts) {
  const json::value v = fetch(fetchers->task_status_counts(std::string(kProjectA)));
  auto by_status = query("SELECT status, count(*) FROM tasks WHERE project_id = $1 GROUP BY status",
                         {std::string(kProjectA)});
  std::map<std::string, std::string> expected;
  for (int i = 0; i < by_status.rows(); ++i)
    expected[std::string(by_status.value(i, 0))] = by_status.value(i, 1);
  EXPECT_EQ(std::to_string(v.at("queued").as_int64()), expected["Queued"]);
  EXPECT_EQ(std::to_string(v.at("in_progress").as_int64()), expected["In Progress"]);
  EXPECT_EQ(std::to_string(v.at("complete").as_int64()), expected["Complete"]);
  EXPECT_EQ(std::to_string(v.at("failed").as_int64()), expected["Failed"]);
  EXPECT_EQ(std::to_string(v.at("cancelled").as_int64()), expected["Cancelled"]);
  EXPECT_EQ(v.at("processing").as_int64(), 24);
  // "Recent" is finished within the last hour, on updated_at (seed: even tasks were updated i
  // minutes ago).
  EXPECT_EQ(std::to_string(v.at("recent_successes").as_int64()),
            scalar("SELECT count(*) FROM tasks WHERE project_id = $1 AND status = 'Complete' AND "
                   "coalesce(updated_at, created_at) > now() - interval '1 hour'",
                   {std::string(kProjectA)}));
  EXPECT_EQ(std::to_string(v.at("recent_failures").as_int64()),
            scalar("SELECT count(*) FROM tasks WHERE project_id = $1 AND status = 'Failed' AND "
                   "coalesce(updated_at, created_at) > now() - interval '1 hour'",
                   {std::string(kProjectA)}));
}

TEST_F(FetchersTest, ProjectGenerations) {
  const std::string pa(kProjectA);
  const json::value all = fetch(fetchers->project_generations(pa, 2, 10));
  EXPECT_EQ(all.at("total").as_int64(), 25);
  EXPECT_TRUE(all.at("hasMore").as_bool());
  EXPECT_EQ(ids(all.at("items")),
            column("SELECT id FROM generations WHERE project_id = $1 ORDER BY created_at DESC, id "
                   "DESC LIMIT 10 OFFSET 10",
                   {pa}));
  const json::value videos =
      fetch(fetchers->project_generations(pa, 1, 5, json::object{{"mediaType", "video"}}));
  EXPECT_EQ(videos.at("total").as_int64(), 8);
  EXPECT_EQ(ids(videos.at("items")),
            column("SELECT id FROM generations WHERE project_id = $1 AND type LIKE '%video%' "
                   "ORDER BY created_at DESC, id DESC LIMIT 5",
                   {pa}));
  const json::value starred_images = fetch(fetchers->project_generations(
      pa, 1, 50, json::object{{"mediaType", "image"}, {"starredOnly", true}}));
  EXPECT_EQ(ids(starred_images.at("items")),
            column("SELECT id FROM generations WHERE project_id = $1 AND type NOT LIKE '%video%' "
                   "AND starred ORDER BY created_at DESC, id DESC",
                   {pa}));
  EXPECT_FALSE(starred_images.at("hasMore").as_bool());
}

TEST_F(FetchersTest, ShotGenerationsInShotOrder) {
  const json::value v = fetch(fetchers->shot_generations(kShot1));
  EXPECT_EQ(v.at("total").as_int64(), 7);
  EXPECT_EQ(
      ids(v.at("items")),
      column("SELECT g.id FROM shot_generations sg JOIN generations g ON g.id = sg.generation_id "
             "WHERE sg.shot_id = $1 ORDER BY sg.position ASC NULLS LAST, sg.created_at, sg.id",
             {kShot1}));
  const auto& items = v.at("items").as_array();
  EXPECT_EQ(items.front().at("position").as_int64(), 0);
  EXPECT_TRUE(items.back().at("position").is_null());
  EXPECT_TRUE(items.front().as_object().contains("shot_generation_id"));
  EXPECT_EQ(fetch(fetchers->shot_generations(kShot3)).at("total").as_int64(), 0);
}

TEST_F(FetchersTest, ShotsWithGenerationCountsAndFirstImages) {
  const json::value v = fetch(fetchers->shots(std::string(kProjectA), 2));
  ASSERT_TRUE(v.is_array());
  EXPECT_EQ(ids(v), (std::vector<std::string>{kShot1, kShot2, kShot3}));
  const auto& shots = v.as_array();
  for (const auto& s : shots) {
    EXPECT_EQ(std::to_string(s.at("generation_count").as_int64()),
              scalar("SELECT count(*) FROM shot_generations WHERE shot_id = $1",
                     {std::string(s.at("id").as_string())}));
  }
  // Shot 1 shows its first two positioned generations (positions 0 and 1: generations 5 and 4).
  EXPECT_EQ(ids(shots[0].at("images")),
            column("SELECT generation_id FROM shot_generations WHERE shot_id = $1 AND position IS "
                   "NOT NULL ORDER BY position LIMIT 2",
                   {kShot1}));
  EXPECT_TRUE(shots[1].at("images").as_array().empty());  // only unpositioned ones
  EXPECT_EQ(shots[2].at("generation_count").as_int64(), 0);
}

TEST_F(FetchersTest, UnpositionedAndVideoCounts) {
  EXPECT_EQ(fetch(fetchers->unpositioned_count(kShot1)).as_int64(), 2);
  EXPECT_EQ(fetch(fetchers->unpositioned_count(kShot2)).as_int64(), 3);
  EXPECT_EQ(fetch(fetchers->unpositioned_count(kShot3)).as_int64(), 0);

  const json::value v = fetch(fetchers->project_video_counts(std::string(kProjectA)));
  auto expected = query(
      "SELECT s.id, count(DISTINCT g.id) FILTER (WHERE g.type LIKE '%video%') FROM shots s "
      "LEFT JOIN shot_generations sg ON sg.shot_id = s.id LEFT JOIN generations g ON g.id = "
      "sg.generation_id WHERE s.project_id = $1 GROUP BY s.id",
      {std::string(kProjectA)});
  std::int64_t total = 0;
  ASSERT_EQ(v.at("byShot").as_object().size(), static_cast<std::size_t>(expected.rows()));
  for (int i = 0; i < expected.rows(); ++i) {
    EXPECT_EQ(std::to_string(v.at("byShot").at(expected.value(i, 0)).as_int64()),
              expected.value(i, 1));
    total += std::stoll(std::string(expected.value(i, 1)));
  }
  EXPECT_EQ(v.at("total").as_int64(), total);
  EXPECT_EQ(v.at("byShot").at(kShot2).as_int64(), 3);
}

TEST_F(FetchersTest, AnotherUserSeesNoneOfIt) {
  rest->set_access_token(mint("authenticated", kUserB));
  const std::string pa(kProjectA);
  EXPECT_EQ(fetch(fetchers->paginated_tasks(pa, 1, 10)).at("total").as_int64(), 0);
  EXPECT_EQ(fetch(fetchers->task_status_counts(pa)).at("processing").as_int64(), 0);
  EXPECT_EQ(fetch(fetchers->project_generations(pa, 1, 10)).at("total").as_int64(), 0);
  EXPECT_EQ(fetch(fetchers->shot_generations(kShot1)).at("total").as_int64(), 0);
  EXPECT_TRUE(fetch(fetchers->shots(pa, 3)).as_array().empty());
  EXPECT_EQ(fetch(fetchers->unpositioned_count(kShot1)).as_int64(), 0);
  EXPECT_TRUE(fetch(fetchers->project_video_counts(pa)).at("byShot").as_object().empty());
}

TEST_F(FetchersTest, UnauthorizedIsNotRetried) {
  rest->set_access_token(mint("authenticated", kUserA, std::chrono::seconds(-60)));
  auto def = fetchers->task_status_counts(std::string(kProjectA));
  std::optional<Result<client::query::Data>> out;
  client::query::FetchQueryOptions o;
  o.key = def.key;
  o.query.query_fn = def.fn;
  o.query.retry = client::domain::default_retry();
  const auto before = host->requests();
  qc->fetch_query(o, [&](const Result<client::query::Data>& r) { out.emplace(r); });
  ASSERT_TRUE(loop.run_until([&] { return out.has_value(); }));
  ASSERT_FALSE(out->ok());
  EXPECT_EQ(out->error().code, Errc::unauthorized);
  EXPECT_EQ(host->requests(), before + 1);
  EXPECT_FALSE(client::domain::default_retry().should_retry(0, Error{Errc::unauthorized, ""}));
  EXPECT_TRUE(client::domain::default_retry().should_retry(1, Error{Errc::io, ""}));
  EXPECT_FALSE(client::domain::default_retry().should_retry(2, Error{Errc::io, ""}));
}

}  // namespace
}  // namespace rtsync::test
