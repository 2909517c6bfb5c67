// An in-process server for tests and tools: a throwaway PostgreSQL (testkit::TempCluster) plus
// rtsync::server::Server on 127.0.0.1:0, with helpers to run SQL and mint keys.
//
//   auto stack = TestStack::start();           // Result<unique_ptr<TestStack>>
//   stack->sql("create table …");
//   auto c = WsClient::connect_key(stack->port(), stack->anon_key());
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/server/server.hpp"
#include "rtsync/testkit/temp_cluster.hpp"

namespace rtsync::testkit {

inline constexpr std::string_view kTestSecret = "rtsync-test-secret-with-at-least-32-chars";

struct StackOptions {
  server::realtime::RealtimeLimits limits;
  std::chrono::seconds jwt_leeway{1};
  std::vector<std::string> pg_config;  // extra postgresql.conf lines
  // Start from the migrated template (the demo schema, testkit::with_migrations) instead of an
  // empty cluster.
  bool migrated = false;
  // Last say over the server's options (connection caps and the like), after the fields above.
  std::function<void(server::ServerOptions&)> configure;
};

class TestStack {
 public:
  static Result<std::unique_ptr<TestStack>> start(StackOptions options = {});
  ~TestStack();

  testkit::TempCluster& pg() { return *pg_; }
  server::Server& server() { return *server_; }
  std::uint16_t port() const { return server_->port(); }
  std::string conninfo() const { return pg_->conninfo(); }

  // Runs a script (several statements, no parameters) on a fresh connection.
  Result<void> sql(const std::string& script);
  // First column of the first row.
  Result<std::string> sql_value(const std::string& query);

  // A key signed with the test secret: {role, exp: now + ttl[, sub]}.
  std::string key(std::string role, std::chrono::seconds ttl = std::chrono::hours(1),
                  std::string sub = "") const;
  std::string anon_key() const { return key("anon"); }
  std::string service_key() const { return key("service_role"); }

  // Stops and starts the server (same cluster, same slot).
  Result<void> restart_server();

 private:
  StackOptions options_;
  std::unique_ptr<testkit::TempCluster> pg_;
  std::unique_ptr<server::Server> server_;
  Result<void> start_server();
};

}  // namespace rtsync::testkit
