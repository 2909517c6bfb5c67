#include "rtsync/client/sync/freshness_tracker.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "rtsync/client/query/key.hpp"
#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync {

std::string_view to_string(RealtimeStatus status) noexcept {
  switch (status) {
    case RealtimeStatus::connected:
      return "connected";
    case RealtimeStatus::disconnected:
      return "disconnected";
    case RealtimeStatus::error:
      return "error";
  }
  return "unknown";
}

struct FreshnessTracker::Entry {
  Key key;
  std::string text;
  core::TimePoint last_event{};
};

namespace {
// Distinguishes trackers in the caches of KeySet / Lookup (an address could be reused).
std::uint64_t next_tracker_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

using core::to_ms;
}  // namespace

FreshnessTracker::KeySet::KeySet(std::vector<Key> keys) : keys_(std::move(keys)) {
  texts_.reserve(keys_.size());
  for (const auto& k : keys_)
    texts_.push_back(query::QueryKey(k).hash());
}

FreshnessTracker::Lookup::Lookup(Key key) : key_(std::move(key)) {
  // The query cache's hash of the key; each prefix's hash is a prefix of it, closed by ']'.
  text_ = query::QueryKey(key_).hash();
  const auto elems = query::split_canonical_array(text_);
  prefixes_.reserve(elems.size());
  for (const auto& e : elems) {
    const auto end = static_cast<std::size_t>(e.data() + e.size() - text_.data());
    prefixes_.push_back(text_.substr(0, end) + "]");
  }
}

FreshnessTracker::FreshnessTracker(core::Scheduler& scheduler)
    : scheduler_(scheduler),
      log_(log::get(loggers::kFreshness)),
      id_(next_tracker_id()),
      status_changed_at_(scheduler.now()),
      listeners_(loggers::kFreshness),
      aging_checked_at_(scheduler.now()) {}

FreshnessTracker::~FreshnessTracker() = default;

void FreshnessTracker::on_realtime_status_change(RealtimeStatus status, std::string_view reason) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (status == status_) {
    log_->debug("status {} repeated ({}); unchanged", to_string(status), reason);
    return;
  }
  log_->info("realtime status {} -> {}{}{}", to_string(status_), to_string(status),
             reason.empty() ? "" : ": ", reason);
  status_ = status;
  reason_ = std::string(reason);
  status_changed_at_ = scheduler_.now();
  ++revision_;
  if (status_ == RealtimeStatus::connected) arm_aging(status_changed_at_ + kConnectGrace);
  changed();
}

void FreshnessTracker::restate_status(RealtimeStatus status, std::string_view reason) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (status != status_) {
    on_realtime_status_change(status, reason);
    return;
  }
  if (reason_ == reason) return;
  log_->info("realtime status {}: reason {} -> {}", to_string(status), reason_, reason);
  reason_ = std::string(reason);
  changed();
}

FreshnessTracker::Entry& FreshnessTracker::record(const Key& key, const std::string& text) {
  auto it = entries_.find(text);
  if (it == entries_.end()) {
    auto entry = std::make_unique<Entry>();
    entry->key = key;
    entry->text = text;
    it = entries_.emplace(text, std::move(entry)).first;
    ++epoch_;  // lookups may now resolve to a longer prefix
    ++revision_;
  }
  return *it->second;
}

void FreshnessTracker::stamp(std::string_view type, const KeySet& keys) {
  if (keys.tracker_id_ != id_ || keys.epoch_ != epoch_) {
    keys.cached_.clear();
    for (std::size_t i = 0; i < keys.keys_.size(); ++i) {
      keys.cached_.push_back(&record(keys.keys_[i], keys.texts_[i]));
    }
    keys.tracker_id_ = id_;
    keys.epoch_ = epoch_;
  }
  const auto now = scheduler_.now();
  for (Entry* e : keys.cached_) {
    // Refreshing a key under 30 s old changes no answer; anything older may change a row.
    if (now - e->last_event >= kRecentEvent) ++revision_;
    e->last_event = now;
  }
  if (!keys.cached_.empty()) arm_aging(now + kRecentEvent);
  log_->trace("{} recorded for {} key(s)", type.empty() ? "fresh mark" : type, keys.keys_.size());
  changed();
}

void FreshnessTracker::on_realtime_event(std::string_view type, const KeySet& keys) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  stamp(type.empty() ? "event" : type, keys);
}

void FreshnessTracker::on_realtime_event(std::string_view type, const std::vector<Key>& keys) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  stamp(type.empty() ? "event" : type, KeySet(keys));
}

void FreshnessTracker::mark_queries_fresh(const KeySet& keys) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  stamp({}, keys);
}

void FreshnessTracker::mark_queries_fresh(const std::vector<Key>& keys) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  stamp({}, KeySet(keys));
}

void FreshnessTracker::reset() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  log_->info("reset: {} tracked key(s) cleared, status disconnected", entries_.size());
  entries_.clear();
  ++epoch_;
  status_ = RealtimeStatus::disconnected;
  reason_ = "reset";
  status_changed_at_ = scheduler_.now();
  aging_.cancel();  // nothing left that ages
  aging_checked_at_ = status_changed_at_;
  ++revision_;
  changed();
}

