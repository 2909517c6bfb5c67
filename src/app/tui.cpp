#include "tui.hpp"

#include <fcntl.h>
#include <langinfo.h>
#include <unistd.h>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#define NCURSES_WIDECHAR 1
#include <ncurses.h>

#include "pane_session.hpp"
#include "view/pane_render.hpp"
#include "view/text.hpp"

namespace rtsync::app {
namespace {

// UTF-8 glyphs need a UTF-8 locale; fall back to C.UTF-8 when the environment has none.
void ensure_utf8_locale() {
  std::setlocale(LC_ALL, "");
  const char* cs = nl_langinfo(CODESET);
  if (!cs || std::strcmp(cs, "UTF-8") != 0) std::setlocale(LC_ALL, "C.UTF-8");
}

// Sends fd 2 elsewhere while the screen is up and restores it afterwards.
class StderrRedirect {
 public:
  explicit StderrRedirect(const std::string& path) {
    saved_ = dup(2);
    const int fd = open(path.empty() ? "/dev/null" : path.c_str(),
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 2);
      close(fd);
    }
  }
  ~StderrRedirect() {
    if (saved_ >= 0) {
      dup2(saved_, 2);
      close(saved_);
    }
  }

 private:
  int saved_ = -1;
};

class Screen {
 public:
  Screen() {
    ensure_utf8_locale();
    ok_ = initscr() != nullptr;
    if (!ok_) return;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    if (has_colors()) {
      start_color();
      use_default_colors();
      init_pair(1, COLOR_GREEN, -1);
      init_pair(2, COLOR_YELLOW, -1);
      init_pair(3, COLOR_RED, -1);
      colors_ = true;
    }
  }
  ~Screen() {
    if (ok_) endwin();
  }
  bool ok() const { return ok_; }
  bool colors() const { return colors_; }

 private:
  bool ok_ = false;
  bool colors_ = false;
};

std::optional<view::Key> translate(int rc, wint_t ch) {
  if (rc == KEY_CODE_YES) {
    switch (ch) {
      case KEY_LEFT:
        return view::Key::of(view::KeyKind::left);
      case KEY_RIGHT:
        return view::Key::of(view::KeyKind::right);
      case KEY_UP:
        return view::Key::of(view::KeyKind::up);
      case KEY_DOWN:
        return view::Key::of(view::KeyKind::down);
      case KEY_PPAGE:
        return view::Key::of(view::KeyKind::page_up);
      case KEY_NPAGE:
        return view::Key::of(view::KeyKind::page_down);
      case KEY_HOME:
        return view::Key::of(view::KeyKind::home);
      case KEY_END:
        return view::Key::of(view::KeyKind::end);
      case KEY_RESIZE:
        return view::Key::of(view::KeyKind::resize);
      default:
        return std::nullopt;
    }
  }
  if (rc == OK) {
    if (ch == 27) return view::Key::of(view::KeyKind::escape);
    if (ch == 3) return view::Key::chr('q');  // Ctrl-C in raw terminals
    return view::Key::chr(static_cast<char32_t>(ch));
  }
  return std::nullopt;
}

void paint_line(int row, const std::string& text, bool colors, const view::PaneModel& model) {
  move(row, 0);
  clrtoeol();
  if (row == 0) attron(A_BOLD);
  mvaddnstr(row, 0, text.c_str(), static_cast<int>(text.size()));
  if (row == 0) attroff(A_BOLD);
  if (row == 0 && colors) {
    // Colour the badge at the end of the first line.
    const std::string badge = view::badge_text(model.badge, model.connection_error);
    const int total = view::display_width(text);
    const int bw = std::min(view::display_width(badge), total);
    const short pair = model.badge == view::Badge::connected    ? 1
                       : model.badge == view::Badge::connecting ? 2
                                                                : 3;
    mvchgat(row, total - bw, bw, A_BOLD, pair, nullptr);
  }
}

}  // namespace

int run_tui(core::EventLoop& loop, PaneSession& session, StopSignal& stop,
            const TuiOptions& options) {
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
    std::cerr << "rtsync: the task pane needs a terminal (use --json for a line stream)\n";
    return 1;
  }
  StderrRedirect redirect(options.log_file);
  Screen screen;
  if (!screen.ok()) {
    return 1;
  }
  timeout(static_cast<int>(options.poll.count()));

  view::PaneState state;
  loop.run_sync([&] { state = session.initial_state(); });
  std::vector<std::string> painted;
  bool full_repaint = true;
  while (!stop.requested()) {
    int rows = 0;
    int cols = 0;
    getmaxyx(stdscr, rows, cols);

    view::PaneModel model;
    loop.run_sync([&] { model = session.model(state); });
    std::vector<std::string> lines = view::render(model, cols, rows);
    if (full_repaint || lines != painted) {
      if (full_repaint || lines.size() != painted.size()) {
        clear();
        painted.assign(lines.size(), std::string("\x01"));  // nothing matches: paint all
      }
      for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i] != painted[i])
          paint_line(static_cast<int>(i), lines[i], screen.colors(), model);
      }
      refresh();
      painted = std::move(lines);
      full_repaint = false;
    }

    wint_t ch = 0;
    const int rc = get_wch(&ch);
    if (rc == ERR) continue;
    const auto key = translate(rc, ch);
    if (!key) continue;
    if (key->kind == view::KeyKind::resize) full_repaint = true;
    view::Command command = view::Command::none;
    loop.run_sync([&] {
      const view::PaneLimits limits = session.limits(state, rows);
      command = view::apply_key(state, *key, limits);
      session.apply(command, state);
    });
    if (command == view::Command::quit) stop.request("q");
  }
  return 0;
}

}  // namespace rtsync::app
