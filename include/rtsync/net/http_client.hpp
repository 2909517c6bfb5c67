// A small HTTP/1.1 client (the client's REST and auth endpoints, the server's JWKS fetch):
// keep-alive connections to one origin (http:// or https://), pooled, with a per-request deadline
// on the injected scheduler.
//
// Requests wait in a FIFO queue for a free connection; at most `max_connections` are open. A
// connection goes back to the pool after a response that allows keep-alive. When a reused
// connection turns out to be closed by the server (the write fails or the connection ends before
// any response byte), the request is retried once on a new connection — curl's and browsers' rule.
//
// Errors (the callback's Error): Errc::io (resolve/connect/TLS/read/write failure), Errc::timeout
// (no complete response within `timeout`), Errc::cancelled (cancel()), Errc::too_large (response
// above `max_response_bytes`). HTTP error statuses are responses, not errors.
//
// TLS: certificates are verified against the system store (plus `ca_file`) and the host name (SNI
// is sent), unless verify_peer is false.
//
// Thread safety: construct, call and destroy on the thread running the io_context; callbacks run
// there. The scheduler must run on the same io_context (core::AsioScheduler). Destroying the client
// drops pending callbacks without calling them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/core/subscription.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::net {

// HTTP header fields, in order; names compare case-insensitively where looked up.
using Headers = std::vector<std::pair<std::string, std::string>>;

// A complete HTTP response (any status).
struct HttpResult {
  int status = 0;    // the status code
  Headers headers;   // the response's header fields
  std::string body;  // the body, decoded from chunked transfer when needed

  // The first header with this name (case-insensitive), or "" when absent.
  std::string_view header(std::string_view name) const;
};

// Settings of an HttpClient.
struct HttpClientOptions {
  // "http://127.0.0.1:4000", "https://abc.supabase.co", optionally with a base path.
  std::string base_url;
  core::Duration timeout = std::chrono::seconds(10);  // per request, queueing included
  std::size_t max_connections = 4;                    // open connections at most
  bool verify_peer = true;  // verify TLS certificates and host name (off only for testing)
  std::string ca_file{};    // extra trusted CA certificates (PEM), beside the system store
  std::size_t max_response_bytes = 64 << 20;  // larger responses fail with too_large
  std::string user_agent = "rtsync";          // the User-Agent header
};

// The pooled HTTP/1.1 client (behaviour, errors and thread safety: the file comment).
class HttpClient {
 public:
  // Receives the response or the error, once, on the io_context thread.
  using Callback = std::function<void(Result<HttpResult>)>;

  // Errc::invalid_argument for a URL that is not http(s)://host[:port][/path].
  static Result<std::unique_ptr<HttpClient>> create(boost::asio::io_context& io,
                                                    core::Scheduler& scheduler,
                                                    HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `target` is appended to the base URL's path ("/rest/v1/tasks?select=*"). Host, User-Agent and
  // Content-Length are set here. Returns an id for cancel().
  std::uint64_t request(std::string method, std::string target, Headers headers, std::string body,
                        Callback done);
  // Ends a request with Errc::cancelled (its connection is closed if it was in flight). No-op for
  // an unknown or finished id.
  void cancel(std::uint64_t id);

  std::size_t open_connections() const noexcept;  // connections open now
  std::size_t queued() const noexcept;            // requests waiting for a connection
  // Connections opened so far (keep-alive makes this much smaller than the request count).
  std::uint64_t connects() const noexcept;

  // Called with the status of every complete response (any status: the origin answered), on the
  // io_context thread just before that request's callback, until the Subscription is removed.
  // Failures without a response (io, timeout, cancelled, too_large) are not reported. The client
  // uses it to learn that the network is back (sync::AuthSession::network_answered).
  core::Subscription on_response(std::function<void(int status)> listener);

 private:
  struct Impl;
  explicit HttpClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::net
