// The end-to-end world, in process: the demo's environment (throwaway PostgreSQL, schema, server,
// demo user, two projects), its worker, and a client stack + task pane session signed in as the
// demo user, with the --json lines captured. Waits are on real events with bounded timeouts.
//
// The server runs in process, or (WorldOptions::server_binary) as a `rtsync server` child process
// that can be killed for real.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "demo_env.hpp"
#include "pane_session.hpp"
#include "rtsync/core/event_loop.hpp"
#include "task_client.hpp"
#include "worker.hpp"

namespace rtsync::e2e {

using namespace std::chrono_literals;

struct WorldOptions {
  double rate = 3.0;
  std::uint64_t seed = 7;
  int page_size = 1000;  // one page holds every task of a run
  std::chrono::seconds access_token_ttl{3600};
  core::Duration refresh_margin = std::chrono::seconds(60);
  bool start_worker = true;
  bool start_client = true;   // false: environment and worker only (a binary is the client)
  std::string server_binary;  // non-empty: `<binary> server` as a child process
  // Where the client's task events come from (`--source`).
  client::domain::TaskSource source = client::domain::TaskSource::changes;
};

class World {
 public:
  static Result<std::unique_ptr<World>> create(WorldOptions options = {});
  ~World();

  app::DemoEnvironment& env() { return *env_; }
  app::Worker& worker() { return *worker_; }
  core::EventLoop& loop() { return loop_; }
  app::TaskClient& stack() { return *stack_; }
  app::PaneSession& pane() { return *pane_; }
  const std::string& project_id() const { return project_id_; }

  // Runs `fn` on the client loop and returns its value.
  template <class Fn>
  auto on_loop(Fn&& fn) {
    using R = decltype(fn());
    if constexpr (std::is_void_v<R>) {
      loop_.run_sync(std::forward<Fn>(fn));
    } else {
      std::optional<R> out;
      loop_.run_sync([&] { out.emplace(fn()); });
      return std::move(*out);
    }
  }
  // Polls `pred` on the client loop every 50 ms until true or `timeout`.
  bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

  std::vector<std::string> lines() const;
  std::vector<json::object> objects(std::string_view type) const;

  // The selected project's tasks as (id, status, updated_at) — from the database, and from the
  // client's cached tasks page (nullopt while the page has no data).
  using Row = std::tuple<std::string, std::string, std::string>;
  std::vector<Row> db_tasks() const;
  std::optional<std::vector<Row>> cached_tasks();
  // Waits until the cache equals the database (bounded); returns the last difference, "" if equal.
  std::string wait_cache_equals_db(std::chrono::milliseconds timeout);

 private:
  World() = default;
  WorldOptions options_;
  std::unique_ptr<app::DemoEnvironment> env_;
  std::unique_ptr<app::Worker> worker_;
  core::EventLoop loop_;
  std::unique_ptr<app::TaskClient> stack_;
  std::unique_ptr<app::PaneSession> pane_;
  std::string project_id_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace rtsync::e2e
