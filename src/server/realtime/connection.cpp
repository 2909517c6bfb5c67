#include "rtsync/server/realtime/connection.hpp"
#include "rtsync/core/strings.hpp"

#include <algorithm>
#include <cctype>

#include "rtsync/core/log.hpp"
#include "rtsync/protocol/filter.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/server/realtime/names.hpp"

namespace rtsync::server::realtime {

namespace ev = protocol::events;
using protocol::Message;

namespace {

constexpr std::string_view kSubscribed = "Subscribed to PostgreSQL";
constexpr std::string_view kDbDown = "Realtime was unable to connect to the project database";
// Supabase Realtime's private-channel strings (docs/private-channels.md).
constexpr std::string_view kNoRead =
    "You do not have permissions to read from this Channel topic: ";
constexpr std::string_view kNoLongerRead =
    "You no longer have permission to read from this Channel topic: ";
constexpr std::string_view kPrivateOnly = "PrivateOnly: This project only allows private channels";
constexpr std::string_view kQueryCancelled = "Query was cancelled, please try again";

bool revoked(const std::optional<bool>& before, const std::optional<bool>& now) {
  return before == true && now == false;
}

// The channel token's write rights (both extensions), and presence read when asked.
ChannelCheck write_check(const Channel& ch, bool presence_read) {
  return ChannelCheck{AuthClass{ch.token->role, ch.token->claims_json}, ch.sub_topic, false,
                      presence_read, true};
}
constexpr std::string_view kUnableToReplay =
    "UnableToReplayMessages: Realtime was unable to replay messages";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

std::optional<std::string> string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

}  // namespace

Connection::Connection(Hub& hub, SessionIo& io, protocol::Vsn vsn, auth::VerifiedJwt apikey)
    : hub_(hub),
      io_(io),
      vsn_(vsn),
      apikey_(std::make_shared<const auth::VerifiedJwt>(std::move(apikey))) {
  ++hub_.metrics().connections;
  ++hub_.metrics().connections_total;
  last_rx_ = hub_.scheduler().now();
  window_start_ = last_rx_;
  idle_ = hub_.scheduler().schedule(hub_.limits().idle_timeout, timers::IdleTimeout,
                                    [this] { on_idle(); });
}

Connection::~Connection() {
  *alive_ = false;
  for (auto& [topic, p] : pending_) {
    hub_.unhold(p->channel->member_key, &p->held);
    if (p->resuming) {
      hub_.end_resume(*p->channel);
      hub_.unsubscribe_changes(*p->channel);
    }
  }
  for (auto& [topic, ch] : channels_) {
    hub_.unsubscribe_changes(*ch);
    hub_.remove_member(*ch);
    --hub_.metrics().channels;
  }
  --hub_.metrics().connections;
}

const Channel* Connection::channel(std::string_view topic) const {
  auto it = channels_.find(topic);
  return it == channels_.end() ? nullptr : it->second.get();
}

bool Connection::send(const OutFrame& f) {
  return io_.send(f);
}

void Connection::when_drained(std::size_t frames, std::size_t bytes,
                              std::function<void()> drained) {
  if (drain_waiters_.empty()) {
    drain_frames_ = frames;
    drain_bytes_ = bytes;
  } else {
    drain_frames_ = std::max(drain_frames_, frames);
    drain_bytes_ = std::max(drain_bytes_, bytes);
  }
  drain_waiters_.push_back(std::move(drained));
  io_.when_drained(drain_frames_, drain_bytes_, [this, alive = alive_] {
    if (*alive) on_drained();
  });
}

void Connection::on_drained() {
  auto waiters = std::move(drain_waiters_);
  drain_waiters_.clear();
  for (auto& w : waiters)
    w();
}

void Connection::close_slow_consumer(std::string_view reason) {
  if (closing_) return;
  hub_.metrics().drop(drop::kSlowConsumer);
  log::get(loggers::kServer)->warn("closing {}", reason);
  closing_ = true;
  io_.close(protocol::close_code::kPolicyViolation, reason);
}

void Connection::close_with(std::uint16_t code, std::string_view reason) {
  if (closing_) return;
  log::get(loggers::kServer)->warn("closing a socket ({}): {}", code, reason);
  closing_ = true;
  io_.close(code, reason);
}

void Connection::push(Message m) {
  // The server never sends join_ref to v1 sockets.
  if (vsn_ == protocol::Vsn::v1) m.join_ref.reset();
  io_.send(text_frame(protocol::encode_text(vsn_, m)));
}

void Connection::touch() {
  last_rx_ = hub_.scheduler().now();
}

void Connection::on_idle() {
  auto idle_for = hub_.scheduler().now() - last_rx_;
  auto limit = std::chrono::duration_cast<core::Duration>(hub_.limits().idle_timeout);
  if (idle_for >= limit) {
    log::get(loggers::kServer)->info("closing idle socket");
    closing_ = true;
    io_.close(protocol::close_code::kNormal, "idle timeout");
    return;
  }
  // Rearmed lazily: one timer per socket, moved only when it fires, not on every frame.
  idle_ = hub_.scheduler().schedule(limit - idle_for, timers::IdleTimeout, [this] { on_idle(); });
}

void Connection::roll_rate_window() {
  auto now = hub_.scheduler().now();
  if (now - window_start_ >= std::chrono::seconds(1)) {
    window_start_ = now;
    window_count_ = 0;
    heartbeat_count_ = 0;
    rate_tripped_ = false;
  }
}

bool Connection::admit_heartbeat() {
  roll_rate_window();
  // Heartbeats keep a socket alive even while its messages are being refused, but a flood of
  // them gets no more answers per second than messages would.
  if (++heartbeat_count_ <= hub_.limits().max_messages_per_second) return true;
  hub_.metrics().drop(drop::kRateLimited);
  return false;
}

bool Connection::admit_message() {
  roll_rate_window();
  if (++window_count_ <= hub_.limits().max_messages_per_second) return true;
  hub_.metrics().drop(drop::kRateLimited);
  if (!rate_tripped_) {
    rate_tripped_ = true;
    log::get(loggers::kServer)
        ->warn("socket above {} messages/s: ending its channels",
               hub_.limits().max_messages_per_second);
    std::vector<std::string> topics;
    for (auto& [topic, ch] : channels_)
      topics.push_back(topic);
    for (const auto& topic : topics) {
      system(*channels_.at(topic), "system", "error", "Too many messages per second");
      close_channel(topic);
    }
  }
  return false;
}

void Connection::on_text(std::string_view text) {
  if (closing_) return;
  touch();
  ++hub_.metrics().frames_in;
  auto decoded = protocol::decode_text(vsn_, text);
  if (!decoded.ok()) {
    // Supabase Realtime logs MalformedWebSocketMessage and keeps the socket open. A malformed frame
    // still counts against the socket's rate: a flood of them is refused (and not logged).
    if (!admit_message()) return;
    hub_.metrics().drop(drop::kMalformed);
    log::get(loggers::kServer)->info("MalformedWebSocketMessage: {}", decoded.error().describe());
    return;
  }
  handle(std::move(decoded.value()));
}

void Connection::on_binary(std::string_view bytes) {
  if (closing_) return;
  touch();
  ++hub_.metrics().frames_in;
  auto decoded = protocol::decode_user_broadcast(bytes);
  if (!decoded.ok() || bytes.empty() ||
      static_cast<std::uint8_t>(bytes[0]) !=
          static_cast<std::uint8_t>(protocol::BinaryKind::user_broadcast_push) ||
      vsn_ != protocol::Vsn::v2) {
    if (!admit_message()) return;
    hub_.metrics().drop(drop::kMalformed);
    log::get(loggers::kServer)
        ->info("MalformedWebSocketMessage: binary frame {}",
               decoded.ok() ? "of an unexpected kind" : decoded.error().describe());
    return;
  }
  if (!admit_message()) return;
  if (waiting_) return hold(Held{std::nullopt, std::move(decoded.value()), bytes.size()});
  handle_binary_broadcast(std::move(decoded.value()));
}

void Connection::handle(Message m) {
  if (m.topic == protocol::kPhoenixTopic) {
    // Heartbeats are answered by the socket layer, on a budget of their own (admit_heartbeat).
    if (m.event == ev::kHeartbeat) {
      if (admit_heartbeat()) reply_ok(m, heartbeat_response());
    } else {
      admit_message();
    }
    return;
  }
  if (!admit_message()) return;
  if (waiting_) {
    // Estimated from the payload: what the message holds while it waits.
    const std::size_t bytes = m.topic.size() + m.event.size() + json::serialize(m.payload).size();
    return hold(Held{std::move(m), std::nullopt, bytes});
  }
  dispatch(std::move(m));
}

void Connection::hold(Held h) {
  held_bytes_ += h.bytes;
  held_.push_back(std::move(h));
  if (held_.size() <= hub_.limits().max_queued_frames &&
      held_bytes_ <= hub_.limits().max_queued_bytes) {
    return;
  }
  hub_.metrics().drop(drop::kAuthorizationBacklog, held_.size());
  log::get(loggers::kServer)
      ->warn("{} messages ({} bytes) waiting for a policy answer: closing the socket", held_.size(),
             held_bytes_);
  held_.clear();
  held_bytes_ = 0;
  closing_ = true;
  io_.close(protocol::close_code::kPolicyViolation, "too many messages waiting for authorization");
}

void Connection::resume() {
  while (!waiting_ && !closing_ && !held_.empty()) {
    Held h = std::move(held_.front());
    held_.pop_front();
    held_bytes_ -= h.bytes;
    if (h.text) {
      dispatch(std::move(*h.text));
    } else if (h.binary) {
      handle_binary_broadcast(std::move(*h.binary));
    }
  }
  if (closing_) {
    held_.clear();
    held_bytes_ = 0;
  }
}

void Connection::authorize(ChannelCheck check, std::function<void(ChannelAuthResult)> then) {
  auto& metrics = hub_.metrics();
  if (check.broadcast_read || check.presence_read) ++metrics.channel_auth_read_checks;
  if (check.write) ++metrics.channel_auth_write_checks;
  waiting_ = true;
  auto answered = [this, alive = alive_, then = std::move(then)](ChannelAuthResult r) {
    if (!*alive) return;
    waiting_ = false;
    if (!closing_) then(std::move(r));
    resume();
  };
  if (auto* authorizer = hub_.channel_authorizer()) {
    authorizer->check(std::move(check), std::move(answered));
    return;
  }
  // Without PostgreSQL nothing can be authorized; answered on a later turn like any check.
  hub_.scheduler().post([answered = std::move(answered)]() mutable {
    answered(ChannelAuthError{ChannelAuthFailure::unavailable, "no channel authorizer"});
  });
}

Channel* Connection::find_channel(const std::string& topic, std::uint64_t id) {
  auto it = channels_.find(topic);
  return it == channels_.end() || it->second->id != id ? nullptr : it->second.get();
}

void Connection::check_channel(Channel& ch, ChannelCheck check, AfterCheck then) {
  authorize(std::move(check),
            [this, topic = ch.topic, id = ch.id, then = std::move(then)](ChannelAuthResult r) {
              Channel* c = find_channel(topic, id);
              if (c && r) c->rights.merge(r.value());
              then(c, r);
            });
}

void Connection::dispatch(Message m) {
  if (m.event == ev::kJoin) return handle_join(m);
  if (m.event == ev::kLeave) return handle_leave(m);
  auto it = channels_.find(m.topic);
  if (it == channels_.end()) {
    // Phoenix answers pushes to topics this socket has not joined.
    reply(m, json::object{{"status", "error"},
                          {"response", json::object{{"reason", "unmatched topic"}}}});
    return;
  }
  Channel& ch = *it->second;
  if (m.event == ev::kBroadcast) return handle_broadcast(ch, m);
  if (m.event == ev::kAccessToken) return handle_access_token(ch, m);
  if (m.event == ev::kPresence) return handle_presence(ch, m);
  // Unknown events are ignored without a reply, as Supabase Realtime does.
}

void Connection::reply(const Message& to, json::value payload) {
  push(Message{to.join_ref, to.ref, to.topic, std::string(ev::kReply), std::move(payload)});
}

void Connection::reply_ok(const Message& to, json::value response) {
  reply(to, json::object{{"status", "ok"}, {"response", std::move(response)}});
}

void Connection::reply_error(const Message& to, std::string reason) {
  reply(to, json::object{{"status", "error"},
                         {"response", json::object{{"reason", std::move(reason)}}}});
}

void Connection::system(Channel& ch, std::string_view extension, std::string_view status,
                        std::string_view message) {
  push(Message{ch.join_ref, std::nullopt, ch.topic, std::string(ev::kSystem),
               Hub::system_payload(extension, status, message, ch.sub_topic)});
}

void Connection::refuse_join(const Message& m, std::string reason) {
  ++hub_.metrics().join_errors;
  log::get(loggers::kServer)->info("join {} refused: {}", m.topic, reason);
  reply_error(m, std::move(reason));
}

void Connection::handle_join(Message& m) {
  if (!starts_with(m.topic, protocol::kTopicPrefix)) {
    ++hub_.metrics().join_errors;
    reply(m, json::object{{"status", "error"},
                          {"response", json::object{{"reason", "unmatched topic"}}}});
    return;
  }
  std::string sub_topic = m.topic.substr(protocol::kTopicPrefix.size());
  if (sub_topic.empty()) {
    return refuse_join(m, "TopicNameRequired: You must provide a topic name");
  }

  // Joining a topic already joined on this socket ends the earlier channel first (and a join of
  // it still waiting for its replay).
  if (channels_.count(m.topic)) close_channel(m.topic);
  cancel_pending(m.topic);

  auto parsed = protocol::parse_join_payload(m.payload);
  if (!parsed.ok()) return refuse_join(m, "InvalidJoinPayload: " + parsed.error().message);
  const auto& config = parsed.value().config;
  // Supabase checks the project's private_only flag before the limits and the token.
  if (hub_.limits().private_only && !config.is_private) {
    hub_.metrics().refuse_channel(auth_refusal::kPrivateOnly);
    return refuse_join(m, std::string(kPrivateOnly));
  }
  if (channels_.size() + pending_.size() >= hub_.limits().max_channels_per_connection) {
    return refuse_join(m, "ChannelRateLimitReached: Too many channels");
  }

  std::shared_ptr<const auth::VerifiedJwt> token = apikey_;
  const auto& at = parsed.value().access_token;
  if (at && !starts_with(*at, "sb_")) {
    auto v = hub_.verifier().verify(*at, hub_.scheduler().wall_now());
    if (!v.ok()) return refuse_join(m, v.error().join_reason());
    token = std::make_shared<const auth::VerifiedJwt>(std::move(v.value()));
  } else if (auto err = hub_.verifier().check_time(*apikey_, hub_.scheduler().wall_now())) {
    return refuse_join(m, err->join_reason());
  }
  // Replay (docs/database-broadcast.md): refused on a public channel here; its parameters are
  // checked after a private channel's authorization (finish_join), as Supabase Realtime does.
  if ((config.replay || config.replay_invalid) && !config.is_private) {
    return refuse_join(m, "UnableToReplayMessages: Replay is not allowed for public channels");
  }

  JoinPlan plan{std::move(sub_topic), std::move(parsed).value(), std::move(token)};
  if (!plan.request.config.is_private) return finish_join(m, std::move(plan), {});

  // A private channel: the token must be allowed to read the topic's broadcasts or presence (its
  // presence only matters when presence is enabled), as the policies on realtime.messages say.
  // The reply waits for the answer; so does every later message of this socket.
  ChannelCheck check{AuthClass{plan.token->role, plan.token->claims_json}, plan.sub_topic, true,
                     plan.request.config.presence_enabled, false};
  authorize(std::move(check), [this, m = std::move(m),
                               plan = std::move(plan)](ChannelAuthResult r) mutable {
    const std::string& topic = plan.sub_topic;
    if (!r) {
      const auto& e = r.error();
      switch (e.failure) {
        case ChannelAuthFailure::policy_error:
          // Supabase answers a policy that raises as if it said no (and logs RlsPolicyError).
          log::get(loggers::kServer)->warn("RlsPolicyError on {}: {}", m.topic, e.message);
          hub_.metrics().refuse_channel(auth_refusal::kRead);
          return refuse_join(m, "Unauthorized: " + std::string(kNoRead) + topic);
        case ChannelAuthFailure::query_canceled:
          hub_.metrics().refuse_channel(auth_refusal::kDatabase);
          return refuse_join(m, "QueryCanceled: " + e.message);
        case ChannelAuthFailure::unavailable:
          hub_.metrics().refuse_channel(auth_refusal::kDatabase);
          log::get(loggers::kServer)
              ->warn("UnableToConnectToProject: private join of {}: {}", m.topic, e.message);
          return refuse_join(m, "UnableToConnectToProject: " + std::string(kDbDown));
      }
    }
    if (!r.value().may_join()) {
      hub_.metrics().refuse_channel(auth_refusal::kRead);
      return refuse_join(m, "Unauthorized: " + std::string(kNoRead) + topic);
    }
    finish_join(m, std::move(plan), r.value());
  });
}

void Connection::finish_join(Message& m, JoinPlan plan, ChannelRights rights) {
  const auto& config = plan.request.config;
  // A replay sends stored broadcasts: a private channel joined on presence read alone may not
  // have them (Supabase's can_replay?, checked before the replay's parameters).
  if ((config.replay || config.replay_invalid) && config.is_private &&
      !rights.broadcast_read.value_or(false)) {
    hub_.metrics().refuse_channel(auth_refusal::kRead);
    return refuse_join(m, "Unauthorized: " + std::string(kNoRead) + plan.sub_topic);
  }
  if (config.replay_invalid) {
    return refuse_join(m, "UnableToReplayMessages: Replay params are not valid");
  }
  if (config.replay && !hub_.message_store()) return refuse_join(m, std::string(kUnableToReplay));
  auto ch = std::make_unique<Channel>();
  ch->id = hub_.next_channel_id();
  ch->connection = this;
  ch->topic = m.topic;
  ch->sub_topic = std::move(plan.sub_topic);
  ch->is_private = config.is_private;
  ch->member_key = config.is_private ? "private|" + m.topic : m.topic;
  ch->join_ref = m.join_ref.value_or(m.ref.value_or(""));
  ch->ack = config.broadcast_ack;
  ch->self = config.broadcast_self;
  ch->token = std::move(plan.token);
  ch->rights = rights;
  ch->presence_enabled = config.presence_enabled;
  ch->presence_key =
      config.presence_key.empty() ? hub_.presence().fresh_key() : config.presence_key;

  // Echo the requested bindings as sent (unknown keys such as `select` pass through) with ids;
  // problems with a binding are postgres_changes system errors, not join errors.
  json::array echo;
  std::vector<std::string> pg_errors;
  const json::array* raw = nullptr;
  if (const auto* cfg = core::find_object(m.payload, "config")) {
    if (const auto* pc = cfg->if_contains("postgres_changes")) raw = pc->if_array();
  }
  if (raw) {
    for (const auto& item : *raw) {
      const auto* obj = item.if_object();
      if (!obj) continue;
      auto event = string_field(*obj, "event").value_or("*");
      auto schema = string_field(*obj, "schema");
      auto table = string_field(*obj, "table");
      auto filter = string_field(*obj, "filter");
      BindingSpec b;
      b.id =
          Router::binding_id(event, schema.value_or(""), table.value_or(""), filter.value_or(""));
      json::object e = *obj;
      e["id"] = b.id;
      echo.push_back(std::move(e));
      if (!schema && !table) {
        pg_errors.push_back(
            "No subscription params provided. Please provide at least a `schema` or `table` to "
            "subscribe to: " +
            json::serialize(*obj));
        continue;
      }
      b.events = parse_event_mask(event);
      b.schema = schema.value_or("public");
      b.table = table.value_or("*");
      if (filter && !core::trim_blanks(*filter).empty()) {
        auto f = protocol::parse_filter(core::trim_blanks(*filter));
        if (!f.ok()) {
          pg_errors.push_back("Error parsing `filter` params: " + f.error().message);
          continue;
        }
        b.filter = std::move(f.value());
      }
      ch->bindings.push_back(std::move(b));
    }
  }

  // rtsync's own join config (docs/resume.md; Supabase Realtime ignores it).
  std::optional<EpochPosition> resume_from;
  bool resume_asked = false;
  if (const auto* cfg = core::find_object(m.payload, "config")) {
    if (const auto* rt = cfg->if_contains("rtsync"); rt && rt->is_object()) {
      if (const auto* r = rt->get_object().if_contains("resume"); r && !r->is_null()) {
        resume_asked = true;
        resume_from = parse_position(*r);
      }
    }
  }
  if (config.replay) {
    start_replay(m, std::move(ch), std::move(echo), std::move(pg_errors), *config.replay);
    if (resume_asked && !hub_.epoch().empty()) {
      if (auto it = pending_.find(m.topic); it != pending_.end()) {
        ++hub_.metrics().resumes[std::string(resume_outcome::kGapUnavailable)];
        it->second->resume_answer =
            json::object{{"status", "gap"},
                         {"reason", "resume is not available on a join with broadcast replay"},
                         {"replayed", 0}};
      }
    }
    return;
  }
  if (resume_asked) {
    if (!resume_from) {
      // A malformed position is a gap, not a refusal: the client refetches and carries on.
      resume_from = EpochPosition{"", {}};
    }
    return start_resume(m, std::move(ch), std::move(echo), std::move(pg_errors), *resume_from);
  }
  complete_join(m, std::move(ch), std::move(echo), pg_errors);
}

json::object Connection::heartbeat_response() const {
  if (hub_.epoch().empty()) return json::object();
  // Up to here every change was handed to this socket — except to a channel still writing its
  // resume: its client must not move past a change the channel has yet to send it.
  StreamPosition p = hub_.delivered();
  for (const auto& [topic, ch] : channels_) {
    if (auto handed = hub_.resume_handed(*ch)) p = std::min(p, *handed);
  }
  return json::object{{"rtsync", json::object{{"epoch", hub_.epoch()},
                                              {"position", position_json(hub_.epoch(), p)}}}};
}

void Connection::start_resume(const Message& m, std::unique_ptr<Channel> ch, json::array echo,
                              std::vector<std::string> pg_errors, const EpochPosition& from) {
  auto& metrics = hub_.metrics();
  auto logger = log::get(loggers::kServer);
  if (hub_.epoch().empty()) {
    // No change stream (no PostgreSQL): the reply carries no rtsync field, which the contract
    // makes a gap.
    ++metrics.resumes[std::string(resume_outcome::kGapUnavailable)];
    logger->info("resume of {}: gap (no change stream)", m.topic);
    complete_join(m, std::move(ch), std::move(echo), pg_errors);
    return;
  }
  hub_.history().trim(hub_.scheduler().now());
  auto gap = [&](std::string_view outcome, std::string_view reason) {
    ++metrics.resumes[std::string(outcome)];
    logger->info("resume of {} from {} {}/{}: gap ({})", m.topic, from.epoch,
                 format_lsn(from.position.lsn), from.position.index, reason);
    complete_join(m, std::move(ch), std::move(echo), pg_errors,
                  json::object{{"status", "gap"}, {"reason", reason}, {"replayed", 0}});
  };
  if (from.epoch.empty()) return gap(resume_outcome::kGapEpoch, "malformed position");
  if (from.epoch != hub_.epoch()) {
    return gap(resume_outcome::kGapEpoch, "position of another epoch");
  }
  if (!hub_.history().covers(from.position)) {
    return gap(resume_outcome::kGapHistory, "position older than the server's history");
  }
  auto p = std::make_unique<PendingJoin>();
  p->request = Message{m.join_ref, m.ref, m.topic, std::string(ev::kJoin), json::object()};
  p->echo = std::move(echo);
  p->pg_errors = std::move(pg_errors);
  p->resuming = true;
  p->resume_from = from.position;
  Channel& c = *ch;
  p->channel = std::move(ch);
  pending_.emplace(m.topic, std::move(p));
  hub_.begin_resume(c, from.position,
                    [this, alive = alive_, topic = m.topic, id = c.id](ResumeOutcome o) {
                      if (*alive) finish_resume(topic, id, std::move(o));
                    });
}

void Connection::finish_resume(const std::string& topic, std::uint64_t channel_id,
                               ResumeOutcome o) {
  auto it = pending_.find(topic);
  if (it == pending_.end() || it->second->channel->id != channel_id) return;
  auto p = std::move(it->second);
  pending_.erase(it);
  auto& metrics = hub_.metrics();
  json::object answer;
  const std::string_view outcome = o.outcome;
  if (o.resumed) {
    answer = json::object{{"status", "resumed"}, {"replayed", o.replayed}};
  } else {
    answer = json::object{{"status", "gap"}, {"reason", o.reason}, {"replayed", 0}};
  }
  ++metrics.resumes[std::string(outcome)];
  metrics.resume_replayed_changes += o.replayed;
  log::get(loggers::kServer)
      ->info("resume of {} from {}/{}: {}{} ({} replayed, head {}/{})", topic,
             format_lsn(p->resume_from.lsn), p->resume_from.index, outcome,
             o.resumed ? "" : ": " + o.reason, o.replayed, format_lsn(o.head.lsn), o.head.index);
  Channel& c = complete_join(p->request, std::move(p->channel), std::move(p->echo), p->pg_errors,
                             std::move(answer), o.head, true);
  // The replayed changes, then the held ones, paced by this socket's queue; then live.
  hub_.resume_joined(c);
}

Channel& Connection::complete_join(const Message& m, std::unique_ptr<Channel> ch, json::array echo,
                                   const std::vector<std::string>& pg_errors,
                                   std::optional<json::object> resume,
                                   std::optional<StreamPosition> head, bool subscribed) {
  Channel& c = *ch;
  channels_.emplace(m.topic, std::move(ch));
  hub_.add_member(c);
  ++hub_.metrics().channels;
  ++hub_.metrics().joins;
  // Registered before the reply: any transaction the stream hands over from now on is routed to
  // this channel, so a row committed after "Subscribed to PostgreSQL" is never missed. (A
  // resumed channel was registered when its resume began; the stream may have come or gone
  // since, unseen by a channel that was not a member yet.)
  PgState pg;
  if (subscribed) {
    if (c.pg != PgState::none)
      c.pg = hub_.stream_running() ? PgState::subscribed : PgState::waiting;
    pg = c.pg;
  } else {
    pg = hub_.subscribe_changes(c);
  }
  json::object response{{"postgres_changes", std::move(echo)}};
  if (!hub_.epoch().empty()) {
    // The head: every change after it that this channel may see reaches it (docs/resume.md).
    json::object rt{{"epoch", hub_.epoch()},
                    {"position", position_json(hub_.epoch(), head.value_or(hub_.head()))}};
    if (resume) rt["resume"] = std::move(*resume);
    response["rtsync"] = std::move(rt);
  }
  reply_ok(m, std::move(response));
  // A private channel gets the topic's presence only if its token may read it.
  if (c.presence_enabled && (!c.is_private || c.rights.presence_read.value_or(false))) {
    hub_.presence().joined(c);
  }
  for (const auto& e : pg_errors)
    system(c, "postgres_changes", "error", e);
  if (pg == PgState::subscribed) system(c, "postgres_changes", "ok", kSubscribed);
  if (pg == PgState::waiting) system(c, "postgres_changes", "error", kDbDown);
  schedule_expiry(c);
  return c;
}

void Connection::start_replay(const Message& m, std::unique_ptr<Channel> ch, json::array echo,
                              std::vector<std::string> pg_errors,
                              const protocol::ReplayConfig& replay) {
  // The topic's live broadcasts are held from now on: whatever commits while the query runs is
  // either in its answer or held (or both: sent once), never lost.
  auto p = std::make_unique<PendingJoin>();
  p->request = Message{m.join_ref, m.ref, m.topic, std::string(ev::kJoin), json::object()};
  p->held.limit = hub_.limits().max_queued_frames;
  p->echo = std::move(echo);
  p->pg_errors = std::move(pg_errors);
  const std::uint64_t id = ch->id;
  std::string sub_topic = ch->sub_topic;
  p->channel = std::move(ch);
  hub_.hold(p->channel->member_key, &p->held);
  pending_.emplace(m.topic, std::move(p));
  // The store may answer at once (tests): the pending join is registered before the call.
  hub_.message_store()->replay(
      std::move(sub_topic), replay.since, protocol::effective_replay_limit(replay),
      hub_.recent_message_xids(),
      [this, alive = alive_, topic = m.topic, id](Result<std::vector<StoredMessage>> r) {
        if (*alive) finish_replay(topic, id, std::move(r));
      });
}

void Connection::finish_replay(const std::string& topic, std::uint64_t channel_id,
                               Result<std::vector<StoredMessage>> stored) {
  auto it = pending_.find(topic);
  // Left, or joined again, while the query ran: this answer is nobody's.
  if (it == pending_.end() || it->second->channel->id != channel_id) return;
  auto p = std::move(it->second);
  pending_.erase(it);
  hub_.unhold(p->channel->member_key, &p->held);
  if (!stored.ok() || p->held.overflowed) {
    ++hub_.metrics().replay_errors;
    log::get(loggers::kServer)
        ->warn("replay for {} failed: {}", topic,
               stored.ok() ? "more live broadcasts arrived than a join may hold"
                           : stored.error().describe());
    return refuse_join(p->request, std::string(kUnableToReplay));
  }
  Channel& c = complete_join(p->request, std::move(p->channel), std::move(p->echo), p->pg_errors,
                             std::move(p->resume_answer));
  ++hub_.metrics().replays;
  for (const auto& msg : stored.value()) {
    auto payload = core::parse_json(msg.payload);
    if (!payload.ok()) continue;  // jsonb text always parses; a broken store row is skipped
    c.replayed_ids.push_back(msg.id);
    json::object body{{"type", "broadcast"},
                      {"event", msg.event},
                      {"payload", std::move(payload.value())},
                      {"meta", json::object{{"replayed", true}, {"id", msg.id}}}};
    // A channel push (as Phoenix's push/3), so vsn 2 frames carry the join_ref.
    push(Message{c.join_ref, std::nullopt, c.topic, std::string(ev::kBroadcast), std::move(body)});
    ++hub_.metrics().replayed_messages;
  }
  // Held broadcasts are in commit order. One the replay also found committed before the query's
  // snapshot, and so did every held one before it: those were replayed or left out by the
  // query's since/limit, so only what follows the last replayed one is new to this channel.
  std::size_t first_new = 0;
  for (std::size_t i = p->held.messages.size(); i > 0; --i) {
    const auto& id = p->held.messages[i - 1].id;
    if (!id.empty() && c.replayed(id)) {
      first_new = i;
      break;
    }
  }
  if (first_new > 0) hub_.metrics().drop(drop::kReplayDuplicate, first_new);
  for (std::size_t i = first_new; i < p->held.messages.size(); ++i)
    hub_.broadcast_to(c, p->held.messages[i]);
}

void Connection::cancel_pending(std::string_view topic) {
  auto it = pending_.find(topic);
  if (it == pending_.end()) return;
  hub_.unhold(it->second->channel->member_key, &it->second->held);
  if (it->second->resuming) {
    hub_.end_resume(*it->second->channel);
    hub_.unsubscribe_changes(*it->second->channel);
  }
  pending_.erase(it);
}

void Connection::handle_leave(Message& m) {
  reply_ok(m);
  cancel_pending(m.topic);
  if (channels_.count(m.topic)) close_channel(m.topic);
}

void Connection::close_channel(const std::string& topic) {
  auto it = channels_.find(topic);
  if (it == channels_.end()) return;
  Channel& ch = *it->second;
  push(Message{ch.join_ref, ch.join_ref, ch.topic, std::string(ev::kClose), json::object()});
  drop_channel(ch);
}

void Connection::drop_channel(Channel& ch) {
  hub_.unsubscribe_changes(ch);
  hub_.remove_member(ch);
  --hub_.metrics().channels;
  channels_.erase(ch.topic);  // destroys ch (and cancels its expiry timer)
}

void Connection::refuse_write(Channel& ch, const ChannelAuthError& error, bool presence) {
  // Supabase logs a failed write check and handles the push as not allowed; nothing is cached,
  // so the next push asks again.
  log::get(loggers::kServer)
      ->warn("{} on {}: {}",
             error.failure == ChannelAuthFailure::policy_error ? "RlsPolicyError"
                                                               : "UnableToConnectToProject",
             ch.topic, error.message);
  hub_.metrics().refuse_channel(error.failure != ChannelAuthFailure::policy_error
                                    ? auth_refusal::kDatabase
                                : presence ? auth_refusal::kPresenceWrite
                                           : auth_refusal::kBroadcastWrite);
}

void Connection::handle_broadcast(Channel& ch, Message& m, bool checked) {
  if (!m.payload.is_object()) {
    hub_.metrics().drop(drop::kMalformed);
    return;
  }
  if (ch.is_private) {
    if (!ch.rights.broadcast_write) {
      // The channel's first broadcast: ask for its write rights, then handle it again.
      return check_channel(
          ch, write_check(ch, false),
          [this, m = std::move(m)](Channel* c, const ChannelAuthResult& r) mutable {
            if (!c) return;
            if (!r) return refuse_write(*c, r.error(), false);
            if (!c->rights.broadcast_write) c->rights.broadcast_write = false;
            handle_broadcast(*c, m, true);
          });
    }
    if (!checked) ++hub_.metrics().channel_auth_cache_hits;
    if (!*ch.rights.broadcast_write) {
      // Dropped without a word, even with ack, as Supabase does (the sender's push times out).
      hub_.metrics().refuse_channel(auth_refusal::kBroadcastWrite);
      log::get(loggers::kServer)->debug("broadcast on {} dropped: no write permission", ch.topic);
      return;
    }
  }
  auto size = json::serialize(m.payload).size();
  if (size > hub_.limits().max_broadcast_payload_bytes) {
    hub_.metrics().drop(drop::kPayloadTooLarge);
    if (ch.ack) {
      reply(m, json::object{{"status", "error"}, {"response", "payload_size_exceeded"}});
    }
    return;
  }
  BroadcastMessage msg;
  msg.topic = ch.topic;
  msg.is_private = ch.is_private;
  msg.json_payload = std::move(m.payload);
  hub_.broadcast(msg, &ch);
  if (ch.ack) reply_ok(m);
}

void Connection::handle_binary_broadcast(protocol::UserBroadcast b, bool checked) {
  auto it = channels_.find(b.topic);
  if (it == channels_.end()) {
    Message m{b.join_ref, b.ref, b.topic, std::string(ev::kBroadcast), json::object()};
    reply(m, json::object{{"status", "error"},
                          {"response", json::object{{"reason", "unmatched topic"}}}});
    return;
  }
  Channel& ch = *it->second;
  if (ch.is_private) {
    if (!ch.rights.broadcast_write) {
      return check_channel(
          ch, write_check(ch, false),
          [this, b = std::move(b)](Channel* c, const ChannelAuthResult& r) mutable {
            if (!c) return;
            if (!r) return refuse_write(*c, r.error(), false);
            if (!c->rights.broadcast_write) c->rights.broadcast_write = false;
            handle_binary_broadcast(std::move(b), true);
          });
    }
    if (!checked) ++hub_.metrics().channel_auth_cache_hits;
    if (!*ch.rights.broadcast_write) {
      hub_.metrics().refuse_channel(auth_refusal::kBroadcastWrite);
      log::get(loggers::kServer)->debug("broadcast on {} dropped: no write permission", ch.topic);
      return;
    }
  }
  Message ack_to{b.join_ref, b.ref, b.topic, std::string(ev::kBroadcast), json::object()};
  if (b.payload.size() > hub_.limits().max_broadcast_payload_bytes) {
    hub_.metrics().drop(drop::kPayloadTooLarge);
    if (ch.ack) {
      reply(ack_to, json::object{{"status", "error"}, {"response", "payload_size_exceeded"}});
    }
    return;
  }
  BroadcastMessage msg;
  msg.topic = ch.topic;
  msg.is_private = ch.is_private;
  msg.binary = std::move(b);
  hub_.broadcast(msg, &ch);
  if (ch.ack) reply_ok(ack_to);
}

bool Connection::admit_presence(Channel& ch) {
  // The window opens with the first push and lasts one second (a timer tests can fire).
  if (!presence_window_.pending()) {
    presence_events_ = 0;
    presence_window_ = hub_.scheduler().schedule(std::chrono::seconds(1), timers::RateWindow,
                                                 [this] { presence_events_ = 0; });
  }
  if (++presence_events_ <= hub_.limits().max_presence_events_per_second) return true;
  hub_.metrics().drop(drop::kPresenceRateLimited);
  log::get(loggers::kServer)
      ->info("presence pushes above {}/s: ending {}", hub_.limits().max_presence_events_per_second,
             ch.topic);
  system(ch, "system", "error", "Too many presence messages per second");
  close_channel(ch.topic);
  return false;
}

void Connection::handle_presence(Channel& ch, Message& m) {
  // Replies as Supabase Realtime gives them: ok for a push without an event (nothing happens), the
  // reason "Presence track payload must be a map" for a track whose payload is not an object,
  // and an error without reason for anything else it cannot do.
  const auto* obj = m.payload.if_object();
  const auto* event = obj ? obj->if_contains("event") : nullptr;
  if (!event) return reply_ok(m);
  auto error_reply = [&] {
    reply(m, json::object{{"status", "error"}, {"response", json::object()}});
  };
  if (!event->is_string()) {
    hub_.metrics().drop(drop::kPresenceMalformed);
    return error_reply();
  }
  if (!admit_presence(ch)) return;
  std::string name(event->get_string());
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (name == "untrack") {
    hub_.presence().untrack(ch);
    return reply_ok(m);
  }
  if (name != "track") {
    hub_.metrics().drop(drop::kPresenceMalformed);
    log::get(loggers::kServer)->info("UnknownPresenceEvent: {}", name);
    return error_reply();
  }
  track_presence(ch, m, false);
}

void Connection::track_presence(Channel& ch, Message& m, bool checked) {
  auto error_reply = [&] {
    reply(m, json::object{{"status", "error"}, {"response", json::object()}});
  };
  if (ch.is_private) {
    if (!ch.rights.presence_write || !ch.rights.presence_read) {
      // The channel's first track: ask for its write rights (and presence read, unless the join
      // asked already: presence was off then), then handle it again.
      return check_channel(
          ch, write_check(ch, !ch.rights.presence_read),
          [this, m = std::move(m)](Channel* c, const ChannelAuthResult& r) mutable {
            if (!c) return;
            if (!r) {
              refuse_write(*c, r.error(), true);
              return reply(m, json::object{{"status", "error"}, {"response", json::object()}});
            }
            if (!c->rights.presence_write) c->rights.presence_write = false;
            if (!c->rights.presence_read) c->rights.presence_read = false;
            track_presence(*c, m, true);
          });
    }
    if (!checked) ++hub_.metrics().channel_auth_cache_hits;
    if (!*ch.rights.presence_write) {
      // Supabase's reply to a track it may not do: an error without reason; the channel stays.
      hub_.metrics().refuse_channel(auth_refusal::kPresenceWrite);
      log::get(loggers::kServer)->info("UnableToHandlePresence on {}: unauthorized", ch.topic);
      return error_reply();
    }
  }
  const auto* obj = m.payload.if_object();
  json::object payload;
  if (const auto* p = obj->if_contains("payload")) {
    if (!p->is_object()) {
      hub_.metrics().drop(drop::kPresenceMalformed);
      return reply_error(m, "Presence track payload must be a map");
    }
    payload = p->get_object();
  }
  if (json::serialize(payload).size() > hub_.limits().max_presence_meta_bytes) {
    hub_.metrics().drop(drop::kPresenceTooLarge);
    log::get(loggers::kServer)
        ->info("presence payload above {} bytes: ending {}", hub_.limits().max_presence_meta_bytes,
               ch.topic);
    system(ch, "system", "error", "Track message size exceeded");
    close_channel(ch.topic);
    return;
  }
  if (hub_.presence().track(ch, std::move(payload)) == PresenceTracker::TrackResult::full) {
    hub_.metrics().drop(drop::kPresenceChannelFull);
    log::get(loggers::kServer)->info("presence of {} full: track refused", ch.topic);
    return error_reply();
  }
  // Tracking enables presence for the tracker too, as in Supabase Realtime (no presence_state is
  // sent for it: a client that wants the state enables presence when it joins).
  ch.presence_enabled = true;
  reply_ok(m);
}

void Connection::handle_access_token(Channel& ch, Message& m) {
  const auto* v = core::find(m.payload, "access_token");
  if (!v || !v->is_string()) return;  // null / absent: ignored
  std::string_view token = v->get_string();
  if (starts_with(token, "sb_") || token == ch.token->token) return;
  auto verified = hub_.verifier().verify(token, hub_.scheduler().wall_now());
  if (!verified.ok()) {
    log::get(loggers::kServer)
        ->info("access_token refused on {}: {}", ch.topic, verified.error().message);
    system(ch, "system", "error", verified.error().message);
    close_channel(ch.topic);
    return;
  }
  auto next = std::make_shared<const auth::VerifiedJwt>(std::move(verified.value()));
  if (!ch.is_private) {
    ch.token = std::move(next);
    hub_.update_auth(ch);
    schedule_expiry(ch);
    return;
  }
  // A private channel: the cached rights were the old token's. Ask for the new token's reads (as
  // the join did); its writes are asked again at the next broadcast or track.
  ChannelCheck check{AuthClass{next->role, next->claims_json}, ch.sub_topic, true,
                     ch.presence_enabled, false};
  authorize(std::move(check), [this, topic = ch.topic, id = ch.id,
                               next = std::move(next)](ChannelAuthResult r) mutable {
    Channel* c = find_channel(topic, id);
    if (!c) return;  // ended meanwhile (the old token expired, say)
    auto end = [&](std::string_view reason, std::string_view message) {
      hub_.metrics().refuse_channel(reason);
      log::get(loggers::kServer)->info("access_token on {}: {}", topic, message);
      system(*c, "system", "error", message);
      close_channel(topic);
    };
    if (!r) {
      switch (r.error().failure) {
        case ChannelAuthFailure::policy_error:
          log::get(loggers::kServer)->warn("RlsPolicyError on {}: {}", topic, r.error().message);
          return end(auth_refusal::kRevoked, std::string(kNoRead) + c->sub_topic);
        case ChannelAuthFailure::query_canceled:
          return end(auth_refusal::kDatabase, kQueryCancelled);
        case ChannelAuthFailure::unavailable:
          return end(auth_refusal::kDatabase, kDbDown);
      }
    }
    const ChannelRights& now = r.value();
    // Supabase's order: no read at all is "You do not have permissions…"; a read the old token
    // had and the new one lacks (the other still allowing the channel) is "You no longer have…".
    if (!now.may_join()) return end(auth_refusal::kRevoked, std::string(kNoRead) + c->sub_topic);
    if (revoked(c->rights.broadcast_read, now.broadcast_read) ||
        revoked(c->rights.presence_read, now.presence_read)) {
      return end(auth_refusal::kRevoked, std::string(kNoLongerRead) + c->sub_topic);
    }
    c->rights = now;
    c->token = std::move(next);
    hub_.update_auth(*c);
    schedule_expiry(*c);
  });
}

void Connection::schedule_expiry(Channel& ch) {
  // Fires exactly when check_time starts failing: exp + leeway.
  auto due = ch.token->expires_at() + hub_.verifier().leeway();
  auto delay = std::chrono::duration_cast<core::Duration>(due - hub_.scheduler().wall_now());
  ch.expiry = hub_.scheduler().schedule(
      delay, timers::TokenExpiry, [this, id = ch.id, topic = ch.topic] { on_expiry(id, topic); });
}

void Connection::on_expiry(std::uint64_t channel_id, std::string topic) {
  auto it = channels_.find(topic);
  if (it == channels_.end() || it->second->id != channel_id) return;
  Channel& ch = *it->second;
  auto err = hub_.verifier().check_time(*ch.token, hub_.scheduler().wall_now());
  if (!err) {
    schedule_expiry(ch);  // the wall clock moved back; check again at the new due time
    return;
  }
  log::get(loggers::kServer)->info("token of {} expired: {}", topic, err->message);
  system(ch, "system", "error", err->message);
  close_channel(topic);
}

}  // namespace rtsync::server::realtime
