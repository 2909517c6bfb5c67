#include "rtsync/client/sync/realtime_manager.hpp"

#include <algorithm>

#include <boost/json/monotonic_resource.hpp>

#include "rtsync/client/sync/names.hpp"
#include "rtsync/client/sync/reconnect_scheduler.hpp"
#include "rtsync/client/sync/reconnect_triggers.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"

namespace rtsync::client::sync {

std::string_view to_string(ChannelPhase phase) noexcept {
  switch (phase) {
    case ChannelPhase::joining:
      return "joining";
    case ChannelPhase::subscribed:
      return "subscribed";
    case ChannelPhase::error:
      return "error";
    case ChannelPhase::closed:
      return "closed";
    case ChannelPhase::left:
      return "left";
  }
  return "unknown";
}

using core::to_ms;

struct RealtimeManager::Join {
  std::string project_id;
  std::string name;  // the channel's name
  bool from_heal = false;
  bool settled = false;
  JoinCallback done;
  FreshnessTracker::KeySet keys;
  std::shared_ptr<RealtimeChannel> channel;
  std::vector<core::Subscription> event_subs;  // broadcasts and changes
  core::Subscription overflow_sub;
  core::Subscription presence_sub;
  core::Subscription status_sub;
  core::Timer guard;

  Join(std::string id, const SyncBinding& binding, bool heal, JoinCallback cb)
      : project_id(std::move(id)),
        name(binding.channel_name(project_id)),
        from_heal(heal),
        done(std::move(cb)),
        keys(binding.freshness_keys ? binding.freshness_keys(project_id)
                                    : std::vector<FreshnessTracker::Key>{}) {}
};

RealtimeManager::RealtimeManager(core::Scheduler& scheduler, RealtimeSocket& socket,
                                 AuthSession& auth, FreshnessTracker& freshness,
                                 core::EventBus& bus, RealtimeManagerOptions options,
                                 const MessageClock* message_clock)
    : scheduler_(scheduler),
      socket_(socket),
      auth_(auth),
      freshness_(freshness),
      bus_(bus),
      options_(std::move(options)),
      message_clock_(message_clock),
      log_(log::get(loggers::kSimpleRealtime)),
      phase_listeners_(loggers::kSimpleRealtime),
      presence_listeners_(loggers::kSimpleRealtime) {
  snapshot_.timestamp = scheduler_.wall_ms();
  heal_sub_ = bus_.subscribe(kAuthHealEvent, [this](const json::value& d) { on_heal(d); });
}

RealtimeManager::~RealtimeManager() {
  destroying_ = true;  // no user callbacks from here on
  heal_sub_.remove();
  heal_timer_.cancel();
  project_id_.reset();
  leave_channel();
}

bool RealtimeManager::join_project(std::string_view project_id, JoinCallback done) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return join(project_id, false, std::move(done));
}

