// rtsync::client::Client — the one object a client application creates, as supabase-js's
// `createClient(url, key)`: it owns the HTTP client, the PostgREST client, the GoTrue auth client,
// the query cache, the realtime socket and the coordination layer (session, freshness, channel
// manager, provider, smart polling, reconnects), wired together from one ClientOptions.
//
//   ClientOptions ─┬─ HttpClient (rest_url or url; request_timeout, TLS) ─ RestClient, AuthClient
//                  ├─ QueryClient (options.query)
//                  ├─ RealtimeSocket (url/realtime/v1; max_frame_bytes, connect_timeout, TLS,
//                  │                  reconnect_backoff)
//                  └─ RealtimeSync (options.binding: which channel, changes, events, families)
//
// Settings the parts must agree on have one field: `max_frame_bytes` is both the transport's and
// the socket's message limit; UTF-8 is checked once, by the socket's parser (the transport's own
// check is turned off, as make_realtime_socket does); TLS settings go to HTTP and WebSocket alike.
//
// After an outage: the socket reconnects within 2 s of the network coming back (reconnect_backoff),
// and every HTTP response, like the socket opening, tells the session the network answered — a
// token refresh that failed during the outage runs at once (sync::AuthSession::network_answered),
// and the new token rejoins a channel refused for the expired one at once.
//
// A typical program (examples/quickstart.cpp, shown in README.md): create the client on the loop,
// sign in, observe a query made with `observe(key, PostgrestQuery)`, and `watch(scope)` so that the
// binding's realtime events invalidate (and refetch) it.
//
// Thread safety: one loop owns the client. create(), every method and the destructor run on the
// thread running the io_context and the scheduler (for core::EventLoop users: inside
// `loop.post(...)` / `loop.run_sync(...)`); callbacks run there too. Nothing here blocks.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "rtsync/client/query/key.hpp"
#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/query/query_observer.hpp"
#include "rtsync/client/rest/auth_client.hpp"
#include "rtsync/client/rest/postgrest_query.hpp"
#include "rtsync/client/rest/rest_client.hpp"
#include "rtsync/client/sync/binding.hpp"
#include "rtsync/client/sync/realtime_sync.hpp"
#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/client/transport/transport.hpp"
#include "rtsync/core/diagnostics.hpp"
#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/net/http_client.hpp"
#include "rtsync/protocol/message.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::core {
class EventLoop;
}  // namespace rtsync::core

namespace rtsync::client {

/// Everything a Client is built from. Only `url` and `anon_key` are required.
struct ClientOptions {
  /// The project's base URL: http(s)://host[:port] (https://<ref>.supabase.co).
  std::string url;
  /// The project's anon (publishable) key, sent as `apikey`.
  std::string anon_key;
  /// Base URL of /rest/v1 and /auth/v1 when they are served apart from realtime; empty: `url`.
  std::string rest_url;
  /// Realtime wire version.
  protocol::Vsn vsn = protocol::Vsn::v2;

  /// Limit of each HTTP request (REST and auth), from sending to the whole answer.
  core::Duration request_timeout = std::chrono::seconds(10);
  /// Limit of opening the realtime connection (resolve, TCP, TLS, WebSocket upgrade).
  core::Duration connect_timeout = std::chrono::seconds(10);
  /// Limit of each realtime push (channel joins, leaves, access-token pushes).
  core::Duration push_timeout = std::chrono::seconds(10);
  /// Largest realtime message, for the transport and the socket alike (at most 1 GiB).
  std::size_t max_frame_bytes = 8u << 20;
  /// Verify the server's TLS certificate and host name (HTTP and WebSocket).
  bool verify_peer = true;
  /// PEM file of extra trusted CAs, beside the system store (HTTP and WebSocket).
  std::string ca_file;
  /// How long before expiry the session refreshes its access token.
  core::Duration refresh_margin = std::chrono::seconds(60);
  /// The realtime socket's reconnect delays (SocketOptions::reconnect_backoff): full jitter,
  /// 0.5 s doubling to a cap of 2 s, so that the socket is back at most 2 s after an outage
  /// ends (docs/user-guide.md §2.6).
  core::ExponentialBackoff reconnect_backoff = SocketOptions{}.reconnect_backoff;

  /// What stays live: the channel per scope, its events and the query families they invalidate
  /// (sync/binding.hpp). The default binds nothing: watch() joins an empty channel.
  sync::SyncBinding binding;
  /// The query cache's defaults (retries, stale time, coalescing window).
  query::ClientConfig query;

