// One websocket connection's protocol state machine (sans-IO): decodes client frames, answers
// heartbeats, joins/leaves channels, verifies tokens, applies per-connection limits, and pushes
// replies and system messages. The transport (src/server/http) feeds it frames and implements
// SessionIo; tests drive it with a fake SessionIo on a ManualScheduler.
//
// Replay (docs/database-broadcast.md): a join of a private channel with config.broadcast.replay
// is answered once the channel's stored messages were read (MessageStore, asynchronously, the loop
// never waits): then the join reply, the stored messages as broadcasts with
// meta {replayed: true, id}, oldest first, then the live broadcasts that arrived meanwhile
// (Hub::hold) and committed after the query's snapshot — so each message once and in commit
// order: a live message whose id was replayed is not sent again, then or later.
// A failed read refuses the join with `UnableToReplayMessages: Realtime was unable to replay
// messages`; replay on a public channel and invalid params are refused at once with the
// reference's strings.
//
// Time: the idle timeout (timers::IdleTimeout) and token expiry re-checks
// (timers::TokenExpiry) run on the Hub's scheduler; message rate windows are computed from
// now(); the presence push budget's second is a timer (timers::RateWindow).
//
// Private channels (docs/private-channels.md): a join with config.private asks the Hub's
// ChannelAuthorizer for the token's read rights on the topic, a first broadcast or track asks for
// its write rights, an access_token push asks for the new token's read rights. While an answer is
// awaited the connection handles no further client message (heartbeats aside): they wait, in
// order, and are handled once it came — as a Phoenix socket waits for a channel's join — so a
// join reply, a broadcast and the replies after them leave in the order the client sent them.
// The authorizer always answers (it bounds the wait); the messages waiting are bounded by
// RealtimeLimits::max_queued_frames / max_queued_bytes (past them the socket is closed, 1008).
//
// Thread safety: confined to the server loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/scheduler.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/protocol/message.hpp"
#include "rtsync/server/auth/jwt.hpp"
#include "rtsync/server/realtime/channel.hpp"
#include "rtsync/server/realtime/hub.hpp"
#include "rtsync/server/realtime/session_io.hpp"

namespace rtsync::server::realtime {

class Connection {
 public:
  // `apikey` is the token verified at the upgrade.
  Connection(Hub& hub, SessionIo& io, protocol::Vsn vsn, auth::VerifiedJwt apikey);
  // Leaves every channel (no frames are sent: the socket is gone).
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void on_text(std::string_view text);
  void on_binary(std::string_view bytes);

  // Server shutdown / PostgreSQL notices for this connection's channels.
  void push(protocol::Message m);
  bool send(const OutFrame& f);
  // The socket's outbound queue (SessionIo::queued_frames / queued_bytes).
  std::size_t queued_frames() const { return io_.queued_frames(); }
  std::size_t queued_bytes() const { return io_.queued_bytes(); }
  // Runs `drained` once a write left at most `frames` frames and `bytes` bytes queued (on the
  // loop, never inside this call). Several waiters share the socket's one notification, armed at
  // the loosest of their thresholds: a waiter checks the queue again and waits anew if it is not
  // short enough for it yet. Dropped when the connection goes away.
  void when_drained(std::size_t frames, std::size_t bytes, std::function<void()> drained);
  // Closes the socket with 1008 as the transport does when its queue overflows (frames a resume
  // holds for it count as queued: Hub).
  void close_slow_consumer(std::string_view reason);
  // Closes the socket with `code` and `reason` (logged), once.
  void close_with(std::uint16_t code, std::string_view reason);

  protocol::Vsn vsn() const noexcept { return vsn_; }
  std::size_t channel_count() const noexcept { return channels_.size(); }
  const Channel* channel(std::string_view topic) const;

 private:
  // A client message received while an authorization answer was awaited.
  struct Held {
    std::optional<protocol::Message> text;
    std::optional<protocol::UserBroadcast> binary;
    std::size_t bytes = 0;
  };
  // What a join has settled before its private-channel check.
  struct JoinPlan {
    std::string sub_topic;
    protocol::JoinRequest request;
    std::shared_ptr<const auth::VerifiedJwt> token;
  };
  // Continuation of a channel's policy check: the channel if it is still joined (same join), and
  // the answer (already merged into its rights when it is one).
  using AfterCheck = std::function<void(Channel*, const ChannelAuthResult&)>;

