// A chaos run's subscriber: the rtsync client library as an application uses it — client::Client
// with the task app's binding (client::domain::task_binding()), signed in with a password, watching
// one project — plus a recorder on its public hooks only:
//   - change events: the binding's bus events (realtime:task-new / realtime:task-update), each with
//     its record's id, project and params.chaos_seq;
//   - rejoins: the provider's state turning connected (RealtimeProvider::subscribe; published
//     before its gap fill starts the refetch), marked as a told gap when that gap fill ran
//     (RealtimeProvider::stats().gap_fills grew), else as resumed with the number of changes its
//     join announced for replay (RealtimeManager::on_phase); and every turn to disconnected;
//   - refetches: the watched query's own query function (a PostgREST select of the project's
//     tasks: id, project_id, params), with start and end times and the rows it returned;
//   - the final cache: that query's data.
// The watched query's key is ["tasks","chaos",<project>], so the binding's invalidations of the
// family ["tasks"] (events and gap fills) refetch it like any task list.
//
// Thread safety: start() and the destructor from a thread other than the loop's (they block on
// it); live(), history(), cache(), snapshot() and with_client() too (each runs on the loop and
// waits).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "checker.hpp"
#include "rtsync/core/event_loop.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::client {
class Client;
}  // namespace rtsync::client

namespace rtsync::chaos {

struct ChaosClientOptions {
  std::string url;  // http://127.0.0.1:<client proxy port>
  std::string anon_key;
  std::string email;
  std::string password;
  std::string user_id;
  std::string project;  // the scope watched
  std::chrono::seconds refresh_margin{60};
};

class ChaosClient {
 public:
  // Creates the client on `loop`, signs in, mounts the watched query, connects and watches the
  // project. Returns once signed in (bounded by `timeout`); joining happens on its own.
  static Result<std::unique_ptr<ChaosClient>> start(
      core::EventLoop& loop, ChaosClientOptions options,
      std::chrono::seconds timeout = std::chrono::seconds(20));
  ~ChaosClient();
  ChaosClient(const ChaosClient&) = delete;
  ChaosClient& operator=(const ChaosClient&) = delete;

  // The channel is SUBSCRIBED and the watched query has data.
  bool live();
  // What was recorded so far, with the watched query's current data as the final cache.
  ClientHistory history();
  // The watched query's data now (nullopt: none yet).
  std::optional<Rows> cache();
  // The client's diagnostics snapshot (for a failing run's report).
  std::string snapshot();
  // Runs `fn` with the client on its loop and waits (for tests that act on the client itself).
  void with_client(const std::function<void(client::Client&)>& fn);

 private:
  struct State;
  ChaosClient(core::EventLoop& loop, ChaosClientOptions options);
  core::EventLoop& loop_;
  ChaosClientOptions options_;
  std::unique_ptr<State> state_;
};

// Rows of a PostgREST answer (an array of {id, project_id, params}); nullopt when it is not one.
std::optional<Rows> rows_of(const json::value& data);

}  // namespace rtsync::chaos
