// The TCP link that RedisConnection and RedisSubscriber share (private to this folder): connect
// with a deadline, reconnect after a delay, gather writes, parse replies with hiredis's reader and
// hand each one to the owner, bounded in size.
//
// The owner derives from RedisLink and is held by a shared_ptr: every pending Asio handler and
// timer holds (or weakly refers to) the object, so it outlives them. Each link gets a new epoch
// when it opens or closes; a handler of an older epoch does nothing.
//
// Thread safety: loop-confined, like its owners.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/cluster/redis.hpp"

struct redisReader;

namespace rtsync::server::cluster::detail {

// The RESP2 encoding of one command (a multi-bulk array of binary-safe arguments).
Result<std::string> encode_command(const std::vector<std::string>& args);

class RedisLink : public std::enable_shared_from_this<RedisLink> {
 public:
  RedisLink(boost::asio::io_context& io, core::Scheduler& scheduler, RedisOptions options,
            std::string_view role);
  virtual ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Starts connecting unless already started.
  void start_link();
  // Closes the link and cancels the reconnect; calls no hook.
  void stop_link();
  // Closes a link that is up or connecting, calls on_link_down, and reconnects after the delay.
  void reset_link(const std::string& reason);

  bool link_up() const noexcept { return phase_ == Phase::up; }
  // Appends encoded bytes to the next write (sent at once when no write is in flight). Only while
  // link_up(); dropped otherwise.
  void send_raw(std::string_view bytes);

  std::uint64_t bytes_sent() const noexcept { return sent_; }
  std::uint64_t bytes_received() const noexcept { return received_; }
  std::uint64_t connects() const noexcept { return connects_; }
  const RedisOptions& options() const noexcept { return options_; }
  boost::asio::io_context& io() noexcept { return io_; }
  core::Scheduler& scheduler() noexcept { return scheduler_; }

 protected:
  // The link came up (the read loop is armed; send_raw works).
  virtual void on_link_up() = 0;
  // A link that was up (was_up) or an attempt failed; a reconnect is already scheduled.
  virtual void on_link_down(const std::string& reason, bool was_up) = 0;
  // One reply, in the order Redis sent them. May stop or reset the link.
  virtual void on_link_reply(RedisReply reply) = 0;

 private:
  enum class Phase { stopped, connecting, up, waiting };
  struct ReaderFree {
    void operator()(redisReader* r) const noexcept;
  };

  void connect();
  void connect_to(std::vector<boost::asio::ip::tcp::endpoint> endpoints);
  void on_connected();
  void fail(const std::string& reason);
  void close_socket();
  void arm_read();
  void on_read(std::size_t n);
  void start_write();

  boost::asio::io_context& io_;
  core::Scheduler& scheduler_;
  RedisOptions options_;
  std::string role_;  // "connection" or "subscriber", for logs
  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::tcp::resolver resolver_;
  Phase phase_ = Phase::stopped;
  std::uint64_t epoch_ = 0;
  core::Timer connect_timer_;
  core::Timer retry_timer_;
  std::unique_ptr<redisReader, ReaderFree> reader_;
  std::size_t reply_bytes_ = 0;  // bytes read since the last complete reply
  std::vector<char> read_buf_;
  std::string out_;      // gathered while a write is in flight
  std::string writing_;  // the write in flight
  bool write_in_flight_ = false;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t connects_ = 0;
  std::uint64_t failures_in_row_ = 0;
};

}  // namespace rtsync::server::cluster::detail
