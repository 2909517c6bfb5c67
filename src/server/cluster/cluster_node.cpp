#include "rtsync/server/cluster/cluster_node.hpp"

#include <limits>

#include "rtsync/core/log.hpp"
#include "rtsync/server/cluster/names.hpp"

namespace rtsync::server::cluster {

namespace {

constexpr std::size_t kReadCount = 256;
constexpr auto kReadBlockMs = "1000";
constexpr auto kRetryDelay = std::chrono::milliseconds(250);
// The `prev` of a leader's first entry on an empty stream (see on_read).
constexpr std::string_view kUnknownPrev = "?";

// Redis refuses an entry id at or below the stream's last: the entry is there already (or a later
// one is), which for an append by position means another leader appended it.
bool already_appended(const RedisReply& r) {
  return r.is_error() && r.str.find("equal or smaller") != std::string::npos;
}

// The XREAD id just before position (lsn, 0): entries of that transaction are after it. Without a
// floor (the slot's epoch could not be read: no history, no positions) only what comes next.
std::string read_from(Lsn floor) {
  if (floor == 0) return "$";
  return std::to_string(floor - 1) + "-" +
         std::to_string(std::numeric_limits<std::uint64_t>::max());
}

}  // namespace

ClusterNode::ClusterNode(boost::asio::io_context& io, core::Scheduler& scheduler,
                         realtime::Hub& hub, ClusterOptions options,
                         std::function<void()> start_stream, std::function<void()> stop_stream)
    : scheduler_(scheduler),
      hub_(hub),
      options_(std::move(options)),
      start_stream_(std::move(start_stream)),
      stop_stream_(std::move(stop_stream)) {
  RedisOptions ro;
  ro.endpoint = options_.redis;
  cmd_ = std::make_unique<RedisConnection>(io, scheduler, ro);
  read_ = std::make_unique<RedisConnection>(io, scheduler, ro);
  sub_ = std::make_unique<RedisSubscriber>(
      io, scheduler, ro, std::vector<std::string>{key("broadcast"), key("presence")});
  leadership_ = std::make_unique<Leadership>(
      io, scheduler, LeadershipOptions{options_.conninfo, options_.slot, options_.leader_check});
}

ClusterNode::~ClusterNode() {
  *alive_ = false;
}

std::string ClusterNode::key(std::string_view what) const {
  return "rtsync:" + options_.slot + ":" + std::string(what);
}

std::string_view ClusterNode::role_name() const noexcept {
  switch (role_) {
    case Role::standby:
      return "standby";
    case Role::taking_over:
      return "taking_over";
    case Role::leader:
      return "leader";
  }
  return "standby";
}

bool ClusterNode::redis_up() const noexcept {
  return cmd_->connected() && read_->connected() && sub_->subscribed();
}

std::uint64_t ClusterNode::redis_bytes() const noexcept {
  return cmd_->bytes_sent() + cmd_->bytes_received() + read_->bytes_sent() +
         read_->bytes_received();
}

void ClusterNode::start(Lsn floor) {
  stopped_ = false;
  floor_ = floor;
  auto alive = alive_;
  cmd_->set_on_state([this, alive](bool up, const std::string&) {
    if (!*alive || stopped_) return;
    if (!up) return;
    refresh_liveness();
    if (role_ == Role::leader) {
      reappend_ = true;
      send_appends();
    }
  });
  read_->set_on_state([this, alive](bool up, const std::string& reason) {
    if (!*alive || stopped_ || role_ == Role::leader) return;
    hub_.on_stream_state(up, up ? "reading the cluster's change stream" : "Redis: " + reason);
    if (up) read_more();
  });
  sub_->set_on_message([this, alive](std::string_view channel, std::string_view payload) {
    if (*alive && !stopped_) on_pubsub(channel, payload);
  });
  sub_->set_on_state([this, alive](bool up, const std::string&) {
    if (*alive && !stopped_) on_pubsub_state(up);
  });
  leadership_->set_on_change([this, alive](bool leader) {
    if (*alive && !stopped_) on_leadership(leader);
  });
  cmd_->start();
  read_->start();
  sub_->start();
  leadership_->start();
  liveness_ = scheduler_.schedule(options_.liveness_refresh, timers::Liveness,
                                  [this] { refresh_liveness(); });
  log::get(loggers::kCluster)
      ->info("cluster node {} on {} (slot {})", options_.node_id, to_string(options_.redis),
             options_.slot);
}

void ClusterNode::stop() {
  if (stopped_) return;
  // Leave gracefully: the others drop this node's presences now rather than at its key's expiry.
  if (cmd_->connected()) {
    cmd_->command({"PUBLISH", key("presence"),
                   encode_presence(NodePresence{options_.node_id, true, false, {}})},
                  [](Result<RedisReply>) {});
    cmd_->command({"DEL", key("node:" + options_.node_id)}, [](Result<RedisReply>) {});
  }
  stopped_ = true;
  liveness_.cancel();
  read_retry_.cancel();
  append_retry_.cancel();
  leadership_->stop();
  sub_->stop();
  read_->stop();
  cmd_->stop();
}

// ---- leadership ----

void ClusterNode::on_leadership(bool leader) {
  if (leader) {
    if (role_ != Role::standby) return;
    // Read what the previous leader appended to the end first: the slot may be confirmed past
    // what this node has read, and those transactions are only in the stream now.
    role_ = Role::taking_over;
    log::get(loggers::kCluster)->info("taking over: reading the change stream to its end");
    read_more();
    hand_on();
    return;
  }
  if (role_ == Role::leader) {
    stop_stream_();
    // Appends still waiting keep going out; the reader resumes after what this node handed on.
    if (handed_) read_last_ = *handed_;
  }
  role_ = Role::standby;
  tail_.reset();
  tail_asked_ = false;
  last_decoded_.clear();
  hub_.on_stream_state(read_->connected(), "standby: reading the cluster's change stream");
  read_more();
}

void ClusterNode::become_leader() {
  if (role_ != Role::taking_over) return;
  if (!tail_) return read_tail();
  role_ = Role::leader;
  log::get(loggers::kCluster)
      ->info("leader: streaming the slot after {}", handed_ ? to_string(*handed_) : "nothing");
  start_stream_();
}

void ClusterNode::read_tail() {
  if (tail_asked_) return;
  tail_asked_ = true;
  auto alive = alive_;
  cmd_->command(
      {"XREVRANGE", key("changes"), "+", "-", "COUNT", "1"}, [this, alive](Result<RedisReply> r) {
        if (!*alive || stopped_) return;
        tail_asked_ = false;
        if (!r.ok() || r->is_error() || r->type != RedisReply::Type::array) {
          read_retry_ =
              scheduler_.schedule(kRetryDelay, timers::ClusterRetry, [this] { become_leader(); });
          return;
        }
        const auto& entries = r->elements;
        tail_ = entries.empty() || entries[0].elements.empty() ? std::string(kUnknownPrev)
                                                               : entries[0].elements[0].str;
        become_leader();
      });
}

// ---- the leader's stream ----

void ClusterNode::on_transaction(std::shared_ptr<const Transaction> txn,
                                 std::function<void()> done) {
  const EntryId id = entry_id(*txn);
  std::string prev = last_decoded_.empty() ? tail_.value_or("") : last_decoded_;
  last_decoded_ = to_string(id);
  if (!handed_ || id > *handed_) {
    appends_.push_back(Append{id, std::move(prev), encode_transaction(*txn)});
    while (appends_.size() > options_.max_pending_appends && sent_ == 0) {
      // Redis has been away too long: the entry is lost for the other nodes, which see the
      // hole in the `prev` chain and tell their subscribers.
      appends_.pop_front();
      ++metrics_.append_dropped;
    }
    send_appends();
  }
  to_hub(std::move(txn), std::move(done));
}

void ClusterNode::send_appends() {
  if (role_ != Role::leader && appends_.empty()) return;
  if (!cmd_->connected() || stopped_) return;
  auto alive = alive_;
  auto xadd = [this](const Append& a) {
    return std::vector<std::string>{
        "XADD",          key("changes"), "MAXLEN", "~", std::to_string(options_.stream_max_len),
        to_string(a.id), "prev",         a.prev,   "d", a.body};
  };
  if (reappend_ && last_acked_) {
    // After a reconnect, Redis may have restarted empty: the last entry goes in again (refused
    // if it is still there), so a reader that had not read it yet still gets it.
    cmd_->command(xadd(*last_acked_), [](Result<RedisReply>) {});
  }
  reappend_ = false;
  for (; sent_ < appends_.size(); ++sent_) {
    cmd_->command(xadd(appends_[sent_]), [this, alive](Result<RedisReply> r) {
      if (!*alive || sent_ == 0) return;  // a failure before this reply already reset the batch
      if (r.ok() && (!r->is_error() || already_appended(*r))) {
        last_acked_ = std::move(appends_.front());
        appends_.pop_front();
        --sent_;
        ++metrics_.appended;
        return;
      }
      log::get(loggers::kCluster)
          ->warn("appending to the change stream: {}", r.ok() ? r->str : r.error().message);
      sent_ = 0;  // everything after it is sent again, in order
      if (r.ok()) {
        append_retry_ =
            scheduler_.schedule(kRetryDelay, timers::ClusterRetry, [this] { send_appends(); });
      }
    });
  }
}

std::optional<Lsn> ClusterNode::confirm_limit() {
  auto limit = hub_.confirm_limit();
  if (appends_.empty()) return limit;
  const Lsn oldest = appends_.front().id.lsn;
  return limit ? std::min(*limit, oldest) : oldest;
}

void ClusterNode::on_stream_position(Lsn lsn) {
  hub_.on_stream_position(lsn);
}

void ClusterNode::on_stream_state(bool running, const std::string& reason) {
  if (role_ == Role::leader) hub_.on_stream_state(running, reason);
}

void ClusterNode::to_hub(std::shared_ptr<const Transaction> txn, std::function<void()> done) {
  const EntryId id = entry_id(*txn);
  if (handed_ && id <= *handed_) return done();
  handed_ = id;
  hub_.on_transaction(std::move(txn), std::move(done));
}

// ---- the standbys' reader ----

void ClusterNode::read_more() {
  if (reading_ || stopped_ || role_ == Role::leader || !read_->connected()) return;
  if (ready_.size() + with_hub_ > 2 * hub_.max_in_flight()) return;  // hand_on calls again
  reading_ = true;
  std::vector<std::string> args{"XREAD", "COUNT", std::to_string(kReadCount)};
  if (role_ == Role::standby) {
    args.insert(args.end(), {"BLOCK", kReadBlockMs});
  }
  args.insert(args.end(),
              {"STREAMS", key("changes"), read_last_ ? to_string(*read_last_) : read_from(floor_)});
  auto alive = alive_;
  read_->command(std::move(args), [this, alive](Result<RedisReply> r) {
    if (*alive && !stopped_) on_read(std::move(r));
  });
}

void ClusterNode::on_read(Result<RedisReply> r) {
  reading_ = false;
  if (!r.ok() || r->is_error()) {
    log::get(loggers::kCluster)
        ->warn("reading the change stream: {}", r.ok() ? r->str : r.error().message);
    read_retry_ = scheduler_.schedule(kRetryDelay, timers::ClusterRetry, [this] { read_more(); });
    return;
  }
  std::size_t count = 0;
  if (r->type == RedisReply::Type::array && !r->elements.empty() &&
      r->elements[0].elements.size() == 2) {
    for (const auto& e : r->elements[0].elements[1].elements) {
      if (e.elements.size() != 2) continue;
      ++count;
      const std::string& id_text = e.elements[0].str;
      auto id = parse_entry_id(id_text);
      std::string_view prev, body;
      const auto& fields = e.elements[1].elements;
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "prev") prev = fields[i + 1].str;
        if (fields[i].str == "d") body = fields[i + 1].str;
      }
      if (!id.ok()) {
        log::get(loggers::kCluster)
            ->error("change stream entry {}: {}", id_text, id.error().message);
        continue;
      }
      // `prev` names the transaction the leader decoded before this one. One this node never
      // read (after its last entry) means entries are missing here: trimmed, or lost with a
      // Redis restart. An earlier one is fine: an entry of another leader's in between was read.
      bool hole = false;
      if (prev == kUnknownPrev) {
        // A leader that began on an empty stream cannot link its first entry: whatever this node
        // had not read of the lost stream cannot be ruled out.
        hole = read_last_.has_value();
      } else if (auto p = parse_entry_id(prev); !p.ok()) {
        hole = true;
      } else if (read_last_) {
        hole = *p > *read_last_;
      } else {
        // The first entry read: the ones between this node's floor and it must all be there.
        hole = floor_ != 0 && *p >= EntryId{floor_, 0};
      }
      read_last_ = *id;
      ++metrics_.read;
      if (hole) {
        ++metrics_.gaps;
        ready_.push_back(Ready{nullptr, *id, std::string(prev)});
      }
      if (handed_ && *id <= *handed_) continue;
      auto txn = decode_transaction(body, relations_);
      if (!txn.ok()) {
        // Unreadable: a hole like any other, told rather than skipped.
        ++metrics_.gaps;
        log::get(loggers::kCluster)
            ->error("change stream entry {}: {}", id_text, txn.error().message);
        ready_.push_back(Ready{nullptr, *id, "an unreadable entry"});
        continue;
      }
      ready_.push_back(Ready{std::move(txn.value()), *id, {}});
    }
  }
  read_at_end_ = count < kReadCount;
  hand_on();
  read_more();
}

