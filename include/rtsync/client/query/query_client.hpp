// QueryClient — the query cache with TanStack Query v5 semantics (browser/client behaviour),
// on an injected scheduler. The rules are TanStack Query v5's (docs/query-semantics.md; the
// @tanstack/query-core peer in tests/peers is the reference implementation); this header states
// them as they map to C++ and what rtsync adds.
//
// Filters (`QueryFilters`, TanStack `matchQuery`). Every given filter must pass:
//   query_key  partial match (prefix of arrays, subset of objects — key.hpp), or with `exact` the
//              same hash;
//   type       all (default) | active (an enabled observer) | inactive (its negation);
//   stale      Query::is_stale() equals it;  fetch_status  equal;  predicate(query)  runs last.
// `find_all` returns matches in insertion order.
//
// Invalidation (`invalidate_queries`): every match is marked invalidated; then, unless
// refetch_type is none, matches of type `refetch_type` (default: the filter's `type`, else active)
// that are neither disabled nor static are refetched at once, whatever their stale_time. Inactive
// matches are only marked: their next observer refetches them (an invalidated query is stale).
// Refetches use cancel_refetch = true by default: a running fetch of a query that has data is
// cancelled and restarted; a pending first load is shared, never restarted.
//
// Beyond TanStack (1): the prefix index. Queries are indexed by their key elements in a burst
// trie (a trie whose leaves hold up to 16 queries in a bucket until they split). A filter key walks
// the trie element by element: a primitive element follows one child (hash lookup), an object or
// array element tests each child of that level with the partial-match rules, and every bucket met
// on the way is checked query by query. Cost: O(filter length × 16 + matches) for filters made of
// primitives (the families' ["tasks"], ["tasks","paginated",pid]…), plus one test per distinct
// value at a level where the filter has an object/array element — never a scan of the cache.
// `exact` filters are one hash lookup. TanStack scans every query for every call.
//
// Beyond TanStack (2): burst coalescing (opt-in per call: InvalidateOptions::coalesce). The rule,
// per query that the call would refetch:
//   - no window open → refetch now (leading edge) and open a window of `window` (default
//     ClientConfig::coalesce_window, 100 ms);
//   - window open → no refetch now; the query is marked "trailing";
//   - window end → if trailing and the query is still refetchable for that call's refetch type,
//     refetch once (trailing edge) and open a new window from that moment; otherwise close.
// So a burst of N invalidations costs each active query at most 2 refetches in any window-long
// interval (one per window in a sustained burst, plus the leading one) — never N; the last event of
// a burst is always followed by a refetch that starts after it. Marking (is_invalidated) is never
// delayed. Calls without `coalesce` behave exactly as TanStack and do not touch open windows.
// Cost in a burst: a coalesced call that finds every match already marked and already waiting in
// an open window for its trailing refetch with the same options changes nothing; it is answered by
// one read-only pass over the filter's match list (kept per filter key until a query enters or
// leaves the cache) — no allocation, no notification — and counted in
// ClientStats::saturated_invalidations.
//
// Garbage collection. A query keeps the largest gc_time it saw (default 5 min; kInfinite: never).
// Its gc timer (re)starts at creation, when its last observer leaves and when a fetch of an
// unobserved query settles; it stops when an observer subscribes. When it fires the query is
// removed only if it has no observer and is idle; a query fetching at that moment is collected one
// full gc_time after its fetch settles. gc_time 0 removes it on the next loop turn. (TanStack also
// re-arms the timer after fetches of observed queries; that timer can only fire into a no-op, so
// it is skipped. One scheduler timer, timers::QueryGc, serves the whole cache: the earliest due
// query.)
//
// Notifications. Observers and cache listeners are notified on the loop, in a task posted after the
// change (TanStack's notifyManager batching): a test calls `scheduler.run_ready()` to see them.
// Changes made in one loop turn are delivered together.
//
// Online / focus. `set_online(false)` pauses fetches of queries in network mode `online` (their
// fetch_status becomes paused) and pauses retries; `set_online(true)` continues them and refetches
// observed queries per refetch_on_reconnect. `set_focused` does the same for window focus
// (refetch_on_window_focus, retries, and refetch-interval ticks without
// refetch_interval_in_background). Both start true.
//
// Lifetime: queries, observers and handles may outlive the client; once the client is destroyed
// they are inert (nothing fetches, nothing is delivered).
// Thread safety: loop-confined (checked in debug builds, rtsync/core/loop_check.hpp) — every call
// on the scheduler's loop (Completion excepted, see
// options.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "rtsync/client/query/data.hpp"
#include "rtsync/client/query/key.hpp"
#include "rtsync/client/query/options.hpp"
#include "rtsync/client/query/query.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client::query {

