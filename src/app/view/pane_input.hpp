// The task pane's keys, as a pure state machine: a key and the current limits in, the new UI
// state and what the client side must do out. The ncurses layer translates its key codes into
// `Key`; the client side (src/app/pane_source) executes the Command on the event loop.
//
//   q            quit (in every mode)
//   ← / →        previous / next page (tasks mode; clamped to the pages that exist)
//   s            next status filter (All → Queued → … → Cancelled → All); back to page 1
//   p            next project (wraps); back to page 1
//   d            diagnostics view on / off
//   ↑ ↓ PgUp PgDn Home End   scroll the diagnostics (clamped)
//   k            drop the realtime connection
//   r            refetch now
//   ?            help on / off;  Esc  back to the task list
//   resize       redraw
//
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "pane_model.hpp"

namespace rtsync::app::view {

enum class KeyKind : std::uint8_t {
  character,
  left,
  right,
  up,
  down,
  page_up,
  page_down,
  home,
  end,
  escape,
  resize,
};

struct Key {
  KeyKind kind = KeyKind::character;
  char32_t ch = 0;  // for KeyKind::character
  static Key chr(char32_t c) { return Key{KeyKind::character, c}; }
  static Key of(KeyKind k) { return Key{k, 0}; }
};

// The status filters `s` cycles through; "" is "All".
inline constexpr std::array<std::string_view, 6> kStatusFilters = {
    "", "Queued", "In Progress", "Complete", "Failed", "Cancelled"};

struct PaneState {
  Mode mode = Mode::tasks;
  int page = 0;          // 0-based
  int filter_index = 0;  // into kStatusFilters
  int project_index = 0;
  int diagnostics_scroll = 0;
  std::string_view status_filter() const {
    return kStatusFilters[static_cast<std::size_t>(filter_index)];
  }
  friend bool operator==(const PaneState&, const PaneState&) = default;
};

struct PaneLimits {
  int page_count = 1;
  int project_count = 1;
  int diagnostics_lines = 0;
  int diagnostics_rows = 10;  // lines visible at once (PgUp/PgDn step)
};

enum class Command : std::uint8_t {
  none,    // nothing changed
  redraw,  // only the view changed (mode, scroll, resize)
  quit,
  query_changed,    // page or filter changed: observe the new tasks page
  project_changed,  // select project_index
  drop_realtime,
  refetch,
};
std::string_view to_string(Command c) noexcept;

Command apply_key(PaneState& state, Key key, const PaneLimits& limits);

}  // namespace rtsync::app::view
