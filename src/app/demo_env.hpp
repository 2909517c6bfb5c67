// The demo's world, set up with no configuration: a throwaway PostgreSQL (TempCluster), the demo
// schema (`migrate`), the rtsync server in-process on a free loopback port, a signed-up demo user
// and two projects with shots owned by that user.
//
// Keys are HS256 JWTs signed with a random per-run secret: an anon key and a service_role key
// (both valid for a day). The demo user signs up through the server's GoTrue endpoint
// (/auth/v1/signup).
//
// Teardown (destructor): server stopped (websockets closed with 1001), cluster stopped and its
// folder removed. TempCluster's watchdog covers a process that dies without running it.
//
// Thread safety: one thread drives a DemoEnvironment (the command's main thread, or a test).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/result.hpp"
#include "worker.hpp"

namespace rtsync::server {
class Server;
struct ServerOptions;
}  // namespace rtsync::server
namespace rtsync::testkit {
class TempCluster;
class TempRedis;
}  // namespace rtsync::testkit

namespace rtsync::app {

struct DemoEnvironmentOptions {
  int projects = 2;
  int shots_per_project = 3;
  std::string email = "demo@rtsync.local";
  std::string password;    // empty: random
  std::string jwt_secret;  // empty: random
  // Lifetime of the access tokens the server's /auth/v1 issues (when the server supports it).
  std::chrono::seconds access_token_ttl{3600};
  std::string pg_parent_dir;  // TempCluster's parent folder (empty: $TMPDIR or /tmp)
  // Empty: the server runs in this process. Otherwise the `rtsync` binary to run the server as a
  // child process (`<binary> server …`), so that it can be killed for real (SIGKILL).
  std::string server_binary;
  // More than 1: a cluster (docs/scaling.md §3) — a throwaway Redis and this many server nodes
  // in this process, all on the one PostgreSQL; http_url() is node 1's.
  int nodes = 1;
};

struct DemoUser {
  std::string id;
  std::string email;
  std::string password;
};

class DemoEnvironment {
 public:
  using Progress = std::function<void(std::string_view step)>;

  // Errors name the step that failed; a missing PostgreSQL says which package to install
  // (Errc::not_found).
  static Result<std::unique_ptr<DemoEnvironment>> create(DemoEnvironmentOptions options,
                                                         const Progress& progress = {});
  ~DemoEnvironment();
  DemoEnvironment(const DemoEnvironment&) = delete;
  DemoEnvironment& operator=(const DemoEnvironment&) = delete;

  testkit::TempCluster& cluster() { return *cluster_; }
  // The in-process server, or nullptr (stopped, or running as a child process).
  server::Server* server() { return server_.get(); }
  bool server_running() const noexcept { return server_ != nullptr || child_pid_ > 0; }
  std::string conninfo() const;
  std::string http_url() const;  // realtime, /rest/v1 and /auth/v1; the same across restarts
  std::uint16_t port() const noexcept { return port_; }
  // Every node's "127.0.0.1:port", node 1 first (one entry without a cluster).
  std::vector<std::string> node_addresses() const;
  const std::string& jwt_secret() const noexcept { return options_.jwt_secret; }
  const std::string& anon_key() const noexcept { return anon_key_; }
  const std::string& service_key() const noexcept { return service_key_; }
  const DemoUser& user() const noexcept { return user_; }
  const std::vector<WorkerProject>& projects() const noexcept { return projects_; }

  // Mints an HS256 token with this run's secret: {role, exp: now + ttl[, sub, aud]}.
  std::string mint(std::string_view role, std::chrono::seconds ttl,
                   std::string_view sub = {}) const;

  // Stops the server: gracefully (websockets closed with 1001), or — for a child process with
  // `kill` — with SIGKILL, as a crash would. start_server() brings it back on the same port.
  void stop_server(bool kill = false);
  Result<void> start_server();

  // The worker options for this world (rate and seed left to the caller).
  WorkerOptions worker_options() const;

 private:
  DemoEnvironment() = default;
  Result<void> sign_up();
  Result<void> seed_projects();

  DemoEnvironmentOptions options_;
  std::unique_ptr<testkit::TempCluster> cluster_;
  Result<void> start_child();
  server::ServerOptions server_options(int node) const;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<testkit::TempRedis> redis_;                // with nodes > 1
  std::vector<std::unique_ptr<server::Server>> more_nodes_;  // nodes 2…N
  int child_pid_ = 0;
  std::uint16_t port_ = 0;
  std::string anon_key_;
  std::string service_key_;
  DemoUser user_;
  std::vector<WorkerProject> projects_;
};

// A random string of `n` hex digits (secrets, passwords).
std::string random_hex(std::size_t n);

}  // namespace rtsync::app
