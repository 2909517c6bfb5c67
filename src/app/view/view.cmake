# rtsync_app_view: the task pane's pure view-model → lines renderer, its key handling and the
# --json line builders. Core only (no ncurses, no client), so its unit tests run everywhere,
# sanitizers included. Included from src/app/app.cmake and from tests/unit/app (the asan preset
# does not build src/app); whichever comes first defines the target.
if(NOT TARGET rtsync_app_view)
  add_library(rtsync_app_view STATIC
    ${CMAKE_CURRENT_LIST_DIR}/json_lines.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pane_input.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pane_render.cpp
    ${CMAKE_CURRENT_LIST_DIR}/text.cpp
  )
  target_include_directories(rtsync_app_view PUBLIC ${PROJECT_SOURCE_DIR}/src/app)
  target_link_libraries(rtsync_app_view PUBLIC rtsync_core PRIVATE rtsync_flags)
endif()
