# Install rules, the CMake package (find_package(rtsync CONFIG)), the pkg-config files and the
# Debian package (cpack -G DEB). Included last by the top-level CMakeLists.txt, once every target
# exists. The per-layer CMakeLists.txt files only declare their targets; what gets installed is
# decided here:
#
#   - the libraries: every target rtsync::client (and, with RTSYNC_BUILD_APP, rtsync::server)
#     links, found by walking their link closure, so a new part of a layer is installed without
#     editing this file. Test support never appears in that closure; a target whose name says
#     "test" is rejected below, so it can not be installed by accident.
#   - the public headers under include/rtsync of the installed layers;
#   - the `rtsync` binary, the systemd unit for `rtsync server` and its example environment file.
#
# Exported names drop the rtsync_ prefix: rtsync_client_transport is rtsync::client_transport,
# the same names the build tree's ALIAS targets use.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RTSYNC_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/rtsync)

# _rtsync_link_closure(<out> <target>…): the non-imported targets <target>… link, transitively
# (PUBLIC, PRIVATE and INTERFACE), depth first with dependencies before their users.
function(_rtsync_link_closure out)
  set(order)
  foreach(root IN LISTS ARGN)
    _rtsync_visit(${root})
  endforeach()
  set(${out} ${order} PARENT_SCOPE)
endfunction()

macro(_rtsync_visit item)
  set(_t "${item}")
  if(_t MATCHES "^\\$<LINK_ONLY:(.+)>$")
    set(_t "${CMAKE_MATCH_1}")
  endif()
  if(TARGET "${_t}")
    get_target_property(_aliased ${_t} ALIASED_TARGET)
    if(_aliased)
      set(_t ${_aliased})
    endif()
    get_target_property(_imported ${_t} IMPORTED)
    if(NOT _imported AND NOT _t IN_LIST order AND NOT _t IN_LIST _rtsync_stack)
      list(APPEND _rtsync_stack ${_t})
      get_target_property(_libs ${_t} LINK_LIBRARIES)
      get_target_property(_ilibs ${_t} INTERFACE_LINK_LIBRARIES)
      set(_deps)
      foreach(_l IN LISTS _libs _ilibs)
        if(_l AND NOT _l MATCHES "NOTFOUND$")
          list(APPEND _deps "${_l}")
        endif()
      endforeach()
      # Recursion through a function keeps each level's list of dependencies apart.
      _rtsync_visit_all("${_deps}")
      list(APPEND order ${_t})
      list(REMOVE_ITEM _rtsync_stack ${_t})
    endif()
  endif()
endmacro()

function(_rtsync_visit_all deps)
  foreach(d IN LISTS deps)
    _rtsync_visit("${d}")
  endforeach()
  set(order ${order} PARENT_SCOPE)
  set(_rtsync_stack ${_rtsync_stack} PARENT_SCOPE)
endfunction()

set(_rtsync_roots rtsync_client)
if(RTSYNC_BUILD_APP)
  list(APPEND _rtsync_roots rtsync_server)
endif()
_rtsync_link_closure(_rtsync_installed ${_rtsync_roots})
foreach(t IN LISTS _rtsync_installed)
  if(t MATCHES "test")
    message(FATAL_ERROR "rtsync: production target links test support (${t}); it must not be "
                        "installed. Link it from the tests only.")
  endif()
  string(REGEX REPLACE "^rtsync_" "" _export_name ${t})
  set_target_properties(${t} PROPERTIES EXPORT_NAME ${_export_name})
endforeach()

install(TARGETS ${_rtsync_installed}
  EXPORT rtsyncTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# Public headers of the installed layers. client/domain belongs to the demo application
# (rtsync_client_domain is not installed); the test doubles are not part of the library.
set(_rtsync_header_dirs core protocol net client)
if(RTSYNC_BUILD_APP)
  list(APPEND _rtsync_header_dirs server)
endif()
foreach(d IN LISTS _rtsync_header_dirs)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/rtsync/${d}
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rtsync COMPONENT dev
    FILES_MATCHING PATTERN "*.hpp"
    PATTERN "domain" EXCLUDE
    PATTERN "fake_transport.hpp" EXCLUDE
    PATTERN "temp_cluster.hpp" EXCLUDE)
endforeach()

# The CMake package: targets, version, and a config that finds the dependencies first.
install(EXPORT rtsyncTargets
  NAMESPACE rtsync::
  DESTINATION ${RTSYNC_INSTALL_CMAKEDIR} COMPONENT dev)
