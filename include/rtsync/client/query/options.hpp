// Options of queries, fetches and filters — TanStack Query v5's option names in C++ form.
// Plain structs with std::chrono fields; every field has TanStack's browser default unless noted.
//
// Query functions (callbacks, not coroutines). A `QueryFn` is called on the loop with the query's
// key, a CancellationToken and a Completion. It starts its work and returns; later it calls the
// Completion exactly once with the data (a json::value) or an Error:
//
//   QueryFn fetch_tasks = [&rest](const QueryKey& key, CancellationToken token, Completion done) {
//     auto req = rest.get("/tasks", ..., [done](Result<json::value> r) { done(std::move(r)); });
//     token.on_cancel([req] { req->abort(); });   // optional: lets cancellation abort the work
//   };
//
// Contract of Completion:
//   - The result is applied on the loop, in a task posted by the Completion — never inside the call
//     to the Completion (so a query function may complete synchronously without re-entering the
//     cache). With a scheduler whose post() is thread-safe (AsioScheduler), the Completion may be
//     called from any thread.
//   - A second call is ignored, logged and counted (QueryClient::stats().duplicate_completions).
//   - A call after the fetch was cancelled or superseded is ignored and counted
//     (stats().late_completions).
//   - A query function that throws counts as a failed attempt (Errc::internal, "query function
//     threw: …"); retries apply as for any failure. A Completion dropped without being called
//     leaves the fetch running until it is cancelled (as a JavaScript promise that never settles
//     would).
//
// Thread safety: plain values; the std::function members are called on the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <variant>

#include "rtsync/client/query/data.hpp"
#include "rtsync/client/query/key.hpp"
#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client::query {

using core::Duration;
using core::TimePoint;

// "Forever" for gc_time and stale_time (JavaScript's Infinity).
inline constexpr Duration kInfinite = Duration::max();

class Query;
namespace detail {
struct Access;  // the cache's internals build tokens and completions
}  // namespace detail

// ---- cancellation -----------------------------------------------------------------------------

// The AbortSignal of one fetch. Cancelled when the fetch is cancelled (cancel_queries, a
// cancel_refetch, the query's removal, or the last observer leaving while the fetch "consumed" the
// token). A query function that calls `cancelled()` or `on_cancel()` has consumed the token, which
// is TanStack's abortSignalConsumed: then the last observer leaving cancels the fetch (and reverts
// the query's state) instead of letting it finish into the cache.
//
// Thread safety: `cancelled()` may be read from any thread; `on_cancel` and cancellation happen on
// the loop.
class CancellationToken {
 public:
  CancellationToken();
  // True once the fetch was cancelled (consumes the token).
  bool cancelled() const noexcept;
  // Runs `fn` on cancellation (at once if already cancelled). The Subscription unregisters it.
  core::Subscription on_cancel(std::function<void()> fn) const;

