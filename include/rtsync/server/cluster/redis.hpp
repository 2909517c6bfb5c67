// A small Redis client for the server's cluster layer, driven by the caller's Asio io_context:
// RedisConnection sends commands (pipelined, answered in order) and RedisSubscriber listens to
// Pub/Sub channels. Both keep one TCP connection each, speak RESP2 (no HELLO, no AUTH, database
// 0) and reconnect by themselves after any failure until stop().
//
// hiredis is used only to encode commands and to parse replies; the socket, its timers and every
// wait are ours, on the caller's loop, so nothing here ever blocks the loop.
//
// Memory is bounded: a reply larger than RedisOptions::max_reply_bytes (64 MiB by default, counted
// in bytes on the wire) resets the link, and a RedisConnection refuses a command while
// max_pending_commands (100,000 by default) are waiting for replies.
//
// Thread safety: loop-confined. Construction, every method, destruction and every callback happen
// on the thread running the io_context (the scheduler's loop).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::cluster {

// One RESP2 reply. A nil bulk string and a nil array both read as Type::nil.
struct RedisReply {
  enum class Type : std::uint8_t { nil, status, error, integer, string, array };
  Type type = Type::nil;
  std::string str;                   // status, error, string (binary-safe)
  long long integer = 0;             // integer
  std::vector<RedisReply> elements;  // array
  bool is_error() const noexcept { return type == Type::error; }
  bool is_nil() const noexcept { return type == Type::nil; }
};

struct RedisEndpoint {
  std::string host;
  std::uint16_t port = 6379;
};

// "redis://HOST[:PORT][/ | /0]": HOST is a name, an IPv4 address or a bracketed IPv6 address
// ("redis://[::1]:6380"); the port defaults to 6379. Anything else (another scheme, rediss://,
// credentials, a database other than 0, a query, a bad port) is Errc::invalid_argument with a
// message that says what is wrong.
Result<RedisEndpoint> parse_redis_url(std::string_view url);
// "redis://host:port" (an IPv6 host in brackets); parse_redis_url reads it back.
std::string to_string(const RedisEndpoint& endpoint);

// The default memory bounds (RedisOptions): a reply whose encoding on the wire exceeds
// kMaxReplyBytes resets the link (the commands waiting on it fail with Errc::io); a
// RedisConnection holds at most kMaxPendingCommands commands sent or about to be sent and not
// answered yet.
inline constexpr std::size_t kMaxReplyBytes = std::size_t{64} << 20;
inline constexpr std::size_t kMaxPendingCommands = 100'000;

struct RedisOptions {
  RedisEndpoint endpoint;
  // Bound for one connection attempt: name resolution plus the TCP connect.
  core::Duration connect_timeout = std::chrono::seconds(2);
  // After a failure (a failed attempt or a lost link), before the next attempt.
  core::Duration reconnect_delay = std::chrono::milliseconds(250);
  // The memory bounds; tests lower them to reach them cheaply.
  std::size_t max_reply_bytes = kMaxReplyBytes;
  std::size_t max_pending_commands = kMaxPendingCommands;
};

// One TCP connection to Redis. Commands are pipelined: each is sent as soon as possible, while a
// write is in flight later commands are gathered into the next write, and replies are matched to
// commands in order.
//
// The link is opened by start() and reopened by itself after any failure (refused or timed-out
// connect, reset, EOF, a protocol error, an oversized reply), reconnect_delay after it, until
// stop(). Commands are not queued across a failure: a command issued while the link is down fails
// at once.
class RedisConnection {
 public:
  using Callback = std::function<void(Result<RedisReply>)>;
  using StateCallback = std::function<void(bool up, const std::string& reason)>;

  RedisConnection(boost::asio::io_context& io, core::Scheduler& scheduler, RedisOptions options);
  // Closes the link. The callbacks of unanswered commands are dropped without being called, and no
  // callback of this object runs after destruction.
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Starts connecting (idempotent). start() after stop() connects again.
  void start();
  // Closes the link and stops reconnecting. The commands not answered yet fail with
  // Errc::cancelled, posted (never from inside stop()). on_state is not called for a stop.
  void stop();

  // Sends one command; `args` are binary-safe ("SET", key, value). `done` is called exactly once,
  // on the loop and never from inside command(), with:
  //  - the reply: a Redis error reply ("ERR …", "WRONGTYPE …") is a value of Type::error, not a
  //    failed Result;
  //  - Errc::io when the link failed before the reply arrived (the command may or may not have
  //    run) or, posted at once, when the link is not up (never sent);
  //  - Errc::too_large, posted at once, when max_pending_commands are already waiting (never
  //    sent);
  //  - Errc::invalid_argument, posted at once, for an empty `args`;
  //  - Errc::cancelled after stop().
  void command(std::vector<std::string> args, Callback done);

  // The link is up: a command issued now is sent.
  bool connected() const noexcept;
  // Called each time the link comes up (true, "") or goes down after having been up (false, the
  // reason). A failed attempt while already down calls nothing.
  void set_on_state(StateCallback cb);

  // Bytes written to / read from Redis over the object's life (for metrics).
  std::uint64_t bytes_sent() const noexcept;
  std::uint64_t bytes_received() const noexcept;
  // Commands sent or about to be sent whose replies have not arrived yet.
  std::size_t pending() const noexcept;
  // Times the link came up.
  std::uint64_t connects() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// A Pub/Sub connection: SUBSCRIBEs to `channels` (duplicates ignored) on every (re)connect and
// hands each message to on_message. Messages published while the link was down are lost (that is
// Redis Pub/Sub).
class RedisSubscriber {
 public:
  using MessageCallback = std::function<void(std::string_view channel, std::string_view payload)>;
  using StateCallback = std::function<void(bool up, const std::string& reason)>;

  RedisSubscriber(boost::asio::io_context& io, core::Scheduler& scheduler, RedisOptions options,
                  std::vector<std::string> channels);
  // Closes the link; no callback of this object runs after destruction.
  ~RedisSubscriber();
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  // The views passed to `cb` are valid only during the call.
  void set_on_message(MessageCallback cb);
  // up=true once Redis confirmed every SUBSCRIBE of this link; false (the reason) when a link that
  // was up goes down. A Redis error reply to SUBSCRIBE resets the link (and it is tried again).
  void set_on_state(StateCallback cb);

  // Starts connecting (idempotent); start() after stop() connects again.
  void start();
  // Closes the link and stops reconnecting; on_state is not called for a stop.
  void stop();

  // Every channel's subscription is confirmed on the current link.
  bool subscribed() const noexcept;
  // Messages delivered to on_message so far.
  std::uint64_t messages() const noexcept;
  // Bytes written to / read from Redis over the object's life (for metrics).
  std::uint64_t bytes_sent() const noexcept;
  std::uint64_t bytes_received() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::cluster
