#include "checker.hpp"

#include <algorithm>
#include <sstream>
#include <unordered_map>

namespace rtsync::chaos {

namespace {

constexpr std::size_t kMaxProblems = 20;

void note(std::vector<std::string>& problems, std::string text) {
  if (problems.size() < kMaxProblems) problems.push_back(std::move(text));
}

std::string describe(const Committed& c) {
  std::ostringstream o;
  o << "seq " << c.seq << " " << to_string(c.op) << " row " << c.row_id;
  return o.str();
}

// The session (index into rejoins) live at `t`: the last rejoin at or before it, or -1.
int session_at(const std::vector<Rejoin>& rejoins, TimePoint t) {
  int s = -1;
  for (std::size_t i = 0; i < rejoins.size() && rejoins[i].at <= t; ++i)
    s = static_cast<int>(i);
  return s;
}

std::string rows_diff(const Rows& cache, const Rows& db) {
  std::ostringstream o;
  std::size_t shown = 0;
  auto show = [&](const std::string& text) {
    if (shown++ < 5) o << (shown > 1 ? "; " : "") << text;
  };
  for (const auto& [id, v] : db) {
    auto it = cache.find(id);
    if (it == cache.end()) {
      show("row " + id + " (seq " + std::to_string(v.seq) + ") missing from the cache");
    } else if (!(it->second == v)) {
      show("row " + id + " cache seq " + std::to_string(it->second.seq) + ", database seq " +
           std::to_string(v.seq));
    }
  }
  for (const auto& [id, v] : cache)
    if (!db.count(id)) show("row " + id + " in the cache, not in the database");
  if (shown == 0) return {};
  return std::to_string(shown) + " difference(s): " + o.str();
}

}  // namespace

std::string_view to_string(Op op) noexcept {
  switch (op) {
    case Op::insert:
      return "INSERT";
    case Op::update:
      return "UPDATE";
    case Op::remove:
      return "DELETE";
  }
  return "?";
}

std::string CheckReport::summary() const {
  std::ostringstream o;
  o << "expected " << expected << " of " << committed << " committed: delivered once "
    << delivered_once << ", covered by a told gap " << covered_by_gap << "; silently lost "
    << silently_lost() << " (in session " << lost_in_session << ", no rejoin " << lost_no_rejoin
    << ", resumed " << lost_resumed << "), gap not refetched " << gap_not_refetched
    << ", duplicates " << duplicates << ", redelivered after a gap " << redelivered
    << ", reordered " << reordered << ", leaked " << leaked << ", unknown " << unknown
    << "; told gaps " << told_gaps << ", resumed " << resumed << ", fetches " << fetches
    << "; final cache " << (final_cache_matches ? "matches" : "DIFFERS");
  if (convergence) o << "; convergence " << convergence->count() << " ms";
  return o.str();
}

CheckReport check(const std::vector<Committed>& committed, const ClientHistory& client,
                  const Rows& database, const CheckOptions& options) {
  CheckReport r;
  r.committed = committed.size();
  std::unordered_map<std::int64_t, const Committed*> by_seq;
  std::unordered_map<std::string, std::string> owner_of_project;
  for (const auto& c : committed) {
    by_seq[c.seq] = &c;
    owner_of_project[c.project_id] = c.owner;
  }
  auto bound = [&](Op op) {
    return std::find(options.bound_ops.begin(), options.bound_ops.end(), op) !=
           options.bound_ops.end();
  };
  auto foreign = [&](const std::string& project) {
    if (project != client.project_id) return true;
    auto it = owner_of_project.find(project);
    return it != owner_of_project.end() && it->second != client.user_id;
  };

  for (std::size_t i = 0; i < client.rejoins.size(); ++i) {
    if (!client.rejoins[i].gap) {
      ++r.resumed;
    } else if (i > 0) {
      ++r.told_gaps;
    }
  }
  r.fetches = client.fetches.size();

  // Deliveries: leaks and unknown events first; the rest grouped by change.
  std::unordered_map<std::int64_t, std::vector<const Delivery*>> delivered;
  for (const auto& d : client.deliveries) {
    if (foreign(d.project_id)) {
      ++r.leaked;
      note(r.problems, "LEAK: event for row " + d.row_id + " of project " + d.project_id +
                           " (seq " + std::to_string(d.seq) + ")");
      continue;
    }
    auto it = by_seq.find(d.seq);
    if (it == by_seq.end() || it->second->row_id != d.row_id) {
      ++r.unknown;
      note(r.problems, "event for row " + d.row_id + " seq " + std::to_string(d.seq) +
                           " matches no committed change");
      continue;
    }
    if (it->second->owner != client.user_id) {
      ++r.leaked;
      note(r.problems, "LEAK: event of another user's change, " + describe(*it->second));
      continue;
    }
    delivered[d.seq].push_back(&d);
  }
  for (const auto& f : client.fetches) {
    for (const auto& [id, v] : f.rows) {
      if (foreign(v.project_id)) {
        ++r.leaked;
        note(r.problems, "LEAK: a fetch returned row " + id + " of project " + v.project_id);
      }
    }
  }

  // Order within each session: a delivery of a change older than one already delivered in the
  // same session.
  {
    std::map<int, std::int64_t> highest;
    for (const auto& d : client.deliveries) {
      if (!delivered.count(d.seq)) continue;
      const int s = session_at(client.rejoins, d.at);
      auto [it, fresh] = highest.try_emplace(s, d.seq);
      if (fresh) continue;
      if (d.seq < it->second) {
        ++r.reordered;
        note(r.problems, "REORDERED: seq " + std::to_string(d.seq) + " after seq " +
                             std::to_string(it->second) + " in session " + std::to_string(s));
      } else {
        it->second = d.seq;
      }
    }
  }
  // Highest expected seq delivered per session, for the hole check, and how many were delivered.
  std::map<int, std::int64_t> session_max;
  std::map<int, std::int64_t> session_count;
  for (const auto& [seq, ds] : delivered) {
    for (const auto* d : ds) {
      const int s = session_at(client.rejoins, d->at);
      auto& m = session_max.try_emplace(s, seq).first->second;
      m = std::max(m, seq);
      ++session_count[s];
    }
  }
  // A resumed session ended before its replay reached `seq`: the replay is in commit order, so a
  // session that delivered fewer changes than its replay announced, and none later than `seq`,
  // was cut short before it.
  auto replay_cut_short_before = [&](std::size_t k, std::int64_t seq) {
    const auto& j = client.rejoins[k];
    if (j.gap || j.replayed <= 0) return false;
    const int s = static_cast<int>(k);
    auto count = session_count.find(s);
    if (count != session_count.end() && count->second >= j.replayed) return false;
    auto m = session_max.find(s);
    return m == session_max.end() || m->second < seq;
  };

  std::optional<TimePoint> last_accounted;  // for convergence
  bool convergence_known = true;
  auto account = [&](const Committed& c, TimePoint at) {
    if (!options.healed || c.acked > *options.healed) return;
    if (!last_accounted || at > *last_accounted) last_accounted = at;
  };

  for (const auto& c : committed) {
    if (c.project_id != client.project_id || c.owner != client.user_id || !bound(c.op)) continue;
    ++r.expected;
    auto dit = delivered.find(c.seq);
    if (dit != delivered.end()) {
      const auto& ds = dit->second;
      account(c, ds.front()->at);
      if (ds.size() == 1) {
        ++r.delivered_once;
        continue;
      }
      // Delivered more than once: in one session, after a resumed rejoin, or after a told gap.
      bool duplicate = false;
      bool redelivered = false;
      std::vector<int> sessions;
      for (const auto* d : ds)
        sessions.push_back(session_at(client.rejoins, d->at));
      for (std::size_t k = 1; k < sessions.size(); ++k) {
        if (std::count(sessions.begin(), sessions.begin() + static_cast<long>(k), sessions[k])) {
          duplicate = true;
        } else if (sessions[k] >= 0 && !client.rejoins[static_cast<std::size_t>(sessions[k])].gap) {
          duplicate = true;
        } else {
          redelivered = true;
        }
      }
      if (redelivered && options.strict_once) duplicate = true;
      if (duplicate) {
        ++r.duplicates;
        note(r.problems,
             "DUPLICATE: " + describe(c) + " delivered " + std::to_string(ds.size()) + " times");
      } else {
        ++r.delivered_once;
        ++r.redelivered;
      }
      continue;
    }

    // Not delivered. A later change arrived in the session live when this one was sent?
    const int live = session_at(client.rejoins, c.sent);
    if (live >= 0) {
      auto m = session_max.find(live);
      if (m != session_max.end() && m->second > c.seq) {
        ++r.lost_in_session;
        convergence_known = false;
        note(r.problems, "LOST in session " + std::to_string(live) + ": " + describe(c) + " (seq " +
                             std::to_string(m->second) + " was delivered after it)");
        continue;
      }
    }
    // The first rejoin after it was sent decides — or, when that one resumed and its session was
    // cut short before its replay got here, the next one (it starts from the last change the
    // client applied, so it must replay this one or tell a gap).
    const Rejoin* next = nullptr;
    for (std::size_t k = 0; k < client.rejoins.size(); ++k) {
      if (client.rejoins[k].at <= c.sent) continue;
      next = &client.rejoins[k];
      if (k + 1 < client.rejoins.size() && replay_cut_short_before(k, c.seq)) continue;
      break;
    }
    if (!next) {
      ++r.lost_no_rejoin;
      convergence_known = false;
      note(r.problems, "LOST with no rejoin after it: " + describe(c));
      continue;
    }
    if (!next->gap) {
      ++r.lost_resumed;
      convergence_known = false;
      note(r.problems, "LOST across a resumed rejoin: " + describe(c));
      continue;
    }
    const Fetch* cover = nullptr;
    for (const auto& f : client.fetches) {
      if (!f.ok || f.started < next->at) continue;
      auto row = f.rows.find(c.row_id);
      if (row == f.rows.end() || row->second.seq < c.seq) continue;
      if (!cover || f.finished < cover->finished) cover = &f;
    }
    if (!cover) {
      ++r.gap_not_refetched;
      convergence_known = false;
      note(r.problems, "GAP NOT REFETCHED: " + describe(c) +
                           " was inside a told gap, but no later refetch shows it");
      continue;
    }
    ++r.covered_by_gap;
    account(c, cover->finished);
  }

  if (options.healed && convergence_known) {
    const auto d = last_accounted && *last_accounted > *options.healed
                       ? *last_accounted - *options.healed
                       : Clock::duration::zero();
    r.convergence = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  }

  if (client.final_cache) {
    for (const auto& [id, v] : *client.final_cache) {
      if (foreign(v.project_id)) {
        ++r.leaked;
        note(r.problems, "LEAK: the final cache holds row " + id + " of project " + v.project_id);
      }
    }
    r.final_cache_diff = rows_diff(*client.final_cache, database);
  } else {
    r.final_cache_diff = "the watched query has no data";
  }
  r.final_cache_matches = r.final_cache_diff.empty();
  if (!r.final_cache_matches) note(r.problems, "FINAL CACHE: " + r.final_cache_diff);
  return r;
}

std::size_t check_attacker(const ClientHistory& attacker, std::vector<std::string>& problems) {
  std::size_t leaks = 0;
  for (const auto& d : attacker.deliveries) {
    ++leaks;
    note(problems,
         "LEAK to the attacker: event for row " + d.row_id + " of project " + d.project_id);
  }
  for (const auto& f : attacker.fetches) {
    for (const auto& [id, v] : f.rows) {
      ++leaks;
      note(problems, "LEAK to the attacker: a fetch returned row " + id);
    }
  }
  if (attacker.final_cache) {
    for (const auto& [id, v] : *attacker.final_cache) {
      ++leaks;
      note(problems, "LEAK to the attacker: its cache holds row " + id);
    }
  }
  return leaks;
}

}  // namespace rtsync::chaos
