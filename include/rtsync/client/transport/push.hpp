// The outcome of a push (a client message that may get a phx_reply): docs/protocol.md §1.5.
//
// Thread safety: loop-confined, like the socket and channel that create pushes; callbacks run on
// the client's loop.
#pragma once

#include <functional>
#include <string_view>

#include "rtsync/core/json.hpp"

namespace rtsync::client {

// How a push ended.
enum class PushStatus {
  ok,       // the server replied {"status":"ok"}; `response` is its response
  error,    // the server replied {"status":"error"} (`response` is its response), or the client
            // gave the push up: {"reason":"send buffer full"}, {"reason":"channel closed"}…
  timeout,  // no reply within the push's timeout
};
std::string_view to_string(PushStatus status) noexcept;  // "ok" | "error" | "timed out"

// The outcome handed to a PushCallback.
struct PushResult {
  PushStatus status = PushStatus::ok;  // how the push ended
  // The reply's `response` (ok, error), or the client's {"reason": …} when it gave the push up.
  json::value response = json::object();
};

// Called exactly once per push, on the loop.
using PushCallback = std::function<void(const PushResult& result)>;

}  // namespace rtsync::client
