// PostgreSQL errors as PostgREST reports them: the SQLSTATE as `code`, PostgreSQL's message,
// DETAIL and HINT, and PostgREST's status for the SQLSTATE (pg::split_pg_error and
// pg::status_for_sqlstate, rtsync/server/pg/pg_errors.hpp). Lost connections answer 503.
//
// Thread safety: pure functions.
#pragma once

#include "rtsync/core/result.hpp"
#include "rtsync/server/rest/api_request.hpp"

namespace rtsync::server::rest {

// `anonymous`: the request ran as the anon role (insufficient privilege is then 401, not 403).
ApiError api_error_from_pg(const Error& error, bool anonymous);

}  // namespace rtsync::server::rest
