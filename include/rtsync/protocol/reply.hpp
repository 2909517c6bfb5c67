// phx_reply payloads and system messages (reference sections 2.3, 2.5, 2.6).
//
// Thread safety: pure functions over values; no shared state.
#pragma once

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

}  // namespace rtsync::protocol
