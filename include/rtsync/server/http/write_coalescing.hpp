// When a loop's queued websocket frames go out: at the end of the loop pass, or a little later so
// that the next broadcasts of a burst join the same writes.
//
//   WriteCoalescing c;
//   auto wait = c.delay();             // zero: flush at the end of this pass
//   c.flushed(1000, 2000, wall, cpu);  // 2,000 frames were queued on 1,000 sockets
//   wait = c.delay();                  // kFirstWait: a burst, gather
//
// Writing costs one send per socket whatever the frames in it, so a burst of broadcasts to many
// sockets is cheapest written together; but a lone change must not wait for company that never
// comes. The evidence is what the last flush found: when a flush of at least kManySockets sockets
// found on average 1.5 frames or more queued per socket, changes arrive faster than the loop
// writes them (the frames gathered on their own while the loop was busy), and the next flush
// waits kFirstWait to gather more. A flush that finds about one frame per socket ends the burst
// and the next is at once again.
//
// The wait doubles, up to kMaxWait, only while the loop is saturated: the burst goes on and the
// loop's thread was on a CPU for at least kSaturatedPercent of the wall time since the flush
// before. A loop that is behind anyway gains more from fewer, larger writes than the wait costs.
// The test matters: a waited flush always finds what arrived during its wait, so at 1,000
// changes/s a 2 ms wait would find two frames per socket and call itself a burst for ever,
// adding 2 ms to every change of a loop that is half idle. The time since the last flush alone
// cannot tell a saturated loop from a quiet one (after a flush of a thousand sockets the write
// completions outlast any useful threshold), nor can the rate of frames per socket (a saturated
// 1,000-socket fan-out gets fewer per socket than a half-idle 100-socket one); the loop thread's
// CPU time can.
//
// Pure and sans-IO: the HTTP server's WriteFlush (src/server/http/http_server.cpp) holds one per
// loop, arms its timer with delay() and reports each flush with the wall clock and its thread's
// CPU clock. Thread safety: none; one loop's.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace rtsync::server::http {

class WriteCoalescing {
 public:
  using Duration = std::chrono::nanoseconds;

  // A flush smaller than this never starts a wait: few sockets, little to save.
  static constexpr std::size_t kManySockets = 64;
  // Queued frames per socket, in quarters (6: 1.5 frames), from which a flush counts as a burst.
  static constexpr std::size_t kBurstQuartersPerSocket = 6;
  // The first wait of a burst, and the most a saturated loop's wait grows to: what a burst can
  // add to latency.
  static constexpr std::chrono::microseconds kFirstWait{500};
  static constexpr std::chrono::microseconds kMaxWait{2000};
  // The share of wall time on a CPU from which the loop counts as saturated.
  static constexpr int kSaturatedPercent = 80;

  // How long the flush being armed now waits.
  std::chrono::microseconds delay() const { return wait_; }

  // A flush found `frames` frames queued on `sockets` sockets; `wall` is a monotonic clock and
  // `cpu` the loop thread's CPU clock, both read at the flush. They are read only for flushes of
  // at least kManySockets sockets (a smaller one is never a burst and its clocks are ignored, so
  // the caller may pass zero and save the CPU clock's system call): saturation is then measured
  // since the last such flush.
  void flushed(std::size_t sockets, std::size_t frames, Duration wall, Duration cpu) {
    if (sockets < kManySockets) {
      wait_ = std::chrono::microseconds(0);
      return;
    }
    const bool burst = frames * 4 >= sockets * kBurstQuartersPerSocket;
    const bool saturated = have_last_ && wall > last_wall_ &&
                           (cpu - last_cpu_) * 100 >= (wall - last_wall_) * kSaturatedPercent;
    if (!burst) {
      wait_ = std::chrono::microseconds(0);
    } else if (wait_.count() == 0 || !saturated) {
      wait_ = kFirstWait;
    } else {
      wait_ = std::min(wait_ * 2, kMaxWait);
    }
    last_wall_ = wall;
    last_cpu_ = cpu;
    have_last_ = true;
  }

  bool burst() const { return wait_.count() != 0; }

 private:
  std::chrono::microseconds wait_{0};
  Duration last_wall_{};
  Duration last_cpu_{};
  bool have_last_ = false;
};

}  // namespace rtsync::server::http