const FreshnessTracker::Entry* FreshnessTracker::resolve(const Lookup& lookup) const {
  if (lookup.tracker_id_ == id_ && lookup.epoch_ == epoch_) return lookup.cached_;
  const Entry* found = nullptr;
  for (std::size_t i = lookup.prefixes_.size(); i-- > 0;) {
    auto it = entries_.find(lookup.prefixes_[i]);
    if (it != entries_.end()) {
      found = it->second.get();
      break;
    }
  }
  lookup.cached_ = found;
  lookup.tracker_id_ = id_;
  lookup.epoch_ = epoch_;
  return found;
}

std::optional<core::TimePoint> FreshnessTracker::last_event(const Lookup& lookup) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  const Entry* e = resolve(lookup);
  if (!e) return std::nullopt;
  return e->last_event;
}

std::optional<core::TimePoint> FreshnessTracker::last_event(const Key& key) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return last_event(Lookup(key));
}

core::Duration FreshnessTracker::interval_for(const Entry* entry) const {
  if (status_ != RealtimeStatus::connected) return kIntervalDegraded;  // row 4
  const auto now = scheduler_.now();
  if (entry) {
    const auto age = now - entry->last_event;
    if (age < kRecentEvent) return kIntervalRecent;  // row 1
    if (age < kAgingEvent) return kIntervalAging;    // row 2
  }
  if (now - status_changed_at_ < kConnectGrace) return kIntervalGrace;  // row 3
  return kIntervalQuiet;                                                // row 5
}

core::Duration FreshnessTracker::polling_interval(const Lookup& lookup) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return interval_for(resolve(lookup));
}

core::Duration FreshnessTracker::polling_interval(const Key& key) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return polling_interval(Lookup(key));
}

bool FreshnessTracker::is_fresh(const Lookup& lookup, core::Duration threshold) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  const Entry* e = resolve(lookup);
  return e && scheduler_.now() - e->last_event < threshold;
}

bool FreshnessTracker::is_fresh(const Key& key, core::Duration threshold) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return is_fresh(Lookup(key), threshold);
}

core::Subscription FreshnessTracker::subscribe(std::function<void()> listener) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return listeners_.add(std::move(listener));
}

void FreshnessTracker::changed() {
  ++notifications_;
  listeners_.notify();
}

// Invariant: while any boundary lies after aging_checked_at_, the aging timer is due no later
// than the earliest of them. New boundaries only come from events and connects (always `now` +
// 30 s), so arming keeps the earlier of the pending time and the new one; a boundary that
// vanished (time refreshed, status left connected) just makes a firing announce nothing.
void FreshnessTracker::arm_aging(core::TimePoint boundary) {
  if (aging_.pending() && aging_.due() <= boundary) return;
  aging_ = scheduler_.schedule(boundary - scheduler_.now(), timers::FreshnessAging,
                               [this] { on_aging(); });
}

bool FreshnessTracker::boundary_in(core::TimePoint from, core::TimePoint to) const {
  auto inside = [&](core::TimePoint b) { return from < b && b <= to; };
  if (status_ == RealtimeStatus::connected && inside(status_changed_at_ + kConnectGrace)) {
    return true;
  }
  for (const auto& [text, e] : entries_) {
    if (inside(e->last_event + kRecentEvent) || inside(e->last_event + kAgingEvent)) return true;
  }
  return false;
}

std::optional<core::TimePoint> FreshnessTracker::next_boundary_after(core::TimePoint t) const {
  std::optional<core::TimePoint> best;
  auto consider = [&](core::TimePoint b) {
    if (b > t && (!best || b < *best)) best = b;
  };
  if (status_ == RealtimeStatus::connected) consider(status_changed_at_ + kConnectGrace);
  for (const auto& [text, e] : entries_) {
    consider(e->last_event + kRecentEvent);
    consider(e->last_event + kAgingEvent);
  }
  return best;
}

void FreshnessTracker::on_aging() {
  const auto now = scheduler_.now();
  const bool crossed = boundary_in(aging_checked_at_, now);
  aging_checked_at_ = now;
  if (auto next = next_boundary_after(now)) {
    aging_ = scheduler_.schedule(*next - now, timers::FreshnessAging, [this] { on_aging(); });
  }
  if (crossed) {
    ++revision_;
    log_->debug("a freshness row boundary passed; notifying {} subscriber(s)", listeners_.size());
    changed();
  }
}

json::value FreshnessTracker::diagnostics() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  const auto now = scheduler_.now();
  std::vector<const Entry*> sorted;
  sorted.reserve(entries_.size());
  for (const auto& [text, e] : entries_)
    sorted.push_back(e.get());
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->text < b->text; });
  json::array ages;
  for (const Entry* e : sorted) {
    const auto age_ms = to_ms(now - e->last_event);
    ages.push_back(json::object{{"query", e->text},
                                {"ageMs", age_ms},
                                {"ageSec", std::llround(static_cast<double>(age_ms) / 1000.0)}});
  }
  return json::object{{"realtimeStatus", to_string(status_)},
                      {"statusReason", reason_},
                      {"timeSinceStatusChange", to_ms(now - status_changed_at_)},
                      {"trackedQueries", entries_.size()},
                      {"queryAges", std::move(ages)},
                      {"subscriberCount", listeners_.size()},
                      {"timestamp", scheduler_.wall_ms()}};
}

}  // namespace rtsync::client::sync
