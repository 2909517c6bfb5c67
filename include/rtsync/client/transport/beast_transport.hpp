// The production Transport: a WebSocket client over TCP (ws://) or TLS (wss://, OpenSSL). Beast and
// Asio resolve, connect, handshake TLS and send the HTTP upgrade; rtsync's own RFC 6455 framing
// (src/client/transport/ws_frame.hpp) reads and writes the frames. TLS verifies the server
// certificate against the system CA store (plus `ca_file`), checks the host name, and sets SNI, so
// it reaches hosted `*.supabase.co` projects.
//
// One write in flight at a time with a bounded outbound queue; inbound frames are limited to
// `max_frame_bytes` (a larger one closes the connection with 1009 and reports on_close(1009)).
// A server breaking the framing rules gets close 1002 (invalid UTF-8 in a text message: 1007) and
// the owner on_close with that code. Pings are answered with pongs. Resolve, connect, TLS and
// WebSocket handshakes together are bounded by `connect_timeout`.
//
// Beast and Asio stay inside one translation unit; this header only forward-declares the
// io_context.
//
// Thread safety: loop-confined to the io_context's thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "rtsync/client/transport/realtime_socket.hpp"
#include "rtsync/client/transport/transport.hpp"
#include "rtsync/core/scheduler.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::core {
class EventLoop;
}  // namespace rtsync::core

namespace rtsync::client {

struct BeastTransportOptions {
  // PEM file of extra trusted CAs (tests' own CA); the system store is always trusted too.
  std::string ca_file;
  bool verify_peer = true;
  core::Duration connect_timeout = std::chrono::seconds(10);
  // How long close() (or a close the server started, or a protocol error) waits for the server to
  // answer the close frame and end the connection before the socket is closed anyway.
  core::Duration close_timeout = std::chrono::seconds(5);
  std::size_t max_frame_bytes = 8u << 20;
  std::size_t max_queued_frames = 4096;
  std::string user_agent = "rtsync-realtime/0.1";
};

std::unique_ptr<Transport> make_beast_transport(boost::asio::io_context& io,
                                                BeastTransportOptions options = {});

// A RealtimeSocket on `loop` speaking over Beast (max_frame_bytes taken from `options`).
// Call on the loop thread.
std::unique_ptr<RealtimeSocket> make_realtime_socket(core::EventLoop& loop, SocketOptions options,
                                                     BeastTransportOptions transport = {});

}  // namespace rtsync::client
