#include "rtsync/server/realtime/presence.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <random>
#include <unordered_set>

#include "rtsync/core/log.hpp"
#include "rtsync/server/realtime/connection.hpp"
#include "rtsync/server/realtime/hub.hpp"
#include "rtsync/server/realtime/names.hpp"

namespace rtsync::server::realtime {

namespace {

// {"phx_ref":ref[,"phx_ref_prev":prev],…payload}; a payload's own phx_ref fields are replaced.
std::string meta_text(const std::string& ref, const std::string* prev,
                      const json::object& payload) {
  json::object o;
  o.reserve(payload.size() + 2);
  o["phx_ref"] = ref;
  if (prev) o["phx_ref_prev"] = *prev;
  for (const auto& [k, v] : payload) {
    if (k == "phx_ref" || k == "phx_ref_prev") continue;
    o[k] = v;
  }
  return json::serialize(o);
}

// One presence frame in the receiver's wire format. presence_state carries the channel's join_ref
// (v2 only); presence_diff is a fan-out message with null refs.
std::string frame(protocol::Vsn vsn, std::string_view topic, std::string_view event,
                  const std::string* join_ref, std::string_view payload) {
  std::string s;
  s.reserve(payload.size() + topic.size() + 64);
  if (vsn == protocol::Vsn::v1) {
    s += R"({"topic":)";
    s += core::json_quoted(topic);
    s += R"(,"event":")";
    s += event;
    s += R"(","payload":)";
    s += payload;
    s += R"(,"ref":null})";
    return s;
  }
  s += '[';
  s += join_ref ? core::json_quoted(*join_ref) : "null";
  s += ",null,";
  s += core::json_quoted(topic);
  s += ",\"";
  s += event;
  s += "\",";
  s += payload;
  s += ']';
  return s;
}

// Appends {key:{"metas":[…]},…} for metas grouped by key (keys in order).
void append_groups(std::string& out,
                   const std::map<std::string, std::vector<const std::string*>>& groups) {
  out += '{';
  bool first_key = true;
  for (const auto& [key, texts] : groups) {
    if (!first_key) out += ',';
    first_key = false;
    out += core::json_quoted(key);
    out += R"(:{"metas":[)";
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (i) out += ',';
      out += *texts[i];
    }
    out += "]}";
  }
  out += '}';
}

}  // namespace

PresenceTracker::PresenceTracker(Hub& hub) : hub_(hub) {
  std::random_device rd;
  salt_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::string PresenceTracker::next_ref() {
  // Unique per meta and, thanks to the salt, across server runs: a client that kept a state over
  // a server restart never mistakes a new meta for one it holds.
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::uint64_t a = salt_;
  std::uint64_t b = ++refs_;
  std::string out = "F";
  for (int i = 0; i < 8; ++i, a >>= 6)
    out += kAlphabet[a & 63];
  do {
    out += kAlphabet[b & 63];
    b >>= 6;
  } while (b);
  return out;
}

std::string PresenceTracker::fresh_key() {
  // UUID text (version 4 layout) from the salt and a counter: unique per join.
  std::uint64_t hi = salt_ ^ (0x9E3779B97F4A7C15ull * ++refs_);
  std::uint64_t lo = (salt_ * 0xD6E8FEB86659FD93ull) ^ refs_;
  hi = (hi & ~0xF000ull) | 0x4000ull;
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF,
                     hi & 0xFFFF, lo >> 48, lo & 0xFFFFFFFFFFFFull);
}

std::size_t PresenceTracker::size(std::string_view member_key) const {
  auto it = topics_.find(std::string(member_key));
  return it == topics_.end() ? 0 : it->second.size;
}

PresenceTracker::TrackResult PresenceTracker::track(Channel& ch, json::object payload) {
  auto& t = topics_[ch.member_key];
  t.topic = ch.topic;
  auto& list = t.metas[ch.presence_key];
  auto it = std::find_if(list.begin(), list.end(), [&](const Meta& m) { return m.channel == &ch; });
  if (it != list.end()) {
    if (it->payload == payload) return TrackResult::unchanged;
    // Replace: the old meta leaves, a new one (pointing back at it) joins.
    record(t, ch.member_key, false, ch.presence_key, *it);
    Meta m;
    m.channel = &ch;
    m.ref = next_ref();
    m.text = meta_text(m.ref, &it->ref, payload);
    m.payload = std::move(payload);
    *it = std::move(m);
    record(t, ch.member_key, true, ch.presence_key, *it);
    return TrackResult::tracked;
  }
  if (t.size >= hub_.limits().max_presences_per_channel) {
    if (list.empty()) t.metas.erase(ch.presence_key);
    return TrackResult::full;
  }
  Meta m;
  m.channel = &ch;
  m.ref = next_ref();
  m.text = meta_text(m.ref, nullptr, payload);
  m.payload = std::move(payload);
  list.push_back(std::move(m));
  ++t.size;
  ++total_;
  ++hub_.metrics().presences;
  record(t, ch.member_key, true, ch.presence_key, list.back());
  return TrackResult::tracked;
}

