#include "rtsync/protocol/reply.hpp"

#include <limits>

#include "json_text.hpp"

namespace rtsync::protocol {

namespace {

Error reply_error(std::string message) {
  return make_error(Errc::invalid_frame, std::move(message));
}

using detail::read_string;

}  // namespace

std::string Reply::reason() const {
  if (const auto* s = response.if_string()) return std::string(s->data(), s->size());
  if (auto r = core::find_string(response, "reason")) return std::string(*r);
  return json::serialize(response);
}

Result<Reply> parse_reply(const json::value& payload) {
  const auto* o = payload.if_object();
  if (!o) return reply_error("reply payload must be an object");
  const auto status = core::find_string(payload, "status");
  if (!status) return reply_error("reply payload has no string status");
  Reply r;
  if (*status == "ok") {
    r.status = ReplyStatus::ok;
  } else if (*status == "error") {
    r.status = ReplyStatus::error;
  } else {
    return reply_error("unknown reply status \"" + std::string(*status) + "\"");
  }
  if (const auto* response = o->if_contains("response")) r.response = *response;
  return r;
}

json::value build_reply(const Reply& reply) {
  json::object o;
  o.reserve(2);
  o.emplace("status", reply.status == ReplyStatus::ok ? "ok" : "error");
  o.emplace("response", reply.response);
  return o;
}

json::value ok_reply(json::value response) {
  json::object o;
  o.reserve(2);
  o.emplace("status", "ok");
  o.emplace("response", std::move(response));
  return o;
}

json::value error_reply(std::string_view code, std::string_view message) {
  std::string reason;
  reason.reserve(code.size() + 2 + message.size());
  if (!code.empty()) {
    reason.append(code);
    reason.append(": ");
  }
  reason.append(message);
  json::object o;
  o.reserve(2);
  o.emplace("status", "error");
  o.emplace("response", json::object{{"reason", std::move(reason)}});
  return o;
}

Result<SystemMessage> parse_system(const json::value& payload) {
  const auto* o = payload.if_object();
  if (!o) return reply_error("system payload must be an object");
  SystemMessage m;
  if (!read_string(*o, "extension", m.extension))
    return reply_error("system payload has no string extension");
  if (!read_string(*o, "status", m.status))
    return reply_error("system payload has no string status");
  if (!read_string(*o, "message", m.message))
    return reply_error("system payload has no string message");
  if (const auto* c = o->if_contains("channel");
      c && !c->is_null() && !read_string(*o, "channel", m.channel)) {
    return reply_error("system payload channel is not a string");
  }
  return m;
}

std::optional<ChangesOverflow> parse_changes_overflow(const json::value& payload) {
  auto sys = parse_system(payload);
  if (!sys.ok()) return std::nullopt;
  auto& m = sys.value();
  if (m.extension != "postgres_changes" || m.status != "ok" ||
      m.message != kTooManyChangesMessage) {
    return std::nullopt;
  }
  const auto& o = payload.as_object();  // parse_system checked it is one
  ChangesOverflow out;
  if (!read_string(o, "schema", out.schema) || out.schema.empty()) return std::nullopt;
  if (!read_string(o, "table", out.table) || out.table.empty()) return std::nullopt;
  if (const auto* l = o.if_contains("limit")) {
    if (const auto* i = l->if_int64(); i && *i >= 0) {
      out.limit = *i;
    } else if (const auto* u = l->if_uint64();
               u && *u <= std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
      out.limit = std::int64_t(*u);
    }
  }
  out.channel = std::move(m.channel);
  return out;
}

json::value build_system(const SystemMessage& m) {
  json::object o;
  o.reserve(4);
  o.emplace("extension", m.extension);
  o.emplace("status", m.status);
  o.emplace("message", m.message);
  o.emplace("channel", m.channel);
  return o;
}

}  // namespace rtsync::protocol
