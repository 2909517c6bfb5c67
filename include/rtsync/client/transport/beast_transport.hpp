// The production Transport: a WebSocket client over TCP (ws://) or TLS (wss://, OpenSSL). Beast and
// Asio resolve, connect, handshake TLS and send the HTTP upgrade; rtsync's own RFC 6455 framing
// (src/client/transport/ws_frame.hpp) reads and writes the frames. TLS verifies the server
// certificate against the system CA store (plus `ca_file`), checks the host name, and sets SNI, so
// it reaches hosted `*.supabase.co` projects.
//
// One write in flight at a time with a bounded outbound queue; inbound messages are limited to
// `max_frame_bytes`, counted over the whole message (a fragmented one after reassembly): a larger
// one closes the connection with 1009 and reports on_close(1009, "message too big"), as does
// running out of memory for one within the limit. A server breaking the framing rules gets close
// 1002 (invalid UTF-8 in a text message or close reason: 1007) and the owner on_close with that
// code and the parser's description. Pings are answered with pongs; at most one pong waits to be
// sent (it carries the latest ping's payload), so a server pinging without reading cannot grow
// the queue. Resolve, connect, TLS and WebSocket handshakes together are bounded by
// `connect_timeout`.
//
// The upgrade: the caller's headers are sent, but Host, Upgrade, Connection, Sec-WebSocket-Key and
// Sec-WebSocket-Version are always the transport's own. The 101 is refused (on_error, protocol)
// without the right Upgrade/Connection/Sec-WebSocket-Accept, with any extension, or with a
// Sec-WebSocket-Protocol the caller did not offer in its own Sec-WebSocket-Protocol header.
// Masking keys and Sec-WebSocket-Key come from OpenSSL's CSPRNG (RAND_bytes).
//
// Closing (close(), the server's close frame, or a protocol failure): our close frame goes out
// after any frame already being written; then our sending side is shut (TCP FIN; on wss a TLS
// close_notify) and the socket is read, input discarded, until the server ends the connection.
// All of it, from the close frame to the server's EOF, is bounded by `close_timeout`, after which
// the socket is closed anyway. Nothing after the server's close frame is parsed.
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

// The ceiling of BeastTransportOptions::max_frame_bytes: 1 GiB.
inline constexpr std::size_t kMaxFrameBytesLimit = std::size_t{1} << 30;

// Settings of the Boost.Beast WebSocket transport (ws:// and wss://).
struct BeastTransportOptions {
  // PEM file of extra trusted CAs (tests' own CA); the system store is always trusted too.
  std::string ca_file;
  // Verify the server's TLS certificate and host name (turn off only for testing).
  bool verify_peer = true;
  // DNS, TCP, TLS and the upgrade together; past it the attempt fails with timeout.
  core::Duration connect_timeout = std::chrono::seconds(10);
  // How long close() (or a close the server started, or a protocol error) waits for the close
  // frames to be exchanged and the server to end the connection before the socket is closed anyway.
  core::Duration close_timeout = std::chrono::seconds(5);
  // Largest inbound message (reassembled); values above kMaxFrameBytesLimit (e.g. SIZE_MAX for
  // "unlimited") are clamped to it, since the server's length field drives an allocation.
  std::size_t max_frame_bytes = 8u << 20;
  // Text messages that are not UTF-8 fail the connection with 1007 (RFC 6455 section 8.1). An
  // owner that reads every text message with a validating parser may turn the check off and
  // fail the connection itself: make_realtime_socket does, since the socket's JSON parsers
  // validate UTF-8 as they read and a second pass over every message cost ~3 % of its time.
  bool check_text_utf8 = true;
  // Outbound frames queued before send() fails with too_large.
  std::size_t max_queued_frames = 4096;
  // The User-Agent header of the upgrade request.
  std::string user_agent = "rtsync-realtime/0.1";
};

// Bytes readable after every message the Beast transport delivers (Transport::message_padding).
inline constexpr std::size_t kBeastMessagePadding = 64;

// A Transport over Boost.Beast whose callbacks run on `io` (the loop's io_context). Call on the
// loop thread; the transport is loop-confined like its owner.
std::unique_ptr<Transport> make_beast_transport(boost::asio::io_context& io,
                                                BeastTransportOptions options = {});

// A RealtimeSocket on `loop` speaking over Beast (max_frame_bytes taken from `options`; text is
// checked for UTF-8 by the socket, so check_text_utf8 is turned off).
// Call on the loop thread.
std::unique_ptr<RealtimeSocket> make_realtime_socket(core::EventLoop& loop, SocketOptions options,
                                                     BeastTransportOptions transport = {});

}  // namespace rtsync::client
