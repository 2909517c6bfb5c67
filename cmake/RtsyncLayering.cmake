# The build graph enforces the layering: every library target may include only the headers of the
# targets it links (directly, or through their PUBLIC dependencies) and its own. All headers share
# one include directory (include/), so the compiler alone cannot refuse a wrong include; this
# check does, as a build step every library target depends on: a source or header that includes a
# header of a layer its target does not link fails the build, naming the file, the header and the
# missing link.
#
# Which target owns which headers (longest prefix wins; headers under no prefix are not checked):
set(RTSYNC_HEADER_OWNERS
  "rtsync/core/=rtsync_core"
  "rtsync/protocol/=rtsync_protocol"
  "rtsync/net/=rtsync_net"
  "rtsync/client/transport/=rtsync_client_transport"
  "rtsync/client/query/=rtsync_client_query"
  "rtsync/client/sync/=rtsync_client_sync"
  "rtsync/client/rest/=rtsync_client_rest"
  "rtsync/client/domain/=rtsync_client_domain"
  "rtsync/server/change_feed.hpp=rtsync_server_changes"
  "rtsync/server/row_authorizer.hpp=rtsync_server_changes"
  "rtsync/server/channel_authorizer.hpp=rtsync_server_changes"

  "rtsync/server/message_store.hpp=rtsync_server_changes"
  "rtsync/server/pg/=rtsync_server_pg"
  "rtsync/server/cdc/=rtsync_server_cdc"
  "rtsync/server/auth/=rtsync_server_auth"
  "rtsync/server/http/http_service.hpp=rtsync_server_http_service"
  "rtsync/server/http/request_parsing.hpp=rtsync_server_http_service"
  "rtsync/server/http/request_framing.hpp=rtsync_server_http_framing"
  "rtsync/server/http/=rtsync_server_http"
  "rtsync/server/realtime/=rtsync_server_realtime"
  "rtsync/server/rest/=rtsync_server_rest"
  "rtsync/server/gotrue/=rtsync_server_gotrue"
  "rtsync/server/migrate/=rtsync_server_migrate"
  "rtsync/server/cluster/=rtsync_server_cluster"
  "rtsync/server/=rtsync_server"
)

# Every target `target` links: its own link libraries, then the PUBLIC/INTERFACE ones of those,
# transitively (aliases resolved; generator expressions, among them the $<LINK_ONLY:…> wrapping a
# dependency's PRIVATE links, skipped).
function(_rtsync_link_closure target out)
  set(seen "")
  get_target_property(todo ${target} LINK_LIBRARIES)
  if(NOT todo)
    set(todo "")
  endif()
  get_target_property(iface ${target} INTERFACE_LINK_LIBRARIES)
  if(iface)
    list(APPEND todo ${iface})
  endif()
  while(todo)
    list(POP_FRONT todo dep)
    # $<LINK_ONLY:…> is a dependency's PRIVATE link: not part of its usage requirements.
    if(dep MATCHES "^\\$<" OR NOT TARGET "${dep}")
      continue()
    endif()
    get_target_property(aliased ${dep} ALIASED_TARGET)
    if(aliased)
      set(dep ${aliased})
    endif()
    if(dep IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${dep})
    get_target_property(next ${dep} INTERFACE_LINK_LIBRARIES)
    if(next)
      list(APPEND todo ${next})
    endif()
  endwhile()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# Call once, after every library target is defined.
function(rtsync_enforce_layering)
  set(manifest ${PROJECT_BINARY_DIR}/rtsync_layering_manifest.cmake)
  set(content "set(RTSYNC_HEADER_OWNERS \"${RTSYNC_HEADER_OWNERS}\")\n")
  set(checked "")
  set(all_files "")
  set(owners "")
  foreach(entry IN LISTS RTSYNC_HEADER_OWNERS)
    string(REGEX REPLACE "^.*=" "" owner "${entry}")
    list(APPEND owners ${owner})
  endforeach()
  list(REMOVE_DUPLICATES owners)
  foreach(target IN LISTS owners)
    if(NOT TARGET ${target})
      continue()
    endif()
    get_target_property(type ${target} TYPE)
    get_target_property(dir ${target} SOURCE_DIR)
    set(files "")
    if(NOT type STREQUAL "INTERFACE_LIBRARY")
      get_target_property(sources ${target} SOURCES)
      foreach(src IN LISTS sources)
        if(src MATCHES "^\\$<")
          continue()
        endif()
        cmake_path(ABSOLUTE_PATH src BASE_DIRECTORY ${dir} NORMALIZE OUTPUT_VARIABLE abs)
        # Sources only: generated files (in the build tree, which may sit inside the source tree)
        # are not scanned.
        cmake_path(IS_PREFIX PROJECT_SOURCE_DIR "${abs}" NORMALIZE in_tree)
        cmake_path(IS_PREFIX PROJECT_BINARY_DIR "${abs}" NORMALIZE in_build)
        if(in_tree AND NOT in_build AND EXISTS "${abs}")
          list(APPEND files "${abs}")
        endif()
      endforeach()
      file(GLOB private_headers ${dir}/*.hpp)
      list(APPEND files ${private_headers})
    endif()
    # The public headers it owns.
    foreach(entry IN LISTS RTSYNC_HEADER_OWNERS)
      string(REGEX MATCH "^[^=]+" prefix "${entry}")
      string(REGEX REPLACE "^.*=" "" owner "${entry}")
      if(NOT owner STREQUAL target)
        continue()
      endif()
      if(prefix MATCHES "/$")
        file(GLOB headers ${PROJECT_SOURCE_DIR}/include/${prefix}*.hpp)
      else()
        set(headers ${PROJECT_SOURCE_DIR}/include/${prefix})
      endif()
      foreach(h IN LISTS headers)
        if(EXISTS "${h}")
          list(APPEND files "${h}")
        endif()
      endforeach()
    endforeach()
    list(REMOVE_DUPLICATES files)
    _rtsync_link_closure(${target} closure)
    string(APPEND content "set(RTSYNC_LAYER_${target}_FILES \"${files}\")\n")
    string(APPEND content "set(RTSYNC_LAYER_${target}_LINKS \"${target};${closure}\")\n")
    list(APPEND checked ${target})
    list(APPEND all_files ${files})
  endforeach()
  string(APPEND content "set(RTSYNC_LAYER_TARGETS \"${checked}\")\n")
  file(CONFIGURE OUTPUT ${manifest} CONTENT "${content}")
  list(REMOVE_DUPLICATES all_files)

  set(stamp ${PROJECT_BINARY_DIR}/rtsync_layering.stamp)
  add_custom_command(
    OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -DMANIFEST=${manifest} -DSTAMP=${stamp}
            -P ${PROJECT_SOURCE_DIR}/cmake/check_layering.cmake
    DEPENDS ${all_files} ${manifest} ${PROJECT_SOURCE_DIR}/cmake/check_layering.cmake
    COMMENT "Checking that every target includes only the layers it links"
    VERBATIM)
  add_custom_target(rtsync_layering ALL DEPENDS ${stamp})
  foreach(target IN LISTS checked)
    get_target_property(type ${target} TYPE)
    if(NOT type STREQUAL "INTERFACE_LIBRARY")
      add_dependencies(${target} rtsync_layering)
    endif()
  endforeach()
endfunction()
