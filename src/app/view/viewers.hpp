// Who else is watching a project: the presences of the project's realtime channel as the task
// pane shows them. Each `rtsync watch` / `rtsync demo` client tracks one presence there
// ({"user_id","name","client","since","session"}, key: the user id; task_client.hpp); the pane
// lists every presence but its own, told apart by `session` (a random id per client run), so a
// second session of the same user counts as another viewer.
//
// Thread safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/json.hpp"

namespace rtsync::app::view {

// One presence as the pane shows it. Fields missing from a presence (another client's payload)
// are empty; `session` falls back to its presence_ref.
struct Viewer {
  std::string session;
  std::string user_id;
  std::string name;
  std::string client;
  std::string since;  // ISO 8601, as the viewer tracked it
  friend bool operator==(const Viewer&, const Viewer&) = default;
};

// A channel's presence state: key → presences (client::PresenceMap, without the client layer).
using PresenceEntries = std::map<std::string, std::vector<json::object>>;

// Every presence of `state` but those whose session is `own_session`, ordered by `since`, then
// name, then session.
std::vector<Viewer> other_viewers(const PresenceEntries& state, std::string_view own_session);

// Who arrived and who left between two lists (by session); empty lists when nothing changed.
struct ViewerChange {
  std::vector<Viewer> joins;
  std::vector<Viewer> leaves;
  bool empty() const noexcept { return joins.empty() && leaves.empty(); }
};
ViewerChange viewer_change(const std::vector<Viewer>& before, const std::vector<Viewer>& after);

// The header's note: "no one else watching", "1 other watching", "3 others watching"; empty
// while unknown (no presence state yet).
std::string watchers_text(std::optional<int> others);

// {"name","user_id","client","since","session"}.
json::object viewer_json(const Viewer& v);

}  // namespace rtsync::app::view
