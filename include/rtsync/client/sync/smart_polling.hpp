// SmartPolling — the seed's useSmartPolling / useSmartPollingConfig (docs/original-app.md §4): each
// query's refetch interval and stale time derived from the FreshnessTracker.
//
// config(key) = {refetch_interval: tracker.polling_interval(key) clamped to
// [min_interval 5 s, max_interval 5 min]; stale_time: freshness_threshold (30 s) when
// tracker.is_fresh(key, threshold), else 0}. The key is looked up by family prefix (see
// FreshnessTracker), so a query's own key works; a different lookup key may be given.
//
// Observers created through `observe()` keep their refetch_interval and stale_time equal to
// config(lookup key): SmartPolling listens to the tracker and, when an answer may have changed
// (FreshnessTracker::revision), recomputes every observer at once, on the loop, inside the
// tracker's notification — nothing polls the tracker, and the tracker's aging timer makes age
// boundaries (30 s, 2 min, the connect grace) arrive exactly on time. Changes are logged
// ([SmartPolling] <key> refetchInterval 30000 → 15000 ms).
//
// Thread safety: loop-confined. The tracker must outlive SmartPolling. A SmartQuery may outlive
// the SmartPolling that made it; it then keeps its last config.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "rtsync/client/query/query_client.hpp"
#include "rtsync/client/query/query_observer.hpp"
#include "rtsync/client/sync/freshness_tracker.hpp"
#include "rtsync/client/sync/observable.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/core/listener_list.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client::sync {

// The clamps and the freshness threshold of config() (see the file comment).
struct SmartPollingOptions {
  core::Duration min_interval = std::chrono::seconds(5);          // shortest refetch interval
  core::Duration max_interval = std::chrono::minutes(5);          // longest refetch interval
  core::Duration freshness_threshold = std::chrono::seconds(30);  // fresh → this stale time
};

// What useSmartPollingConfig returns: the options spread into the query.
struct PollingConfig {
  core::Duration refetch_interval{};  // the observer's refetch_interval
  core::Duration stale_time{};        // the observer's stale_time
  // Both fields equal.
  friend bool operator==(const PollingConfig&, const PollingConfig&) = default;
};

class SmartPolling;

// A QueryObserver whose polling follows the tracker; destroying it stops following.
class SmartQuery {
 public:
  ~SmartQuery();
  SmartQuery(const SmartQuery&) = delete;
  SmartQuery& operator=(const SmartQuery&) = delete;

  // The observer; subscribe to it to mount it.
  query::QueryObserver& observer() noexcept { return observer_; }
  const query::QueryObserver& observer() const noexcept { return observer_; }
  // What the observer currently uses.
  const PollingConfig& config() const noexcept { return config_; }
  // The key its freshness is looked up by.
  const FreshnessTracker::Key& lookup_key() const noexcept { return lookup_.key(); }
  // The lookup key's canonical text (the query cache's hash).
  const std::string& lookup_text() const noexcept { return lookup_.text(); }
  // Times the config changed after creation.
  std::uint64_t updates() const noexcept { return updates_; }

 private:
  friend class SmartPolling;
  SmartQuery(SmartPolling& polling, query::QueryClient& client, query::ObserverOptions options,
             FreshnessTracker::Key lookup);
  void refresh();

  SmartPolling* polling_;
  FreshnessTracker::Lookup lookup_;
  PollingConfig config_;
  query::QueryObserver observer_;
  std::uint64_t updates_ = 0;
  core::Subscription registration_;  // in SmartPolling's list; last, so removed first
};

// Keeps observers' polling in step with the tracker (behaviour and thread safety: the file
// comment).
class SmartPolling {
 public:
  // Follows `tracker`, which must outlive the SmartPolling.
  explicit SmartPolling(FreshnessTracker& tracker, SmartPollingOptions options = {});
  ~SmartPolling();
  SmartPolling(const SmartPolling&) = delete;
  SmartPolling& operator=(const SmartPolling&) = delete;

  // config(key) as defined in the file comment.
  PollingConfig config(const FreshnessTracker::Key& key) const;
  PollingConfig config(const FreshnessTracker::Lookup& lookup) const;

  // A new observer on `client` with `options`, its refetch_interval and stale_time replaced by
  // config(lookup_key, default: options.key) and kept in step. Subscribe to
  // `observer()` to mount it.
  std::unique_ptr<SmartQuery> observe(query::QueryClient& client, query::ObserverOptions options,
                                      std::optional<FreshnessTracker::Key> lookup_key = {});

  // Live SmartQuery handles
  std::size_t observers() const {
    RTSYNC_ASSERT_ON_LOOP(tracker_.scheduler());
    return registry_.size();
  }
  // Tracker notifications that led to a recompute.
  std::uint64_t recomputes() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(tracker_.scheduler());
    return recomputes_;
  }
  // {observers, recomputes, queries:[{key, refetchIntervalMs, staleTimeMs, updates}]}
  json::value diagnostics() const;

 private:
  friend class SmartQuery;
  void on_tracker();

  FreshnessTracker& tracker_;
  SmartPollingOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  // The live SmartQuery handles, in creation order (a handle may outlive us).
  core::BasicListenerList<SmartQuery*> registry_;
  std::uint64_t seen_revision_ = 0;
  std::uint64_t recomputes_ = 0;
  core::Subscription tracker_sub_;
};

}  // namespace rtsync::client::sync
