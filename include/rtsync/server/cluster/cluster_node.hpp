// One node of an rtsync cluster: several `rtsync server` processes serving one database behind
// any TCP load balancer, coordinated through Redis (docs/scaling.md §3).
//
// - Leadership (cluster::Leadership): one node streams the replication slot. Its stream's sink is
//   this node: each decoded transaction (or part) is appended to the Redis stream
//   `rtsync:<slot>:changes` under its position ("<commit LSN>-<part>") and handed to the local
//   hub. The slot is confirmed no further than the oldest append Redis has not acknowledged
//   (confirm_limit), so a leader that dies leaves nothing confirmed that the stream lacks.
// - Every other node reads the stream (XREAD) and hands the transactions to its hub, which
//   routes and authorizes them for its own subscribers. Each entry names the position of the
//   transaction the leader decoded before it (`prev`); a reader that never read that one missed
//   entries (trimmed, or lost by a Redis restart without persistence) and tells its subscribers a
//   gap (Hub::feed_gap): nothing is lost silently. After a Redis restart the leader appends its
//   last acknowledged entry again, so a reader that had not read it yet still can.
// - A standby that takes the lock first reads the stream to its end, then streams the slot from
//   its confirmed position; what it decodes again is dropped by position (here, and by Redis,
//   which refuses an entry id at or below the stream's last).
// - Broadcasts and presence go over Pub/Sub (`rtsync:<slot>:broadcast`, `…:presence`); each node
//   keeps a liveness key `rtsync:<slot>:node:<id>` (PX liveness_ttl, refreshed every
//   liveness_refresh) and drops the presences of a node whose key expired.
//
// Thread safety: loop-confined (the hub's loop).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/change_feed.hpp"
#include "rtsync/server/cluster/codec.hpp"
#include "rtsync/server/cluster/leadership.hpp"
#include "rtsync/server/cluster/redis.hpp"
#include "rtsync/server/realtime/cluster_bus.hpp"
#include "rtsync/server/realtime/hub.hpp"

namespace rtsync::server::cluster {

struct ClusterOptions {
  RedisEndpoint redis;
  std::string node_id;   // unique per node
  std::string slot;      // the replication slot: names the keys and the leadership lock
  std::string conninfo;  // the database (the leadership lock's session)
  core::Duration leader_check = std::chrono::seconds(1);
  core::Duration liveness_ttl = std::chrono::seconds(3);
  core::Duration liveness_refresh = std::chrono::seconds(1);
  // The change stream keeps about this many entries (XADD MAXLEN ~).
  std::size_t stream_max_len = 100'000;
  // Appends a leader holds while Redis is away; past it the oldest are dropped (readers are told
  // a gap) rather than the leader's memory growing without bound.
  std::size_t max_pending_appends = 100'000;
};

struct ClusterMetrics {
  std::uint64_t appended = 0;        // entries Redis acknowledged (leader)
  std::uint64_t append_dropped = 0;  // entries dropped while Redis was away (leader)
  std::uint64_t read = 0;            // entries read from the stream (standby)
  std::uint64_t gaps = 0;            // holes found in the stream
  std::uint64_t broadcasts_out = 0, broadcasts_in = 0;
  std::uint64_t presence_out = 0, presence_in = 0;
  std::uint64_t nodes_expired = 0;  // other nodes whose liveness key expired
};

class ClusterNode final : public ChangeSink, public realtime::ClusterBus {
 public:
  // `start_stream` creates the replication stream with this node as its sink; `stop_stream`
  // stops and destroys it (both on the loop).
  ClusterNode(boost::asio::io_context& io, core::Scheduler& scheduler, realtime::Hub& hub,
              ClusterOptions options, std::function<void()> start_stream,
              std::function<void()> stop_stream);
  ~ClusterNode() override;
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // `floor`: the slot's confirmed position, where this node's history starts.
  void start(Lsn floor);
  void stop();

