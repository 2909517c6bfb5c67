// rtsync: one binary, several subcommands (docs/user-guide.md, docs/design.md §4).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "bench_command.hpp"
#include "client_commands.hpp"
#include "rtsync/core/log.hpp"
#include "server_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "rtsync — realtime data sync for native apps: a Supabase Realtime client, a query cache,\n"
      "and a Supabase-compatible realtime server fed by PostgreSQL logical decoding."};
  app.set_version_flag("--version", std::string("rtsync ") + RTSYNC_VERSION);
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "trace|debug|info|warn|error|off (env RTSYNC_LOG_LEVEL)");
  app.require_subcommand(0, 1);

  auto* demo = app.add_subcommand("demo", "Throwaway PostgreSQL + server + worker + task pane");
  auto* watch = app.add_subcommand("watch", "Terminal task pane against a server");
  auto* server = app.add_subcommand("server", "Supabase-compatible realtime server");
  rtsync::app::ServerCommandArgs server_args;
  rtsync::app::add_server_options(*server, server_args);
  auto* token = app.add_subcommand("token", "Mint a JWT for local use");
  auto* migrate = app.add_subcommand("migrate", "Apply the demo schema (idempotent)");
  auto* bench = app.add_subcommand(
      "bench", "Commit → client event and commit → fresh cache latency on a throwaway stack");
  rtsync::app::WatchArgs watch_args;
  rtsync::app::add_watch_options(*watch, watch_args);
  rtsync::app::DemoArgs demo_args;
  rtsync::app::add_demo_options(*demo, demo_args);
  rtsync::app::TokenArgs token_args;
  rtsync::app::add_token_options(*token, token_args);
  rtsync::app::MigrateArgs migrate_args;
  rtsync::app::add_migrate_options(*migrate, migrate_args);
  rtsync::app::BenchArgs bench_args;
  rtsync::app::add_bench_options(*bench, bench_args);

  CLI11_PARSE(app, argc, argv);
  if (!log_level.empty()) {
    spdlog::level::level_enum lvl{};
    if (!rtsync::log::parse_level(log_level, lvl)) {
      std::cerr << "rtsync: unknown log level '" << log_level << "'\n";
      return 2;
    }
    rtsync::log::set_level(lvl);
  }
  if (server->parsed()) return rtsync::app::run_server_command(server_args);
  if (watch->parsed()) return rtsync::app::run_watch_command(watch_args);
  if (demo->parsed()) return rtsync::app::run_demo_command(demo_args);
  if (token->parsed()) return rtsync::app::run_token_command(token_args);
  if (migrate->parsed()) return rtsync::app::run_migrate_command(migrate_args);
  if (bench->parsed()) return rtsync::app::run_bench_command(bench_args);
  std::cout << app.help();
  return 0;
}
