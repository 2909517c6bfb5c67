#include "rtsync/client/query/query_client.hpp"

#include <algorithm>

#include "internal.hpp"
#include "rtsync/client/query/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"

namespace rtsync::client::query {

namespace detail {

// ---- Notifier
// ------------------------------------------------------------------------------------

void Notifier::enqueue(std::shared_ptr<ObserverCore> observer) {
  if (observer->queued) return;
  observer->queued = true;
  observers_.push_back(std::move(observer));
  if (depth_ == 0) maybe_post();
}

void Notifier::enqueue(CacheEvent event) {
  events_.push_back(std::move(event));
  if (depth_ == 0) maybe_post();
}

bool Notifier::has_cache_listeners() const noexcept {
  return !core_.cache_listeners.empty();
}

void Notifier::maybe_post() {
  if (posted_ || (observers_.empty() && events_.empty())) return;
  posted_ = true;
  core_.scheduler.post([weak = core_.weak_from_this()] {
    if (auto core = weak.lock()) core->notifier.flush();
  });
}

void Notifier::flush() {
  posted_ = false;
  auto observers = std::move(observers_);
  observers_.clear();
  auto events = std::move(events_);
  events_.clear();
  for (auto& o : observers) {
    o->queued = false;
    o->deliver();
  }
  if (events.empty()) return;
  // Each event goes to the listeners live when it is delivered (TanStack's QueryCache.notify).
  const auto errors_before = core_.cache_listeners.errors();
  for (const auto& event : events)
    core_.cache_listeners.notify(event);
  core_.stats.listener_errors += core_.cache_listeners.errors() - errors_before;
}

// ---- GcQueue
// ---------------------------------------------------------------------------------------

void GcQueue::place(std::size_t i, const Entry& e) {
  heap_[i] = e;
  e.query->gc_pos_ = static_cast<std::uint32_t>(i);
}

void GcQueue::sift_up(std::size_t i) {
  const Entry e = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!(e < heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void GcQueue::sift_down(std::size_t i) {
  const std::size_t n = heap_.size();
  const Entry e = heap_[i];
  while (true) {
    std::size_t best = 2 * i + 1;
    if (best >= n) break;
    if (best + 1 < n && heap_[best + 1] < heap_[best]) ++best;
    if (!(heap_[best] < e)) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, e);
}

void GcQueue::erase_at(std::size_t i) {
  heap_[i].query->gc_pos_ = UINT32_MAX;
  const std::size_t last = heap_.size() - 1;
  if (i != last) {
    place(i, heap_[last]);
    heap_.pop_back();
    sift_down(i);
    sift_up(i);
  } else {
    heap_.pop_back();
  }
}

void GcQueue::schedule(Query& q, TimePoint due) {
  if (q.gc_pos_ != UINT32_MAX) erase_at(q.gc_pos_);
  heap_.push_back(Entry{due, q.seq_, &q});
  q.gc_pos_ = static_cast<std::uint32_t>(heap_.size() - 1);
  sift_up(heap_.size() - 1);
  rearm();
}

void GcQueue::cancel(Query& q) {
  if (q.gc_pos_ == UINT32_MAX) return;
  erase_at(q.gc_pos_);
  rearm();
}

void GcQueue::rearm() {
  if (heap_.empty()) {
    timer_.cancel();
    return;
  }
  const TimePoint due = heap_.front().due;
  if (timer_.pending() && armed_ == due) return;
  armed_ = due;
  timer_ =
      core_.scheduler.schedule(due - core_.scheduler.now(), timers::QueryGc, [this] { fire(); });
}

void GcQueue::fire() {
  const TimePoint now = core_.scheduler.now();
  Notifier::Batch batch(core_.notifier);
  while (!heap_.empty() && heap_.front().due <= now) {
    Query* q = heap_.front().query;
    erase_at(0);
    auto keep = q->shared_from_this();
    q->optional_remove();
  }
  rearm();
}

// ---- ClientCore
// ------------------------------------------------------------------------------------

ClientCore::ClientCore(core::Scheduler& s, ClientConfig c)
    : scheduler(s), config(std::move(c)), notifier(*this), gc(*this) {}

ClientCore::~ClientCore() = default;

void ClientCore::shutdown() {
  if (!alive) return;
  alive = false;
  recent_lists.clear();
  match_lists.clear();
  const auto detach = [](Query& q) {
    q.in_cache_ = false;
    q.coalesce_.reset();
    q.clear_gc();
    if (q.run_) q.run_->waiters.clear();
    q.cancel(CancelOptions{.revert = false, .silent = true});
    q.client_ = nullptr;
    q.index_node_ = nullptr;
  };
  for (auto& [hash, q] : queries)
    detach(*q);
  for (const auto& weak : removed) {
    if (auto q = weak.lock(); q && q->client_ == this) detach(*q);
  }
  queries.clear();
  removed.clear();
  cache_listeners.clear();
}

std::shared_ptr<Query> ClientCore::build(const QueryKey& key,
                                         std::shared_ptr<const QueryOptions> options) {
  if (auto it = queries.find(key.hash()); it != queries.end()) return it->second;
  auto q = std::make_shared<Query>(Query::Private{}, this, key, next_seq++);
  q->set_options(std::move(options));
  q->in_cache_ = true;
  queries.emplace(std::string_view(q->hash()), q);
  index.insert(*q);
  q->schedule_gc();  // a query nobody observes is collected gc_time after its creation
  emit(CacheEventType::added, *q);
  return q;
}

Query* ClientCore::get(std::string_view hash) const {
  auto it = queries.find(hash);
  return it == queries.end() ? nullptr : it->second.get();
}

bool ClientCore::matches_rest(const Query& q, const QueryFilters& f) const {
  if (f.type && *f.type != QueryType::all) {
    const bool active = q.is_active();
    if (*f.type == QueryType::active && !active) return false;
    if (*f.type == QueryType::inactive && active) return false;
  }
  if (f.stale && q.is_stale() != *f.stale) return false;
  if (f.fetch_status && q.state().fetch_status != *f.fetch_status) return false;
  if (f.predicate) {
    try {
      if (!f.predicate(q)) return false;
    } catch (const std::exception& ex) {
      log::get(loggers::kQuery)
          ->error("filter predicate threw: {} (treated as no match)", ex.what());
      return false;
    } catch (...) {
      log::get(loggers::kQuery)->error("filter predicate threw (treated as no match)");
      return false;
    }
  }
  return true;
}

const std::vector<Query*>& ClientCore::key_matches(const std::optional<QueryKey>& key, bool exact) {
  scratch.clear();
  if (!alive) return scratch;
  if (key && exact) {
    if (Query* q = get(key->hash())) scratch.push_back(q);
    return scratch;
  }
  auto by_seq = [](const Query* a, const Query* b) { return a->seq_ < b->seq_; };
  if (!key) {
    index.for_each([&](Query& q) { scratch.push_back(&q); });
    std::sort(scratch.begin(), scratch.end(), by_seq);
    return scratch;
  }
  MatchList* found = nullptr;
  for (const auto& r : recent_lists) {
    if (&r.key.hash() == &key->hash()) {
      found = r.list;
      break;
    }
  }
  if (!found) {
    auto it = match_lists.find(std::string_view(key->hash()));
    if (it == match_lists.end()) {
      // Filters are few (an application's families); a runaway set of ad-hoc keys is dropped.
      if (match_lists.size() >= 256) {
        match_lists.clear();
        recent_lists.clear();
      }
      it = match_lists.try_emplace(key->hash()).first;
    }
    found = &it->second;
    if (recent_lists.size() >= 16) recent_lists.erase(recent_lists.begin());
    recent_lists.push_back(RecentList{*key, found});
  }
  MatchList& list = *found;
  if (list.generation != index.generation()) {
    list.queries.clear();
    index.for_each_match(*key, [&](Query& q) { list.queries.push_back(&q); });
    std::sort(list.queries.begin(), list.queries.end(), by_seq);
    list.generation = index.generation();
  }
  return list.queries;
}

std::vector<std::shared_ptr<Query>> ClientCore::find_all(const QueryFilters& filters) {
  const auto& candidates = key_matches(filters.query_key, filters.exact);
  std::vector<std::shared_ptr<Query>> out;
  out.reserve(candidates.size());
  for (Query* q : candidates)
    out.push_back(q->shared_from_this());
  // The remaining filters run on held queries: a predicate may run arbitrary code.
  std::erase_if(out, [&](const std::shared_ptr<Query>& q) { return !matches_rest(*q, filters); });
  return out;
}

namespace {
bool type_matches(bool active, QueryType type) {
  return type == QueryType::all || (type == QueryType::active) == active;
}
}  // namespace

bool ClientCore::saturated(const std::vector<Query*>& candidates, const InvalidateFilters& filters,
                           const InvalidateOptions& options, RefetchType type,
                           InvalidateResult& result) const {
  if (!options.coalesce || filters.stale || filters.fetch_status || filters.predicate) return false;
  const QueryType refetch_as = type == RefetchType::all      ? QueryType::all
                               : type == RefetchType::active ? QueryType::active
                                                             : QueryType::inactive;
  InvalidateResult r;
  for (const Query* q : candidates) {
    // is_active, is_disabled and is_static in one pass over the observers.
    bool active = false;
    bool static_time = false;
    for (const ObserverCore* o : q->observers_) {
      active = active || o->enabled();
      static_time = static_time || o->stale_time().is_static;
    }
    if (filters.type && !type_matches(active, *filters.type)) continue;
    ++r.matched;
    if (!q->state_.is_invalidated) return false;  // the call would mark it
    if (type == RefetchType::none || !q->in_cache_ || !type_matches(active, refetch_as)) continue;
    const bool disabled = q->observers_.empty() ? !q->is_fetched() : !active;
    const bool is_static = q->state_.data.has_value() && static_time;
    if (disabled || is_static) continue;
    const CoalesceState* c = q->coalesce_.get();
    if (!c || !c->trailing || c->cancel_refetch != options.cancel_refetch || c->type != type) {
      return false;  // the call would refetch it, or change what its trailing refetch does
    }
    ++r.coalesced;
  }
  result = r;
  return true;
}

void ClientCore::remove(Query& q) {
  auto it = queries.find(q.hash());
  if (it == queries.end() || it->second.get() != &q) return;
  auto keep = it->second;
  q.destroy();
  queries.erase(it);
  index.erase(q);
  q.in_cache_ = false;
  q.coalesce_.reset();
  removed.push_back(keep);
  if (removed.size() >= 2 * std::max<std::size_t>(removed_pruned_at, 16)) {
    std::erase_if(removed, [](const std::weak_ptr<Query>& w) { return w.expired(); });
    removed_pruned_at = removed.size();
  }
  emit(CacheEventType::removed, q);
}

void ClientCore::emit(CacheEventType type, Query& q, QueryAction action) {
  if (!notifier.has_cache_listeners()) return;
  notifier.enqueue(CacheEvent{type, q.shared_from_this(), action});
}

Duration ClientCore::retry_delay(const QueryOptions& o, std::uint32_t failures,
                                 const Error& e) const {
  const RetryDelay& fn = o.retry_delay ? o.retry_delay : config.retry_delay;
  if (!fn) return default_retry_delay(failures);
  try {
    return std::max(fn(failures, e), Duration::zero());
  } catch (...) {
    log::get(loggers::kQuery)->error("retry_delay threw; using the default delay");
    return default_retry_delay(failures);
  }
}

bool ClientCore::refetchable(const Query& q, RefetchType type) const {
  if (q.is_disabled() || q.is_static()) return false;
  switch (type) {
    case RefetchType::none:
      return false;
    case RefetchType::all:
      return true;
    case RefetchType::active:
      return q.is_active();
    case RefetchType::inactive:
      return !q.is_active();
  }
  return false;
}

void ClientCore::fetch_for_refetch(Query& q, bool cancel_refetch,
                                   const std::shared_ptr<std::size_t>& pending,
                                   const std::function<void()>& settled) {
  if (!settled) {
    q.fetch(nullptr, cancel_refetch, {});
    return;
  }
  ++*pending;
  auto fired = std::make_shared<bool>(false);
  auto done = [pending, settled, fired](const Result<Data>&) {
    if (*fired) return;
    *fired = true;
    if (--*pending == 0) settled();
  };
  q.fetch(nullptr, cancel_refetch, done);
  // A paused fetch does not hold the call up (TanStack resolves it at once).
  if (q.state().fetch_status == FetchStatus::paused && !*fired) {
    *fired = true;
    --*pending;
  }
}

void ClientCore::coalesced_refetch(Query& q, const InvalidateOptions& options, RefetchType type,
                                   InvalidateResult& result,
                                   const std::shared_ptr<std::size_t>& pending,
                                   const std::function<void()>& settled) {
  if (q.coalesce_) {
    q.coalesce_->trailing = true;
    q.coalesce_->cancel_refetch = options.cancel_refetch;
    q.coalesce_->type = type;
    ++result.coalesced;
    return;
  }
  auto c = std::make_unique<CoalesceState>();
  c->length = options.window.value_or(config.coalesce_window);
  c->cancel_refetch = options.cancel_refetch;
  c->type = type;
  c->window = scheduler.schedule(c->length, timers::InvalidationCoalesce,
                                 [this, weak = q.weak_from_this()] {
                                   if (auto held = weak.lock()) on_window_end(*held);
                                 });
  q.coalesce_ = std::move(c);
  ++result.refetched;
  fetch_for_refetch(q, options.cancel_refetch, pending, settled);
}

void ClientCore::on_window_end(Query& q) {
  auto& c = q.coalesce_;
  if (!c) return;
  if (!c->trailing || !q.in_cache_) {
    c.reset();
    return;
  }
  if (!refetchable(q, c->type)) {
    // An event arrived after the last refetch started and nobody refetches it now: keep the query
    // marked so that its next observer does (a refetch since then may have cleared the mark).
    c.reset();
    Notifier::Batch batch(notifier);
    q.invalidate();
    return;
  }
  c->trailing = false;
  c->window = scheduler.schedule(c->length, timers::InvalidationCoalesce,
                                 [this, weak = q.weak_from_this()] {
                                   if (auto held = weak.lock()) on_window_end(*held);
                                 });
  ++stats.coalesced_refetches;
  Notifier::Batch batch(notifier);
  q.fetch(nullptr, c->cancel_refetch, {});
}

}  // namespace detail

// ---- QueryClient
// ------------------------------------------------------------------------------------

using detail::ClientCore;
using detail::Notifier;

namespace {

// Counts outstanding fetches of one call; `settled` runs (posted) when they are all done.
struct Settle {
  std::shared_ptr<std::size_t> pending;  // with a callback: 1 (the call itself) + fetches
  std::function<void()> settled;
  core::Scheduler* scheduler = nullptr;
  Settle(core::Scheduler& s, std::function<void()> fn) : scheduler(&s) {
    if (fn) {
      pending = std::make_shared<std::size_t>(1);
      settled = [s = &s, fn = std::move(fn)] { s->post(fn); };
    }
  }
  void finish() {
    if (settled && --*pending == 0) settled();
  }
};

}  // namespace

QueryClient::QueryClient(core::Scheduler& scheduler, ClientConfig config)
    : core_(std::make_shared<ClientCore>(scheduler, std::move(config))) {}

QueryClient::~QueryClient() {
  core_->shutdown();
}

core::Scheduler& QueryClient::scheduler() const noexcept {
  return core_->scheduler;
}
const ClientConfig& QueryClient::config() const noexcept {
  return core_->config;
}

std::optional<Data> QueryClient::get_query_data(const QueryKey& key) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  const Query* q = core_->get(key.hash());
  return q ? q->state().data : std::nullopt;
}

std::shared_ptr<const Query> QueryClient::get_query(const QueryKey& key) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  Query* q = core_->get(key.hash());
  return q ? q->shared_from_this() : nullptr;
}

std::vector<std::shared_ptr<const Query>> QueryClient::find_all(const QueryFilters& filters) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  auto found = core_->find_all(filters);
  return {found.begin(), found.end()};
}

