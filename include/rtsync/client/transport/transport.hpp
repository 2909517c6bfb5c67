// The seam between the Realtime protocol logic and the bytes on the wire (docs/design.md §2:
// protocol layered over any stream). `RealtimeSocket` talks to a `Transport`; production uses the
// Beast WebSocket client (beast_transport.hpp), unit tests the in-memory `testkit::FakeTransport`
// (include/rtsync/testkit/fake_transport.hpp).
//
// Contract for implementations:
//   - `connect()` starts one connection attempt (abandoning the current connection, whose
//     callbacks stop). It ends in exactly one of:
//       on_open, later followed by exactly one on_close (the open connection ended), or
//       on_error (the attempt failed: DNS, TCP, TLS, or the server refused the upgrade).
//   - `close()` starts a close handshake; no callback at all follows for that connection.
//   - `send()` queues one frame; frames go out in order. It fails (without closing) when the
//     connection is not open or the bounded outbound queue is full.
//   - Every callback is delivered on the loop that owns the transport, never from inside a call
//     the owner makes (connect/send/close), so the owner may re-enter the transport freely.
//   - Callbacks run under TransportHandlers::hold_owner whenever the owner sets it (see there):
//     an implementation must honour it, since owners such as RealtimeSocket rely on it for
//     their own lifetime.
//
// Thread safety: loop-confined; call from the loop thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/protocol/close_codes.hpp"

namespace rtsync::client {

// Why a connection attempt failed.
struct TransportFailure {
  Error error;          // io, timeout, unauthorized (TLS verification), protocol, remote…
  int http_status = 0;  // non-zero when the server answered the upgrade with a non-101 status
  std::string body;     // that response's body (Supabase sends {"error": "<message>"})
};

// The callbacks a transport reports to (see the file comment for when each runs).
struct TransportHandlers {
  // The connection opened; frames may be sent.
  std::function<void()> on_open;
  // `data` is only valid during the call.
  std::function<void(std::string_view data, bool binary)> on_message;
  // Why the open connection ended:
  //   - the peer's close frame: its code and reason (1005, empty reason, when it carried no code);
  //   - protocol::close_code::kAbnormal (1006) with a description: the connection dropped without a
  //   close frame;
  //   - protocol::close_code::kMessageTooBig (1009): an inbound message exceeded the size limit;
  //   - 1002 (protocol error) or 1007 (invalid UTF-8) with the parser's description: the peer
  //     broke the WebSocket framing rules (the transport sent that close code to it).
  std::function<void(int code, std::string_view reason)> on_close;
  // The connection attempt failed (never after on_open).
  std::function<void(const TransportFailure& failure)> on_error;
  // Keeps the callbacks' owner alive while they run; the owner may leave it unset, a transport
  // must honour it when set. The transport calls it once before each run of callbacks it makes
  // for one event (every message of one read; an open with the frames that came with it; a
  // close; a failure) and holds the result until that run ends. A null result means the owner
  // is gone: no callback is made, and the connection is ended (a connection that is already
  // closing just finishes its close). An owner that a callback may destroy (RealtimeSocket, from
  // inside a user's callback) can then capture itself by raw pointer: one reference count per
  // read instead of one per message.
  std::function<std::shared_ptr<void>()> hold_owner;
};

// What a transport holds across one run of callbacks (TransportHandlers::hold_owner): nullopt
// when the owner is gone and no callback may be made.
inline std::optional<std::shared_ptr<void>> hold_owner(const TransportHandlers& handlers) {
  if (!handlers.hold_owner) return std::shared_ptr<void>();
  auto held = handlers.hold_owner();
  if (!held) return std::nullopt;
  return held;
}

// A WebSocket connection as RealtimeSocket needs it (contract in the file comment).
class Transport {
 public:
  // Extra HTTP headers of the upgrade request, in order.
  using Headers = std::vector<std::pair<std::string, std::string>>;

  virtual ~Transport() = default;

  // Replaces the callbacks; later events go to the new ones.
  virtual void set_handlers(TransportHandlers handlers) = 0;
  // `url` is a ws:// or wss:// URL with its query string.
  virtual void connect(std::string url, Headers headers) = 0;
  // Queues one text or binary frame. Errors: closed (not open), too_large (queue full).
  virtual Result<void> send(std::string frame, bool binary) = 0;
  // Starts the close handshake with `code` and `reason`; no callback follows for this connection.
  virtual void close(int code, std::string reason) = 0;
  // Bytes after every message on_message delivers that may be read (their content is
  // unspecified): a reader may then parse the message where it lies instead of copying it.
  virtual std::size_t message_padding() const noexcept { return 0; }
};

}  // namespace rtsync::client