  enum class Role : std::uint8_t { standby, taking_over, leader };
  Role role() const noexcept { return role_; }
  std::string_view role_name() const noexcept;
  bool redis_up() const noexcept;
  const std::string& node_id() const noexcept { return options_.node_id; }
  const ClusterMetrics& metrics() const noexcept { return metrics_; }
  std::uint64_t redis_bytes() const noexcept;

  // ---- ChangeSink: the leader's replication stream ----
  void on_transaction(std::shared_ptr<const Transaction> txn, std::function<void()> done) override;
  std::size_t max_in_flight() const override { return hub_.max_in_flight(); }
  std::optional<Lsn> confirm_limit() override;
  void on_stream_position(Lsn lsn) override;
  bool wants_stream_position() override { return hub_.wants_stream_position(); }
  void set_status_request(std::function<void()> request) override {
    hub_.set_status_request(std::move(request));
  }
  void on_stream_state(bool running, const std::string& reason) override;

  // ---- ClusterBus ----
  void broadcast(const realtime::BroadcastMessage& msg) override;
  void presence(const realtime::PresenceChange& change) override;

 private:
  struct Append {
    EntryId id;
    std::string prev;  // the position of the transaction before it ("" before a tail is known)
    std::string body;
  };
  std::string key(std::string_view what) const;
  void on_leadership(bool leader);
  void become_leader();
  void become_standby();
  // Leader: sends the appends not yet sent (Redis up and the stream's tail known).
  void send_appends();
  void read_tail();
  // Standby / taking over: the next XREAD, and handing what it read to the hub in order.
  void read_more();
  void on_read(Result<RedisReply> r);
  void hand_on();
  // Hands a transaction to the hub unless one at or after its position was handed on already.
  void to_hub(std::shared_ptr<const Transaction> txn, std::function<void()> done);
  void refresh_liveness();
  void on_pubsub(std::string_view channel, std::string_view payload);
  void on_pubsub_state(bool up);
  void publish_snapshot();

  core::Scheduler& scheduler_;
  realtime::Hub& hub_;
  ClusterOptions options_;
  std::function<void()> start_stream_, stop_stream_;
  std::unique_ptr<RedisConnection> cmd_;   // appends, publishes, liveness
  std::unique_ptr<RedisConnection> read_;  // the blocking XREADs
  std::unique_ptr<RedisSubscriber> sub_;   // broadcasts and presence
  std::unique_ptr<Leadership> leadership_;
  Role role_ = Role::standby;
  bool stopped_ = true;
  ClusterMetrics metrics_;

  // What the hub was handed last (either path): later arrivals at or before it are dropped.
  std::optional<EntryId> handed_;
  Lsn floor_ = 0;

  // Leader.
  std::deque<Append> appends_;  // not yet acknowledged, in order; the first `sent_` are in flight
  std::size_t sent_ = 0;
  std::optional<std::string> tail_;  // the stream's last entry when leading began ("?": empty)
  bool tail_asked_ = false;
  std::string last_decoded_;          // position of the last transaction the stream handed us
  std::optional<Append> last_acked_;  // re-appended after Redis comes back (see send_appends)
  bool reappend_ = false;
  core::Timer append_retry_;

  // Reader.
  std::optional<EntryId> read_last_;  // the last entry read (none before the first)
  bool reading_ = false;
  // Read, not yet handed to the hub; an entry without `txn` is a hole before `id` (`prev`: what
  // the entry said came before it).
  struct Ready {
    std::shared_ptr<const Transaction> txn;
    EntryId id;
    std::string prev;
  };
  std::deque<Ready> ready_;
  std::size_t with_hub_ = 0;  // handed, `done` not yet called
  bool handing_ = false, hand_again_ = false;
  RelationCache relations_;
  bool read_at_end_ = false;  // the last XREAD returned less than it asked for
  core::Timer read_retry_;

  // Presence and liveness.
  core::Timer liveness_;
  std::unordered_set<std::string> other_nodes_;  // nodes whose presences this node holds
  bool checking_nodes_ = false;

  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rtsync::server::cluster