std::size_t QueryClient::is_fetching(const QueryFilters& filters) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  QueryFilters f = filters;
  f.fetch_status = FetchStatus::fetching;
  return core_->find_all(f).size();
}

std::size_t QueryClient::size() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  return core_->queries.size();
}

Data QueryClient::set_query_data(const QueryKey& key, const json::value& data) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  Notifier::Batch batch(core_->notifier);
  auto q = core_->build(key, nullptr);
  q->set_data_json(data, true);
  return *q->state().data;
}

Data QueryClient::set_query_data(const QueryKey& key, const Data& data) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  Notifier::Batch batch(core_->notifier);
  auto q = core_->build(key, nullptr);
  return q->set_data(data, true, std::nullopt);
}

std::optional<Data> QueryClient::set_query_data(
    const QueryKey& key,
    const std::function<std::optional<Data>(const std::optional<Data>&)>& updater) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  const Query* existing = core_->get(key.hash());
  const std::optional<Data> prev = existing ? existing->state().data : std::nullopt;
  std::optional<Data> next = updater(prev);
  if (!next) return std::nullopt;
  return set_query_data(key, *next);
}

void QueryClient::fetch_query(FetchQueryOptions options, FetchCallback done) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  Notifier::Batch batch(core_->notifier);
  auto opts = std::make_shared<QueryOptions>(std::move(options.query));
  if (!opts->retry) opts->retry = Retry::never();  // fetchQuery does not retry by default
  std::shared_ptr<const QueryOptions> shared = std::move(opts);
  auto q = core_->build(options.key, shared);
  if (q->is_stale_by_time(options.stale_time)) {
    q->fetch(&shared, false, std::move(done));
    return;
  }
  if (done) {
    core_->scheduler.post([done = std::move(done), data = *q->state().data] { done(data); });
  }
}

