// The seam between the realtime protocol logic (sans-IO, src/server/realtime) and the websocket
// transport (Beast, src/server/http). Tests implement SessionIo with an in-memory fake.
//
// Thread safety: loop-confined. `send` and `close` only queue work: they never re-enter the
// Connection or destroy it synchronously, so the Hub may call them while iterating its member
// lists; the transport reports the close later, on the loop.
#pragma once

#include <cstdint>
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
};

}  // namespace rtsync::server::realtime
