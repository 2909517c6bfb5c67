#include "rtsync/core/result.hpp"

namespace rtsync {

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_json:
      return "invalid_json";
    case Errc::invalid_frame:
      return "invalid_frame";
    case Errc::invalid_utf8:
      return "invalid_utf8";
    case Errc::truncated:
      return "truncated";
    case Errc::unknown_kind:
      return "unknown_kind";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::invalid_filter:
      return "invalid_filter";
    case Errc::too_large:
      return "too_large";
    case Errc::timeout:
      return "timeout";
    case Errc::closed:
      return "closed";
    case Errc::unauthorized:
      return "unauthorized";
    case Errc::not_found:
      return "not_found";
    case Errc::io:
      return "io";
    case Errc::protocol:
      return "protocol";
    case Errc::remote:
      return "remote";
    case Errc::cancelled:
      return "cancelled";
    case Errc::internal:
      return "internal";
  }
  return "unknown";
}

std::string Error::describe() const {
  std::string out(to_string(code));
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

}  // namespace rtsync
