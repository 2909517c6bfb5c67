#include "rtsync/client/query/query_observer.hpp"

#include <algorithm>

#include "internal.hpp"
#include "rtsync/client/query/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"

namespace rtsync::client::query {

namespace detail {

ObserverCore::ObserverCore(std::shared_ptr<ClientCore> core, ObserverOptions options)
    : options_(std::move(options)), core_(core), raw_core_(core.get()) {}

ObserverCore::~ObserverCore() {
  stale_timer_.cancel();
  interval_timer_.cancel();
  if (query_ && mounted_) query_->remove_observer(this);
}

void ObserverCore::apply_defaults() {
  query_options_ = std::make_shared<const QueryOptions>(options_.query);
  stale_time_ = options_.stale_time.value_or(raw_core_->config.stale_time);
  ++options_generation_;
}

void ObserverCore::init() {
  auto core = core_.lock();
  if (!core || !core->alive) return;
  Notifier::Batch batch(core->notifier);
  apply_defaults();
  update_query();
  query_->set_options(query_options_);
  update_result();
}

RefetchOn ObserverCore::refetch_on_reconnect() const noexcept {
  if (options_.refetch_on_reconnect) return *options_.refetch_on_reconnect;
  if (options_.query.network_mode == NetworkMode::always) return RefetchOn::never;
  return raw_core_->config.refetch_on_reconnect;
}

RefetchOn ObserverCore::refetch_on_window_focus() const noexcept {
  return options_.refetch_on_window_focus.value_or(raw_core_->config.refetch_on_window_focus);
}

bool ObserverCore::is_stale_now() const noexcept {
  return options_.enabled && query_ && query_->is_stale_by_time(stale_time_);
}

bool ObserverCore::should_fetch_on(RefetchOn value) const {
  if (!options_.enabled || stale_time_.is_static) return false;
  return value == RefetchOn::always || (value != RefetchOn::never && is_stale_now());
}

bool ObserverCore::should_fetch_on_mount() const {
  const auto& st = query_->state();
  const bool load = options_.enabled && !st.data &&
                    !(st.status == QueryStatus::error && !options_.retry_on_mount);
  if (load) return true;
  const RefetchOn on_mount = options_.refetch_on_mount.value_or(raw_core_->config.refetch_on_mount);
  return st.data.has_value() && should_fetch_on(on_mount);
}

bool ObserverCore::should_fetch_optionally(const Query* prev_query,
                                           const ObserverOptions& prev) const {
  return (query_.get() != prev_query || !prev.enabled) && is_stale_now();
}

void ObserverCore::update_query() {
  auto core = core_.lock();
  if (!core || !core->alive) return;
  auto q = core->build(options_.key, query_options_);
  if (q == query_) return;
  auto prev = std::move(query_);
  query_ = std::move(q);
  initial_data_updates_ = query_->state().data_update_count;
  initial_error_updates_ = query_->state().error_update_count;
  if (mounted_) {
    if (prev) prev->remove_observer(this);
    query_->add_observer(this);
  }
}

core::Subscription ObserverCore::subscribe(QueryObserver::Listener listener) {
  auto sub = listeners_.add(ListenerEntry{std::move(listener)}, [weak = weak_from_this()] {
    // The last listener gone unmounts the observer (TanStack's onUnsubscribe).
    auto self = weak.lock();
    if (self && self->listeners_.empty()) self->destroy_observer();
  });
  if (listeners_.size() == 1) on_mount();
  request_delivery();  // every listener first receives the current result
  return sub;
}

void ObserverCore::on_mount() {
  auto core = core_.lock();
  if (!core || !core->alive || mounted_ || !query_) return;
  Notifier::Batch batch(core->notifier);
  mounted_ = true;
  query_->add_observer(this);
  if (should_fetch_on_mount()) {
    execute_fetch(std::nullopt, {});
  } else {
    update_result();
  }
  update_timers();
}

void ObserverCore::destroy_observer() {
  stale_timer_.cancel();
  interval_timer_.cancel();
  if (!mounted_) return;
  mounted_ = false;
  auto keep = shared_from_this();
  if (auto core = core_.lock()) {
    Notifier::Batch batch(core->notifier);
    if (query_) query_->remove_observer(this);
  } else if (query_) {
    query_->remove_observer(this);
  }
}

void ObserverCore::close() {
  auto keep = shared_from_this();
  listeners_.clear();
  destroy_observer();
}

void ObserverCore::set_options(ObserverOptions options) {
  auto core = core_.lock();
  if (!core || !core->alive) {
    options_ = std::move(options);
    return;
  }
  auto keep = shared_from_this();
  Notifier::Batch batch(core->notifier);
  const ObserverOptions prev = std::move(options_);
  const StaleTime prev_stale = stale_time_;
  const std::shared_ptr<Query> prev_query = query_;
  options_ = std::move(options);
  apply_defaults();
  update_query();
  query_->set_options(query_options_);
  if (mounted_ && should_fetch_optionally(prev_query.get(), prev)) {
    execute_fetch(std::nullopt, {});
  }
  update_result();
  const bool query_changed = query_ != prev_query;
  const bool enabled_changed = options_.enabled != prev.enabled;
  if (mounted_ && (query_changed || enabled_changed || !(stale_time_ == prev_stale))) {
    update_stale_timeout();
  }
  const auto next = compute_refetch_interval();
  if (mounted_ && (query_changed || enabled_changed || next != current_interval_)) {
    update_refetch_interval(next);
  }
}

void ObserverCore::execute_fetch(std::optional<bool> cancel_refetch, Query::Waiter waiter) {
  auto core = core_.lock();
  if (!core || !core->alive) {
    if (waiter) waiter(Result<Data>(make_error(Errc::closed, "query client destroyed")));
    return;
  }
  auto keep = shared_from_this();
  Notifier::Batch batch(core->notifier);
  update_query();  // the current query may have been removed from the cache
  auto q = query_;
  q->fetch(&query_options_, cancel_refetch.value_or(false), std::move(waiter));
}

void ObserverCore::refetch(RefetchOptions options, std::function<void(const QueryResult&)> done) {
  execute_fetch(options.cancel_refetch,
                [weak = weak_from_this(), done = std::move(done)](const Result<Data>&) {
                  auto self = weak.lock();
                  if (!self) return;
                  self->update_result();
                  if (done) done(self->result);
                });
}

void ObserverCore::on_query_update() {
  update_result();
  if (mounted_) update_timers();
}

QueryResult ObserverCore::create_result() const {
  const QueryState& st = query_->state();
  QueryResult r;
  r.status = st.status;
  r.fetch_status = st.fetch_status;
  r.data = st.data;
  r.data_updated_at = st.data_updated_at;
  r.error = st.error;
  r.error_updated_at = st.error_updated_at;
  r.error_update_count = st.error_update_count;
  r.failure_count = st.failure_count;
  r.failure_reason = st.failure_reason;
  if (options_.placeholder_data && !r.data && st.status == QueryStatus::pending) {
    std::optional<Data> placeholder;
    try {
      placeholder = options_.placeholder_data(
          last_query_with_data_ ? last_query_with_data_->state().data : std::nullopt);
    } catch (const std::exception& ex) {
      log::get(loggers::kQuery)->error("placeholder_data threw: {}", ex.what());
    } catch (...) {
      log::get(loggers::kQuery)->error("placeholder_data threw");
    }
    if (placeholder) {
      r.status = QueryStatus::success;
      r.data = (has_result_ && result.data) ? replace_equal_deep(*result.data, *placeholder)
                                            : *placeholder;
      r.is_placeholder_data = true;
    }
  }
  r.is_fetched = query_->is_fetched();
  r.is_fetched_after_mount = st.data_update_count > initial_data_updates_ ||
                             st.error_update_count > initial_error_updates_;
  r.is_stale = is_stale_now();
  r.is_enabled = options_.enabled;
  r.is_invalidated = st.is_invalidated;
  return r;
}

void ObserverCore::update_result() {
  if (!query_) return;
  QueryResult next = create_result();
  if (query_->state().data) last_query_with_data_ = query_;
  const std::uint32_t changed = has_result_ ? next.changed_fields(result) : kAllFields;
  if (has_result_ && changed == 0) return;
  result = std::move(next);
  has_result_ = true;
  if (changed & options_.notify_on_change) {
    ++version_;
    request_delivery();
  }
}

void ObserverCore::request_delivery() {
  if (listeners_.empty()) return;
  auto core = core_.lock();
  if (!core || !core->alive) return;
  core->notifier.enqueue(shared_from_this());
}

void ObserverCore::deliver() {
  if (listeners_.empty()) return;
  auto keep = shared_from_this();
  const std::uint64_t version = version_;
  const QueryResult current = result;  // a listener may change the result while others wait
  listeners_.for_each([&](ListenerEntry& l) {
    if (l.delivered >= version) return;
    l.delivered = version;
    if (!core::call_guarded(loggers::kQuery, "observer listener", l.fn, current)) {
      if (auto core = core_.lock()) ++core->stats.listener_errors;
    }
  });
}

void ObserverCore::update_timers() {
  update_stale_timeout();
  update_refetch_interval(compute_refetch_interval());
}

void ObserverCore::update_stale_timeout() {
  stale_timer_.cancel();
  if (result.is_stale || !options_.enabled || stale_time_.is_static ||
      stale_time_.duration == kInfinite || stale_time_.duration < Duration::zero()) {
    return;
  }
  auto core = core_.lock();
  if (!core || !core->alive) return;
  const auto due = result.data_updated_at + stale_time_.duration;
  const auto delay = std::max(due - core->scheduler.now(), Duration::zero());
  stale_timer_ = core->scheduler.schedule(delay, timers::QueryStale, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self || self->result.is_stale) return;
    auto core = self->core_.lock();
    if (!core) return;
    Notifier::Batch batch(core->notifier);
    self->update_result();
  });
}

