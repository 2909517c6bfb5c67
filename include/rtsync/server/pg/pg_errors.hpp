// PostgreSQL errors as values the services answer with: an error from rtsync::server::pg
// ("<SQLSTATE> ERROR:  msg\nDETAIL:  …\nHINT:  …") split into its SQLSTATE, message, DETAIL and
// HINT, and the HTTP status PostgREST gives a SQLSTATE class (23505 → 409, 42501 → 401 for anon
// or 403 for a signed-in role, 42P01 → 404, 22xxx → 400, 53xxx → 503…).
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "rtsync/core/result.hpp"

namespace rtsync::server::pg {

struct PgErrorFields {
  std::string sqlstate;  // empty when the error did not come from the server
  std::string message;
  std::optional<std::string> detail;
  std::optional<std::string> hint;
};

// Splits an error from rtsync::server::pg; CONTEXT, LINE and QUERY lines are dropped.
PgErrorFields split_pg_error(const Error& error);

// `anonymous`: the request ran as the anon role (insufficient privilege is then 401, not 403).
int status_for_sqlstate(std::string_view sqlstate, bool anonymous);

}  // namespace rtsync::server::pg
