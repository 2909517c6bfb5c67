// `rtsync server` as a child process the chaos suite can SIGKILL and start again: its stdout and
// stderr go to a log file (appended across restarts), its port comes from the "listening on" line.
// The child dies with the test process (PR_SET_PDEATHSIG), so a crashed run leaves no server.
//
// Thread safety: one thread drives a ServerProcess.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "rtsync/core/result.hpp"

namespace rtsync::chaos {

class ServerProcess {
 public:
  // `binary` server <args…> --listen 127.0.0.1:0; nothing runs until start().
  ServerProcess(std::string binary, std::vector<std::string> args, std::string log_file);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts it and waits (bounded) for its "listening on" line. Errc::io with the log's tail.
  Result<void> start(std::chrono::seconds timeout = std::chrono::seconds(30));
  // SIGKILL (a crash) or SIGTERM (graceful: 1001 to every socket, slot confirmed); waits for it.
  void kill();
  void stop();
  bool running() const noexcept { return pid_ > 0; }
  std::uint16_t port() const noexcept { return port_; }  // of the last start
  std::string log_tail(std::size_t max_bytes = 4000) const;

 private:
  void signal_and_wait(int sig);

  std::string binary_;
  std::vector<std::string> args_;
  std::string log_file_;
  int pid_ = 0;
  std::uint16_t port_ = 0;
};

}  // namespace rtsync::chaos
