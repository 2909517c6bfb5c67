# Build-time script: turns db/NNNN_name.sql into a C++ table so `rtsync migrate` needs no source
# tree at run time. Invoked with -DDIR=<db dir> -DOUT=<generated .cpp>.
file(GLOB files RELATIVE ${DIR} ${DIR}/*.sql)
list(SORT files)
set(entries "")
set(bodies "")
set(i 0)
foreach(f IN LISTS files)
  if(NOT f MATCHES "^([0-9]+)_([A-Za-z0-9_]+)\\.sql$")
    message(FATAL_ERROR "migration file name must be NNNN_name.sql: ${f}")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  file(READ ${DIR}/${f} sql)
  string(FIND "${sql}" ")rtsync_sql\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${f} contains the raw-string delimiter")
  endif()
  string(APPEND bodies "constexpr char kSql${i}[] = R\"rtsync_sql(${sql})rtsync_sql\";\n")
  string(APPEND entries "    {${version}, \"${name}\", kSql${i}},\n")
  math(EXPR i "${i} + 1")
endforeach()
set(content "// Generated from db/*.sql by embed_migrations.cmake. Do not edit.
#include <span>

#include \"rtsync/server/migrate/migrations.hpp\"

namespace rtsync::server::migrate {
namespace {
${bodies}
constexpr Migration kMigrations[] = {
${entries}};
}  // namespace

std::span<const Migration> embedded_migrations() { return kMigrations; }

}  // namespace rtsync::server::migrate
")
# Rewrite only on change so dependants do not rebuild needlessly.
if(EXISTS ${OUT})
  file(READ ${OUT} old)
  if(old STREQUAL content)
    return()
  endif()
endif()
file(WRITE ${OUT} "${content}")
