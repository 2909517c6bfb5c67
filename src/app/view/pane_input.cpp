#include "pane_input.hpp"

#include <algorithm>

namespace rtsync::app::view {

std::string_view to_string(Command c) noexcept {
  switch (c) {
    case Command::none:
      return "none";
    case Command::redraw:
      return "redraw";
    case Command::quit:
      return "quit";
    case Command::query_changed:
      return "query_changed";
    case Command::project_changed:
      return "project_changed";
    case Command::drop_realtime:
      return "drop_realtime";
    case Command::refetch:
      return "refetch";
  }
  return "?";
}

namespace {

Command scroll_to(PaneState& s, int target, const PaneLimits& l) {
  const int max_scroll = std::max(0, l.diagnostics_lines - std::max(1, l.diagnostics_rows));
  const int next = std::clamp(target, 0, max_scroll);
  if (next == s.diagnostics_scroll) return Command::none;
  s.diagnostics_scroll = next;
  return Command::redraw;
}

Command toggle(PaneState& s, Mode mode) {
  s.mode = s.mode == mode ? Mode::tasks : mode;
  if (s.mode == Mode::diagnostics) s.diagnostics_scroll = 0;
  return Command::redraw;
}

}  // namespace

Command apply_key(PaneState& s, Key key, const PaneLimits& l) {
  const int step = std::max(1, l.diagnostics_rows);
  switch (key.kind) {
    case KeyKind::resize:
      return Command::redraw;
    case KeyKind::escape:
      if (s.mode == Mode::tasks) return Command::none;
      s.mode = Mode::tasks;
      return Command::redraw;
    case KeyKind::left:
      if (s.mode != Mode::tasks || s.page == 0) return Command::none;
      s.page = std::min(s.page - 1, std::max(0, l.page_count - 1));
      return Command::query_changed;
    case KeyKind::right:
      if (s.mode != Mode::tasks || s.page + 1 >= l.page_count) return Command::none;
      ++s.page;
      return Command::query_changed;
    case KeyKind::up:
      return s.mode == Mode::diagnostics ? scroll_to(s, s.diagnostics_scroll - 1, l)
                                         : Command::none;
    case KeyKind::down:
      return s.mode == Mode::diagnostics ? scroll_to(s, s.diagnostics_scroll + 1, l)
                                         : Command::none;
    case KeyKind::page_up:
      return s.mode == Mode::diagnostics ? scroll_to(s, s.diagnostics_scroll - step, l)
                                         : Command::none;
    case KeyKind::page_down:
      return s.mode == Mode::diagnostics ? scroll_to(s, s.diagnostics_scroll + step, l)
                                         : Command::none;
    case KeyKind::home:
      return s.mode == Mode::diagnostics ? scroll_to(s, 0, l) : Command::none;
    case KeyKind::end:
      return s.mode == Mode::diagnostics ? scroll_to(s, l.diagnostics_lines, l) : Command::none;
    case KeyKind::character:
      break;
  }
  switch (key.ch) {
    case 'q':
    case 'Q':
      return Command::quit;
    case 's':
      s.filter_index = (s.filter_index + 1) % static_cast<int>(kStatusFilters.size());
      s.page = 0;
      return Command::query_changed;
    case 'p':
      if (l.project_count <= 1) return Command::none;
      s.project_index = (s.project_index + 1) % l.project_count;
      s.page = 0;
      return Command::project_changed;
    case 'd':
      return toggle(s, Mode::diagnostics);
    case '?':
    case 'h':
      return toggle(s, Mode::help);
    case 'k':
      return Command::drop_realtime;
    case 'r':
      return Command::refetch;
    default:
      return Command::none;
  }
}

}  // namespace rtsync::app::view
