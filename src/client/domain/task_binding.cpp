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

std::string_view to_string(TaskSource source) noexcept {
  return source == TaskSource::broadcast ? "broadcast" : "changes";
}

Result<TaskSource> parse_task_source(std::string_view text) {
  if (text == "changes") return TaskSource::changes;
  if (text == "broadcast") return TaskSource::broadcast;
  return make_error(
      Errc::invalid_argument,
      "the task source must be `changes` or `broadcast`, not `" + std::string(text) + "`");
}

sync::SyncBinding task_binding(TaskSource source) {
  sync::SyncBinding b;
  b.scope_name = "projectId";
  if (source == TaskSource::broadcast) {
    // db/0006: realtime.broadcast_changes(event = TG_OP) to the project's private topic.
    b.channel_prefix = "project:";
    b.private_channel = true;
    b.broadcasts = {{"INSERT", std::string(kTaskNewEvent)},
                    {"UPDATE", std::string(kTaskUpdateEvent)}};
  } else {
    b.channel_prefix = "task-updates:";
    b.broadcasts = {{"task-update", std::string(kTaskUpdateEvent)}};
    b.changes = {{"INSERT", "public", "tasks", "project_id", std::string(kTaskNewEvent)},
                 {"UPDATE", "public", "tasks", "project_id", std::string(kTaskUpdateEvent)}};
  }
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