void ClusterNode::hand_on() {
  if (handing_) {
    hand_again_ = true;
    return;
  }
  handing_ = true;
  do {
    hand_again_ = false;
    while (!ready_.empty() && with_hub_ < hub_.max_in_flight()) {
      auto& front = ready_.front();
      if (!front.txn) {
        if (with_hub_ > 0) break;  // the hub's pipeline empties first (Hub::feed_gap)
        auto at = front.id;
        auto why = front.prev.empty() || front.prev == "an unreadable entry"
                       ? std::string(front.prev.empty() ? "entries missing" : front.prev)
                       : "entries after " + front.prev + " missing from the cluster's stream";
        ready_.pop_front();
        hub_.feed_gap(realtime::StreamPosition{at.lsn, 0}, why);
        continue;
      }
      auto txn = std::move(front.txn);
      ready_.pop_front();
      ++with_hub_;
      auto alive = alive_;
      to_hub(std::move(txn), [this, alive] {
        if (!*alive) return;
        --with_hub_;
        hand_on();
      });
    }
  } while (hand_again_);
  handing_ = false;
  if (role_ == Role::taking_over && ready_.empty() && with_hub_ == 0 && read_at_end_ && !reading_) {
    return become_leader();
  }
  read_more();
}

// ---- liveness, broadcasts, presence ----

