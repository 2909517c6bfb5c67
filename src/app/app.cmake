# The client-side subcommands of the rtsync binary (`watch`, `demo`), included at the end of
# src/app/CMakeLists.txt. Owned by the app engineer; main.cpp calls the functions declared in
# watch_command.hpp / demo_command.hpp under RTSYNC_HAVE_WATCH / RTSYNC_HAVE_DEMO.
include(${CMAKE_CURRENT_LIST_DIR}/view/view.cmake)
