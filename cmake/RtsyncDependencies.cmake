# Debian 12 packages (scripts/install-deps.sh). Boost is 1.81 (libboost1.81-dev): the default
# 1.74 has no Boost.URL and an older Boost.JSON. Boost's own CMake package, 1.81 or newer.

find_package(Threads REQUIRED)
find_package(Boost 1.81 CONFIG REQUIRED COMPONENTS json url)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(PostgreSQL REQUIRED)
# simdjson (libsimdjson-dev) powers the protocol's FrameReader and the client's UTF-8 check.
# Required by default so a missing package fails the configure step instead of silently skipping
# the FrameReader tests; -DRTSYNC_REQUIRE_SIMDJSON=OFF builds without it. Found here, at the top,
# so every folder (and cmake/install.cmake) sees the same simdjson::simdjson.
option(RTSYNC_REQUIRE_SIMDJSON "Fail the configure step when simdjson is missing" ON)
if(RTSYNC_REQUIRE_SIMDJSON)
  find_package(simdjson CONFIG REQUIRED)
else()
  find_package(simdjson CONFIG QUIET)
endif()

if(RTSYNC_BUILD_TESTS AND NOT RTSYNC_FUZZ)
  find_package(GTest REQUIRED)
endif()
if(RTSYNC_BUILD_BENCH AND NOT RTSYNC_FUZZ)
  find_package(benchmark REQUIRED)
endif()
if(RTSYNC_BUILD_APP AND NOT RTSYNC_FUZZ)
  find_package(CLI11 CONFIG QUIET)
  if(NOT CLI11_FOUND)
    find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
    add_library(CLI11::CLI11 INTERFACE IMPORTED)
    target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
  endif()
  set(CURSES_NEED_WIDE TRUE)
  find_package(Curses REQUIRED)
endif()
