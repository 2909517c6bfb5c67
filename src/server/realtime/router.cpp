#include "rtsync/server/realtime/router.hpp"

#include <algorithm>

#include "rtsync/core/strings.hpp"

namespace rtsync::server::realtime {

namespace {

std::string index_key(std::string_view schema, std::string_view table) {
  std::string k;
  k.reserve(schema.size() + table.size() + 1);
  k.append(schema);
  k.push_back('\x1f');
  k.append(table);
  return k;
}

using core::iequals;

std::uint8_t mask_of(ChangeKind k) {
  switch (k) {
    case ChangeKind::insert:
      return event_mask::kInsert;
    case ChangeKind::update:
      return event_mask::kUpdate;
    case ChangeKind::remove:
      return event_mask::kDelete;
  }
  return 0;
}

std::optional<protocol::ValueKind> kind_of(const Relation& rel, const std::string& column) {
  for (const auto& c : rel.columns) {
    if (c.name == column) return protocol::value_kind(c.type_name);
  }
  return std::nullopt;
}

// Does `b` let `change` through (event and filter)?
bool binding_passes(const BindingSpec& b, const RowChange& change) {
  if ((b.events & mask_of(change.kind)) == 0) return false;
  if (!b.filter) return true;
  const Relation& rel = *change.relation;
  if (change.kind == ChangeKind::remove) {
    // Only a complete old image can be both filtered and authorized (see router.hpp).
    if (rel.replica_identity != 'f' || !change.old_record) return false;
    return protocol::filter_matches(*b.filter, *change.old_record, kind_of(rel, b.filter->column));
  }
  if (!change.record) return false;
  return protocol::filter_matches(*b.filter, *change.record, kind_of(rel, b.filter->column));
}

}  // namespace

std::uint8_t parse_event_mask(std::string_view event) {
  if (iequals(event, "INSERT")) return event_mask::kInsert;
  if (iequals(event, "UPDATE")) return event_mask::kUpdate;
  if (iequals(event, "DELETE")) return event_mask::kDelete;
  return event_mask::kAll;
}

std::int64_t Router::binding_id(std::string_view event, std::string_view schema,
                                std::string_view table, std::string_view filter) {
  // FNV-1a 64 over the parameters, folded to 31 bits: a positive number JavaScript holds
  // exactly, like Supabase Realtime's phash2 ids.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  mix(event);
  mix(schema);
  mix(table);
  mix(filter);
  auto folded = static_cast<std::int64_t>((h ^ (h >> 31) ^ (h >> 62)) & 0x7fffffff);
  return folded == 0 ? 1 : folded;
}

void Router::add(SubscriberId subscriber, AuthClass auth, std::vector<BindingSpec> bindings) {
  remove(subscriber);
  auto s = std::make_unique<Subscriber>();
  s->cls = acquire(std::move(auth));
  s->bindings = std::move(bindings);
  index(subscriber, *s);
  subs_.emplace(subscriber, std::move(s));
}

void Router::remove(SubscriberId subscriber) {
  auto it = subs_.find(subscriber);
  if (it == subs_.end()) return;
  unindex(subscriber);
  release(it->second->cls);
  subs_.erase(it);
}

Router::Class* Router::acquire(AuthClass auth) {
  auto [it, fresh] = classes_.try_emplace(auth.role + '\x1f' + auth.claims_json);
  if (fresh) {
    it->second = std::make_unique<Class>(Class{std::make_shared<const AuthClass>(std::move(auth))});
  }
  ++it->second->subscribers;
  return it->second.get();
}

void Router::release(Class* cls) {
  if (--cls->subscribers > 0) return;
  classes_.erase(cls->auth->role + '\x1f' + cls->auth->claims_json);
}

void Router::set_auth(SubscriberId subscriber, AuthClass auth) {
  auto it = subs_.find(subscriber);
  if (it == subs_.end()) return;
  Class* previous = it->second->cls;
  it->second->cls = acquire(std::move(auth));
  release(previous);
}

void Router::index(SubscriberId id, const Subscriber& s) {
  for (const auto& b : s.bindings) {
    index_[index_key(b.schema, b.table)].push_back(Entry{id, &s, &b});
  }
}

void Router::unindex(SubscriberId id) {
  const auto& s = *subs_.at(id);
  for (const auto& b : s.bindings) {
    auto it = index_.find(index_key(b.schema, b.table));
    if (it == index_.end()) continue;
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const Entry& e) { return e.subscriber == id; }),
            v.end());
    if (v.empty()) index_.erase(it);
  }
}

