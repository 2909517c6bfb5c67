// The server's request-head framing check (include/rtsync/server/http/request_framing.hpp) on
// arbitrary bytes, two ways:
//   - the bytes after the first as a request off the socket, through Beast's request parser (the
//     server's): whenever both Beast and request_framing accept a head, they frame its body the
//     same way (chunked, that length, or none) — the server relies on Beast reading the body as
//     request_framing decided;
//   - every "name: value" line of the input straight to request_framing, HTTP/1.0 or 1.1 by the
//     first byte: no crash, and the outcome does not depend on the order of the fields.
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "rtsync/server/http/request_framing.hpp"

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using rtsync::server::http::BodyFraming;
using rtsync::server::http::HeaderField;
using rtsync::server::http::request_framing;

void through_beast(std::string_view bytes) {
  bhttp::request_parser<bhttp::empty_body> parser;
  parser.eager(false);
  parser.header_limit(16 * 1024);
  beast::error_code ec;
  parser.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  if (ec || !parser.is_header_done()) return;
  const auto& head = parser.get();
  std::vector<HeaderField> fields;
  for (const auto& f : head)
    fields.push_back(HeaderField{f.name_string(), f.value()});
  const auto framing = request_framing(head.version(), fields);
  if (!framing.ok()) return;
  const auto beast_length = parser.content_length();
  switch (framing.value().kind) {
    case BodyFraming::chunked:
      if (!parser.chunked()) rtsync::fuzz::fail("chunked, Beast disagrees");
      break;
    case BodyFraming::length:
      if (parser.chunked() || !beast_length || *beast_length != framing.value().length)
        rtsync::fuzz::fail("length, Beast disagrees");
      break;
    case BodyFraming::none:
      if (parser.chunked() || beast_length) rtsync::fuzz::fail("no body, Beast disagrees");
      break;
  }
}

void raw_fields(unsigned version, std::string_view text) {
  std::vector<HeaderField> fields;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      fields.push_back(HeaderField{line.substr(0, colon), line.substr(colon + 1)});
    }
    if (eol == std::string_view::npos) break;
    text.remove_prefix(eol + 1);
  }
  const auto forward = request_framing(version, fields);
  std::vector<HeaderField> reversed(fields.rbegin(), fields.rend());
  const auto backward = request_framing(version, reversed);
  if (forward.ok() != backward.ok()) rtsync::fuzz::fail("field order changes acceptance");
  if (forward.ok() && !(forward.value() == backward.value()))
    rtsync::fuzz::fail("field order changes the framing");
  if (!forward.ok() && forward.error().message.empty())
    rtsync::fuzz::fail("refusal without reason");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  through_beast(rest);
  raw_fields(data[0] & 1 ? 11 : 10, rest);
  return 0;
}
