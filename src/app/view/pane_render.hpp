// The task pane's renderer: a PaneModel and a terminal size in, the lines to show out. Pure and
// deterministic, so it is unit-tested line by line; the ncurses layer paints what it returns and
// repaints only when the lines differ from the last painted ones.
//
// Layout (tasks mode), top to bottom:
//   0  project name (i/n) [· N others watching] ………… connection badge (● Connected /
//      ◌ Connecting… / ○ Disconnected: <error>)
//   1  realtime: <status> · polling: <interval> · last event: <age> [· <reason>]
//   2  the status counts ……………………………………… generations N · videos M
//   3  the list's title: filter, page i/n, total, refreshing / error
//   4  column header (TYPE STATUS CREATED UPDATED; UPDATED, then CREATED, dropped when narrow)
//   …  task rows, newest first (an overflow marker when the page has more rows than fit)
//   last  key help, or the current notice
// Diagnostics mode shows the JSON snapshot lines from `diagnostics_scroll`; help mode the keys.
//
// Contract: exactly max(height, 0) lines, each at most `width` display columns (text.hpp), never
// cut inside a UTF-8 character; lines are not padded.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pane_model.hpp"

namespace rtsync::app::view {

std::vector<std::string> render(const PaneModel& model, int width, int height);

// Task rows that fit at this height (below the header, list title and column header).
int task_rows(int height);
// Diagnostics lines that fit at this height (the diagnostics view's page for PgUp/PgDn).
int diagnostics_rows(int height);

// "● Connected", "◌ Connecting…", "○ Disconnected" (+ ": <error>").
std::string badge_text(Badge badge, const std::string& error);
// "just now" (< 1 s), "12 s ago" (< 2 min), "3 min ago" (< 2 h), "5 h ago".
std::string format_age(std::int64_t age_ms);
// "5 s", "1.5 s", "2 min", "250 ms".
std::string format_interval(std::int64_t ms);
// An ISO 8601 timestamp ("2025-11-19T00:22:40.877+00:00", "2025-11-19 00:22:40") shown as
// "11-19 00:22:40"; anything unrecognised is returned as is.
std::string short_timestamp(std::string_view iso);

}  // namespace rtsync::app::view
