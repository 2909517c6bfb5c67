// `rtsync bench`: how current the client's data stays, measured on this machine with nothing to
// set up. It starts the demo's environment (throwaway PostgreSQL, schema, server, a demo user
// with one project of `--tasks` tasks), the client stack with the task pane's queries, and a
// writer that commits `UPDATE tasks SET attempts = <seq>` at each rate. For every commit:
//   event — the postgres_changes UPDATE carrying that seq reached the client's EventBus;
//   fresh — the tasks page query delivered data holding that seq (event received, the six
//           families invalidated, the refetch done).
// Both from just before the UPDATE is sent (autocommit: commit included). The tasks-page fetch
// alone is measured first, as the floor of `fresh`.
//
//   rtsync bench [--rates 10,200] [--seconds 10] [--tasks 50] [--coalesce-ms 10] [--json]
//
// Output: a Markdown table on stdout (one row per rate), or with --json one object per rate.
// Exit codes: 0 when every commit arrived both ways, 1 when set-up failed or a commit was
// missing, 2 for bad arguments.
#pragma once

#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace rtsync::app {

struct BenchArgs {
  std::vector<int> rates{10, 200};  // commits per second, one run each
  double seconds = 10;              // per rate
  int tasks = 50;                   // rows on the page the client watches
  int coalesce_ms = 10;             // the cache's burst-coalescing window (the task pane's)
  bool json = false;
};

void add_bench_options(CLI::App& sub, BenchArgs& args);
int run_bench_command(const BenchArgs& args);

}  // namespace rtsync::app