// Client-wide defaults (TanStack's defaultOptions.queries, browser values).
struct ClientConfig {
  Retry retry = 3;                                   // retries after a failure (3: four attempts)
  RetryDelay retry_delay;                            // empty: default_retry_delay
  Duration gc_time = std::chrono::minutes(5);        // unused queries are removed after this
  StaleTime stale_time{};                            // 0
  RefetchOn refetch_on_mount = RefetchOn::if_stale;  // when an observer mounts
  RefetchOn refetch_on_window_focus = RefetchOn::if_stale;  // on set_focused(true)
  RefetchOn refetch_on_reconnect = RefetchOn::if_stale;     // never for network mode `always`
  // Default window of coalesced invalidations.
  Duration coalesce_window = std::chrono::milliseconds(100);
};

// Filter `type`: every query, those with an enabled observer (active), or the others.
enum class QueryType : std::uint8_t { all, active, inactive };
// Which invalidated queries to refetch (`refetchType`); none only marks them.
enum class RefetchType : std::uint8_t { none, active, inactive, all };

// TanStack's QueryFilters (rules in the file comment and docs/query-semantics.md §2).
struct QueryFilters {
  std::optional<QueryKey> query_key;        // prefix/subset match, or the same hash with `exact`
  bool exact = false;                       // match query_key exactly
  std::optional<QueryType> type;            // not given: all (invalidation: see refetch_type)
  std::optional<bool> stale;                // only stale (true) or fresh (false) queries
  std::optional<FetchStatus> fetch_status;  // only queries in this fetch status
  std::function<bool(const Query&)> predicate;  // last test; true keeps the query
};

// Filters of invalidate_queries: QueryFilters plus which matches to refetch.
struct InvalidateFilters : QueryFilters {
  // Which matches to refetch; default: `type` when given, else active.
  std::optional<RefetchType> refetch_type;
};

// Options of invalidate_queries.
struct InvalidateOptions {
  bool cancel_refetch = true;  // restart fetches of matches that have data (RefetchOptions)
  // Burst coalescing (see header). Off by default, as TanStack; realtime-driven callers turn it on.
  bool coalesce = false;
  // Window length; default ClientConfig::coalesce_window.
  std::optional<Duration> window;

  // The options realtime-driven invalidations use: coalesced, cancel_refetch.
  static InvalidateOptions realtime(std::optional<Duration> window = std::nullopt) {
    InvalidateOptions o;
    o.coalesce = true;
    o.window = window;
    return o;
  }
};

// What an invalidate/refetch call did, synchronously.
struct InvalidateResult {
  std::size_t matched = 0;    // queries the filters matched (and marked, for invalidation)
  std::size_t refetched = 0;  // fetches started or joined now
  std::size_t coalesced = 0;  // refetches deferred to a window's trailing edge
};

// What happened in the cache (CacheEvent::type).
enum class CacheEventType : std::uint8_t {
  added,
  removed,
  updated,
  observer_added,
  observer_removed
};
std::string_view to_string(CacheEventType t) noexcept;  // "added", "removed", …

// One cache event, as QueryClient::subscribe listeners receive it.
struct CacheEvent {
  CacheEventType type;                          // what happened
  std::shared_ptr<const Query> query;           // to which query
  QueryAction action = QueryAction::set_state;  // for `updated`
};

// Counters for diagnostics and tests.
struct ClientStats {
  std::uint64_t queries = 0;                  // in the cache now
  std::uint64_t fetches = 0;                  // fetch runs started
  std::uint64_t attempts = 0;                 // query-function calls
  std::uint64_t duplicate_completions = 0;    // a Completion called twice
  std::uint64_t late_completions = 0;         // completed after cancellation / supersession
  std::uint64_t query_fn_throws = 0;          // a query function threw
  std::uint64_t listener_errors = 0;          // an observer or cache listener threw
  std::uint64_t coalesced_refetches = 0;      // trailing refetches performed
  std::uint64_t saturated_invalidations = 0;  // coalesced calls that found nothing to change
  std::uint64_t gc_removed = 0;               // queries removed by gc
  std::uint64_t index_nodes = 0;              // prefix-index nodes
};

