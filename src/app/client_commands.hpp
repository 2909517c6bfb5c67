// The client-side subcommands of `rtsync`: watch, demo, token, migrate.
//
//   rtsync watch --url <http(s)://…> --anon-key <key> (--email E --password P | --token JWT)
//                [--project <id>] [--json] [--page-size N] [--duration S] [--no-presence]
//                [--viewer-name NAME] …
//   rtsync demo  [--no-tui] [--duration S] [--rate N] [--seed N] [--access-token-ttl S]
//                [--no-viewer] …
//   rtsync token --secret <secret> [--role authenticated] [--sub <uuid>] [--ttl S]
//   rtsync migrate --db <conninfo>
//
// Wiring in main.cpp:
//   rtsync::app::WatchArgs watch_args;   rtsync::app::add_watch_options(*watch, watch_args);
//   rtsync::app::DemoArgs demo_args;     rtsync::app::add_demo_options(*demo, demo_args);
//   auto* token = app.add_subcommand("token", "Mint a JWT for local use");
//   rtsync::app::TokenArgs token_args;   rtsync::app::add_token_options(*token, token_args);
//   auto* migrate = app.add_subcommand("migrate", "Apply the demo schema (db/*.sql)");
//   rtsync::app::MigrateArgs migrate_args; rtsync::app::add_migrate_options(*migrate,
//   migrate_args); … CLI11_PARSE … if (watch->parsed()) return
//   rtsync::app::run_watch_command(watch_args); if (demo->parsed()) return
//   rtsync::app::run_demo_command(demo_args); if (token->parsed()) return
//   rtsync::app::run_token_command(token_args); if (migrate->parsed()) return
//   rtsync::app::run_migrate_command(migrate_args);
//
// Exit codes: 0 after a clean stop (q, Ctrl-C, SIGTERM, --duration), 1 when set-up failed (the
// reason on stderr), 2 for bad arguments.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace rtsync::app {

struct WatchArgs {
  std::string url;
  std::string rest_url;
  std::string anon_key;
  std::string email;
  std::string password;
  std::string token;
  std::string refresh_token;
  std::string project;
  bool json = false;
  int page_size = 20;
  std::string vsn = "2";
  std::string source = "changes";  // changes | broadcast (client::domain::TaskSource)
  double duration = 0;             // seconds; 0 = until stopped
  double drop_seconds = 5;
  int coalesce_ms = 10;  // the cache's burst-coalescing window
  std::string log_file;
  bool insecure = false;
  std::string ca_file;
  bool presence = true;     // track this viewer on the project channel (--no-presence: off)
  std::string viewer_name;  // the name the others see (default: the email's part before '@')
};

struct DemoArgs {
  bool no_tui = false;
  double duration = 0;
  double rate = 2.0;
  std::uint64_t seed = 0;  // 0: random
  int page_size = 20;
  int access_token_ttl = 3600;  // seconds
  double drop_seconds = 5;
  int coalesce_ms = 10;
  int nodes = 1;  // more than 1: a cluster of this many nodes on a throwaway Redis
  std::string log_file;
  bool viewer = true;  // a second, headless viewer on the first project (--no-viewer: none)

  std::string source = "changes";  // changes | broadcast (client::domain::TaskSource)
};

struct TokenArgs {
  std::string secret;
  std::string role = "authenticated";
  std::string sub;
  std::string email;
  std::int64_t ttl = 3600;
};

struct MigrateArgs {
  std::string db;
};

void add_watch_options(CLI::App& sub, WatchArgs& args);
int run_watch_command(const WatchArgs& args);

void add_demo_options(CLI::App& sub, DemoArgs& args);
int run_demo_command(const DemoArgs& args);

void add_token_options(CLI::App& sub, TokenArgs& args);
int run_token_command(const TokenArgs& args);

void add_migrate_options(CLI::App& sub, MigrateArgs& args);
int run_migrate_command(const MigrateArgs& args);

}  // namespace rtsync::app