void ClusterNode::refresh_liveness() {
  if (stopped_) return;
  liveness_ = scheduler_.schedule(options_.liveness_refresh, timers::Liveness,
                                  [this] { refresh_liveness(); });
  if (!cmd_->connected()) return;
  const auto ttl =
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.liveness_ttl).count();
  cmd_->command(
      {"SET", key("node:" + options_.node_id), std::string(role_name()), "PX", std::to_string(ttl)},
      [](Result<RedisReply>) {});
  if (checking_nodes_ || other_nodes_.empty()) return;
  checking_nodes_ = true;
  std::vector<std::string> args{"MGET"};
  std::vector<std::string> nodes(other_nodes_.begin(), other_nodes_.end());
  for (const auto& n : nodes)
    args.push_back(key("node:" + n));
  auto alive = alive_;
  cmd_->command(std::move(args), [this, alive, nodes](Result<RedisReply> r) {
    if (!*alive || stopped_) return;
    checking_nodes_ = false;
    if (!r.ok() || r->type != RedisReply::Type::array || r->elements.size() != nodes.size()) {
      return;
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (!r->elements[i].is_nil()) continue;
      log::get(loggers::kCluster)->info("node {} is gone: its presences leave", nodes[i]);
      other_nodes_.erase(nodes[i]);
      ++metrics_.nodes_expired;
      hub_.presence().replace_node(nodes[i], {});
    }
  });
}

