// The task pane's view-model: everything `rtsync watch` shows, as plain values, so the
// renderer is a pure view-model → lines function that unit tests check without a terminal. The
// client side (pane_source in src/app) fills it from the provider's ProviderState, the
// FreshnessTracker / SmartPolling and the query observers' results; the renderer (pane_render.hpp)
// turns it into lines; the ncurses layer only paints lines.
//
// Thread safety: plain values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtsync::app::view {

// The task statuses in the order the pane shows them (the database enum's order).
inline constexpr std::array<std::string_view, 5> kTaskStatuses = {
    "Queued", "In Progress", "Complete", "Failed", "Cancelled"};

// The connection badge: ● Connected / ◌ Connecting… / ○ Disconnected.
enum class Badge : std::uint8_t { connected, connecting, disconnected };

// The state of one query as the pane shows it.
enum class Load : std::uint8_t { pending, success, error };
struct LoadState {
  Load load = Load::pending;
  bool fetching = false;
  std::string error;  // when load == error (or a failed background refetch)
  friend bool operator==(const LoadState&, const LoadState&) = default;
};

struct TaskRow {
  std::string id;
  std::string type;
  std::string status;
  std::string created_at;  // as shown ("11-19 00:22:40")
  std::string updated_at;  // "" when never updated
  friend bool operator==(const TaskRow&, const TaskRow&) = default;
};

struct StatusCounts {
  std::int64_t queued = 0;
  std::int64_t in_progress = 0;
  std::int64_t complete = 0;
  std::int64_t failed = 0;
  std::int64_t cancelled = 0;
  friend bool operator==(const StatusCounts&, const StatusCounts&) = default;
};

enum class Mode : std::uint8_t { tasks, diagnostics, help };

struct PaneModel {
  // Header.
  std::string project_name;  // empty: no project
  int project_index = 0;     // 0-based
  int project_count = 0;
  Badge badge = Badge::connecting;
  std::string connection_error;  // shown with the Disconnected badge
  std::string realtime_status;   // the freshness status: connected | disconnected | error
  std::string realtime_reason;   // why, when not connected
  std::optional<std::int64_t> polling_interval_ms;  // the task list's current interval
  std::optional<std::int64_t> last_event_age_ms;    // none: no realtime event yet
  // Others watching the project (presences on its channel but ours); none before the first
  // presence state or without presence.
  std::optional<int> watchers;

  // Status counts, generation and video counts.
  LoadState counts_state;
  StatusCounts counts;
  LoadState media_state;
  std::optional<std::int64_t> generations;
  std::optional<std::int64_t> videos;

  // The paginated task list, newest first.
  LoadState tasks_state;
  std::vector<TaskRow> tasks;
  int page = 0;  // 0-based
  int page_size = 20;
  std::optional<std::int64_t> total;  // tasks matching the filter
  std::string status_filter;          // "" = all statuses

  // Modes and the footer.
  Mode mode = Mode::tasks;
  std::vector<std::string> diagnostics;  // the JSON snapshot, one line per element
  int diagnostics_scroll = 0;
  std::string notice;  // a transient message shown in the footer instead of the key help

  friend bool operator==(const PaneModel&, const PaneModel&) = default;
};

// Pages the list has: ceil(total / page_size), at least 1 (1 while the total is unknown).
int page_count(const PaneModel& model);

}  // namespace rtsync::app::view
