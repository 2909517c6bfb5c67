# The client-side subcommands of the rtsync binary (`watch`, `demo`, `token`, `migrate`), included
# at the end of src/app/CMakeLists.txt. main.cpp calls the functions declared in
# client_commands.hpp.
# The pane's pure view (rtsync_app_view) is src/app/view, added by the top-level CMakeLists.txt.

# Everything but main(): the e2e tests and benchmarks link the same code the binary runs.
add_library(rtsync_app STATIC
  ${CMAKE_CURRENT_LIST_DIR}/bench_command.cpp
  ${CMAKE_CURRENT_LIST_DIR}/client_commands.cpp
  ${CMAKE_CURRENT_LIST_DIR}/task_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/demo_env.cpp
  ${CMAKE_CURRENT_LIST_DIR}/drop_transport.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pane_queries.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pane_session.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stop_signal.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tui.cpp
  ${CMAKE_CURRENT_LIST_DIR}/worker.cpp
)
target_include_directories(rtsync_app PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_include_directories(rtsync_app PRIVATE ${CURSES_INCLUDE_DIRS})
target_link_libraries(rtsync_app
  PUBLIC rtsync_app_view rtsync_client rtsync_client_domain rtsync_server rtsync_testkit_pg
         rtsync_testkit_redis
         CLI11::CLI11 ${CURSES_LIBRARIES}
  PRIVATE rtsync_flags)

target_link_libraries(rtsync PRIVATE rtsync_app)
