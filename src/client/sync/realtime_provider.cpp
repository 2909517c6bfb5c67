#include "rtsync/client/sync/realtime_provider.hpp"

#include <algorithm>

#include "rtsync/client/query/names.hpp"
#include "rtsync/client/sync/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"

namespace rtsync::client::sync {

std::vector<query::QueryKey> channel_gap_families(const SyncBinding& binding) {
  std::vector<query::QueryKey> mapped;
  for (const auto& t : binding.table_families) {
    if (!binding.binds_table(t.schema, t.table)) continue;
    for (const auto& k : t.families)
      mapped.push_back(k);
  }
  if (mapped.empty()) return binding.gap_fill_families;
  std::vector<query::QueryKey> out;
  for (const auto& k : binding.gap_fill_families) {
    if (std::find(mapped.begin(), mapped.end(), k) != mapped.end()) out.push_back(k);
  }
  return out;
}

namespace {
std::vector<query::InvalidateFilters> to_filters(const std::vector<query::QueryKey>& families) {
  std::vector<query::InvalidateFilters> out;
  out.reserve(families.size());
  for (const auto& key : families) {
    query::InvalidateFilters f;
    f.query_key = key;
    out.push_back(std::move(f));
  }
  return out;
}
}  // namespace

RealtimeProvider::RealtimeProvider(RealtimeManager& manager, query::QueryClient& cache,
                                   core::EventBus& bus, FreshnessTracker& freshness,
                                   ProjectSelection& project, RealtimeProviderOptions options)
    : manager_(manager),
      binding_(manager.binding()),
      cache_(cache),
      freshness_(freshness),
      project_(project),
      options_(std::move(options)),
      log_(log::get(loggers::kProvider)),
      listeners_(loggers::kProvider) {
  for (const auto& [event, families] : binding_.invalidations) {
    entries_.push_back(Entry{event, to_filters(families)});
  }
  table_entries_ = entries_.size();
  for (const auto& t : binding_.table_families) {
    entries_.push_back(Entry{t.schema + "." + t.table + " overflow", to_filters(t.families)});
  }
  gap_filters_ = to_filters(channel_gap_families(binding_));
  batches_.resize(entries_.size());
  for (std::size_t i = 0; i < binding_.invalidations.size(); ++i) {
    event_subs_.push_back(bus.subscribe(binding_.invalidations[i].first,
                                        [this, i](const json::value& d) { on_event(i, d); }));
  }
  event_subs_.push_back(
      bus.subscribe(kChangesOverflowEvent, [this](const json::value& d) { on_overflow(d); }));
  phase_sub_ = manager_.on_phase([this](const ChannelPhaseChange& c) { on_phase(c); });
  project_sub_ = project_.subscribe([this](const std::optional<std::string>& p) { apply(p); });
  log_->info("mounted; selected project {}", project_.get().value_or("(none)"));
  apply(project_.get());
}

RealtimeProvider::~RealtimeProvider() {
  *alive_ = false;
  project_sub_.remove();
  phase_sub_.remove();
  if (current_) {
    log_->info("unmounting; leaving project {}", *current_);
    manager_.leave();
  }
}

void RealtimeProvider::apply(const std::optional<std::string>& project) {
  ++generation_;
  if (!project) {
    if (current_) {
      log_->info("no project selected; leaving {}", *current_);
      current_.reset();
      manager_.leave();
    }
    subscribed_ = false;
    set_connection(false, false, std::nullopt);
    freshness_.reset();
    return;
  }
  if (current_ == project) return;
  log_->info("project {} selected; connecting", *project);
  current_ = project;
  subscribed_ = false;
  set_connection(false, true, std::nullopt);
  const auto generation = generation_;
  const bool started = manager_.join_project(
      *project, [this, generation, alive = std::weak_ptr<bool>(alive_)](bool ok) {
        auto a = alive.lock();
        if (!a || !*a || generation != generation_) return;  // an earlier selection's join
        if (ok) {
          set_connection(true, false, std::nullopt);
        } else {
          log_->warn("failed to connect to realtime for project {}", current_.value_or("?"));
          set_connection(false, false, "Failed to connect to realtime");
        }
      });
  if (!started) {
    log_->warn("could not start joining project {}", *project);
    set_connection(false, false, "Failed to connect to realtime");
  }
}

void RealtimeProvider::on_phase(const ChannelPhaseChange& change) {
  if (!current_ || change.project_id != *current_) return;  // an old project's channel
  switch (change.phase) {
    case ChannelPhase::joining:
      subscribed_ = false;
      set_connection(false, true, state_.error);
      return;
    case ChannelPhase::subscribed: {
      const bool resubscribed = !subscribed_;
      subscribed_ = true;
      set_connection(true, false, std::nullopt);
      if (resubscribed && change.outcome && change.outcome->kind == JoinOutcomeKind::resumed) {
        ++stats_.resumes;
        log_->info("subscribed to project {}; resumed ({} change(s) replayed): nothing to refetch",
                   change.project_id, change.outcome->replayed);
        return;
      }
      if (resubscribed) {
        ++stats_.gap_fills;
        log_->info("subscribed to project {}; invalidating {} families to fill the gap",
                   change.project_id, gap_filters_.size());
        invalidate(gap_filters_);
      }
      return;
    }
    case ChannelPhase::error:
    case ChannelPhase::closed:
      subscribed_ = false;
      set_connection(false, false, change.reason);
      return;
    case ChannelPhase::left:
      subscribed_ = false;
      set_connection(false, state_.is_connecting, state_.error);
      return;
  }
}

void RealtimeProvider::on_event(std::size_t index, const json::value& detail) {
  ++stats_.events;
  const auto& name = binding_.invalidations[index].first;
  // Share the manager's copy of the detail, and its clock reading, when it is the one being
  // dispatched (the manager stamped its snapshot with this event's time a moment ago).
  EventStamp stamp;
  const auto& shared = manager_.last_event_payload();
  const auto& stamped_at = manager_.snapshot().last_event_at;
  if (shared && shared.get() == &detail && stamped_at) {
    stamp = EventStamp{shared, *stamped_at};
  } else {
    stamp = EventStamp{std::make_shared<const json::value>(detail), cache_.scheduler().wall_ms()};
  }
  for (const auto& stamped : binding_.stamped_events) {
    if (stamped.bus_event != name) continue;
    state_.last_events[name] = std::move(stamp);
    publish();
    break;
  }
  trigger(index);
}

void RealtimeProvider::on_overflow(const json::value& detail) {
  const auto schema = core::find_string(detail, "schema").value_or("");
  const auto table = core::find_string(detail, "table").value_or("");
  const auto& tables = binding_.table_families;
  const auto it = std::find_if(tables.begin(), tables.end(), [&](const TableFamilies& t) {
    return t.schema == schema && t.table == table;
  });
  if (it == tables.end()) {
    ++stats_.overflows_unbound;
    log_->info("too many changes on {}.{}: no query families bound to it; nothing to refetch",
               schema, table);
    return;
  }
  ++stats_.overflows;
  const auto index = table_entries_ + std::size_t(it - tables.begin());
  log_->info("too many changes on {}.{}: refetching its {} families", schema, table,
             entries_[index].filters.size());
  trigger(index);
}

void RealtimeProvider::trigger(std::size_t index) {
  const auto& entry = entries_[index];
  if (options_.batch_window) {
    auto& batch = batches_[index];
    if (batch.window.pending()) {
      batch.pending = true;
      ++stats_.events_batched;
      return;
    }
    log_->debug("{}: invalidating {} families", entry.label, entry.filters.size());
    invalidate(entry.filters);
    open_batch(index);
    return;
  }
  log_->debug("{}: invalidating {} families", entry.label, entry.filters.size());
  invalidate(entry.filters);
}

void RealtimeProvider::open_batch(std::size_t index) {
  batches_[index].window = cache_.scheduler().schedule(
      *options_.batch_window, rtsync::client::query::timers::InvalidationCoalesce, [this, index] {
        auto& batch = batches_[index];
        if (!batch.pending) return;  // quiet: the window closes
        batch.pending = false;
        const auto& entry = entries_[index];
        log_->debug("{}: batched triggers; invalidating {} families", entry.label,
                    entry.filters.size());
        invalidate(entry.filters);
        open_batch(index);
      });
}

void RealtimeProvider::invalidate(const std::vector<query::InvalidateFilters>& filters) {
  for (const auto& f : filters) {
    const auto r = cache_.invalidate_queries(f, options_.invalidate);
    ++stats_.invalidation_calls;
    stats_.refetches_started += r.refetched;
    stats_.refetches_coalesced += r.coalesced;
  }
}

void RealtimeProvider::set_connection(bool connected, bool connecting,
                                      std::optional<std::string> error) {
  if (state_.is_connected == connected && state_.is_connecting == connecting &&
      state_.error == error) {
    return;
  }
  state_.is_connected = connected;
  state_.is_connecting = connecting;
  state_.error = std::move(error);
  log_->info("connection: connected={} connecting={} error={}", connected, connecting,
             state_.error.value_or("none"));
  publish();
}

void RealtimeProvider::publish() {
  listeners_.notify(state_);
}

core::Subscription RealtimeProvider::subscribe(std::function<void(const ProviderState&)> listener) {
  RTSYNC_ASSERT_ON_LOOP(cache_.scheduler());
  return listeners_.add(std::move(listener));
}

json::value RealtimeProvider::diagnostics() const {
  RTSYNC_ASSERT_ON_LOOP(cache_.scheduler());
  json::object d{{"isConnected", state_.is_connected},
                 {"isConnecting", state_.is_connecting},
                 {"error", state_.error ? json::value(*state_.error) : json::value(nullptr)}};
  for (const auto& stamped : binding_.stamped_events) {
    const auto* s = state_.last(stamped.bus_event);
    d[stamped.diagnostics_name] = s ? json::value(s->timestamp) : json::value(nullptr);
  }
  d[binding_.scope_name] = current_ ? json::value(*current_) : json::value(nullptr);
  d["stats"] = json::object{{"events", stats_.events},
                            {"invalidationCalls", stats_.invalidation_calls},
                            {"refetchesStarted", stats_.refetches_started},
                            {"refetchesCoalesced", stats_.refetches_coalesced},
                            {"gapFills", stats_.gap_fills},
                            {"resumes", stats_.resumes},
                            {"eventsBatched", stats_.events_batched},
                            {"overflows", stats_.overflows},
                            {"overflowsUnbound", stats_.overflows_unbound}};
  return d;
}

}  // namespace rtsync::client::sync
