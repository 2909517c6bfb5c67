// phx_reply payloads and system messages (docs/protocol.md §2.3–§2.5).
//
// Thread safety: pure functions over values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::protocol {

enum class ReplyStatus { ok, error };

struct Reply {
  ReplyStatus status = ReplyStatus::ok;
  json::value response = json::object();

  // For error replies: the response itself if it is a string ("payload_size_exceeded" replies
  // carry a bare string response), else response.reason if it is a string, else the response
  // serialized as JSON ("{}" for an empty one).
  std::string reason() const;
};

// {"status":"ok"|"error","response":…}; error if status is missing or unknown.
Result<Reply> parse_reply(const json::value& payload);
json::value build_reply(const Reply& reply);
json::value ok_reply(json::value response = json::object());
// {"status":"error","response":{"reason":"<code>: <message>"}} (no prefix when code is empty).
json::value error_reply(std::string_view code, std::string_view message);

struct SystemMessage {
  std::string extension;  // "postgres_changes" | "system"
  std::string status;     // "ok" | "error"
  std::string message;
  std::string channel;  // sub-topic, without "realtime:"
};

// Errors (invalid_frame) unless extension, status and message are strings; a missing or null
// channel reads as "". Key order of build_system: extension, status, message, channel.
Result<SystemMessage> parse_system(const json::value& payload);
json::value build_system(const SystemMessage& m);

// The server's "too many changes" signal: more changes of one table in one transaction than the
// subscriber's limit. The server sends this ONE system message instead of the remaining changes,
// so whatever reads that table must refetch it:
//   {"extension":"postgres_changes","status":"ok","message":"Too many changes",
//    "channel":"<sub-topic>","schema":"public","table":"tasks","limit":1000}
inline constexpr std::string_view kTooManyChangesMessage = "Too many changes";

struct ChangesOverflow {
  std::string schema;
  std::string table;
  std::optional<std::int64_t> limit;  // the server's threshold; informational
  std::string channel;                // sub-topic, without "realtime:"; "" when absent
};

// The signal, or nullopt for any other payload. A match needs a valid system payload
// (parse_system) with extension "postgres_changes", status "ok", message exactly
// kTooManyChangesMessage, and non-empty string schema and table (without them nobody can tell what
// to refetch). `limit` is read when it is a non-negative integer and ignored otherwise; unknown
// fields are ignored. A status "error" message is never an overflow (it is the postgres_changes
// error report of docs/protocol.md §2.5).
std::optional<ChangesOverflow> parse_changes_overflow(const json::value& payload);

}  // namespace rtsync::protocol
