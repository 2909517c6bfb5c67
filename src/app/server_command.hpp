// `rtsync server`: the Supabase-compatible realtime server (docs/design.md §3).
//
//   rtsync server --db <libpq conninfo or URL> --listen 127.0.0.1:4000 --jwt-secret <secret>
//   (env RTSYNC_DB, RTSYNC_LISTEN, RTSYNC_JWT_SECRET, RTSYNC_SLOT, RTSYNC_PUBLICATION)
//
// Wiring in main.cpp:
//   auto* server = app.add_subcommand("server", "…");
//   rtsync::app::ServerCommandArgs server_args;
//   rtsync::app::add_server_options(*server, server_args);
//   … CLI11_PARSE …
//   if (server->parsed()) return rtsync::app::run_server_command(server_args);
#pragma once

#include <string>

#include "rtsync/server/server.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace rtsync::app {

struct ServerCommandArgs {
  server::ServerOptions options;
  std::string auth_signing_key_file;  // --auth-signing-key: read into options at start
};

// Declares the subcommand's options on `sub` (the `server` subcommand).
void add_server_options(CLI::App& sub, ServerCommandArgs& args);

// Runs until SIGINT/SIGTERM (SIGHUP reloads the JWKS), then shuts down cleanly (websockets closed
// with 1001, slot position confirmed). Prints "rtsync server listening on <url>" on stdout once
// bound. Returns the exit code: 0 after a clean shutdown, 1 when start-up failed.
int run_server_command(const ServerCommandArgs& args);

}  // namespace rtsync::app