  /// Optional: wraps (or replaces) the realtime transport before the socket takes it — fault
  /// injection, recording, an in-memory transport in tests. Called once, inside create().
  std::function<std::unique_ptr<Transport>(std::unique_ptr<Transport>)> wrap_transport;
};

/// The client entry point; see the file comment.
class Client {
 public:
  /// Builds every part from `options`; nothing connects yet. Errors: invalid_argument for a
  /// missing url or anon key, or a url that is not http(s)://host[:port].
  static Result<std::unique_ptr<Client>> create(core::EventLoop& loop, ClientOptions options);
  /// The same on any io_context and the scheduler driving it (tests use a ManualScheduler).
  static Result<std::unique_ptr<Client>> create(boost::asio::io_context& io,
                                                core::Scheduler& scheduler, ClientOptions options);
  /// Leaves the channel, closes the socket and cancels every request and timer; no callback runs
  /// afterwards.
  ~Client();
  /// Not copyable: the parts refer to each other.
  Client(const Client&) = delete;
  /// Not copyable.
  Client& operator=(const Client&) = delete;

  // ---- session -----------------------------------------------------------------------------

  /// Signs in through GoTrue's password grant; the session then refreshes itself through the
  /// refresh-token grant. `done` gets unauthorized when the credentials are refused, or the
  /// HTTP client's error.
  void sign_in_with_password(std::string email, std::string password,
                             std::function<void(Result<void>)> done);
  /// Signs in with a ready access token (its `sub` is the user id). With a refresh token the
  /// session refreshes before the token's `exp`; without one it is used until it is refused.
  /// Errors: invalid_argument for an empty token.
  Result<void> sign_in_with_token(std::string access_token, std::string refresh_token = {});
  /// Forgets the session (locally): REST and realtime fall back to the anon key.
  void sign_out();

  // ---- realtime ----------------------------------------------------------------------------

  /// Opens the realtime connection (no-op when connecting or open); it reconnects by itself.
  void connect();
  /// Follows `scope` live: joins the binding's channel for it (leaving the previous scope's),
  /// and from then on its events invalidate the binding's query families.
  void watch(std::string scope);
  /// Leaves the current scope's channel.
  void unwatch();
  /// True while the current scope's channel is subscribed.
  bool live() const;

  // ---- queries -----------------------------------------------------------------------------

  /// A query function running `query` (a PostgREST select) through rest(): the data is the
  /// answer's JSON (an array of rows, or one object for single()). Cancelling the fetch cancels
  /// the request.
  query::QueryFn select_fn(rest::PostgrestQuery query);
  /// An observer of `key` fetched by `select_fn(query)`. It fetches when it gets its first
  /// listener and refetches whenever the binding's events invalidate a family `key` starts with.
  query::QueryObserver observe(query::QueryKey key, rest::PostgrestQuery query);

  // ---- parts (loop-confined, valid for the client's lifetime) --------------------------------

  /// The scheduler the client runs on.
  core::Scheduler& scheduler() noexcept { return scheduler_; }
  /// The options the client was built from (url trailing slashes removed).
  const ClientOptions& options() const noexcept { return options_; }
  /// The HTTP client shared by REST and auth.
  net::HttpClient& http() noexcept { return *http_; }
  /// PostgREST calls with the session's token.
  rest::RestClient& rest() noexcept { return *rest_; }
  /// GoTrue calls (sign-up, sign-in, refresh, user).
  rest::AuthClient& auth() noexcept { return *auth_; }
  /// The query cache.
  query::QueryClient& queries() noexcept { return *cache_; }
  /// The realtime socket (channels of your own may be opened on it too).
  RealtimeSocket& realtime() noexcept { return *socket_; }
  /// The coordination layer: session, freshness, manager, provider, polling, reconnects.
  sync::RealtimeSync& sync() noexcept { return *sync_; }
  /// The coordination layer's event bus (the binding's bus events are emitted here).
  core::EventBus& bus() noexcept { return sync_->bus(); }
  /// The auth session (sign-in state, tokens, refresh).
  sync::AuthSession& session() noexcept { return sync_->auth(); }
  /// Diagnostics providers: the coordination layer's views plus "socket" and "cache"; add your
  /// own.
  core::Diagnostics& diagnostics() noexcept { return diagnostics_; }
  /// One JSON snapshot of every diagnostics provider.
  json::object snapshot() const {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return diagnostics_.snapshot();
  }

 private:
  Client(core::Scheduler& scheduler, ClientOptions options);

  core::Scheduler& scheduler_;
  ClientOptions options_;
  core::Diagnostics diagnostics_;
  std::unique_ptr<net::HttpClient> http_;
  std::unique_ptr<rest::RestClient> rest_;
  std::unique_ptr<rest::AuthClient> auth_;
  std::unique_ptr<query::QueryClient> cache_;
  std::unique_ptr<sync::MessageClock> clock_;
  std::unique_ptr<RealtimeSocket> socket_;
  std::unique_ptr<sync::RealtimeSync> sync_;
  std::vector<core::Subscription> subs_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// The `exp` claim of a JWT (not verified), as a wall time.
std::optional<core::WallTime> jwt_expiry(std::string_view token);
/// The `sub` claim of a JWT (not verified); empty when absent.
std::string jwt_subject(std::string_view token);

}  // namespace rtsync::client
