#include "view/pane_input.hpp"

#include <gtest/gtest.h>

namespace rtsync::app::view {
namespace {

PaneLimits limits(int pages = 3, int projects = 2, int diag_lines = 40, int diag_rows = 10) {
  PaneLimits l;
  l.page_count = pages;
  l.project_count = projects;
  l.diagnostics_lines = diag_lines;
  l.diagnostics_rows = diag_rows;
  return l;
}

TEST(PaneInput, QuitFromEveryMode) {
  for (Mode m : {Mode::tasks, Mode::diagnostics, Mode::help}) {
    PaneState s;
    s.mode = m;
    EXPECT_EQ(apply_key(s, Key::chr('q'), limits()), Command::quit);
  }
}

TEST(PaneInput, ArrowsPageWithinTheExistingPages) {
  PaneState s;
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::left), limits()), Command::none);
  EXPECT_EQ(s.page, 0);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::right), limits()), Command::query_changed);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::right), limits()), Command::query_changed);
  EXPECT_EQ(s.page, 2);
  // The last page: no further.
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::right), limits()), Command::none);
  EXPECT_EQ(s.page, 2);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::left), limits()), Command::query_changed);
  EXPECT_EQ(s.page, 1);
  // The list shrank to one page while we were on page 2: left goes to the last page that exists.
  s.page = 5;
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::left), limits(1)), Command::query_changed);
  EXPECT_EQ(s.page, 0);
}

TEST(PaneInput, StatusFilterCyclesAndResetsThePage) {
  PaneState s;
  s.page = 2;
  std::vector<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(apply_key(s, Key::chr('s'), limits()), Command::query_changed);
    EXPECT_EQ(s.page, 0);
    seen.emplace_back(s.status_filter());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"Queued", "In Progress", "Complete", "Failed",
                                            "Cancelled", ""}));
}

TEST(PaneInput, NextProjectWrapsAndIsANoOpWithOneProject) {
  PaneState s;
  s.page = 1;
  EXPECT_EQ(apply_key(s, Key::chr('p'), limits(3, 2)), Command::project_changed);
  EXPECT_EQ(s.project_index, 1);
  EXPECT_EQ(s.page, 0);
  EXPECT_EQ(apply_key(s, Key::chr('p'), limits(3, 2)), Command::project_changed);
  EXPECT_EQ(s.project_index, 0);
  EXPECT_EQ(apply_key(s, Key::chr('p'), limits(3, 1)), Command::none);
  EXPECT_EQ(s.project_index, 0);
}

TEST(PaneInput, DiagnosticsToggleAndScrollClamped) {
  PaneState s;
  EXPECT_EQ(apply_key(s, Key::chr('d'), limits()), Command::redraw);
  EXPECT_EQ(s.mode, Mode::diagnostics);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::up), limits()), Command::none);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::down), limits()), Command::redraw);
  EXPECT_EQ(s.diagnostics_scroll, 1);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::page_down), limits()), Command::redraw);
  EXPECT_EQ(s.diagnostics_scroll, 11);
  // 40 lines, 10 visible: the last start is 30.
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::end), limits()), Command::redraw);
  EXPECT_EQ(s.diagnostics_scroll, 30);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::down), limits()), Command::none);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::page_up), limits()), Command::redraw);
  EXPECT_EQ(s.diagnostics_scroll, 20);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::home), limits()), Command::redraw);
  EXPECT_EQ(s.diagnostics_scroll, 0);
  // Arrows do not page the task list while the diagnostics are shown.
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::right), limits()), Command::none);
  EXPECT_EQ(s.page, 0);
  EXPECT_EQ(apply_key(s, Key::chr('d'), limits()), Command::redraw);
  EXPECT_EQ(s.mode, Mode::tasks);
  // Reopening starts at the top again.
  s.diagnostics_scroll = 7;
  apply_key(s, Key::chr('d'), limits());
  EXPECT_EQ(s.diagnostics_scroll, 0);
}

TEST(PaneInput, ScrollOfAShortSnapshotStaysAtTheTop) {
  PaneState s;
  s.mode = Mode::diagnostics;
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::page_down), limits(1, 1, 5, 10)), Command::none);
  EXPECT_EQ(s.diagnostics_scroll, 0);
}

TEST(PaneInput, HelpEscapeAndActions) {
  PaneState s;
  EXPECT_EQ(apply_key(s, Key::chr('?'), limits()), Command::redraw);
  EXPECT_EQ(s.mode, Mode::help);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::escape), limits()), Command::redraw);
  EXPECT_EQ(s.mode, Mode::tasks);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::escape), limits()), Command::none);
  EXPECT_EQ(apply_key(s, Key::chr('k'), limits()), Command::drop_realtime);
  EXPECT_EQ(apply_key(s, Key::chr('r'), limits()), Command::refetch);
  EXPECT_EQ(apply_key(s, Key::of(KeyKind::resize), limits()), Command::redraw);
  EXPECT_EQ(apply_key(s, Key::chr('x'), limits()), Command::none);
  EXPECT_EQ(s, PaneState{});
}

}  // namespace
}  // namespace rtsync::app::view
