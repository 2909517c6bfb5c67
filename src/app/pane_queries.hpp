// The task pane's queries. Keys and fetchers are the domain module's (the original app's keys,
// rtsync/client/domain/fetchers.hpp), so the provider's six families cover them:
//
//   tasks page     ["tasks","paginated",pid,page(1-based),limit,[status]|null]
//                  → {tasks:[…],total,hasMore,totalPages,currentPage}
//                  smart-polling lookup ["tasks","paginated",pid] (the manager records it)
//   status counts  ["task-status-counts",pid] → {queued,in_progress,complete,failed,cancelled,…}
//   generations    ["unified-generations","project",pid,1,1,{}] → {items,total,hasMore}
//   video counts   ["project-video-counts",pid] → {byShot,total}
//
// plus the user's project list, which the pane needs to name and switch projects:
//   projects       ["projects"]  GET /rest/v1/projects?select=id,name,created_at&order=created_at
//
// The readers below are tolerant: missing fields read as absent.
//
// Thread safety: the fetchers run on the loop of the RestClient they capture.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/client/domain/fetchers.hpp"
#include "rtsync/client/query/data.hpp"
#include "rtsync/client/query/key.hpp"
#include "rtsync/client/query/options.hpp"
#include "rtsync/client/rest/rest_client.hpp"
#include "view/pane_model.hpp"

namespace rtsync::app {

struct TasksPageParams {
  std::string project_id;
  int page = 0;  // 0-based here; the key carries page + 1 as the original does
  int limit = 20;
  std::string status;  // "" = every status
  friend bool operator==(const TasksPageParams&, const TasksPageParams&) = default;
};

client::domain::QueryDef tasks_page_query(const client::domain::Fetchers& f,
                                          const TasksPageParams& p);
client::query::QueryKey tasks_page_key(const TasksPageParams& p);
json::array tasks_lookup_key(std::string_view project_id);
client::domain::QueryDef generations_count_query(const client::domain::Fetchers& f,
                                                 const std::string& project_id);

client::query::QueryKey projects_key();
client::query::QueryFn projects_fetcher(client::rest::RestClient& rest);

// Reading cached data back.
std::vector<view::TaskRow> task_rows(const client::query::Data& page);
// "total" of a page / count result.
std::optional<std::int64_t> data_total(const client::query::Data& data);
std::optional<view::StatusCounts> status_counts(const client::query::Data& data);
// Rows a result holds: its "tasks" or "items" array, an array's length, 1 for another object.
std::optional<std::int64_t> data_rows(const client::query::Data& data);

}  // namespace rtsync::app
