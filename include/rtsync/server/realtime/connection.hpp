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
// Thread safety: confined to the server loop.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
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

  protocol::Vsn vsn() const noexcept { return vsn_; }
  std::size_t channel_count() const noexcept { return channels_.size(); }
  const Channel* channel(std::string_view topic) const;

 private:
  void handle(protocol::Message m);
  void handle_join(protocol::Message& m);
  void refuse_join(const protocol::Message& m, std::string reason);
  // The end of every successful join: the channel registered, the reply and its system messages.
  Channel& complete_join(const protocol::Message& m, std::unique_ptr<Channel> ch, json::array echo,
                         const std::vector<std::string>& pg_errors);
  // A join with broadcast.replay: held until the stored messages are read, then completed and
  // replayed (or refused when the read failed). See the file comment.
  void start_replay(const protocol::Message& m, std::unique_ptr<Channel> ch, json::array echo,
                    std::vector<std::string> pg_errors, const protocol::ReplayConfig& replay);
  void finish_replay(const std::string& topic, std::uint64_t channel_id,
                     Result<std::vector<StoredMessage>> stored);
  void cancel_pending(std::string_view topic);
  void handle_leave(protocol::Message& m);
  void handle_broadcast(Channel& ch, protocol::Message& m);
  void handle_binary_broadcast(protocol::UserBroadcast b);
  void handle_access_token(Channel& ch, protocol::Message& m);
  void handle_presence(Channel& ch, protocol::Message& m);
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
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rtsync::server::realtime
