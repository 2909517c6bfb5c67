// Pieces of the REST/auth integration tests: the shared PostgreSQL fixture
// (tests/support/pg_suite.hpp) on a migrated cluster, token minting, and a seeded two-user data
// set.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/http/http_service.hpp"
#include "rtsync/server/migrate/migrations.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/server/http/http_service.hpp"
#include "rtsync/server/migrate/migrations.hpp"
#include "rtsync/testkit/migrated_cluster.hpp"
#include "support/pg_suite.hpp"

namespace rtsync::test {

using namespace std::chrono_literals;
using server::http::HttpRequest;
using server::http::HttpResponse;

inline constexpr std::string_view kJwtSecret = "rtsync-test-secret-with-at-least-32-chars";
inline constexpr std::string_view kUserA = "aaaaaaaa-0000-4000-8000-00000000000a";
inline constexpr std::string_view kUserB = "bbbbbbbb-0000-4000-8000-00000000000b";
inline constexpr std::string_view kProjectA = "a0000000-0000-4000-8000-0000000000a1";
inline constexpr std::string_view kProjectA2 = "a0000000-0000-4000-8000-0000000000a2";
inline constexpr std::string_view kProjectB = "b0000000-0000-4000-8000-0000000000b1";

// A claims set signed with the test secret; `exp` relative to now.
inline std::string mint(std::string_view role, std::optional<std::string_view> sub,
                        std::chrono::seconds ttl = 3600s, std::string_view secret = kJwtSecret) {
  json::object claims;
  claims["role"] = role;
  claims["aud"] = "authenticated";
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  claims["iat"] = now;
  claims["exp"] = now + ttl.count();
  if (sub) claims["sub"] = *sub;
  return server::auth::sign_hs256(claims, secret);
}

// One migrated cluster per test suite (tests/support/pg_suite.hpp), copied from the migrated
// template; every test starts from an empty data set (SetUp truncates), so tests do not depend on
// each other's rows.
class MigratedPg : public PgSuiteBase<MigratedPg> {
 public:
  static testkit::TempClusterOptions cluster_options() { return testkit::with_migrations(); }

 protected:
  void SetUp() override {
    PgSuiteBase::SetUp();
    if (HasFatalFailure()) return;
    sql("SET client_min_messages = warning; TRUNCATE auth.users, public.workers CASCADE");
  }

  // Users A and B; A owns projects A (60 tasks) and A2 (3 tasks), B owns project B (5 tasks).
  // Task i of project A: status cycles through the five statuses, created_at = base + i minutes,
  // task_type 'kind-<i mod 3>', output_location NULL for every 4th, attempts = i mod 5.
  void seed() {
    sql(std::string("INSERT INTO auth.users (id, email, encrypted_password) VALUES ('") +
        std::string(kUserA) + "', 'a@example.com', auth.hash_password('password-a')), ('" +
        std::string(kUserB) + "', 'b@example.com', auth.hash_password('password-b'));" +
        "INSERT INTO projects (id, name, user_id) VALUES ('" + std::string(kProjectA) +
        "', 'A', '" + std::string(kUserA) + "'), ('" + std::string(kProjectA2) + "', 'A2', '" +
        std::string(kUserA) + "'), ('" + std::string(kProjectB) + "', 'B', '" +
        std::string(kUserB) + "');" +
        "INSERT INTO tasks (task_type, params, status, created_at, updated_at, project_id, "
        "output_location, attempts) "
        "SELECT 'kind-' || (i % 3), jsonb_build_object('i', i), "
        "(ARRAY['Queued','In Progress','Complete','Failed','Cancelled'])[1 + i % 5]::task_status, "
        "timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute', "
        "CASE WHEN i % 2 = 0 THEN now() - i * interval '1 minute' END, '" +
        std::string(kProjectA) +
        "', CASE WHEN i % 4 = 0 THEN NULL ELSE 'out/' || i END, i % 5 "
        "FROM generate_series(0, 59) i;" +
        "INSERT INTO tasks (task_type, params, project_id) SELECT 'a2', '{}', '" +
        std::string(kProjectA2) + "' FROM generate_series(1, 3);" +
        "INSERT INTO tasks (task_type, params, status, project_id) SELECT 'b', '{}', 'Queued', '" +
        std::string(kProjectB) + "' FROM generate_series(1, 5);");
  }
};

// Drives one HttpService on the test thread's loop.
inline HttpResponse call_service(TestLoop& loop, server::http::HttpService& service,
                                 HttpRequest request) {
  std::optional<HttpResponse> out;
  service.handle(std::move(request), [&](HttpResponse r) { out = std::move(r); });
  if (!loop.run_until([&] { return out.has_value(); })) {
    ADD_FAILURE() << "no answer within the deadline";
    return HttpResponse{0, {}, {}};
  }
  return std::move(*out);
}

// "GET", "/rest/v1/tasks?select=id" → request with split target/query.
inline HttpRequest make_request(std::string method, std::string_view url,
                                std::vector<std::pair<std::string, std::string>> headers = {},
                                std::string body = {}) {
  HttpRequest r;
  r.method = std::move(method);
  const auto q = url.find('?');
  r.target = std::string(url.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(url.substr(q + 1));
  for (auto& [k, v] : headers) {
    std::string lower = k;
    for (char& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[lower] = v;
  }
  r.body = std::move(body);
  return r;
}

inline json::value body_json(const HttpResponse& r) {
  auto v = core::parse_json(r.body);
  EXPECT_TRUE(v.ok()) << "body is not JSON: " << r.body;
  return v.ok() ? std::move(v).value() : json::value();
}

}  // namespace rtsync::test
