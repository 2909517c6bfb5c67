// libpq's message text as rtsync logs and reports it. Internal to src/server/pg.
#pragma once

#include <string>

namespace rtsync::server::pg::detail {

// A libpq message (error or notice) without its trailing newline and spaces; empty for null.
inline std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

}  // namespace rtsync::server::pg::detail
