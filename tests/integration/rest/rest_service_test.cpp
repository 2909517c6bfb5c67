// /rest/v1 against a real, migrated PostgreSQL: every filter and order form compared with what
// SQL says, counts and ranges, writes, rpc, RLS isolation between two users, token refusal, and
// malformed / injection-shaped input refused with PostgREST's codes and nothing changed.
#include <gtest/gtest.h>

#include <set>

#include "rest_fixture.hpp"
#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/server/pg/db_pool.hpp"
#include "rtsync/server/rest/rest_service.hpp"

namespace rtsync::test {
namespace {

using server::pg::DbPool;
using server::rest::RestOptions;
using server::rest::RestService;

class RestServiceTest : public MigratedPg {
 protected:
  void SetUp() override {
    MigratedPg::SetUp();
    if (HasFatalFailure()) return;
    seed();
    make_service(4);
    token_a = mint("authenticated", kUserA);
    token_b = mint("authenticated", kUserB);
    token_service = mint("service_role", std::nullopt);
    token_anon = mint("anon", std::nullopt);
  }

  void make_service(std::size_t pool_size, RestOptions options = {}) {
    service.reset();
    pool = std::make_shared<DbPool>(loop.io, conninfo(), pool_size);
    service = std::make_unique<RestService>(
        pool, server::auth::JwtVerifier(std::string(kJwtSecret)), loop.sched, options);
  }

  HttpResponse get(std::string_view url, const std::string& token,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Authorization", "Bearer " + token);
    return call_service(loop, *service, make_request("GET", url, std::move(headers)));
  }
  HttpResponse send(std::string method, std::string_view url, const std::string& token,
                    std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Authorization", "Bearer " + token);
    headers.emplace_back("Content-Type", "application/json");
    return call_service(loop, *service,
                        make_request(std::move(method), url, std::move(headers), std::move(body)));
  }

  // The ids a GET returned, in order.
  std::vector<std::string> ids_of(const HttpResponse& r) {
    std::vector<std::string> ids;
    const json::value v = body_json(r);
    if (!v.is_array()) {
      ADD_FAILURE() << "not an array: " << r.body;
      return ids;
    }
    for (const auto& row : v.as_array())
      ids.emplace_back(row.at("id").as_string());
    return ids;
  }
  // The ids SQL returns for a WHERE/ORDER tail over project A's tasks.
  std::vector<std::string> sql_ids(const std::string& tail) {
    auto r = query("SELECT id FROM tasks " + tail);
    std::vector<std::string> ids;
    for (int i = 0; i < r.rows(); ++i)
      ids.emplace_back(r.value(i, 0));
    return ids;
  }
  std::string task_count() { return scalar("SELECT count(*) FROM tasks"); }

  TestLoop loop;
  std::shared_ptr<DbPool> pool;
  std::unique_ptr<RestService> service;
  std::string token_a, token_b, token_service, token_anon;
};

const std::string kPA = "project_id=eq." + std::string(kProjectA);
const std::string kWherePA = "WHERE project_id = '" + std::string(kProjectA) + "'";

TEST_F(RestServiceTest, SelectStarReturnsOnlyTheCallersRows) {
  auto r = get("/rest/v1/tasks?select=*", token_a);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/json; charset=utf-8");
  const json::value v = body_json(r);
  ASSERT_TRUE(v.is_array());
  EXPECT_EQ(v.as_array().size(), 63u);  // projects A and A2, never B's 5
  for (const auto& row : v.as_array()) {
    EXPECT_NE(row.at("project_id").as_string(), kProjectB);
    EXPECT_TRUE(row.as_object().contains("generation_created"));
  }
  auto rb = get("/rest/v1/tasks", token_b);
  ASSERT_EQ(rb.status, 200);
  EXPECT_EQ(body_json(rb).as_array().size(), 5u);
}

TEST_F(RestServiceTest, SelectColumnsAndAliases) {
  auto r = get("/rest/v1/tasks?select=id,status,kind:task_type&" + kPA + "&limit=1", token_a);
  ASSERT_EQ(r.status, 200) << r.body;
  const json::value v = body_json(r);
  const auto& row = v.as_array().at(0).as_object();
  EXPECT_EQ(row.size(), 3u);
  EXPECT_TRUE(row.contains("id"));
  EXPECT_TRUE(row.contains("status"));
  EXPECT_TRUE(row.contains("kind"));
  EXPECT_FALSE(row.contains("task_type"));
}

TEST_F(RestServiceTest, EveryFilterOperatorMatchesSql) {
  struct Case {
    std::string filter;
    std::string where;
  };
  const std::vector<Case> cases = {
      {"status=eq.Complete", "status = 'Complete'"},
      {"status=neq.Complete", "status <> 'Complete'"},
      {"attempts=lt.2", "attempts < 2"},
      {"attempts=lte.2", "attempts <= 2"},
      {"attempts=gt.2", "attempts > 2"},
      {"attempts=gte.2", "attempts >= 2"},
      {"created_at=lt.2025-01-01T00:30:00Z", "created_at < '2025-01-01T00:30:00Z'"},
      {"status=in.(Queued,In%20Progress)", "status IN ('Queued', 'In Progress')"},
      {"status=in.(Queued,%22In+Progress%22)", "status IN ('Queued', 'In Progress')"},
      {"status=in.()", "false"},
      {"output_location=is.null", "output_location IS NULL"},
      {"output_location=not.is.null", "output_location IS NOT NULL"},
      {"output_location=like.out/1*", "output_location LIKE 'out/1%'"},
      {"task_type=ilike.KIND-2", "task_type ILIKE 'kind-2'"},
      {"task_type=ilike.*ND-1", "task_type ILIKE '%nd-1'"},
      {"status=not.eq.Queued", "NOT (status = 'Queued')"},
      {"attempts=not.in.(0,1)", "NOT (attempts IN (0, 1))"},
      {"generation_created=is.false", "generation_created IS FALSE"},
  };
  for (const auto& c : cases) {
    auto r = get("/rest/v1/tasks?select=id&" + kPA + "&" + c.filter + "&order=id", token_a);
    ASSERT_EQ(r.status, 200) << c.filter << ": " << r.body;
    const auto expected = sql_ids(kWherePA + " AND " + c.where + " ORDER BY id");
    EXPECT_EQ(ids_of(r), expected) << c.filter;
    EXPECT_FALSE(expected.empty() && c.where != "false") << "case selects nothing: " << c.filter;
  }
}

TEST_F(RestServiceTest, SeveralFiltersCombineWithAnd) {
  auto r = get("/rest/v1/tasks?select=id&" + kPA +
                   "&status=in.(Queued,Failed)&attempts=gte.1&output_location=not.is.null&order=id",
               token_a);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ids_of(r),
            sql_ids(kWherePA + " AND status IN ('Queued','Failed') AND attempts >= 1 AND "
                               "output_location IS NOT NULL ORDER BY id"));
}

TEST_F(RestServiceTest, EveryOrderFormMatchesSql) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"created_at", "created_at"},
      {"created_at.asc", "created_at ASC"},
      {"created_at.desc", "created_at DESC"},
      {"output_location.asc.nullsfirst,id", "output_location ASC NULLS FIRST, id"},
      {"output_location.asc.nullslast,id", "output_location ASC NULLS LAST, id"},
      {"output_location.desc.nullslast,id.desc", "output_location DESC NULLS LAST, id DESC"},
      {"output_location.nullsfirst,id", "output_location NULLS FIRST, id"},
      {"status.desc,created_at.asc", "status DESC, created_at ASC"},
      {"task_type,attempts.desc,id", "task_type, attempts DESC, id"},
  };
  for (const auto& [order, sql_order] : cases) {
    auto r = get("/rest/v1/tasks?select=id&" + kPA + "&order=" + order, token_a);
    ASSERT_EQ(r.status, 200) << order << ": " << r.body;
    EXPECT_EQ(ids_of(r), sql_ids(kWherePA + " ORDER BY " + sql_order)) << order;
  }
}

