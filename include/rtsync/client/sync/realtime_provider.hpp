// RealtimeProvider — the seed's SimpleRealtimeProvider and useSimpleRealtime (docs/original-app.md
// §5): follows the selected scope (the task app's project), exposes the connection state, and
// turns realtime events into query invalidations. What it invalidates comes from the manager's
// SyncBinding (binding.hpp), so the events it listens for are exactly those the manager emits; the
// examples below name the task app's binding (client::domain::task_binding()).
//
// Lifecycle, following the observable ProjectSelection:
//   none    → leaves the channel; state {connected false, connecting false, error none};
//             freshness reset.
//   set     → state connecting (error cleared); manager.join_project(id). A join that fails
//             (auth check, CHANNEL_ERROR, TIMED_OUT, the 10 s guard) sets error "Failed to connect
//             to realtime".
//   switch  → the manager leaves the old channel before joining the new one.
//   destroy → leaves the channel (the effect's cleanup).
// The state then follows the channel's real state through RealtimeManager::on_phase
// (docs/original-app.md §8; the seed only reflects the first join): SUBSCRIBED → connected, error
// cleared; CHANNEL_ERROR / TIMED_OUT / server close → not connected, error = the reason; heal joins
// show as connecting.
//
// Invalidation. Each event in the binding's `invalidations` (task app: realtime:task-update and
// realtime:task-new → the six families tasks, task-status-counts, unified-generations, shots,
// unpositioned-count, project-video-counts) invalidates its families through the cache's burst
// coalescing (InvalidateOptions::realtime): the first event refetches every active match at once,
// later events inside the window merge into one trailing refetch per query. An event among the
// binding's `stamped_events` also sets state().last(event) {payload, timestamp}.
//
// Changes overflow. `realtime:changes-overflow` (the server's "Too many changes": a transaction
// changed more rows of one table than it sends one by one) invalidates the families of that table
// in the binding's `table_families` (task app: public.tasks → the six), exactly as an event would —
// through the cache's burst coalescing, and through the batch window when one is set — so the
// refetch runs after the changes already received and reads the whole transaction. A table without
// an entry invalidates nothing (logged). Counted in stats: overflows, overflows_unbound.
//
// Gap fill. Every transition into SUBSCRIBED (the first join included, and every rejoin after a
// drop, error or heal) invalidates the channel's gap families: what changed while realtime was
// down is fetched, never silently missed. The channel's gap families are the binding's
// `gap_fill_families` that `table_families` maps one of the channel's tables (its change specs)
// to — so a gap refetches what that channel feeds and nothing else; when the binding maps none
// of its tables (or has no change specs, e.g. a Broadcast-from-Database channel, whose tables
// the client does not know), all of `gap_fill_families` (task app: the six either way).
// Resumable streams (docs/resume.md): a rejoin the server RESUMED (ChannelPhaseChange::outcome
// `resumed`: it replays what was missed, before live changes) fills nothing; counted in
// stats().resumes. A told gap, a server that does not resume (Supabase), and the first join fill
// as above; stats().gap_fills counts every fill, so it grows exactly when a rejoin was a gap.
//
// Thread safety: loop-confined (checked in debug builds, rtsync/core/loop_check.hpp). Manager,
// cache, bus, tracker and selection must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
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
#include "rtsync/core/loop_check.hpp"

namespace rtsync::client::sync {

// The last event of a kind and when it arrived.
struct EventStamp {
  std::shared_ptr<const json::value> payload;  // the bus detail, shared with the manager
  std::int64_t timestamp = 0;                  // wall-clock epoch ms
  // Same payload pointer and time.
  friend bool operator==(const EventStamp&, const EventStamp&) = default;
};

/// The context value {isConnected, isConnecting, error, last events} (the seed's lastTaskUpdate
/// and lastNewTask are the task binding's stamped events).
struct ProviderState {
  /// The scope's channel is subscribed.
  bool is_connected = false;
  /// A join (first join, switch or heal) is in progress.
  bool is_connecting = false;
  /// Why realtime is down ("Failed to connect to realtime", the channel's failure), if it is.
  std::optional<std::string> error;
  /// The latest payload of each of the binding's stamped events that arrived, by bus event.
  std::map<std::string, EventStamp, std::less<>> last_events;
  /// The latest stamp of `bus_event`, or null.
  const EventStamp* last(std::string_view bus_event) const {
    const auto it = last_events.find(bus_event);
    return it == last_events.end() ? nullptr : &it->second;
  }
  /// Member-wise.
  friend bool operator==(const ProviderState&, const ProviderState&) = default;
};

// The families a gap of the binding's channel refetches (see Gap fill in the file comment).
std::vector<query::QueryKey> channel_gap_families(const SyncBinding& binding);

// What the provider invalidates, and how.
struct RealtimeProviderOptions {
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

// What the provider has done since construction.
struct ProviderStats {
  std::uint64_t events = 0;               // bus events handled
  std::uint64_t invalidation_calls = 0;   // invalidate_queries calls made
  std::uint64_t refetches_started = 0;    // leading refetches those calls started
  std::uint64_t refetches_coalesced = 0;  // refetches they deferred to a trailing edge
  std::uint64_t gap_fills = 0;            // gap fills after entering SUBSCRIBED (not resumed)
  std::uint64_t resumes = 0;              // resumed rejoins: SUBSCRIBED without a gap fill
  std::uint64_t events_batched = 0;       // events/overflows folded into a window-end invalidation
  std::uint64_t overflows = 0;            // changes-overflow signals of a bound table
  std::uint64_t overflows_unbound = 0;    // … of a table without families: nothing invalidated
};

// Follows the selected project and turns realtime events into invalidations (behaviour in the
// file comment). Thread safety: loop-confined.
class RealtimeProvider {
 public:
  // Subscribes to `project` and applies its current value at once. Every argument must outlive
  // the provider.
  RealtimeProvider(RealtimeManager& manager, query::QueryClient& cache, core::EventBus& bus,
                   FreshnessTracker& freshness, ProjectSelection& project,
                   RealtimeProviderOptions options = {});
  ~RealtimeProvider();
  RealtimeProvider(const RealtimeProvider&) = delete;
  RealtimeProvider& operator=(const RealtimeProvider&) = delete;

  // The context value now.
  const ProviderState& state() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(cache_.scheduler());
    return state_;
  }
  // Called after every state change (connection fields and event stamps alike).
  core::Subscription subscribe(std::function<void(const ProviderState&)> listener);
  // Counters so far.
  const ProviderStats& stats() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(cache_.scheduler());
    return stats_;
  }
  // {isConnected, isConnecting, error, <stamped event's diagnostics_name>…, <scope_name>,
  //  stats{events, …, overflows, overflowsUnbound}} (task app: lastTaskUpdateAt, lastNewTaskAt,
  //  projectId; stats also gapFills, resumes)
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
  const SyncBinding& binding_;  // the manager's
  query::QueryClient& cache_;
  FreshnessTracker& freshness_;
  ProjectSelection& project_;
  RealtimeProviderOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  ProviderState state_;
  core::ListenerList<const ProviderState&> listeners_;
  ProviderStats stats_;
  std::optional<std::string> current_;  // the project this provider joined
  std::uint64_t generation_ = 0;        // bumped per selection, to drop stale join results
  bool subscribed_ = false;             // last phase was SUBSCRIBED
  // What one trigger invalidates, built once: one entry per binding invalidations item, then one
  // per binding table_families item (at table_entries_ + i).
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
