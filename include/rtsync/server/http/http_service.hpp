// The seam between the server's HTTP listener (http_server.hpp) and the services behind it
// (/rest/v1, /auth/v1, the realtime REST broadcast): plain request and response values, no Beast
// types, so services are tested without sockets. Services depend on this seam (target
// rtsync_server_http_service), never on the listener or on each other.
//
// Contract for the listener:
//   - route a request to the first service whose matches(path) is true;
//   - call handle() on the io_context thread the service was built for; the service calls `done`
//     exactly once, on that same thread (possibly before handle() returns);
//   - the response carries its own Content-Type; the listener adds Content-Length, Date and
//     Connection headers and omits the body for HEAD.
//
// Thread safety: services are confined to their io_context thread.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/core/strings.hpp"

namespace rtsync::server::http {

struct HttpRequest {
  std::string method;  // upper-case: GET, HEAD, POST, PATCH, DELETE, OPTIONS…
  std::string target;  // the path, still percent-encoded, without the query ("/rest/v1/tasks")
  std::string query;   // the raw query string without '?', still encoded
  // Header names lower-case; a header repeated in the request is joined with ", ".
  std::map<std::string, std::string, std::less<>> headers;
  std::string body;

  // The header's value, or "" when absent.
  std::string_view header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header with this name (case-insensitive), or "" when absent.
  std::string_view header(std::string_view name) const;
};

class HttpService {
 public:
  virtual ~HttpService();
  // True when this service answers `path` (the request target without its query).
  virtual bool matches(std::string_view path) const = 0;
  virtual void handle(HttpRequest request, std::function<void(HttpResponse)> done) = 0;
};

// ASCII case-insensitive equality (header names, auth schemes): core's, named here for the HTTP
// services that compare header names.
using core::iequals;

// A response with a body and its Content-Type, plus the CORS headers browsers need (the Supabase
// gateway's): the shape /rest/v1 and /auth/v1 answer with.
HttpResponse make_response(int status, std::string body,
                           std::string_view content_type = "application/json; charset=utf-8");
// The answer to a CORS preflight (OPTIONS).
HttpResponse preflight_response();

}  // namespace rtsync::server::http