bool RealtimeManager::join(std::string_view project_id, bool from_heal, JoinCallback done) {
  if (project_id.empty()) {
    log_->error("joinProject: empty project id");
    return false;
  }
  // 1. Auth check from the cached session: no network round trip before a join.
  const auto& session = auth_.get_session();
  if (!session || session->access_token.empty()) {
    log_->warn("[auth] no valid session; not joining project {}", project_id);
    freshness_.on_realtime_status_change(RealtimeStatus::error, "No valid session");
    return false;
  }
  log_->info("[auth] session ok for user {}; setting realtime auth", session->user_id);
  socket_.set_auth(session->access_token);

  // 2. One channel at a time.
  leave_channel();
  // 3. A public join starts over; a heal join keeps counting its cycle.
  project_id_ = std::string(project_id);
  if (!from_heal) end_heal_cycle();

  // 4. Bindings before subscribing.
  const SyncBinding& binding = options_.binding;
  auto j = std::make_shared<Join>(*project_id_, binding, from_heal, std::move(done));
  join_ = j;
  const std::string& name = j->name;
  // Presence is asked for when the application tracks or listens (as realtime-js decides).
  ChannelOptions channel_options;
  channel_options.is_private = binding.private_channel;
  channel_options.presence_enabled =
      presence_payload_.has_value() || presence_listeners_.size() > 0;
  if (presence_payload_) channel_options.presence_key = presence_key_;
  // A replaced channel continues its predecessor's stream (docs/resume.md).
  if (saved_position_ && saved_position_->first == *project_id_) {
    channel_options.resume_from = saved_position_->second;
  }
  saved_position_.reset();
  j->channel = socket_.channel(name, channel_options);
  std::weak_ptr<Join> weak = j;
  if (channel_options.presence_enabled) {
    j->presence_sub = j->channel->on_presence_sync([this, weak] {
      auto live = weak.lock();
      if (!live || live != join_ || destroying_) return;
      presence_listeners_.notify(live->channel->presence_state());
    });
  }
  // The specs are read through the binding, which lives as long as the manager (and with it
  // every callback registered here).
  for (const auto& b : binding.broadcasts) {
    j->event_subs.push_back(j->channel->on_broadcast(
        b.event, [this, &b](const json::value& m) { on_event("broadcast", b.bus_event, m); }));
  }
  for (const auto& c : binding.changes) {
    PostgresChangesFilter filter{c.event, c.schema, c.table, std::nullopt};
    if (!c.scope_column.empty()) filter.filter = c.scope_column + "=eq." + *project_id_;
    j->event_subs.push_back(j->channel->on_postgres_changes(
        std::move(filter), [this, &c](const RealtimeChannel::ChangeView& change) {
          on_change(c.event, c.bus_event, change);
        }));
  }
  j->overflow_sub = j->channel->on_changes_overflow(
      [this](const RealtimeChannel::ChangesOverflow& overflow) { on_overflow(overflow); });
  j->status_sub =
      j->channel->on_status([this, weak](SubscribeStatus status, std::optional<Error> error) {
        if (auto live = weak.lock()) on_status(live, status, error);
      });

  // 5. Subscribe under our own guard.
  log_->info("joining {} ({})", name, from_heal ? "heal attempt" : "join");
  j->guard = scheduler_.schedule(options_.join_timeout, timers::JoinGuard, [this, weak] {
    auto live = weak.lock();
    if (!live) return;
    log_->warn("subscribe of {} got no status within {} ms", live->name,
               to_ms(options_.join_timeout));
    settle(live, false);
  });
  if (auto r = j->channel->subscribe(); !r.ok()) {
    log_->error("join failed: {}", r.error().describe());
    freshness_.on_realtime_status_change(RealtimeStatus::error,
                                         "Join failed: " + r.error().message);
    j->done = nullptr;
    leave_channel();
    return false;
  }
  announce(ChannelPhase::joining, "joining " + name);
  return true;
}

void RealtimeManager::on_status(const std::shared_ptr<Join>& j, SubscribeStatus status,
                                const std::optional<Error>& error) {
  if (j != join_) return;
  const auto name = to_string(status);
  log_->info("channel {} status {}{}{}", j->name, name, error ? ": " : "",
             error ? error->message : "");
  j->guard.cancel();
  switch (status) {
    case SubscribeStatus::subscribed: {
      subscribed_ = true;
      end_heal_cycle();
      set_snapshot("joined");
      auto outcome = j->channel->last_join_outcome().value_or(JoinOutcome{});
      if (outcome.kind == JoinOutcomeKind::fresh && subscribed_scope_ == j->project_id) {
        // A new channel of a scope subscribed before, with nothing to resume from.
        outcome.kind = JoinOutcomeKind::gap;
        outcome.reason = outcome.rtsync
                             ? "no position to resume from"
                             : "the server does not resume (no rtsync in the join reply)";
      }
      subscribed_scope_ = j->project_id;
      if (outcome.kind == JoinOutcomeKind::resumed) {
        ++resumes_;
        replayed_ += static_cast<std::uint64_t>(outcome.replayed);
      } else if (outcome.kind == JoinOutcomeKind::gap) {
        ++gaps_;
      }
      last_outcome_ = outcome;
      freshness_.on_realtime_status_change(RealtimeStatus::connected,
                                           "Supabase subscription successful");
      // Nothing was missed: what the channel feeds is as fresh as after an event.
      if (outcome.kind == JoinOutcomeKind::resumed) freshness_.mark_queries_fresh(j->keys);
      announce(ChannelPhase::subscribed, "Supabase subscription successful", std::move(outcome));
      track_presence(j);
      settle(j, true);
      return;
    }
    case SubscribeStatus::channel_error:
    case SubscribeStatus::timed_out: {
      subscribed_ = false;
      set_snapshot("error");
      log_auth_state();
      std::string reason = "Subscription failed: " + std::string(name);
      if (error && !error->message.empty()) reason += " (" + error->message + ")";
      freshness_.on_realtime_status_change(RealtimeStatus::error, reason);
      announce(ChannelPhase::error, reason);
      settle(j, false);
      return;
    }
    case SubscribeStatus::closed:
      // Not ours: our own leave removes this listener first. The server closed the channel
      // (phx_close) and the transport will not rejoin it; a heal can.
      subscribed_ = false;
      set_snapshot("closed");
      freshness_.on_realtime_status_change(RealtimeStatus::disconnected,
                                           "Channel closed by server");
      announce(ChannelPhase::closed, "Channel closed by server");
      settle(j, false);
      return;
  }
}

