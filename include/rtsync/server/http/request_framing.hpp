// How long an HTTP/1.x request body is, decided from the request head alone (RFC 9112 section 6),
// strictly enough that no intermediary can read the same bytes as a different request.
//
//   std::vector<HeaderField> fields = {{"Host", "x"}, {"Content-Length", "5"}};
//   auto f = request_framing(11, fields);   // Framing{BodyFraming::length, 5}
//
// Accepted:
//   - no Transfer-Encoding and no Content-Length: no body;
//   - Content-Length: one or more fields, each a comma list of decimal digits, all the same value;
//   - Transfer-Encoding: exactly the one coding `chunked` (any case, optional whitespace, one or
//     several fields that together list it once), on HTTP/1.1 and without Content-Length.
// Everything else is an Errc::protocol error: a coding other than `chunked` or `chunked` not alone
// (`gzip`, `xchunked`, `chunked, identity`, `gzip, chunked`), Transfer-Encoding on HTTP/1.0, both
// Transfer-Encoding and Content-Length, differing or malformed Content-Length values. The server
// answers such a request 400 and closes the connection (RFC 9112 sections 6.1 and 6.3) instead
// of guessing where the next request starts.
//
// Sans-IO and pure: used by the HTTP server (src/server/http/http_server.cpp) on every request
// head, and by the fuzz target tests/fuzz/fuzz_http_request.cpp. Thread safety: none needed.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "rtsync/core/result.hpp"

namespace rtsync::server::http {

struct HeaderField {
  std::string_view name;  // as received; compared case-insensitively
  std::string_view value;
};

enum class BodyFraming { none, length, chunked };

struct Framing {
  BodyFraming kind = BodyFraming::none;
  std::uint64_t length = 0;  // for BodyFraming::length
  bool operator==(const Framing&) const = default;
};

// `version`: major * 10 + minor (10 for HTTP/1.0, 11 for HTTP/1.1). The error message is a short
// reason fit for the 400 reply, e.g. "unsupported transfer coding 'gzip'".
Result<Framing> request_framing(unsigned version, std::span<const HeaderField> fields);

}  // namespace rtsync::server::http
