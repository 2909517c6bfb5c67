// The realtime server's shared state: topics and their members, the postgres_changes router,
// metrics, and the change-stream sink that turns decoded transactions into frames.
//
// Delivery of a transaction (ChangeSink::on_transaction): route → one RowAuthorizer call for the
// whole transaction (one request per auth class) → group matches by (topic, ids) and serialize
// each group's frame once per wire format, shared by every receiving session → done(). So the
// stream confirms a position only after its changes were handed to the sessions, or were refused
// by an authorization answer. A failed authorization (or relation lookup) is not an answer: it is
// retried with backoff (timers::AuthorizeRetry: 0.1 s doubling to every 2 s) for as long as
// PostgreSQL is away, holding the transaction and every later one; the stream stops handing on
// more once max_in_flight() are held, and stops reading once its own queue is full, so memory
// stays bounded while delivery waits. Only an error the authorizer calls permanent (the same
// rows fail the same way) ends, once kPermanentErrorAttempts answers were such errors (an
// outage's retries in between do not count), in refusing those rows (counted as drop reason
// `authorizer_failed`).
//
// Broadcast from Database (docs/database-broadcast.md): an INSERT into realtime.messages in a
// transaction becomes a broadcast to `realtime:<topic>` (private rows to the private channel of
// that name only, public rows to the public one only), sent at its place among the
// transaction's changes — so in commit order with postgres_changes, and confirmed to the slot
// only once handed on, like them. Those rows are never routed as postgres_changes.
//
// Pipelining: up to RealtimeLimits::max_transactions_in_flight transactions are accepted at once
// and authorized concurrently, but they are delivered (and `done` called) strictly in the order
// they arrived (commit order): a transaction whose answer came back early waits for the ones
// before it. Every session therefore sees changes in commit order.
//
// Thread safety: everything runs on the server loop (the RowAuthorizer calls back on it too);
// checked in debug builds (rtsync/core/loop_check.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/protocol/message.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/change_feed.hpp"
#include "rtsync/server/channel_authorizer.hpp"
#include "rtsync/server/message_store.hpp"
#include "rtsync/server/realtime/channel.hpp"
#include "rtsync/server/realtime/cluster_bus.hpp"
#include "rtsync/server/realtime/history.hpp"
#include "rtsync/server/realtime/limits.hpp"
#include "rtsync/server/realtime/metrics.hpp"
#include "rtsync/server/realtime/presence.hpp"
#include "rtsync/server/realtime/router.hpp"
#include "rtsync/server/realtime/session_io.hpp"
#include "rtsync/server/row_authorizer.hpp"