void RealtimeManager::log_auth_state() const {
  // The seed's post-failure getUser(): tells auth problems from network ones in the log.
  const auto& s = auth_.get_session();
  if (s && !s->access_token.empty()) {
    log_->warn("[auth] after failure: session present for user {}", s->user_id);
  } else {
    log_->warn("[auth] after failure: no session (sign-in needed)");
  }
}

void RealtimeManager::settle(const std::shared_ptr<Join>& j, bool ok) {
  if (j->settled) return;
  j->settled = true;
  j->guard.cancel();
  auto done = std::move(j->done);
  j->done = nullptr;
  if (destroying_) return;
  if (done) done(ok);
}

namespace {
// One arena per payload: a tasks row is ~30 strings; copying them into one monotonic block costs
// one allocation instead of thirty.
json::storage_ptr payload_arena() {
  return json::make_shared_resource<json::monotonic_resource>(2048);
}
}  // namespace

void RealtimeManager::on_change(std::string_view type, std::string_view bus_event,
                                const RealtimeChannel::ChangeView& change) {
  if (!join_) return;
  // The bus's listeners get a DOM they may keep: built once, straight from the frame.
  auto arena = payload_arena();
  last_payload_ = std::make_shared<const json::value>(change.to_object(std::move(arena)));
  on_event(type, bus_event, *last_payload_);
}

void RealtimeManager::on_event(std::string_view type, std::string_view bus_event,
                               const json::value& payload) {
  if (!join_) return;
  if (last_payload_.get() != &payload) {
    last_payload_ = std::make_shared<const json::value>(json::value(payload, payload_arena()));
  }
  ++events_;
  const auto now = scheduler_.wall_ms();
  snapshot_.channel_state = "joined";
  snapshot_.last_event_at = now;
  snapshot_.timestamp = now;
  freshness_.on_realtime_event(type, join_->keys);
  log_->debug("{} on {} → {}", type, join_->name, bus_event);
  bus_.emit(bus_event, *last_payload_);
}

void RealtimeManager::on_overflow(const RealtimeChannel::ChangesOverflow& overflow) {
  if (!join_) return;
  ++overflows_;
  const auto now = scheduler_.wall_ms();
  snapshot_.channel_state = "joined";
  snapshot_.last_event_at = now;
  snapshot_.timestamp = now;
  // The recorded keys are the bound table's families; another table says nothing about them.
  const bool bound = options_.binding.binds_table(overflow.schema, overflow.table);
  if (bound) freshness_.on_realtime_event("OVERFLOW", join_->keys);
  log_->warn("too many changes on {}.{} in one transaction (limit {}) on {} → {}", overflow.schema,
             overflow.table, overflow.limit ? std::to_string(*overflow.limit) : "unknown",
             join_->name, kChangesOverflowEvent);
  json::object detail;
  detail["schema"] = overflow.schema;
  detail["table"] = overflow.table;
  detail["limit"] = overflow.limit ? json::value(*overflow.limit) : json::value(nullptr);
  detail[options_.binding.scope_name] = join_->project_id;
  bus_.emit(kChangesOverflowEvent, detail);
}

