#include "rtsync/server/realtime/hub.hpp"

#include <algorithm>
#include <unordered_map>

#include "rtsync/core/log.hpp"
#include "rtsync/core/loop_check.hpp"
#include "rtsync/server/realtime/connection.hpp"
#include "rtsync/server/realtime/db_broadcast.hpp"
#include "rtsync/server/realtime/names.hpp"

namespace rtsync::server::realtime {

namespace {

std::string_view type_name(ChangeKind k) {
  switch (k) {
    case ChangeKind::insert:
      return "INSERT";
    case ChangeKind::update:
      return "UPDATE";
    case ChangeKind::remove:
      return "DELETE";
  }
  return "INSERT";
}

// The two encodings of one fan-out message, each built on first use and then shared.
struct FrameSet {
  std::string payload;  // JSON text of the message payload
  std::string topic;
  std::string_view event;
  OutFrame v1, v2;

  const OutFrame& get(protocol::Vsn vsn) {
    if (vsn == protocol::Vsn::v1) {
      if (!v1.bytes) {
        std::string s;
        s.reserve(payload.size() + topic.size() + 64);
        s += R"({"topic":)";
        s += core::json_quoted(topic);
        s += R"(,"event":")";
        s += event;
        s += R"(","payload":)";
        s += payload;
        s += R"(,"ref":null})";
        v1 = text_frame(std::move(s));
      }
      return v1;
    }
    if (!v2.bytes) {
      std::string s;
      s.reserve(payload.size() + topic.size() + 48);
      s += "[null,null,";
      s += core::json_quoted(topic);
      s += ",\"";
      s += event;
      s += "\",";
      s += payload;
      s += ']';
      v2 = text_frame(std::move(s));
    }
    return v2;
  }
};

// The frames of one broadcast, built on first use and shared by every receiver: a JSON text frame
// per vsn, and for a binary user broadcast the kind-4 frame vsn 2 sockets get. A kind-4 frame that
// cannot be encoded (a topic or event above 255 bytes) leaves vsn 2 sockets with the JSON text
// frame, which realtime-js accepts as well; a binary-encoded payload has no JSON form, so vsn 1
// sockets get nothing (as in Supabase Realtime).
class BroadcastFrames {
 public:
  explicit BroadcastFrames(const BroadcastMessage& msg) : msg_(msg) {}

  const OutFrame* get(protocol::Vsn vsn) {
    if (msg_.binary && vsn == protocol::Vsn::v2) {
      if (!binary_tried_) {
        binary_tried_ = true;
        protocol::UserBroadcast out = *msg_.binary;
        out.join_ref.reset();
        out.ref.reset();
        out.topic = msg_.topic;
        if (auto bytes = protocol::encode_user_broadcast(out); bytes.ok()) {
          binary_ = OutFrame{std::make_shared<const std::string>(std::move(bytes.value())), true};
        }
      }
      if (binary_.bytes) return &binary_;
    }
    if (!json_tried_) {
      json_tried_ = true;
      json_.topic = msg_.topic;
      json_.event = protocol::events::kBroadcast;
      if (msg_.json_payload) {
        json_.payload = json::serialize(*msg_.json_payload);
        json_ok_ = true;
      } else if (msg_.binary && msg_.binary->encoding == protocol::PayloadEncoding::json) {
        if (auto m = protocol::to_message(*msg_.binary); m.ok()) {
          json_.payload = json::serialize(m.value().payload);
          json_ok_ = true;
        }
      }
    }
    return json_ok_ ? &json_.get(vsn) : nullptr;
  }

 private:
  const BroadcastMessage& msg_;
  bool binary_tried_ = false;
  OutFrame binary_;
  bool json_tried_ = false;
  bool json_ok_ = false;
  FrameSet json_;
};

std::string object_text(const json::object& o) {
  return json::serialize(o);
}

std::string subset_text(const std::vector<std::string>& columns, const json::object& record) {
  json::object trimmed;
  for (const auto& c : columns) {
    if (const auto* v = record.if_contains(c)) trimmed[c] = *v;
  }
  return json::serialize(trimmed);
}

std::vector<std::string> relation_keys(const Relation& rel) {
  std::vector<std::string> out;
  for (const auto& c : rel.columns) {
    if (c.is_key) out.push_back(c.name);
  }
  return out;
}

// The `columns` array of a relation's changes.
std::string columns_json(const Relation& rel) {
  json::array cols;
  for (const auto& c : rel.columns) {
    cols.push_back(json::object{{"name", c.name}, {"type", c.type_name}});
  }
  return json::serialize(cols);
}

template <class Ids>
std::string ids_json(const Ids& ids) {
  std::string out = "[";
  for (std::size_t k = 0; k < ids.size(); ++k) {
    if (k) out += ',';
    out += std::to_string(ids[k]);
  }
  out += ']';
  return out;
}

// The `data` object of a postgres_changes event; `position` is its JSON text (empty: none).
// `pk`: the primary key, for an old record the subscriber may see only the key of.
std::string change_data(const Transaction& txn, const RowChange& change,
                        const std::string& columns_text, const std::vector<std::string>& pk,
                        bool key_only, const std::string& position) {
  const Relation& rel = *change.relation;
  std::string d;
  d.reserve(256);
  d += R"({"schema":)";
  d += core::json_quoted(rel.schema);
  d += R"(,"table":)";
  d += core::json_quoted(rel.table);
  d += R"(,"commit_timestamp":)";
  d += core::json_quoted(txn.commit_timestamp);
  d += R"(,"type":")";
  d += type_name(change.kind);
  d += R"(","columns":)";
  d += columns_text;
  if (change.record && change.kind != ChangeKind::remove) {
    d += R"(,"record":)";
    d += object_text(*change.record);
  }
  if (change.kind != ChangeKind::insert) {
    d += R"(,"old_record":)";
    if (!change.old_record) {
      // UPDATE without an old tuple (key unchanged, default identity): the identity is the
      // new row's key, as Supabase Realtime shows it.
      d += change.record ? subset_text(relation_keys(rel), *change.record) : "{}";
    } else if (key_only) {
      d += subset_text(pk, *change.old_record);
    } else {
      d += object_text(*change.old_record);
    }
  }
  d += R"(,"errors":null)";
  if (!position.empty()) {
    d += R"(,"position":)";
    d += position;
  }
  d += '}';
  return d;
}

}  // namespace

