// `rtsync watch --json`: one JSON object per line on stdout instead of the screen (documented in
// docs/watch-json.md). These builders are pure; the client side decides when to emit.
//
//   {"type":"connection","state":"connecting|connected|disconnected|error","error":null|"…","at":"…"}
//   {"type":"event","name":"realtime:task-new|realtime:task-update","task_id":"…"|null,
//    "status":"…"|null,"project_id":"…"|null,"source":"postgres_changes|broadcast","at":"…"}
//   {"type":"query","key":[…],"status":"pending|success|error","fetching":bool,"rows":N|null,
//    "total":N|null,"updated_at":"…"|null,"error":null|"…"}
//   {"type":"polling","key":[…],"interval_ms":N,"stale_time_ms":N}
//   {"type":"overflow","schema":"public","table":"tasks","limit":N|null,"project_id":"…"|null,
//    "at":"…"}
//   {"type":"presence","project_id":"…"|null,"count":N,"viewers":[viewer…],"joins":[viewer…],
//    "leaves":[viewer…],"at":"…"}  (viewer: {"name","user_id","client","since","session"})
//   {"type":"resume","topic":"realtime:…","gap":bool,"replayed":N,
//    "from":{"epoch","lsn","index"}|null,"at":"…"}
// Times are ISO 8601 UTC with milliseconds ("2025-11-19T00:22:40.877Z").
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rtsync/core/json.hpp"
#include "viewers.hpp"

namespace rtsync::app::view {

// The connection state of the JSON stream, from the provider's state.
enum class ConnectionStateName : std::uint8_t { connecting, connected, disconnected, error };
std::string_view to_string(ConnectionStateName s) noexcept;
// connected wins, then connecting, then error (an error message), else disconnected.
ConnectionStateName connection_state_name(bool is_connected, bool is_connecting, bool has_error);

// What a realtime event says about a task, from either payload shape the manager emits:
// postgres_changes ({"eventType","new":{id,status,project_id,…},…}) or the task-update broadcast
// ({"event":"task-update","payload":{"type":"TASKS_STATUS_UPDATE","payload":{"taskId","status",
// "projectId",…}}}, also without the outer envelope), or a Broadcast-from-Database task change
// ({"event":"UPDATE","payload":{"record":{id,status,project_id,…},"old_record":…,"operation":…}}).
struct TaskEventInfo {
  std::optional<std::string> task_id;
  std::optional<std::string> status;
  std::optional<std::string> project_id;
  std::string source;  // "postgres_changes" | "broadcast" | "unknown"
};
TaskEventInfo task_event_info(const json::value& payload);

std::string connection_line(ConnectionStateName state, const std::optional<std::string>& error,
                            std::string_view at);
std::string event_line(std::string_view name, const TaskEventInfo& info, std::string_view at);
// From the detail of `realtime:changes-overflow` ({"schema","table","limit","projectId"}); fields
// missing or of another type are null.
std::string overflow_line(const json::value& detail, std::string_view at);

// One rejoin of the project's channel: resumed (`gap` false, `replayed` changes replayed) or a gap
// (`gap` true, `replayed` 0). `from`: the position the rejoin asked to resume from
// ({"epoch","lsn","index"}), or null when it had none to send; anything else reads as null.
std::string resume_line(std::string_view topic, bool gap, std::int64_t replayed,
                        const json::value& from, std::string_view at);

// Who else watches `project_id` now (`viewers`), and who arrived / left since the last line.
std::string presence_line(const std::optional<std::string>& project_id,
                          const std::vector<Viewer>& viewers, const ViewerChange& change,
                          std::string_view at);

struct QueryLine {
  json::array key;
  std::string status;  // pending | success | error
  bool fetching = false;
  std::optional<std::int64_t> rows;
  std::optional<std::int64_t> total;
  std::optional<std::string> updated_at;
  std::optional<std::string> error;
};
std::string query_line(const QueryLine& q);
std::string polling_line(const json::array& key, std::int64_t interval_ms,
                         std::int64_t stale_time_ms);

// `value` as indented JSON, one string per line (the diagnostics view).
std::vector<std::string> pretty_lines(const json::value& value, int indent = 2);

}  // namespace rtsync::app::view
