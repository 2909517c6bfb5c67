#include "view/pane_render.hpp"

#include <gtest/gtest.h>

#include "view/text.hpp"

namespace rtsync::app::view {
namespace {

PaneModel sample(int rows = 3) {
  PaneModel m;
  m.project_name = "Demo Project A";
  m.project_index = 0;
  m.project_count = 2;
  m.badge = Badge::connected;
  m.realtime_status = "connected";
  m.polling_interval_ms = 30000;
  m.last_event_age_ms = 3400;
  m.counts_state.load = Load::success;
  m.counts = {3, 2, 40, 5, 1};
  m.media_state.load = Load::success;
  m.generations = 38;
  m.videos = 12;
  m.tasks_state.load = Load::success;
  m.page_size = 20;
  m.total = 51;
  for (int i = 0; i < rows; ++i) {
    m.tasks.push_back(TaskRow{"id" + std::to_string(i), "image_generation", "In Progress",
                              "11-19 00:22:40", i == 0 ? "" : "11-19 00:22:41"});
  }
  return m;
}

bool contains(const std::vector<std::string>& lines, std::string_view needle) {
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

void expect_within(const std::vector<std::string>& lines, int width, int height) {
  ASSERT_EQ(static_cast<int>(lines.size()), std::max(height, 0));
  for (const auto& l : lines)
    EXPECT_LE(display_width(l), width) << "'" << l << "'";
}

TEST(PaneRender, FullScreenAt120x40) {
  const auto lines = render(sample(), 120, 40);
  expect_within(lines, 120, 40);
  EXPECT_EQ(lines[0].rfind("Demo Project A (1/2)", 0), 0u);
  // The badge is right-aligned on the first line.
  EXPECT_TRUE(lines[0].ends_with("● Connected")) << lines[0];
  EXPECT_EQ(display_width(lines[0]), 120);
  EXPECT_EQ(lines[1], "realtime: connected · polling: 30 s · last event: 3 s ago");
  EXPECT_TRUE(
      lines[2].starts_with("Queued 3 · In Progress 2 · Complete 40 · Failed 5 · Cancelled 1"))
      << lines[2];
  EXPECT_TRUE(lines[2].ends_with("generations 38 · videos 12")) << lines[2];
  EXPECT_EQ(lines[3], "Tasks, newest first · status: All · page 1/3 · 51 tasks");
  EXPECT_EQ(lines[4], "TYPE                          STATUS       CREATED         UPDATED");
  EXPECT_EQ(lines[5], "image_generation              In Progress  11-19 00:22:40");
  EXPECT_EQ(lines[6], "image_generation              In Progress  11-19 00:22:40  11-19 00:22:41");
  EXPECT_EQ(lines[8], "");
  EXPECT_TRUE(lines[39].starts_with("q quit · ←/→ page")) << lines[39];
}

TEST(PaneRender, BadgesAndErrors) {
  PaneModel m = sample();
  m.badge = Badge::connecting;
  EXPECT_TRUE(render(m, 100, 10)[0].ends_with("◌ Connecting…"));
  m.badge = Badge::disconnected;
  m.connection_error = "Failed to connect to realtime";
  m.realtime_status = "error";
  m.realtime_reason = "Subscription failed: CHANNEL_ERROR";
  m.polling_interval_ms = 5000;
  const auto lines = render(m, 100, 10);
  EXPECT_TRUE(lines[0].ends_with("○ Disconnected: Failed to connect to realtime")) << lines[0];
  EXPECT_EQ(lines[1],
            "realtime: error · polling: 5 s · last event: 3 s ago · Subscription failed: "
            "CHANNEL_ERROR");
}

TEST(PaneRender, NarrowTerminalsTruncateEveryLine) {
  const PaneModel m = sample(10);
  for (int w : {0, 1, 5, 12, 20, 37, 40, 53, 60, 79}) {
    for (int h : {0, 1, 2, 3, 6, 12}) {
      SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h));
      expect_within(render(m, w, h), w, h);
    }
  }
  // The badge survives a narrow width; the project name gives way.
  const auto narrow = render(m, 24, 10);
  EXPECT_TRUE(narrow[0].ends_with("● Connected")) << narrow[0];
  EXPECT_EQ(narrow[0], "Demo Projec… ● Connected");
  // Columns drop from the right: UPDATED first, then CREATED.
  EXPECT_TRUE(contains(render(m, 60, 10), "UPDATED"));
  EXPECT_FALSE(contains(render(m, 50, 10), "UPDATED"));
  EXPECT_TRUE(contains(render(m, 50, 10), "CREATED"));
  EXPECT_FALSE(contains(render(m, 30, 10), "CREATED"));
  EXPECT_TRUE(contains(render(m, 30, 10), "In Progress"));
}

TEST(PaneRender, TinyHeightsKeepTheHeaderFirstAndTheFooterLast) {
  const PaneModel m = sample();
  const auto one = render(m, 80, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_TRUE(one[0].starts_with("Demo Project A"));
  const auto two = render(m, 80, 2);
  EXPECT_TRUE(two[0].starts_with("Demo Project A"));
  EXPECT_TRUE(two[1].starts_with("q quit"));
}

TEST(PaneRender, RowsThatDoNotFitAreCounted) {
  const PaneModel m = sample(20);
  // 12 lines: 5 top, 1 footer → 6 rows: 5 tasks and the overflow marker.
  const auto lines = render(m, 100, 12);
  expect_within(lines, 100, 12);
  EXPECT_EQ(lines[10], "… 15 more on this page (a taller terminal shows them)");
  EXPECT_EQ(task_rows(12), 6);
}

TEST(PaneRender, ListStates) {
  PaneModel m = sample(0);
  m.tasks_state = {Load::pending, true, ""};
  m.total.reset();
  auto lines = render(m, 100, 10);
  EXPECT_EQ(lines[3], "Tasks, newest first · status: All · page 1/1 · refreshing…");
  EXPECT_EQ(lines[5], "Loading…");
  m.tasks_state = {Load::error, false, "HTTP 401: JWT expired"};
  EXPECT_EQ(render(m, 100, 10)[5], "Could not load tasks: HTTP 401: JWT expired");
  m.tasks_state = {Load::success, false, ""};
  m.total = 0;
  EXPECT_EQ(render(m, 100, 10)[5], "No tasks yet");
  m.status_filter = "Failed";
  lines = render(m, 100, 10);
  EXPECT_EQ(lines[3], "Tasks, newest first · status: Failed · page 1/1 · 0 tasks");
  EXPECT_EQ(lines[5], "No Failed tasks");
  // A failed background refetch keeps the rows and says so.
  m = sample(2);
  m.tasks_state = {Load::error, false, "timeout"};
  lines = render(m, 100, 10);
  EXPECT_TRUE(lines[3].ends_with("· refetch failed: timeout")) << lines[3];
  EXPECT_TRUE(lines[5].starts_with("image_generation"));
}

TEST(PaneRender, CountsLoadingAndError) {
  PaneModel m = sample();
  m.counts_state = {Load::pending, true, ""};
  m.generations.reset();
  m.videos.reset();
  auto lines = render(m, 120, 10);
  EXPECT_TRUE(
      lines[2].starts_with("Queued – · In Progress – · Complete – · Failed – · "
                           "Cancelled – (loading…)"))
      << lines[2];
  EXPECT_TRUE(lines[2].ends_with("generations – · videos –"));
  m.counts_state = {Load::error, false, "boom"};
  EXPECT_TRUE(render(m, 120, 10)[2].starts_with("status counts: error: boom"));
}

TEST(PaneRender, NoEventYetAndNoProject) {
  PaneModel m = sample();
  m.last_event_age_ms.reset();
  m.polling_interval_ms.reset();
  EXPECT_EQ(render(m, 100, 10)[1], "realtime: connected · polling: – · last event: none");
  m.project_name.clear();
  EXPECT_TRUE(render(m, 100, 10)[0].starts_with("rtsync · no project"));
  m.project_name = "Solo";
  m.project_count = 1;
  EXPECT_TRUE(render(m, 100, 10)[0].starts_with("Solo "));
}

TEST(PaneRender, DiagnosticsScrollAndClamp) {
  PaneModel m = sample();
  m.mode = Mode::diagnostics;
  for (int i = 0; i < 30; ++i)
    m.diagnostics.push_back("line " + std::to_string(i));
  // 12 lines: 3 header, title, 7 diagnostics lines, footer.
  m.diagnostics_scroll = 4;
  auto lines = render(m, 100, 12);
  expect_within(lines, 100, 12);
  EXPECT_TRUE(lines[3].starts_with("Diagnostics (JSON snapshot)"));
  EXPECT_TRUE(lines[3].ends_with("lines 5–11 of 30")) << lines[3];
  EXPECT_EQ(lines[4], "line 4");
  EXPECT_EQ(lines[10], "line 10");
  EXPECT_EQ(diagnostics_rows(12), 7);
  // Scrolled past the end: the last screenful.
  m.diagnostics_scroll = 100;
  lines = render(m, 100, 12);
  EXPECT_EQ(lines[4], "line 23");
  EXPECT_EQ(lines[10], "line 29");
}

TEST(PaneRender, HelpAndNotice) {
  PaneModel m = sample();
  m.mode = Mode::help;
  auto lines = render(m, 100, 30);
  EXPECT_EQ(lines[3], "Keys · ? back");
  EXPECT_TRUE(contains(lines, "k          drop the realtime connection"));
  m.notice = "Realtime dropped for 5 s (k)";
  EXPECT_EQ(render(m, 100, 30)[29], "Realtime dropped for 5 s (k)");
}

TEST(PaneRender, SameModelSameLines) {
  // The painter repaints only when lines differ: equal models must render equal lines.
  EXPECT_EQ(render(sample(), 90, 20), render(sample(), 90, 20));
  PaneModel older = sample();
  older.last_event_age_ms = 3999;  // still "3 s ago"
  EXPECT_EQ(render(older, 90, 20), render(sample(), 90, 20));
  older.last_event_age_ms = 4000;
  EXPECT_NE(render(older, 90, 20), render(sample(), 90, 20));
}

TEST(PaneFormat, AgesIntervalsTimestamps) {
  EXPECT_EQ(format_age(0), "just now");
  EXPECT_EQ(format_age(999), "just now");
  EXPECT_EQ(format_age(1000), "1 s ago");
  EXPECT_EQ(format_age(119999), "119 s ago");
  EXPECT_EQ(format_age(120000), "2 min ago");
  EXPECT_EQ(format_age(7200000), "2 h ago");
  EXPECT_EQ(format_interval(5000), "5 s");
  EXPECT_EQ(format_interval(1500), "1.5 s");
  EXPECT_EQ(format_interval(250), "250 ms");
  EXPECT_EQ(format_interval(120000), "2 min");
  EXPECT_EQ(format_interval(90000), "90 s");
  EXPECT_EQ(short_timestamp("2025-11-19T00:22:40.877+00:00"), "11-19 00:22:40");
  EXPECT_EQ(short_timestamp("2025-11-19 00:22:40+00"), "11-19 00:22:40");
  EXPECT_EQ(short_timestamp("yesterday"), "yesterday");
  EXPECT_EQ(short_timestamp("2025-11-19Xoo:22:40.877"), "2025-11-19Xoo:22:40.877");
  EXPECT_EQ(page_count(sample()), 3);
  PaneModel m = sample();
  m.total = 40;
  EXPECT_EQ(page_count(m), 2);
  m.total = 0;
  EXPECT_EQ(page_count(m), 1);
  m.total.reset();
  EXPECT_EQ(page_count(m), 1);
}

}  // namespace
}  // namespace rtsync::app::view
