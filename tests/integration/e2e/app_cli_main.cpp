// A stand-in for `rtsync` while src/app/main.cpp does not yet call the client-side commands: the
// same subcommands and options, wired the way client_commands.hpp documents for main.cpp. The e2e
// tests run the real `rtsync` binary once it has them (see CMakeLists.txt).
#include <CLI/CLI.hpp>

#include "client_commands.hpp"
#include "rtsync/core/log.hpp"

int main(int argc, char** argv) {
  CLI::App app{"rtsync (e2e stand-in)"};
  std::string log_level;
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  app.require_subcommand(1);
  auto* demo = app.add_subcommand("demo", "Throwaway PostgreSQL + server + worker + task pane");
  auto* watch = app.add_subcommand("watch", "Terminal task pane against a server");
  auto* token = app.add_subcommand("token", "Mint a JWT for local use");
  auto* migrate = app.add_subcommand("migrate", "Apply the demo schema");
  rtsync::app::DemoArgs demo_args;
  rtsync::app::WatchArgs watch_args;
  rtsync::app::TokenArgs token_args;
  rtsync::app::MigrateArgs migrate_args;
  rtsync::app::add_demo_options(*demo, demo_args);
  rtsync::app::add_watch_options(*watch, watch_args);
  rtsync::app::add_token_options(*token, token_args);
  rtsync::app::add_migrate_options(*migrate, migrate_args);
  CLI11_PARSE(app, argc, argv);
  if (!log_level.empty()) {
    spdlog::level::level_enum lvl{};
    if (!rtsync::log::parse_level(log_level, lvl)) return 2;
    rtsync::log::set_level(lvl);
  }
  if (demo->parsed()) return rtsync::app::run_demo_command(demo_args);
  if (watch->parsed()) return rtsync::app::run_watch_command(watch_args);
  if (token->parsed()) return rtsync::app::run_token_command(token_args);
  if (migrate->parsed()) return rtsync::app::run_migrate_command(migrate_args);
  return 2;
}
