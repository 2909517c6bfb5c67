#include "json_lines.hpp"

#include <vector>

namespace rtsync::app::view {

std::string_view to_string(ConnectionStateName s) noexcept {
  switch (s) {
    case ConnectionStateName::connecting:
      return "connecting";
    case ConnectionStateName::connected:
      return "connected";
    case ConnectionStateName::disconnected:
      return "disconnected";
    case ConnectionStateName::error:
      return "error";
  }
  return "disconnected";
}

ConnectionStateName connection_state_name(bool is_connected, bool is_connecting, bool has_error) {
  if (is_connected) return ConnectionStateName::connected;
  if (is_connecting) return ConnectionStateName::connecting;
  if (has_error) return ConnectionStateName::error;
  return ConnectionStateName::disconnected;
}

namespace {

std::optional<std::string> string_at(const json::value* v, std::string_view key) {
  if (!v || !v->is_object()) return std::nullopt;
  const auto* f = v->as_object().if_contains(key);
  if (!f || !f->is_string()) return std::nullopt;
  return std::string(f->as_string());
}

json::value opt(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::value opt(const std::optional<std::int64_t>& n) {
  return n ? json::value(*n) : json::value(nullptr);
}

std::string line(const json::object& o) {
  return json::serialize(o);
}

}  // namespace

TaskEventInfo task_event_info(const json::value& payload) {
  TaskEventInfo info;
  if (!payload.is_object()) {
    info.source = "unknown";
    return info;
  }
  const auto& o = payload.as_object();
  // postgres_changes: the realtime-js change shape.
  if (const auto* rec = o.if_contains("new");
      rec && rec->is_object() && !rec->as_object().empty()) {
    info.source = "postgres_changes";
    info.task_id = string_at(rec, "id");
    info.status = string_at(rec, "status");
    info.project_id = string_at(rec, "project_id");
    return info;
  }
  if (const auto* rec = o.if_contains("old"); o.contains("eventType") && rec && rec->is_object()) {
    info.source = "postgres_changes";
    info.task_id = string_at(rec, "id");
    info.status = string_at(rec, "status");
    info.project_id = string_at(rec, "project_id");
    return info;
  }
  // Broadcast from Database (realtime.broadcast_changes): {event, payload:{record, old_record,
  // operation, table, schema, id}[, meta]} — the task is the record (the old one for a DELETE).
  if (const auto* inner = o.if_contains("payload"); inner && inner->is_object()) {
    const auto& p = inner->as_object();
    if (p.contains("operation") && (p.contains("record") || p.contains("old_record"))) {
      const json::value* rec = p.if_contains("record");
      if (!rec || !rec->is_object()) rec = p.if_contains("old_record");
      info.source = "broadcast";
      if (rec && rec->is_object()) {
        info.task_id = string_at(rec, "id");
        info.status = string_at(rec, "status");
        info.project_id = string_at(rec, "project_id");
      }
      return info;
    }
  }
  // Broadcast: {event, payload:{type, payload:{…}}} or {type, payload:{…}} or the fields flat.
  const json::value* body = &payload;
  for (int depth = 0; depth < 3 && body->is_object(); ++depth) {
    const auto& b = body->as_object();
    if (b.contains("taskId") || b.contains("task_id")) break;
    const auto* inner = b.if_contains("payload");
    if (!inner || !inner->is_object()) break;
    body = inner;
  }
  info.source = o.contains("event") || o.contains("type") ? "broadcast" : "unknown";
  info.task_id = string_at(body, "taskId");
  if (!info.task_id) info.task_id = string_at(body, "task_id");
  info.status = string_at(body, "status");
  info.project_id = string_at(body, "projectId");
  if (!info.project_id) info.project_id = string_at(body, "project_id");
  return info;
}

std::string connection_line(ConnectionStateName state, const std::optional<std::string>& error,
                            std::string_view at) {
  json::object o;
  o["type"] = "connection";
  o["state"] = to_string(state);
  o["error"] = opt(error);
  o["at"] = at;
  return line(o);
}

std::string event_line(std::string_view name, const TaskEventInfo& info, std::string_view at) {
  json::object o;
  o["type"] = "event";
  o["name"] = name;
  o["task_id"] = opt(info.task_id);
  o["status"] = opt(info.status);
  o["project_id"] = opt(info.project_id);
  o["source"] = info.source;
  o["at"] = at;
  return line(o);
}

std::string overflow_line(const json::value& detail, std::string_view at) {
  std::optional<std::int64_t> limit;
  if (const auto* o = detail.if_object()) {
    if (const auto* l = o->if_contains("limit"); l && l->is_int64()) limit = l->as_int64();
  }
  json::object o;
  o["type"] = "overflow";
  o["schema"] = opt(string_at(&detail, "schema"));
  o["table"] = opt(string_at(&detail, "table"));
  o["limit"] = opt(limit);
  o["project_id"] = opt(string_at(&detail, "projectId"));
  o["at"] = at;
  return line(o);
}

std::string resume_line(std::string_view topic, bool gap, std::int64_t replayed,
                        const json::value& from, std::string_view at) {
  json::object o;
  o["type"] = "resume";
  o["topic"] = topic;
  o["gap"] = gap;
  o["replayed"] = replayed;
  o["from"] = from.is_object() ? from : json::value(nullptr);
  o["at"] = at;
  return line(o);
}

std::string presence_line(const std::optional<std::string>& project_id,
                          const std::vector<Viewer>& viewers, const ViewerChange& change,
                          std::string_view at) {
  auto list = [](const std::vector<Viewer>& vs) {
    json::array a;
    for (const auto& v : vs)
      a.push_back(viewer_json(v));
    return a;
  };
  json::object o;
  o["type"] = "presence";
  o["project_id"] = opt(project_id);
  o["count"] = static_cast<std::int64_t>(viewers.size());
  o["viewers"] = list(viewers);
  o["joins"] = list(change.joins);
  o["leaves"] = list(change.leaves);
  o["at"] = at;
  return line(o);
}

std::string query_line(const QueryLine& q) {
  json::object o;
  o["type"] = "query";
  o["key"] = q.key;
  o["status"] = q.status;
  o["fetching"] = q.fetching;
  o["rows"] = opt(q.rows);
  o["total"] = opt(q.total);
  o["updated_at"] = opt(q.updated_at);
  o["error"] = opt(q.error);
  return line(o);
}

std::string polling_line(const json::array& key, std::int64_t interval_ms,
                         std::int64_t stale_time_ms) {
  json::object o;
  o["type"] = "polling";
  o["key"] = key;
  o["interval_ms"] = interval_ms;
  o["stale_time_ms"] = stale_time_ms;
  return line(o);
}

namespace {

void pretty(const json::value& v, int level, int indent, std::string prefix,
            std::vector<std::string>& out, bool trailing_comma) {
  const std::string pad(static_cast<std::size_t>(level * indent), ' ');
  const std::string comma = trailing_comma ? "," : "";
  if (v.is_object() && !v.as_object().empty()) {
    out.push_back(pad + prefix + "{");
    const auto& o = v.as_object();
    std::size_t i = 0;
    for (const auto& kv : o) {
      ++i;
      pretty(kv.value(), level + 1, indent, json::serialize(json::value(kv.key())) + ": ", out,
             i < o.size());
    }
    out.push_back(pad + "}" + comma);
  } else if (v.is_array() && !v.as_array().empty()) {
    const auto& a = v.as_array();
    // Short arrays of scalars (query keys) stay on one line.
    bool scalars = a.size() <= 8;
    for (const auto& e : a)
      scalars = scalars && !e.is_object() && !e.is_array();
    if (scalars) {
      out.push_back(pad + prefix + json::serialize(v) + comma);
      return;
    }
    out.push_back(pad + prefix + "[");
    for (std::size_t i = 0; i < a.size(); ++i)
      pretty(a[i], level + 1, indent, "", out, i + 1 < a.size());
    out.push_back(pad + "]" + comma);
  } else {
    out.push_back(pad + prefix + json::serialize(v) + comma);
  }
}

}  // namespace

std::vector<std::string> pretty_lines(const json::value& value, int indent) {
  std::vector<std::string> out;
  pretty(value, 0, indent, "", out, false);
  return out;
}

}  // namespace rtsync::app::view
