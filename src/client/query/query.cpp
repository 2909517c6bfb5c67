// Query state machine and its fetch runs (TanStack's Query + retryer).
#include "rtsync/client/query/query.hpp"

#include <algorithm>

#include "internal.hpp"
#include "rtsync/client/query/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::query {

using detail::ClientCore;
using detail::FetchRun;
using detail::ObserverCore;

namespace {
ErrorPtr share_error(const Error& e) {
  return std::make_shared<const Error>(e);
}
Error cancelled_error() {
  return make_error(Errc::cancelled, "CancelledError");
}
}  // namespace

Query::Query(Private, ClientCore* client, QueryKey key, std::uint64_t seq)
    : key_(std::move(key)), client_(client), seq_(seq) {}

Query::~Query() {
  if (run_) run_->detach();
}

// ---- reading ----------------------------------------------------------------------------------

#if RTSYNC_LOOP_CHECKS
#define RTSYNC_QUERY_CHECK() check_on_loop(static_cast<const char*>(__func__))
#else
#define RTSYNC_QUERY_CHECK() static_cast<void>(0)
#endif

void Query::check_on_loop([[maybe_unused]] const char* method) const noexcept {
#if RTSYNC_LOOP_CHECKS
  if (client_) core::detail::check_on_loop(client_->scheduler, method);
#endif
}

bool Query::is_active() const noexcept {
  RTSYNC_QUERY_CHECK();
  return std::any_of(observers_.begin(), observers_.end(),
                     [](const ObserverCore* o) { return o->enabled(); });
}

bool Query::is_disabled() const noexcept {
  RTSYNC_QUERY_CHECK();
  if (!observers_.empty()) return !is_active();
  return !is_fetched();
}

bool Query::is_static() const noexcept {
  RTSYNC_QUERY_CHECK();
  if (!state_.data) return false;
  return std::any_of(observers_.begin(), observers_.end(),
                     [](const ObserverCore* o) { return o->stale_time().is_static; });
}

bool Query::is_stale() const noexcept {
  RTSYNC_QUERY_CHECK();
  if (!observers_.empty()) {
    return std::any_of(observers_.begin(), observers_.end(),
                       [](const ObserverCore* o) { return o->is_stale_now(); });
  }
  return !state_.data || state_.is_invalidated;
}

bool Query::is_stale_by_time(const StaleTime& stale_time) const noexcept {
  RTSYNC_QUERY_CHECK();
  if (!state_.data) return true;
  if (stale_time.is_static) return false;
  if (state_.is_invalidated) return true;
  if (stale_time.duration == kInfinite) return false;
  if (!client_) return true;
  const auto now = client_->scheduler.now();
  return now - state_.data_updated_at >= stale_time.duration;
}

// ---- options, gc
// ---------------------------------------------------------------------------------

void Query::set_options(std::shared_ptr<const QueryOptions> options) {
  options_ = std::move(options);
  update_gc_time(options_ ? options_->gc_time : std::nullopt);
}

void Query::update_gc_time(std::optional<Duration> gc_time) {
  const Duration fallback = client_ ? client_->config.gc_time : kInfinite;
  gc_time_ = std::max(gc_time_, gc_time.value_or(fallback));
}

void Query::schedule_gc() {
  if (!client_) return;
  client_->gc.cancel(*this);
  if (gc_time_ == kInfinite || gc_time_ < Duration::zero()) return;
  client_->gc.schedule(*this, client_->scheduler.now() + gc_time_);
}

void Query::clear_gc() {
  if (client_) client_->gc.cancel(*this);
}

void Query::schedule_gc_if_cached() {
  // While observed, a gc timer could only fire into a no-op: the last observer leaving reschedules
  // it anyway (TanStack arms it after every fetch regardless; skipping that is unobservable and
  // keeps refetches of active queries off the gc heap).
  if (in_cache_ && observers_.empty()) schedule_gc();
}

void Query::optional_remove() {
  if (observers_.empty() && state_.fetch_status == FetchStatus::idle && client_) {
    ++client_->stats.gc_removed;
    client_->remove(*this);
  }
}

void Query::destroy() {
  cancel(CancelOptions{.revert = false, .silent = true});
  clear_gc();
}

// ---- observers
// -------------------------------------------------------------------------------------

void Query::add_observer(ObserverCore* observer) {
  if (std::find(observers_.begin(), observers_.end(), observer) != observers_.end()) return;
  observers_.push_back(observer);
  clear_gc();
  if (client_) client_->emit(CacheEventType::observer_added, *this);
}