 private:
  friend struct detail::Access;
  struct State;
  explicit CancellationToken(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// Resolves one attempt of a query function (see the header comment).
class Completion {
 public:
  Completion() = default;
  // Ends the attempt with data or an error; only the first call counts. resolve(v) and
  // reject(e) are the same with a value or an error. May be called from any thread (the result is
  // handed to the loop).
  void operator()(Result<json::value> result) const;
  void resolve(json::value value) const { (*this)(Result<json::value>(std::move(value))); }
  void reject(Error error) const { (*this)(Result<json::value>(std::move(error))); }
  // True once called.
  bool done() const noexcept;

  struct State;

 private:
  friend struct detail::Access;
  explicit Completion(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// `queryFn`: starts one attempt for `key` and reports it through `done`, now or later (see the
// header comment). Called on the loop.
using QueryFn = std::function<void(const QueryKey& key, CancellationToken token, Completion done)>;

// ---- retry ------------------------------------------------------------------------------------

// `retry`: false/0 (never), a number n (retry while failure_count < n), true (forever), or a
// predicate (failure_count, error). `failure_count` is 0 on the first failure, as in TanStack.
class Retry {
 public:
  // Retry again after failure number `failure_count` (0-based) with `error`?
  using Predicate = std::function<bool(std::uint32_t failure_count, const Error& error)>;
  Retry() = default;  // never
  // true: forever, false: never.
  Retry(bool always) : times_(always ? UINT32_MAX : 0) {}  // NOLINT
  // Up to `times` retries (negative: none).
  Retry(int times) : times_(times < 0 ? 0 : static_cast<std::uint32_t>(times)) {}  // NOLINT
  // Any callable (failure_count, error) -> bool (a captureless lambda would otherwise convert to
  // bool).
  template <class F,
            std::enable_if_t<std::is_invocable_r_v<bool, F&, std::uint32_t, const Error&>, int> = 0>
  Retry(F predicate) : predicate_(std::move(predicate)) {}  // NOLINT
  // Named forms: no retry, up to n retries, retry forever.
  static Retry never() { return Retry(0); }
  static Retry times(std::uint32_t n) { return Retry(static_cast<int>(n)); }
  static Retry forever() { return Retry(true); }

  // Whether to retry after failure number `failure_count` (0-based) with `error`.
  bool should_retry(std::uint32_t failure_count, const Error& error) const {
    if (predicate_) return predicate_(failure_count, error);
    return times_ == UINT32_MAX || failure_count < times_;
  }

 private:
  std::uint32_t times_ = 0;
  Predicate predicate_;
};

// `retryDelay`: a function of (failure_count, error); empty means the default
// min(1000 ms · 2^failure_count, 30 s) — 1 s, 2 s, 4 s, … (attempts at 0, 1, 3, 7 s).
using RetryDelay = std::function<Duration(std::uint32_t failure_count, const Error& error)>;
Duration default_retry_delay(std::uint32_t failure_count);

// `networkMode`: `online` fetches only while QueryClient::is_online() (otherwise the fetch is
// paused); `always` ignores the network; `offline_first` runs the first attempt anyway and pauses
// retries while offline.
enum class NetworkMode : std::uint8_t { online, always, offline_first };

// ---- staleness, intervals ---------------------------------------------------------------------

// `staleTime`: a duration (kInfinite = never stale by time, but invalidation still makes it stale)
// or `static` (never stale, not even when invalidated; never refetched by invalidation).
struct StaleTime {
  Duration duration{0};    // stale once data is this old (default 0: at once)
  bool is_static = false;  // `static`: never stale
  StaleTime() = default;
  // A duration; duration::max() means kInfinite.
  template <class Rep, class Period>
  StaleTime(std::chrono::duration<Rep, Period> d)  // NOLINT
      : duration(d == std::chrono::duration<Rep, Period>::max()
                     ? kInfinite
                     : std::chrono::duration_cast<Duration>(d)) {}
  // TanStack's staleTime: 'static'.
  static StaleTime static_() {
    StaleTime s;
    s.is_static = true;
    return s;
  }
  // Same duration and kind.
  friend bool operator==(const StaleTime&, const StaleTime&) = default;
};

// `refetchInterval`: off, a fixed period, or a function of the query (re-evaluated on every query
// update and option change; returning nullopt or ≤ 0 means off).
class RefetchInterval {
 public:
  // The interval as a function of the query (nullopt or ≤ 0: off).
  using Fn = std::function<std::optional<Duration>(const Query& query)>;
  RefetchInterval() = default;  // off
  // A fixed period (≤ 0: off).
  template <class Rep, class Period>
  RefetchInterval(std::chrono::duration<Rep, Period> every)  // NOLINT
      : every_(std::chrono::duration_cast<Duration>(every)) {}
  // A function of the query, evaluated on the loop.
  RefetchInterval(Fn fn) : fn_(std::move(fn)) {}  // NOLINT
  // No polling.
  static RefetchInterval off() { return {}; }
  // The interval for `query` right now, or nullopt when off.
  std::optional<Duration> resolve(const Query& query) const;
  bool is_function() const noexcept { return static_cast<bool>(fn_); }  // given as a function

 private:
  std::optional<Duration> every_;
  Fn fn_;
};

// `refetchOnMount` / `refetchOnWindowFocus` / `refetchOnReconnect`.
enum class RefetchOn : std::uint8_t { never, if_stale, always };

// ---- per-query options --------------------------------------------------------------------------

// What a fetch needs: the query function and how to retry it. Unset fields take the client's
// defaults (ClientConfig) — except that fetch_query/prefetch_query default `retry` to never.
struct QueryOptions {
  QueryFn query_fn;            // fetches the data
  std::optional<Retry> retry;  // default ClientConfig::retry (3)
  RetryDelay retry_delay;      // default ClientConfig::retry_delay, else default_retry_delay
  // A query keeps the largest gc_time it has seen (default 5 min; kInfinite disables gc).
  std::optional<Duration> gc_time;
  NetworkMode network_mode = NetworkMode::online;  // see NetworkMode
  // false: store the fetched data as is (no replace_equal_deep).
  bool structural_sharing = true;
};

// ---- fetch_query --------------------------------------------------------------------------------

// Options of QueryClient::fetch_query / prefetch_query.
struct FetchQueryOptions {
  QueryKey key;        // the query to fetch
  QueryOptions query;  // its function and retry settings (retry defaults to never here)
  // fetch_query returns the cached data without fetching while it is not stale by this time.
  StaleTime stale_time{};
};

// ---- fetch / refetch / cancel options
// -------------------------------------------------------------

// Options of refetches (QueryClient::refetch_queries, QueryObserver::refetch).
struct RefetchOptions {
  // Cancel a running fetch and start again — only when the query already has data; otherwise the
  // running fetch is shared (TanStack: cancelRefetch has no effect on a pending first load).
  bool cancel_refetch = true;
};

// Options of QueryClient::cancel_queries.
struct CancelOptions {
  // Restore the state from before the fetch (default for cancel_queries).
  bool revert = true;
  // Do not record the cancellation as an error.
  bool silent = false;
};

}  // namespace rtsync::client::query
