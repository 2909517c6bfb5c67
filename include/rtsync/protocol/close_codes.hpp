// WebSocket close codes (RFC 6455 section 7.4.1) that rtsync's client and server send, expect or
// report: defined once here for both sides.
//
// Thread safety: constants.
#pragma once

#include <cstdint>

namespace rtsync::protocol::close_code {

/// The connection finished its purpose (a client's disconnect, a server's normal close).
inline constexpr std::uint16_t kNormal = 1000;
/// The server is shutting down.
inline constexpr std::uint16_t kGoingAway = 1001;
/// The peer broke the WebSocket framing rules.
inline constexpr std::uint16_t kProtocolError = 1002;
/// Never on the wire: the close frame carried no code.
inline constexpr std::uint16_t kNoStatus = 1005;
/// Never on the wire: the connection dropped without a close frame.
inline constexpr std::uint16_t kAbnormal = 1006;
/// A text message was not UTF-8.
inline constexpr std::uint16_t kInvalidPayload = 1007;
/// Policy violation: the server closes a slow consumer with it (the reason says which limit).
inline constexpr std::uint16_t kPolicyViolation = 1008;
/// A message above the receiver's size limit.
inline constexpr std::uint16_t kMessageTooBig = 1009;
/// Service restart: the server's change feed has a hole; rejoin (the resume tells the gap).
inline constexpr std::uint16_t kServiceRestart = 1012;

}  // namespace rtsync::protocol::close_code