namespace rtsync::server::realtime {

struct DbBroadcast;

// A broadcast to fan out: a JSON payload ({type, event, payload[, meta]}) or a binary user
// broadcast (kind 3 in → kind 4 out to v2 sockets, JSON to v1 sockets when JSON-encoded).
struct BroadcastMessage {
  std::string topic;  // "realtime:room1"
  bool is_private = false;
  // Exactly one of these:
  std::optional<json::value> json_payload;
  std::optional<protocol::UserBroadcast> binary;
  // The message's id (meta.id) when it has one: a realtime.messages row's id, or the `id` a REST
  // broadcast carried. A channel that replayed a message of that id does not get it again.
  std::string id;
  // Broadcast from Database: the row's stream position (also in meta.position), when the hub has
  // an epoch.
  std::optional<StreamPosition> position;
};

// A frame or broadcast a resuming join holds (or replays), in stream order.
struct ResumeItem {
  std::optional<OutFrame> frame;  // a postgres_changes frame for the join's socket
  std::optional<BroadcastMessage> broadcast;
  std::optional<StreamPosition> position;  // none: a user broadcast (no stream position)
};

// How a resume's preparation ended (Hub::begin_resume), handed to the connection on the loop for
// its join reply; the hub then writes the replay and the held items (Hub::resume_joined).
struct ResumeOutcome {
  bool resumed = false;
  std::string_view outcome = resume_outcome::kResumed;  // a resume_outcome:: name
  std::string reason;                                   // why not (a gap)
  StreamPosition head;                                  // the join reply's head
  std::size_t replayed = 0;  // the changes that will follow the reply (resumed only)
};

// Live broadcasts of one topic collected while a join with replay waits for its stored
// messages (Connection), so that none is lost between the replay query and the join: at most
// `limit` of them, then `overflowed` (the join fails rather than miss one).
struct HeldBroadcasts {
  std::vector<BroadcastMessage> messages;  // in commit (arrival) order
  std::size_t limit = 0;                   // most messages held
  bool overflowed = false;                 // more arrived: `messages` was emptied
};

// What trimming an old record to its key needs beyond the pgoutput Relation: the primary key
// (pgoutput flags EVERY column as key under REPLICA IDENTITY FULL).
struct RelationInfo {
  std::vector<std::string> primary_key;
};

class RelationInfoSource {
 public:
  using Infos = std::unordered_map<std::uint32_t, RelationInfo>;
  virtual ~RelationInfoSource() = default;
  // Asynchronous; `done` runs on the server loop. Missing oids are simply absent.
  virtual void lookup(std::vector<std::uint32_t> oids, std::function<void(Result<Infos>)> done) = 0;
};

class Hub final : public ChangeSink {
 public:
  // `authorizer` may be null (no PostgreSQL: every INSERT/UPDATE is treated as not visible).
  Hub(core::Scheduler& scheduler, const auth::JwtVerifier& verifier, RowAuthorizer* authorizer,
      RealtimeLimits limits = {});
  ~Hub() override;
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  core::Scheduler& scheduler() noexcept { return scheduler_; }
  const auth::JwtVerifier& verifier() const noexcept { return verifier_; }
  const RealtimeLimits& limits() const noexcept { return limits_; }
  // How often a resume's replay may move its head before its reply (each time live changes
  // overflowed what a join may hold while it was checked); then the join is a gap (gap_overflow).
  static constexpr int kMaxReplayExtensions = 8;
  Metrics& metrics() noexcept { return metrics_; }
  const Router& router() const noexcept { return router_; }
  PresenceTracker& presence() noexcept { return presence_; }

  // Private channels' policy checks (docs/private-channels.md). Null (the default, and without
  // PostgreSQL): private joins are refused with Supabase's database-unavailable reason and
  // private REST messages are skipped. Not owned; must outlive its use or be reset first.
  void set_channel_authorizer(ChannelAuthorizer* authorizer) noexcept {
    channel_authorizer_ = authorizer;
  }
  ChannelAuthorizer* channel_authorizer() const noexcept { return channel_authorizer_; }

  // ---- channels (called by Connection) ----
  std::uint64_t next_channel_id() noexcept { return ++last_channel_id_; }
  void add_member(Channel& ch);
  // Also untracks the channel's presence (its leave goes out with the topic's next diff).
  void remove_member(Channel& ch);
  // The channels of a fan-out namespace (Channel::member_key); null when there are none.
  const std::vector<Channel*>* member_list(std::string_view member_key) const;
  // Registers the channel's postgres_changes bindings (no-op without bindings) and answers with
  // the pg state it is now in.
  PgState subscribe_changes(Channel& ch);
  void unsubscribe_changes(Channel& ch);
  void update_auth(Channel& ch);
  std::size_t members(std::string_view member_key) const;

  // Fans out to every member of the topic; `sender` is skipped unless it joined with self, and so
  // is a member of a private topic whose token may not read its broadcasts (counted as drop
  // `unauthorized`), or a channel that already replayed `msg.id`. Also hands a copy to every
  // HeldBroadcasts of the topic. Returns the number of sessions the frame was handed to.
  std::size_t broadcast(const BroadcastMessage& msg, const Channel* sender);
  // A broadcast another node of the cluster received: fanned out here like one from REST (no
  // sender), and not sent back to the bus.
  std::size_t broadcast_from_node(const BroadcastMessage& msg);
  // The other nodes of a cluster (null: a single node). Not owned; reset before it goes.
  void set_cluster_bus(ClusterBus* bus) noexcept { bus_ = bus; }
  ClusterBus* cluster_bus() const noexcept { return bus_; }
  // Sends `msg` to `ch` alone (held broadcasts, once the join completed): false when the channel
  // replayed it already, its socket cannot carry it, or the session refused it.
  bool broadcast_to(Channel& ch, const BroadcastMessage& msg);
  // Starts / stops collecting the live broadcasts of `member_key` into `held` (a join waiting
  // for its replay). `held` must outlive the registration.
  void hold(const std::string& member_key, HeldBroadcasts* held);
  void unhold(const std::string& member_key, HeldBroadcasts* held);

