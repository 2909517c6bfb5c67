// RealtimeProvider — the seed's SimpleRealtimeProvider and useSimpleRealtime: follows the selected
// project, exposes the connection state, and turns realtime events into query invalidations.
//
// Lifecycle, following the observable ProjectSelection:
//   none    → leaves the channel; state {connected false, connecting false, error none};
//             freshness reset.
//   set     → state connecting (error cleared); manager.join_project(id). A join that fails
//             (auth check, CHANNEL_ERROR, TIMED_OUT, the 10 s guard) sets error "Failed to connect
//             to realtime".
//   switch  → the manager leaves the old channel before joining the new one.
//   destroy → leaves the channel (the effect's cleanup).
// The state then follows the channel's real state through RealtimeManager::on_phase (DESIGN.md;
// the seed only reflects the first join): SUBSCRIBED → connected, error cleared; CHANNEL_ERROR /
// TIMED_OUT / server close → not connected, error = the reason; heal joins show as connecting.
//
// Invalidation. Each event in `invalidations` (default: realtime:task-update and
// realtime:task-new → the six families tasks, task-status-counts, unified-generations, shots,
// unpositioned-count, project-video-counts) invalidates its families through the cache's burst
// coalescing (InvalidateOptions::realtime): the first event refetches every active match at once,
// later events inside the window merge into one trailing refetch per query. The event also sets
// last_task_update / last_new_task {payload, timestamp}.
//
// Changes overflow. `realtime:changes-overflow` (the server's "Too many changes": a transaction
// changed more rows of one table than it sends one by one) invalidates the families of that table
// in `table_families` (default: public.tasks → the six), exactly as an event would — through the
// cache's burst coalescing, and through the batch window when one is set — so the refetch runs
// after the changes already received and reads the whole transaction. A table without an entry
// invalidates nothing (logged). Counted in stats: overflows, overflows_unbound.
//
// Gap fill. Every transition into SUBSCRIBED (the first join included, and every rejoin after a
// drop, error or heal) invalidates `gap_fill_families` (default: the six): what changed while
// realtime was down is fetched, never silently missed.
//
// Thread safety: loop-confined (checked in debug builds, rtsync/core/loop_check.hpp). Manager,
// cache, bus, tracker and selection must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/observable.hpp"
#include "rtsync/client/sync/realtime_manager.hpp"
#include "rtsync/core/event_bus.hpp"
#include "rtsync/core/json.hpp"

