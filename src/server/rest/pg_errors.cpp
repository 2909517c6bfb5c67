#include "rtsync/server/rest/pg_errors.hpp"

#include "rtsync/server/pg/pg_errors.hpp"

namespace rtsync::server::rest {

ApiError api_error_from_pg(const Error& error, bool anonymous) {
  pg::PgErrorFields f = pg::split_pg_error(error);
  if (f.sqlstate.empty()) {
    return ApiError{503, "PGRST001", "Database client error. Retrying the connection.", f.message,
                    std::nullopt};
  }
  const int status = pg::status_for_sqlstate(f.sqlstate, anonymous);
  return ApiError{status, f.sqlstate, std::move(f.message), std::move(f.detail), std::move(f.hint)};
}

}  // namespace rtsync::server::rest
