#include "rtsync/client/transport/presence.hpp"

#include <algorithm>

namespace rtsync::client {

namespace {

std::string_view ref_of(const json::object& meta) {
  const auto* r = meta.if_contains("phx_ref");
  return r && r->is_string() ? std::string_view(r->get_string()) : std::string_view();
}

bool has_ref(const std::vector<json::object>& metas, std::string_view ref) {
  return std::any_of(metas.begin(), metas.end(),
                     [&](const json::object& m) { return ref_of(m) == ref; });
}

std::vector<Presence> exposed(const std::vector<json::object>& metas) {
  std::vector<Presence> out;
  out.reserve(metas.size());
  for (const auto& m : metas) {
    Presence p;
    for (const auto& [k, v] : m) {
      if (k == "phx_ref_prev") continue;
      p[k == "phx_ref" ? std::string_view("presence_ref") : std::string_view(k)] = v;
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

bool PresenceSync::to_raw(const json::value& v, Raw& out) {
  const auto* o = v.if_object();
  if (!o) return false;
  for (const auto& [key, entry] : *o) {
    const auto* e = entry.if_object();
    const auto* metas = e ? e->if_contains("metas") : nullptr;
    if (!metas || !metas->is_array()) return false;
    auto& list = out[std::string(key)];
    for (const auto& m : metas->get_array()) {
      if (!m.is_object()) return false;
      list.push_back(m.get_object());
    }
  }
  return true;
}

bool PresenceSync::apply_state(const json::value& state, const std::string& join_ref,
                               const Events& events) {
  Raw incoming;
  if (!to_raw(state, incoming)) return false;
  join_ref_ = join_ref;
  Raw joins, leaves;
  for (const auto& [key, metas] : state_) {
    if (!incoming.count(key)) leaves[key] = metas;
  }
  for (auto& [key, metas] : incoming) {
    auto cur = state_.find(key);
    if (cur == state_.end()) {
      joins[key] = metas;
      continue;
    }
    std::vector<json::object> joined, left;
    for (const auto& m : metas)
      if (!has_ref(cur->second, ref_of(m))) joined.push_back(m);
    for (const auto& m : cur->second)
      if (!has_ref(metas, ref_of(m))) left.push_back(m);
    if (!joined.empty()) joins[key] = std::move(joined);
    if (!left.empty()) leaves[key] = std::move(left);
  }
  sync_diff(joins, leaves, events);
  auto held = std::move(pending_);
  pending_.clear();
  for (const auto& [j, l] : held)
    sync_diff(j, l, events);
  if (events.on_sync) events.on_sync();
  return true;
}

bool PresenceSync::apply_diff(const json::value& diff,
                              const std::optional<std::string>& current_join_ref,
                              const Events& events) {
  const auto* o = diff.if_object();
  if (!o) return false;
  Raw joins, leaves;
  if (const auto* j = o->if_contains("joins"); j && !to_raw(*j, joins)) return false;
  if (const auto* l = o->if_contains("leaves"); l && !to_raw(*l, leaves)) return false;
  if (!join_ref_ || join_ref_ != current_join_ref) {
    pending_.emplace_back(std::move(joins), std::move(leaves));
    return true;
  }
  sync_diff(joins, leaves, events);
  if (events.on_sync) events.on_sync();
  return true;
}

void PresenceSync::sync_diff(const Raw& joins, const Raw& leaves, const Events& events) {
  for (const auto& [key, metas] : joins) {
    PresenceJoin ev;
    ev.key = key;
    ev.new_presences = exposed(metas);
    auto cur = state_.find(key);
    std::vector<json::object> merged;
    if (cur != state_.end()) {
      ev.current_presences = exposed(cur->second);
      for (const auto& m : cur->second)
        if (!has_ref(metas, ref_of(m))) merged.push_back(m);
    }
    merged.insert(merged.end(), metas.begin(), metas.end());
    state_[key] = std::move(merged);
    if (events.on_join) events.on_join(ev);
  }
  for (const auto& [key, metas] : leaves) {
    auto cur = state_.find(key);
    if (cur == state_.end()) continue;
    auto& list = cur->second;
    // A named reference: lambdas may not capture structured bindings before C++20's P1091 (clang
    // 16), and the sanitizer builds use clang 14.
    const auto& left = metas;
    std::erase_if(list, [&left](const json::object& m) { return has_ref(left, ref_of(m)); });
    PresenceLeave ev;
    ev.key = key;
    ev.current_presences = exposed(list);
    ev.left_presences = exposed(metas);
    if (list.empty()) state_.erase(cur);
    if (events.on_leave) events.on_leave(ev);
  }
}

PresenceMap PresenceSync::state() const {
  PresenceMap out;
  for (const auto& [key, metas] : state_)
    out.emplace(key, exposed(metas));
  return out;
}

}  // namespace rtsync::client
