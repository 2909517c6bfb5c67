// A throwaway Redis server for tests: `redis-server` on 127.0.0.1 and a free port, in a fresh
// temporary folder, with no persistence (`--save "" --appendonly no`), in the foreground
// (`--daemonize no`) as a child of this process, its output in `redis.log` in that folder.
//
// The binary is $RTSYNC_REDIS_SERVER, else `redis-server` on PATH, else /usr/bin/redis-server
// (Debian's package `redis-server`). start() returns once the server answers PING.
//
// Nothing is left behind: the destructor kills the server and removes the folder, and the child
// gets SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG) — so start a TempRedis from
// a thread that lives as long as it (the test's main thread), not from a short-lived helper.
//
// Thread safety: one TempRedis is driven by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "rtsync/core/result.hpp"

namespace rtsync::testkit {

class TempRedis {
 public:
  // Errors: Errc::not_found without a redis-server binary; Errc::io when the folder, the log or
  // the process cannot be made, or the server exits at start (the message carries its log's
  // tail); Errc::timeout when it does not answer PING within `timeout`.
  static Result<std::unique_ptr<TempRedis>> start(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  ~TempRedis();  // kill + remove the folder
  TempRedis(const TempRedis&) = delete;
  TempRedis& operator=(const TempRedis&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // "redis://127.0.0.1:PORT"
  std::string url() const;
  const std::string& folder() const noexcept { return folder_; }
  bool running() const noexcept { return pid_ > 0; }
  int pid() const noexcept { return pid_; }

  // SIGKILL and reap (idempotent): the clients' connections are reset at once.
  void kill();
  // Kills the server if it runs and starts a new one on the same port; every key is gone (there is
  // no persistence). Errors as start().
  Result<void> restart(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The last bytes of the server's output, for failure messages.
  std::string log_tail(std::size_t max_bytes = 4000) const;

 private:
  TempRedis() = default;
  Result<void> spawn(std::chrono::milliseconds timeout);

  std::string binary_;
  std::string folder_;
  std::string log_file_;
  std::uint16_t port_ = 0;
  int pid_ = 0;
};

}  // namespace rtsync::testkit
