// One cached query: its key, its state, and TanStack's state machine (`Query.#dispatch`).
//
// State transitions (TanStack v5, browser behaviour):
//   fetch    fetch_status = fetching (paused when the network mode cannot fetch), failure_count =
//   0,
//            failure_reason = null; with no data: status = pending, error = null; with data the
//            status is KEPT (success stays success, error stays error) — a background refetch.
//   success  data (structurally shared with the old data), data_updated_at = now,
//            data_update_count + 1, error = null, is_invalidated = false, status = success,
//            fetch_status = idle, failure_count = 0, failure_reason = null. A manual write
//            (set_query_data) leaves fetch_status and the failure fields alone.
//   failed   (a retry is coming) failure_count and failure_reason updated; status unchanged.
//   error    (final failure) status = error, fetch_status = idle, error = failure_reason = the
//            error, error_update_count + 1, failure_count + 1, is_invalidated = true; the old data
//            is KEPT.
//   invalidate  is_invalidated = true (nothing happens when it already is).
//   pause / continue  fetch_status paused ↔ fetching.
// A cancelled fetch with `revert` restores the state from before the fetch (fetch_status idle).
//
// Staleness (`is_stale_by_time`): no data → stale; static → never; invalidated → stale; otherwise
// stale once now - data_updated_at ≥ stale_time (exactly at the boundary).
//
// Queries are created and owned by the QueryClient; user code sees them as `const Query&` in
// filters' predicates, refetch-interval functions and cache events, or through
// QueryClient::get_query / find_all. A Query removed from the cache stays readable through the
// shared_ptr you hold (in_cache() turns false).
//
// Thread safety: loop-confined.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "rtsync/client/query/data.hpp"
#include "rtsync/client/query/key.hpp"
#include "rtsync/client/query/options.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::client::query {

// TanStack's `status`: no data yet (pending), the last fetch failed (error), data (success).
enum class QueryStatus : std::uint8_t { pending, error, success };
// TanStack's `fetchStatus`: a fetch is running, waiting to run (offline), or none.
enum class FetchStatus : std::uint8_t { fetching, paused, idle };
// "pending" | "error" | "success", "fetching" | "paused" | "idle".
std::string_view to_string(QueryStatus s) noexcept;
std::string_view to_string(FetchStatus s) noexcept;

// An error shared between the query state and observer results.
using ErrorPtr = std::shared_ptr<const Error>;

// A query's state, field for field TanStack's `Query.state` (docs/query-semantics.md §10).
struct QueryState {
  std::optional<Data> data;                      // nullopt = undefined (never fetched or set)
  TimePoint data_updated_at{};                   // epoch = never
  std::uint32_t data_update_count = 0;           // successful fetches and sets so far
  ErrorPtr error;                                // the last final error, cleared by a success
  TimePoint error_updated_at{};                  // when `error` was set; epoch = never
  std::uint32_t error_update_count = 0;          // final errors so far
  std::uint32_t failure_count = 0;               // TanStack fetchFailureCount
  ErrorPtr failure_reason;                       // TanStack fetchFailureReason
  bool is_invalidated = false;                   // marked by invalidation or an error
  QueryStatus status = QueryStatus::pending;     // see QueryStatus
  FetchStatus fetch_status = FetchStatus::idle;  // see FetchStatus
};

// Which transition produced a cache "updated" event.
enum class QueryAction : std::uint8_t {
  fetch,
  success,
  error,
  failed,
  invalidate,
  pause,
  continue_,
  set_state,
};
std::string_view to_string(QueryAction a) noexcept;  // "fetch", "success", …

class QueryClient;
namespace detail {
class ClientCore;
class ObserverCore;
class FetchRun;
struct IndexNode;
struct CoalesceState;
class GcQueue;
class KeyIndex;
}  // namespace detail

// The getters below are loop-confined, checked in debug builds (rtsync/core/loop_check.hpp) while
// the query has a client; undefined again after the class.
#if RTSYNC_LOOP_CHECKS
#define RTSYNC_QUERY_ON_LOOP() check_on_loop(static_cast<const char*>(__func__))
#else
#define RTSYNC_QUERY_ON_LOOP() static_cast<void>(0)
#endif

