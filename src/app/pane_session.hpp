// The task pane over a TaskClient: the observers of what the pane shows (the paginated tasks of
// the selected project, its status counts, generation and video counts), each following smart
// polling; the PaneModel built from them and from the provider's connection state, freshness and
// the realtime snapshot; the key commands; and the --json line stream.
//
// JSON lines (docs/watch-json.md) go to the sink given at construction, one call per line:
//   connection — on every change of the provider's state name or error (and once at start);
//   event      — every realtime:task-new / realtime:task-update on the EventBus;
//   query      — when an observer's status, fetch status, data or error changes;
//   polling    — when an observer's refetch interval changes (and once per new observer);
//   presence   — when the project channel's first presence state arrives and whenever who else
//                watches the project changes (TaskClient::on_viewers);
//   resume     — every rejoin of the project's channel (RealtimeManager::on_phase with an outcome
//                other than fresh): resumed with N replayed, or a gap.
//
// Thread safety: loop-confined (construct, call and destroy on the stack's loop).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "pane_queries.hpp"
#include "rtsync/client/sync/smart_polling.hpp"
#include "task_client.hpp"
#include "view/pane_input.hpp"
#include "view/pane_model.hpp"

namespace rtsync::app {

struct PaneSessionOptions {
  int page_size = 20;
};

class PaneSession {
 public:
  using LineSink = std::function<void(const std::string& line)>;

  PaneSession(TaskClient& stack, PaneSessionOptions options, LineSink json_sink = {});
  ~PaneSession();
  PaneSession(const PaneSession&) = delete;
  PaneSession& operator=(const PaneSession&) = delete;

  // The UI state matching what is observed now (project index of the stack's selection).
  view::PaneState initial_state() const;
  // Carries out what view::apply_key returned, `state` being the state after the key.
  void apply(view::Command command, const view::PaneState& state);

  view::PaneModel model(const view::PaneState& state) const;
  view::PaneLimits limits(const view::PaneState& state, int screen_height) const;

  const TasksPageParams& page() const noexcept { return page_; }
  client::sync::SmartQuery* tasks() const { return tasks_.get(); }
  client::sync::SmartQuery* counts() const { return counts_.get(); }
  client::sync::SmartQuery* generations() const { return generations_.get(); }
  client::sync::SmartQuery* videos() const { return videos_.get(); }
  std::uint64_t lines_emitted() const noexcept { return lines_; }

 private:
  struct Emitted {
    std::string status;
    bool fetching = false;
    core::TimePoint data_at{};
    std::uint32_t errors = 0;
    std::optional<std::int64_t> interval_ms;
  };
  void observe(const view::PaneState& state);
  void observe_project(const std::string& project_id);
  std::unique_ptr<client::sync::SmartQuery> make(client::query::ObserverOptions options,
                                                 std::optional<json::array> lookup,
                                                 core::Subscription& sub);
  void on_result(const client::query::QueryKey& key, const client::query::QueryResult& r);
  void emit_polling(bool only_changes);
  void emit_connection();
  void emit_presence(const std::vector<view::Viewer>& viewers, const view::ViewerChange& change);
  void emit(std::string line);
  std::string now_iso() const;
  std::optional<std::string> wall_iso(core::TimePoint t) const;

  TaskClient& stack_;
  PaneSessionOptions options_;
  LineSink sink_;
  client::domain::Fetchers fetchers_;
  std::uint64_t lines_ = 0;
  TasksPageParams page_;
  std::string project_id_;
  std::optional<client::query::Data> last_page_data_;  // shown while the next page loads
  std::unique_ptr<client::sync::SmartQuery> tasks_;
  std::unique_ptr<client::sync::SmartQuery> counts_;
  std::unique_ptr<client::sync::SmartQuery> generations_;
  std::unique_ptr<client::sync::SmartQuery> videos_;
  core::Subscription tasks_sub_, counts_sub_, generations_sub_, videos_sub_;
  std::map<std::string, Emitted> emitted_;  // by key hash
  std::string last_connection_;
  std::vector<core::Subscription> subs_;
};

}  // namespace rtsync::app
