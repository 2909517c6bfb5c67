#include "rtsync/server/http/request_framing.hpp"

#include <optional>
#include <string>

#include "rtsync/core/strings.hpp"

namespace rtsync::server::http {

namespace {

using core::iequals;

// Calls fn(element) for each comma-separated element, trimmed; false as soon as fn is.
template <class Fn>
bool each_element(std::string_view list, Fn fn) {
  for (;;) {
    const auto comma = list.find(',');
    if (!fn(core::trim_blanks(list.substr(0, comma)))) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

// Quoted into a reply: printable ASCII only, and short.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40))
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 40) out += "...";
  return out;
}

Error bad(std::string message) {
  return make_error(Errc::protocol, std::move(message));
}

}  // namespace

Result<Framing> request_framing(unsigned version, std::span<const HeaderField> fields) {
  bool has_length = false;
  std::uint64_t length = 0;
  std::size_t codings = 0;  // transfer codings listed, over every Transfer-Encoding field
  std::optional<Error> error;

  for (const auto& f : fields) {
    if (iequals(f.name, "content-length")) {
      const bool ok = each_element(f.value, [&](std::string_view e) {
        if (e.empty()) return false;
        std::uint64_t v = 0;
        for (char c : e) {
          if (c < '0' || c > '9') return false;
          const auto digit = static_cast<std::uint64_t>(c - '0');
          if (v > (UINT64_MAX - digit) / 10) return false;
          v = v * 10 + digit;
        }
        if (has_length && v != length) {
          error = bad("conflicting Content-Length values");
          return false;
        }
        has_length = true;
        length = v;
        return true;
      });
      if (!ok) return error ? *error : bad("invalid Content-Length '" + shown(f.value) + "'");
    } else if (iequals(f.name, "transfer-encoding")) {
      const bool ok = each_element(f.value, [&](std::string_view e) {
        ++codings;
        if (!iequals(e, "chunked")) {
          error = bad(e.empty() ? std::string("empty transfer coding")
                                : "unsupported transfer coding '" + shown(e) + "'");
          return false;
        }
        return true;
      });
      if (!ok) return *error;
    }
  }

  if (codings > 0) {
    // A message with a Transfer-Encoding is framed by it alone, and `chunked` must be its one and
    // final coding; anything else leaves the body's end unknown (RFC 9112 section 6.3).
    if (codings > 1) return bad("chunked must be the only transfer coding");
    if (version < 11) return bad("Transfer-Encoding in an HTTP/1.0 request");
    if (has_length) return bad("both Transfer-Encoding and Content-Length");
    return Framing{BodyFraming::chunked, 0};
  }
  if (has_length) return Framing{BodyFraming::length, length};
  return Framing{};
}

}  // namespace rtsync::server::http