void Query::remove_observer(ObserverCore* observer) {
  auto it = std::find(observers_.begin(), observers_.end(), observer);
  if (it == observers_.end()) return;
  observers_.erase(it);
  if (observers_.empty()) {
    if (run_ && run_->status() == FetchRun::Status::pending) {
      // A fetch that can be aborted is aborted (and its state reverted); one that cannot is left to
      // finish into the cache, without further retries.
      if (run_->token_consumed() ||
          (state_.fetch_status == FetchStatus::paused && state_.status == QueryStatus::pending)) {
        auto run = run_;
        run->cancel(CancelOptions{.revert = true, .silent = false});
      } else {
        run_->cancel_retry();
      }
    }
    schedule_gc_if_cached();
  }
  if (client_) client_->emit(CacheEventType::observer_removed, *this);
}

void Query::on_online() {
  for (auto* o : observers_) {
    if (o->should_fetch_on(o->refetch_on_reconnect())) {
      auto keep = o->shared_from_this();
      keep->execute_fetch(false, {});
      break;
    }
  }
  if (run_) run_->resume();
}

void Query::on_focus() {
  for (auto* o : observers_) {
    if (o->should_fetch_on(o->refetch_on_window_focus())) {
      auto keep = o->shared_from_this();
      keep->execute_fetch(false, {});
      break;
    }
  }
  if (run_) run_->resume();
}

// ---- state transitions
// -------------------------------------------------------------------------------

void Query::dispatch(QueryAction action) {
  if (!client_) return;
  detail::Notifier::Batch batch(client_->notifier);
  // Observers may drop themselves (through user code in interval functions): hold them.
  std::vector<std::shared_ptr<ObserverCore>> snapshot;
  snapshot.reserve(observers_.size());
  for (auto* o : observers_)
    snapshot.push_back(o->shared_from_this());
  for (auto& o : snapshot)
    o->on_query_update();
  client_->emit(CacheEventType::updated, *this, action);
}

void Query::invalidate() {
  if (state_.is_invalidated) return;
  state_.is_invalidated = true;
  dispatch(QueryAction::invalidate);
}

Data Query::set_data(const Data& data, bool manual, std::optional<TimePoint> updated_at) {
  const bool sharing = !options_ || options_->structural_sharing;
  Data stored = (sharing && state_.data) ? replace_equal_deep(*state_.data, data) : data;
  state_.data = stored;
  state_.data_updated_at = updated_at.value_or(client_ ? client_->scheduler.now() : TimePoint{});
  state_.data_update_count += 1;
  state_.error.reset();
  state_.is_invalidated = false;
  state_.status = QueryStatus::success;
  if (!manual) {
    state_.fetch_status = FetchStatus::idle;
    state_.failure_count = 0;
    state_.failure_reason.reset();
    revert_state_.reset();
  } else {
    // A manual write during a fetch is what a later revert goes back to.
    if (revert_state_) *revert_state_ = state_;
  }
  dispatch(QueryAction::success);
  return stored;
}

void Query::set_data_json(const json::value& next, bool manual) {
  const bool sharing = !options_ || options_->structural_sharing;
  const Data* prev = (sharing && state_.data) ? &*state_.data : nullptr;
  Data stored = share(prev, next);
  state_.data = std::move(stored);
  state_.data_updated_at = client_ ? client_->scheduler.now() : TimePoint{};
  state_.data_update_count += 1;
  state_.error.reset();
  state_.is_invalidated = false;
  state_.status = QueryStatus::success;
  if (!manual) {
    state_.fetch_status = FetchStatus::idle;
    state_.failure_count = 0;
    state_.failure_reason.reset();
    revert_state_.reset();
  } else if (revert_state_) {
    *revert_state_ = state_;
  }
  dispatch(QueryAction::success);
}

// ---- fetching
// ------------------------------------------------------------------------------------------