if(TARGET simdjson::simdjson)
  set(RTSYNC_PACKAGE_SIMDJSON ON)
else()
  set(RTSYNC_PACKAGE_SIMDJSON OFF)
endif()
set(RTSYNC_PACKAGE_SERVER ${RTSYNC_BUILD_APP})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/rtsyncConfig.cmake.in
  ${PROJECT_BINARY_DIR}/rtsyncConfig.cmake
  INSTALL_DESTINATION ${RTSYNC_INSTALL_CMAKEDIR})
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rtsyncConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rtsyncConfig.cmake ${PROJECT_BINARY_DIR}/rtsyncConfigVersion.cmake
  DESTINATION ${RTSYNC_INSTALL_CMAKEDIR} COMPONENT dev)

# pkg-config: rtsync-client.pc (the client libraries) and, with the server, rtsync.pc (client and
# server). Static libraries, so Libs lists every archive, users before what they use.
function(_rtsync_pkg_config name description roots requires)
  _rtsync_link_closure(_libs ${roots})
  list(REVERSE _libs)
  set(_flags)
  foreach(t IN LISTS _libs)
    get_target_property(_type ${t} TYPE)
    if(_type STREQUAL "STATIC_LIBRARY")
      get_target_property(_out ${t} OUTPUT_NAME)
      if(NOT _out)
        set(_out ${t})
      endif()
      string(APPEND _flags " -l${_out}")
    endif()
  endforeach()
  set(RTSYNC_PC_NAME ${name})
  set(RTSYNC_PC_DESCRIPTION "${description}")
  set(RTSYNC_PC_LIBS "${_flags}")
  set(RTSYNC_PC_REQUIRES "${requires}")
  # Relocatable: the prefix is found from where the .pc file lies.
  file(RELATIVE_PATH _up /r/${CMAKE_INSTALL_LIBDIR}/pkgconfig /r)
  string(REGEX REPLACE "/$" "" _up "${_up}")
  set(RTSYNC_PC_PREFIX "\${pcfiledir}/${_up}")
  configure_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/rtsync.pc.in
    ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endfunction()
set(_rtsync_pc_requires "openssl spdlog fmt")
if(RTSYNC_PACKAGE_SIMDJSON)
  string(APPEND _rtsync_pc_requires " simdjson")
endif()
_rtsync_pkg_config(rtsync-client "rtsync client: Supabase Realtime socket, query cache, sync, REST"
  rtsync_client "${_rtsync_pc_requires}")
if(RTSYNC_BUILD_APP)
  _rtsync_pkg_config(rtsync "rtsync client and server libraries"
    "rtsync_client;rtsync_server" "${_rtsync_pc_requires} libpq hiredis")

  # The binary, and the systemd unit that runs `rtsync server` with its settings from
  # /etc/rtsync/server.env (example: share/rtsync/server.env.example). The unit names the binary
  # where the Debian package puts it.
  install(TARGETS rtsync RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT bin)
  set(RTSYNC_UNIT_BINARY /usr/${CMAKE_INSTALL_BINDIR}/rtsync)
  configure_file(${PROJECT_SOURCE_DIR}/packaging/rtsync-server.service.in
    ${PROJECT_BINARY_DIR}/packaging/rtsync-server.service @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/packaging/rtsync-server.service
    DESTINATION lib/systemd/system COMPONENT bin)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/server.env.example
    DESTINATION ${CMAKE_INSTALL_DATADIR}/rtsync COMPONENT bin)
endif()

# cpack -G DEB (from the build folder): one package with the binary, the unit, the libraries,
# headers, CMake package and pkg-config files, installed under /usr.
set(CPACK_PACKAGE_NAME rtsync)
set(CPACK_PACKAGE_VENDOR "rtsync")
set(CPACK_PACKAGE_CONTACT "rtsync maintainers <rtsync@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Supabase-compatible realtime server and C++20 client library")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Runtime libraries of the binary, from dpkg-shlibdeps; the -dev packages the headers and CMake
# package need (find_dependency in rtsyncConfig.cmake) are recommended.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS
    "libboost-json1.81-dev, libboost-url1.81-dev, libssl-dev, libpq-dev, libspdlog-dev, libfmt-dev, libsimdjson-dev, libhiredis-dev")
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
include(CPack)
