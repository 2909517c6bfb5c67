#include "rtsync/client/sync/reconnect_scheduler.hpp"

#include <algorithm>

#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::client::sync {

std::string_view to_string(ReconnectPriority p) noexcept {
  switch (p) {
    case ReconnectPriority::low:
      return "low";
    case ReconnectPriority::medium:
      return "medium";
    case ReconnectPriority::high:
      return "high";
  }
  return "unknown";
}

using core::to_ms;

ReconnectScheduler::ReconnectScheduler(core::Scheduler& scheduler, core::EventBus& bus,
                                       ReconnectSchedulerOptions options)
    : scheduler_(scheduler),
      bus_(bus),
      options_(options),
      log_(log::get(loggers::kReconnectScheduler)) {}

ReconnectScheduler::~ReconnectScheduler() = default;

void ReconnectScheduler::request_reconnect(ReconnectIntent intent) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  log_->info("reconnect requested by {} ({}, priority {}); {} queued", intent.source, intent.reason,
             to_string(intent.priority), intents_.size() + 1);
  intents_.push_back(Queued{std::move(intent), scheduler_.now(), next_seq_++});
  // Trailing debounce: every request restarts the wait.
  timer_ = scheduler_.schedule(options_.debounce, timers::ReconnectDebounce, [this] { process(); });
}

void ReconnectScheduler::clear() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  timer_.cancel();
  intents_.clear();
  processing_ = false;
}

void ReconnectScheduler::process() {
  if (processing_ || intents_.empty()) return;
  const auto now = scheduler_.now();
  if (last_reconnect_at_ && now - *last_reconnect_at_ < options_.min_interval) {
    const auto wait = options_.min_interval - (now - *last_reconnect_at_);
    log_->info("throttled: last heal {} ms ago, waiting {} ms", to_ms(now - *last_reconnect_at_),
               to_ms(wait));
    timer_ = scheduler_.schedule(wait, timers::ReconnectDebounce, [this] { process(); });
    return;
  }
  processing_ = true;
  auto intents = std::move(intents_);
  intents_.clear();
  std::stable_sort(intents.begin(), intents.end(), [](const Queued& a, const Queued& b) {
    if (a.intent.priority != b.intent.priority) return a.intent.priority > b.intent.priority;
    if (a.at != b.at) return a.at < b.at;
    return a.seq < b.seq;
  });
  json::array sources;
  json::array reasons;
  std::vector<std::string_view> seen;
  for (const auto& q : intents) {
    sources.emplace_back(q.intent.source);
    if (std::find(seen.begin(), seen.end(), q.intent.reason) == seen.end()) {
      seen.push_back(q.intent.reason);
      reasons.emplace_back(q.intent.reason);
    }
  }
  const auto& primary = intents.front().intent;
  last_reconnect_at_ = now;
  last_reconnect_wall_ = scheduler_.wall_now();
  ++dispatched_;
  json::object detail{{"source", primary.source},
                      {"reason", primary.reason},
                      {"priority", to_string(primary.priority)},
                      {"coalescedSources", std::move(sources)},
                      {"coalescedReasons", std::move(reasons)},
                      {"timestamp", scheduler_.wall_ms()}};
  log_->info("dispatching {} from {} ({}), {} intent(s) coalesced", kAuthHealEvent, primary.source,
             primary.reason, intents.size());
  // The EventBus contains handler exceptions, so processing_ always resets.
  bus_.emit(kAuthHealEvent, detail);
  processing_ = false;
}

ReconnectSchedulerState ReconnectScheduler::state() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  ReconnectSchedulerState s;
  s.pending_intents = intents_.size();
  s.last_reconnect_at = last_reconnect_at_;
  s.is_processing = processing_;
  if (last_reconnect_at_) s.time_since_last_reconnect = scheduler_.now() - *last_reconnect_at_;
  return s;
}

json::value ReconnectScheduler::diagnostics() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  const auto now = scheduler_.now();
  json::array queued;
  for (const auto& q : intents_) {
    queued.push_back(json::object{{"source", q.intent.source},
                                  {"reason", q.intent.reason},
                                  {"priority", to_string(q.intent.priority)},
                                  {"ageMs", to_ms(now - q.at)}});
  }
  json::value since = nullptr;
  if (last_reconnect_at_) since = to_ms(now - *last_reconnect_at_);
  std::int64_t last_wall = 0;
  if (last_reconnect_wall_) {
    last_wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                    last_reconnect_wall_->time_since_epoch())
                    .count();
  }
  return json::object{{"pendingIntents", intents_.size()}, {"lastReconnectAt", last_wall},
                      {"isProcessing", processing_},       {"timeSinceLastReconnect", since},
                      {"dispatched", dispatched_},         {"intents", std::move(queued)}};
}

}  // namespace rtsync::client::sync