void QueryClient::prefetch_query(FetchQueryOptions options) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  fetch_query(std::move(options), {});
}

InvalidateResult QueryClient::invalidate_queries(const InvalidateFilters& filters,
                                                 const InvalidateOptions& options,
                                                 std::function<void()> settled) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  InvalidateResult result;
  Settle settle(core_->scheduler, std::move(settled));
  RefetchType type = RefetchType::active;
  if (filters.refetch_type) {
    type = *filters.refetch_type;
  } else if (filters.type) {
    type = *filters.type == QueryType::all      ? RefetchType::all
           : *filters.type == QueryType::active ? RefetchType::active
                                                : RefetchType::inactive;
  }
  {
    // Key candidates once; each phase applies the other filters (TanStack runs findAll twice, so a
    // predicate or `stale` filter sees the state of that moment).
    const auto& keyed = core_->key_matches(filters.query_key, filters.exact);
    // A burst repeats the same call while every match waits for its trailing refetch: answer it
    // from a read-only pass (no shared_ptr copies, no notifications).
    if (core_->saturated(keyed, filters, options, type, result)) {
      ++core_->stats.saturated_invalidations;
      settle.finish();
      return result;
    }
    Notifier::Batch batch(core_->notifier);
    std::vector<std::shared_ptr<Query>> candidates;
    candidates.reserve(keyed.size());
    for (Query* q : keyed)
      candidates.push_back(q->shared_from_this());
    const QueryFilters& mark = filters;
    for (auto& q : candidates) {
      if (!core_->matches_rest(*q, mark)) continue;
      ++result.matched;
      q->invalidate();
    }
    if (type != RefetchType::none) {
      QueryFilters refetch = filters;
      refetch.type = type == RefetchType::all      ? QueryType::all
                     : type == RefetchType::active ? QueryType::active
                                                   : QueryType::inactive;
      for (auto& q : candidates) {
        if (!q->in_cache() || !core_->matches_rest(*q, refetch)) continue;
        if (q->is_disabled() || q->is_static()) continue;
        if (options.coalesce) {
          core_->coalesced_refetch(*q, options, type, result, settle.pending, settle.settled);
        } else {
          ++result.refetched;
          core_->fetch_for_refetch(*q, options.cancel_refetch, settle.pending, settle.settled);
        }
      }
    }
  }
  settle.finish();
  return result;
}

