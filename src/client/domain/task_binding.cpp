#include "rtsync/client/domain/task_binding.hpp"

#include <string>

namespace rtsync::client::domain {

std::vector<query::QueryKey> task_families() {
  return {query::QueryKey{"tasks"},
          query::QueryKey{"task-status-counts"},
          query::QueryKey{"unified-generations"},
          query::QueryKey{"shots"},
          query::QueryKey{"unpositioned-count"},
          query::QueryKey{"project-video-counts"}};
}

std::vector<sync::TableFamilies> task_table_families() {
  return {sync::TableFamilies{"public", "tasks", task_families()}};
}

sync::SyncBinding task_binding() {
  sync::SyncBinding b;
  b.channel_prefix = "task-updates:";
  b.scope_name = "projectId";
  b.broadcasts = {{"task-update", std::string(kTaskUpdateEvent)}};
  b.changes = {{"INSERT", "public", "tasks", "project_id", std::string(kTaskNewEvent)},
               {"UPDATE", "public", "tasks", "project_id", std::string(kTaskUpdateEvent)}};
  b.freshness_keys = [](const std::string& project) {
    return std::vector<json::array>{json::array{"tasks"}, json::array{"task-status-counts"},
                                    json::array{"unified-generations"},
                                    json::array{"tasks", "paginated", project}};
  };
  b.invalidations = {{std::string(kTaskUpdateEvent), task_families()},
                     {std::string(kTaskNewEvent), task_families()}};
  b.table_families = task_table_families();
  b.gap_fill_families = task_families();
  b.stamped_events = {{std::string(kTaskUpdateEvent), "lastTaskUpdateAt"},
                      {std::string(kTaskNewEvent), "lastNewTaskAt"}};
  return b;
}

}  // namespace rtsync::client::domain
