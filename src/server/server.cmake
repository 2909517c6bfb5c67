# The aggregate server library `rtsync_server` (everything `rtsync server` needs) and the Server
# facade (include/rtsync/server/server.hpp). Included by src/server/CMakeLists.txt after the
# parts. While the PostgreSQL parts are not there yet, rtsync_server is an INTERFACE library over
# the parts that are.
set(_rtsync_server_parts)
foreach(part changes pg cdc auth realtime http_service http rest gotrue migrate)
  if(TARGET rtsync_server_${part})
    list(APPEND _rtsync_server_parts rtsync_server_${part})
  endif()
endforeach()

if(TARGET rtsync_server_pg AND TARGET rtsync_server_cdc AND TARGET rtsync_server_http)
  add_library(rtsync_server STATIC ${CMAKE_CURRENT_LIST_DIR}/server.cpp)
  target_link_libraries(rtsync_server PUBLIC ${_rtsync_server_parts} PRIVATE rtsync_flags)
else()
  add_library(rtsync_server INTERFACE)
  target_link_libraries(rtsync_server INTERFACE ${_rtsync_server_parts})
endif()
add_library(rtsync::server ALIAS rtsync_server)
