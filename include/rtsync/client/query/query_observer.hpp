// QueryObserver — TanStack's QueryObserver (what `useQuery` is built on): watches one query of a
// QueryClient, fetches it when needed, and delivers results to its listeners on the loop.
//
// Lifecycle.
//   - Construction resolves the query (creating it in the cache if needed) and computes the first
//     result (`result()`), without fetching.
//   - The first `subscribe` mounts the observer: the query becomes observed (active when
//     `enabled`), it is fetched when `refetch_on_mount` says so (default: when stale; always when
//     it has no data and is enabled), and the stale and refetch-interval timers start.
//   - When the last listener unsubscribes (or the observer is destroyed) it unmounts: timers stop,
//     the query loses the observer and its gc timer starts; a fetch whose token was consumed is
//     cancelled (state reverted), otherwise it finishes into the cache without further retries.
//
// Delivery. Every listener receives the current result once after subscribing, then each time the
// result changes in a field of `notify_on_change` (default: all fields), in a task posted to the
// loop; changes within one loop turn are coalesced into one call with the latest result. A refetch
// that returns equal data keeps `result().data` the same node (`same(a, b)`), so with
// notify_on_change = Data it produces no call at all. Unsubscribing — this listener, another one,
// or every one — from inside a listener is safe: removed listeners are not called again, and the
// observer object may even be destroyed from inside its own listener.
//
// Options at runtime (for SmartPolling and pagination):
//   - `set_refetch_interval(d)`: a new interval restarts the timer from now; nullopt / 0 stops it.
//     The interval also restarts whenever the query's state changes (TanStack re-arms its interval
//     on every query update), so it measures time since the last fetch started or settled.
//   - `set_stale_time`, `set_enabled`, or `set_options` for everything (a new key moves the
//     observer to that query and fetches it when stale; with `placeholder_data =
//     keep_previous_data()` the previous key's data is shown, flagged is_placeholder_data, until
//     the new data arrives).
// Interval ticks fetch without cancel_refetch (a running fetch is shared), and only while the
// client is focused unless `refetch_interval_in_background`. No timer runs while the observer has
// no listener or is disabled.
//
// Staleness timer: the result turns stale exactly stale_time after data_updated_at (TanStack adds
// 1 ms to work around browser timer jitter; the virtual clock needs no such margin).
//
// Thread safety: loop-confined.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "rtsync/client/query/data.hpp"
#include "rtsync/client/query/key.hpp"
#include "rtsync/client/query/options.hpp"
#include "rtsync/client/query/query.hpp"
#include "rtsync/client/query/query_client.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client::query {

// Fields of a result, for notify_on_change.
enum ResultField : std::uint32_t {
  kFieldData = 1u << 0,         // data, is_placeholder_data
  kFieldStatus = 1u << 1,       // status
  kFieldFetchStatus = 1u << 2,  // fetch_status
  kFieldError = 1u << 3,        // error, error_updated_at, error_update_count
  kFieldFailure = 1u << 4,      // failure_count, failure_reason
  kFieldStale = 1u << 5,        // is_stale
  kFieldOther = 1u << 6,        // data_updated_at, is_fetched*, is_enabled, is_invalidated
  kAllFields = 0x7f,
};

// What an observer shows: TanStack's QueryObserverResult, field for field (the query's state as
// this observer sees it, plus placeholder and staleness flags).
struct QueryResult {
  // The query's state fields (QueryState), with `data` the placeholder while is_placeholder_data.
  QueryStatus status = QueryStatus::pending;
  FetchStatus fetch_status = FetchStatus::idle;
  std::optional<Data> data;
  TimePoint data_updated_at{};
  ErrorPtr error;
  TimePoint error_updated_at{};
  std::uint32_t error_update_count = 0;
  std::uint32_t failure_count = 0;
  ErrorPtr failure_reason;
  bool is_placeholder_data = false;     // `data` is placeholder_data, not the query's
  bool is_stale = false;                // stale by this observer's stale_time
  bool is_fetched = false;              // the query was fetched at least once
  bool is_fetched_after_mount = false;  // … since this observer mounted
  bool is_enabled = true;               // the observer's `enabled`
  bool is_invalidated = false;          // the query is marked invalidated

