// The task app's binding to the coordination layer (rtsync/client/sync/binding.hpp): the seed's
// realtime contract, as `rtsync watch`, `rtsync demo` and `rtsync bench` use it.
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
// Thread safety: pure functions returning values.
#pragma once

#include <string_view>
#include <vector>

#include "rtsync/client/query/key.hpp"
#include "rtsync/client/sync/binding.hpp"

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

/// The whole binding (see the file comment).
sync::SyncBinding task_binding();

}  // namespace rtsync::client::domain
