// A chaos run's world (docs/chaos.md §2):
//
//   writer ─────────────────────────────────────────────▶ PostgreSQL (TempCluster, demo schema,
//                                                             audit trigger on public.tasks)
//   victim + attacker clients ─▶ client link (FaultProxy) ─▶ rtsync server (child process) ─▶
//                                                   db link (FaultProxy) ─▶ PostgreSQL
//
// Users u0…u(n-1), each owning `projects_per_user` projects; the victim is u0 watching its first
// project, the attacker u1 watching the same project (row-level security must keep it empty).
// Every link of the server — clients in, PostgreSQL out (pool and replication alike) — goes
// through a proxy the run can break; the writer goes straight to PostgreSQL, as an application
// would.
//
// Thread safety: one thread (the test's) drives a world; the clients run on its event loop.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chaos_client.hpp"
#include "checker.hpp"
#include "plan.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/testkit/fault_proxy.hpp"
#include "rtsync/testkit/temp_cluster.hpp"
#include "server_process.hpp"
#include "writer.hpp"

namespace rtsync::chaos {

struct User {
  std::string id;
  std::string email;
  std::string password;
  std::vector<std::string> projects;
};

class ChaosWorld {
 public:
  // PostgreSQL, audit, users and projects, both proxies, the server, both clients (signed in;
  // the victim's first join may still be under way) and the writer (not started).
  static Result<std::unique_ptr<ChaosWorld>> create(const Plan& plan, std::string server_binary);
  ~ChaosWorld();
  ChaosWorld(const ChaosWorld&) = delete;
  ChaosWorld& operator=(const ChaosWorld&) = delete;

  testkit::TempCluster& pg() { return *pg_; }
  testkit::FaultProxy& client_link() { return *client_link_; }
  testkit::FaultProxy& db_link() { return *db_link_; }
  ServerProcess& server() { return *server_; }
  ChaosWriter& writer() { return *writer_; }
  ChaosClient& victim() { return *victim_; }
  ChaosClient& attacker() { return *attacker_; }
  const std::vector<User>& users() const { return users_; }
  const std::string& watched_project() const { return users_.front().projects.front(); }

  // Starts the server again after kill()/stop() and points the client link at its new port.
  Result<void> restart_server();
  // Every change the audit recorded, with the writer's times (read straight from PostgreSQL).
  Result<std::vector<Committed>> committed();
  // The watched project's rows now.
  Result<Rows> database_rows();
  // First column of the first row of `query` (on a fresh connection straight to PostgreSQL).
  Result<std::string> sql_value(const std::string& query,
                                const std::vector<std::optional<std::string>>& params = {});

 private:
  ChaosWorld() = default;
  Result<void> setup(const Plan& plan, const std::string& server_binary);

  std::string secret_;
  std::string anon_key_;
  std::string folder_;
  std::unique_ptr<testkit::TempCluster> pg_;
  std::unique_ptr<testkit::FaultProxy> db_link_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<testkit::FaultProxy> client_link_;
  std::vector<User> users_;
  core::EventLoop loop_;
  std::unique_ptr<ChaosClient> victim_;
  std::unique_ptr<ChaosClient> attacker_;
  std::unique_ptr<ChaosWriter> writer_;
};

}  // namespace rtsync::chaos
