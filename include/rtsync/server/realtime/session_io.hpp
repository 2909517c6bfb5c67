// The seam between the realtime protocol logic (sans-IO, src/server/realtime) and the websocket
// transport (Beast, src/server/http). Tests implement SessionIo with an in-memory fake.
//
// Thread safety: loop-confined. `send` and `close` only queue work: they never re-enter the
// Connection or destroy it synchronously, so the Hub may call them while iterating its member
// lists; the transport reports the close later, on the loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "rtsync/protocol/close_codes.hpp"

namespace rtsync::server::realtime {

// One serialized websocket message, shared by every session that receives it (the fan-out
// serializes once per wire format and hands out the same bytes).
struct OutFrame {
  std::shared_ptr<const std::string> bytes;
  bool binary = false;
};

inline OutFrame text_frame(std::string s) {
  return OutFrame{std::make_shared<const std::string>(std::move(s)), false};
}

class SessionIo {
 public:
  virtual ~SessionIo() = default;
  // Queues a frame. Never blocks and never runs realtime callbacks re-entrantly; if the bounded
  // queue overflows the session closes itself with 1008 (asynchronously) and returns false.
  virtual bool send(const OutFrame& frame) = 0;
  // Starts a close handshake after queued frames; the realtime Connection is torn down later, on
  // a fresh loop turn, never inside this call.
  virtual void close(std::uint16_t code, std::string_view reason) = 0;
  // Frames and bytes queued and not yet written to the socket: what the bounds `send` enforces
  // (RealtimeLimits::max_queued_frames / max_queued_bytes) count.
  virtual std::size_t queued_frames() const = 0;
  virtual std::size_t queued_bytes() const = 0;
  // Arms a one-shot notification: `drained` runs once a write to the socket completed and left at
  // most `frames` frames and `bytes` bytes queued — on the loop, never inside this call, `send` or
  // `close`. A later call replaces an armed one; a closing session never calls it. The caller
  // checks the queue first: a queue that is already that short may never complete another write.
  virtual void when_drained(std::size_t frames, std::size_t bytes,
                            std::function<void()> drained) = 0;
};

}  // namespace rtsync::server::realtime
