// When a loop's queued websocket frames go out: at the end of the loop pass, or a little later so
// that the next broadcasts of a burst join the same writes.
//
//   WriteCoalescing c;
//   auto wait = c.delay();          // zero: flush at the end of this pass
//   c.flushed(1000, 2000);          // a flush found 2,000 frames queued on 1,000 sockets
//   wait = c.delay();               // kBusyDelay: a burst, coalesce
//
// Writing costs one send per socket whatever the frames in it, so a burst of broadcasts to many
// sockets is cheapest written together; but a lone change must not wait for company that never
// comes. The evidence is what the last flush found: when a flush of at least kManySockets sockets
// found on average kBurstFramesPerSocket frames or more queued per socket, changes arrive faster
// than the loop writes them (the frames gathered on their own while the loop was busy), and the
// next flush waits kBusyDelay to gather more. When a waited flush finds about one frame per socket,
// the wait bought nothing and the next flush is at once again. A time-based guess (the time since
// the last flush) mistakes a saturated loop for a quiet one: after a flush of a thousand sockets
// the write completions alone take longer than any useful threshold.
//
// Pure and sans-IO: the HTTP server's WriteFlush (src/server/http/http_server.cpp) holds one per
// loop and arms its timer with delay(). Thread safety: none; one loop's.
#pragma once

#include <chrono>
#include <cstddef>

namespace rtsync::server::http {

class WriteCoalescing {
 public:
  // A flush smaller than this never starts a wait: few sockets, little to save.
  static constexpr std::size_t kManySockets = 64;
  // Queued frames per socket, in quarters (6: 1.5 frames), from which a flush counts as a burst.
  static constexpr std::size_t kBurstQuartersPerSocket = 6;
  // The wait that lets a burst's next broadcasts join: bounds the latency a burst adds.
  static constexpr std::chrono::microseconds kBusyDelay{500};

  // How long the flush being armed now waits.
  std::chrono::microseconds delay() const {
    return burst_ ? kBusyDelay : std::chrono::microseconds(0);
  }

  // A flush found `frames` frames queued on `sockets` sockets.
  void flushed(std::size_t sockets, std::size_t frames) {
    burst_ = sockets >= kManySockets && frames * 4 >= sockets * kBurstQuartersPerSocket;
  }

  bool burst() const { return burst_; }

 private:
  bool burst_ = false;
};

}  // namespace rtsync::server::http
