// The task app's binding to the coordination layer (rtsync/client/sync/binding.hpp): the seed's
// realtime contract, as `rtsync watch`, `rtsync demo` and `rtsync bench` use it by default
// (TaskSource::changes):
//
//   channel        "task-updates:<projectId>" (scope: the project id; diagnostics "projectId")
//   broadcast      `task-update`                                  → realtime:task-update
//   changes        INSERT on public.tasks, project_id=eq.<id>     → realtime:task-new
//                  UPDATE on public.tasks, project_id=eq.<id>     → realtime:task-update
//   freshness      ['tasks'], ['task-status-counts'], ['unified-generations'],
//                  ['tasks','paginated',<id>]
//   invalidations  realtime:task-update, realtime:task-new → task_families()
//   overflow       public.tasks → task_families()
//   gap fill       task_families()
//   stamped        realtime:task-update (lastTaskUpdateAt), realtime:task-new (lastNewTaskAt)
//
// TaskSource::broadcast (`--source broadcast`; docs/database-broadcast.md) takes the same events
// from Broadcast from Database instead — db/0006's trigger sends every task change to its
// project's private topic with realtime.broadcast_changes, readable by the project's owner:
//
//   channel        "project:<projectId>", private
//   broadcast      `INSERT` → realtime:task-new, `UPDATE` → realtime:task-update (the detail is
//                  the broadcast: {type, event, payload:{record, old_record, operation, table,
//                  schema, id}, meta:{id}})
//   changes        none; freshness, invalidations, overflow, gap fill, stamped: as above
//
// Thread safety: pure functions returning values.
#pragma once

#include <string_view>
#include <vector>

#include "rtsync/client/query/key.hpp"
#include "rtsync/client/sync/binding.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::client::domain {

/// A task changed (UPDATE on public.tasks, or the `task-update` broadcast).
inline constexpr std::string_view kTaskUpdateEvent = "realtime:task-update";
/// A task was created (INSERT on public.tasks).
inline constexpr std::string_view kTaskNewEvent = "realtime:task-new";

/// The six families the seed invalidates, in its order: tasks, task-status-counts,
/// unified-generations, shots, unpositioned-count, project-video-counts.
std::vector<query::QueryKey> task_families();

/// The task app's tables: public.tasks → task_families().
std::vector<sync::TableFamilies> task_table_families();

/// Where the task binding's realtime events come from (see the file comment).
enum class TaskSource {
  changes,    ///< postgres_changes on public.tasks, channel "task-updates:<id>" (the seed's)
  broadcast,  ///< Broadcast from Database: private channel "project:<id>", events INSERT/UPDATE
};
/// "changes" | "broadcast"
std::string_view to_string(TaskSource source) noexcept;
/// "changes" or "broadcast"; anything else is Errc::invalid_argument.
Result<TaskSource> parse_task_source(std::string_view text);

/// The whole binding (see the file comment).
sync::SyncBinding task_binding(TaskSource source = TaskSource::changes);

}  // namespace rtsync::client::domain