void ClusterNode::broadcast(const realtime::BroadcastMessage& msg) {
  if (stopped_ || !cmd_->connected()) return;
  ++metrics_.broadcasts_out;
  cmd_->command({"PUBLISH", key("broadcast"), encode_broadcast(options_.node_id, msg)},
                [](Result<RedisReply>) {});
}

void ClusterNode::presence(const realtime::PresenceChange& change) {
  if (stopped_ || !cmd_->connected()) return;
  ++metrics_.presence_out;
  cmd_->command({"PUBLISH", key("presence"),
                 encode_presence(NodePresence{options_.node_id, false, false, {change}})},
                [](Result<RedisReply>) {});
}

void ClusterNode::publish_snapshot() {
  if (!cmd_->connected()) return;
  cmd_->command({"PUBLISH", key("presence"),
                 encode_presence(NodePresence{options_.node_id, true, false,
                                              hub_.presence().local_snapshot()})},
                [](Result<RedisReply>) {});
}

void ClusterNode::on_pubsub_state(bool up) {
  if (!up || !cmd_->connected()) return;
  // Whatever was missed while away converges: every node answers with its whole snapshot, and
  // this node's own goes out (its presences may have expired elsewhere meanwhile).
  cmd_->command({"PUBLISH", key("presence"),
                 encode_presence(NodePresence{options_.node_id, false, true, {}})},
                [](Result<RedisReply>) {});
  publish_snapshot();
}

void ClusterNode::on_pubsub(std::string_view channel, std::string_view payload) {
  if (channel == key("broadcast")) {
    auto b = decode_broadcast(payload);
    if (!b.ok()) {
      log::get(loggers::kCluster)->warn("a broadcast from another node: {}", b.error().message);
      return;
    }
    if (b->node == options_.node_id) return;
    ++metrics_.broadcasts_in;
    hub_.broadcast_from_node(b->message);
    return;
  }
  auto p = decode_presence(payload);
  if (!p.ok()) {
    log::get(loggers::kCluster)->warn("presence from another node: {}", p.error().message);
    return;
  }
  if (p->node == options_.node_id) return;
  ++metrics_.presence_in;
  if (p->request) return publish_snapshot();
  if (p->snapshot) {
    if (p->changes.empty()) {
      other_nodes_.erase(p->node);
    } else {
      other_nodes_.insert(p->node);
    }
    hub_.presence().replace_node(p->node, p->changes);
    return;
  }
  other_nodes_.insert(p->node);
  for (const auto& c : p->changes)
    hub_.presence().apply_remote(p->node, c);
}

}  // namespace rtsync::server::cluster
