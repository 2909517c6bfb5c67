// PostgreSQL errors as PostgREST reports them: the SQLSTATE as `code`, PostgreSQL's message,
// DETAIL and HINT, and PostgREST's status for the SQLSTATE class (23505 → 409, 42501 → 401 for
// anon or 403 for a signed-in role, 42P01 → 404, 22xxx → 400, 53xxx → 503…). Lost connections
// answer 503.
//
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include "rtsync/core/result.hpp"
#include "rtsync/server/rest/api_request.hpp"

namespace rtsync::server::rest {

struct PgErrorFields {
  std::string sqlstate;  // empty when the error did not come from the server
  std::string message;
  std::optional<std::string> detail;
  std::optional<std::string> hint;
};

// Splits an error from rtsync::server::pg ("<SQLSTATE> ERROR:  msg\nDETAIL:  …\nHINT:  …").
PgErrorFields split_pg_error(const Error& error);

int status_for_sqlstate(std::string_view sqlstate, bool anonymous);

// `anonymous`: the request ran as the anon role (insufficient privilege is then 401, not 403).
ApiError api_error_from_pg(const Error& error, bool anonymous);

}  // namespace rtsync::server::rest