void PresenceTracker::untrack(Channel& ch) {
  auto tit = topics_.find(ch.member_key);
  if (tit == topics_.end()) return;
  auto& t = tit->second;
  auto kit = t.metas.find(ch.presence_key);
  if (kit == t.metas.end()) return;
  auto& list = kit->second;
  auto it = std::find_if(list.begin(), list.end(), [&](const Meta& m) { return m.channel == &ch; });
  if (it == list.end()) return;
  record(t, ch.member_key, false, ch.presence_key, *it);
  list.erase(it);
  if (list.empty()) t.metas.erase(kit);
  --t.size;
  --total_;
  --hub_.metrics().presences;
}

void PresenceTracker::record(Topic& t, const std::string& member_key, bool join,
                             const std::string& key, const Meta& meta) {
  t.pending.push_back(Change{++seq_, join, key, meta.ref, meta.text});
  if (meta.channel) {
    if (auto* bus = hub_.cluster_bus()) {
      bus->presence(PresenceChange{member_key, t.topic, join, key, meta.ref, meta.text});
    }
  }
  const auto now = hub_.scheduler().now();
  t.last_change = now;
  if (t.window.pending()) return;  // the timer re-arms itself while changes keep coming
  t.opened = now;
  t.window = hub_.scheduler().schedule(
      std::chrono::duration_cast<core::Duration>(hub_.limits().presence_diff_window),
      timers::PresenceDiff, [this, key = member_key] { on_window_timer(key); });
}

void PresenceTracker::on_window_timer(const std::string& member_key) {
  auto tit = topics_.find(member_key);
  if (tit == topics_.end()) return;
  auto& t = tit->second;
  // One timer per quiet period instead of one re-arm per change: when it fires, the window
  // closes if the topic was quiet for the whole period or the maximum delay is reached;
  // otherwise it waits for the rest of the quiet period after the latest change (capped).
  const auto quiet = std::chrono::duration_cast<core::Duration>(hub_.limits().presence_diff_window);
  const auto max_delay = std::max(
      quiet, std::chrono::duration_cast<core::Duration>(hub_.limits().presence_diff_max_delay));
  const auto now = hub_.scheduler().now();
  const auto close_at = std::min(t.last_change + quiet, t.opened + max_delay);
  if (now >= close_at) {
    flush(member_key);
    return;
  }
  t.window = hub_.scheduler().schedule(close_at - now, timers::PresenceDiff,
                                       [this, key = member_key] { on_window_timer(key); });
}

void PresenceTracker::apply_remote(const std::string& node, const PresenceChange& change) {
  auto& t = topics_[change.member_key];
  if (t.topic.empty()) t.topic = change.topic;
  auto& list = t.metas[change.key];
  auto it =
      std::find_if(list.begin(), list.end(), [&](const Meta& m) { return m.ref == change.ref; });
  if (change.join) {
    if (it != list.end()) return;
    Meta m;
    m.node = node;
    m.ref = change.ref;
    m.text = change.text;
    list.push_back(std::move(m));
    ++t.size;
    ++total_;
    record(t, change.member_key, true, change.key, list.back());
    return;
  }
  if (it == list.end() || it->channel || it->node != node) {
    if (list.empty()) t.metas.erase(change.key);
    if (t.metas.empty() && t.pending.empty()) topics_.erase(change.member_key);
    return;
  }
  record(t, change.member_key, false, change.key, *it);
  list.erase(it);
  if (list.empty()) t.metas.erase(change.key);
  --t.size;
  --total_;
}

std::vector<PresenceChange> PresenceTracker::local_snapshot() const {
  std::vector<PresenceChange> out;
  for (const auto& [member_key, t] : topics_) {
    for (const auto& [key, list] : t.metas) {
      for (const auto& m : list) {
        if (m.channel) out.push_back(PresenceChange{member_key, t.topic, true, key, m.ref, m.text});
      }
    }
  }
  return out;
}

void PresenceTracker::replace_node(const std::string& node,
                                   const std::vector<PresenceChange>& snapshot) {
  std::unordered_set<std::string_view> keep;
  for (const auto& c : snapshot)
    keep.insert(c.ref);
  // Leaves first (collected: apply_remote edits the maps), then the joins it lacks.
  std::vector<PresenceChange> leaves;
  for (const auto& [member_key, t] : topics_) {
    for (const auto& [key, list] : t.metas) {
      for (const auto& m : list) {
        if (!m.channel && m.node == node && !keep.count(m.ref)) {
          leaves.push_back(PresenceChange{member_key, t.topic, false, key, m.ref, m.text});
        }
      }
    }
  }
  for (const auto& c : leaves)
    apply_remote(node, c);
  for (const auto& c : snapshot)
    apply_remote(node, c);
}