// The query cache (rules in the file comment). Thread safety: loop-confined; every method, and
// every callback it makes, runs on the scheduler's loop.
class QueryClient {
 public:
  // A cache whose timers run on `scheduler` (which must outlive it), with client-wide defaults.
  explicit QueryClient(core::Scheduler& scheduler, ClientConfig config = {});
  ~QueryClient();
  QueryClient(const QueryClient&) = delete;
  QueryClient& operator=(const QueryClient&) = delete;

  core::Scheduler& scheduler() const noexcept;  // as given
  const ClientConfig& config() const noexcept;  // as given

  // ---- reading --------------------------------------------------------------------------------
  // The data of the query with exactly this key (nullopt: none, or no data yet).
  std::optional<Data> get_query_data(const QueryKey& key) const;
  // The query with exactly this key, or nullptr.
  std::shared_ptr<const Query> get_query(const QueryKey& key) const;
  // Every query the filters match, in insertion order.
  std::vector<std::shared_ptr<const Query>> find_all(const QueryFilters& filters = {}) const;
  // Matching queries that are fetching.
  std::size_t is_fetching(const QueryFilters& filters = {}) const;
  std::size_t size() const noexcept;  // queries in the cache

  // ---- writing --------------------------------------------------------------------------------
  // Sets data as a manual success (structurally shared with the old data; creates the query).
  // Returns the stored data.
  Data set_query_data(const QueryKey& key, const json::value& data);
  Data set_query_data(const QueryKey& key, const Data& data);
  // Updater form: receives the current data (nullopt if none); returning nullopt changes nothing.
  std::optional<Data> set_query_data(
      const QueryKey& key,
      const std::function<std::optional<Data>(const std::optional<Data>&)>& updater);

  // ---- fetching -------------------------------------------------------------------------------
  // Receives fetch_query's data or final error.
  using FetchCallback = std::function<void(const Result<Data>&)>;
  // Returns the cached data if it is not stale by options.stale_time, else fetches (sharing a
  // running fetch). `done` runs on the loop. retry defaults to never.
  void fetch_query(FetchQueryOptions options, FetchCallback done = {});
  // fetch_query without a result (errors are dropped).
  void prefetch_query(FetchQueryOptions options);

  // ---- invalidation, refetch, cancel, remove ----------------------------------------------------
  // `settled` runs on the loop when every refetch this call started (or joined) has settled
  // (trailing coalesced refetches excluded).
  InvalidateResult invalidate_queries(const InvalidateFilters& filters = {},
                                      const InvalidateOptions& options = {},
                                      std::function<void()> settled = {});
  // Refetches matches that are not disabled or static (cancel_refetch default true).
  InvalidateResult refetch_queries(const QueryFilters& filters = {},
                                   const RefetchOptions& options = {},
                                   std::function<void()> settled = {});
  // Cancels running fetches of matches (revert default true). Returns how many were running.
  std::size_t cancel_queries(const QueryFilters& filters = {}, const CancelOptions& options = {});
  // Removes matches from the cache (their running fetches are cancelled silently). Observers keep
  // their removed query until they next fetch, which builds a new one.
  std::size_t remove_queries(const QueryFilters& filters = {});
  // Removes every query (remove_queries with no filters).
  void clear();

  // ---- environment ----------------------------------------------------------------------------
  // Network state (TanStack's onlineManager; default online). Going online resumes paused
  // fetches and refetches per refetch_on_reconnect.
  void set_online(bool online);
  bool is_online() const noexcept;
  // Focus (TanStack's focusManager; default focused). Regaining focus refetches per
  // refetch_on_window_focus; interval refetches pause while unfocused unless in background.
  void set_focused(bool focused);
  bool is_focused() const noexcept;

  // ---- tools ------------------------------------------------------------------------------------
  // Cache events (added, removed, updated with its action, observer added/removed), delivered on
  // the loop in order. Safe to remove from inside the callback.
  core::Subscription subscribe(std::function<void(const CacheEvent&)> listener);
  // Counters since construction (ClientStats).
  ClientStats stats() const;
  // {"queries":n,"fetching":n,"stats":{…}}
  json::object snapshot() const;

  // Internal: the shared state observers attach to.
  const std::shared_ptr<detail::ClientCore>& core() const noexcept { return core_; }

 private:
  std::shared_ptr<detail::ClientCore> core_;
};

}  // namespace rtsync::client::query
