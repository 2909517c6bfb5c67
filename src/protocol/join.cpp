#include "rtsync/protocol/join.hpp"

#include <algorithm>
#include <cstdint>

#include "rtsync/core/strings.hpp"

namespace rtsync::protocol {

namespace {

Error payload_error(std::string message) {
  return make_error(Errc::invalid_frame, "join payload: " + std::move(message));
}

using core::iequals;

// The server's FlexibleBoolean: true/false, or the strings "true"/"false" in any case; null or
// missing keeps the default. Returns false if the value cannot be read as a boolean.
bool read_flexible_bool(const json::object& obj, std::string_view key, bool& out) {
  const auto* v = obj.if_contains(key);
  if (!v || v->is_null()) return true;
  if (v->is_bool()) {
    out = v->get_bool();
    return true;
  }
  if (const auto* s = v->if_string()) {
    const std::string_view text(s->data(), s->size());
    if (iequals(text, "true")) {
      out = true;
      return true;
    }
    if (iequals(text, "false")) {
      out = false;
      return true;
    }
  }
  return false;
}

// An optional string field: missing/null → nullopt; false if present with another type.
bool read_opt_string(const json::object& obj, std::string_view key,
                     std::optional<std::string>& out) {
  const auto* v = obj.if_contains(key);
  if (!v || v->is_null()) {
    out.reset();
    return true;
  }
  if (const auto* s = v->if_string()) {
    out.emplace(s->data(), s->size());
    return true;
  }
  return false;
}

// A section that must be an object when present: nullptr when missing or null.
Result<const json::object*> section(const json::object& obj, std::string_view key) {
  const auto* v = obj.if_contains(key);
  if (!v || v->is_null()) return static_cast<const json::object*>(nullptr);
  if (const auto* o = v->if_object()) return o;
  return payload_error(std::string(key) + " must be an object");
}

Result<PostgresChangesSpec> read_spec(const json::object& o) {
  PostgresChangesSpec spec;
  if (const auto* ev = o.if_contains("event"); ev && !ev->is_null()) {
    const auto* s = ev->if_string();
    if (!s) return payload_error("postgres_changes event must be a string");
    spec.event.assign(s->data(), s->size());
  }
  if (!read_opt_string(o, "schema", spec.schema)) {
    return payload_error("postgres_changes schema must be a string");
  }
  if (!read_opt_string(o, "table", spec.table)) {
    return payload_error("postgres_changes table must be a string");
  }
  if (!read_opt_string(o, "filter", spec.filter)) {
    return payload_error("postgres_changes filter must be a string");
  }
  return spec;
}

// An integral JSON number as int64 (doubles only when integral and in range), else nullopt.
std::optional<std::int64_t> integer_of(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

// config.broadcast.replay: {since: integer ms, limit: integer or absent}. Anything else that is
// not null is a replay the server must refuse as invalid.
void read_replay(const json::object& broadcast, JoinConfig& out) {
  const auto* v = broadcast.if_contains("replay");
  if (!v || v->is_null()) return;
  const auto* o = v->if_object();
  const auto* since = o ? o->if_contains("since") : nullptr;
  auto since_ms = since ? integer_of(*since) : std::nullopt;
  if (!since_ms || *since_ms < kReplayMinSinceMs || *since_ms > kReplayMaxSinceMs) {
    out.replay_invalid = true;
    return;
  }
  ReplayConfig r;
  r.since = *since_ms;
  if (const auto* limit = o->if_contains("limit"); limit && !limit->is_null()) {
    r.limit = integer_of(*limit);
    if (!r.limit) {
      out.replay_invalid = true;
      return;
    }
  }
  out.replay = r;
}

void write_spec(json::object& o, const PostgresChangesSpec& spec) {
  o.emplace("event", spec.event);
  if (spec.schema) o.emplace("schema", *spec.schema);
  if (spec.table) o.emplace("table", *spec.table);
  if (spec.filter) o.emplace("filter", *spec.filter);
}

}  // namespace

std::int64_t effective_replay_limit(const ReplayConfig& replay) noexcept {
  if (!replay.limit) return kReplayDefaultLimit;
  return std::clamp<std::int64_t>(*replay.limit, 1, kReplayMaxLimit);
}

json::value build_join_payload(const JoinRequest& request) {
  const auto& c = request.config;
  json::array changes;
  changes.reserve(c.postgres_changes.size());
  for (const auto& spec : c.postgres_changes) {
    json::object o;
    write_spec(o, spec);
    changes.emplace_back(std::move(o));
  }
  json::object config;
  json::object broadcast{{"ack", c.broadcast_ack}, {"self", c.broadcast_self}};
  if (c.replay) {
    json::object replay{{"since", c.replay->since}};
    if (c.replay->limit) replay.emplace("limit", *c.replay->limit);
    broadcast.emplace("replay", std::move(replay));
  }
  config.emplace("broadcast", std::move(broadcast));
  config.emplace("presence",
                 json::object{{"key", c.presence_key}, {"enabled", c.presence_enabled}});
  config.emplace("postgres_changes", std::move(changes));
  config.emplace("private", c.is_private);
  json::object payload;
  payload.emplace("config", std::move(config));
  if (request.access_token) payload.emplace("access_token", *request.access_token);
  return payload;
}

Result<JoinRequest> parse_join_payload(const json::value& payload) {
  const auto* root = payload.if_object();
  if (!root) return payload_error("must be an object");
  JoinRequest req;

  if (!read_opt_string(*root, "access_token", req.access_token)) {
    return payload_error("access_token must be a string");
  }
  if (!req.access_token && !read_opt_string(*root, "user_token", req.access_token)) {
    return payload_error("user_token must be a string");
  }

  auto config = section(*root, "config");
  if (!config.ok()) return config.error();
  if (!config.value()) return req;
  const auto& cfg = *config.value();
  auto& out = req.config;

  auto broadcast = section(cfg, "broadcast");
  if (!broadcast.ok()) return broadcast.error();
  if (const auto* b = broadcast.value()) {
    if (!read_flexible_bool(*b, "ack", out.broadcast_ack)) {
      return payload_error("broadcast.ack must be a boolean");
    }
    if (!read_flexible_bool(*b, "self", out.broadcast_self)) {
      return payload_error("broadcast.self must be a boolean");
    }
    read_replay(*b, out);
  }

  auto presence = section(cfg, "presence");
  if (!presence.ok()) return presence.error();
  if (const auto* p = presence.value()) {
    if (!read_flexible_bool(*p, "enabled", out.presence_enabled)) {
      return payload_error("presence.enabled must be a boolean");
    }
    // The server accepts any key; non-strings are kept as their JSON text.
    if (const auto* key = p->if_contains("key"); key && !key->is_null()) {
      if (const auto* s = key->if_string()) {
        out.presence_key.assign(s->data(), s->size());
      } else {
        out.presence_key = json::serialize(*key);
      }
    }
  }

  if (const auto* pc = cfg.if_contains("postgres_changes"); pc && !pc->is_null()) {
    const auto* arr = pc->if_array();
    if (!arr) return payload_error("postgres_changes must be an array");
    out.postgres_changes.reserve(arr->size());
    for (const auto& item : *arr) {
      if (item.is_null()) continue;  // the server drops nil entries
      const auto* o = item.if_object();
      if (!o) return payload_error("postgres_changes entries must be objects");
      auto spec = read_spec(*o);
      if (!spec.ok()) return spec.error();
      out.postgres_changes.push_back(std::move(spec).value());
    }
  }

  if (!read_flexible_bool(cfg, "private", out.is_private)) {
    return payload_error("private must be a boolean");
  }
  return req;
}

Result<std::optional<std::vector<PostgresChangesAck>>> parse_join_response(
    const json::value& response) {
  using Out = std::optional<std::vector<PostgresChangesAck>>;
  const auto* root = response.if_object();
  if (!root) return make_error(Errc::invalid_frame, "join response must be an object");
  const auto* pc = root->if_contains("postgres_changes");
  if (!pc) return Out{};
  const auto* arr = pc->if_array();
  if (!arr)
    return make_error(Errc::invalid_frame, "join response postgres_changes is not an array");
  std::vector<PostgresChangesAck> acks;
  acks.reserve(arr->size());
  for (const auto& item : *arr) {
    const auto* o = item.if_object();
    if (!o)
      return make_error(Errc::invalid_frame,
                        "join response postgres_changes entry is not an object");
    auto spec = read_spec(*o);
    if (!spec.ok()) return make_error(Errc::invalid_frame, spec.error().message);
    auto id = core::find_int(item, "id");
    if (!id)
      return make_error(Errc::invalid_frame,
                        "join response postgres_changes entry has no integer id");
    acks.push_back(PostgresChangesAck{std::move(spec).value(), *id});
  }
  return Out{std::move(acks)};
}

json::value build_join_response(const std::vector<PostgresChangesAck>& acks) {
  json::array arr;
  arr.reserve(acks.size());
  for (const auto& ack : acks) {
    json::object o;
    o.emplace("id", ack.id);
    write_spec(o, ack.spec);
    arr.emplace_back(std::move(o));
  }
  return json::object{{"postgres_changes", std::move(arr)}};
}

bool spec_matches_ack(const PostgresChangesSpec& client, const PostgresChangesSpec& server) {
  return client.event == server.event && client.schema == server.schema &&
         client.table == server.table && client.filter == server.filter;
}

}  // namespace rtsync::protocol