  // Where replays read stored messages from (null: a replay fails with the reference's
  // "unable to replay" join error). Not owned.
  void set_message_store(MessageStore* store) { message_store_ = store; }
  MessageStore* message_store() const noexcept { return message_store_; }
  // xids of the transactions with Broadcast-from-Database messages handed on in the last
  // kRecentXidWindow (at most kRecentXids): what a replay's snapshot must see, so that no message
  // delivered before a join's hold began is missing from its replay (see MessageStore::replay).
  std::vector<std::uint32_t> recent_message_xids() const;
  static constexpr core::Duration kRecentXidWindow = std::chrono::seconds(2);
  static constexpr std::size_t kRecentXids = 256;

  // Without a source (unit tests), an old record's key is the Relation's key columns (when the
  // identity is not FULL; under FULL nothing is known and a key-only old record is `{}`). Facts
  // are re-read after `ttl`.
  void set_relation_info(RelationInfoSource* source, core::Duration ttl = std::chrono::seconds(1)) {
    relation_info_ = source;
    relation_info_ttl_ = ttl;
  }

  // ---- resumable change streams (docs/resume.md) ----
  // The epoch of the slot's history (empty: no change stream, positions are off) and where the
  // stream starts: positions before `floor` are gaps. Empties the history. Transactions that
  // committed before `live_from` (the WAL position when the server started) are *catch-up*:
  // decoded again after a restart, they go into the history for resuming joins and are sent
  // live to no one (the previous run delivered them, or they committed while no server ran).
  void set_epoch(std::string epoch, StreamPosition floor, Lsn live_from = 0);
  const std::string& epoch() const noexcept { return epoch_; }
  // The head a fresh join gets: the end of the last transaction accepted into the pipeline (every
  // later one is routed against subscriptions made now), and never before the catch-up's end.
  StreamPosition head() const noexcept {
    return std::max(accepted_end_, StreamPosition{live_from_, 0});
  }
  // Every change up to here was handed to the sessions (the heartbeat reply's position).
  StreamPosition delivered() const noexcept { return delivered_end_; }
  ChangeHistory& history() noexcept { return history_; }
  // Starts a resume of `ch` (not yet a member; its Connection keeps it alive until the outcome or
  // end_resume) from `from`, whose epoch the caller checked and the history covers: subscribes
  // its bindings (returns the pg state), holds its live frames and broadcasts, waits until the
  // head is delivered, authorizes the history after `from` under the channel's token (at most
  // max_transactions_in_flight checks at once) and calls `done` once (asynchronously, on the
  // loop), unless end_resume came first.
  PgState begin_resume(Channel& ch, StreamPosition from, std::function<void(ResumeOutcome)> done);
  // After `done`, once the join reply is out and `ch` is a member: writes the replayed changes,
  // then the held items, paced by the socket's queue (bursts up to half of max_queued_frames /
  // max_queued_bytes, the next once it drained to a quarter: Connection::when_drained), while
  // live items are still held; then live delivery takes over. Held items count against the
  // socket's queue limits: past them the socket is closed as a slow consumer.
  void resume_joined(Channel& ch);
  // Ends the resume of `ch`, if any (the join went away, or its replay is written). Does not
  // unsubscribe. remove_member calls it.
  void end_resume(Channel& ch);
  // For a joined channel still writing its resume: the position up to which every change it may
  // see was handed to its socket (the heartbeat reply must not claim more). nullopt otherwise.
  std::optional<StreamPosition> resume_handed(const Channel& ch) const;
  // ChangeSink: the slot is confirmed no further than the history's floor.
  std::optional<Lsn> confirm_limit() override;