namespace rtsync::client::sync {

struct EventStamp {
  std::shared_ptr<const json::value> payload;  // the bus detail, shared with the manager
  std::int64_t timestamp = 0;                  // wall-clock epoch ms
  friend bool operator==(const EventStamp&, const EventStamp&) = default;
};

// The context value {isConnected, isConnecting, error, lastTaskUpdate, lastNewTask}.
struct ConnectionState {
  bool is_connected = false;
  bool is_connecting = false;
  std::optional<std::string> error;
  std::optional<EventStamp> last_task_update;
  std::optional<EventStamp> last_new_task;
};

// The six families the seed invalidates, in its order.
std::vector<query::QueryKey> seed_task_families();

// The query families that read one table: what to refetch when that table's changes cannot be
// delivered one by one.
struct TableFamilies {
  std::string schema;
  std::string table;
  std::vector<query::QueryKey> families;
};
// The task app's tables: public.tasks → seed_task_families().
std::vector<TableFamilies> seed_table_families();

struct RealtimeProviderOptions {
  // Event name → families invalidated on it.
  std::vector<std::pair<std::string, std::vector<query::QueryKey>>> invalidations = {
      {"realtime:task-update", seed_task_families()}, {"realtime:task-new", seed_task_families()}};
  // Table → families, for `realtime:changes-overflow` (one entry per table; the first match wins).
  std::vector<TableFamilies> table_families = seed_table_families();
  // Invalidated after every transition into SUBSCRIBED.
  std::vector<query::QueryKey> gap_fill_families = seed_task_families();
  // Coalesced, cancel_refetch (the cache's default window).
  query::InvalidateOptions invalidate = query::InvalidateOptions::realtime();
  // Opt-in event batching in front of the cache (off by default): the first event of a quiet
  // period invalidates at once; events arriving within `batch_window` after an invalidation of the
  // same entry are folded into ONE invalidation at the window's end (which opens the next window).
  // Refetch timing matches the cache's coalescing (leading + one trailing per window); what
  // changes is that matches are marked invalidated at the window's end rather than per event, and
  // a burst costs one flag per event instead of one cache call per family. Timer:
  // timers::InvalidationCoalesce.
  std::optional<core::Duration> batch_window;
};

struct ProviderStats {
  std::uint64_t events = 0;
  std::uint64_t invalidation_calls = 0;   // invalidate_queries calls made
  std::uint64_t refetches_started = 0;    // leading refetches those calls started
  std::uint64_t refetches_coalesced = 0;  // refetches they deferred to a trailing edge
  std::uint64_t gap_fills = 0;
  std::uint64_t events_batched = 0;     // events/overflows folded into a window-end invalidation
  std::uint64_t overflows = 0;          // changes-overflow signals of a bound table
  std::uint64_t overflows_unbound = 0;  // … of a table without families: nothing invalidated
};

class RealtimeProvider {
 public:
  RealtimeProvider(RealtimeManager& manager, query::QueryClient& cache, core::EventBus& bus,
                   FreshnessTracker& freshness, ProjectSelection& project,
                   RealtimeProviderOptions options = {});
  ~RealtimeProvider();
  RealtimeProvider(const RealtimeProvider&) = delete;
  RealtimeProvider& operator=(const RealtimeProvider&) = delete;

  const ConnectionState& state() const noexcept { return state_; }
  // Called after every state change (connection fields and event stamps alike).
  core::Subscription subscribe(std::function<void(const ConnectionState&)> listener);
  const ProviderStats& stats() const noexcept { return stats_; }
  // {isConnected, isConnecting, error, lastTaskUpdateAt, lastNewTaskAt, projectId,
  //  stats{events, …, overflows, overflowsUnbound}}
  json::value diagnostics() const;

 private:
  void apply(const std::optional<std::string>& project);
  void on_phase(const ChannelPhaseChange& change);
  void on_event(std::size_t index, const json::value& detail);
  void on_overflow(const json::value& detail);
  // Invalidates entry `index` of entries_ (at once, or folded into its open batch window).
  void trigger(std::size_t index);
  void invalidate(const std::vector<query::InvalidateFilters>& filters);
  void open_batch(std::size_t index);
  void set_connection(bool connected, bool connecting, std::optional<std::string> error);
  void publish();

  RealtimeManager& manager_;
  query::QueryClient& cache_;
  FreshnessTracker& freshness_;
  ProjectSelection& project_;
  RealtimeProviderOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  ConnectionState state_;
  ListenerList<const ConnectionState&> listeners_;
  ProviderStats stats_;
  std::optional<std::string> current_;  // the project this provider joined
  std::uint64_t generation_ = 0;        // bumped per selection, to drop stale join results
  bool subscribed_ = false;             // last phase was SUBSCRIBED
  // What one trigger invalidates, built once: one entry per options_.invalidations item, then one
  // per options_.table_families item (at table_entries_ + i).
  struct Entry {
    std::string label;  // the bus event, or "<schema>.<table> overflow", for the log
    std::vector<query::InvalidateFilters> filters;
  };
  std::vector<Entry> entries_;
  std::size_t table_entries_ = 0;
  std::vector<query::InvalidateFilters> gap_filters_;
  std::vector<core::Subscription> event_subs_;
  // Per entry, with batch_window: the open window and whether triggers wait for it.
  struct Batch {
    core::Timer window;
    bool pending = false;
  };
  std::vector<Batch> batches_;
  core::Subscription phase_sub_;
  core::Subscription project_sub_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rtsync::client::sync
