#include "rtsync/client/transport/realtime_channel.hpp"

#include <algorithm>

#include "channel_impl.hpp"
#include "rtsync/client/transport/names.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/core/strings.hpp"
#include "rtsync/protocol/postgres_changes.hpp"
#include "rtsync/protocol/reply.hpp"
#include "socket_core.hpp"

namespace rtsync::client {

namespace {

auto channel_log() {
  return log::get(loggers::kChannel);
}

using core::iequals;

std::string describe_spec(const protocol::PostgresChangesSpec& s) {
  auto opt = [](const std::optional<std::string>& v) { return v ? "\"" + *v + "\"" : "null"; };
  return "{event:\"" + s.event + "\", schema:" + opt(s.schema) + ", table:" + opt(s.table) +
         ", filter:" + opt(s.filter) + "}";
}

json::value reason_payload(std::string_view reason) {
  json::object o;
  o["reason"] = reason;
  return o;
}

// Token and permission problems get their own code so callers can refresh and retry.
Errc errc_for_system_error(std::string_view message) {
  for (std::string_view needle : {"token", "Token", "JWT", "permission", "Unauthorized"}) {
    if (message.find(needle) != std::string_view::npos) return Errc::unauthorized;
  }
  return Errc::remote;
}

}  // namespace

std::string_view to_string(SubscribeStatus status) noexcept {
  switch (status) {
    case SubscribeStatus::subscribed:
      return "SUBSCRIBED";
    case SubscribeStatus::timed_out:
      return "TIMED_OUT";
    case SubscribeStatus::channel_error:
      return "CHANNEL_ERROR";
    case SubscribeStatus::closed:
      return "CLOSED";
  }
  return "CLOSED";
}

std::string_view to_string(JoinOutcomeKind kind) noexcept {
  switch (kind) {
    case JoinOutcomeKind::fresh:
      return "fresh";
    case JoinOutcomeKind::resumed:
      return "resumed";
    case JoinOutcomeKind::gap:
      return "gap";
  }
  return "fresh";
}

std::string_view to_string(ChannelState state) noexcept {
  switch (state) {
    case ChannelState::closed:
      return "closed";
    case ChannelState::joining:
      return "joining";
    case ChannelState::joined:
      return "joined";
    case ChannelState::leaving:
      return "leaving";
    case ChannelState::errored:
      return "errored";
  }
  return "closed";
}

namespace detail {

ChannelImpl::ChannelImpl(RealtimeChannel& owner_, std::string name_, ChannelOptions options_,
                         std::weak_ptr<SocketCore> socket_)
    : owner(owner_),
      socket(std::move(socket_)),
      name(std::move(name_)),
      topic(std::string(protocol::kTopicPrefix) + name),
      options(std::move(options_)),
      position(options.resume_from) {}

core::Duration ChannelImpl::timeout() const {
  if (join_timeout) return *join_timeout;
  if (options.timeout) return *options.timeout;
  if (auto s = socket.lock()) return s->options.push_timeout;
  return std::chrono::seconds(10);
}

void ChannelImpl::notify(SubscribeStatus status, std::optional<Error> error) {
  if (detached) return;
  if (error) {
    channel_log()->warn("{} {}: {}", topic, to_string(status), error->message);
  } else {
    channel_log()->info("{} {}", topic, to_string(status));
  }
  status_listeners.notify(status, std::move(error));
}

// ---- subscribe / join
// ------------------------------------------------------------------------------

Result<void> ChannelImpl::subscribe(RealtimeChannel::StatusCallback callback,
                                    std::optional<core::Duration> timeout_override) {
  if (subscribed_once) {
    return make_error(Errc::invalid_argument,
                      "subscribe() can only be called once per channel instance (" + topic + ")");
  }
  if (options.replay && !options.is_private) {
    return make_error(Errc::invalid_argument,
                      "broadcast replay is only available on private channels (" + topic + ")");
  }
  auto s = socket.lock();
  if (!s || s->shut_down() || detached) {
    return make_error(Errc::closed, "the socket of " + topic + " is gone");
  }
  subscribed_once = true;
  if (callback) subscribe_callback = status_listeners.add(std::move(callback));
  join_timeout = timeout_override;
  state = ChannelState::joining;
  if (s->is_open()) {
    send_join();
  } else {
    s->ensure_connecting();  // the join goes out when the socket opens
  }
  return {};
}

void ChannelImpl::send_join() {
  auto s = socket.lock();
  if (!s || detached || !s->is_open()) return;
  const auto ref = s->make_ref();
  join_ref = ref;
  join_push_ref = ref;
  state = ChannelState::joining;
  ++joins_sent;

  // A change callback of the earlier join may be running (deliver_change holds it by pointer).
  if (s->dispatching() && !joined_changes.empty()) {
    s->retire(std::make_shared<std::vector<std::shared_ptr<ChangeEntry>>>(
        std::exchange(joined_changes, {})));
  }
  joined_changes.clear();
  protocol::JoinRequest request;
  request.config.broadcast_ack = options.broadcast_ack;
  request.config.broadcast_self = options.broadcast_self;
  request.config.presence_key = options.presence_key;
  // As realtime-js: presence is received when asked for, or when someone listens for it.
  request.config.presence_enabled = options.presence_enabled || !presence_sync.empty() ||
                                    !presence_joins.empty() || !presence_leaves.empty();
  request.config.is_private = options.is_private;
  if (options.replay) {
    request.config.replay =
        protocol::ReplayConfig{std::chrono::duration_cast<std::chrono::milliseconds>(
                                   options.replay->since.time_since_epoch())
                                   .count(),
                               options.replay->limit};
  }
  joined_changes = changes.snapshot();
  for (const auto& b : joined_changes) {
    b->value.id.reset();
    request.config.postgres_changes.push_back(b->value.filter);
  }
  request.access_token = s->access_token();
  join_token = request.access_token;
  auto payload = protocol::build_join_payload(request);
  // rtsync: a channel holding a position asks to resume from it (docs/resume.md), unless the
  // server is known to be of another epoch (the answer could only be a gap).
  resume_sent.reset();
  replay_remaining = 0;
  replay_head.reset();
  if (position && (!s->server_epoch() || *s->server_epoch() == position->epoch)) {
    resume_sent = position;
    protocol::add_resume_request(payload, *position);
  }

  s->expect_reply(ref, topic, timeout(),
                  [weak = owner.weak_from_this(), ref](const PushResult& result) {
                    if (auto ch = weak.lock()) ch->impl_->on_join_reply(ref, result);
                  });
  s->send_now(
      protocol::Message{ref, ref, topic, std::string(protocol::events::kJoin), std::move(payload)});
}

void ChannelImpl::on_join_reply(const std::string& ref, const PushResult& result) {
  if (detached || !join_push_ref || *join_push_ref != ref) return;
  join_push_ref.reset();
  auto keep = keep_alive();
  switch (result.status) {
    case PushStatus::ok: {
      // Match the reply's postgres_changes echo to the bindings of this join, by position.
      std::optional<std::string> mismatch;
      auto acks = protocol::parse_join_response(result.response);
      if (!acks.ok()) {
        mismatch = "unreadable join reply: " + acks.error().message;
      } else if (!joined_changes.empty()) {
        const auto& list = acks.value();
        if (!list) {
          mismatch = "the reply has no postgres_changes for " +
                     std::to_string(joined_changes.size()) + " binding(s)";
        } else {
          for (std::size_t i = 0; i < joined_changes.size() && !mismatch; ++i) {
            const auto& want = joined_changes[i]->value.filter;
            if (i >= list->size()) {
              mismatch = "binding " + std::to_string(i) + " " + describe_spec(want) +
                         " has no counterpart in the reply";
            } else if (!protocol::spec_matches_ack(want, (*list)[i].spec)) {
              mismatch = "binding " + std::to_string(i) + " " + describe_spec(want) +
                         " vs server " + describe_spec((*list)[i].spec);
            }
          }
          if (!mismatch) {
            for (std::size_t i = 0; i < joined_changes.size(); ++i) {
              joined_changes[i]->value.id = (*list)[i].id;
            }
          }
        }
      }
      if (mismatch) {
        // Like realtime-js: report, leave, and do not retry — the bindings cannot work.
        auto error = make_error(
            Errc::protocol,
            "mismatch between server and client bindings for postgres changes: " + *mismatch);
        state = ChannelState::joined;  // the server did join us: leave gracefully
        unsubscribe();
        notify(SubscribeStatus::channel_error, std::move(error));
        return;
      }
      state = ChannelState::joined;
      rejoin_attempt = 0;
      rejoin_timer.cancel();
      close_reason.reset();
      auto outcome = join_outcome(result.response);
      joined_once = true;
      last_outcome = outcome;
      outcome_listeners.notify(outcome);
      if (detached || state != ChannelState::joined) return;
      flush_buffer();
      if (state != ChannelState::joined) return;
      notify(SubscribeStatus::subscribed, std::nullopt);
      return;
    }
    case PushStatus::error: {
      protocol::Reply reply{protocol::ReplyStatus::error, result.response};
      auto reason = reply.reason();
      if (reason.empty()) reason = "error";
      state = ChannelState::errored;
      // Refused for a token that has been replaced meanwhile (an expired one, refreshed while
      // the join was on its way): the new token deserves its try now, not after the backoff.
      schedule_rejoin(token_changed_since_join());
      notify(SubscribeStatus::channel_error, make_error(Errc::remote, std::move(reason)));
      return;
    }
    case PushStatus::timeout: {
      send_leave_and_forget();
      state = ChannelState::errored;
      schedule_rejoin(token_changed_since_join());
      notify(SubscribeStatus::timed_out, std::nullopt);
      return;
    }
  }
}

JoinOutcome ChannelImpl::join_outcome(const json::value& response) {
  // A first join of a channel started from a position is a rejoin of the stream it continues.
  const bool rejoin = joined_once || options.resume_from.has_value();
  JoinOutcome out;
  out.from = resume_sent;
  const bool had_position = position.has_value();
  auto s = socket.lock();
  auto rt = protocol::parse_rtsync_join_reply(response);
  if (!rt) {
    // Supabase: no resume, every rejoin is a gap. The position (if any) is kept: it may still
    // serve a later join to a server that resumes.
    if (rejoin) {
      out.kind = JoinOutcomeKind::gap;
      out.reason = "the server does not resume (no rtsync in the join reply)";
    }
  } else {
    out.rtsync = true;
    out.head = rt->head;
    if (s) s->set_server_epoch(rt->epoch);
    if (rt->resume && resume_sent && rt->resume->resumed) {
      out.kind = JoinOutcomeKind::resumed;
      out.replayed = rt->resume->replayed;
      replay_remaining = rt->resume->replayed;
      replay_head = rt->head;
      if (replay_remaining == 0) finish_replay();
    } else {
      position = rt->head;
      if (rt->resume && resume_sent) {
        out.kind = JoinOutcomeKind::gap;
        out.reason = rt->resume->reason;
      } else if (rejoin) {
        out.kind = JoinOutcomeKind::gap;
        if (resume_sent) {
          out.reason = "the server did not answer the resume request";
        } else if (had_position) {
          out.reason = "the position is of another epoch";
        } else {
          out.reason = "no position to resume from";
        }
      }
    }
  }
  switch (out.kind) {
    case JoinOutcomeKind::resumed:
      ++resumes;
      replayed_total += static_cast<std::uint64_t>(out.replayed);
      channel_log()->info("{} resumed from {}: {} change(s) replayed", topic,
                          protocol::describe(*out.from), out.replayed);
      break;
    case JoinOutcomeKind::gap:
      ++gaps;
      channel_log()->info("{} rejoined with a gap ({}){}", topic, out.reason,
                          out.from ? " from " + protocol::describe(*out.from) : std::string());
      break;
    case JoinOutcomeKind::fresh:
      break;
  }
  return out;
}

void ChannelImpl::finish_replay() {
  replay_remaining = 0;
  if (replay_head && (!position || (position->epoch == replay_head->epoch &&
                                    at_or_before(*position, *replay_head)))) {
    position = replay_head;
  }
  replay_head.reset();
}

bool ChannelImpl::unjoined_change(const std::optional<protocol::StreamPosition>& p) {
  if (!p || state == ChannelState::joined) return false;
  // No binding has an id before the join's reply, so nothing could be delivered; taking the
  // position would tell the join's own replay that these changes were applied (a replaced
  // channel's replay reaches its successor this way: its frames carry no join_ref).
  if (auto s = socket.lock()) ++s->counters().stale_frames_dropped;
  channel_log()->debug("{}: positioned change at {} before the join's reply dropped", topic,
                  protocol::describe(*p));
  return true;
}

bool ChannelImpl::accept_position(const std::optional<protocol::StreamPosition>& p) {
  if (!p) return true;
  // Every positioned frame during a replay is one of the N announced (the server sends none
  // twice; counting duplicates too keeps a misbehaving server from holding the replay open).
  const bool last_replayed = replay_remaining > 0 && --replay_remaining == 0;
  bool fresh = true;
  if (position && at_or_before(*p, *position)) {
    fresh = false;
    ++duplicates_dropped;
    channel_log()->debug("{}: duplicate change at {} (position {}) dropped", topic,
                         protocol::describe(*p), protocol::describe(*position));
  } else {
    position = *p;
  }
  if (last_replayed) finish_replay();
  return fresh;
}

void ChannelImpl::on_stream_head(const protocol::StreamPosition& head) {
  if (detached || state != ChannelState::joined || replay_remaining > 0 || !position) return;
  if (position->epoch != head.epoch || at_or_before(head, *position)) return;
  position = head;
}

bool ChannelImpl::token_changed_since_join() const {
  auto s = socket.lock();
  return s && s->access_token() && s->access_token() != join_token;
}

void ChannelImpl::schedule_rejoin(bool at_once) {
  auto s = socket.lock();
  if (!s || detached || !s->is_open()) return;  // a socket open rejoins at once instead
  // At once does not count as an attempt: if the new token is refused too, the backoff goes on
  // from where it was. A token changes rarely (a refresh), so this cannot become a storm.
  core::Duration delay = core::Duration::zero();
  if (at_once) {
    channel_log()->info("{} rejoining at once with the new access token", topic);
  } else {
    const auto attempt = ++rejoin_attempt;
    delay = s->options.rejoin_backoff.delay(attempt, s->rejoin_jitter().next());
    channel_log()->info("{} rejoin attempt {} in {} ms", topic, attempt,
                   std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  }
  rejoin_timer =
      s->scheduler().schedule(delay, timers::ChannelRejoin, [weak = owner.weak_from_this()] {
        auto ch = weak.lock();
        if (!ch) return;
        auto& impl = *ch->impl_;
        if (impl.state != ChannelState::errored) return;
        impl.send_join();
      });
}

void ChannelImpl::send_leave_and_forget() {
  auto s = socket.lock();
  if (!s || !s->is_open() || !join_ref) return;
  s->send_now(protocol::Message{join_ref, s->make_ref(), topic,
                                std::string(protocol::events::kLeave), json::object()});
}

// ---- socket events
// ---------------------------------------------------------------------------------

void ChannelImpl::on_socket_open() {
  if (detached) return;
  rejoin_timer.cancel();
  rejoin_attempt = 0;
  if (state == ChannelState::errored || (state == ChannelState::joining && !join_push_ref)) {
    send_join();
  }
}

void ChannelImpl::on_socket_closed(const Error& reason) {
  if (detached) return;
  rejoin_timer.cancel();
  rejoin_attempt = 0;
  if (join_push_ref) {
    if (auto s = socket.lock()) s->cancel_reply(*join_push_ref);
    join_push_ref.reset();
  }
  if (state == ChannelState::leaving) {
    // The leave cannot be answered any more; the server drops the channel with the socket.
    finish_close(std::nullopt);
    return;
  }
  if (state == ChannelState::joined || state == ChannelState::joining) {
    auto keep = keep_alive();
    state = ChannelState::errored;
    notify(SubscribeStatus::channel_error, reason);
  }
}

void ChannelImpl::detach() {
  detached = true;
  rejoin_timer.cancel();
  for (auto& b : buffer)
    b->timer.cancel();
  buffer.clear();
  status_listeners.clear();
  outcome_listeners.clear();
  broadcasts.clear();
  systems.clear();
  overflows.clear();
  presence_sync.clear();
  presence_joins.clear();
  presence_leaves.clear();
  state = ChannelState::closed;
}

// ---- inbound frames
// --------------------------------------------------------------------------------

void ChannelImpl::handle(const protocol::Message& m) {
  auto s = socket.lock();
  if (!s || detached) return;
  auto keep = keep_alive();
  // Frames of an earlier join of this topic (docs/protocol.md §1.3).
  const bool lifecycle = m.event == protocol::events::kClose || m.event == protocol::events::kError;
  if ((m.join_ref && m.join_ref != join_ref) || (lifecycle && m.ref && m.ref != join_ref)) {
    ++s->counters().stale_frames_dropped;
    channel_log()->debug("{}: dropped {} of an earlier join (join_ref {})", topic, m.event,
                         m.join_ref.value_or(m.ref.value_or("")));
    return;
  }
  namespace ev = protocol::events;
  if (m.event == ev::kPostgresChanges) {
    dispatch_changes(m.payload);
  } else if (m.event == ev::kBroadcast) {
    dispatch_broadcast(m.payload);
  } else if (m.event == ev::kSystem) {
    dispatch_system(m.payload);
  } else if (m.event == ev::kClose) {
    if (state == ChannelState::leaving) {
      finish_close(std::nullopt);
    } else {
      channel_log()->info("{} closed by the server", topic);
      finish_close(close_reason);
    }
  } else if (m.event == ev::kError) {
    if (state != ChannelState::joined && state != ChannelState::joining) return;
    if (join_push_ref) {
      s->cancel_reply(*join_push_ref);
      join_push_ref.reset();
    }
    std::string reason = "channel error";
    if (auto r = core::find_string(m.payload, "reason")) reason += ": " + std::string(*r);
    state = ChannelState::errored;
    schedule_rejoin();
    notify(SubscribeStatus::channel_error, make_error(Errc::remote, std::move(reason)));
  } else if (m.event == ev::kPresenceState) {
    if (!join_ref || !presence.apply_state(m.payload, *join_ref, presence_events())) {
      ++s->counters().malformed_frames;
      channel_log()->warn("{}: malformed presence_state dropped", topic);
    }
  } else if (m.event == ev::kPresenceDiff) {
    if (!presence.apply_diff(m.payload, join_ref, presence_events())) {
      ++s->counters().malformed_frames;
      channel_log()->warn("{}: malformed presence_diff dropped", topic);
    }
  } else {
    ++s->counters().unknown_events;
    channel_log()->debug("{}: unknown event '{}' ignored", topic, m.event);
  }
}

PresenceSync::Events ChannelImpl::presence_events() {
  PresenceSync::Events e;
  e.on_join = [this](const PresenceJoin& j) { presence_joins.notify(j); };
  e.on_leave = [this](const PresenceLeave& l) { presence_leaves.notify(l); };
  e.on_sync = [this] { presence_sync.notify(); };
  return e;
}

void ChannelImpl::dispatch_broadcast(const json::value& payload) {
  auto event = core::find_string(payload, "event");
  if (!event) {
    if (auto s = socket.lock()) ++s->counters().malformed_frames;
    channel_log()->warn("{}: broadcast without an event name dropped", topic);
    return;
  }
  // Broadcast from Database carries meta.position (docs/resume.md); a broadcast replay's
  // messages (meta.replayed) are a query of stored messages, not the stream.
  if (const auto* meta = core::find(payload, "meta")) {
    if (!core::find_bool(*meta, "replayed").value_or(false)) {
      if (const auto* p = core::find(*meta, "position")) {
        if (!accept_position(protocol::parse_stream_position(*p))) return;
      }
    }
  }
  broadcasts.for_each([&](const BroadcastBinding& b) {
    if (b.event != "*" && !iequals(b.event, *event)) return;
    ++broadcasts_dispatched;
    core::call_guarded(loggers::kChannel, "callback", b.callback, payload);
  });
}

void ChannelImpl::dispatch_changes(const json::value& payload) {
  auto change = protocol::parse_change_event(payload);
  if (!change.ok()) {
    if (auto s = socket.lock()) ++s->counters().malformed_frames;
    channel_log()->warn("{}: malformed postgres_changes dropped: {}", topic,
                        change.error().describe());
    return;
  }
  const auto& data = change.value().data;
  std::optional<protocol::StreamPosition> pos;
  if (const auto* d = core::find(payload, "data")) {
    if (const auto* p = core::find(*d, "position")) pos = protocol::parse_stream_position(*p);
  }
  if (unjoined_change(pos)) return;
  if (!accept_position(pos)) return;
  std::optional<json::object> shape;  // built once, only if some binding wants it
  std::optional<RealtimeChannel::ChangeView> view;
  deliver_change(change.value().ids, data.type, [&]() -> const RealtimeChannel::ChangeView& {
    if (!view) {
      shape = protocol::to_client_shape(data);
      view.emplace(RealtimeChannel::ChangeView(*shape).with_position(pos ? &*pos : nullptr));
    }
    return *view;
  });
}

template <class MakeView>
void ChannelImpl::deliver_change(const std::vector<std::int64_t>& ids, std::string_view type,
                                 MakeView&& make_view) {
  // By index, not over a copy: a frame costs no allocation. A callback may remove bindings
  // (Entry::removed()), and a rejoin replaces the list: then this frame, of the earlier join,
  // stops being delivered. The binding being called outlives its own removal without a
  // reference count: the list keeps it, and a rejoin during the dispatch retires the list
  // (send_join) instead of destroying it.
  const auto generation = joins_sent;
  for (std::size_t i = 0; i < joined_changes.size(); ++i) {
    if (detached || joins_sent != generation) return;
    const ChangeEntry& entry = *joined_changes[i];
    if (entry.removed()) continue;
    const ChangeBinding* const b = &entry.value;
    if (!b->id) continue;
    if (std::find(ids.begin(), ids.end(), *b->id) == ids.end()) continue;
    if (b->filter.event != "*" && !iequals(b->filter.event, type)) continue;
    const auto& v = make_view();
    ++changes_dispatched;
    core::call_guarded(loggers::kChannel, "callback", b->callback, v);
  }
}

void ChannelImpl::handle_change_frame(SocketCore& socket_core, const protocol::FrameHead& head,
                                      protocol::FrameReader& reader, std::string_view text) {
  if (detached) return;
  auto* s = &socket_core;
  // A frame of an earlier join of this topic (as handle()).
  if (head.join_ref && (!join_ref || *head.join_ref != *join_ref)) {
    ++s->counters().stale_frames_dropped;
    channel_log()->debug("{}: dropped {} of an earlier join (join_ref {})", topic, head.event,
                         *head.join_ref);
    return;
  }
  auto change = reader.change();
  const auto view = change ? reader.view() : std::nullopt;
  if (!change || !view) {
    // The reader declined: the DOM path gives the same result or the precise error.
    auto decoded = protocol::decode_text(s->options.vsn, text);
    if (!decoded.ok()) {
      ++s->counters().malformed_frames;
      channel_log()->warn("{}: malformed postgres_changes dropped: {}", topic,
                          decoded.error().describe());
      return;
    }
    dispatch_changes(decoded.value().payload);
    return;
  }
  std::optional<protocol::StreamPosition> pos;
  if (!change->position.is_null()) pos = protocol::parse_stream_position(change->position);
  if (unjoined_change(pos)) return;
  if (!accept_position(pos)) return;
  const auto positioned = view->with_position(pos ? &*pos : nullptr);
  deliver_change(change->ids, change->type,
                 [&]() -> const RealtimeChannel::ChangeView& { return positioned; });
}

void ChannelImpl::dispatch_system(const json::value& payload) {
  ++system_messages;
  auto sys = protocol::parse_system(payload);
  if (!sys.ok()) {
    if (auto s = socket.lock()) ++s->counters().malformed_frames;
    channel_log()->warn("{}: malformed system message dropped: {}", topic, sys.error().describe());
    return;
  }
  systems.notify(payload);
  if (detached) return;
  if (auto overflow = protocol::parse_changes_overflow(payload)) {
    ++changes_overflows;
    channel_log()->info(
        "{}: too many changes on {}.{} in one transaction (limit {}): the rest was not "
        "sent; the table must be refetched",
        topic, overflow->schema, overflow->table,
        overflow->limit ? std::to_string(*overflow->limit) : "unknown");
    overflows.notify(*overflow);
    return;
  }
  const auto& msg = sys.value();
  if (msg.status != "error") {
    channel_log()->info("{}: system {} {}: {}", topic, msg.extension, msg.status, msg.message);
    return;
  }
  if (msg.extension == "postgres_changes") {
    // Informational: the channel stays open (docs/protocol.md §2.5).
    channel_log()->warn("{}: postgres_changes error: {}", topic, msg.message);
    return;
  }
  // A channel-level error: the server stops the channel and phx_close follows.
  close_reason = make_error(errc_for_system_error(msg.message), msg.message);
  if (state == ChannelState::joined || state == ChannelState::joining) {
    notify(SubscribeStatus::channel_error, close_reason);
  }
}

// ---- leave / close
// ---------------------------------------------------------------------------------

void ChannelImpl::unsubscribe() {
  if (detached || state == ChannelState::closed || state == ChannelState::leaving) return;
  auto keep = keep_alive();
  rejoin_timer.cancel();
  auto s = socket.lock();
  if (join_push_ref) {
    if (s) s->cancel_reply(*join_push_ref);
    join_push_ref.reset();
  }
  if (s && s->is_open() && state == ChannelState::joined) {
    state = ChannelState::leaving;
    const auto ref = s->make_ref();
    leave_ref = ref;
    s->expect_reply(ref, topic, timeout(), [weak = owner.weak_from_this(), ref](const PushResult&) {
      auto ch = weak.lock();
      if (!ch || ch->impl_->leave_ref != ref) return;
      ch->impl_->finish_close(std::nullopt);
    });
    s->send_now(protocol::Message{join_ref, ref, topic, std::string(protocol::events::kLeave),
                                  json::object()});
    return;
  }
  // Nothing joined to leave gracefully: tell the server if we can, and close at once.
  send_leave_and_forget();
  finish_close(std::nullopt);
}

void ChannelImpl::finish_close(std::optional<Error> reason) {
  if (detached || state == ChannelState::closed) return;
  auto keep = keep_alive();
  auto s = socket.lock();
  state = ChannelState::closed;
  rejoin_timer.cancel();
  if (leave_ref) {
    if (s) s->cancel_reply(*leave_ref);
    leave_ref.reset();
  }
  if (join_push_ref) {
    if (s) s->cancel_reply(*join_push_ref);
    join_push_ref.reset();
  }
  fail_buffer("channel closed");
  if (s) s->forget_channel(&owner);
  notify(SubscribeStatus::closed, std::move(reason));
}

// ---- outbound pushes
// -------------------------------------------------------------------------------

void ChannelImpl::on_access_token_changed() {
  if (detached || state != ChannelState::errored || !rejoin_timer.pending()) return;
  rejoin_timer.cancel();
  schedule_rejoin(/*at_once=*/true);
}

void ChannelImpl::push_access_token(const std::string& token) {
  auto s = socket.lock();
  if (!s || detached || state != ChannelState::joined || !s->is_open()) return;
  json::object payload;
  payload["access_token"] = token;
  s->send_now(protocol::Message{join_ref, s->make_ref(), topic,
                                std::string(protocol::events::kAccessToken), std::move(payload)});
}

void ChannelImpl::send_broadcast(std::string event, json::value payload, PushCallback done) {
  json::object message;
  message["type"] = "broadcast";
  message["event"] = std::move(event);
  message["payload"] = std::move(payload);
  send_push(std::string(protocol::events::kBroadcast), std::move(message), std::move(done));
}

void ChannelImpl::send_push(std::string event, json::value message, PushCallback done) {
  auto s = socket.lock();
  if (!s || detached) {
    core::call_guarded(loggers::kChannel, "callback", done,
                       PushResult{PushStatus::error, reason_payload("socket gone")});
    return;
  }
  if (state == ChannelState::joined && s->is_open()) {
    send_push_now(*s, event, std::move(message), std::move(done));
    return;
  }
  if (state != ChannelState::joining && state != ChannelState::errored) {
    core::call_guarded(loggers::kChannel, "callback", done,
                       PushResult{PushStatus::error, reason_payload("channel is not subscribed")});
    return;
  }
  // Wait for the (re)join, bounded like the socket's send buffer.
  auto entry = std::make_shared<BufferedPush>();
  entry->event = std::move(event);
  entry->payload = std::move(message);
  entry->done = std::move(done);
  entry->timer = s->scheduler().schedule(
      timeout(), timers::PushTimeout, [weak = owner.weak_from_this(), raw = entry.get()] {
        auto ch = weak.lock();
        if (!ch) return;
        auto& buf = ch->impl_->buffer;
        auto it = std::find_if(buf.begin(), buf.end(), [&](auto& e) { return e.get() == raw; });
        if (it == buf.end()) return;
        auto victim = *it;
        buf.erase(it);
        core::call_guarded(loggers::kChannel, "callback", victim->done,
                           PushResult{PushStatus::timeout, {}});
      });
  buffer.push_back(std::move(entry));
  if (buffer.size() > s->options.send_buffer_limit) {
    auto dropped = buffer.front();
    buffer.pop_front();
    dropped->timer.cancel();
    ++s->counters().dropped_buffered;
    channel_log()->warn("{}: push buffer full ({}), oldest {} dropped", topic,
                        s->options.send_buffer_limit, dropped->event);
    core::call_guarded(loggers::kChannel, "callback", dropped->done,
                       PushResult{PushStatus::error, reason_payload("send buffer full")});
  }
}

void ChannelImpl::send_push_now(SocketCore& s, const std::string& event, json::value payload,
                                PushCallback done) {
  const auto ref = s.make_ref();
  // The server answers every presence push, and broadcasts when ack is on: wait for it.
  if (event != protocol::events::kBroadcast || options.broadcast_ack) {
    s.expect_reply(ref, topic, timeout(), std::move(done));
    s.send_now(protocol::Message{join_ref, ref, topic, event, std::move(payload)});
    return;
  }
  s.send_now(protocol::Message{join_ref, ref, topic, event, std::move(payload)});
  core::call_guarded(loggers::kChannel, "callback", done,
                     PushResult{PushStatus::ok, json::object()});
}

void ChannelImpl::flush_buffer() {
  auto s = socket.lock();
  while (s && !buffer.empty() && state == ChannelState::joined && s->is_open() && !detached) {
    auto entry = buffer.front();
    buffer.pop_front();
    entry->timer.cancel();
    send_push_now(*s, entry->event, std::move(entry->payload), std::move(entry->done));
  }
}

void ChannelImpl::fail_buffer(std::string_view reason) {
  auto pending = std::move(buffer);
  buffer.clear();
  for (auto& entry : pending) {
    entry->timer.cancel();
    core::call_guarded(loggers::kChannel, "callback", entry->done,
                       PushResult{PushStatus::error, reason_payload(reason)});
  }
}

json::value ChannelImpl::diagnostics() const {
  json::object o;
  o["topic"] = topic;
  o["state"] = to_string(state);
  if (join_ref) o["join_ref"] = *join_ref;
  o["joins_sent"] = joins_sent;
  o["rejoin_attempt"] = rejoin_attempt;
  o["rejoin_pending"] = rejoin_timer.pending();
  o["broadcast_bindings"] = broadcasts.size();
  json::array pg;
  changes.for_each([&](const ChangeBinding& b) {
    json::object e;
    e["event"] = b.filter.event;
    if (b.filter.schema) e["schema"] = *b.filter.schema;
    if (b.filter.table) e["table"] = *b.filter.table;
    if (b.filter.filter) e["filter"] = *b.filter.filter;
    if (b.id) e["id"] = *b.id;
    pg.push_back(std::move(e));
  });
  o["postgres_changes"] = std::move(pg);
  o["broadcasts_dispatched"] = broadcasts_dispatched;
  o["changes_dispatched"] = changes_dispatched;
  o["system_messages"] = system_messages;
  o["changes_overflows"] = changes_overflows;
  o["position"] =
      position ? json::value(protocol::build_stream_position(*position)) : json::value(nullptr);
  o["replay_remaining"] = replay_remaining;
  o["resumes"] = resumes;
  o["gaps"] = gaps;
  o["replayed"] = replayed_total;
  o["duplicates_dropped"] = duplicates_dropped;
  if (last_outcome) {
    json::object lo;
    lo["kind"] = to_string(last_outcome->kind);
    lo["replayed"] = last_outcome->replayed;
    if (!last_outcome->reason.empty()) lo["reason"] = last_outcome->reason;
    lo["from"] = last_outcome->from
                     ? json::value(protocol::build_stream_position(*last_outcome->from))
                     : json::value(nullptr);
    o["last_join_outcome"] = std::move(lo);
  }
  o["overflow_bindings"] = overflows.size();
  o["buffered_pushes"] = buffer.size();
  o["presence_keys"] = presence.raw().size();
  o["presence_held_diffs"] = presence.held_diffs();
  if (close_reason) o["last_error"] = close_reason->message;
  return o;
}

}  // namespace detail

// ---- facade
// --------------------------------------------------------------------------------------

namespace {
// The channel is confined to its socket's loop; once the socket is gone there is no loop left.
#if RTSYNC_LOOP_CHECKS
#define RTSYNC_CHANNEL_ON_LOOP()                                              \
  do {                                                                        \
    if (auto s = impl_->socket.lock()) RTSYNC_ASSERT_ON_LOOP(s->scheduler()); \
  } while (false)
#else
#define RTSYNC_CHANNEL_ON_LOOP() static_cast<void>(0)
#endif
}  // namespace

RealtimeChannel::RealtimeChannel(const Passkey&, std::string name, ChannelOptions options,
                                 std::weak_ptr<detail::SocketCore> socket)
    : impl_(std::make_unique<detail::ChannelImpl>(*this, std::move(name), std::move(options),
                                                  std::move(socket))) {}

RealtimeChannel::~RealtimeChannel() = default;

const std::string& RealtimeChannel::topic() const noexcept {
  return impl_->topic;
}
std::string_view RealtimeChannel::name() const noexcept {
  return impl_->name;
}
ChannelState RealtimeChannel::state() const noexcept {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->state;
}
const ChannelOptions& RealtimeChannel::options() const noexcept {
  return impl_->options;
}
const std::optional<std::string>& RealtimeChannel::join_ref() const noexcept {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->join_ref;
}

core::Subscription RealtimeChannel::on_broadcast(std::string event, BroadcastCallback callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->broadcasts.add(detail::BroadcastBinding{std::move(event), std::move(callback)});
}

core::Subscription RealtimeChannel::on_postgres_changes(PostgresChangesFilter filter,
                                                        ChangeCallback callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  if (impl_->state != ChannelState::closed) {
    channel_log()->info(
        "{}: postgres_changes binding added after subscribe takes effect at the next join",
        impl_->topic);
  }
  return impl_->changes.add(detail::ChangeBinding{std::move(filter), std::move(callback), {}});
}

core::Subscription RealtimeChannel::on_system(SystemCallback callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->systems.add(std::move(callback));
}

core::Subscription RealtimeChannel::on_changes_overflow(ChangesOverflowCallback callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->overflows.add(std::move(callback));
}

core::Subscription RealtimeChannel::on_status(StatusCallback callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->status_listeners.add(std::move(callback));
}

BroadcastMeta broadcast_meta(const json::value& message) {
  BroadcastMeta out;
  const auto* meta = core::find(message, "meta");
  if (!meta) return out;
  if (auto id = core::find_string(*meta, "id")) out.id = std::string(*id);
  out.replayed = core::find_bool(*meta, "replayed").value_or(false);
  if (const auto* p = core::find(*meta, "position"))
    out.position = protocol::parse_stream_position(*p);
  return out;
}

core::Subscription RealtimeChannel::on_join_outcome(
    std::function<void(const JoinOutcome&)> callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->outcome_listeners.add(std::move(callback));
}

const std::optional<JoinOutcome>& RealtimeChannel::last_join_outcome() const noexcept {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->last_outcome;
}

const std::optional<StreamPosition>& RealtimeChannel::position() const noexcept {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->position;
}

std::int64_t RealtimeChannel::replay_remaining() const noexcept {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->replay_remaining;
}

Result<void> RealtimeChannel::subscribe(StatusCallback callback,
                                        std::optional<core::Duration> timeout) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->subscribe(std::move(callback), timeout);
}

void RealtimeChannel::unsubscribe() {
  RTSYNC_CHANNEL_ON_LOOP();
  impl_->unsubscribe();
}

void RealtimeChannel::send_broadcast(std::string event, json::value payload, PushCallback done) {
  RTSYNC_CHANNEL_ON_LOOP();
  impl_->send_broadcast(std::move(event), std::move(payload), std::move(done));
}

core::Subscription RealtimeChannel::on_presence_sync(std::function<void()> callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->presence_sync.add(std::move(callback));
}

core::Subscription RealtimeChannel::on_presence_join(
    std::function<void(const PresenceJoin&)> callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->presence_joins.add(std::move(callback));
}

core::Subscription RealtimeChannel::on_presence_leave(
    std::function<void(const PresenceLeave&)> callback) {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->presence_leaves.add(std::move(callback));
}

PresenceMap RealtimeChannel::presence_state() const {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->presence.state();
}

void RealtimeChannel::track(json::object payload, PushCallback done) {
  RTSYNC_CHANNEL_ON_LOOP();
  json::object message{{"type", "presence"}, {"event", "track"}, {"payload", std::move(payload)}};
  impl_->send_push(std::string(protocol::events::kPresence), std::move(message), std::move(done));
}

void RealtimeChannel::untrack(PushCallback done) {
  RTSYNC_CHANNEL_ON_LOOP();
  json::object message{{"type", "presence"}, {"event", "untrack"}};
  impl_->send_push(std::string(protocol::events::kPresence), std::move(message), std::move(done));
}

json::value RealtimeChannel::diagnostics() const {
  RTSYNC_CHANNEL_ON_LOOP();
  return impl_->diagnostics();
}

}  // namespace rtsync::client
