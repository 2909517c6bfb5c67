// A fault-injecting TCP proxy for tests (the chaos suite, docs/chaos.md): it listens on loopback,
// forwards every accepted connection to a target, and on request makes the link misbehave the way
// a network or a slow peer does — without touching either end.
//
//   auto proxy = FaultProxy::start({.target_port = server_port});   // own loop thread
//   client connects to 127.0.0.1:proxy->port() instead of the server
//   proxy->cut(CutMode::reset, 5s);        // every connection reset, new ones refused, for 5 s
//   proxy->stall(Flow::downstream);        // stop reading from the target: backpressure builds
//   proxy->clear();                        // everything flows again
//
// Faults (each for a given duration, or until clear(); calling one again replaces it):
//   cut(partition)  nothing passes either way on current connections (bytes are held, as TCP
//                   holds them while packets are dropped: they flow when the cut ends, unless an
//                   end gave up first); new connections are accepted but not joined to the target
//                   until the cut ends.
//   cut(reset)      every current connection is reset (RST both ways) at once, and new ones are
//                   accepted and reset, until the cut ends: a link that is down.
//   stall(flow)     the proxy stops reading from the sender of that flow (and holds what it has):
//                   the sender's socket buffers fill and its writes block — a slow consumer.
//   delay(flow, d)  every chunk read in that flow is written `d` later (order is kept).
//   close_all()     ends the current connections now: reset (abrupt) or FIN both ways.
// A ProxyMatch narrows a fault to the connections whose first upstream bytes (the first
// `preamble_bytes`) contain a needle — e.g. "replication\0database" picks out PostgreSQL's
// replication connection among a server's connections; a connection that comes to match later
// (its preamble grows) is then treated as the fault says. An empty needle matches every
// connection. A partition with a needle lets new connections through until they match.
//
// A connection whose target refuses it is reset. When one side closes, the proxy half-closes the
// other after forwarding what it holds; a reset on either side resets the other.
//
// Time: fault durations and delays run on the injected core::Scheduler (timers
// testkit::timers::ProxyFaultEnd and ProxyDelay), so a test on ManualScheduler ends a fault
// exactly at its boundary; sockets are real (Asio, loopback).
//
// Thread safety: a proxy made by start() owns its loop thread and every method may be called from
// any thread (each runs on the loop and waits for it). A proxy made by create() is loop-confined:
// call it on the thread driving `io` and the scheduler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "rtsync/core/result.hpp"
#include "rtsync/core/scheduler.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::testkit {

// A direction through the proxy: upstream is client → target, downstream target → client.
enum class Flow : std::uint8_t { upstream, downstream, both };
// What a cut does (see the file comment).
enum class CutMode : std::uint8_t { partition, reset };

struct FaultProxyOptions {
  std::string target_host = "127.0.0.1";  // an IP address (no name resolution)
  std::uint16_t target_port = 0;
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;  // 0: a free port (port() tells which)
  // Bytes the proxy holds per flow per connection before it stops reading from the sender.
  std::size_t buffer_bytes = 64 * 1024;
  // SO_RCVBUF and SO_SNDBUF of both sockets of each connection (0: the kernel's default). Small
  // buffers make a stall back-pressure the sender sooner. With them the proxy's sockets also
  // announce an Ethernet-sized MSS (1,448 bytes), so that a window of this size holds many
  // segments (on loopback's 64 KiB MSS a sender facing a smaller window waits on its persist
  // timer, and a healed partition trickles).
  int socket_buffer_bytes = 0;
  // Upstream bytes of each connection kept for ProxyMatch.
  std::size_t preamble_bytes = 1024;
};

// Which connections a fault applies to: those whose first upstream bytes contain `needle` (it may
// hold NUL bytes); empty: every connection.
struct ProxyMatch {
  std::string needle;
};

// Counters since start.
struct FaultProxyStats {
  std::uint64_t accepted = 0;          // connections accepted
  std::uint64_t connected = 0;         // of those, joined to the target
  std::uint64_t refused = 0;           // reset at once: target refused, or a reset cut was on
  std::uint64_t closed_by_fault = 0;   // ended by close_all or a reset cut
  std::size_t open = 0;                // open now (parked ones included)
  std::uint64_t bytes_upstream = 0;    // client → target bytes written
  std::uint64_t bytes_downstream = 0;  // target → client bytes written
};

class FaultProxy {
 public:
  // Listens and runs on a loop thread of its own. Errors: Errc::invalid_argument (addresses),
  // Errc::io (bind/listen failed).
  static Result<std::unique_ptr<FaultProxy>> start(FaultProxyOptions options);
  // Listens on `io`, timers on `scheduler` (both must outlive the proxy); loop-confined.
  static Result<std::unique_ptr<FaultProxy>> create(boost::asio::io_context& io,
                                                    core::Scheduler& scheduler,
                                                    FaultProxyOptions options);
  // Resets every connection and stops listening (and the loop thread, for start()).
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // The port it listens on.
  std::uint16_t port() const noexcept;
  // Where new connections go from now on (current ones stay where they are).
  void set_target(std::string host, std::uint16_t port);

  // The faults of the file comment. `duration`: how long; nullopt: until clear().
  void cut(CutMode mode, std::optional<core::Duration> duration = std::nullopt,
           ProxyMatch match = {});
  void stall(Flow flow, std::optional<core::Duration> duration = std::nullopt,
             ProxyMatch match = {});
  void delay(Flow flow, core::Duration latency,
             std::optional<core::Duration> duration = std::nullopt, ProxyMatch match = {});
  // Ends the matching connections now; returns how many.
  std::size_t close_all(bool abrupt = true, ProxyMatch match = {});
  // Every fault off: held bytes flow, parked connections are joined to the target.
  void clear();
  // A cut, stall or delay is on.
  bool faulty() const;
  FaultProxyStats stats() const;

 private:
  struct Impl;
  explicit FaultProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtsync::testkit
