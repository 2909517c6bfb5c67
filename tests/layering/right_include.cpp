// Input of the layering check's own test (tests/layering/CMakeLists.txt), never compiled: only
// headers of layers rtsync_server_gotrue links.
#include "rtsync/core/result.hpp"
#include "rtsync/server/http/http_service.hpp"
#include "rtsync/server/pg/db_pool.hpp"