void Query::fetch(const std::shared_ptr<const QueryOptions>* options, bool cancel_refetch,
                  Waiter waiter) {
  if (!client_ || !client_->alive) {
    if (waiter) waiter(Result<Data>(make_error(Errc::closed, "query client destroyed")));
    return;
  }
  std::vector<Waiter> carried;
  if (state_.fetch_status != FetchStatus::idle && run_ &&
      run_->status() == FetchRun::Status::pending) {
    if (state_.data && cancel_refetch) {
      // Silently replace the running fetch; its callers get the new fetch's result.
      auto old = run_;
      carried = std::move(old->waiters);
      old->waiters.clear();
      old->cancel(CancelOptions{.revert = false, .silent = true});
    } else {
      run_->continue_retry();
      if (waiter) run_->waiters.push_back(std::move(waiter));
      return;
    }
  }
  if (options && *options) set_options(*options);
  if (!options_ || !options_->query_fn) {
    // Use the first observer that has a query function (data set by set_query_data, say).
    for (auto* o : observers_) {
      if (o->query_options() && o->query_options()->query_fn) {
        set_options(o->query_options());
        break;
      }
    }
  }
  revert_state_ = std::make_unique<QueryState>(state_);
  auto opts = options_ ? options_ : std::make_shared<const QueryOptions>();
  auto run = std::make_shared<FetchRun>(*this, *client_, opts);
  run->waiters = std::move(carried);
  if (waiter) run->waiters.push_back(std::move(waiter));
  run_ = run;
  ++client_->stats.fetches;
  if (state_.fetch_status == FetchStatus::idle) {
    const bool can = opts->network_mode != NetworkMode::online || client_->online;
    state_.fetch_status = can ? FetchStatus::fetching : FetchStatus::paused;
    state_.failure_count = 0;
    state_.failure_reason.reset();
    if (!state_.data) {
      state_.status = QueryStatus::pending;
      state_.error.reset();
    }
    dispatch(QueryAction::fetch);
  }
  // dispatch may have run user code that replaced the run; start only if still current.
  if (run_ == run) run->start();
}

void Query::cancel(CancelOptions options) {
  if (run_ && run_->status() == FetchRun::Status::pending) {
    auto run = run_;
    run->cancel(options);
  }
}

void Query::on_run_success(FetchRun* run, const json::value& value) {
  auto keep = shared_from_this();
  auto waiters = std::move(run->waiters);
  set_data_json(value, false);
  finish_run(run);
  const Result<Data> result(*state_.data);
  for (auto& w : waiters) {
    if (w) w(result);
  }
}

void Query::on_run_error(FetchRun* run, const Error& error) {
  auto keep = shared_from_this();
  auto waiters = std::move(run->waiters);
  auto err = share_error(error);
  state_.error = err;
  state_.error_update_count += 1;
  state_.error_updated_at = client_ ? client_->scheduler.now() : TimePoint{};
  state_.failure_count += 1;
  state_.failure_reason = err;
  state_.fetch_status = FetchStatus::idle;
  state_.status = QueryStatus::error;
  state_.is_invalidated = true;  // an error marks existing data stale
  dispatch(QueryAction::error);
  finish_run(run);
  const Result<Data> result(error);
  for (auto& w : waiters) {
    if (w) w(result);
  }
}

void Query::revert(FetchRun* run) {
  if (!revert_state_ || run_.get() != run) return;
  QueryState restored = *revert_state_;
  restored.fetch_status = FetchStatus::idle;
  state_ = std::move(restored);
  dispatch(QueryAction::set_state);
}

void Query::on_run_cancelled(FetchRun* run, CancelOptions options) {
  auto keep = shared_from_this();
  if (options.silent) {
    // Callers were moved to the replacing fetch, if any; the rest learn of the cancellation.
    auto waiters = std::move(run->waiters);
    finish_run(run);
    const Result<Data> result(cancelled_error());
    for (auto& w : waiters) {
      if (w) w(result);
    }
    return;
  }
  if (options.revert) {
    auto waiters = std::move(run->waiters);
    finish_run(run);
    const Result<Data> result =
        state_.data ? Result<Data>(*state_.data) : Result<Data>(cancelled_error());
    for (auto& w : waiters) {
      if (w) w(result);
    }
    return;
  }
  on_run_error(run, cancelled_error());
}

void Query::finish_run(FetchRun* run) {
  if (run_.get() == run) {
    run_.reset();
    revert_state_.reset();
  }
  schedule_gc_if_cached();
}

}  // namespace rtsync::client::query

// ---- FetchRun
// ----------------------------------------------------------------------------------------

