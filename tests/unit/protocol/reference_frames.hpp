// Frames as Supabase Realtime's protocol documentation and server tests print them (whitespace as
// printed there; docs/protocol.md states what they show; the integration-test frames have their
// Elixir placeholders replaced by concrete values).
#pragma once

#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"

namespace rtsync::protocol::test {

// A JSON literal of a test as a value.
inline json::value jv(std::string_view text) {
  return json::parse(text);
}

// ---- vsn 2.0.0 (arrays) ---------------------------------------------------------------------

// 1.4
inline constexpr std::string_view kV2Heartbeat = R"f([null, "26", "phoenix", "heartbeat", {}])f";
inline constexpr std::string_view kV2HeartbeatReply =
    R"f([null, "26", "phoenix", "phx_reply", {"status": "ok", "response": {}}])f";
// 1.2
inline constexpr std::string_view kV2JoinDocs =
    R"f(["1", "1", "realtime:presence-room", "phx_join", {"config": {"broadcast": {"ack": false, "self": false}, "presence": {"enabled": false}, "private": false}}])f";
// 2.2 what realtime-js sends (postgres_changes + access_token + version)
inline constexpr std::string_view kV2JoinRealtimeJs =
    R"f(["3","3","realtime:room1","phx_join",{"config":{"broadcast":{"ack":false,"self":false},"presence":{"key":"","enabled":false},"postgres_changes":[{"event":"*","schema":"public","table":"todos","filter":"id=eq.1"}],"private":false},"access_token":"eyJhbGciOi...","version":"realtime-js/2.112.2"}])f";
// 2.2 docs example with replay and presence
inline constexpr std::string_view kV2JoinReplay =
    R"f(["3","5","realtime:chat-room","phx_join",{"config":{"broadcast":{"ack":false,"self":true,"replay":{"since":1763407103911,"limit":10}},"presence":{"key":"user_id-827","enabled":true},"postgres_changes":[],"private":true}}])f";
// 2.3
inline constexpr std::string_view kV2JoinReply =
    R"f(["1","1","realtime:chat-room","phx_reply",{"status":"ok","response":{"postgres_changes":[{"id":106243155,"event":"*","schema":"public","table":"test"}]}}])f";
// 2.5 format {"status":"error","response":{"reason":"<Code>: <message>"}} on a join reply frame
inline constexpr std::string_view kV2JoinErrorReply =
    R"f(["1","1","realtime:","phx_reply",{"status":"error","response":{"reason":"TopicNameRequired: You must provide a topic name"}}])f";
inline constexpr std::string_view kV2UnmatchedTopicReply =
    R"f(["1","1","room","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}])f";
// 2.6
inline constexpr std::string_view kV2System =
    R"f(["13", null, "realtime:chat-room", "system", {"message": "Subscribed to PostgreSQL", "status": "ok", "extension": "postgres_changes", "channel": "main"}])f";
// 3.1
inline constexpr std::string_view kV2PostgresChanges = R"f([
  null,
  null,
  "realtime:chat-room",
  "postgres_changes",
  {
    "ids": [104868189],
    "data": {
      "schema": "public",
      "table": "test",
      "commit_timestamp": "2025-11-19T00:22:40.877Z",
      "type": "UPDATE",
      "columns": [
        { "name": "id", "type": "int8" },
        { "name": "created_at", "type": "timestamptz" },
        { "name": "text", "type": "text" }
      ],
      "record": { "id": 46, "text": "content", "created_at": "2025-11-03T09:32:55+00:00" },
      "old_record": { "id": 46 },
      "errors": null
    }
  }
])f";
// 3.2
inline constexpr std::string_view kV2BroadcastIn =
    R"f(["10","1","realtime:chat-room","broadcast",{"event":"user-event","type":"broadcast","payload":{"content":"Hello, World!","createdAt":"2025-11-17T21:14:14Z","id":"9b823349-71c0-465b-9a83-a63aa2a9ae6d","username":"VCSHLD556nQD-B-vUTJJ3"}}])f";
inline constexpr std::string_view kV2BroadcastOut =
    R"f([null,null,"realtime:chat-room","broadcast",{"event":"message","type":"broadcast","meta":{"id":"006554ce-d22d-469c-877a-88bef47214a3"},"payload":{"id":"513edcc1-4cbc-4274-aa26-c195f7e8c090","content":"oi","username":"hpK9jN2iY-I2HioHWr5ml","createdAt":"2025-11-18T22:44:29Z"}}])f";
