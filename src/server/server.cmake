# The aggregate server library `rtsync_server` (everything `rtsync server` needs) and the Server
# facade (include/rtsync/server/server.hpp). Included by src/server/CMakeLists.txt after the
# parts.
add_library(rtsync_server STATIC ${CMAKE_CURRENT_LIST_DIR}/server.cpp)
target_link_libraries(rtsync_server
  PUBLIC rtsync_server_changes rtsync_server_pg rtsync_server_cdc rtsync_server_auth
         rtsync_server_realtime rtsync_server_http_service rtsync_server_http rtsync_server_rest
         rtsync_server_gotrue rtsync_server_migrate
         rtsync_server_cluster
  PRIVATE rtsync_net rtsync_flags)
add_library(rtsync::server ALIAS rtsync_server)