void RealtimeManager::leave_channel() {
  if (!join_) return;
  auto j = std::move(join_);
  join_.reset();
  subscribed_ = false;
  j->guard.cancel();
  j->status_sub.remove();
  j->event_subs.clear();
  j->overflow_sub.remove();
  const bool had_presence = j->presence_sub.active();
  j->presence_sub.remove();
  if (const auto& pos = j->channel->position()) saved_position_.emplace(j->project_id, *pos);
  j->channel->unsubscribe();
  socket_.remove_channel(j->channel);
  log_->info("left {}", j->name);
  set_snapshot("closed");
  freshness_.on_realtime_status_change(RealtimeStatus::disconnected, "Channel unsubscribed");
  if (!destroying_) announce(ChannelPhase::left, "Channel unsubscribed");
  // Whoever shows the channel's presence must not keep showing the old scope's.
  if (had_presence && !destroying_) presence_listeners_.notify(PresenceMap{});
  settle(j, false);
}

void RealtimeManager::track_presence(const std::shared_ptr<Join>& j) {
  if (!presence_payload_ || !j->channel) return;
  std::weak_ptr<Join> weak = j;
  j->channel->track(*presence_payload_, [this, weak](const PushResult& r) {
    auto live = weak.lock();
    if (!live || live != join_ || r.status == PushStatus::ok) return;
    log_->warn("presence track on {} not accepted ({}): {}", live->name, to_string(r.status),
               json::serialize(r.response));
  });
}

void RealtimeManager::set_presence(std::string key, json::object payload) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  presence_key_ = std::move(key);
  presence_payload_ = std::move(payload);
  if (join_ && subscribed_) track_presence(join_);
}

void RealtimeManager::clear_presence() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (!presence_payload_) return;
  presence_payload_.reset();
  if (join_ && subscribed_) join_->channel->untrack();
}

PresenceMap RealtimeManager::presence_state() const {
  return join_ ? join_->channel->presence_state() : PresenceMap{};
}

core::Subscription RealtimeManager::on_presence(std::function<void(const PresenceMap&)> listener) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return presence_listeners_.add(std::move(listener));
}

void RealtimeManager::leave() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  // Project and cycle go first, so a join abandoned here cannot schedule a retry.
  project_id_.reset();
  end_heal_cycle();
  leave_channel();
  end_heal_cycle();
  subscribed_ = false;
}

void RealtimeManager::reset() {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  end_heal_cycle();
}

void RealtimeManager::end_heal_cycle() {
  heal_timer_.cancel();
  attempts_ = 0;
  heal_in_flight_ = false;
}

bool RealtimeManager::healing() const noexcept {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return heal_timer_.pending() || heal_in_flight_;
}

void RealtimeManager::on_heal(const json::value& detail) {
  const auto source = core::find_string(detail, "source").value_or("?");
  if (!project_id_) {
    log_->debug("auth-heal from {}: no project; nothing to heal", source);
    return;
  }
  if (subscribed_) {
    log_->debug("auth-heal from {}: already subscribed", source);
    return;
  }
  if (healing()) {
    log_->info("auth-heal from {}: heal cycle already running (attempt {}/{})", source, attempts_,
               options_.max_heal_attempts);
    return;
  }
  if (join_ && !join_->settled) {
    log_->info("auth-heal from {}: a join is in progress", source);
    return;
  }
  if (join_ && socket_.is_connected() && join_->channel->state() == ChannelState::joining) {
    // The channel's own rejoin (the socket reopened, a new token) is waiting for its reply;
    // replacing the channel now would throw that join, and the replay it may carry, away.
    log_->info("auth-heal from {}: the channel's rejoin is in flight; its outcome decides", source);
    return;
  }
  log_->info("auth-heal from {}: starting a heal cycle for project {}", source, *project_id_);
  attempts_ = 0;
  attempt_reconnect();
}

void RealtimeManager::attempt_reconnect() {
  if (!project_id_) return;
  heal_timer_.cancel();
  if (attempts_ >= options_.max_heal_attempts) {
    log_->error(
        "max reconnect attempts ({}) reached for project {}; realtime stays in error "
        "until the next heal",
        options_.max_heal_attempts, *project_id_);
    // The verdict replaces the last failure's reason ("No valid session", "Subscription failed:
    // …"), which the tracker would otherwise keep since the status stays `error`.
    freshness_.restate_status(RealtimeStatus::error, "Reconnect attempts exhausted");
    return;
  }
  ++attempts_;
  auto delay = options_.heal_base_delay;
  for (std::uint32_t i = 1; i < attempts_ && delay < options_.heal_max_delay; ++i)
    delay *= 2;
  delay = std::min(delay, options_.heal_max_delay);
  log_->info("reconnect attempt {}/{} in {} ms", attempts_, options_.max_heal_attempts,
             to_ms(delay));
  heal_timer_ = scheduler_.schedule(delay, timers::HealRetry, [this] {
    if (!project_id_) return;
    heal_in_flight_ = true;
    const std::string id = *project_id_;
    const bool started = join(id, true, [this](bool ok) {
      heal_in_flight_ = false;
      if (!ok) attempt_reconnect();  // success already ended the cycle
    });
    if (!started) {
      heal_in_flight_ = false;
      attempt_reconnect();
    }
  });
}