std::optional<Duration> ObserverCore::compute_refetch_interval() const {
  if (!query_) return std::nullopt;
  try {
    return options_.refetch_interval.resolve(*query_);
  } catch (const std::exception& ex) {
    log::get(loggers::kQuery)
        ->error("refetch_interval function threw: {} (interval off)", ex.what());
  } catch (...) {
    log::get(loggers::kQuery)->error("refetch_interval function threw (interval off)");
  }
  return std::nullopt;
}

void ObserverCore::update_refetch_interval(std::optional<Duration> next) {
  interval_timer_.cancel();
  current_interval_ = next;
  if (!next || !options_.enabled || !mounted_) return;
  auto core = core_.lock();
  if (!core || !core->alive) return;
  interval_timer_ =
      core->scheduler.schedule(*next, timers::RefetchInterval, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->on_interval_tick();
      });
}

void ObserverCore::on_interval_tick() {
  auto core = core_.lock();
  if (!core || !core->alive || !current_interval_) return;
  // setInterval: the next tick is one interval on (a query update re-arms it anyway).
  interval_timer_ = core->scheduler.schedule(*current_interval_, timers::RefetchInterval,
                                             [weak = weak_from_this()] {
                                               if (auto self = weak.lock())
                                                 self->on_interval_tick();
                                             });
  if (options_.refetch_interval_in_background || core->focused) {
    execute_fetch(std::nullopt, {});
  }
}

}  // namespace detail

