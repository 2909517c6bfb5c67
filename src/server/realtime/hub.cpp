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

std::string quoted(std::string_view s) {
  return json::serialize(json::string(s));
}

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
        s += quoted(topic);
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
      s += quoted(topic);
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

}  // namespace

Hub::Hub(core::Scheduler& scheduler, const auth::JwtVerifier& verifier, RowAuthorizer* authorizer,
         RealtimeLimits limits)
    : scheduler_(scheduler), verifier_(verifier), authorizer_(authorizer), limits_(limits) {}

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
  return fan_out(msg, sender);
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
  auto it = members_.find(key);
  if (it == members_.end()) return 0;

  BroadcastFrames frames(msg);
  std::size_t sent = 0;
  for (Channel* ch : it->second) {
    if (ch == sender && !ch->self) continue;
    if (ch->is_private && !ch->rights.broadcast_read.value_or(false)) {
      // Joined on presence read alone: its token may not read this topic's broadcasts.
      metrics_.drop(drop::kUnauthorized);
      continue;
    }
    if (!msg.id.empty() && !ch->replayed_ids.empty() && ch->replayed(msg.id)) {
      metrics_.drop(drop::kReplayDuplicate);
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

void Hub::deliver_db_broadcast(const RowChange& change) {
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
  metrics_.db_broadcast_deliveries += fan_out(to_broadcast_message(*decoded), nullptr);
}

void Hub::on_transaction(std::shared_ptr<const Transaction> txn, std::function<void()> done) {
  RTSYNC_ASSERT_ON_LOOP(scheduler_);
  ++metrics_.transactions;
  metrics_.changes_decoded += txn->changes.size();
  auto p = std::make_shared<Pending>();
  p->txn = std::move(txn);
  p->done = std::move(done);
  pipeline_.push_back(p);
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
  if (p->plan->requests.empty()) {
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
  auto requests = p->plan->requests;  // kept in the plan for a retry
  authorizer_->authorize(
      p->txn, std::move(requests),
      [this, alive = alive_, p, attempt](Result<std::vector<VisibilityResult>> result) {
        if (!*alive) return;
        if (!result.ok()) {
          // No answer is not an answer: the stream is held back (done is not called, so nothing
          // is confirmed) for as long as PostgreSQL is away. Only an error that repeats for the
          // same rows (a policy that fails on them, say) ends in refusing them, counted.
          const bool transient = authorizer_->transient(result.error());
          if (transient || attempt + 1 < kPermanentErrorAttempts) {
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
    deliver(*p->plan);
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

void Hub::deliver(Router::Plan& plan) {
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
    // Broadcast from Database goes out at its place among the transaction's changes; the router
    // never matches these rows, so no postgres_changes of them exists.
    if (change.relation && is_messages_relation(*change.relation)) {
      deliver_db_broadcast(change);
      continue;
    }
    if (matches.empty()) continue;
    const Relation& rel = *change.relation;

    auto cit = columns_text.find(&rel);
    if (cit == columns_text.end()) {
      json::array cols;
      for (const auto& c : rel.columns) {
        cols.push_back(json::object{{"name", c.name}, {"type", c.type_name}});
      }
      cit = columns_text.emplace(&rel, json::serialize(cols)).first;
    }
    // The primary key, for old records the subscriber may see only the key of.
    std::vector<std::string> pk;
    if (const CachedInfo* ci = info_of(rel.oid); ci && ci->known) {
      pk = ci->info.primary_key;
    } else if (rel.replica_identity != 'f') {
      pk = relation_keys(rel);  // under FULL every column is flagged: unknown, so nothing
    }
    // The `data` object is serialized once per change (twice at most: full and key-only old
    // record); per channel only the ids around it differ.
    std::string data[2];
    auto data_text = [&](bool key_only) -> const std::string& {
      std::string& d = data[key_only ? 1 : 0];
      if (!d.empty()) return d;
      d.reserve(256);
      d += R"({"schema":)";
      d += quoted(rel.schema);
      d += R"(,"table":)";
      d += quoted(rel.table);
      d += R"(,"commit_timestamp":)";
      d += quoted(txn.commit_timestamp);
      d += R"(,"type":")";
      d += type_name(change.kind);
      d += R"(","columns":)";
      d += cit->second;
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
      d += R"(,"errors":null})";
      return d;
    };

    // Channels of one topic with the same ids receive the very same frame.
    std::unordered_map<std::string, FrameSet> frames;
    for (auto& m : matches) {
      auto chit = by_id_.find(m.subscriber);
      if (chit == by_id_.end()) continue;  // left while the row was being authorized
      Channel& ch = *chit->second;
      if (count && !within_change_limit(ch, rel)) continue;
      std::string ids_text = "[";
      for (std::size_t k = 0; k < m.ids.size(); ++k) {
        if (k) ids_text += ',';
        ids_text += std::to_string(m.ids[k]);
      }
      ids_text += ']';
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
      if (ch.connection->send(fit->second.get(ch.connection->vsn()))) ++metrics_.deliveries;
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