void RealtimeManager::set_snapshot(std::string_view channel_state) {
  snapshot_.channel_state = std::string(channel_state);
  snapshot_.timestamp = scheduler_.wall_ms();
}

void RealtimeManager::announce(ChannelPhase phase, std::string reason,
                               std::optional<JoinOutcome> outcome) {
  ChannelPhaseChange change{phase, join_ ? join_->project_id : project_id_.value_or(""),
                            std::move(reason), std::move(outcome)};
  phase_listeners_.notify(change);
}

core::Subscription RealtimeManager::on_phase(
    std::function<void(const ChannelPhaseChange&)> listener) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  return phase_listeners_.add(std::move(listener));
}

RealtimeManagerStatus RealtimeManager::status() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  RealtimeManagerStatus s;
  s.subscribed = subscribed_;
  s.project_id = project_id_;
  s.channel_state = join_ ? std::string(to_string(join_->channel->state())) : "closed";
  s.reconnect_attempts = attempts_;
  return s;
}

json::value RealtimeManager::snapshot_json() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  auto opt = [](const std::optional<std::int64_t>& v) {
    return v ? json::value(*v) : json::value(nullptr);
  };
  return json::object{
      {"channelState", snapshot_.channel_state},
      {"lastEventAt", opt(snapshot_.last_event_at)},
      {"timestamp", snapshot_.timestamp},
      {"lastMessageAt", opt(message_clock_ ? message_clock_->last() : snapshot_.last_message_at)}};
}

json::value RealtimeManager::status_json() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  const auto s = status();
  return json::object{{"isSubscribed", s.subscribed},
                      {options_.binding.scope_name,
                       s.project_id ? json::value(*s.project_id) : json::value(nullptr)},
                      {"channelState", s.channel_state},
                      {"reconnectAttempts", s.reconnect_attempts},
                      {"healing", healing()},
                      {"events", events_},
                      {"overflows", overflows_},
                      {"resumes", resumes_},
                      {"gaps", gaps_},
                      {"replayed", replayed_},
                      {"position", position_json(position())},
                      {"lastJoin", outcome_json(last_outcome_)}};
}

std::optional<StreamPosition> RealtimeManager::position() const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (join_ && join_->channel->position()) return join_->channel->position();
  if (saved_position_) return saved_position_->second;
  return std::nullopt;
}

json::value position_json(const std::optional<StreamPosition>& position) {
  return position ? json::value(protocol::build_stream_position(*position)) : json::value(nullptr);
}

json::value outcome_json(const std::optional<JoinOutcome>& outcome) {
  if (!outcome) return nullptr;
  json::object o{
      {"kind", to_string(outcome->kind)},
      {"replayed", outcome->replayed},
      {"reason", outcome->reason.empty() ? json::value(nullptr) : json::value(outcome->reason)},
      {"from", position_json(outcome->from)}};
  return o;
}

core::Subscription bind_socket_auth(AuthSession& auth, RealtimeSocket& socket) {
  return auth.on_token([&socket](const std::string& token) {
    if (token.empty()) {
      socket.set_auth(std::nullopt);
    } else {
      socket.set_auth(token);
    }
  });
}

core::Subscription bind_socket_answers(RealtimeSocket& socket, AuthSession& auth) {
  return socket.on_state([&auth](const SocketStateChange& change) {
    if (change.current == ConnectionState::open) auth.network_answered();
  });
}

core::Subscription bind_socket_reconnects(RealtimeSocket& socket, ReconnectTriggers& triggers) {
  return socket.on_state([&triggers](const SocketStateChange& change) {
    if (change.current == ConnectionState::open && change.reconnected) {
      triggers.on_socket_reconnected();
    }
  });
}

}  // namespace rtsync::client::sync
