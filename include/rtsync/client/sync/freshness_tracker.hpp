// FreshnessTracker — the seed's DataFreshnessManager (docs/original-app.md §3): realtime status
// plus the time of the last realtime event per query-key family, turned into a polling interval per
// query.
//
// Status. connected / disconnected / error, with a reason and the time of the last change. A
// repeated report of the status already held changes nothing (no new time, no notification, the
// first reason is kept; restate_status replaces it): a duplicate "connected" does not restart the
// 30 s connect grace (docs/original-app.md §8).
//
// Families, looked up by prefix. Events are recorded under keys (['tasks'],
// ['tasks','paginated','p1'], …). A lookup for a query key uses the LONGEST recorded prefix of that
// key (the key itself included): ['tasks','paginated','p1',1,50,'Queued'] finds
// ['tasks','paginated','p1'] when that is recorded, else ['tasks','paginated'], else ['tasks'].
// Longest-wins (rather than newest-of-all-prefixes) keeps per-project keys precise after a project
// switch: an event recorded for ['tasks'] and ['tasks','paginated','p2'] does not make p1's
// paginated query look fresh. Keys compare by the query cache's hash (query::QueryKey::hash,
// TanStack's hashKey: object keys sorted; 1 == 1.0), so a tracked key and a cached query's key
// name the same family exactly when the cache says they are the same key.
//
// polling_interval(key), first matching row wins, all comparisons strict `<`
// (age = now - last event of the key's family, since = now - last status change):
//   1. connected, event and age < 30 s    → 30 s
//   2. connected, event and age < 120 s   → 15 s
//   3. connected and since < 30 s         → 30 s   (grace after connecting)
//   4. disconnected or error              →  5 s
//   5. otherwise                          → 10 s
// is_fresh(key, threshold = 30 s): an event exists and age < threshold.
//
// Notifications. Subscribers are called after every change: a status change, an event or
// mark_queries_fresh (even when it only moves a time), reset(), and when time alone carries a key
// across a row boundary (an event turning 30 s or 2 min old, the connect grace ending) — a
// FreshnessAging timer fires exactly at the earliest such boundary, so listeners such as
// SmartPolling never have to poll. A subscriber that throws is logged and the others still run.
//
// Thread safety: loop-confined (all calls on the scheduler's loop).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/listener_list.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/core/subscription.hpp"

namespace rtsync::client::sync {

// Realtime health as the tracker sees it.
enum class RealtimeStatus : std::uint8_t { connected, disconnected, error };
std::string_view to_string(RealtimeStatus status) noexcept;  // "connected", …

// Realtime status and event times per key family, turned into polling intervals (see the file
// comment). Thread safety: loop-confined.
class FreshnessTracker {
 public:
  // A query key (JSON array) or a family prefix of one.
  using Key = json::array;

  // The table's numbers.
  static constexpr core::Duration kRecentEvent = std::chrono::seconds(30);
  static constexpr core::Duration kAgingEvent = std::chrono::seconds(120);
  static constexpr core::Duration kConnectGrace = std::chrono::seconds(30);
  static constexpr core::Duration kIntervalRecent = std::chrono::seconds(30);
  static constexpr core::Duration kIntervalAging = std::chrono::seconds(15);
  static constexpr core::Duration kIntervalGrace = std::chrono::seconds(30);
  static constexpr core::Duration kIntervalDegraded = std::chrono::seconds(5);
  static constexpr core::Duration kIntervalQuiet = std::chrono::seconds(10);
  static constexpr core::Duration kFreshThreshold = std::chrono::seconds(30);

  struct Entry;  // one recorded key (opaque)

  // A set of keys prepared once for repeated recording (the manager's four keys per project):
  // recording through it skips hashing. Valid with any tracker; caches per tracker.
  class KeySet {
   public:
    explicit KeySet(std::vector<Key> keys);                          // the keys to record
    const std::vector<Key>& keys() const noexcept { return keys_; }  // as given

   private:
    friend class FreshnessTracker;
    std::vector<Key> keys_;
    std::vector<std::string> texts_;
    mutable std::vector<Entry*> cached_;
    mutable std::uint64_t tracker_id_ = 0;
    mutable std::uint64_t epoch_ = 0;
  };

  // A query key prepared once for repeated lookups (SmartPolling keeps one per observer): the
  // longest-prefix resolution is cached until a new key is recorded or the tracker resets.
  class Lookup {
   public:
    explicit Lookup(Key key);                         // the query key to look up
    const Key& key() const noexcept { return key_; }  // as given
    // The key's canonical text: the query cache's hash (query::QueryKey::hash).
    const std::string& text() const noexcept { return text_; }