namespace rtsync::client::query::detail {

FetchRun::FetchRun(Query& query, ClientCore& core, std::shared_ptr<const QueryOptions> options)
    : query_(&query),
      core_(&core),
      options_(std::move(options)),
      key_(query.key()),
      token_(std::make_shared<Access::TokenState>()) {}

bool FetchRun::can_start() const noexcept {
  return options_->network_mode != NetworkMode::online || core_->online;
}

bool FetchRun::can_continue() const noexcept {
  return core_->focused && (options_->network_mode == NetworkMode::always || core_->online);
}

void FetchRun::start() {
  if (can_start()) {
    run_attempt();
  } else {
    pause(Paused::before_start);
  }
}

void FetchRun::pause(Paused kind) {
  paused_ = kind;
  if (!query_) return;
  query_->state_.fetch_status = FetchStatus::paused;
  query_->dispatch(QueryAction::pause);
}

void FetchRun::resume() {
  if (paused_ == Paused::no || status_ != Status::pending) return;
  const Paused kind = paused_;
  const bool ok = kind == Paused::before_start ? can_start() : can_continue();
  if (!ok) return;
  paused_ = Paused::no;
  auto self = shared_from_this();
  if (query_) {
    query_->state_.fetch_status = FetchStatus::fetching;
    query_->dispatch(QueryAction::continue_);
  }
  if (status_ != Status::pending) return;
  if (kind == Paused::before_retry && retry_cancelled_) {
    reject(last_error_);
    return;
  }
  run_attempt();
}

void FetchRun::run_attempt() {
  if (status_ != Status::pending || !query_) return;
  auto self = shared_from_this();
  const std::uint32_t attempt = ++attempt_;
  auto state = std::make_shared<Completion::State>();
  state->scheduler = &core_->scheduler;
  state->run = weak_from_this();
  state->attempt = attempt;
  state->counters = core_->counters;
  Completion done = Access::completion(state);
  ++core_->stats.attempts;
  if (!options_->query_fn) {
    done(make_error(Errc::invalid_argument, "Missing queryFn for query " + key_.hash()));
    return;
  }
  try {
    options_->query_fn(key_, Access::token(token_), done);
  } catch (const std::exception& ex) {
    ++core_->stats.query_fn_throws;
    log::get(loggers::kQuery)->error("query function for {} threw: {}", key_.hash(), ex.what());
    done(make_error(Errc::internal, std::string("query function threw: ") + ex.what()));
  } catch (...) {
    ++core_->stats.query_fn_throws;
    log::get(loggers::kQuery)->error("query function for {} threw a non-exception", key_.hash());
    done(make_error(Errc::internal, "query function threw"));
  }
}

void FetchRun::on_attempt_result(std::uint32_t attempt, Result<json::value> result) {
  if (status_ != Status::pending || attempt != attempt_ || !query_) {
    ++core_->counters->late_completions;
    return;
  }
  auto self = shared_from_this();
  if (result.ok()) {
    status_ = Status::resolved;
    retry_timer_.cancel();
    Query* q = query_;
    q->on_run_success(this, result.value());
    return;
  }
  const Error error = result.error();
  const Retry retry = core_->resolve_retry(*options_);
  const Duration delay = core_->retry_delay(*options_, failure_count_, error);
  const bool should_retry = retry.should_retry(failure_count_, error);
  if (retry_cancelled_ || !should_retry) {
    reject(error);
    return;
  }
  ++failure_count_;
  last_error_ = error;
  query_->state_.failure_count = failure_count_;
  query_->state_.failure_reason = std::make_shared<const Error>(error);
  query_->dispatch(QueryAction::failed);
  if (status_ != Status::pending) return;
  retry_timer_ = core_->scheduler.schedule(delay, timers::QueryRetry, [weak = weak_from_this()] {
    if (auto r = weak.lock()) r->after_sleep();
  });
}

void FetchRun::after_sleep() {
  if (status_ != Status::pending) return;
  if (!can_continue()) {
    pause(Paused::before_retry);
    return;
  }
  if (retry_cancelled_) {
    reject(last_error_);
    return;
  }
  run_attempt();
}

void FetchRun::reject(const Error& error) {
  if (status_ != Status::pending) return;
  status_ = Status::rejected;
  paused_ = Paused::no;
  retry_timer_.cancel();
  if (query_) {
    auto self = shared_from_this();
    Query* q = query_;
    q->on_run_error(this, error);
  }
}

void FetchRun::cancel(CancelOptions options) {
  if (status_ != Status::pending) return;
  auto self = shared_from_this();
  status_ = Status::rejected;
  paused_ = Paused::no;
  retry_timer_.cancel();
  // As TanStack's onCancel: restore the state first, then abort the query function's work.
  if (options.revert && query_) query_->revert(this);
  token_->cancel();
  if (query_) {
    Query* q = query_;
    q->on_run_cancelled(this, options);
  }
}

}  // namespace rtsync::client::query::detail