InvalidateResult QueryClient::refetch_queries(const QueryFilters& filters,
                                              const RefetchOptions& options,
                                              std::function<void()> settled) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  InvalidateResult result;
  Settle settle(core_->scheduler, std::move(settled));
  {
    Notifier::Batch batch(core_->notifier);
    for (auto& q : core_->find_all(filters)) {
      ++result.matched;
      if (!q->in_cache() || q->is_disabled() || q->is_static()) continue;
      ++result.refetched;
      core_->fetch_for_refetch(*q, options.cancel_refetch, settle.pending, settle.settled);
    }
  }
  settle.finish();
  return result;
}

std::size_t QueryClient::cancel_queries(const QueryFilters& filters, const CancelOptions& options) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  Notifier::Batch batch(core_->notifier);
  std::size_t n = 0;
  for (auto& q : core_->find_all(filters)) {
    if (q->run_ && q->run_->status() == detail::FetchRun::Status::pending) {
      ++n;
      q->cancel(options);
    }
  }
  return n;
}

std::size_t QueryClient::remove_queries(const QueryFilters& filters) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  Notifier::Batch batch(core_->notifier);
  auto found = core_->find_all(filters);
  for (auto& q : found)
    core_->remove(*q);
  return found.size();
}

void QueryClient::clear() {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  remove_queries({});
}