TEST_F(RestServiceTest, LimitOffsetAndExactCount) {
  auto r = get("/rest/v1/tasks?select=id&" + kPA + "&order=created_at.desc&limit=10&offset=20",
               token_a, {{"Prefer", "count=exact"}});
  ASSERT_EQ(r.status, 206) << r.body;  // a partial page of a counted set
  EXPECT_EQ(r.header("Content-Range"), "20-29/60");
  EXPECT_EQ(ids_of(r), sql_ids(kWherePA + " ORDER BY created_at DESC LIMIT 10 OFFSET 20"));

  auto whole = get("/rest/v1/tasks?select=id&" + kPA, token_a, {{"Prefer", "count=exact"}});
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.header("Content-Range"), "0-59/60");

  auto uncounted = get("/rest/v1/tasks?select=id&" + kPA + "&limit=5", token_a);
  ASSERT_EQ(uncounted.status, 200);
  EXPECT_EQ(uncounted.header("Content-Range"), "0-4/*");

  auto filtered = get("/rest/v1/tasks?select=id&" + kPA + "&status=eq.Failed&limit=3", token_a,
                      {{"Prefer", "count=exact"}});
  ASSERT_EQ(filtered.status, 206);
  EXPECT_EQ(filtered.header("Content-Range"),
            "0-2/" + scalar("SELECT count(*) FROM tasks " + kWherePA + " AND status='Failed'"));
}

TEST_F(RestServiceTest, RangeHeaderAndItsEdges) {
  auto r = get("/rest/v1/tasks?select=id&" + kPA + "&order=created_at", token_a,
               {{"Range", "5-9"}, {"Range-Unit", "items"}, {"Prefer", "count=exact"}});
  ASSERT_EQ(r.status, 206) << r.body;
  EXPECT_EQ(r.header("Content-Range"), "5-9/60");
  EXPECT_EQ(ids_of(r), sql_ids(kWherePA + " ORDER BY created_at LIMIT 5 OFFSET 5"));

  // The Range header intersects ?limit/offset.
  auto both = get("/rest/v1/tasks?select=id&" + kPA + "&order=created_at&offset=7&limit=100",
                  token_a, {{"Range", "5-9"}});
  ASSERT_EQ(both.status, 200);
  EXPECT_EQ(both.header("Content-Range"), "7-9/*");

  // Past the end: 416 with PostgREST's error; exactly at the end: an empty partial page.
  auto past =
      get("/rest/v1/tasks?select=id&" + kPA + "&offset=61", token_a, {{"Prefer", "count=exact"}});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(body_json(past).at("code").as_string(), "PGRST103");
  auto at_end =
      get("/rest/v1/tasks?select=id&" + kPA + "&offset=60", token_a, {{"Prefer", "count=exact"}});
  EXPECT_EQ(at_end.status, 206);
  EXPECT_EQ(at_end.header("Content-Range"), "*/60");
  EXPECT_EQ(at_end.body, "[]");

  auto none = get("/rest/v1/tasks?select=id&status=eq.Queued&task_type=eq.nothing", token_a,
                  {{"Prefer", "count=exact"}});
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.header("Content-Range"), "*/0");
}

TEST_F(RestServiceTest, HeadAnswersCountWithoutBody) {
  auto r = call_service(
      loop, *service,
      make_request("HEAD", "/rest/v1/tasks?" + kPA + "&status=eq.Queued",
                   {{"Authorization", "Bearer " + token_a}, {"Prefer", "count=exact"}}));
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.header("Content-Range"),
            "0-11/" + scalar("SELECT count(*) FROM tasks " + kWherePA + " AND status='Queued'"));
}