// One cached query: its key, state and observers. Created and owned by QueryClient; applications
// read it (QueryClient::find, QueryObserver::query) and never change it directly.
// Thread safety: loop-confined, like its QueryClient.
class Query : public std::enable_shared_from_this<Query> {
 public:
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query();

  const QueryKey& key() const noexcept { return key_; }             // its key
  const std::string& hash() const noexcept { return key_.hash(); }  // the key's hash
  // Its state now.
  const QueryState& state() const noexcept {
    RTSYNC_QUERY_ON_LOOP();
    return state_;
  }

  // At least one observer with enabled = true.
  bool is_active() const noexcept;
  // With observers: none enabled. Without: never fetched (no data and no error yet).
  bool is_disabled() const noexcept;
  // Has data and an observer with stale_time static.
  bool is_static() const noexcept;
  // With observers: any enabled observer sees it stale by its stale_time. Without: no data or
  // invalidated.
  bool is_stale() const noexcept;
  bool is_stale_by_time(const StaleTime& stale_time) const noexcept;
  // Fetched at least once (data or error).
  bool is_fetched() const noexcept {
    RTSYNC_QUERY_ON_LOOP();
    return state_.data_update_count + state_.error_update_count > 0;
  }
  // Observers now.
  std::size_t observer_count() const noexcept {
    RTSYNC_QUERY_ON_LOOP();
    return observers_.size();
  }
  // The largest gc_time seen (kInfinite: never collected).
  Duration gc_time() const noexcept {
    RTSYNC_QUERY_ON_LOOP();
    return gc_time_;
  }
  // False once removed from its cache (by gc, remove_queries or the client's destruction).
  bool in_cache() const noexcept {
    RTSYNC_QUERY_ON_LOOP();
    return in_cache_;
  }
  // Insertion order in the cache (find_all returns queries in this order).
  std::uint64_t sequence() const noexcept { return seq_; }

 private:
  friend class detail::ClientCore;
  friend class detail::ObserverCore;
  friend class detail::FetchRun;
  friend class detail::GcQueue;
  friend class detail::KeyIndex;
  friend class QueryClient;
  struct Private {};

 public:
  // Internal (made by the QueryClient).
  Query(Private, detail::ClientCore* client, QueryKey key, std::uint64_t seq);

 private:
  using Waiter = std::function<void(const Result<Data>&)>;

  // RTSYNC_ASSERT_ON_LOOP against the client's scheduler while the query has a client.
  void check_on_loop(const char* method) const noexcept;

  void set_options(std::shared_ptr<const QueryOptions> options);
  void update_gc_time(std::optional<Duration> gc_time);
  void fetch(const std::shared_ptr<const QueryOptions>* options, bool cancel_refetch,
             Waiter waiter);
  void cancel(CancelOptions options);
  void invalidate();
  Data set_data(const Data& data, bool manual, std::optional<TimePoint> updated_at);
  void set_data_json(const json::value& next, bool manual);
  void dispatch(QueryAction action);
  void add_observer(detail::ObserverCore* observer);
  void remove_observer(detail::ObserverCore* observer);
  void optional_remove();
  void destroy();
  void schedule_gc();
  void clear_gc();
  void schedule_gc_if_cached();
  void on_online();
  void on_focus();
  // Run callbacks.
  void on_run_success(detail::FetchRun* run, const json::value& value);
  void on_run_error(detail::FetchRun* run, const Error& error);
  void on_run_cancelled(detail::FetchRun* run, CancelOptions options);
  void revert(detail::FetchRun* run);
  void finish_run(detail::FetchRun* run);

  QueryKey key_;
  QueryState state_;
  std::shared_ptr<const QueryOptions> options_;
  detail::ClientCore* client_ = nullptr;
  std::vector<detail::ObserverCore*> observers_;
  std::shared_ptr<detail::FetchRun> run_;
  std::unique_ptr<QueryState> revert_state_;
  std::unique_ptr<detail::CoalesceState> coalesce_;
  Duration gc_time_{0};
  std::uint64_t seq_ = 0;
  detail::IndexNode* index_node_ = nullptr;
  std::uint32_t index_pos_ = 0;
  std::uint32_t gc_pos_ = UINT32_MAX;
  bool in_cache_ = false;
};

#undef RTSYNC_QUERY_ON_LOOP

}  // namespace rtsync::client::query