   private:
    friend class FreshnessTracker;
    Key key_;
    std::string text_;
    std::vector<std::string> prefixes_;  // hashes of the non-empty prefixes, shortest first
    mutable const Entry* cached_ = nullptr;
    mutable std::uint64_t tracker_id_ = 0;
    mutable std::uint64_t epoch_ = 0;
  };

  // Status disconnected, no keys; `scheduler` must outlive the tracker.
  explicit FreshnessTracker(core::Scheduler& scheduler);
  ~FreshnessTracker();
  FreshnessTracker(const FreshnessTracker&) = delete;
  FreshnessTracker& operator=(const FreshnessTracker&) = delete;

  // The scheduler it runs on, as given: the loop it and its followers (SmartPolling) are confined
  // to.
  core::Scheduler& scheduler() const noexcept { return scheduler_; }

  // Sets the realtime status. Same status as now → nothing happens.
  void on_realtime_status_change(RealtimeStatus status, std::string_view reason = {});
  // A verdict that supersedes the report that led to it (the manager's "Reconnect attempts
  // exhausted"): a different status is set as on_realtime_status_change does; the same status
  // keeps its time and polling answers, but takes `reason` and notifies when the reason differs.
  void restate_status(RealtimeStatus status, std::string_view reason);
  // Stamps `now` as the last event time of every key; `type` is for the log only.
  void on_realtime_event(std::string_view type, const KeySet& keys);
  void on_realtime_event(std::string_view type, const std::vector<Key>& keys);
  // The same without an event type (data known fresh, e.g. just fetched).
  void mark_queries_fresh(const KeySet& keys);
  void mark_queries_fresh(const std::vector<Key>& keys);
  // Forgets every key; status disconnected (reason "reset"), changed now; always notifies.
  void reset();

  // The status now.
  RealtimeStatus status() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return status_;
  }
  // Its reason.
  const std::string& reason() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return reason_;
  }
  // When the status last changed (construction, a change, or reset).
  core::TimePoint last_status_change() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return status_changed_at_;
  }

  // Last event time of `key`'s family (longest recorded prefix), if any.
  std::optional<core::TimePoint> last_event(const Key& key) const;
  std::optional<core::TimePoint> last_event(const Lookup& lookup) const;
  // The polling interval for a query key, by the table in the file comment.
  core::Duration polling_interval(const Key& key) const;
  core::Duration polling_interval(const Lookup& lookup) const;
  // The key's family had an event less than `threshold` ago.
  bool is_fresh(const Key& key, core::Duration threshold = kFreshThreshold) const;
  bool is_fresh(const Lookup& lookup, core::Duration threshold = kFreshThreshold) const;

  // Called after every change (see above).
  core::Subscription subscribe(std::function<void()> listener);
  // Listeners now.
  std::size_t subscriber_count() const {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return listeners_.size();
  }
  // Notifications sent so far.
  std::uint64_t notifications() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return notifications_;
  }
  // Changes whenever a polling_interval or is_fresh (default threshold) answer may have changed:
  // status changes, resets, row boundaries crossed, keys added, and events on a key whose last
  // event was at least 30 s old. An event that only refreshes a recent key leaves it alone, which
  // lets listeners skip work during bursts.
  std::uint64_t revision() const noexcept {
    RTSYNC_ASSERT_ON_LOOP(scheduler_);
    return revision_;
  }

  // {realtimeStatus, statusReason, timeSinceStatusChange, trackedQueries,
  //  queryAges:[{query, ageMs, ageSec}], subscriberCount, timestamp}; times in ms, timestamp is
  // wall-clock epoch ms, ageSec rounded.
  json::value diagnostics() const;

 private:
  Entry& record(const Key& key, const std::string& text);
  void stamp(std::string_view type, const KeySet& keys);
  const Entry* resolve(const Lookup& lookup) const;
  core::Duration interval_for(const Entry* entry) const;
  void changed();
  void arm_aging(core::TimePoint boundary);
  void on_aging();
  std::optional<core::TimePoint> next_boundary_after(core::TimePoint t) const;
  bool boundary_in(core::TimePoint from_exclusive, core::TimePoint to_inclusive) const;

  core::Scheduler& scheduler_;
  std::shared_ptr<spdlog::logger> log_;
  const std::uint64_t id_;
  std::uint64_t epoch_ = 1;  // bumped when a key is added or the map is cleared
  RealtimeStatus status_ = RealtimeStatus::disconnected;
  std::string reason_;
  core::TimePoint status_changed_at_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
  core::ListenerList<> listeners_;
  std::uint64_t notifications_ = 0;
  std::uint64_t revision_ = 1;
  core::Timer aging_;
  core::TimePoint aging_checked_at_;  // boundaries up to here have been announced
};

}  // namespace rtsync::client::sync