TEST_F(RestServiceTest, SingularObjectAnswer) {
  const std::string id = sql_ids(kWherePA + " ORDER BY id LIMIT 1").at(0);
  auto one = get("/rest/v1/tasks?select=id,status&id=eq." + id, token_a,
                 {{"Accept", "application/vnd.pgrst.object+json"}});
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(body_json(one).at("id").as_string(), id);
  auto many = get("/rest/v1/tasks?select=id&" + kPA, token_a,
                  {{"Accept", "application/vnd.pgrst.object+json"}});
  EXPECT_EQ(many.status, 406);
  EXPECT_EQ(body_json(many).at("code").as_string(), "PGRST116");
}

TEST_F(RestServiceTest, InsertReturnsRepresentationAndDefaults) {
  const std::string before = task_count();
  auto r = send(
      "POST", "/rest/v1/tasks?select=id,status,task_type,attempts", token_a,
      R"({"task_type":"render","params":{"x":1},"project_id":")" + std::string(kProjectA) + R"("})",
      {{"Prefer", "return=representation"}});
  ASSERT_EQ(r.status, 201) << r.body;
  const json::value v = body_json(r);
  ASSERT_EQ(v.as_array().size(), 1u);
  EXPECT_EQ(v.at(0).at("status").as_string(), "Queued");  // column default
  EXPECT_EQ(v.at(0).at("attempts").as_int64(), 0);
  EXPECT_EQ(std::stoi(task_count()), std::stoi(before) + 1);
  EXPECT_EQ(scalar("SELECT task_type FROM tasks WHERE id = $1",
                   {std::string(v.at(0).at("id").as_string())}),
            "render");

  auto minimal =
      send("POST", "/rest/v1/tasks", token_a,
           R"({"task_type":"m","params":{},"project_id":")" + std::string(kProjectA) + R"("})");
  EXPECT_EQ(minimal.status, 201);
  EXPECT_TRUE(minimal.body.empty());
  EXPECT_EQ(std::stoi(task_count()), std::stoi(before) + 2);
}

TEST_F(RestServiceTest, ArrayInsertWithMissingDefault) {
  // supabase-js sends ?columns= and Prefer: missing=default for arrays.
  const std::string body = R"([{"task_type":"a","params":{},"project_id":")" +
                           std::string(kProjectA) + R"(","status":"Failed"},)" +
                           R"({"task_type":"b","params":{},"project_id":")" +
                           std::string(kProjectA) + R"("}])";
  auto r = send("POST",
                "/rest/v1/tasks?columns=%22task_type%22,%22params%22,%22project_id%22,%22status%22"
                "&select=task_type,status",
                token_a, body, {{"Prefer", "return=representation,missing=default"}});
  ASSERT_EQ(r.status, 201) << r.body;
  std::set<std::string> got;
  const json::value rows = body_json(r);
  for (const auto& row : rows.as_array()) {
    got.insert(std::string(row.at("task_type").as_string()) + ":" +
               std::string(row.at("status").as_string()));
  }
  EXPECT_EQ(got, (std::set<std::string>{"a:Failed", "b:Queued"}));
}

TEST_F(RestServiceTest, InsertSingularAndCount) {
  auto r =
      send("POST", "/rest/v1/tasks?select=task_type", token_a,
           R"({"task_type":"one","params":{},"project_id":")" + std::string(kProjectA) + R"("})",
           {{"Prefer", "return=representation, count=exact"},
            {"Accept", "application/vnd.pgrst.object+json"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(body_json(r).at("task_type").as_string(), "one");
  EXPECT_EQ(r.header("Content-Range"), "*/1");

  // A singular insert of two rows is refused and rolled back.
  const std::string before = task_count();
  auto two = send(
      "POST", "/rest/v1/tasks", token_a,
      R"([{"task_type":"x","params":{},"project_id":")" + std::string(kProjectA) +
          R"("},{"task_type":"y","params":{},"project_id":")" + std::string(kProjectA) + R"("}])",
      {{"Prefer", "return=representation"}, {"Accept", "application/vnd.pgrst.object+json"}});
  EXPECT_EQ(two.status, 406) << two.body;
  EXPECT_EQ(body_json(two).at("code").as_string(), "PGRST116");
  EXPECT_EQ(task_count(), before);
}