  // ---- change stream ----
  void on_transaction(std::shared_ptr<const Transaction> txn, std::function<void()> done) override;
  void on_stream_state(bool running, const std::string& reason) override;
  void on_stream_position(Lsn lsn) override;
  bool wants_stream_position() override;
  void set_status_request(std::function<void()> request) override {
    status_request_ = std::move(request);
  }
  std::size_t max_in_flight() const override { return limits_.max_transactions_in_flight; }
  // The change feed lost transactions before `floor` (a cluster node found a hole in what it
  // read from the leader): history restarts at `floor`, so a resume from before it is a gap, and
  // every socket with a postgres_changes or database-broadcast subscription is closed (1012,
  // `reason`): its client rejoins, is told the gap and refetches (docs/resume.md). Nothing may be
  // in flight (the caller feeds the hub and waits for each `done`).
  void feed_gap(StreamPosition floor, std::string_view reason);
  // Transactions accepted but not yet delivered (waiting for authorization or for earlier ones).
  std::size_t in_flight() const noexcept { return pipeline_.size(); }
  bool stream_running() const noexcept { return stream_running_; }

  // System message payload helpers.
  static json::value system_payload(std::string_view extension, std::string_view status,
                                    std::string_view message, std::string_view channel);

 private:
  // One accepted transaction on its way through the pipeline.
  struct Pending {
    std::shared_ptr<const Transaction> txn;
    std::uint64_t first_index = 1;  // position index of txn->changes[0]
    bool catch_up = false;          // committed before live_from_: history only
    std::function<void()> done;
    std::shared_ptr<Router::Plan> plan;  // set once routed
    bool ready = false;                  // authorized (or nothing to authorize): deliverable
    core::Timer retry;                   // timers::AuthorizeRetry
    // Row-check answers that were errors no retry would fix; an outage's do not count.
    int permanent_failures = 0;
  };
  void route_when_facts_known(const std::shared_ptr<Pending>& p, int attempt);
  void route_and_authorize(const std::shared_ptr<Pending>& p);
  void authorize(std::shared_ptr<Pending> p, int attempt);
  // Runs `again` with `p` after retry_delay(attempt), unless `p` left the pipeline meanwhile.
  void retry_later(const std::shared_ptr<Pending>& p, int attempt, std::string_view what,
                   const Error& error, std::function<void(const std::shared_ptr<Pending>&)> again);
  static core::Duration retry_delay(int attempt);
  // Delivers the ready prefix of the pipeline, in order.
  void drain();
  void deliver(Router::Plan& plan, std::uint64_t first_index);
  // The primary key columns of `rel` as far as known (see deliver).
  std::vector<std::string> primary_key(const Relation& rel) const;
  // A live frame or broadcast for `ch`: dropped when at or before its live_after, held when the
  // channel is resuming, else sent. True when sent.
  bool send_change(Channel& ch, const OutFrame& frame, StreamPosition pos);
  struct Resume;
  void start_replay(const std::shared_ptr<Resume>& r);
  // Appends the history entries after `after` up to the resume's head as steps, routed for its
  // channel alone, and queues their row checks.
  void add_replay_steps(Resume& r, StreamPosition after);
  // Moves the head of a replay whose held live changes overflowed to what is delivered now,
  // dropping the held changes it covers (the caller adds the steps in between).
  void move_head(Resume& r);
  // Asks the next row checks of the replay, then answers once all came back.
  void ask_more(const std::shared_ptr<Resume>& r);
  // Counts the replay and hands the outcome to the connection.
  void answer_resume(const std::shared_ptr<Resume>& r);
  // The item change `i` of a replayed transaction is for the channel (nullopt: none); without
  // `build` a postgres_changes item has no frame (counting only).
  std::optional<ResumeItem> replay_item(Resume& r, const HistoryEntry& entry,
                                        const std::shared_ptr<Router::Plan>& plan, std::size_t i,
                                        bool build);
  // Takes the resume's next item to write (the replay's, then the held ones) into its `next`;
  // false when there is none.
  bool take_next(Resume& r);
  // Writes the next items of a resume the socket's queue has room for (see resume_joined).
  void write_resume(const std::shared_ptr<Resume>& r);
  void hold_item(Resume& r, ResumeItem item);
  void forget(Resume& r);
  void check_resumes();
  // What an item adds to a socket's queue (a broadcast's frame is estimated from its payload).
  static std::size_t item_bytes(const ResumeItem& item);
  // Counts a delivery toward max_changes_per_transaction; false when the change must not go out
  // (the subscriber got, or now gets, the "Too many changes" message instead).
  bool within_change_limit(Channel& ch, const Relation& rel);
  void push_system(Channel& ch, json::value payload);
  // broadcast() without counting an accepted message (also what Broadcast from Database uses).
  std::size_t fan_out(const BroadcastMessage& msg, const Channel* sender);
  // A realtime.messages insert of the transaction being delivered, broadcast.
  void deliver_db_broadcast(const RowChange& change, StreamPosition pos);
  // The broadcast of a realtime.messages row, with its position in meta when there is an epoch.
  BroadcastMessage db_broadcast_message(const DbBroadcast& b, StreamPosition pos) const;
  static constexpr int kPermanentErrorAttempts = 8;  // 0.1+0.2+0.4+0.8+1.6+2+2 s of retries
  struct CachedInfo {
    RelationInfo info;
    bool known = false;
    core::TimePoint fetched{};
  };
  const CachedInfo* info_of(std::uint32_t oid) const;