void QueryClient::set_online(bool online) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  const bool was = core_->online;
  core_->online = online;
  if (!online || was) return;
  Notifier::Batch batch(core_->notifier);
  for (auto& q : core_->find_all({}))
    q->on_online();
}

bool QueryClient::is_online() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  return core_->online;
}

void QueryClient::set_focused(bool focused) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  const bool was = core_->focused;
  core_->focused = focused;
  if (!focused || was) return;
  Notifier::Batch batch(core_->notifier);
  for (auto& q : core_->find_all({}))
    q->on_focus();
}

bool QueryClient::is_focused() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  return core_->focused;
}

core::Subscription QueryClient::subscribe(std::function<void(const CacheEvent&)> listener) {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  return core_->cache_listeners.add(std::move(listener));
}

ClientStats QueryClient::stats() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  ClientStats s = core_->stats;
  s.queries = core_->queries.size();
  s.duplicate_completions = core_->counters->duplicate_completions.load();
  s.late_completions = core_->counters->late_completions.load();
  s.index_nodes = core_->index.node_count();
  return s;
}

json::object QueryClient::snapshot() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler());
  const ClientStats s = stats();
  std::size_t fetching = 0;
  for (auto& [hash, q] : core_->queries) {
    if (q->state().fetch_status != FetchStatus::idle) ++fetching;
  }
  json::object out;
  out["queries"] = s.queries;
  out["fetching"] = fetching;
  out["online"] = core_->online;
  out["focused"] = core_->focused;
  out["stats"] = json::object{{"fetches", s.fetches},
                              {"attempts", s.attempts},
                              {"duplicateCompletions", s.duplicate_completions},
                              {"lateCompletions", s.late_completions},
                              {"queryFnThrows", s.query_fn_throws},
                              {"listenerErrors", s.listener_errors},
                              {"coalescedRefetches", s.coalesced_refetches},
                              {"gcRemoved", s.gc_removed},
                              {"indexNodes", s.index_nodes}};
  return out;
}

}  // namespace rtsync::client::query