// A resuming join (begin_resume … end_resume).
struct Hub::Resume {
  Channel* channel = nullptr;  // owned by its connection: the pending join, then a member
  std::uint64_t channel_id = 0;
  std::string member_key;
  StreamPosition from;  // the client's position
  StreamPosition head;  // accepted when the join began
  std::function<void(ResumeOutcome)> done;
  enum class Phase : std::uint8_t {
    waiting,      // for every transaction up to the head to be delivered
    authorizing,  // the replay's row checks
    answered,     // the outcome is with the connection (its join reply)
    writing,      // the replay, then the held items, paced by the socket's queue
  };
  Phase phase = Phase::waiting;
  bool finished = false;  // ended: late answers and drain notifications are ignored
  // Live items that arrived meanwhile, in order, with their (estimated) bytes.
  struct Held {
    ResumeItem item;
    std::size_t bytes = 0;
  };
  std::deque<Held> held;
  std::size_t held_bytes = 0;
  bool overflowed = false;
  // Before the reply, more live changes came than may be held: those with a position were let go
  // and the replay runs on through history to a newer head instead (move_head), at most
  // kMaxReplayExtensions times.
  bool extend = false;
  int extensions = 0;
  // The history entries of the replay with this channel's routing plan (null: no bindings). The
  // entries pin their transactions: the ring may drop them while the replay is written.
  struct Step {
    HistoryEntry entry;
    std::shared_ptr<Router::Plan> plan;
  };
  std::deque<Step> steps;
  std::vector<std::size_t> asks;  // steps whose rows need checks, asked in order
  std::size_t next_ask = 0;
  std::size_t outstanding = 0;  // checks asked and not answered yet
  bool asking = false;          // in ask_more (an authorizer may answer synchronously)
  std::optional<std::string> failure;
  bool gap_history = false;  // `failure` is the history's floor, not an authorization
  // Writing: the next change of steps.front(), an item taken that did not fit the queue yet,
  // where the channel's live changes start, and up to where every change the channel may see was
  // handed to its socket (the heartbeat reply's cap: Connection::heartbeat_response).
  std::size_t change = 0;
  std::optional<Held> next;
  bool replay_written = false;
  StreamPosition live_after;
  StreamPosition handed;
  std::unordered_map<const Relation*, std::string> columns_text;
};

Hub::Hub(core::Scheduler& scheduler, const auth::JwtVerifier& verifier, RowAuthorizer* authorizer,
         RealtimeLimits limits)
    : scheduler_(scheduler),
      verifier_(verifier),
      authorizer_(authorizer),
      limits_(limits),
      history_(std::chrono::duration_cast<core::Duration>(limits.resume_window),
               limits.resume_window_bytes) {
  metrics_.gauges.push_back({"rtsync_resume_history_transactions",
                             "Delivered transactions (or parts) kept for resuming joins.", "gauge",
                             [this] { return double(history_.transactions()); }});
  metrics_.gauges.push_back({"rtsync_resume_history_bytes",
                             "pgoutput bytes of the transactions kept for resuming joins.", "gauge",
                             [this] { return double(history_.bytes()); }});
  metrics_.gauges.push_back(
      {"rtsync_resume_floor_age_seconds",
       "Seconds since the history's floor last moved (positions before it are gaps).", "gauge",
       [this] {
         if (epoch_.empty()) return 0.0;
         return std::chrono::duration<double>(scheduler_.now() - history_.floor_since()).count();
       }});
}

Hub::~Hub() {
  *alive_ = false;
  // Authorizer callbacks may still hold a Pending: its retry timer must not outlive the hub.
  for (auto& p : pipeline_)
    p->retry.cancel();
}

json::value Hub::system_payload(std::string_view extension, std::string_view status,
                                std::string_view message, std::string_view channel) {
  json::object o;
  o["extension"] = extension;
  o["status"] = status;
  o["message"] = message;
  o["channel"] = channel;
  return o;
}

void Hub::add_member(Channel& ch) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  members_[ch.member_key].push_back(&ch);
  by_id_[ch.id] = &ch;
}

void Hub::remove_member(Channel& ch) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  end_resume(ch);  // a channel still writing its resume
  presence_.untrack(ch);
  auto it = members_.find(ch.member_key);
  if (it != members_.end()) {
    auto& v = it->second;
    auto pos = std::find(v.begin(), v.end(), &ch);
    if (pos != v.end()) {
      *pos = v.back();
      v.pop_back();
    }
    if (v.empty()) members_.erase(it);
  }
  by_id_.erase(ch.id);
}

const std::vector<Channel*>* Hub::member_list(std::string_view member_key) const {
  auto it = members_.find(std::string(member_key));
  return it == members_.end() ? nullptr : &it->second;
}

std::size_t Hub::members(std::string_view member_key) const {
  auto it = members_.find(std::string(member_key));
  return it == members_.end() ? 0 : it->second.size();
}

PgState Hub::subscribe_changes(Channel& ch) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (ch.bindings.empty()) return PgState::none;
  router_.add(ch.id, AuthClass{ch.token->role, ch.token->claims_json}, ch.bindings);
  ch.pg = stream_running_ ? PgState::subscribed : PgState::waiting;
  return ch.pg;
}

void Hub::unsubscribe_changes(Channel& ch) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  router_.remove(ch.id);
}

void Hub::update_auth(Channel& ch) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  router_.set_auth(ch.id, AuthClass{ch.token->role, ch.token->claims_json});
}

std::size_t Hub::broadcast(const BroadcastMessage& msg, const Channel* sender) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  ++metrics_.broadcasts;
  if (bus_) bus_->broadcast(msg);
  return fan_out(msg, sender);
}

std::size_t Hub::broadcast_from_node(const BroadcastMessage& msg) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  ++metrics_.broadcasts;
  return fan_out(msg, nullptr);
}

void Hub::feed_gap(StreamPosition floor, std::string_view reason) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  log::get(loggers::kServer)->warn("change feed gap before {}: {}", format_lsn(floor.lsn), reason);
  history_.reset(floor);
  accepted_end_ = std::max(accepted_end_, floor);
  delivered_end_ = std::max(delivered_end_, floor);
  // Every socket that may have missed a change or a database broadcast: any channel's socket
  // (which topics database broadcasts reach is not known ahead). Collect first: closing does not
  // re-enter the hub synchronously, but the maps must not change under the loop either way.
  std::vector<Connection*> sockets;
  for (auto& [id, ch] : by_id_) {
    if (ch->connection) sockets.push_back(ch->connection);
  }
  std::sort(sockets.begin(), sockets.end());
  sockets.erase(std::unique(sockets.begin(), sockets.end()), sockets.end());
  const std::string why = "change feed gap: " + std::string(reason) + "; rejoin";
  for (Connection* c : sockets)
    c->close_with(protocol::close_code::kServiceRestart, why);
  metrics_.feed_gaps += 1;
}

