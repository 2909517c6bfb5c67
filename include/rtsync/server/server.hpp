// `rtsync server` as a library: a Supabase-compatible realtime server over PostgreSQL.
//
//   Server server(options);
//   if (auto r = server.start(); !r.ok()) …   // bootstrap, listen, start the change stream
//   server.port();                              // the bound port (options.listen may say :0)
//   server.wait_healthy(10s);                   // listening and the change stream running
//   …
//   server.stop();                              // 1001 to every socket, slot position confirmed
//
// start(): bootstraps the database idempotently (roles anon/authenticated/service_role, schema
// auth with auth.uid()/role()/jwt(), the realtime schema of Broadcast from Database, publications,
// logical slot with pgoutput), starts the server loop thread, binds the listener, then starts the
// change stream, the row authorizer and message retention (the private-channel checks,
// docs/private-channels.md, connect at their first use). While PostgreSQL is away the websockets
// stay up; the stream reconnects with backoff on its own, and private joins are refused with
// Supabase's database-unavailable reason.
//
// Threading: one loop thread (core::EventLoop) owns all server state: sessions, hub, router,
// change stream, authorizer. Public methods may be called from any other thread; they must not
// be called from the loop thread itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/server/realtime/limits.hpp"

namespace rtsync::core {
class EventLoop;
}  // namespace rtsync::core

