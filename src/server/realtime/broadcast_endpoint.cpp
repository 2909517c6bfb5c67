#include "rtsync/server/realtime/broadcast_endpoint.hpp"

#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/core/json.hpp"
#include "rtsync/core/log.hpp"
#include "rtsync/server/http/request_parsing.hpp"
#include "rtsync/server/realtime/names.hpp"

namespace rtsync::server::realtime {
namespace {

constexpr std::string_view kPrefix = "/realtime/v1";
constexpr std::string_view kBroadcast = "/api/broadcast";

// The path after "/api/broadcast" ("" for the batch form), or nullopt for another path.
std::optional<std::string_view> broadcast_suffix(std::string_view path) {
  if (path.starts_with(kPrefix)) path.remove_prefix(kPrefix.size());
  if (!path.starts_with(kBroadcast)) return std::nullopt;
  return path.substr(kBroadcast.size());
}

http::HttpResponse answer(int status, std::string body) {
  http::HttpResponse r;
  r.status = status;
  if (!body.empty()) r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

http::HttpResponse json_error(int status, std::string_view key, std::string_view message) {
  json::object o;
  o[key] = message;
  return answer(status, json::serialize(o));
}

// "/a%20b/events/x" → {"a b", "events", "x"}
std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  if (path.starts_with('/')) path.remove_prefix(1);
  while (!path.empty()) {
    auto slash = path.find('/');
    auto seg = path.substr(0, slash);
    std::string decoded;
    for (std::size_t i = 0; i < seg.size(); ++i) {
      // Exactly two hex digits, and never a NUL byte into a topic or event name; anything else
      // stays as written.
      if (seg[i] == '%' && i + 2 < seg.size() &&
          std::isxdigit(static_cast<unsigned char>(seg[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(seg[i + 2]))) {
        const auto v = std::stoi(std::string(seg.substr(i + 1, 2)), nullptr, 16);
        if (v != 0) {
          decoded.push_back(static_cast<char>(v));
          i += 2;
          continue;
        }
      }
      decoded.push_back(seg[i]);
    }
    out.push_back(std::move(decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

bool BroadcastEndpoint::matches(std::string_view path) const {
  return broadcast_suffix(path).has_value();
}

void BroadcastEndpoint::handle(http::HttpRequest request,
                               std::function<void(http::HttpResponse)> done) {
  const std::string_view suffix = broadcast_suffix(request.target).value_or("");
  if (request.method != "POST") return done(json_error(405, "error", "method not allowed"));

  // The caller: Bearer token, else the apikey header, else the apikey query parameter.
  std::optional<std::string> token = http::request_token(request);
  if (!token) token = http::query_param(request, "apikey");
  std::optional<auth::VerifiedJwt> who;
  if (token) {
    auto v = hub_.verifier().verify(*token, hub_.scheduler().wall_now());
    if (v.ok()) who = std::move(v.value());
  }
  // Any token the project signed may broadcast to public topics, anon included (realtime-js sends
  // over REST before it joins, with whatever key it holds); private topics ask the policies.
  if (!who) {
    return done(json_error(401, "message", "Unauthorized"));
  }

  std::vector<BroadcastMessage> out;
  auto add = [&](std::string topic, std::string event, json::value payload, bool is_private,
                 const json::value* id) -> bool {
    json::object p;
    p["type"] = "broadcast";
    p["event"] = std::move(event);
    p["payload"] = std::move(payload);
    if (id && id->is_string()) p["meta"] = json::object{{"id", *id}};
    if (json::serialize(p["payload"]).size() > hub_.limits().max_broadcast_payload_bytes) {
      return false;
    }
    BroadcastMessage m;
    m.topic = "realtime:" + topic;
    m.is_private = is_private;
    m.json_payload = json::value(std::move(p));
    if (id && id->is_string()) m.id = std::string(id->get_string());  // replay de-duplication
    out.push_back(std::move(m));
    return true;
  };

  if (!suffix.empty()) {
    // /api/broadcast/<topic>/events/<event>: the body is the payload itself.
    auto segs = split_path(suffix);
    if (segs.size() != 3 || segs[1] != "events" || segs[0].empty() || segs[2].empty()) {
      return done(json_error(404, "error", "not found"));
    }
    auto body = core::parse_json(request.body);
    json::value payload = body.ok() ? body.value() : json::value(json::string(request.body));
    const bool is_private = http::query_param(request, "private").value_or("") == "true";
    if (!add(segs[0], segs[2], std::move(payload), is_private, nullptr)) {
      return done(json_error(413, "error", "Payload size exceeds tenant limit"));
    }
  } else {
    auto body = core::parse_json(request.body);
    const json::array* messages = body.ok() ? core::find_array(body.value(), "messages") : nullptr;
    if (!messages) return done(answer(422, R"({"errors":{"messages":["can't be blank"]}})"));
    for (const auto& m : *messages) {
      auto topic = core::find_string(m, "topic");
      auto event = core::find_string(m, "event");
      const auto* payload = core::find(m, "payload");
      if (!topic || !event || !payload || !payload->is_object()) {
        return done(answer(
            422, R"({"errors":{"messages":["topic, event and an object payload are required"]}})"));
      }
      const bool is_private = core::find_bool(m, "private").value_or(false);
      if (!add(std::string(*topic), std::string(*event), *payload, is_private,
               core::find(m, "id"))) {
        return done(
            answer(422, R"({"errors":{"messages":["Payload size exceeds tenant limit"]}})"));
      }
    }
  }
  // Public messages go out now; private ones once their sender's write rights on each topic are
  // known (Supabase's order), then 202 — also when some were skipped.
  struct Pending {
    std::vector<BroadcastMessage> messages;            // the private ones, in request order
    std::map<std::string, bool, std::less<>> allowed;  // by topic
    std::size_t waiting = 0;
    std::function<void(http::HttpResponse)> done;
  };
  auto pending = std::make_shared<Pending>();
  for (auto& m : out) {
    if (!m.is_private) {
      hub_.broadcast(m, nullptr);
    } else {
      pending->allowed.emplace(m.topic, false);
      pending->messages.push_back(std::move(m));
    }
  }
  if (pending->messages.empty()) return done(answer(202, ""));
  pending->done = std::move(done);
  pending->waiting = pending->allowed.size();
  auto* authorizer = hub_.channel_authorizer();
  auto finish = [this, pending] {
    auto& metrics = hub_.metrics();
    for (const auto& m : pending->messages) {
      if (pending->allowed[m.topic]) {
        hub_.broadcast(m, nullptr);
      } else {
        metrics.refuse_channel(auth_refusal::kRestWrite);
      }
    }
    auto done = std::move(pending->done);
    done(answer(202, ""));
  };
  if (!authorizer) {
    hub_.metrics().refuse_channel(auth_refusal::kDatabase, pending->messages.size());
    pending->messages.clear();
    return finish();
  }
  const AuthClass caller{who->role, who->claims_json};
  std::vector<std::string> topics;
  for (const auto& [topic, ok] : pending->allowed)
    topics.push_back(topic);
  for (const auto& topic : topics) {
    ++hub_.metrics().channel_auth_write_checks;
    ChannelCheck check{caller, topic.substr(std::string_view("realtime:").size()), false, false,
                       true};
    authorizer->check(std::move(check), [pending, topic, finish](ChannelAuthResult r) {
      if (r) {
        pending->allowed[topic] = r.value().broadcast_write.value_or(false);
      } else {
        // Skipped like an unauthorized message (Supabase answers 202 all the same).
        log::get(loggers::kServer)
            ->warn("REST broadcast to private {}: write check failed: {}", topic,
                   r.error().message);
      }
      if (--pending->waiting == 0) finish();
    });
  }
}

}  // namespace rtsync::server::realtime
