# Compiler flags shared by every rtsync target.

add_library(rtsync_flags INTERFACE)
# Build-tree only ($<BUILD_INTERFACE:…>): the installed package exports this target empty, because
# the libraries link it PRIVATE and it must not change how a user's code is compiled.
target_compile_options(rtsync_flags
  INTERFACE "$<BUILD_INTERFACE:-Wall;-Wextra;-Wpedantic;-Wno-unused-parameter>")
if(RTSYNC_WERROR)
  target_compile_options(rtsync_flags INTERFACE $<BUILD_INTERFACE:-Werror>)
endif()
# Beast's compiled part is one translation unit (rtsync_beast, src/beast; docs/design.md §6).
target_compile_definitions(rtsync_flags INTERFACE
  "$<BUILD_INTERFACE:BOOST_BEAST_SEPARATE_COMPILATION;BOOST_ASIO_NO_DEPRECATED>")

if(RTSYNC_SANITIZE)
  string(REPLACE "," ";" _san_list "${RTSYNC_SANITIZE}")
  set(_san_flags "-fsanitize=${RTSYNC_SANITIZE}" -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${_san_flags})
  add_link_options("-fsanitize=${RTSYNC_SANITIZE}")
endif()

# Adds the standard flags to a target.
function(rtsync_target target)
  target_link_libraries(${target} PRIVATE rtsync_flags)
endfunction()
