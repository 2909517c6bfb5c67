// Terminal text helpers for the task pane's renderer: display width of UTF-8 text and cutting or
// padding it to a number of columns, so narrow terminals truncate cleanly (never mid-character).
//
// Width rules (a deterministic subset of wcwidth, so tests do not depend on the locale):
// combining marks and zero-width characters count 0, East Asian wide and fullwidth ranges count 2,
// everything else 1. Invalid UTF-8 bytes count 1 each and are replaced by '?' when cut.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace rtsync::app::view {

// Columns `text` takes on a terminal.
int display_width(std::string_view text);

// `text` cut to at most `width` columns; when something was cut the last column is "…".
std::string truncate(std::string_view text, int width);

// `text` truncated to `width` and padded with spaces to exactly `width` columns.
std::string fit(std::string_view text, int width);

// `left` and `right` on one line of `width` columns: right-aligned `right`, `left` truncated first
// so that `right` stays visible; `right` itself is truncated only when it alone is too wide.
std::string spread(std::string_view left, std::string_view right, int width);

}  // namespace rtsync::app::view
