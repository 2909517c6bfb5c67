// Internals of the query cache shared by its translation units. Not installed.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rtsync/client/query/names.hpp"
#include "rtsync/client/query/query.hpp"
#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/query/query_observer.hpp"
#include "rtsync/core/listener_list.hpp"
#include "rtsync/core/scheduler.hpp"

namespace rtsync::client::query {

struct CancellationToken::State {
  std::atomic<bool> cancelled{false};
  std::atomic<bool> consumed{false};  // TanStack's abortSignalConsumed
  core::ListenerList<> callbacks{loggers::kQuery, "cancellation callback"};
  void cancel();
};

namespace detail {

// Counters touched by Completions, which may run on other threads.
struct SharedCounters {
  std::atomic<std::uint64_t> duplicate_completions{0};
  std::atomic<std::uint64_t> late_completions{0};
};

struct Access {
  using TokenState = CancellationToken::State;
  static CancellationToken token(std::shared_ptr<TokenState> s) {
    return CancellationToken(std::move(s));
  }
  static Completion completion(std::shared_ptr<Completion::State> s) {
    return Completion(std::move(s));
  }
};

}  // namespace detail

struct Completion::State {
  std::atomic<bool> called{false};
  core::Scheduler* scheduler = nullptr;
  std::weak_ptr<detail::FetchRun> run;
  std::uint32_t attempt = 0;
  std::shared_ptr<detail::SharedCounters> counters;
};

namespace detail {

// ---- batching of notifications (notifyManager) --------------------------------------------------

class Notifier {
 public:
  explicit Notifier(ClientCore& core) : core_(core) {}
  // Scope guard: notifications queued inside are flushed in one posted task after the outermost
  // scope ends.
  class Batch {
   public:
    explicit Batch(Notifier& n) : n_(n) { ++n_.depth_; }
    ~Batch() {
      if (--n_.depth_ == 0) n_.maybe_post();
    }
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    Notifier& n_;
  };
  void enqueue(std::shared_ptr<ObserverCore> observer);
  void enqueue(CacheEvent event);
  bool has_cache_listeners() const noexcept;
  void flush();

 private:
  void maybe_post();
  ClientCore& core_;
  int depth_ = 0;
  bool posted_ = false;
  std::vector<std::shared_ptr<ObserverCore>> observers_;
  std::vector<CacheEvent> events_;
};

// ---- garbage collection: one scheduler timer for the earliest due query -------------------------

class GcQueue {
 public:
  explicit GcQueue(ClientCore& core) : core_(core) {}
  void schedule(Query& q, TimePoint due);
  void cancel(Query& q);
  std::size_t size() const noexcept { return heap_.size(); }

 private:
  // Due time and tie-breaker live in the entry, so that sifting never touches the queries.
  struct Entry {
    TimePoint due;
    std::uint64_t seq;
    Query* query;
    bool operator<(const Entry& o) const noexcept {
      return due != o.due ? due < o.due : seq < o.seq;
    }
  };
  void place(std::size_t i, const Entry& e);
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void erase_at(std::size_t i);
  void rearm();
  void fire();
  ClientCore& core_;
  std::vector<Entry> heap_;
  core::Timer timer_;
  TimePoint armed_{};
};

// ---- the prefix index (burst trie) ------------------------------------------------------------

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

struct IndexNode {
  std::string elem;  // canonical text of this level's element ("" at the root)
  IndexNode* parent = nullptr;
  std::uint32_t depth = 0;
  bool burst = false;
  std::vector<Query*> bucket;
  std::unordered_map<std::string, std::unique_ptr<IndexNode>, StringHash, std::equal_to<>> children;
  std::unique_ptr<json::value> parsed;  // elem parsed, for object/array filter elements
  const json::value& element();
};

class KeyIndex {
 public:
  static constexpr std::size_t kBucket = 16;
  KeyIndex();
  void insert(Query& q);
  void erase(Query& q);
  // Calls fn(Query&) for every query whose key partially matches `filter` (unordered).
  void for_each_match(const QueryKey& filter, const std::function<void(Query&)>& fn);
  void for_each(const std::function<void(Query&)>& fn);
  std::size_t node_count() const noexcept { return nodes_; }
  // Changes whenever a query enters or leaves the index: a list of matches computed at one
  // generation holds exactly the indexed queries matching it while the generation is unchanged.
  std::uint64_t generation() const noexcept { return generation_; }

