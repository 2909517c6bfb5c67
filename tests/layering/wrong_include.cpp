// Input of the layering check's own test (tests/layering/CMakeLists.txt), never compiled: a GoTrue
// source that includes /rest/v1's header although rtsync_server_gotrue does not link
// rtsync_server_rest, beside includes it may make.
#include "rtsync/core/result.hpp"
#include "rtsync/server/http/http_service.hpp"
#include "rtsync/server/rest/rest_service.hpp"
