// The seam between the server's HTTP listener and the services behind it (/rest/v1, /auth/v1):
// plain request and response values, no Beast types, so services are tested without sockets.
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

namespace rtsync::server::rest {

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

}  // namespace rtsync::server::rest