std::size_t Hub::fan_out(const BroadcastMessage& msg, const Channel* sender) {
  const auto key = msg.is_private ? "private|" + msg.topic : msg.topic;
  if (auto h = held_.find(key); h != held_.end()) {
    for (HeldBroadcasts* held : h->second) {
      if (held->overflowed) continue;
      if (held->messages.size() >= held->limit) {
        held->overflowed = true;
        held->messages.clear();
        metrics_.drop(drop::kReplayHeldOverflow);
        continue;
      }
      held->messages.push_back(msg);
    }
  }
  if (auto r = resuming_keys_.find(key); r != resuming_keys_.end()) {
    for (Resume* resume : r->second) {
      if (resume->channel == sender && !sender->self) continue;
      hold_item(*resume, ResumeItem{std::nullopt, msg, msg.position});
    }
  }
  auto it = members_.find(key);
  if (it == members_.end()) return 0;

  BroadcastFrames frames(msg);
  std::size_t sent = 0;
  for (Channel* ch : it->second) {
    if (ch == sender && !ch->self) continue;
    if (ch->resuming) continue;  // held above: its replay goes first
    if (ch->is_private && !ch->rights.broadcast_read.value_or(false)) {
      // Joined on presence read alone: its token may not read this topic's broadcasts.
      metrics_.drop(drop::kUnauthorized);
      continue;
    }
    if (!msg.id.empty() && !ch->replayed_ids.empty() && ch->replayed(msg.id)) {
      metrics_.drop(drop::kReplayDuplicate);
      continue;
    }
    if (msg.position && ch->live_after && *msg.position <= *ch->live_after) {
      metrics_.drop(drop::kResumeDuplicate);
      continue;
    }
    Connection& conn = *ch->connection;
    const OutFrame* frame = frames.get(conn.vsn());
    if (!frame) {
      if (conn.vsn() == protocol::Vsn::v1) metrics_.drop(drop::kV1Binary);
      continue;
    }
    if (conn.send(*frame)) ++sent;
  }
  metrics_.broadcast_deliveries += sent;
  return sent;
}

bool Hub::broadcast_to(Channel& ch, const BroadcastMessage& msg) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (ch.is_private && !ch.rights.broadcast_read.value_or(false)) {
    metrics_.drop(drop::kUnauthorized);  // as in fan_out: no broadcast read, no replay
    return false;
  }
  if (!msg.id.empty() && ch.replayed(msg.id)) {
    metrics_.drop(drop::kReplayDuplicate);
    return false;
  }
  BroadcastFrames frames(msg);
  const OutFrame* frame = frames.get(ch.connection->vsn());
  if (!frame) {
    if (ch.connection->vsn() == protocol::Vsn::v1) metrics_.drop(drop::kV1Binary);
    return false;
  }
  if (!ch.connection->send(*frame)) return false;
  ++metrics_.broadcast_deliveries;
  return true;
}

void Hub::hold(const std::string& member_key, HeldBroadcasts* held) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  held_[member_key].push_back(held);
}

void Hub::unhold(const std::string& member_key, HeldBroadcasts* held) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  auto it = held_.find(member_key);
  if (it == held_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), held), v.end());
  if (v.empty()) held_.erase(it);
}

std::vector<std::uint32_t> Hub::recent_message_xids() const {
  std::vector<std::uint32_t> out;
  const auto since = scheduler_.now() - kRecentXidWindow;
  for (const auto& r : recent_xids_)
    if (r.at >= since && r.xid != 0) out.push_back(r.xid);
  return out;
}

void Hub::deliver_db_broadcast(const RowChange& change, StreamPosition pos) {
  // Only inserts are messages: the messages publication carries nothing else, but a
  // `supabase_realtime` publication FOR ALL TABLES also sends the table's updates and retention's
  // deletes, which are nobody's business.
  if (change.kind != ChangeKind::insert) return;
  txn_had_messages_ = true;
  auto decoded = decode_db_broadcast(change);
  if (!decoded) {
    metrics_.drop(drop::kDbBroadcastInvalid);
    log::get(loggers::kServer)->warn("UnableToBroadcastChanges: {}", decoded.error().message);
    return;
  }
  ++metrics_.db_broadcasts;
  if (decoded->payload.size() > limits_.max_broadcast_payload_bytes) {
    metrics_.drop(drop::kDbBroadcastTooLarge);
    log::get(loggers::kServer)
        ->info("UnableToBroadcastChanges: payload of message {} is {} bytes, above {}", decoded->id,
               decoded->payload.size(), limits_.max_broadcast_payload_bytes);
    return;
  }
  metrics_.db_broadcast_deliveries += fan_out(db_broadcast_message(*decoded, pos), nullptr);
}

// ---- resumable change streams ----

void Hub::set_epoch(std::string epoch, StreamPosition floor, Lsn live_from) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  epoch_ = std::move(epoch);
  history_.reset(floor);
  live_from_ = live_from;
  accepted_end_ = delivered_end_ = floor;
}

void Hub::on_stream_position(Lsn lsn) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (epoch_.empty() || !pipeline_.empty()) return;
  const StreamPosition p{lsn, 0};
  accepted_end_ = std::max(accepted_end_, p);
  delivered_end_ = std::max(delivered_end_, p);
  if (!resuming_.empty()) check_resumes();
}

bool Hub::wants_stream_position() {
  for (const auto& [id, r] : resuming_)
    if (r->phase == Resume::Phase::waiting) return true;
  return false;
}

std::optional<Lsn> Hub::confirm_limit() {
  if (epoch_.empty()) return std::nullopt;
  history_.trim(scheduler_.now());
  // The transaction of the floor is decoded again after a restart (PostgreSQL skips only those
  // that committed before the confirmed position), so a client at the floor can still resume.
  // A replay in flight pins its transactions in memory, not in the slot (docs/resume.md).
  return history_.floor().lsn;
}