Router::Plan Router::route(std::shared_ptr<const Transaction> txn) const {
  // Plans that ask nothing (no subscriber matched) share one empty list.
  static const VisibilityRequests kNone = std::make_shared<const std::vector<VisibilityRequest>>();
  Plan plan;
  plan.txn = txn;
  plan.requests = kNone;
  const auto n = txn->changes.size();
  plan.matches.resize(n);
  plan.checks.resize(n);
  if (index_.empty()) return plan;
  std::vector<VisibilityRequest> requests;

  // Per-subscriber scratch (stamps) instead of maps: this runs once per (change, subscriber) of
  // the table before visibility, e.g. 100 rows × 500 sockets per transaction.
  const std::uint64_t plan_stamp = ++plan_stamp_;
  std::vector<const Subscriber*> match_sub;
  // Per request: the change it last asked about and where those answers are.
  struct Asked {
    std::size_t change = static_cast<std::size_t>(-1);
    int new_row = -1;
    int old_row = -1;
  };
  std::vector<Asked> asked;
  const Relation* last_rel = nullptr;
  const std::vector<Entry>* lists[4] = {nullptr, nullptr, nullptr, nullptr};

  for (std::size_t i = 0; i < n; ++i) {
    const RowChange& change = txn->changes[i];
    // realtime.messages rows are Broadcast from Database: never postgres_changes, not even for a
    // subscription to every table (`schema: "*"`).
    if (!change.relation || is_messages_relation(*change.relation)) continue;
    const Relation& rel = *change.relation;
    if (&rel != last_rel) {
      last_rel = &rel;
      const std::string keys[4] = {index_key(rel.schema, rel.table), index_key(rel.schema, "*"),
                                   index_key("*", rel.table), index_key("*", "*")};
      for (int k = 0; k < 4; ++k) {
        auto it = index_.find(keys[k]);
        lists[k] = it == index_.end() ? nullptr : &it->second;
      }
    }
    const std::uint64_t change_stamp = ++change_stamp_;
    match_sub.clear();
    auto& matches = plan.matches[i];
    std::size_t candidates = 0;
    for (const auto* list : lists)
      candidates += list ? list->size() : 0;
    matches.reserve(candidates);
    for (const auto* list : lists) {
      if (!list) continue;
      for (const Entry& e : *list) {
        if (!binding_passes(*e.binding, change)) continue;
        const Subscriber& s = *e.sub;
        if (s.change_stamp != change_stamp) {
          s.change_stamp = change_stamp;
          s.change_slot = matches.size();
          matches.push_back(Match{e.subscriber, {}, false});
          match_sub.push_back(&s);
        }
        matches[s.change_slot].ids.push_back(e.binding->id);
      }
    }
    auto& checks = plan.checks[i];
    checks.assign(matches.size(), CheckSlot{});
    const bool ask_new = change.kind != ChangeKind::remove;
    const bool ask_old = change.kind == ChangeKind::remove ||
                         (change.kind == ChangeKind::update && change.old_record.has_value());
    for (std::size_t k = 0; k < matches.size(); ++k) {
      auto& ids = matches[k].ids;
      if (ids.size() > 1) {
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      }
      const Class& c = *match_sub[k]->cls;
      if (c.plan_stamp != plan_stamp) {
        c.plan_stamp = plan_stamp;
        c.request = static_cast<int>(requests.size());
        requests.push_back(VisibilityRequest{c.auth, {}});
        asked.push_back(Asked{});
      }
      auto& req = requests[c.request];
      auto& a = asked[c.request];
      // Each class asks about each image once, however many of its subscribers matched.
      if (a.change != i) {
        a = Asked{i, -1, -1};
        auto add = [&req](std::size_t change, RowImage image) {
          req.rows.push_back(RowCheck{change, image});
          return static_cast<int>(req.rows.size()) - 1;
        };
        if (ask_new) a.new_row = add(i, RowImage::new_row);
        if (ask_old) a.old_row = add(i, RowImage::old_row);
      }
      checks[k] = CheckSlot{c.request, a.new_row, a.old_row};
    }
  }
  if (!requests.empty())
    plan.requests = std::make_shared<const std::vector<VisibilityRequest>>(std::move(requests));
  return plan;
}

std::size_t Router::apply_visibility(Plan& plan,
                                     const Result<std::vector<VisibilityResult>>& results) {
  auto answer = [&](int request, int pos) {
    if (request < 0 || pos < 0 || !results.ok()) return Visibility::hidden;
    const auto& all = results.value();
    if (static_cast<std::size_t>(request) >= all.size()) return Visibility::hidden;
    const auto& rows = all[static_cast<std::size_t>(request)].rows;
    return static_cast<std::size_t>(pos) < rows.size() ? rows[static_cast<std::size_t>(pos)]
                                                       : Visibility::hidden;
  };
  std::size_t removed = 0;
  for (std::size_t i = 0; i < plan.matches.size(); ++i) {
    auto& matches = plan.matches[i];
    auto& checks = plan.checks[i];
    const bool is_delete = plan.txn->changes[i].kind == ChangeKind::remove;
    std::size_t out = 0;
    for (std::size_t k = 0; k < matches.size(); ++k) {
      const CheckSlot c = checks[k];
      bool keep = false;
      if (is_delete) {
        const Visibility old_row = answer(c.request, c.old_row);
        keep = old_row != Visibility::hidden;
        matches[k].key_only = old_row != Visibility::full;
      } else {
        keep = answer(c.request, c.new_row) == Visibility::full;
        matches[k].key_only = c.old_row >= 0 && answer(c.request, c.old_row) != Visibility::full;
      }
      if (keep) {
        if (out != k) {
          matches[out] = std::move(matches[k]);
          checks[out] = checks[k];
        }
        ++out;
      } else {
        ++removed;
      }
    }
    matches.resize(out);
    checks.resize(out);
  }
  return removed;
}

}  // namespace rtsync::server::realtime
