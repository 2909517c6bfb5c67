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

struct JoinConfig {
  bool broadcast_ack = false;
  bool broadcast_self = false;
  std::string presence_key;  // "" → server picks
  bool presence_enabled = false;
  std::vector<PostgresChangesSpec> postgres_changes;
  bool is_private = false;
};

struct JoinRequest {
  JoinConfig config;
  std::optional<std::string> access_token;  // also accepts legacy "user_token"
};

// {"config":{"broadcast":{"ack":…,"self":…},"presence":{"key":…,"enabled":…},
//   "postgres_changes":[{"event":…,"schema":…,"table":…,"filter":…}],"private":…}
//  [,"access_token":…]}  — absent optional spec fields are omitted.
json::value build_join_payload(const JoinRequest& request);

// Lenient like the server: booleans accept true/false and "true"/"false" in any case; missing
// sections take defaults; unknown keys are ignored. Errors only for shapes that cannot be read
// (config not an object, postgres_changes not an array of objects, event not a string…).
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