PgState Hub::begin_resume(Channel& ch, StreamPosition from,
                          std::function<void(ResumeOutcome)> done) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  auto r = std::make_shared<Resume>();
  r->channel = &ch;
  r->channel_id = ch.id;
  r->member_key = ch.member_key;
  r->from = from;
  r->head = head();
  r->done = std::move(done);
  resuming_[ch.id] = r;
  resuming_keys_[ch.member_key].push_back(r.get());
  ch.resuming = true;
  // Routed from now on: every transaction accepted after the head reaches the channel (held).
  const PgState pg = subscribe_changes(ch);
  // A quiet stream learns that it is past the head from a keepalive: ask for one now.
  if (delivered_end_ < r->head && status_request_) status_request_();
  // Asynchronous even when everything is at hand, so the caller finishes registering first.
  scheduler_.post([this, alive = alive_] {
    if (*alive) check_resumes();
  });
  return pg;
}

void Hub::end_resume(Channel& ch) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  auto it = resuming_.find(ch.id);
  if (it == resuming_.end()) return;
  ch.resuming = false;
  forget(*it->second);
}

void Hub::forget(Resume& r) {
  r.finished = true;
  auto k = resuming_keys_.find(r.member_key);
  if (k != resuming_keys_.end()) {
    auto& v = k->second;
    v.erase(std::remove(v.begin(), v.end(), &r), v.end());
    if (v.empty()) resuming_keys_.erase(k);
  }
  const std::uint64_t id = r.channel_id;
  resuming_.erase(id);  // may destroy `r`
}

std::optional<StreamPosition> Hub::resume_handed(const Channel& ch) const {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (resuming_.empty()) return std::nullopt;
  auto it = resuming_.find(ch.id);
  if (it == resuming_.end() || it->second->phase != Resume::Phase::writing) return std::nullopt;
  return it->second->handed;
}

std::size_t Hub::item_bytes(const ResumeItem& item) {
  if (item.frame) return item.frame->bytes->size();
  if (!item.broadcast) return 0;
  // A broadcast's frame is built when it is sent: its payload, topic and envelope.
  const BroadcastMessage& b = *item.broadcast;
  std::size_t n = b.topic.size() + 64;
  if (b.json_payload) n += json::serialize(*b.json_payload).size();
  if (b.binary)
    n += b.binary->payload.size() + b.binary->metadata.size() + b.binary->user_event.size();
  return n;
}

void Hub::hold_item(Resume& r, ResumeItem item) {
  if (r.overflowed || r.finished) return;
  const std::size_t bytes = item_bytes(item);
  // At most as many items as the socket may queue frames. Not bounded by its bytes: items pile
  // up while the replay is checked, which is the server's latency, not the client's (a socket
  // with a small byte limit and large rows would otherwise lose every resume to it).
  if (r.held.size() < limits_.max_queued_frames) {
    r.held_bytes += bytes;
    r.held.push_back(Resume::Held{std::move(item), bytes});
    return;
  }
  if ((r.phase == Resume::Phase::waiting || r.phase == Resume::Phase::authorizing) &&
      r.extensions < kMaxReplayExtensions) {
    // The changes are in the history (this one once its transaction is delivered, before the
    // replay can move on): replayed from there with a newer head, they need not be held. Only a
    // user broadcast, which has no position and is in no history, stays held.
    r.extend = true;
    std::erase_if(r.held, [&](const Resume::Held& h) {
      if (!h.item.position) return false;
      r.held_bytes -= std::min(r.held_bytes, h.bytes);
      return true;
    });
    if (item.position) return;
    if (r.held.size() < limits_.max_queued_frames) {
      r.held_bytes += bytes;
      r.held.push_back(Resume::Held{std::move(item), bytes});
      return;
    }
  }
  r.overflowed = true;
  const std::size_t frames = r.held.size() + 1;
  r.held.clear();
  r.held_bytes = 0;
  if (r.phase != Resume::Phase::writing) {
    // Before the reply: the join answers with a gap (answer_resume).
    metrics_.drop(drop::kResumeHeldOverflow, frames);
    return;
  }
  // After it, the client is behind its replay and its live changes by more than its socket may
  // queue: a slow consumer like any other (its rejoin resumes from what it applied). The reason
  // fits a close frame's 123 bytes.
  r.channel->connection->close_slow_consumer("slow consumer: " + std::to_string(frames) +
                                             " frames held by a resume (limit " +
                                             std::to_string(limits_.max_queued_frames) + ")");
}

void Hub::check_resumes() {
  // Collected first: a replay may finish at once, and its join then ends the resume.
  std::vector<std::shared_ptr<Resume>> ready;
  for (auto& [id, r] : resuming_) {
    if (r->phase == Resume::Phase::waiting && delivered_end_ >= r->head) ready.push_back(r);
  }
  for (auto& r : ready) {
    if (!r->finished) start_replay(r);
  }
}

void Hub::start_replay(const std::shared_ptr<Resume>& r) {
  r->phase = Resume::Phase::authorizing;
  if (!history_.covers(r->from)) {
    // Trimmed while the head was on its way (a byte bound under a burst).
    r->failure = "position older than the server's history";
    r->gap_history = true;
    return answer_resume(r);
  }
  // Live changes overflowed while the head was on its way: the replay goes on to what is
  // delivered now instead.
  if (r->extend) move_head(*r);
  add_replay_steps(*r, r->from);
  ask_more(r);
}

void Hub::add_replay_steps(Resume& r, StreamPosition after) {
  const Channel& ch = *r.channel;
  // This channel alone, under its token's current claims: the same routing and row checks as a
  // live delivery (docs/row-security.md), so a replay shows nothing a live change would not.
  Router solo;
  if (!ch.bindings.empty()) {
    solo.add(ch.id, AuthClass{ch.token->role, ch.token->claims_json}, ch.bindings);
  }
  for (const HistoryEntry* e : history_.between(after, r.head)) {
    Resume::Step step{*e, nullptr};
    if (solo.size() > 0) step.plan = std::make_shared<Router::Plan>(solo.route(e->txn));
    r.steps.push_back(std::move(step));
    auto& plan = r.steps.back().plan;
    if (!plan || plan->requests->empty()) continue;
    if (!authorizer_) {
      metrics_.drop(
          drop::kUnauthorized,
          Router::apply_visibility(*plan, Result<std::vector<VisibilityResult>>(make_error(
                                              Errc::internal, "no row authorizer configured"))));
      continue;
    }
    r.asks.push_back(r.steps.size() - 1);
  }
}

