// The phx_join payload (docs/protocol.md §2.2) and the join reply's postgres_changes echo (§2.3).
//
// Thread safety: pure functions over values; no shared state.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/result.hpp"

namespace rtsync::protocol {

// One postgres_changes binding as sent in config.postgres_changes.
struct PostgresChangesSpec {
  std::string event = "*";  // INSERT | UPDATE | DELETE | *
  std::optional<std::string> schema;
  std::optional<std::string> table;
  std::optional<std::string> filter;

  friend bool operator==(const PostgresChangesSpec&, const PostgresChangesSpec&) = default;
};

// config.broadcast.replay (docs/database-broadcast.md): replay the channel's stored private
// broadcasts inserted at or after `since`, the last `limit` of them.
struct ReplayConfig {
  std::int64_t since = 0;               // milliseconds since the Unix epoch
  std::optional<std::int64_t> limit{};  // absent: the server's default (25)
  // Field by field.
  friend bool operator==(const ReplayConfig&, const ReplayConfig&) = default;
};

// Replay limits as Supabase Realtime applies them: the limit is clamped to 1..kReplayMaxLimit,
// kReplayDefaultLimit when absent; `since` must be a time a calendar can name (years
// -9999..9999, as Elixir's DateTime accepts).
inline constexpr std::int64_t kReplayMaxLimit = 25;
inline constexpr std::int64_t kReplayDefaultLimit = 25;
inline constexpr std::int64_t kReplayMinSinceMs = -377'705'116'800'000;  // -9999-01-01
inline constexpr std::int64_t kReplayMaxSinceMs = 253'402'300'799'999;   // 9999-12-31
// The limit a server uses for `replay` (clamped, default when absent).
std::int64_t effective_replay_limit(const ReplayConfig& replay) noexcept;

struct JoinConfig {
  bool broadcast_ack = false;
  bool broadcast_self = false;
  // broadcast.replay when it was sent with valid params (an integer `since` in range, an integer
  // `limit` or none); `replay_invalid` when it was sent (not null) and is not that.
  std::optional<ReplayConfig> replay{};
  bool replay_invalid = false;
  std::string presence_key;  // "" → server picks
  bool presence_enabled = false;
  std::vector<PostgresChangesSpec> postgres_changes;
  bool is_private = false;
};

struct JoinRequest {
  JoinConfig config;
  std::optional<std::string> access_token;  // also accepts legacy "user_token"
};

// {"config":{"broadcast":{"ack":…,"self":…[,"replay":{"since":…[,"limit":…]}]},"presence":{"key":…,"enabled":…},
//   "postgres_changes":[{"event":…,"schema":…,"table":…,"filter":…}],"private":…}
//  [,"access_token":…]}  — absent optional spec fields are omitted.
json::value build_join_payload(const JoinRequest& request);

// Lenient like the server: booleans accept true/false and "true"/"false" in any case; missing
// sections take defaults; unknown keys are ignored; a replay that cannot be used sets
// replay_invalid instead of failing the parse (the server answers it with its own join error).
// Errors only for shapes that cannot be read (config not an object, postgres_changes not an array
// of objects, event not a string…).
Result<JoinRequest> parse_join_payload(const json::value& payload);

// One element of the join reply's postgres_changes: the requested spec plus its integer id.
struct PostgresChangesAck {
  PostgresChangesSpec spec;
  std::int64_t id = 0;
};

// Reads reply.response.postgres_changes (absent → nullopt, as realtime-js distinguishes it).
Result<std::optional<std::vector<PostgresChangesAck>>> parse_join_response(
    const json::value& response);
json::value build_join_response(const std::vector<PostgresChangesAck>& acks);

// realtime-js's isFilterValueEqual: schema/table/filter equal where null/missing match each
// other; event compared exactly.
bool spec_matches_ack(const PostgresChangesSpec& client, const PostgresChangesSpec& server);

}  // namespace rtsync::protocol
