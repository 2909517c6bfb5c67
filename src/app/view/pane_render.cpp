#include "pane_render.hpp"

#include <algorithm>
#include <cctype>

#include "text.hpp"
#include "viewers.hpp"

namespace rtsync::app::view {
namespace {

// Fixed lines above the body (header, counts, title, column header) and below it (footer).
constexpr int kHeaderLines = 3;
constexpr int kTopLines = 5;
constexpr int kFooterLines = 1;

constexpr int kStatusWidth = 11;  // "In Progress"
constexpr int kTimeWidth = 14;    // "11-19 00:22:40"
constexpr int kGap = 2;
constexpr int kMinTypeWidth = 8;
constexpr int kMaxTypeWidth = 28;

constexpr std::string_view kKeyHelp =
    "q quit · ←/→ page · s status · p project · d diagnostics · k drop realtime · r refetch · "
    "? help";

const std::vector<std::string>& help_lines() {
  static const std::vector<std::string> lines = {
      "q          quit",
      "← / →      previous / next page of tasks",
      "s          cycle the status filter (All, Queued, In Progress, Complete, Failed, Cancelled)",
      "p          next project",
      "d          diagnostics: the JSON snapshot (↑/↓, PgUp/PgDn, Home/End scroll; d back)",
      "k          drop the realtime connection for a few seconds: watch polling take over at 5 s,",
      "           then the reconnect and the gap fill",
      "r          refetch every query now",
      "?          this help (? back)",
      "",
      "The badge follows the realtime channel: ● Connected, ◌ Connecting…, ○ Disconnected.",
      "Beside the project: how many others watch it now (their names: d, under \"presence\").",
      "Polling is the task list's current refetch interval, derived from freshness:",
      "30 s after a recent event, 15 s while events age, 10 s when quiet, 5 s when realtime is "
      "down.",
  };
  return lines;
}

std::string with_thousands(std::int64_t v) {
  return std::to_string(v);
}

std::string title_line(const PaneModel& m) {
  if (m.project_name.empty()) return "rtsync · no project";
  std::string s = m.project_name;
  if (m.project_count > 1) {
    s += " (" + std::to_string(m.project_index + 1) + "/" + std::to_string(m.project_count) + ")";
  }
  if (const auto w = watchers_text(m.watchers); !w.empty()) s += " · " + w;
  return s;
}

std::string realtime_line(const PaneModel& m) {
  std::string s = "realtime: " + (m.realtime_status.empty() ? std::string("–") : m.realtime_status);
  s += " · polling: ";
  s += m.polling_interval_ms ? format_interval(*m.polling_interval_ms) : std::string("–");
  s += " · last event: ";
  s += m.last_event_age_ms ? format_age(*m.last_event_age_ms) : std::string("none");
  if (m.realtime_status != "connected" && !m.realtime_reason.empty()) {
    s += " · " + m.realtime_reason;
  }
  return s;
}

std::string counts_text(const PaneModel& m) {
  if (m.counts_state.load == Load::error) return "status counts: error: " + m.counts_state.error;
  const bool have = m.counts_state.load == Load::success;
  auto n = [&](std::int64_t v) { return have ? with_thousands(v) : std::string("–"); };
  std::string s = "Queued " + n(m.counts.queued) + " · In Progress " + n(m.counts.in_progress) +
                  " · Complete " + n(m.counts.complete) + " · Failed " + n(m.counts.failed) +
                  " · Cancelled " + n(m.counts.cancelled);
  if (!have) s += " (loading…)";
  return s;
}

std::string media_text(const PaneModel& m) {
  if (m.media_state.load == Load::error) return "generations: error";
  auto n = [](const std::optional<std::int64_t>& v) {
    return v ? with_thousands(*v) : std::string("–");
  };
  return "generations " + n(m.generations) + " · videos " + n(m.videos);
}

std::string list_title(const PaneModel& m) {
  std::string s = "Tasks, newest first · status: ";
  s += m.status_filter.empty() ? "All" : m.status_filter;
  s += " · page " + std::to_string(m.page + 1) + "/" + std::to_string(page_count(m));
  if (m.total) s += " · " + with_thousands(*m.total) + (*m.total == 1 ? " task" : " tasks");
  if (m.tasks_state.load == Load::error && !m.tasks.empty()) {
    s += " · refetch failed: " + m.tasks_state.error;
  } else if (m.tasks_state.fetching) {
    s += " · refreshing…";
  }
  return s;
}

struct Columns {
  int type = 0;
  bool created = false;
  bool updated = false;
};

Columns columns_for(int width) {
  Columns c;
  const int fixed_all = kGap + kStatusWidth + 2 * (kGap + kTimeWidth);
  const int fixed_created = kGap + kStatusWidth + kGap + kTimeWidth;
  if (width - fixed_all >= kMinTypeWidth) {
    c.created = c.updated = true;
    c.type = std::min(kMaxTypeWidth, width - fixed_all);
  } else if (width - fixed_created >= kMinTypeWidth) {
    c.created = true;
    c.type = std::min(kMaxTypeWidth, width - fixed_created);
  } else {
    c.type = std::max(kMinTypeWidth, width - kGap - kStatusWidth);
  }
  return c;
}

std::string row_text(const Columns& c, std::string_view type, std::string_view status,
                     std::string_view created, std::string_view updated) {
  const std::string gap(kGap, ' ');
  std::string s = fit(type, c.type) + gap + fit(status, kStatusWidth);
  if (c.created) s += gap + fit(created, kTimeWidth);
  if (c.updated) s += gap + std::string(updated);
  // Trailing spaces are not needed on a terminal line.
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

void task_body(const PaneModel& m, int width, int rows, std::vector<std::string>& out) {
  const Columns c = columns_for(width);
  out.push_back(truncate(row_text(c, "TYPE", "STATUS", "CREATED", "UPDATED"), width));
  --rows;
  if (rows <= 0) return;
  if (m.tasks.empty()) {
    std::string msg;
    if (m.tasks_state.load == Load::error) {
      msg = "Could not load tasks: " + m.tasks_state.error;
    } else if (m.tasks_state.load == Load::pending) {
      msg = "Loading…";
    } else if (m.page > 0) {
      msg = "No tasks on this page";
    } else {
      msg = m.status_filter.empty() ? "No tasks yet" : "No " + m.status_filter + " tasks";
    }
    out.push_back(truncate(msg, width));
    return;
  }
  const int n = static_cast<int>(m.tasks.size());
  const bool overflow = n > rows;
  const int shown = overflow ? rows - 1 : n;
  for (int i = 0; i < shown; ++i) {
    const TaskRow& t = m.tasks[static_cast<std::size_t>(i)];
    out.push_back(truncate(row_text(c, t.type, t.status, t.created_at, t.updated_at), width));
  }
  if (overflow) {
    out.push_back(truncate(
        "… " + std::to_string(n - shown) + " more on this page (a taller terminal shows them)",
        width));
  }
}

void diagnostics_body(const PaneModel& m, int width, int rows, std::vector<std::string>& out) {
  const int n = static_cast<int>(m.diagnostics.size());
  const int body = std::max(0, rows - 1);
  const int max_scroll = std::max(0, n - body);
  const int scroll = std::clamp(m.diagnostics_scroll, 0, max_scroll);
  const int last = std::min(n, scroll + body);
  std::string title = "Diagnostics (JSON snapshot) · ↑/↓ PgUp/PgDn scroll · d back · lines " +
                      std::to_string(n == 0 ? 0 : scroll + 1) + "–" + std::to_string(last) +
                      " of " + std::to_string(n);
  out.push_back(truncate(title, width));
  for (int i = scroll; i < last; ++i)
    out.push_back(truncate(m.diagnostics[static_cast<std::size_t>(i)], width));
}

void help_body(int width, int rows, std::vector<std::string>& out) {
  out.push_back(truncate("Keys · ? back", width));
  const auto& lines = help_lines();
  for (int i = 0; i + 1 < rows && i < static_cast<int>(lines.size()); ++i)
    out.push_back(truncate(lines[static_cast<std::size_t>(i)], width));
}

}  // namespace

int page_count(const PaneModel& model) {
  if (!model.total || model.page_size <= 0) return 1;
  const std::int64_t pages = (*model.total + model.page_size - 1) / model.page_size;
  return static_cast<int>(std::max<std::int64_t>(1, pages));
}

int task_rows(int height) {
  return std::max(0, height - kTopLines - kFooterLines);
}

int diagnostics_rows(int height) {
  return std::max(0, height - kHeaderLines - 1 - kFooterLines);
}

std::string badge_text(Badge badge, const std::string& error) {
  switch (badge) {
    case Badge::connected:
      return "● Connected";
    case Badge::connecting:
      return "◌ Connecting…";
    case Badge::disconnected:
      return error.empty() ? "○ Disconnected" : "○ Disconnected: " + error;
  }
  return "";
}

std::string format_age(std::int64_t age_ms) {
  if (age_ms < 1000) return "just now";
  const std::int64_t s = age_ms / 1000;
  if (s < 120) return std::to_string(s) + " s ago";
  if (s < 7200) return std::to_string(s / 60) + " min ago";
  return std::to_string(s / 3600) + " h ago";
}

std::string format_interval(std::int64_t ms) {
  if (ms < 1000) return std::to_string(ms) + " ms";
  if (ms % 60000 == 0 && ms >= 60000) return std::to_string(ms / 60000) + " min";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms / 1000) + "." + std::to_string((ms % 1000) / 100) + " s";
}

std::string short_timestamp(std::string_view iso) {
  // YYYY-MM-DD[T ]HH:MM:SS…
  if (iso.size() < 19) return std::string(iso);
  auto digits = [&](std::size_t from, std::size_t n) {
    for (std::size_t i = from; i < from + n; ++i)
      if (!std::isdigit(static_cast<unsigned char>(iso[i]))) return false;
    return true;
  };
  if (!digits(0, 4) || iso[4] != '-' || !digits(5, 2) || iso[7] != '-' || !digits(8, 2) ||
      (iso[10] != 'T' && iso[10] != ' ') || !digits(11, 2) || iso[13] != ':' || !digits(14, 2) ||
      iso[16] != ':' || !digits(17, 2)) {
    return std::string(iso);
  }
  return std::string(iso.substr(5, 5)) + " " + std::string(iso.substr(11, 8));
}

std::vector<std::string> render(const PaneModel& m, int width, int height) {
  std::vector<std::string> out;
  if (height <= 0) return out;
  width = std::max(width, 0);
  out.reserve(static_cast<std::size_t>(height));

  std::vector<std::string> top;
  top.push_back(spread(title_line(m), badge_text(m.badge, m.connection_error), width));
  top.push_back(truncate(realtime_line(m), width));
  top.push_back(spread(counts_text(m), media_text(m), width));
  const int above_footer = height > 1 ? height - kFooterLines : height;

  // Header lines first; the body gets what is left.
  for (const auto& line : top) {
    if (static_cast<int>(out.size()) >= above_footer) break;
    out.push_back(line);
  }
  const int rows = above_footer - static_cast<int>(out.size());
  if (rows > 0) {
    std::vector<std::string> body;
    switch (m.mode) {
      case Mode::tasks:
        body.push_back(truncate(list_title(m), width));
        if (rows > 1) task_body(m, width, rows - 1, body);
        break;
      case Mode::diagnostics:
        diagnostics_body(m, width, rows, body);
        break;
      case Mode::help:
        help_body(width, rows, body);
        break;
    }
    for (auto& line : body) {
      if (static_cast<int>(out.size()) >= above_footer) break;
      out.push_back(std::move(line));
    }
  }
  while (static_cast<int>(out.size()) < above_footer)
    out.emplace_back();
  if (height > 1) out.push_back(truncate(m.notice.empty() ? kKeyHelp : m.notice, width));
  return out;
}

}  // namespace rtsync::app::view
