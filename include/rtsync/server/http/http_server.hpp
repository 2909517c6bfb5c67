// The server's HTTP front: one listener on the server loop serving
//   GET  /realtime/v1/websocket, /socket/websocket   websocket upgrade (Supabase Realtime)
//   POST /realtime/v1/api/broadcast, /api/broadcast  REST batch broadcast (202), served by
//   POST …/api/broadcast/<topic>/events/<event>      realtime::BroadcastEndpoint (realtime layer)
//   GET  /health                                     200 once healthy() (else 503)
//   GET  /metrics                                    Prometheus text
// Every request head's framing is checked first (rtsync/server/http/request_framing.hpp): a
// Transfer-Encoding other than exactly `chunked`, both Transfer-Encoding and Content-Length, or
// conflicting Content-Length values are answered 400 and the connection is closed, so bytes after
// such a head are never read as another request. A connection the server closes after its last
// response drains what the client still sends (bounded) first, so the response is not lost to a
// TCP reset.
// Upgrades are authenticated before the handshake: a missing or bad `apikey` (query parameter,
// `apikey` or `x-api-key` header) is answered 401 {"error": "<reason>"} and no websocket opens.
//
// Each websocket session has a bounded outbound queue of shared frames (realtime::OutFrame) and
// one write in flight; a session whose queue overflows is closed with 1008; a message above
// RealtimeLimits::max_frame_bytes closes it with 1009. After a server-side close frame the
// session keeps reading and discarding until the client closes (bounded), so a client still
// sending gets the close frame rather than a TCP reset.
//
// Beast stays behind this pimpl (one translation unit). Thread safety: construct, listen(),
// shutdown() and destroy on the loop thread that runs `io`; the Hub is used on that thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/server/http/http_service.hpp"
#include "rtsync/server/realtime/hub.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::http {

// Caps on open client connections, HTTP and websocket alike; 0 = no cap. A connection accepted
// beyond either is answered at once 503 {"error": "...", "reason": "max_connections" |
// "max_connections_per_address"} with Connection: close (an upgrade request never reaches the
// websocket handshake), counted in rtsync_connection_refusals_total and logged (at most one line
// a second, with the number of refusals since the last).
struct ConnectionLimits {
  std::size_t max_connections = 10'000;
  std::size_t max_connections_per_address = 1'000;  // per client IP address
};

struct HttpHooks {
  // GET /health answers 200 only while this returns true (default: always).
  std::function<bool()> healthy;
  // Fields added to the /health body beside "status" (a cluster node's role and Redis link).
  std::function<void(json::object&)> health_fields;
  // Other HTTP APIs on the same listener (/rest/v1, /auth/v1): a request no built-in route takes
  // goes to the first service whose matches(path) is true (404 when none does).
  std::vector<std::shared_ptr<http::HttpService>> services;
  ConnectionLimits connection_limits;
  // Further I/O loops for websocket sockets (docs/scaling.md §2): upgraded connections are
  // spread over the server's own loop and these, round robin; the realtime side of every session
  // stays on the server's loop. Each must be run by its own thread, and be stopped (not yet
  // destroyed) before the HttpServer is destroyed.
  std::vector<boost::asio::io_context*> ws_loops;
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, realtime::Hub& hub, HttpHooks hooks = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Port 0 picks a free port; the bound port is returned.
  // Errors: Errc::invalid_argument (bad address), Errc::io (bind/listen failed).
  Result<std::uint16_t> listen(std::string_view host, std::uint16_t port);
  std::uint16_t port() const noexcept;

  // Stops accepting and closes every websocket with 1001 (going away) and every HTTP connection.
  // Sessions finish asynchronously; sessions() reaches 0 once they are gone.
  void shutdown();
  // Closes every socket at once, without handshakes (after shutdown() took too long).
  void abort();
  std::size_t sessions() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::http