void Hub::move_head(Resume& r) {
  r.extend = false;
  ++r.extensions;
  // Every change let go when the holding overflowed was delivered by now: it is in the history
  // up to delivered_end_.
  r.head = std::max(r.head, delivered_end_);
  // Held changes the longer replay covers are not held twice (user broadcasts have no position).
  std::erase_if(r.held, [&](const Resume::Held& h) {
    if (!h.item.position || *h.item.position > r.head) return false;
    r.held_bytes -= std::min(r.held_bytes, h.bytes);
    return true;
  });
}

void Hub::ask_more(const std::shared_ptr<Resume>& r) {
  if (r->asking) return;  // an answer given synchronously: the loop below carries on
  r->asking = true;
  // As many checks at once as the live pipeline authorizes, not one per transaction of the
  // replay: a long replay must not flood PostgreSQL.
  const std::size_t most = std::max<std::size_t>(1, limits_.max_transactions_in_flight);
  while (!r->finished && !r->failure && r->outstanding < most && r->next_ask < r->asks.size()) {
    const auto& step = r->steps[r->asks[r->next_ask++]];
    ++r->outstanding;
    auto plan = step.plan;
    authorizer_->authorize(step.entry.txn, plan->requests,
                           [this, alive = alive_, weak = std::weak_ptr(r),
                            plan](Result<std::vector<VisibilityResult>> result) {
                             if (!*alive) return;
                             auto r = weak.lock();
                             if (!r || r->finished) return;
                             if (!result.ok()) {
                               // No retry here: the client is told it has a gap and refetches,
                               // rather than waiting.
                               if (!r->failure) r->failure = result.error().describe();
                             } else {
                               metrics_.drop(drop::kUnauthorized,
                                             Router::apply_visibility(*plan, result));
                             }
                             // Only the matches are needed from now on.
                             plan->requests.reset();
                             plan->checks = {};
                             --r->outstanding;
                             ask_more(r);
                           });
  }
  r->asking = false;
  if (!r->finished && r->phase == Resume::Phase::authorizing && r->outstanding == 0 &&
      (r->failure || r->next_ask == r->asks.size())) {
    if (!r->failure && r->extend) {
      const StreamPosition checked_to = r->head;
      if (history_.covers(checked_to)) {
        move_head(*r);
        add_replay_steps(*r, checked_to);
        return ask_more(r);
      }
      // The history's byte bound trimmed what was let go.
      r->failure = "position older than the server's history";
      r->gap_history = true;
    }
    answer_resume(r);
  }
}

std::optional<ResumeItem> Hub::replay_item(Resume& r, const HistoryEntry& entry,
                                           const std::shared_ptr<Router::Plan>& plan, std::size_t i,
                                           bool build) {
  const StreamPosition pos = entry.position(i);
  if (pos <= r.from || pos > r.head) return std::nullopt;
  const Channel& ch = *r.channel;
  const Transaction& txn = *entry.txn;
  const RowChange& change = txn.changes[i];
  if (change.relation && is_messages_relation(*change.relation)) {
    // Database broadcasts of the channel's topic and kind, as live delivery would send them.
    if (change.kind != ChangeKind::insert) return std::nullopt;
    auto decoded = decode_db_broadcast(change);
    if (!decoded || decoded->payload.size() > limits_.max_broadcast_payload_bytes) {
      return std::nullopt;
    }
    auto msg = db_broadcast_message(*decoded, pos);
    if (msg.topic != ch.topic || msg.is_private != ch.is_private) return std::nullopt;
    if (ch.is_private && !ch.rights.broadcast_read.value_or(false)) return std::nullopt;
    return ResumeItem{std::nullopt, std::move(msg), pos};
  }
  if (!plan || plan->matches[i].empty() || !change.relation) return std::nullopt;
  if (!build) return ResumeItem{std::nullopt, std::nullopt, pos};
  const Router::Match& m = plan->matches[i].front();
  const Relation& rel = *change.relation;
  auto cit = r.columns_text.find(&rel);
  if (cit == r.columns_text.end()) cit = r.columns_text.emplace(&rel, columns_json(rel)).first;
  FrameSet fs;
  fs.topic = ch.topic;
  fs.event = protocol::events::kPostgresChanges;
  fs.payload = R"({"ids":)" + ids_json(m.ids) + R"(,"data":)" +
               change_data(txn, change, cit->second, primary_key(rel), m.key_only,
                           position_text(epoch_, pos)) +
               "}";
  return ResumeItem{fs.get(ch.connection->vsn()), std::nullopt, pos};
}

void Hub::answer_resume(const std::shared_ptr<Resume>& r) {
  r->phase = Resume::Phase::answered;
  ResumeOutcome out;
  out.head = r->head;
  if (r->overflowed) {
    // Live changes were dropped: everything delivered so far is the gap, live ones follow.
    out.outcome = resume_outcome::kGapOverflow;
    out.reason = "more live changes arrived during the replay than a join may hold";
    out.head = std::max(r->head, delivered_end_);
    r->overflowed = false;  // nothing held; later live changes go to the channel
  } else if (r->failure) {
    out.reason =
        r->gap_history ? *r->failure : "the replay could not be authorized: " + *r->failure;
    out.outcome = r->gap_history ? resume_outcome::kGapHistory : resume_outcome::kGapAuthorization;
  } else {
    // The reply says how many changes follow (the client counts them), so they are counted
    // before it. A frame that alone is larger than the socket's queue can never be sent on it:
    // such a replay is a gap rather than a socket closed as a slow consumer whose rejoin asks
    // for the same replay again. A frame is a few times its transaction's pgoutput bytes at most
    // (quotes, keys, escapes) plus its column list: only transactions that could come near the
    // limit have their frames built here to be measured.
    std::size_t n = 0;
    std::optional<std::size_t> too_large;
    for (const auto& step : r->steps) {
      const bool measure =
          step.entry.txn->bytes * 6 + (std::size_t{1} << 20) >= limits_.max_queued_bytes;
      for (std::size_t i = 0; i < step.entry.txn->changes.size(); ++i) {
        auto item = replay_item(*r, step.entry, step.plan, i, measure);
        if (!item) continue;
        ++n;
        if (measure && !too_large && item_bytes(*item) > limits_.max_queued_bytes) {
          too_large = item_bytes(*item);
        }
      }
    }
    if (too_large) {
      metrics_.drop(drop::kResumeTooLarge, n);
      out.outcome = resume_outcome::kGapTooLarge;
      out.reason = "a replayed change (" + std::to_string(*too_large) +
                   " bytes) is larger than the socket's send queue";
    } else {
      out.resumed = true;
      out.replayed = n;
    }
  }
  if (!out.resumed) r->steps.clear();
  r->columns_text.clear();  // the relations' column lists are built again while writing
  // From the end of the replay on, a live change at or before what the client has (or was sent)
  // is a copy.
  r->live_after = out.resumed ? std::max(r->from, out.head) : out.head;
  r->handed = out.resumed ? r->from : out.head;
  auto done = std::move(r->done);
  if (done) done(std::move(out));
  // The connection replied and called resume_joined, unless the join went away meanwhile (then
  // it ended the resume already; this is only a safety net that touches no channel).
  if (!r->finished && r->phase == Resume::Phase::answered) forget(*r);
}

