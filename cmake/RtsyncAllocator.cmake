# The allocator of rtsync's own executables that run the server: the `rtsync` binary and the server
# benchmark (whose forked child is the server). gperftools' tcmalloc (Debian's
# libgoogle-perftools-dev): on a single-row RLS load glibc's malloc took about a quarter of the
# server's CPU — most of it malloc_consolidate, run whenever libpq asks for a 2 KiB result block
# after the hub freed its per-change objects — and tcmalloc cut the server's CPU per change by 29 %
# (BENCHMARKS.md, "Allocator: tcmalloc beside glibc's malloc"). Libraries are left alone: a program
# that links rtsync::server or rtsync::client keeps the allocator it chose. Sanitizer builds keep
# the system allocator (the sanitizers bring their own).
#
#   -DRTSYNC_MALLOC=tcmalloc   the default; configuring fails if it is not installed
#   -DRTSYNC_MALLOC=system     glibc's malloc
if(RTSYNC_SANITIZE)
  set(_rtsync_malloc_default system)
else()
  set(_rtsync_malloc_default tcmalloc)
endif()
set(RTSYNC_MALLOC "${_rtsync_malloc_default}"
    CACHE STRING "Allocator of the rtsync binary and the server benchmark: tcmalloc | system")
set_property(CACHE RTSYNC_MALLOC PROPERTY STRINGS tcmalloc system)

if(RTSYNC_MALLOC STREQUAL "tcmalloc")
  if(RTSYNC_SANITIZE)
    message(FATAL_ERROR "RTSYNC_MALLOC=tcmalloc cannot be combined with RTSYNC_SANITIZE")
  endif()
  find_library(RTSYNC_TCMALLOC_LIBRARY NAMES tcmalloc_minimal)
  if(NOT RTSYNC_TCMALLOC_LIBRARY)
    message(FATAL_ERROR "tcmalloc not found: apt-get install libgoogle-perftools-dev "
                        "(scripts/install-deps.sh), or configure with -DRTSYNC_MALLOC=system")
  endif()
elseif(NOT RTSYNC_MALLOC STREQUAL "system")
  message(FATAL_ERROR "RTSYNC_MALLOC must be tcmalloc or system, not '${RTSYNC_MALLOC}'")
endif()

# Links `target` with the chosen allocator. --no-as-needed: nothing calls tcmalloc by name (it
# replaces malloc and operator new), so a linker dropping unreferenced libraries would drop it.
function(rtsync_link_allocator target)
  if(RTSYNC_MALLOC STREQUAL "tcmalloc")
    target_link_libraries(${target} PRIVATE "-Wl,--push-state,--no-as-needed"
                                            "${RTSYNC_TCMALLOC_LIBRARY}" "-Wl,--pop-state")
  endif()
endfunction()
