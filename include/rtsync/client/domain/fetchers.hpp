// The application's six query families (docs/original-app.md §5, §7): their query keys — exactly
// as the original app builds them — and the query functions that fetch them from /rest/v1 through
// a RestClient. The provider invalidates them by family prefix (`["tasks"]`,
// `["task-status-counts"]`, …). Family: key → data.
//
//   paginated tasks:      ["tasks","paginated",projectId,page,limit,status]
//                         → {tasks,total,hasMore,totalPages,currentPage}
//   task status counts:   ["task-status-counts",projectId]
//                         → {queued,…,processing,recent_successes,recent_failures}
//   project generations:  ["unified-generations","project",projectId,page,limit,filters]
//                         → {items,total,hasMore}
//   shot generations:     ["unified-generations","shot",shotId] → {items,total}
//   shots:                ["shots",projectId,maxImagesPerShot]
//                         → [{…shot,generation_count,images}]
//   unpositioned count:   ["unpositioned-count",shotId] → number
//   project video counts: ["project-video-counts",projectId] → {byShot:{shotId:n},total}
//
// Pages are 1-based; `status` is an array of task statuses or null (every status); `filters` is
// {"mediaType":"image"|"video"|"all", "starredOnly":bool} (absent members: no filter).
//
// Query functions run on the RestClient's loop; cancelling the fetch (the query cache's
// CancellationToken) cancels its HTTP request. Errors are RestClient's (Errc::unauthorized for
// 401/403 — not worth retrying, as the original's retry rule says).
//
// Thread safety: loop-confined; the RestClient must outlive every query function made here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rtsync/client/query/key.hpp"
#include "rtsync/client/query/options.hpp"
#include "rtsync/client/rest/rest_client.hpp"
#include "rtsync/core/json.hpp"

namespace rtsync::client::domain {

// A query key and the function that fetches it.
struct QueryDef {
  query::QueryKey key;  // the family's key for these arguments
  query::QueryFn fn;    // fetches it through the RestClient
};

// The families' prefixes, for invalidation.
const std::vector<query::QueryKey>& family_prefixes();

// Each family's key for the given arguments (the table in the file comment).
query::QueryKey paginated_tasks_key(const std::string& project_id, int page, int limit,
                                    const std::optional<std::vector<std::string>>& status);
query::QueryKey task_status_counts_key(const std::string& project_id);
query::QueryKey project_generations_key(const std::string& project_id, int page, int limit,
                                        const json::object& filters);
query::QueryKey shot_generations_key(const std::string& shot_id);
query::QueryKey shots_key(const std::string& project_id, int max_images_per_shot);
query::QueryKey unpositioned_count_key(const std::string& shot_id);
query::QueryKey project_video_counts_key(const std::string& project_id);

// The original's retry rule: up to 3 attempts, never for unauthorized/forbidden.
query::Retry default_retry();

// Builds each family's QueryDef (key and query function) over one RestClient.
class Fetchers {
 public:
  // `rest` must outlive the Fetchers and every query function they make.
  explicit Fetchers(rest::RestClient& rest) : rest_(rest) {}

  // The QueryDef of each family, arguments as its key function's.
  QueryDef paginated_tasks(std::string project_id, int page, int limit,
                           std::optional<std::vector<std::string>> status = std::nullopt) const;
  QueryDef task_status_counts(std::string project_id) const;
  QueryDef project_generations(std::string project_id, int page, int limit,
                               json::object filters = {}) const;
  QueryDef shot_generations(std::string shot_id) const;
  QueryDef shots(std::string project_id, int max_images_per_shot) const;
  QueryDef unpositioned_count(std::string shot_id) const;
  QueryDef project_video_counts(std::string project_id) const;

 private:
  rest::RestClient& rest_;
};

}  // namespace rtsync::client::domain
