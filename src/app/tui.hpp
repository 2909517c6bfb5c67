// The ncurses layer of the task pane: paints the renderer's lines and reads keys; nothing else.
//
// The main thread owns the terminal. Every wake-up (a key, or every `poll` otherwise) it asks the
// loop for the current PaneModel, renders it for the terminal's size and repaints only the lines
// that differ from what is on screen — so the screen changes only when what it shows changes
// (an age ticking to the next second included). Keys go through view::apply_key on the loop and
// PaneSession::apply carries them out. Resizing (KEY_RESIZE) repaints everything.
//
// Thread safety: run on the main thread; `session` is only touched on its loop (run_sync).
#pragma once

#include <chrono>
#include <string>

#include "rtsync/core/event_loop.hpp"
#include "stop_signal.hpp"

namespace rtsync::app {

class PaneSession;

struct TuiOptions {
  std::chrono::milliseconds poll{100};
  // Where log lines go while the screen is up ("" → /dev/null): stderr would tear the screen.
  std::string log_file;
};

// Runs until `q` or `stop`. Returns 0, or 1 when the terminal could not be set up (message on
// stderr).
int run_tui(core::EventLoop& loop, PaneSession& session, StopSignal& stop,
            const TuiOptions& options);

}  // namespace rtsync::app