void PresenceTracker::joined(Channel& ch) {
  auto it = topics_.find(ch.member_key);
  if (it != topics_.end() && it->second.window.pending()) {
    ch.presence_state_due = true;
    return;
  }
  send_state(ch);
}

std::string PresenceTracker::state_payload(const Topic* t) const {
  std::map<std::string, std::vector<const std::string*>> groups;
  if (t) {
    for (const auto& [key, list] : t->metas) {
      auto& g = groups[key];
      for (const auto& m : list)
        g.push_back(&m.text);
    }
  }
  std::string out;
  append_groups(out, groups);
  return out;
}

std::string PresenceTracker::state_for(Channel& ch) {
  ch.presence_seq = seq_;
  ch.presence_state_due = false;
  auto it = topics_.find(ch.member_key);
  return state_payload(it == topics_.end() ? nullptr : &it->second);
}

OutFrame PresenceTracker::state_frame(Channel& ch, const std::string& payload) {
  auto& conn = *ch.connection;
  const std::string* join_ref = conn.vsn() == protocol::Vsn::v2 ? &ch.join_ref : nullptr;
  ++hub_.metrics().presence_states;
  return text_frame(
      frame(conn.vsn(), ch.topic, protocol::events::kPresenceState, join_ref, payload));
}

void PresenceTracker::send_state(Channel& ch) {
  auto payload = state_for(ch);
  ch.connection->send(state_frame(ch, payload));
}

std::string PresenceTracker::diff_payload(const Topic& t, std::uint64_t after) const {
  // Refs that both joined and left after `after` cancel out: the receiver never saw them.
  std::unordered_set<std::string_view> joined, cancelled;
  for (const auto& c : t.pending) {
    if (c.seq <= after) continue;
    if (c.join) {
      joined.insert(c.ref);
    } else if (joined.count(c.ref)) {
      cancelled.insert(c.ref);
    }
  }
  std::map<std::string, std::vector<const std::string*>> joins, leaves;
  for (const auto& c : t.pending) {
    if (c.seq <= after || cancelled.count(c.ref)) continue;
    (c.join ? joins : leaves)[c.key].push_back(&c.text);
  }
  if (joins.empty() && leaves.empty()) return {};
  std::string out = R"({"joins":)";
  append_groups(out, joins);
  out += R"(,"leaves":)";
  append_groups(out, leaves);
  out += '}';
  return out;
}

void PresenceTracker::flush(const std::string& member_key) {
  auto tit = topics_.find(member_key);
  if (tit == topics_.end()) return;
  auto& t = tit->second;
  t.window.cancel();
  const auto first = t.pending.empty() ? seq_ + 1 : t.pending.front().seq;
  // Receivers whose state predates the window share one payload (a receiver never has a state
  // from inside an open window: it waits for the close, below), serialized once per wire format.
  struct Frames {
    std::string payload;
    OutFrame v1, v2;
  };
  std::map<std::uint64_t, Frames> by_cutoff;
  std::optional<std::string> state;  // built once for every channel whose state waited
  std::uint64_t sent = 0;
  if (const auto* members = hub_.member_list(member_key)) {
    for (Channel* ch : *members) {
      auto& conn = *ch->connection;
      // A private channel receives presence only if its token may read the topic's presence.
      if (ch->is_private && !ch->rights.presence_read.value_or(false)) continue;
      if (ch->presence_state_due) {
        if (!state) state = state_payload(&t);
        ch->presence_seq = seq_;
        ch->presence_state_due = false;
        conn.send(state_frame(*ch, *state));
        continue;
      }
      if (!ch->presence_enabled || t.pending.empty()) continue;
      const auto after = std::max(ch->presence_seq, first - 1);
      auto [fit, fresh] = by_cutoff.try_emplace(after);
      if (fresh) fit->second.payload = diff_payload(t, after);
      auto& f = fit->second;
      if (f.payload.empty()) continue;
      auto& out = conn.vsn() == protocol::Vsn::v1 ? f.v1 : f.v2;
      if (!out.bytes) {
        out = text_frame(
            frame(conn.vsn(), t.topic, protocol::events::kPresenceDiff, nullptr, f.payload));
      }
      if (conn.send(out)) ++sent;
    }
  }
  hub_.metrics().presence_diffs += sent;
  t.pending.clear();
  if (t.metas.empty()) topics_.erase(tit);
}

}  // namespace rtsync::server::realtime
