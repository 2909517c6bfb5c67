// Helpers the throwaway servers of the test kit share (TempCluster, TempRedis): internal to
// src/testkit, not installed.
//
// Thread safety: free functions.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace rtsync::testkit::detail {

// A loopback port the kernel considers free right now (bind port 0, read it, release it); 0 when
// none could be had. Someone else may take it before the server binds: callers retry on a bind
// failure.
inline std::uint16_t pick_free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::uint16_t port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    if (::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  ::close(s);
  return port;
}

inline bool is_executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

}  // namespace rtsync::testkit::detail