 private:
  void place(Query& q, IndexNode* node);
  void burst(IndexNode* node);
  IndexNode* child(IndexNode* node, std::string_view elem);
  void walk(IndexNode* node, const QueryKey& filter, const std::vector<std::string_view>& felems,
            const std::function<void(Query&)>& fn);
  void collect(IndexNode* node, const std::function<void(Query&)>& fn);
  IndexNode root_;
  std::size_t nodes_ = 1;
  std::uint64_t generation_ = 1;
};

// ---- coalescing state of one query
// ----------------------------------------------------------------

struct CoalesceState {
  core::Timer window;
  Duration length{};
  bool trailing = false;
  bool cancel_refetch = true;
  RefetchType type = RefetchType::active;
};

// ---- one fetch (TanStack's retryer)
// -----------------------------------------------------------------

class FetchRun : public std::enable_shared_from_this<FetchRun> {
 public:
  enum class Status : std::uint8_t { pending, resolved, rejected };
  enum class Paused : std::uint8_t { no, before_start, before_retry };

  FetchRun(Query& query, ClientCore& core, std::shared_ptr<const QueryOptions> options);
  void start();
  void cancel(CancelOptions options);
  void cancel_retry() noexcept { retry_cancelled_ = true; }
  void continue_retry() noexcept { retry_cancelled_ = false; }
  // Resumes a paused run when it may go on (online/focus changed).
  void resume();
  void on_attempt_result(std::uint32_t attempt, Result<json::value> result);
  void detach() noexcept { query_ = nullptr; }

  Status status() const noexcept { return status_; }
  bool token_consumed() const noexcept { return token_->consumed.load(); }
  std::vector<Query::Waiter> waiters;

 private:
  void run_attempt();
  void after_sleep();
  void pause(Paused kind);
  bool can_start() const noexcept;
  bool can_continue() const noexcept;
  void reject(const Error& error);

  Query* query_;
  ClientCore* core_;
  std::shared_ptr<const QueryOptions> options_;
  QueryKey key_;
  std::shared_ptr<Access::TokenState> token_;
  Status status_ = Status::pending;
  Paused paused_ = Paused::no;
  bool retry_cancelled_ = false;
  std::uint32_t failure_count_ = 0;
  std::uint32_t attempt_ = 0;
  Error last_error_;
  core::Timer retry_timer_;
};

// ---- the observer
// -------------------------------------------------------------------------------------

class ObserverCore : public std::enable_shared_from_this<ObserverCore> {
 public:
  ObserverCore(std::shared_ptr<ClientCore> core, ObserverOptions options);
  ~ObserverCore();
  void init();
  // The client, while it lives (its scheduler is the loop the observer is confined to).
  std::shared_ptr<ClientCore> client() const noexcept { return core_.lock(); }

  core::Subscription subscribe(QueryObserver::Listener listener);
  bool has_listeners() const noexcept { return !listeners_.empty(); }
  void set_options(ObserverOptions options);
  void refetch(RefetchOptions options, std::function<void(const QueryResult&)> done);
  void destroy_observer();  // unmount (listeners gone or owner destroyed)
  void close();             // the owning QueryObserver is gone: drop listeners and unmount

  // From the query.
  void on_query_update();
  bool enabled() const noexcept { return options_.enabled; }
  const StaleTime& stale_time() const noexcept { return stale_time_; }
  bool is_stale_now() const noexcept;
  bool should_fetch_on(RefetchOn value) const;
  RefetchOn refetch_on_reconnect() const noexcept;
  RefetchOn refetch_on_window_focus() const noexcept;
  void execute_fetch(std::optional<bool> cancel_refetch, Query::Waiter waiter);
  const std::shared_ptr<const QueryOptions>& query_options() const noexcept {
    return query_options_;
  }

  // From the notifier.
  void deliver();
  bool queued = false;

  QueryResult result;
  ObserverOptions options_;
  std::shared_ptr<Query> query_;

 private:
  struct ListenerEntry {
    QueryObserver::Listener fn;
    std::uint64_t delivered = 0;  // result version last delivered (0: none yet)
  };

  void apply_defaults();
  void update_query();
  void update_result();
  QueryResult create_result() const;
  bool should_fetch_on_mount() const;
  bool should_fetch_optionally(const Query* prev_query, const ObserverOptions& prev) const;
  void update_timers();
  void update_stale_timeout();
  std::optional<Duration> compute_refetch_interval() const;
  void update_refetch_interval(std::optional<Duration> next);
  void on_interval_tick();
  void on_mount();
  void request_delivery();

