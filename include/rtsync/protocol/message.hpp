// Supabase Realtime (Phoenix channels) messages and their wire encodings — no I/O.
// The protocol facts: docs/protocol.md §1.2 (frame formats) and §1.3 (refs).
//
//   vsn 1.0.0: text frames holding a JSON object {topic, event, payload, ref[, join_ref]};
//              the server never sends join_ref.
//   vsn 2.0.0: text frames holding a JSON array [join_ref, ref, topic, event, payload], plus
//              binary frames: kind 3 (user broadcast push, client → server) and kind 4 (user
//              broadcast, server → client).
//
// Every decoder returns a typed Error for bad input; none throws (except std::bad_alloc), none
// reads out of bounds. JSON nesting deeper than 128 levels is rejected as invalid_json.
// Accepted text frames: topic and event must be strings; refs strings or null; the payload must be
// a JSON object (Phoenix hands channels a map; anything else is invalid_frame). vsn 2 arrays may
// have more than 5 elements (extra ones are ignored, as the server does). Numbers beyond double
// range decode as ±Infinity (Boost.JSON 1.81 also reads 0e400 as NaN); encoders write non-finite
// doubles as null, as JSON.stringify does, and doubles in shortest round-trip form.
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::protocol {

enum class Vsn { v1, v2 };

// "1.0.0" → v1, "2.0.0" → v2 (any "1.x"/"2.x" accepted, as Phoenix negotiates "~> 1.0.0");
// empty → v1 (the server default when the query parameter is absent).
Result<Vsn> parse_vsn(std::string_view text);
std::string_view to_string(Vsn vsn) noexcept;  // "1.0.0" / "2.0.0"

namespace events {
inline constexpr std::string_view kJoin = "phx_join";
inline constexpr std::string_view kLeave = "phx_leave";
inline constexpr std::string_view kReply = "phx_reply";
inline constexpr std::string_view kClose = "phx_close";
inline constexpr std::string_view kError = "phx_error";
inline constexpr std::string_view kHeartbeat = "heartbeat";
inline constexpr std::string_view kBroadcast = "broadcast";
inline constexpr std::string_view kPostgresChanges = "postgres_changes";
inline constexpr std::string_view kSystem = "system";
inline constexpr std::string_view kAccessToken = "access_token";
inline constexpr std::string_view kPresence = "presence";
inline constexpr std::string_view kPresenceState = "presence_state";
inline constexpr std::string_view kPresenceDiff = "presence_diff";
}  // namespace events

inline constexpr std::string_view kPhoenixTopic = "phoenix";
inline constexpr std::string_view kTopicPrefix = "realtime:";

// Storage of decoded payloads: decode_v1/decode_v2/decode_text/to_message/decode_binary place
// the whole payload in one per-frame arena (a reference-counted Boost.JSON monotonic_resource):
// one allocation instead of one per node. It behaves as an ordinary json::value, with two
// things to know:
//   - json::value's copy constructor keeps the source's storage, so a sub-value copied out of a
//     payload shares (and keeps alive) the frame's arena; insert it into a container that has
//     its own storage, or copy with json::value(v, json::storage_ptr()), to detach it.
//   - The arena frees nothing until its last value dies, and it is not thread-safe: values that
//     share one arena may be read from any number of threads, but must not be mutated
//     concurrently from different threads.
struct Message {
  std::optional<std::string> join_ref;
  std::optional<std::string> ref;
  std::string topic;
  std::string event;
  json::value payload = json::object();

  friend bool operator==(const Message& a, const Message& b);
};

// Payload encoding byte of binary user broadcasts.
enum class PayloadEncoding : std::uint8_t { binary = 0, json = 1 };

// A binary user broadcast (kind 3 client → server, kind 4 server → client), fields as on the wire.
struct UserBroadcast {
  std::optional<std::string> join_ref;  // kind 3 only
  std::optional<std::string> ref;       // kind 3 only
  std::string topic;
  std::string user_event;
  std::string metadata;  // JSON text or empty
  PayloadEncoding encoding = PayloadEncoding::json;
  std::string payload;  // the bytes after the header fields (JSON text when encoding is json)
};

enum class BinaryKind : std::uint8_t {
  push = 0,
  reply = 1,
  broadcast = 2,
  user_broadcast_push = 3,
  user_broadcast = 4,
};

// ---- text frames ----------------------------------------------------------------------------

Result<Message> decode_v1(std::string_view text);
Result<Message> decode_v2(std::string_view text);
Result<Message> decode_text(Vsn vsn, std::string_view text);

// V1 omits join_ref when absent (and the server never sends it); V2 writes null for absent refs.
std::string encode_v1(const Message& m);
std::string encode_v2(const Message& m);
std::string encode_text(Vsn vsn, const Message& m);

// ---- binary frames --------------------------------------------------------------------------

// Decodes a kind 3 or kind 4 frame as laid out in docs/protocol.md §1.2. Errors: truncated (shorter
// than its header, or lengths past the end), unknown_kind (0, 1, 2 or anything else), invalid_frame
// (payload encoding neither 0 nor 1), invalid_utf8 (topic, event, refs), invalid_json (metadata
// not JSON, or a JSON-encoded payload that is not). A zero-length join_ref/ref decodes as nullopt
// (realtime-js writes absent refs as empty), and nullopt encodes as zero length.
Result<UserBroadcast> decode_user_broadcast(std::string_view bytes);

// Field lengths above 255 bytes cannot be encoded: too_large.
Result<std::string> encode_user_broadcast_push(const UserBroadcast& b);  // kind 3
Result<std::string> encode_user_broadcast(const UserBroadcast& b);       // kind 4

// The Message a receiver sees for a binary user broadcast (what realtime-js reconstructs):
//   {join_ref, ref, topic, event:"broadcast", payload:{type:"broadcast", event, payload[, meta]}}
// A binary-encoded (0) payload appears as a JSON string of the raw bytes under "payload".
Result<Message> to_message(const UserBroadcast& b);

// decode_user_broadcast + to_message in one pass (the payload is parsed once, not validated and
// then parsed): what a vsn 2 client does with every binary frame it receives.
Result<Message> decode_binary(std::string_view bytes);

// The text frame a vsn 1 or vsn 2 receiver gets for a user broadcast, built by splicing the
// already-validated JSON texts of `b` without parsing them:
//   v1:
//   {"topic":T,"event":"broadcast","payload":{"type":"broadcast","event":E,"payload":P[,"meta":M]},"ref":null}
//   v2: [null,null,T,"broadcast",{"type":"broadcast","event":E,"payload":P[,"meta":M]}]
// `b.payload` and `b.metadata` must be valid JSON (as decode_user_broadcast guarantees); an empty
// payload is written as {}. Error invalid_argument for a binary-encoded (0) payload: text frames
// cannot carry it (the server drops such broadcasts for vsn 1 sockets).
Result<std::string> encode_broadcast_text(Vsn vsn, const UserBroadcast& b);

}  // namespace rtsync::protocol