  // TanStack's derived flags: is_loading = pending and fetching, is_refetching = fetching with
  // data, is_loading_error / is_refetch_error = error without / with data, and so on.
  bool is_pending() const noexcept { return status == QueryStatus::pending; }
  bool is_success() const noexcept { return status == QueryStatus::success; }
  bool is_error() const noexcept { return status == QueryStatus::error; }
  bool is_fetching() const noexcept { return fetch_status == FetchStatus::fetching; }
  bool is_paused() const noexcept { return fetch_status == FetchStatus::paused; }
  bool is_loading() const noexcept { return is_pending() && is_fetching(); }
  bool is_refetching() const noexcept { return is_fetching() && !is_pending(); }
  bool has_data() const noexcept { return data.has_value(); }
  bool is_loading_error() const noexcept { return is_error() && !has_data(); }
  bool is_refetch_error() const noexcept { return is_error() && has_data(); }

  // Bitmask of ResultField that differ (data compared with `same`).
  std::uint32_t changed_fields(const QueryResult& other) const noexcept;
};

// placeholderData: given the data of the last query this observer showed (nullopt if none),
// returns what to show while the current query has no data (nullopt: nothing).
using PlaceholderData = std::function<std::optional<Data>(const std::optional<Data>& previous)>;
// keepPreviousData.
PlaceholderData keep_previous_data();

// useQuery's options, as the observer takes them.
struct ObserverOptions {
  QueryKey key;         // the query observed
  QueryOptions query;   // query_fn, retry, retry_delay, gc_time, network_mode, structural_sharing
  bool enabled = true;  // false: never fetches by itself, does not make the query active
  std::optional<StaleTime> stale_time;               // default ClientConfig::stale_time
  RefetchInterval refetch_interval;                  // polling (off by default)
  bool refetch_interval_in_background = false;       // poll while the client is not focused too
  std::optional<RefetchOn> refetch_on_mount;         // default ClientConfig
  std::optional<RefetchOn> refetch_on_window_focus;  // default ClientConfig
  std::optional<RefetchOn> refetch_on_reconnect;     // default ClientConfig (never for `always`)
  bool retry_on_mount = true;        // false: a query in error is not fetched again on mount
  PlaceholderData placeholder_data;  // shown while the query has no data
  std::uint32_t notify_on_change = kAllFields;  // ResultField bits that trigger listeners
};

// Watches one query and delivers its results (lifecycle and thread safety: the file comment).
class QueryObserver {
 public:
  // Receives the current result (see Delivery in the file comment).
  using Listener = std::function<void(const QueryResult&)>;

  // Resolves the query in `client` (which must outlive the observer) and computes the first
  // result; nothing is fetched before the first subscribe.
  QueryObserver(QueryClient& client, ObserverOptions options);
  ~QueryObserver();
  // Movable: the listeners and timers move with it.
  QueryObserver(QueryObserver&&) noexcept;
  QueryObserver& operator=(QueryObserver&&) noexcept;
  QueryObserver(const QueryObserver&) = delete;
  QueryObserver& operator=(const QueryObserver&) = delete;

  // Adds a listener; the first one mounts the observer (may fetch). Removing the last unmounts.
  core::Subscription subscribe(Listener listener);
  bool has_listeners() const noexcept;  // mounted

  const QueryResult& result() const noexcept;       // the result now
  const ObserverOptions& options() const noexcept;  // the options now
  // The query observed now (may have been removed from the cache; see QueryClient).
  std::shared_ptr<const Query> query() const;

  // Changes options at runtime (see "Options at runtime" in the file comment).
  void set_options(ObserverOptions options);
  void set_refetch_interval(RefetchInterval interval);
  void set_stale_time(StaleTime stale_time);
  void set_enabled(bool enabled);

  // Fetches now (cancel_refetch default true); `done` gets the result after the fetch settles.
  void refetch(RefetchOptions options = {}, std::function<void(const QueryResult&)> done = {});

 private:
  std::shared_ptr<detail::ObserverCore> core_;
};

}  // namespace rtsync::client::query