namespace rtsync::server {

// The shortest JWT secret the server accepts, in bytes (Supabase's rule: an HS256 key shorter
// than the hash's 32 bytes is guessable offline from any token it signed).
inline constexpr std::size_t kMinJwtSecretBytes = 32;

struct ServerOptions {
  std::string db;                         // libpq conninfo or postgres:// URL
  std::string listen = "127.0.0.1:4000";  // host:port; port 0 picks a free one
  std::string jwt_secret;                 // at least kMinJwtSecretBytes bytes
  std::string slot = "rtsync_realtime";
  std::string publication = "supabase_realtime";
  // Broadcast from Database (docs/database-broadcast.md): the insert-only publication of
  // realtime.messages streamed with `publication` ("" turns the feature off), how long its
  // messages are kept (older ones are deleted every `message_retention_interval`; 0 keeps them
  // forever).
  std::string messages_publication = "supabase_realtime_messages_publication";
  std::chrono::seconds message_retention{72 * 3600};
  std::chrono::seconds message_retention_interval{600};
  // Resumable change streams (docs/resume.md): delivered transactions are kept this long, and at
  // most this many pgoutput bytes of them, for clients that rejoin with a position; the slot is
  // confirmed no further than the oldest kept, so a restart decodes the window again.
  // (Copied into limits.resume_window / resume_window_bytes.)
  std::chrono::seconds resume_window{120};
  std::size_t resume_window_bytes = 64u << 20;
  std::chrono::seconds jwt_leeway{2};
  // RS256/ES256 verification keys: a JWKS file (a path or `file:` + path) or an http(s) URL (a
  // hosted project's .../auth/v1/.well-known/jwks.json), read at start (an unreadable or
  // unreachable set fails start()), every `jwks_reload_interval` and on reload_keys(); a bad
  // reload keeps the last good keys. Empty: HS256 only. See docs/auth.md.
  std::string jwks;
  std::chrono::seconds jwks_reload_interval{300};
  // A PEM P-256 private key: /auth/v1 signs access tokens ES256 with it and publishes its public
  // half at /auth/v1/.well-known/jwks.json; the realtime and REST endpoints accept those tokens.
  // Empty: /auth/v1 signs HS256 with jwt_secret.
  std::string auth_signing_key_pem;
  // Opaque API keys (not JWTs) accepted wherever an apikey or token is: the publishable key
  // stands for role `anon`, the secret key (at least kMinJwtSecretBytes bytes) for `service_role`.
  std::string publishable_key;
  std::string secret_key;
  realtime::RealtimeLimits limits;
  bool bootstrap = true;  // run the idempotent bootstrap on start
  // Serve the PostgREST-style /rest/v1 and GoTrue-style /auth/v1 APIs on the same listener
  // (they need the demo schema: `rtsync migrate`).
  bool rest = true;
  std::chrono::seconds access_token_ttl{3600};  // lifetime of tokens /auth/v1 issues
  // PostgreSQL connections serving /rest/v1 and /auth/v1 (requests are pipelined on them).
  std::size_t rest_connections = 4;
  // Change messages (pgoutput bytes) the change stream holds for delivery before it stops
  // reading from PostgreSQL: bounds the memory a transaction in flight takes, whatever its size
  // (transactions are handed on in parts; decoded rows take a few times this).
  std::size_t stream_memory_bytes = 32u << 20;
  // Open client connections (HTTP and websocket) at once, overall and per client IP address;
  // beyond either a new connection is answered 503 (see http::ConnectionLimits). 0 = no cap.
  std::size_t max_connections = 10'000;
  std::size_t max_connections_per_address = 1'000;
  // Loop threads (docs/scaling.md §2). The server's own loop runs everything shared (the hub,
  // the change stream, authorizers, REST); threads − 1 more loops run websocket sockets — their
  // reads, framing and writes —, each upgraded connection going to the next loop in turn. 1: one
  // loop does all of it. 0: RTSYNC_SERVER_THREADS if set (the test suites run their servers with
  // 2 that way), else 1. `rtsync server --threads` defaults to the machine's cores.
  std::size_t threads = 0;
  // A cluster (docs/scaling.md §3): "redis://HOST:PORT" of the Redis every node of the cluster
  // uses; empty: a single node. Each node needs its own `node_id` (empty: host name and process
  // id). One node streams the slot at a time, the others read its changes from Redis.
  std::string cluster;
  std::string node_id;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Errors: Errc::invalid_argument (options; see validate_options), Errc::io (database unreachable
  // at start-up, bootstrap failed, bind failed).
  Result<void> start();
  // Graceful: stop accepting, close websockets with 1001, confirm the slot position, stop the
  // loop. Idempotent.
  void stop();

  std::uint16_t port() const noexcept;
  std::string http_url() const;  // "http://127.0.0.1:<port>"
  std::string ws_url() const;    // "ws://127.0.0.1:<port>/realtime/v1/websocket"
  // Listening and the change stream running (what GET /health reports).
  bool healthy() const;
  bool wait_healthy(std::chrono::milliseconds timeout) const;
  // The Prometheus text of /metrics.
  std::string metrics_text() const;

  // Reads the JWKS again now (the `rtsync server` SIGHUP). Thread-safe. A file: blocks until
  // done; errors: what the read gave (the previous keys stay). A URL: returns once the read has
  // begun; its outcome is logged (and counted in rtsync_jwks_reload_failures_total).
  // Errc::invalid_argument when no JWKS is configured or the server is not running.
  Result<void> reload_keys();

  // Runs Broadcast-from-Database retention now (it also runs on its schedule) and waits for it:
  // the number of realtime.messages rows it deleted. Thread-safe; for tools and tests.
  // Errors: the database's; Errc::invalid_argument when the server is not running or retention
  // is off (messages_publication empty).
  Result<std::size_t> run_message_retention();

  const ServerOptions& options() const noexcept { return options_; }
  core::EventLoop& loop();

 private:
  struct Impl;
  ServerOptions options_;
  std::unique_ptr<Impl> impl_;
};

// Checks `options` as Server::start() does before touching the database: a JWT secret of at
// least kMinJwtSecretBytes, a database, a valid listen address and slot name, and so on.
// Errc::invalid_argument with a message naming the option (the `rtsync server` flag).
Result<void> validate_options(const ServerOptions& options);

// "127.0.0.1:4000" / "[::1]:0" / ":4000" → host, port. Errc::invalid_argument.
Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text);

}  // namespace rtsync::server