  std::weak_ptr<ClientCore> core_;
  ClientCore* raw_core_;
  std::shared_ptr<const QueryOptions> query_options_;
  StaleTime stale_time_;
  core::BasicListenerList<ListenerEntry> listeners_;
  std::uint64_t version_ = 1;
  std::uint32_t initial_data_updates_ = 0;
  std::uint32_t initial_error_updates_ = 0;
  std::shared_ptr<Query> last_query_with_data_;
  std::uint64_t options_generation_ = 0;
  std::uint64_t result_options_generation_ = 0;
  core::Timer stale_timer_;
  core::Timer interval_timer_;
  std::optional<Duration> current_interval_;
  bool has_result_ = false;
  bool mounted_ = false;
};

// ---- the client's shared state
// -------------------------------------------------------------------

class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  ClientCore(core::Scheduler& scheduler, ClientConfig config);
  ~ClientCore();

  std::shared_ptr<Query> build(const QueryKey& key, std::shared_ptr<const QueryOptions> options);
  Query* get(std::string_view hash) const;
  std::vector<std::shared_ptr<Query>> find_all(const QueryFilters& filters);
  // The queries whose key matches `key` partially (or, with `exact`, by hash), in insertion order.
  // Non-exact lists are kept per filter hash until the index changes, so a filter repeated by every
  // realtime event walks the trie once per index change. The pointers are valid until the next
  // change of the index (no user code may run while a caller reads them).
  const std::vector<Query*>& key_matches(const std::optional<QueryKey>& key, bool exact);
  // A coalesced invalidation that would change nothing: every match that the call marks is already
  // invalidated and every match it would refetch already waits in an open window for its trailing
  // refetch with the same options. Filters with stale / fetch_status / predicate never qualify
  // (they may run user code). Fills `result` when it returns true. Reads only.
  bool saturated(const std::vector<Query*>& candidates, const InvalidateFilters& filters,
                 const InvalidateOptions& options, RefetchType type,
                 InvalidateResult& result) const;
  bool matches_rest(const Query& q, const QueryFilters& filters) const;
  void remove(Query& q);
  void shutdown();

  void emit(CacheEventType type, Query& q, QueryAction action = QueryAction::set_state);
  void fetch_for_refetch(Query& q, bool cancel_refetch, const std::shared_ptr<std::size_t>& pending,
                         const std::function<void()>& settled);
  void coalesced_refetch(Query& q, const InvalidateOptions& options, RefetchType type,
                         InvalidateResult& result, const std::shared_ptr<std::size_t>& pending,
                         const std::function<void()>& settled);
  void on_window_end(Query& q);
  bool refetchable(const Query& q, RefetchType type) const;

  Retry resolve_retry(const QueryOptions& o) const { return o.retry ? *o.retry : config.retry; }
  Duration retry_delay(const QueryOptions& o, std::uint32_t failures, const Error& e) const;

  core::Scheduler& scheduler;
  ClientConfig config;
  std::unordered_map<std::string_view, std::shared_ptr<Query>> queries;
  // Queries removed from the cache that someone may still hold (an observer, a caller of
  // find_all): they keep pointing at this core, so shutdown() detaches them as it does the cached
  // ones — a removed query must never reach a client that is gone. Expired entries are pruned
  // when the list doubles.
  std::vector<std::weak_ptr<Query>> removed;
  std::size_t removed_pruned_at = 0;
  KeyIndex index;
  struct MatchList {
    std::uint64_t generation = 0;
    std::vector<Query*> queries;
  };
  std::unordered_map<std::string, MatchList, StringHash, std::equal_to<>> match_lists;
  // The lists of the filters used last, found by the identity of the filter's key (a caller that
  // repeats one InvalidateFilters per event skips hashing its key text). Holding the key keeps its
  // representation, and so its address, from being reused by another key.
  struct RecentList {
    QueryKey key;
    MatchList* list = nullptr;
  };
  std::vector<RecentList> recent_lists;
  std::vector<Query*> scratch;  // key_matches' answer for uncached (exact / unkeyed) filters
  Notifier notifier;
  GcQueue gc;
  std::shared_ptr<SharedCounters> counters = std::make_shared<SharedCounters>();
  ClientStats stats;
  bool online = true;
  bool focused = true;
  bool alive = true;
  std::uint64_t next_seq = 1;

  core::ListenerList<const CacheEvent&> cache_listeners{loggers::kQuery, "cache listener"};
};

}  // namespace detail
}  // namespace rtsync::client::query