  void handle(protocol::Message m);
  void dispatch(protocol::Message m);
  void hold(Held h);
  void handle_join(protocol::Message& m);
  void finish_join(protocol::Message& m, JoinPlan plan, ChannelRights rights);
  void refuse_join(const protocol::Message& m, std::string reason);
  // The end of every successful join: the channel registered, the reply and its system messages.
  // `resume`: the answer to a resume request (response.rtsync.resume); `head`: the reply's head
  // (default: the hub's now); `subscribed`: the channel's bindings were registered already.
  Channel& complete_join(const protocol::Message& m, std::unique_ptr<Channel> ch, json::array echo,
                         const std::vector<std::string>& pg_errors,
                         std::optional<json::object> resume = std::nullopt,
                         std::optional<StreamPosition> head = std::nullopt,
                         bool subscribed = false);
  // A join with config.rtsync.resume (docs/resume.md): a gap at once (another epoch, before the
  // history), or held while the hub prepares its replay, then completed and replayed.
  void start_resume(const protocol::Message& m, std::unique_ptr<Channel> ch, json::array echo,
                    std::vector<std::string> pg_errors, const EpochPosition& from);
  void finish_resume(const std::string& topic, std::uint64_t channel_id, ResumeOutcome outcome);
  // The heartbeat reply's response: {rtsync: {epoch, position}} when the hub has an epoch.
  json::object heartbeat_response() const;
  // A join with broadcast.replay: held until the stored messages are read, then completed and
  // replayed (or refused when the read failed). See the file comment.
  void start_replay(const protocol::Message& m, std::unique_ptr<Channel> ch, json::array echo,
                    std::vector<std::string> pg_errors, const protocol::ReplayConfig& replay);
  void finish_replay(const std::string& topic, std::uint64_t channel_id,
                     Result<std::vector<StoredMessage>> stored);
  void cancel_pending(std::string_view topic);
  void handle_leave(protocol::Message& m);
  // `checked`: the push comes back after its channel's write check (not a cache hit).
  void handle_broadcast(Channel& ch, protocol::Message& m, bool checked = false);
  void handle_binary_broadcast(protocol::UserBroadcast b, bool checked = false);
  void handle_access_token(Channel& ch, protocol::Message& m);
  void handle_presence(Channel& ch, protocol::Message& m);
  void track_presence(Channel& ch, protocol::Message& m, bool checked);
  // Logs and counts a write check that failed (the push is then handled as not allowed).
  void refuse_write(Channel& ch, const ChannelAuthError& error, bool presence);
  // Asks the authorizer; client messages wait until `then` ran with the answer.
  void authorize(ChannelCheck check, std::function<void(ChannelAuthResult)> then);
  // authorize() for a joined channel: merges the answer into its rights, then `then`.
  void check_channel(Channel& ch, ChannelCheck check, AfterCheck then);
  // Handles the messages that waited, in order, until the next authorization (or none left).
  void resume();
  Channel* find_channel(const std::string& topic, std::uint64_t id);
  // Counts a presence push against max_presence_events_per_second; past it, ends `ch`.
  bool admit_presence(Channel& ch);
  void reply(const protocol::Message& to, json::value payload);
  void reply_ok(const protocol::Message& to, json::value response = json::object());
  void reply_error(const protocol::Message& to, std::string reason);
  void system(Channel& ch, std::string_view extension, std::string_view status,
              std::string_view message);
  // Ends a channel server-side: phx_close (ref = join_ref) and teardown.
  void close_channel(const std::string& topic);
  void drop_channel(Channel& ch);
  void schedule_expiry(Channel& ch);
  void on_expiry(std::uint64_t channel_id, std::string topic);
  void roll_rate_window();
  bool admit_message();
  bool admit_heartbeat();
  void touch();
  void on_idle();
  void on_drained();

  Hub& hub_;
  SessionIo& io_;
  protocol::Vsn vsn_;
  std::shared_ptr<const auth::VerifiedJwt> apikey_;
  std::map<std::string, std::unique_ptr<Channel>, std::less<>> channels_;
  // Joins waiting for their replay, by topic: not joined yet (not in channels_, not members),
  // their topic's live broadcasts held.
  struct PendingJoin {
    protocol::Message request;  // refs and topic of the phx_join, for the reply
    std::unique_ptr<Channel> channel;
    json::array echo;
    std::vector<std::string> pg_errors;
    HeldBroadcasts held;
    // A resume (start_resume): the hub holds the channel's frames; the client's position.
    bool resuming = false;
    StreamPosition resume_from;
    // A broadcast replay whose join also asked to resume: the gap its reply carries.
    std::optional<json::object> resume_answer;
  };
  std::map<std::string, std::unique_ptr<PendingJoin>, std::less<>> pending_;
  core::TimePoint last_rx_{};
  core::Timer idle_;
  core::TimePoint window_start_{};
  std::uint32_t window_count_ = 0;
  std::uint32_t heartbeat_count_ = 0;
  bool rate_tripped_ = false;
  std::uint32_t presence_events_ = 0;
  core::Timer presence_window_;  // timers::RateWindow: the presence push budget's second
  bool closing_ = false;
  bool waiting_ = false;  // an authorization answer is awaited: client messages go to held_
  std::deque<Held> held_;
  std::size_t held_bytes_ = 0;
  // when_drained: the waiters and the thresholds the socket's notification is armed at.
  std::vector<std::function<void()>> drain_waiters_;
  std::size_t drain_frames_ = 0;
  std::size_t drain_bytes_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rtsync::server::realtime
