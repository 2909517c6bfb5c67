#include "rtsync/client/sync/smart_polling.hpp"

#include <algorithm>

#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync {

using core::to_ms;

SmartPolling::SmartPolling(FreshnessTracker& tracker, SmartPollingOptions options)
    : tracker_(tracker), options_(options), log_(log::get(loggers::kSmartPolling)) {
  seen_revision_ = tracker_.revision();
  tracker_sub_ = tracker_.subscribe([this] { on_tracker(); });
}

SmartPolling::~SmartPolling() = default;

PollingConfig SmartPolling::config(const FreshnessTracker::Lookup& lookup) const {
  RTSYNC_ASSERT_ON_LOOP(tracker_.scheduler());
  PollingConfig c;
  c.refetch_interval =
      std::clamp(tracker_.polling_interval(lookup), options_.min_interval, options_.max_interval);
  c.stale_time = tracker_.is_fresh(lookup, options_.freshness_threshold)
                     ? options_.freshness_threshold
                     : core::Duration::zero();
  return c;
}

PollingConfig SmartPolling::config(const FreshnessTracker::Key& key) const {
  RTSYNC_ASSERT_ON_LOOP(tracker_.scheduler());
  return config(FreshnessTracker::Lookup(key));
}

void SmartPolling::on_tracker() {
  // The revision moves whenever an answer may change for the tracker's 30 s threshold; with any
  // other threshold every notification recomputes.
  const auto rev = tracker_.revision();
  if (rev == seen_revision_ && options_.freshness_threshold == FreshnessTracker::kFreshThreshold) {
    return;
  }
  seen_revision_ = rev;
  ++recomputes_;
  // An observer's listeners are posted, but a handle could still be dropped meanwhile: the list
  // then skips it.
  registry_.for_each([](SmartQuery* q) { q->refresh(); });
}

std::unique_ptr<SmartQuery> SmartPolling::observe(query::QueryClient& client,
                                                  query::ObserverOptions options,
                                                  std::optional<FreshnessTracker::Key> lookup_key) {
  RTSYNC_ASSERT_ON_LOOP(tracker_.scheduler());
  auto lookup = lookup_key ? std::move(*lookup_key) : options.key.elements();
  return std::unique_ptr<SmartQuery>(
      new SmartQuery(*this, client, std::move(options), std::move(lookup)));
}

namespace {
query::ObserverOptions with_config(query::ObserverOptions options, const PollingConfig& c) {
  options.refetch_interval = query::RefetchInterval(c.refetch_interval);
  options.stale_time = query::StaleTime(c.stale_time);
  return options;
}
}  // namespace

SmartQuery::SmartQuery(SmartPolling& polling, query::QueryClient& client,
                       query::ObserverOptions options, FreshnessTracker::Key lookup)
    : polling_(&polling),
      lookup_(std::move(lookup)),
      config_(polling.config(lookup_)),
      observer_(client, with_config(std::move(options), config_)) {
  registration_ = polling.registry_.add(this);
  polling.log_->debug("{} starts with refetchInterval {} ms, staleTime {} ms", lookup_.text(),
                      to_ms(config_.refetch_interval), to_ms(config_.stale_time));
}

SmartQuery::~SmartQuery() = default;

void SmartQuery::refresh() {
  const auto next = polling_->config(lookup_);
  if (next == config_) return;
  ++updates_;
  if (next.refetch_interval != config_.refetch_interval) {
    polling_->log_->info("{} refetchInterval {} → {} ms", lookup_.text(),
                         to_ms(config_.refetch_interval), to_ms(next.refetch_interval));
    observer_.set_refetch_interval(query::RefetchInterval(next.refetch_interval));
  }
  if (next.stale_time != config_.stale_time) {
    polling_->log_->debug("{} staleTime {} → {} ms", lookup_.text(), to_ms(config_.stale_time),
                          to_ms(next.stale_time));
    observer_.set_stale_time(query::StaleTime(next.stale_time));
  }
  config_ = next;
}

json::value SmartPolling::diagnostics() const {
  RTSYNC_ASSERT_ON_LOOP(tracker_.scheduler());
  json::array qs;
  registry_.for_each([&](const SmartQuery* q) {
    qs.push_back(json::object{{"key", q->lookup_text()},
                              {"refetchIntervalMs", to_ms(q->config().refetch_interval)},
                              {"staleTimeMs", to_ms(q->config().stale_time)},
                              {"updates", q->updates()}});
  });
  return json::object{
      {"observers", registry_.size()}, {"recomputes", recomputes_}, {"queries", std::move(qs)}};
}

}  // namespace rtsync::client::sync