  core::Scheduler& scheduler_;
  const auth::JwtVerifier& verifier_;
  RowAuthorizer* authorizer_;
  ChannelAuthorizer* channel_authorizer_ = nullptr;
  RealtimeLimits limits_;
  Metrics metrics_;
  Router router_;
  PresenceTracker presence_{*this};
  bool stream_running_ = false;
  std::string epoch_;
  Lsn live_from_ = 0;
  std::function<void()> status_request_;  // the stream's: a status update soon
  StreamPosition accepted_end_{};
  StreamPosition delivered_end_{};
  std::uint64_t next_index_ = 1;  // index of the next change of the transaction being accepted
  ChangeHistory history_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Resume>> resuming_;  // by channel id
  std::unordered_map<std::string, std::vector<Resume*>> resuming_keys_;  // by member key
  std::uint64_t last_channel_id_ = 0;
  std::unordered_map<std::string, std::vector<Channel*>> members_;
  std::unordered_map<std::uint64_t, Channel*> by_id_;
  std::unordered_map<std::string, std::vector<HeldBroadcasts*>> held_;
  struct RecentXid {
    std::uint32_t xid;
    core::TimePoint at;
  };
  std::deque<RecentXid> recent_xids_;
  bool txn_had_messages_ = false;  // set by deliver_db_broadcast for the transaction in deliver
  MessageStore* message_store_ = nullptr;
  ClusterBus* bus_ = nullptr;
  RelationInfoSource* relation_info_ = nullptr;
  core::Duration relation_info_ttl_ = std::chrono::seconds(1);
  std::unordered_map<std::uint32_t, CachedInfo> relation_cache_;
  std::deque<std::shared_ptr<Pending>> pipeline_;  // arrival (commit) order
  // Changes delivered per (channel, table) in the transaction being delivered; only counted for
  // transactions that could exceed the limit.
  struct ChannelTable {
    std::uint64_t channel;
    std::uint32_t table;
    friend bool operator==(const ChannelTable&, const ChannelTable&) = default;
  };
  struct ChannelTableHash {
    std::size_t operator()(const ChannelTable& k) const noexcept {
      return std::hash<std::uint64_t>()(k.channel * 0x9E3779B97F4A7C15ull ^ k.table);
    }
  };
  std::unordered_map<ChannelTable, std::size_t, ChannelTableHash> delivered_in_txn_;
  bool draining_ = false;
  // Guards callbacks of an authorization still in flight when the hub goes away.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rtsync::server::realtime