void Hub::resume_joined(Channel& ch) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  auto it = resuming_.find(ch.id);
  if (it == resuming_.end()) return;
  auto r = it->second;
  if (r->phase != Resume::Phase::answered) return;
  r->phase = Resume::Phase::writing;
  if (r->steps.empty()) {
    r->replay_written = true;
    ch.live_after = r->live_after;
    r->handed = std::max(r->handed, r->live_after);
  }
  write_resume(r);
}

bool Hub::take_next(Resume& r) {
  Channel& ch = *r.channel;
  if (!r.replay_written) {
    while (!r.steps.empty()) {
      const auto& step = r.steps.front();
      while (r.change < step.entry.txn->changes.size()) {
        if (auto item = replay_item(r, step.entry, step.plan, r.change++, true)) {
          const std::size_t bytes = item_bytes(*item);
          r.next = Resume::Held{std::move(*item), bytes};
          return true;
        }
      }
      r.steps.pop_front();  // written: unpinned
      r.change = 0;
    }
    r.replay_written = true;
    r.columns_text.clear();
    ch.live_after = r.live_after;
    r.handed = std::max(r.handed, r.live_after);
  }
  while (!r.held.empty()) {
    auto h = std::move(r.held.front());
    r.held.pop_front();
    r.held_bytes -= std::min(r.held_bytes, h.bytes);
    if (h.item.position && *h.item.position <= r.live_after) {
      metrics_.drop(drop::kResumeDuplicate);
      continue;
    }
    r.next = std::move(h);
    return true;
  }
  return false;
}

void Hub::write_resume(const std::shared_ptr<Resume>& r) {
  if (r->finished || r->overflowed) return;
  Channel& ch = *r->channel;
  Connection& conn = *ch.connection;
  // Written in bursts up to half the socket's queue, the next burst once it drained to a
  // quarter: the queue never holds more than half for the replay, leaving the rest to the
  // socket's other channels, and a client that reads at its pace gets all of it.
  const std::size_t high_frames = std::max<std::size_t>(1, limits_.max_queued_frames / 2);
  const std::size_t high_bytes = limits_.max_queued_bytes / 2;
  const std::size_t low_frames = limits_.max_queued_frames / 4;
  const std::size_t low_bytes = limits_.max_queued_bytes / 4;
  for (;;) {
    if (!r->next && !take_next(*r)) {
      // Everything held was written: live changes go to the channel from now on.
      return end_resume(ch);
    }
    const std::size_t frames = conn.queued_frames();
    const std::size_t bytes = conn.queued_bytes();
    if (frames > 0 && (frames + 1 > high_frames || bytes + r->next->bytes > high_bytes)) {
      // An item too large to fit above the low-water mark waits for an empty queue.
      const bool large = r->next->bytes > high_bytes - low_bytes;
      conn.when_drained(large ? 0 : low_frames, large ? 0 : low_bytes,
                        [this, alive = alive_, weak = std::weak_ptr(r)] {
                          if (!*alive) return;
                          if (auto r = weak.lock()) write_resume(r);
                        });
      return;
    }
    Resume::Held h = std::move(*r->next);
    r->next.reset();
    if (h.item.frame) {
      // A socket that refuses a frame is closing: its teardown ends the resume.
      if (!conn.send(*h.item.frame)) return;
      ++metrics_.deliveries;
    } else if (h.item.broadcast) {
      broadcast_to(ch, *h.item.broadcast);
    }
    if (h.item.position) r->handed = std::max(r->handed, *h.item.position);
  }
}

bool Hub::send_change(Channel& ch, const OutFrame& frame, StreamPosition pos) {
  if (ch.live_after && pos <= *ch.live_after) {
    metrics_.drop(drop::kResumeDuplicate);
    return false;
  }
  return ch.connection->send(frame);
}

BroadcastMessage Hub::db_broadcast_message(const DbBroadcast& b, StreamPosition pos) const {
  BroadcastMessage msg = to_broadcast_message(b);
  if (!epoch_.empty()) {
    msg.position = pos;
    // meta = {id, position}: the same object realtime-js shows as `meta`.
    msg.binary->metadata = R"({"id":)" + core::json_quoted(b.id) + R"(,"position":)" +
                           position_text(epoch_, pos) + "}";
  }
  return msg;
}

void Hub::on_transaction(std::shared_ptr<const Transaction> txn, std::function<void()> done) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  ++metrics_.transactions;
  metrics_.changes_decoded += txn->changes.size();
  auto p = std::make_shared<Pending>();
  // Positions count every change of the transaction, across its parts (docs/resume.md).
  if (txn->part == 0) next_index_ = 1;
  p->first_index = next_index_;
  next_index_ += txn->changes.size();
  if (!epoch_.empty()) {
    accepted_end_ = std::max(accepted_end_, StreamPosition{txn->commit_lsn, next_index_ - 1});
  }
  p->txn = std::move(txn);
  p->done = std::move(done);
  pipeline_.push_back(p);
  if (!epoch_.empty() && p->txn->commit_lsn < live_from_) {
    // Catch-up after a restart: history for resuming joins, nobody's live change.
    p->catch_up = true;
    p->ready = true;
    return drain();
  }
  route_when_facts_known(p, 0);
}

