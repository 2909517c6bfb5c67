#include "server_command.hpp"

#include <pthread.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "rtsync/core/log.hpp"
#include "rtsync/server/names.hpp"

namespace rtsync::app {

void add_server_options(CLI::App& sub, ServerCommandArgs& args) {
  auto& o = args.options;
  sub.add_option("--db", o.db, "PostgreSQL: libpq conninfo or postgres:// URL")
      ->envname("RTSYNC_DB")
      ->required();
  sub.add_option("--listen", o.listen, "host:port to listen on (port 0: any free port)")
      ->envname("RTSYNC_LISTEN")
      ->capture_default_str();
  sub.add_option("--jwt-secret", o.jwt_secret,
                 "HS256 secret the API keys and tokens are signed with (at least 32 bytes)")
      ->envname("RTSYNC_JWT_SECRET")
      ->required();
  sub.add_option("--jwks", o.jwks,
                 "JWKS file (path or file:path) or http(s) URL with RS256/ES256 public keys tokens "
                 "may be signed with; reloaded on schedule and on SIGHUP")
      ->envname("RTSYNC_JWKS");
  sub.add_option_function<std::int64_t>(
         "--jwks-reload-interval",
         [&o](std::int64_t s) { o.jwks_reload_interval = std::chrono::seconds(s); },
         "seconds between JWKS reloads (default 300; 0: only on SIGHUP)")
      ->envname("RTSYNC_JWKS_RELOAD_INTERVAL")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{86400}));
  sub.add_option("--auth-signing-key", args.auth_signing_key_file,
                 "PEM file of a P-256 private key: /auth/v1 signs access tokens ES256 with it and "
                 "serves its public key at /auth/v1/.well-known/jwks.json")
      ->envname("RTSYNC_AUTH_SIGNING_KEY");
  sub.add_option("--publishable-key", o.publishable_key,
                 "opaque publishable API key (not a JWT) accepted as role anon")
      ->envname("RTSYNC_PUBLISHABLE_KEY");
  sub.add_option("--secret-key", o.secret_key,
                 "opaque secret API key (not a JWT, at least 32 bytes) accepted as role "
                 "service_role")
      ->envname("RTSYNC_SECRET_KEY");
  sub.add_option("--slot", o.slot, "logical replication slot (persistent, pgoutput)")
      ->envname("RTSYNC_SLOT")
      ->capture_default_str();
  sub.add_option("--publication", o.publication, "publication whose tables are streamed")
      ->envname("RTSYNC_PUBLICATION")
      ->capture_default_str();
  sub.add_flag("--private-only", o.limits.private_only,
               "refuse public channels (PrivateOnly): only private channels, authorized by the "
               "policies on realtime.messages, may be joined")
      ->envname("RTSYNC_PRIVATE_ONLY");

  sub.add_option("--messages-publication", o.messages_publication,
                 "insert-only publication of realtime.messages streamed for Broadcast from "
                 "Database (\"\" turns it off)")
      ->envname("RTSYNC_MESSAGES_PUBLICATION")
      ->capture_default_str();
  sub.add_option_function<std::int64_t>(
         "--message-retention-hours",
         [&o](std::int64_t h) { o.message_retention = std::chrono::hours(h); },
         "hours Broadcast-from-Database messages are kept for replay before they are deleted "
         "(default 72; 0: never deleted)")
      ->envname("RTSYNC_MESSAGE_RETENTION_HOURS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{24 * 3650}));
  sub.add_option_function<std::int64_t>(
         "--resume-window-seconds",
         [&o](std::int64_t s) { o.resume_window = std::chrono::seconds(s); },
         "seconds of delivered changes kept for clients that resume (docs/resume.md; default 120)")
      ->envname("RTSYNC_RESUME_WINDOW_SECONDS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{86400}));
  sub.add_option(
         "--resume-window-bytes", o.resume_window_bytes,
         "pgoutput bytes of delivered changes kept for clients that resume (default 64 MiB)")
      ->envname("RTSYNC_RESUME_WINDOW_BYTES")
      ->capture_default_str();
  sub.add_flag("!--no-rest", o.rest,
               "do not serve /rest/v1 and /auth/v1 (they need the demo schema: rtsync migrate)");
  sub.add_option_function<std::int64_t>(
         "--access-token-ttl",
         [&o](std::int64_t s) { o.access_token_ttl = std::chrono::seconds(s); },
         "lifetime in seconds of the access tokens /auth/v1 issues (default 3600)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{86400 * 7}));
  sub.add_option("--max-connections", o.max_connections,
                 "open client connections at once (HTTP and websocket; 503 above; 0: no cap)")
      ->envname("RTSYNC_MAX_CONNECTIONS")
      ->capture_default_str();
  sub.add_option("--max-connections-per-address", o.max_connections_per_address,
                 "open client connections per client IP address (503 above; 0: no cap)")
      ->envname("RTSYNC_MAX_CONNECTIONS_PER_ADDRESS")
      ->capture_default_str();
  o.threads = std::max(1u, std::thread::hardware_concurrency());
  sub.add_option("--threads", o.threads,
                 "loop threads: the first runs the realtime hub, PostgreSQL and REST; the others "
                 "run websocket sockets (docs/scaling.md; default: the machine's cores)")
      ->envname("RTSYNC_THREADS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}))
      ->capture_default_str();
  sub.add_option("--cluster", o.cluster,
                 "redis://HOST:PORT: run as one node of a cluster sharing this Redis (one node "
                 "streams the slot, the others read its changes from Redis; docs/scaling.md)")
      ->envname("RTSYNC_CLUSTER");
  sub.add_option("--node-id", o.node_id,
                 "this node's name in the cluster (default: host name and process id)")
      ->envname("RTSYNC_NODE_ID");
  sub.add_option("--max-frame-bytes", o.limits.max_frame_bytes,
                 "largest websocket message accepted (close 1009 above)")
      ->capture_default_str();
  sub.add_option("--max-channels", o.limits.max_channels_per_connection, "channels per connection")
      ->capture_default_str();
  sub.add_option("--max-messages-per-second", o.limits.max_messages_per_second,
                 "client messages per second per connection")
      ->capture_default_str();
  sub.add_option("--max-broadcast-bytes", o.limits.max_broadcast_payload_bytes,
                 "largest broadcast payload")
      ->capture_default_str();
  sub.add_option("--max-queued-frames", o.limits.max_queued_frames,
                 "frames queued to one socket before it is closed as a slow consumer (1008)")
      ->capture_default_str();
  sub.add_option("--max-queued-bytes", o.limits.max_queued_bytes,
                 "bytes queued to one socket before it is closed as a slow consumer (1008)")
      ->capture_default_str();
  sub.add_option("--max-changes-per-transaction", o.limits.max_changes_per_transaction,
                 "changes of one table a subscriber receives from one transaction before one "
                 "\"Too many changes\" message replaces the rest (0: no limit)")
      ->envname("RTSYNC_MAX_CHANGES_PER_TRANSACTION")
      ->capture_default_str();
  sub.add_option_function<std::int64_t>(
         "--presence-diff-window-ms",
         [&o](std::int64_t ms) { o.limits.presence_diff_window = std::chrono::milliseconds(ms); },
         "presence changes of a topic go out once it has been quiet this long (default 50)")
      ->envname("RTSYNC_PRESENCE_DIFF_WINDOW_MS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{60'000}));
  sub.add_option_function<std::int64_t>(
         "--presence-diff-max-delay-ms",
         [&o](std::int64_t ms) {
           o.limits.presence_diff_max_delay = std::chrono::milliseconds(ms);
         },
         "…but at most this long after the first change, however busy the topic (default 500)")
      ->envname("RTSYNC_PRESENCE_DIFF_MAX_DELAY_MS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{60'000}));
  sub.add_option("--stream-memory-bytes", o.stream_memory_bytes,
                 "change-message bytes held for delivery before reading from PostgreSQL pauses")
      ->envname("RTSYNC_STREAM_MEMORY_BYTES")
      ->capture_default_str();
}

int run_server_command(const ServerCommandArgs& args) {
  // Block the shutdown signals before any thread starts so every thread inherits the mask and
  // the main thread alone receives them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::ServerOptions options = args.options;
  if (!args.auth_signing_key_file.empty()) {
    std::ifstream in(args.auth_signing_key_file, std::ios::binary);
    std::ostringstream pem;
    if (in.is_open()) pem << in.rdbuf();
    if (!in.is_open() || !in) {
      std::cerr << "rtsync server: cannot read --auth-signing-key " << args.auth_signing_key_file
                << "\n";
      return 1;
    }
    options.auth_signing_key_pem = pem.str();
  }
  server::Server srv(options);
  if (auto r = srv.start(); !r.ok()) {
    std::cerr << "rtsync server: " << r.error().message << "\n";
    return 1;
  }
  std::cout << "rtsync server listening on " << srv.http_url() << std::endl;

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    // SIGHUP: rotate keys without a restart. Without --jwks there is nothing to read again.
    if (args.options.jwks.empty()) {
      log::get(rtsync::server::loggers::kServer)
          ->info("SIGHUP: no --jwks configured, nothing to reload");
    } else if (auto r = srv.reload_keys(); r.ok()) {
      log::get(rtsync::server::loggers::kServer)->info("SIGHUP: JWT keys reloaded");
    }  // a failed reload has logged its error and kept the previous keys
  }
  log::get(rtsync::server::loggers::kServer)->info("signal {}: shutting down", sig);
  srv.stop();
  std::cout << "rtsync server stopped" << std::endl;
  return 0;
}

}  // namespace rtsync::app
