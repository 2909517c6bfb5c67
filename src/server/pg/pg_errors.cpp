#include "rtsync/server/pg/pg_errors.hpp"

#include "rtsync/server/pg/connection.hpp"

namespace rtsync::server::pg {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

void strip_severity(std::string& line) {
  for (std::string_view sev : {"ERROR:  ", "FATAL:  ", "PANIC:  "}) {
    if (starts_with(line, sev)) {
      line.erase(0, sev.size());
      return;
    }
  }
}

}  // namespace

PgErrorFields split_pg_error(const Error& error) {
  PgErrorFields out;
  std::string_view text = error.message;
  const std::string_view state = sqlstate_of(error);
  if (!state.empty()) {
    out.sqlstate = std::string(state);
    text.remove_prefix(6);
  }
  std::string* current = &out.message;
  std::size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    start = end + 1;
    if (first) {
      strip_severity(line);
      out.message = line;
      first = false;
      continue;
    }
    if (starts_with(line, "DETAIL:  ")) {
      out.detail = line.substr(9);
      current = &*out.detail;
    } else if (starts_with(line, "HINT:  ")) {
      out.hint = line.substr(7);
      current = &*out.hint;
    } else if (starts_with(line, "CONTEXT:  ") || starts_with(line, "LINE ") ||
               starts_with(line, "QUERY:  ")) {
      current = nullptr;  // internal: not part of the answer
    } else if (current && !line.empty()) {
      *current += "\n" + line;
    }
    if (end == text.size()) break;
  }
  return out;
}

int status_for_sqlstate(std::string_view s, bool anonymous) {
  if (s.size() != 5) return 500;
  const std::string_view cls = s.substr(0, 2);
  if (cls == "08") return 503;
  if (cls == "09") return 500;
  if (cls == "0L" || cls == "0P") return 403;
  if (s == "23503" || s == "23505") return 409;
  if (s == "25006") return 405;
  if (cls == "25") return 500;
  if (cls == "28") return 403;
  if (cls == "2D" || cls == "38" || cls == "39" || cls == "3B" || cls == "40") return 500;
  if (cls == "53") return 503;
  if (cls == "54" || cls == "55" || cls == "57" || cls == "58" || cls == "F0" || cls == "HV" ||
      cls == "XX")
    return 500;
  if (s == "P0001") return 400;
  if (cls == "P0") return 500;
  if (s == "42883") return 404;
  if (s == "42P01") return 404;
  if (s == "42501") return anonymous ? 401 : 403;
  return 400;
}

}  // namespace rtsync::server::pg