void Hub::route_when_facts_known(const std::shared_ptr<Pending>& p, int attempt) {
  // Trimming an old record to its primary key needs the table's primary key (pgoutput flags
  // every column as key under REPLICA IDENTITY FULL): fetch what the cache lacks (or holds for
  // longer than the TTL) before routing.
  std::vector<std::uint32_t> missing;
  if (relation_info_ && router_.size() > 0) {
    auto now = scheduler_.now();
    for (const auto& ch : p->txn->changes) {
      if (!ch.old_record || !ch.relation || is_messages_relation(*ch.relation)) continue;
      auto oid = ch.relation->oid;
      auto it = relation_cache_.find(oid);
      if (it != relation_cache_.end() && now - it->second.fetched < relation_info_ttl_) continue;
      if (std::find(missing.begin(), missing.end(), oid) == missing.end()) missing.push_back(oid);
    }
  }
  if (missing.empty()) return route_and_authorize(p);
  relation_info_->lookup(missing, [this, alive = alive_, missing, p,
                                   attempt](Result<RelationInfoSource::Infos> infos) {
    // A hub that went away confirms nothing: the stream re-sends from the slot.
    if (!*alive) return;
    if (!infos.ok()) {
      // PostgreSQL is away: wait for it rather than guess a key (nothing is confirmed).
      return retry_later(p, attempt, "relation lookup", infos.error(),
                         [this, attempt](const std::shared_ptr<Pending>& again) {
                           route_when_facts_known(again, attempt + 1);
                         });
    }
    auto now = scheduler_.now();
    for (auto oid : missing) {
      CachedInfo c;
      c.fetched = now;
      auto it = infos.value().find(oid);
      if (it != infos.value().end()) {
        c.info = it->second;
        c.known = true;
      }
      relation_cache_[oid] = std::move(c);
    }
    route_and_authorize(p);
  });
}

