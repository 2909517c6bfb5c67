#include "rtsync/server/realtime/db_broadcast.hpp"

#include "rtsync/server/realtime/hub.hpp"

namespace rtsync::server::realtime {

namespace {

Error missing(std::string_view column, std::string_view why) {
  return make_error(Errc::invalid_argument,
                    "realtime.messages row: " + std::string(column) + " " + std::string(why));
}

}  // namespace

Result<DbBroadcast> decode_db_broadcast(const RowChange& change) {
  if (change.kind != ChangeKind::insert) return missing("change", "is not an insert");
  if (!change.record) return missing("record", "is absent");
  const json::object& row = *change.record;
  auto text = [&](std::string_view column, std::string& out) -> Result<void> {
    const auto* v = row.if_contains(column);
    if (!v || v->is_null()) return missing(column, "is missing");
    const auto* s = v->if_string();
    if (!s) return missing(column, "is not text");
    out.assign(s->data(), s->size());
    return {};
  };
  DbBroadcast b;
  if (auto r = text("topic", b.topic); !r) return r.error();
  if (auto r = text("event", b.event); !r) return r.error();
  if (auto r = text("id", b.id); !r) return r.error();
  const auto* priv = row.if_contains("private");
  if (!priv || priv->is_null()) return missing("private", "is missing");
  if (!priv->is_bool()) return missing("private", "is not a boolean");
  b.is_private = priv->get_bool();
  const auto* payload = row.if_contains("payload");
  if (!payload || payload->is_null()) return missing("payload", "is missing");
  // jsonb arrives parsed (its text when it could not be parsed, which jsonb never produces).
  b.payload = json::serialize(*payload);
  return b;
}

BroadcastMessage to_broadcast_message(const DbBroadcast& b) {
  BroadcastMessage m;
  m.topic = std::string(protocol::kTopicPrefix) + b.topic;
  m.is_private = b.is_private;
  m.id = b.id;
  protocol::UserBroadcast u;
  u.topic = m.topic;
  u.user_event = b.event;
  u.metadata = json::serialize(json::object{{"id", b.id}});
  u.encoding = protocol::PayloadEncoding::json;
  u.payload = b.payload;
  m.binary = std::move(u);
  return m;
}

}  // namespace rtsync::server::realtime