// 3.4
inline constexpr std::string_view kV2PresenceTrack =
    R"f(["1","5","realtime:presence-room","presence",{"type":"presence","event":"track","payload":{"name":"Alice","color":"hsl(29, 100%, 70%)"}}])f";
inline constexpr std::string_view kV2PresenceState =
    R"f(["4",null,"realtime:cursor-room","presence_state",{"2wCojG1xWgxG2ZxwocvSX":{"metas":[{"phx_ref":"GHlA1fShRjMmZhnL","color":"hsl(204, 100%, 70%)","key":"2wCojG1xWgxG2ZxwocvSX"}]}}])f";
inline constexpr std::string_view kV2PresenceDiff =
    R"f([null,null,"realtime:cursor-room","presence_diff",{"joins":{"XnAJXkZVEJuBYZcp9GCG5":{"metas":[{"phx_ref":"GHlE8VLvxuKGzQJN","color":"hsl(60, 100%, 70%)","user":"123"}]}},"leaves":{"ouCsaiOdKZ9yauoy4x5pv":{"metas":[{"phx_ref":"GHlE8HyhSPAmZgdB","color":"hsl(72, 100%, 70%)","user":"456"}]}}}])f";
// 3.5
inline constexpr std::string_view kV2Leave =
    R"f(["1", "3", "realtime:avatar-stack-demo", "phx_leave", {}])f";
inline constexpr std::string_view kV2Close =
    R"f(["3", "3", "realtime:avatar-stack-demo", "phx_close", {}])f";
inline constexpr std::string_view kV2Error =
    R"f(["3", "3", "realtime:avatar-stack-demo", "phx_error", {}])f";
// 3.6
inline constexpr std::string_view kV2AccessToken =
    R"f(["10","1","realtime:chat-room","access_token",{"access_token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."}])f";
// 1.2 realtime-js serializer unit test
inline constexpr std::string_view kV2SerializerTest = R"f([null,null,"t","e",{"foo":1}])f";

// ---- vsn 1.0.0 (objects) --------------------------------------------------------------------

// 1.4
inline constexpr std::string_view kV1Heartbeat =
    R"f({"topic":"phoenix","event":"heartbeat","payload":{},"ref":"26"})f";
inline constexpr std::string_view kV1HeartbeatReply =
    R"f({"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"26"})f";
// 1.2 docs join (client → server, carries join_ref)
inline constexpr std::string_view kV1Join = R"f({
  "topic": "realtime:presence-room",
  "event": "phx_join",
  "payload": {
    "config": {
      "broadcast": { "ack": false, "self": false },
      "presence": { "enabled": false },
      "private": false
    }
  },
  "ref": "1",
  "join_ref": "1"
})f";
// 1.2 reply captured in supabase-py #1297 (key order differs from ours)
inline constexpr std::string_view kV1JoinReplyPy =
    R"f({"ref":"1","event":"phx_reply","payload":{"status":"ok","response":{"postgres_changes":[]}},"topic":"realtime:test"})f";
// 2.3 server integration test (id placeholder replaced)
inline constexpr std::string_view kV1JoinReplyIntegration =
    R"f({"event":"phx_reply","ref":"1","topic":"realtime:any","payload":{"status":"ok","response":{"postgres_changes":[{"event":"INSERT","id":12345678,"schema":"public"}]}}})f";
// 2.6 integration test rendering plus the "ref":null the V1 serializer always writes
inline constexpr std::string_view kV1SystemTokenExpired =
    R"f({"event":"system","topic":"realtime:t1","payload":{"extension":"system","message":"Token has expired 12 seconds ago","status":"error","channel":"t1"},"ref":null})f";
inline constexpr std::string_view kV1CloseAfterSystem =
    R"f({"event":"phx_close","topic":"realtime:t1","payload":{},"ref":null})f";

// ---- the server's "too many changes" signal (include/rtsync/protocol/reply.hpp) -----------------

inline constexpr std::string_view kV2TooManyChanges =
    R"f(["4",null,"realtime:task-updates:p1","system",{"extension":"postgres_changes","status":"ok","message":"Too many changes","channel":"task-updates:p1","schema":"public","table":"tasks","limit":1000}])f";
inline constexpr std::string_view kV1TooManyChanges =
    R"f({"topic":"realtime:task-updates:p1","event":"system","payload":{"extension":"postgres_changes","status":"ok","message":"Too many changes","channel":"task-updates:p1","schema":"public","table":"tasks","limit":1000},"ref":null})f";

}  // namespace rtsync::protocol::test