// ---- QueryObserver
// -----------------------------------------------------------------------------------

namespace {
// The observer is confined to its client's loop; a moved-from observer, or one whose client is
// gone, has no loop left to check against.
#if RTSYNC_LOOP_CHECKS
#define RTSYNC_OBSERVER_ON_LOOP()                                        \
  do {                                                                   \
    if (core_) {                                                         \
      if (auto c = core_->client()) RTSYNC_ASSERT_ON_LOOP(c->scheduler); \
    }                                                                    \
  } while (false)
#else
#define RTSYNC_OBSERVER_ON_LOOP() static_cast<void>(0)
#endif
}  // namespace

QueryObserver::QueryObserver(QueryClient& client, ObserverOptions options)
    : core_(std::make_shared<detail::ObserverCore>(client.core(), std::move(options))) {
  core_->init();
}

QueryObserver::~QueryObserver() {
  if (core_) core_->close();
}

QueryObserver::QueryObserver(QueryObserver&&) noexcept = default;

QueryObserver& QueryObserver::operator=(QueryObserver&& other) noexcept {
  RTSYNC_OBSERVER_ON_LOOP();
  if (this != &other) {
    if (core_) core_->close();
    core_ = std::move(other.core_);
  }
  return *this;
}

core::Subscription QueryObserver::subscribe(Listener listener) {
  RTSYNC_OBSERVER_ON_LOOP();
  return core_ ? core_->subscribe(std::move(listener)) : core::Subscription();
}

bool QueryObserver::has_listeners() const noexcept {
  RTSYNC_OBSERVER_ON_LOOP();
  return core_ && core_->has_listeners();
}

const QueryResult& QueryObserver::result() const noexcept {
  RTSYNC_OBSERVER_ON_LOOP();
  static const QueryResult empty;
  return core_ ? core_->result : empty;
}

const ObserverOptions& QueryObserver::options() const noexcept {
  RTSYNC_OBSERVER_ON_LOOP();
  static const ObserverOptions empty;
  return core_ ? core_->options_ : empty;
}

std::shared_ptr<const Query> QueryObserver::query() const {
  RTSYNC_OBSERVER_ON_LOOP();
  return core_ ? core_->query_ : nullptr;
}

void QueryObserver::set_options(ObserverOptions options) {
  RTSYNC_OBSERVER_ON_LOOP();
  if (core_) core_->set_options(std::move(options));
}

void QueryObserver::set_refetch_interval(RefetchInterval interval) {
  RTSYNC_OBSERVER_ON_LOOP();
  if (!core_) return;
  ObserverOptions o = core_->options_;
  o.refetch_interval = std::move(interval);
  core_->set_options(std::move(o));
}

void QueryObserver::set_stale_time(StaleTime stale_time) {
  RTSYNC_OBSERVER_ON_LOOP();
  if (!core_) return;
  ObserverOptions o = core_->options_;
  o.stale_time = stale_time;
  core_->set_options(std::move(o));
}

void QueryObserver::set_enabled(bool enabled) {
  RTSYNC_OBSERVER_ON_LOOP();
  if (!core_) return;
  ObserverOptions o = core_->options_;
  o.enabled = enabled;
  core_->set_options(std::move(o));
}

void QueryObserver::refetch(RefetchOptions options, std::function<void(const QueryResult&)> done) {
  RTSYNC_OBSERVER_ON_LOOP();
  if (core_) core_->refetch(options, std::move(done));
}

}  // namespace rtsync::client::query
