#include "viewers.hpp"

#include <algorithm>
#include <set>

namespace rtsync::app::view {
namespace {

std::string text(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

std::vector<Viewer> other_viewers(const PresenceEntries& state, std::string_view own_session) {
  std::vector<Viewer> out;
  for (const auto& [key, presences] : state) {
    for (const auto& p : presences) {
      Viewer v;
      v.session = text(p, "session");
      if (v.session.empty()) v.session = text(p, "presence_ref");
      if (!own_session.empty() && v.session == own_session) continue;
      v.user_id = text(p, "user_id");
      if (v.user_id.empty()) v.user_id = key;
      v.name = text(p, "name");
      v.client = text(p, "client");
      v.since = text(p, "since");
      out.push_back(std::move(v));
    }
  }
  std::sort(out.begin(), out.end(), [](const Viewer& a, const Viewer& b) {
    return std::tie(a.since, a.name, a.session) < std::tie(b.since, b.name, b.session);
  });
  return out;
}

ViewerChange viewer_change(const std::vector<Viewer>& before, const std::vector<Viewer>& after) {
  std::set<std::string_view> had, has;
  for (const auto& v : before)
    had.insert(v.session);
  for (const auto& v : after)
    has.insert(v.session);
  ViewerChange c;
  for (const auto& v : after)
    if (!had.count(v.session)) c.joins.push_back(v);
  for (const auto& v : before)
    if (!has.count(v.session)) c.leaves.push_back(v);
  return c;
}

std::string watchers_text(std::optional<int> others) {
  if (!others) return {};
  if (*others <= 0) return "no one else watching";
  if (*others == 1) return "1 other watching";
  return std::to_string(*others) + " others watching";
}

json::object viewer_json(const Viewer& v) {
  return json::object{{"name", v.name},
                      {"user_id", v.user_id},
                      {"client", v.client},
                      {"since", v.since},
                      {"session", v.session}};
}

}  // namespace rtsync::app::view