void Hub::retry_later(const std::shared_ptr<Pending>& p, int attempt, std::string_view what,
                      const Error& error,
                      std::function<void(const std::shared_ptr<Pending>&)> again) {
  const auto delay = retry_delay(attempt);
  auto logger = log::get(loggers::kServer);
  // The first failure and then one line every ten attempts: an outage of minutes must not flood
  // the log, and must not go unnoticed either.
  const auto level = attempt % 10 == 0 ? spdlog::level::warn : spdlog::level::debug;
  logger->log(level, "{} failed (attempt {}): {}; delivery waits, retrying in {} ms", what,
              attempt + 1, error.describe(),
              std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  ++metrics_.authorization_retries;
  // Weak: the pipeline owns `p`, and the timer lives in it.
  p->retry = scheduler_.schedule(delay, timers::AuthorizeRetry,
                                 [weak = std::weak_ptr(p), again = std::move(again)] {
                                   if (auto p = weak.lock()) again(p);
                                 });
}

core::Duration Hub::retry_delay(int attempt) {
  // 0.1, 0.2, 0.4, 0.8, 1.6 s, then every 2 s for as long as it takes.
  return std::min<core::Duration>(std::chrono::milliseconds(100 << std::min(attempt, 5)),
                                  std::chrono::seconds(2));
}

const Hub::CachedInfo* Hub::info_of(std::uint32_t oid) const {
  auto it = relation_cache_.find(oid);
  return it == relation_cache_.end() ? nullptr : &it->second;
}

void Hub::route_and_authorize(const std::shared_ptr<Pending>& p) {
  p->plan = std::make_shared<Router::Plan>(router_.route(p->txn));
  if (p->plan->requests->empty()) {
    p->ready = true;
    return drain();
  }
  if (!authorizer_) {
    auto removed =
        Router::apply_visibility(*p->plan, Result<std::vector<VisibilityResult>>(make_error(
                                               Errc::internal, "no row authorizer configured")));
    metrics_.drop(drop::kUnauthorized, removed);
    p->ready = true;
    return drain();
  }
  authorize(p, 0);
}

void Hub::authorize(std::shared_ptr<Pending> p, int attempt) {
  authorizer_->authorize(
      p->txn, p->plan->requests,  // shared, kept in the plan for a retry
      [this, alive = alive_, p, attempt](Result<std::vector<VisibilityResult>> result) {
        if (!*alive) return;
        if (!result.ok()) {
          // No answer is not an answer: the stream is held back (done is not called, so nothing
          // is confirmed) for as long as PostgreSQL is away. Only an error that repeats for the
          // same rows (a policy that fails on them, say) ends in refusing them, counted: the
          // outage's own retries do not bring a later one-off error (a session's temporary table
          // lost with PostgreSQL's restart, say) closer to that.
          if (!authorizer_->transient(result.error())) ++p->permanent_failures;
          if (p->permanent_failures < kPermanentErrorAttempts) {
            return retry_later(p, attempt, "row authorization", result.error(),
                               [this, attempt](const std::shared_ptr<Pending>& again) {
                                 authorize(again, attempt + 1);
                               });
          }
          log::get(loggers::kServer)
              ->error("row authorization failed {} times: {}; refusing the checked rows",
                      kPermanentErrorAttempts, result.error().describe());
        }
        auto removed = Router::apply_visibility(*p->plan, result);
        metrics_.drop(result.ok() ? drop::kUnauthorized : drop::kAuthorizerFailed, removed);
        p->ready = true;
        drain();
      });
}

void Hub::drain() {
  // `done` may hand on the next transaction synchronously (and that one may be ready at once):
  // the outer loop picks it up, so deliveries never nest or overtake each other.
  if (draining_) return;
  draining_ = true;
  auto alive = alive_;
  while (*alive && !pipeline_.empty() && pipeline_.front()->ready) {
    auto p = std::move(pipeline_.front());
    pipeline_.pop_front();
    txn_had_messages_ = false;
    if (!p->catch_up) deliver(*p->plan, p->first_index);
    if (!epoch_.empty()) {
      const auto& t = *p->txn;
      delivered_end_ = std::max(
          delivered_end_, StreamPosition{t.commit_lsn, p->first_index - 1 + t.changes.size()});
      // A transaction ending at or after live_from_ is the last that committed before it (or
      // a later one): the catch-up is over.
      if (t.last && t.end_lsn >= live_from_) {
        delivered_end_ = std::max(delivered_end_, StreamPosition{live_from_, 0});
      }
      history_.append(p->txn, p->first_index, scheduler_.now());
    }
    if (txn_had_messages_) {
      const auto now = scheduler_.now();
      if (recent_xids_.empty() || recent_xids_.back().xid != p->txn->xid) {
        recent_xids_.push_back(RecentXid{p->txn->xid, now});
      } else {
        recent_xids_.back().at = now;
      }
      while (recent_xids_.size() > kRecentXids)
        recent_xids_.pop_front();
    }
    auto done = std::move(p->done);
    if (done) done();
  }
  if (*alive) draining_ = false;
  if (*alive && !resuming_.empty()) check_resumes();
}

bool Hub::within_change_limit(Channel& ch, const Relation& rel) {
  const std::size_t limit = limits_.max_changes_per_transaction;
  std::size_t& n = delivered_in_txn_[ChannelTable{ch.id, rel.oid}];
  if (n > limit) {
    metrics_.drop(drop::kTooManyChanges);
    return false;
  }
  if (++n <= limit) return true;
  metrics_.drop(drop::kTooManyChanges);
  json::object o{{"extension", "postgres_changes"},
                 {"status", "ok"},
                 {"message", "Too many changes"},
                 {"channel", ch.sub_topic},
                 {"schema", rel.schema},
                 {"table", rel.table},
                 {"limit", limit}};
  push_system(ch, std::move(o));
  return false;
}

void Hub::push_system(Channel& ch, json::value payload) {
  ch.connection->push(protocol::Message{
      ch.connection->vsn() == protocol::Vsn::v2 ? std::optional<std::string>(ch.join_ref)
                                                : std::nullopt,
      std::nullopt, ch.topic, std::string(protocol::events::kSystem), std::move(payload)});
}

std::vector<std::string> Hub::primary_key(const Relation& rel) const {
  if (const CachedInfo* ci = info_of(rel.oid); ci && ci->known) return ci->info.primary_key;
  if (rel.replica_identity != 'f') return relation_keys(rel);
  return {};  // under FULL every column is flagged: unknown, so nothing
}

void Hub::deliver(Router::Plan& plan, std::uint64_t first_index) {
  const Transaction& txn = *plan.txn;
  // Counting starts afresh with each transaction, and is skipped for one that cannot exceed the
  // limit (most of them: one part with fewer changes).
  if (txn.part == 0) delivered_in_txn_.clear();
  const std::size_t limit = limits_.max_changes_per_transaction;
  const bool count = limit > 0 && !(txn.part == 0 && txn.last && txn.changes.size() <= limit);
  std::unordered_map<const Relation*, std::string> columns_text;
  for (std::size_t i = 0; i < plan.matches.size(); ++i) {
    auto& matches = plan.matches[i];
    const RowChange& change = txn.changes[i];
    const StreamPosition pos{txn.commit_lsn, first_index + i};
    // Broadcast from Database goes out at its place among the transaction's changes; the router
    // never matches these rows, so no postgres_changes of them exists.
    if (change.relation && is_messages_relation(*change.relation)) {
      deliver_db_broadcast(change, pos);
      continue;
    }
    if (matches.empty()) continue;
    const Relation& rel = *change.relation;

    auto cit = columns_text.find(&rel);
    if (cit == columns_text.end()) cit = columns_text.emplace(&rel, columns_json(rel)).first;
    // The primary key, for old records the subscriber may see only the key of.
    const std::vector<std::string> pk = primary_key(rel);
    const std::string position = epoch_.empty() ? std::string() : position_text(epoch_, pos);
    // The `data` object is serialized once per change (twice at most: full and key-only old
    // record); per channel only the ids around it differ.
    std::string data[2];
    auto data_text = [&](bool key_only) -> const std::string& {
      std::string& d = data[key_only ? 1 : 0];
      if (d.empty()) d = change_data(txn, change, cit->second, pk, key_only, position);
      return d;
    };

    // Channels of one topic with the same ids receive the very same frame.
    std::unordered_map<std::string, FrameSet> frames;
    for (auto& m : matches) {
      Channel* chp = nullptr;
      Resume* resuming = nullptr;
      // A resuming channel (joined or not yet) holds its live changes until its replay is out.
      if (auto rit = resuming_.empty() ? resuming_.end() : resuming_.find(m.subscriber);
          rit != resuming_.end()) {
        resuming = rit->second.get();
        chp = resuming->channel;
      } else if (auto chit = by_id_.find(m.subscriber); chit != by_id_.end()) {
        chp = chit->second;
      } else {
        continue;  // left while the row was being authorized
      }
      Channel& ch = *chp;
      if (count && !resuming && !within_change_limit(ch, rel)) continue;
      std::string ids_text = ids_json(m.ids);
      std::string key = ch.topic;
      key += '\x1f';
      key += ids_text;
      key += m.key_only ? "k" : "f";
      auto [fit, fresh] = frames.try_emplace(std::move(key));
      if (fresh) {
        auto& fs = fit->second;
        fs.topic = ch.topic;
        fs.event = protocol::events::kPostgresChanges;
        fs.payload = R"({"ids":)" + ids_text + R"(,"data":)" + data_text(m.key_only) + "}";
      }
      const OutFrame& frame = fit->second.get(ch.connection->vsn());
      if (resuming) {
        hold_item(*resuming, ResumeItem{frame, std::nullopt, pos});
      } else if (send_change(ch, frame, pos)) {
        ++metrics_.deliveries;
      }
    }
  }
}

void Hub::on_stream_state(bool running, const std::string& reason) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  if (running == stream_running_) return;
  stream_running_ = running;
  log::get(loggers::kServer)
      ->info("change stream {}{}{}", running ? "running" : "down", reason.empty() ? "" : ": ",
             reason);
  // Tell every postgres_changes subscriber; collect first, pushes do not re-enter the hub.
  std::vector<Channel*> affected;
  for (auto& [id, ch] : by_id_) {
    if (ch->pg != PgState::none) affected.push_back(ch);
  }
  for (Channel* ch : affected) {
    if (running) {
      ch->pg = PgState::subscribed;
      push_system(
          *ch, system_payload("postgres_changes", "ok", "Subscribed to PostgreSQL", ch->sub_topic));
    } else {
      ch->pg = PgState::waiting;
      push_system(*ch, system_payload("postgres_changes", "error",
                                      "Realtime was unable to connect to the project database",
                                      ch->sub_topic));
    }
  }
}

}  // namespace rtsync::server::realtime