TEST_F(RestServiceTest, UpsertMergesOnPrimaryKey) {
  const std::string id = sql_ids(kWherePA + " ORDER BY id LIMIT 1").at(0);
  auto r = send("POST", "/rest/v1/tasks?select=id,task_type", token_a,
                R"({"id":")" + id + R"(","task_type":"merged","params":{},"project_id":")" +
                    std::string(kProjectA) + R"("})",
                {{"Prefer", "return=representation,resolution=merge-duplicates"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(scalar("SELECT task_type FROM tasks WHERE id = $1", {id}), "merged");
  EXPECT_EQ(task_count(), "68");
}

TEST_F(RestServiceTest, PatchUpdatesFilteredRows) {
  auto r = send("PATCH", "/rest/v1/tasks?" + kPA + "&status=eq.Queued&select=id,status", token_a,
                R"({"status":"In Progress","error_message":"moved"})",
                {{"Prefer", "return=representation"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json::value rows = body_json(r);
  EXPECT_EQ(rows.as_array().size(), 12u);
  for (const auto& row : rows.as_array()) {
    EXPECT_EQ(row.at("status").as_string(), "In Progress");
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM tasks WHERE error_message = 'moved'"), "12");

  auto minimal = send("PATCH", "/rest/v1/tasks?" + kPA + "&status=eq.Failed", token_a,
                      R"({"attempts":9})", {{"Prefer", "count=exact"}});
  EXPECT_EQ(minimal.status, 204);
  EXPECT_EQ(minimal.header("Content-Range"), "*/12");
}

TEST_F(RestServiceTest, DeleteRemovesFilteredRows) {
  auto r = send("DELETE", "/rest/v1/tasks?project_id=eq." + std::string(kProjectA2) + "&select=id",
                token_a, "", {{"Prefer", "return=representation"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_json(r).as_array().size(), 3u);
  EXPECT_EQ(scalar("SELECT count(*) FROM tasks WHERE project_id = $1", {std::string(kProjectA2)}),
            "0");
}

TEST_F(RestServiceTest, WritesWithoutFilterAreRefused) {
  const std::string before = task_count();
  auto del = send("DELETE", "/rest/v1/tasks", token_service, "");
  EXPECT_EQ(del.status, 400);
  EXPECT_EQ(body_json(del).at("code").as_string(), "21000");
  auto patch = send("PATCH", "/rest/v1/tasks", token_service, R"({"attempts":1})");
  EXPECT_EQ(patch.status, 400);
  EXPECT_EQ(task_count(), before);
  EXPECT_EQ(scalar("SELECT count(*) FROM tasks WHERE attempts = 1"), "12");
}

TEST_F(RestServiceTest, RlsUserBCanNeitherReadNorChangeUserAsRows) {
  // Read: B sees none of A's rows, whatever the filter.
  auto read = get("/rest/v1/tasks?" + kPA, token_b, {{"Prefer", "count=exact"}});
  ASSERT_EQ(read.status, 200);
  EXPECT_EQ(read.body, "[]");
  EXPECT_EQ(read.header("Content-Range"), "*/0");
  auto projects = get("/rest/v1/projects?select=id", token_b);
  EXPECT_EQ(ids_of(projects), std::vector<std::string>{std::string(kProjectB)});

  // Update and delete: no row matches, nothing changes.
  const std::string snapshot =
      scalar("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM tasks t " + kWherePA);
  auto patch = send("PATCH", "/rest/v1/tasks?" + kPA, token_b, R"({"status":"Cancelled"})",
                    {{"Prefer", "return=representation"}});
  EXPECT_EQ(patch.status, 200);
  EXPECT_EQ(patch.body, "[]");
  auto del =
      send("DELETE", "/rest/v1/tasks?" + kPA, token_b, "", {{"Prefer", "return=representation"}});
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(del.body, "[]");

  // Insert into A's project, or move B's task into it: refused by the policy's WITH CHECK.
  auto insert =
      send("POST", "/rest/v1/tasks", token_b,
           R"({"task_type":"evil","params":{},"project_id":")" + std::string(kProjectA) + R"("})");
  EXPECT_EQ(insert.status, 403) << insert.body;
  EXPECT_EQ(body_json(insert).at("code").as_string(), "42501");
  auto move = send("PATCH", "/rest/v1/tasks?project_id=eq." + std::string(kProjectB), token_b,
                   R"({"project_id":")" + std::string(kProjectA) + R"("})");
  EXPECT_EQ(move.status, 403) << move.body;
  // A project in A's name: refused too.
  auto steal = send("POST", "/rest/v1/projects", token_b,
                    R"({"name":"mine","user_id":")" + std::string(kUserA) + R"("})");
  EXPECT_EQ(steal.status, 403);

  EXPECT_EQ(scalar("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM tasks t " + kWherePA),
            snapshot);
  EXPECT_EQ(scalar("SELECT count(*) FROM tasks WHERE project_id = $1", {std::string(kProjectB)}),
            "5");
  EXPECT_EQ(scalar("SELECT count(*) FROM projects"), "3");
}

TEST_F(RestServiceTest, AnonSeesNothingAndCannotWrite) {
  auto read = get("/rest/v1/tasks", token_anon);
  EXPECT_EQ(read.status, 200);
  EXPECT_EQ(read.body, "[]");
  auto insert =
      send("POST", "/rest/v1/tasks", token_anon,
           R"({"task_type":"x","params":{},"project_id":")" + std::string(kProjectA) + R"("})");
  EXPECT_EQ(insert.status, 401) << insert.body;  // insufficient privilege as anon
  EXPECT_EQ(task_count(), "68");
}

TEST_F(RestServiceTest, ServiceRoleBypassesRls) {
  auto r = get("/rest/v1/tasks?select=id", token_service, {{"Prefer", "count=exact"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Range"), "0-67/68");
}

TEST_F(RestServiceTest, ClaimsDoNotLeakBetweenRequestsOnOneConnection) {
  make_service(1);
  for (int i = 0; i < 3; ++i) {
    auto s = get("/rest/v1/tasks?select=id", token_service);
    ASSERT_EQ(body_json(s).as_array().size(), 68u);
    auto b = get("/rest/v1/tasks?select=id", token_b);
    ASSERT_EQ(body_json(b).as_array().size(), 5u);
  }
  // Requests pipelined on the one connection, interleaving identities.
  std::vector<std::optional<HttpResponse>> out(6);
  for (int i = 0; i < 6; ++i) {
    service->handle(make_request("GET", "/rest/v1/tasks?select=id",
                                 {{"Authorization", "Bearer " + (i % 2 ? token_b : token_a)}}),
                    [&out, i](HttpResponse r) { out[i] = std::move(r); });
  }
  ASSERT_TRUE(loop.run_until([&] {
    for (auto& o : out) {
      if (!o) return false;
    }
    return true;
  }));
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(body_json(*out[i]).as_array().size(), i % 2 ? 5u : 63u) << i;
  }
}

TEST_F(RestServiceTest, RpcFunctionsAnswerWhatSqlSays) {
  auto counts = send("POST", "/rest/v1/rpc/task_status_counts", token_a,
                     R"({"p_project_id":")" + std::string(kProjectA) + R"("})");
  ASSERT_EQ(counts.status, 200) << counts.body;
  const json::value c = body_json(counts);
  auto r = query(
      "SELECT queued, in_progress, complete, failed, cancelled, processing, "
      "recent_successes, recent_failures FROM task_status_counts($1)",
      {std::string(kProjectA)});
  const char* names[] = {"queued",    "in_progress", "complete",         "failed",
                         "cancelled", "processing",  "recent_successes", "recent_failures"};
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(std::to_string(c.at(names[i]).as_int64()), r.value(0, i)) << names[i];
  }
  EXPECT_EQ(c.at("queued").as_int64(), 12);
  EXPECT_EQ(c.at("processing").as_int64(), 24);

  // B asking about A's project sees zeros: the function runs under B's RLS.
  auto foreign = send("POST", "/rest/v1/rpc/task_status_counts", token_b,
                      R"({"p_project_id":")" + std::string(kProjectA) + R"("})");
  ASSERT_EQ(foreign.status, 200);
  EXPECT_EQ(body_json(foreign).at("queued").as_int64(), 0);

  auto set = send("POST", "/rest/v1/rpc/project_video_counts", token_a,
                  R"({"p_project_id":")" + std::string(kProjectA) + R"("})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_TRUE(body_json(set).is_array());

  auto scalar_fn = send("POST", "/rest/v1/rpc/unpositioned_count", token_a,
                        R"({"p_shot_id":"00000000-0000-4000-8000-000000000000"})");
  ASSERT_EQ(scalar_fn.status, 200);
  EXPECT_EQ(scalar_fn.body, "0");
}

TEST_F(RestServiceTest, RpcErrors) {
  auto unknown = send("POST", "/rest/v1/rpc/no_such_fn", token_a, "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(body_json(unknown).at("code").as_string(), "PGRST202");
  auto missing = send("POST", "/rest/v1/rpc/task_status_counts", token_a, "{}");
  EXPECT_EQ(missing.status, 404);
  auto extra = send("POST", "/rest/v1/rpc/unpositioned_count", token_a,
                    R"({"p_shot_id":"00000000-0000-4000-8000-000000000000","x":1})");
  EXPECT_EQ(extra.status, 404);
  auto bad_value =
      send("POST", "/rest/v1/rpc/unpositioned_count", token_a, R"({"p_shot_id":"not-a-uuid"})");
  EXPECT_EQ(bad_value.status, 400);
  EXPECT_EQ(body_json(bad_value).at("code").as_string(), "22P02");
  auto not_object = send("POST", "/rest/v1/rpc/unpositioned_count", token_a, "[1]");
  EXPECT_EQ(not_object.status, 400);
  EXPECT_EQ(body_json(not_object).at("code").as_string(), "PGRST102");
}

TEST_F(RestServiceTest, TokensMissingExpiredForgedOrWithForeignRolesAreRefused) {
  auto none = call_service(loop, *service, make_request("GET", "/rest/v1/tasks"));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(body_json(none).at("code").as_string(), "PGRST302");

  auto expired = get("/rest/v1/tasks", mint("authenticated", kUserA, -60s));
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(body_json(expired).at("code").as_string(), "PGRST303");
  EXPECT_EQ(body_json(expired).at("message").as_string(), "JWT expired");
  EXPECT_NE(expired.header("WWW-Authenticate").find("invalid_token"), std::string_view::npos);

  auto forged = get("/rest/v1/tasks",
                    mint("authenticated", kUserA, 3600s, "another-secret-another-secret-12345"));
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(body_json(forged).at("code").as_string(), "PGRST301");

  // alg "none" with the signature stripped.
  std::string t = token_a;
  const std::string none_header = server::auth::base64url_encode(R"({"alg":"none","typ":"JWT"})");
  t = none_header + t.substr(t.find('.'), t.rfind('.') - t.find('.')) + ".";
  EXPECT_EQ(get("/rest/v1/tasks", t).status, 401);

  auto superuser = get("/rest/v1/tasks", mint("postgres", std::nullopt));
  EXPECT_EQ(superuser.status, 401);

  // The apikey header alone is accepted, as Supabase's gateway does.
  auto apikey = call_service(
      loop, *service, make_request("GET", "/rest/v1/tasks?select=id", {{"apikey", token_b}}));
  EXPECT_EQ(apikey.status, 200);
  EXPECT_EQ(body_json(apikey).as_array().size(), 5u);
}

// A verified token is remembered (no signature check on reuse), but every use re-checks its
// expiry against the clock: it is refused exactly when exp + leeway is reached.
TEST_F(RestServiceTest, CachedTokensStillExpireOnTime) {
  core::ManualScheduler clock;  // the wall time the service checks tokens against
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(clock.wall_now().time_since_epoch()).count();
  const std::string tok = server::auth::sign_hs256(json::object{{"role", "authenticated"},
                                                                {"aud", "authenticated"},
                                                                {"sub", kUserA},
                                                                {"exp", now_s + 60}},
                                                   kJwtSecret);
  RestService svc(pool, server::auth::JwtVerifier(std::string(kJwtSecret), 2s), clock);
  auto fetch = [&] {
    return call_service(loop, svc,
                        make_request("GET", "/rest/v1/tasks?select=id&" + kPA,
                                     {{"Authorization", "Bearer " + tok}}));
  };
  auto first = fetch();
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(svc.token_cache_hits(), 0u);
  auto again = fetch();
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(svc.token_cache_hits(), 1u);

  clock.advance(61s + 999ms);  // exp + leeway - 1 ms: still valid
  EXPECT_EQ(fetch().status, 200);
  clock.advance(1ms);  // exp + leeway: expired, cached or not
  auto late = fetch();
  EXPECT_EQ(late.status, 401);
  EXPECT_EQ(body_json(late).at("code").as_string(), "PGRST303");
  EXPECT_EQ(fetch().status, 401);  // and it stays refused
  EXPECT_EQ(svc.token_cache_hits(), 2u);

  // With the cache off every request verifies; the answers are the same.
  RestOptions off;
  off.max_cached_tokens = 0;
  core::ManualScheduler clock2;
  RestService uncached(pool, server::auth::JwtVerifier(std::string(kJwtSecret), 2s), clock2, off);
  for (int i = 0; i < 2; ++i) {
    auto r = call_service(loop, uncached,
                          make_request("GET", "/rest/v1/tasks?select=id&" + kPA,
                                       {{"Authorization", "Bearer " + tok}}));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, first.body);
  }
  EXPECT_EQ(uncached.token_cache_hits(), 0u);
}

TEST_F(RestServiceTest, UnknownNamesAndBadSyntaxGetPostgrestCodes) {
  struct Case {
    std::string url;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"/rest/v1/taskz", 404, "PGRST205"},
      {"/rest/v1/tasks?select=nope", 400, "42703"},
      {"/rest/v1/tasks?nope=eq.1", 400, "42703"},
      {"/rest/v1/tasks?order=nope.desc", 400, "42703"},
      {"/rest/v1/tasks?status=zz.1", 400, "PGRST100"},
      {"/rest/v1/tasks?status=Queued", 400, "PGRST100"},
      {"/rest/v1/tasks?status=in.(a", 400, "PGRST100"},
      {"/rest/v1/tasks?status=is.maybe", 400, "PGRST100"},
      {"/rest/v1/tasks?order=created_at.sideways", 400, "PGRST100"},
      {"/rest/v1/tasks?limit=-1", 400, "PGRST100"},
      {"/rest/v1/tasks?limit=ten", 400, "PGRST100"},
      {"/rest/v1/tasks?select=id::text", 400, "PGRST100"},
      {"/rest/v1/tasks?select=*,projects(*)", 400, "PGRST200"},
      {"/rest/v1/tasks?or=(status.eq.Queued)", 400, "PGRST100"},
      {"/rest/v1/tasks?id=eq.not-a-uuid", 400, "22P02"},
      {"/rest/v1/tasks?status=eq.Sleeping", 400, "22P02"},
      {"/rest/v1/tasks?status=eq.%ZZ", 400, "PGRST100"},
  };
  for (const auto& c : cases) {
    auto r = get(c.url, token_a);
    EXPECT_EQ(r.status, c.status) << c.url << ": " << r.body;
    const json::value v = body_json(r);
    ASSERT_TRUE(v.is_object()) << c.url;
    EXPECT_EQ(v.at("code").as_string(), c.code) << c.url << ": " << r.body;
    EXPECT_TRUE(v.as_object().contains("message"));
    EXPECT_TRUE(v.as_object().contains("details"));
    EXPECT_TRUE(v.as_object().contains("hint"));
  }
  auto hint = get("/rest/v1/taskz", token_a);
  EXPECT_EQ(body_json(hint).at("hint").as_string(), "Perhaps you meant the table 'public.tasks'");

  auto unknown_body = send("POST", "/rest/v1/tasks", token_a, R"({"nope":1})");
  EXPECT_EQ(unknown_body.status, 400);
  EXPECT_EQ(body_json(unknown_body).at("code").as_string(), "PGRST204");
  auto broken = send("POST", "/rest/v1/tasks", token_a, R"({"task_type":)");
  EXPECT_EQ(broken.status, 400);
  EXPECT_EQ(body_json(broken).at("code").as_string(), "PGRST102");
  auto profile = get("/rest/v1/tasks", token_a, {{"Accept-Profile", "auth"}});
  EXPECT_EQ(profile.status, 406);
  EXPECT_EQ(body_json(profile).at("code").as_string(), "PGRST106");
  // auth.users is not reachable by path tricks.
  EXPECT_EQ(get("/rest/v1/auth.users", token_service).status, 404);
  EXPECT_EQ(get("/rest/v1/..%2Fauth%2Fusers", token_service).status, 404);
}

TEST_F(RestServiceTest, InjectionShapedInputChangesNothing) {
  const std::string before =
      scalar("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM tasks t");
  const std::vector<std::string> urls = {
      "/rest/v1/tasks?task_type=eq.x%27%3B%20DROP%20TABLE%20tasks%3B--",
      "/rest/v1/tasks?task_type=in.(%27)%3B%20DELETE%20FROM%20tasks%3B--)",
      "/rest/v1/tasks?task_type=like.*%27%20OR%201%3D1--",
      "/rest/v1/tasks?select=id,%22status%22%3B%20DROP%20TABLE%20tasks",
      "/rest/v1/tasks?%22status%3B%20DROP%20TABLE%20tasks%22=eq.1",
      "/rest/v1/tasks?order=created_at%3B%20DROP%20TABLE%20tasks",
      "/rest/v1/tasks%3B%20DROP%20TABLE%20tasks",
      "/rest/v1/tasks?limit=1%3B%20DROP%20TABLE%20tasks",
      "/rest/v1/tasks?select=x:id%22)%3B%20DROP%20TABLE%20tasks--",
  };
  for (const auto& u : urls) {
    auto r = get(u, token_a);
    EXPECT_TRUE(r.status == 200 || r.status == 400 || r.status == 404) << u << " " << r.status;
    if (r.status == 200) {
      // Values are compared as values: no row has such a task_type.
      EXPECT_EQ(r.body, "[]") << u;
    }
  }
  // An alias is a bound value: the odd name comes back as a key, and nothing ran.
  auto alias = get("/rest/v1/tasks?select=%22x%27)%3B--%22:id&" + kPA + "&limit=1", token_a);
  ASSERT_EQ(alias.status, 200) << alias.body;
  EXPECT_TRUE(body_json(alias).at(0).as_object().contains("x');--"));

  auto patch = send("PATCH", "/rest/v1/tasks?task_type=eq.kind-1%27%20OR%20%271%27=%271", token_a,
                    R"({"task_type":"pwned"})");
  EXPECT_EQ(patch.status, 204);
  auto rpc =
      send("POST", "/rest/v1/rpc/unpositioned_count", token_a,
           R"({"p_shot_id":"00000000-0000-4000-8000-000000000000'); DROP TABLE tasks; --"})");
  EXPECT_EQ(rpc.status, 400);
  EXPECT_EQ(scalar("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM tasks t"), before);
  EXPECT_EQ(scalar("SELECT count(*) FROM tasks WHERE task_type = 'pwned'"), "0");
}

// A read of plain columns is answered from the rows (the server writes the JSON, not json_agg):
// the body must read exactly as PostgreSQL's own json_agg of the same rows, for every kind of
// value — escapes, control characters, non-ASCII, NULLs, booleans, big integers, NaN and
// infinities, json/jsonb, timestamps with and without zone, enums, arrays, bytea, intervals.
TEST_F(RestServiceTest, RowsBodyReadsAsPostgresJsonAgg) {
  sql(R"sql(
    CREATE TABLE public.json_probe (
      id int PRIMARY KEY, t text, vc varchar(10), ch char(3), u uuid, b boolean, i2 smallint,
      i8 bigint, n numeric, f float8, js json, jb jsonb, ts timestamptz, tsn timestamp, d date,
      st task_status, arr text[], ia int[], by bytea, iv interval, "we""ird key" text);
    GRANT SELECT ON public.json_probe TO service_role;
    INSERT INTO public.json_probe VALUES
      (1, E'q"uo\\te\n\t\b\f\r\x01\x1f/ é 😀', 'abc', 'x', 'aaaaaaaa-0000-4000-8000-00000000000a',
       true, -3, 9007199254740993, 'NaN', 'Infinity', '{"a": [1, 2.50]}', '{"b": {"c": null}}',
       '2025-01-02 03:04:05.123456+05:30', '2025-01-02 03:04:05', '2025-01-02', 'In Progress',
       '{"a,b", NULL, "\""}', '{1,2}', '\x00ff', '1 day 2 hours', 'k'),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL),
      (3, '', '', '', 'bbbbbbbb-0000-4000-8000-00000000000b', false, 0, -9223372036854775808,
       1.50, -0.5, 'null', '[]', 'infinity', '-infinity', 'infinity', 'Queued', '{}', '{}', '',
       '0', ''))sql");
  const json::value expected =
      json::parse(scalar("SELECT json_agg(p ORDER BY id) FROM public.json_probe p"));
  const json::value first =
      json::parse(scalar("SELECT (json_agg(p ORDER BY id) -> 0)::text FROM public.json_probe p"));
  std::optional<Result<void>> reloaded;
  service->reload_schema([&](Result<void> r) { reloaded = r; });
  ASSERT_TRUE(loop.run_until([&] { return reloaded.has_value(); }));
  ASSERT_TRUE(reloaded->ok());

  auto all = get("/rest/v1/json_probe?select=*&order=id", token_service);
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_TRUE(core::json_equal(body_json(all), expected)) << all.body << "\n" << expected;
  EXPECT_EQ(all.header("Content-Range"), "0-2/*");

  // A column list, in the asked order.
  auto some = get("/rest/v1/json_probe?select=ts,t,b&order=id&limit=1", token_service);
  ASSERT_EQ(some.status, 200) << some.body;
  EXPECT_EQ(some.body.substr(0, 7), R"([{"ts":)");
  const json::value some_json = body_json(some);
  const auto& row = some_json.as_array().at(0).as_object();
  EXPECT_EQ(row.size(), 3u);
  EXPECT_TRUE(core::json_equal(row.at("ts"), first.at("ts")));
  EXPECT_TRUE(core::json_equal(row.at("t"), first.at("t")));

  // Singular: the object alone; no row is 406, as with json_agg.
  const std::vector<std::pair<std::string, std::string>> object{
      {"Accept", "application/vnd.pgrst.object+json"}};
  auto one = get("/rest/v1/json_probe?id=eq.1", token_service, object);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_TRUE(core::json_equal(body_json(one), first)) << one.body;
  EXPECT_EQ(get("/rest/v1/json_probe?id=eq.9", token_service, object).status, 406);

  // Nothing matched: an empty array; counted: the total beside the page.
  auto none = get("/rest/v1/json_probe?id=gt.3", token_service);
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body, "[]");
  auto counted = get("/rest/v1/json_probe?id=gt.1&order=id&limit=1", token_service,
                     {{"Prefer", "count=exact"}});
  EXPECT_EQ(counted.status, 206) << counted.body;
  EXPECT_EQ(counted.header("Content-Range"), "0-0/2");
  EXPECT_EQ(body_json(counted).as_array().size(), 1u);
  sql("DROP TABLE public.json_probe");
}

TEST_F(RestServiceTest, SchemaCacheLoadsOnceAndReloads) {
  ASSERT_EQ(get("/rest/v1/tasks?limit=1", token_a).status, 200);
  ASSERT_TRUE(service->catalog());
  EXPECT_FALSE(service->catalog()->table("late"));
  sql("CREATE TABLE public.late (id int PRIMARY KEY); GRANT SELECT ON public.late TO "
      "authenticated");
  EXPECT_EQ(get("/rest/v1/late", token_a).status, 404);
  std::optional<Result<void>> reloaded;
  service->reload_schema([&](Result<void> r) { reloaded = r; });
  ASSERT_TRUE(loop.run_until([&] { return reloaded.has_value(); }));
  EXPECT_TRUE(reloaded->ok());
  EXPECT_EQ(get("/rest/v1/late", token_a).status, 200);
  sql("DROP TABLE public.late");
}

TEST_F(RestServiceTest, UnpreparedShapesBeyondTheCacheStillWork) {
  RestOptions o;
  o.max_prepared = 1;  // the first shape is kept prepared, the others run unprepared
  make_service(1, o);
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(body_json(get("/rest/v1/tasks?select=id&" + kPA, token_a)).as_array().size(), 60u);
    EXPECT_EQ(body_json(get("/rest/v1/tasks?select=id&" + kPA + "&status=eq.Failed", token_a))
                  .as_array()
                  .size(),
              12u);
    EXPECT_TRUE(
        core::json_equal(body_json(get("/rest/v1/projects?select=name&order=name", token_a)),
                         json::parse(R"([{"name":"A"},{"name":"A2"}])")));
  }
}

// Reads run with plan_cache_mode = force_generic_plan for their transaction only (so prepared
// page reads are planned once); writes, rpc and later transactions on the connection keep the
// server's setting, and the option turns it off.
TEST_F(RestServiceTest, AStatementOverTheTimeoutIsCancelledAndItsConnectionServesTheNext) {
  sql(R"sql(
    CREATE VIEW public.timeout_probe AS SELECT current_setting('statement_timeout') AS t;
    GRANT SELECT ON public.timeout_probe TO service_role;
    CREATE FUNCTION public.sleep_ms(ms int) RETURNS int LANGUAGE sql VOLATILE
      AS $$ SELECT pg_sleep(ms / 1000.0); SELECT ms $$;
    GRANT EXECUTE ON FUNCTION public.sleep_ms(int) TO service_role;)sql");
  auto with = [&](std::chrono::milliseconds timeout) {
    RestOptions o;
    o.statement_timeout = timeout;
    make_service(1, o);  // one connection: a request that held it would block the next
    std::optional<Result<void>> reloaded;
    service->reload_schema([&](Result<void> r) { reloaded = r; });
    ASSERT_TRUE(loop.run_until([&] { return reloaded.has_value(); }));
    ASSERT_TRUE(reloaded->ok());
  };
  with(RestOptions{}.statement_timeout);
  EXPECT_EQ(get("/rest/v1/timeout_probe", token_service).body, R"([{"t":"8s"}])");
  with(std::chrono::milliseconds(0));  // the connection's own setting (the server default)
  EXPECT_EQ(get("/rest/v1/timeout_probe", token_service).body, R"([{"t":"0"}])");

  with(std::chrono::milliseconds(200));
  const auto started = std::chrono::steady_clock::now();
  auto slow = send("POST", "/rest/v1/rpc/sleep_ms", token_service, R"({"ms":20000})");
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(slow.status, 500) << slow.body;
  EXPECT_EQ(body_json(slow).at("code").as_string(), "57014") << slow.body;
  EXPECT_LT(took, std::chrono::seconds(10));  // cancelled, not slept out
  auto quick = send("POST", "/rest/v1/rpc/sleep_ms", token_service, R"({"ms":1})");
  EXPECT_EQ(quick.status, 200) << quick.body;
  EXPECT_EQ(quick.body, "1");
  EXPECT_EQ(get("/rest/v1/timeout_probe", token_service).body, R"([{"t":"200ms"}])");
}

TEST_F(RestServiceTest, ReadsUseGenericPlansForTheirTransactionOnly) {
  sql(R"sql(
    CREATE VIEW public.plan_probe AS SELECT current_setting('plan_cache_mode') AS mode;
    GRANT SELECT ON public.plan_probe TO service_role;
    CREATE TABLE public.plan_writes (id int PRIMARY KEY,
                                     mode text DEFAULT current_setting('plan_cache_mode'));
    GRANT SELECT, INSERT ON public.plan_writes TO service_role;
    CREATE FUNCTION public.plan_mode() RETURNS text LANGUAGE sql STABLE
      AS $$ SELECT current_setting('plan_cache_mode') $$;
    GRANT EXECUTE ON FUNCTION public.plan_mode() TO service_role;)sql");
  auto reload = [&] {
    std::optional<Result<void>> reloaded;
    service->reload_schema([&](Result<void> r) { reloaded = r; });
    ASSERT_TRUE(loop.run_until([&] { return reloaded.has_value(); }));
    ASSERT_TRUE(reloaded->ok());
  };
  make_service(1);  // one connection: every request below shares it
  reload();
  for (int round = 0; round < 2; ++round) {
    auto read = get("/rest/v1/plan_probe", token_service);
    ASSERT_EQ(read.status, 200) << read.body;
    EXPECT_EQ(read.body, R"([{"mode":"force_generic_plan"}])");
    auto aliased = get("/rest/v1/plan_probe?select=m:mode", token_service);
    EXPECT_TRUE(
        core::json_equal(body_json(aliased), json::parse(R"([{"m":"force_generic_plan"}])")))
        << aliased.body;
    auto write =
        send("POST", "/rest/v1/plan_writes", token_service,
             R"({"id":)" + std::to_string(round) + "}", {{"Prefer", "return=representation"}});
    ASSERT_EQ(write.status, 201) << write.body;
    EXPECT_EQ(write.body, R"([{"id":)" + std::to_string(round) + R"(,"mode":"auto"}])");
    auto rpc = get("/rest/v1/rpc/plan_mode", token_service);
    ASSERT_EQ(rpc.status, 200) << rpc.body;
    EXPECT_EQ(rpc.body, R"("auto")");
  }

  RestOptions off;
  off.generic_read_plans = false;
  make_service(1, off);
  reload();
  EXPECT_EQ(get("/rest/v1/plan_probe", token_service).body, R"([{"mode":"auto"}])");
  sql("DROP VIEW public.plan_probe; DROP TABLE public.plan_writes; "
      "DROP FUNCTION public.plan_mode()");
}

TEST_F(RestServiceTest, OptionsPreflightAndUnsupportedMethods) {
  auto pre = call_service(loop, *service, make_request("OPTIONS", "/rest/v1/tasks"));
  EXPECT_EQ(pre.status, 200);
  EXPECT_FALSE(pre.header("Access-Control-Allow-Methods").empty());
  auto put = send("PUT", "/rest/v1/tasks?" + kPA, token_a, "{}");
  EXPECT_EQ(put.status, 405);
  EXPECT_TRUE(service->matches("/rest/v1/tasks"));
  EXPECT_TRUE(service->matches("/rest/v1"));
  EXPECT_FALSE(service->matches("/rest/v10/tasks"));
  EXPECT_FALSE(service->matches("/auth/v1/token"));
}

}  // namespace
}  // namespace rtsync::test
