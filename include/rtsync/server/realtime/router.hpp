// Routing of decoded row changes to postgres_changes subscriptions — pure, no I/O.
//
// Subscriptions are indexed by (schema, table) — exact names plus `*` wildcards — then filtered by
// event and by their filter (eq, neq, lt, lte, gt, gte, in) evaluated on the row. The result of
// route() is one match per (change, subscriber) carrying the ids of EVERY binding of that
// subscriber that matched (one frame per channel), plus the row-visibility questions to put to a
// RowAuthorizer: one request per auth class (role, claims), covering every row image of the
// transaction that class needs — never one per subscriber.
//
// Visibility (rtsync/server/row_authorizer.hpp): an INSERT/UPDATE needs its new image to be
// visible to the class; an UPDATE that carries an old tuple also asks about the old image, whose
// answer decides whether `old_record` goes out whole or as the primary key only; a DELETE asks
// about its old image alone (hidden: not delivered; key_only: the primary key only).
//
// Filters are judged on the image that is delivered, and a match stands only if the class may
// see that image, so a filter never reveals anything about a row its subscriber may not see. A
// DELETE passes a filter only when its old image is complete (REPLICA IDENTITY FULL): with a key
// or index identity the old row's other columns are unknown, and judging a filter on the key
// columns of a row that cannot be authorized would make the filter an oracle.
//
// Thread safety: confined to the server loop.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "rtsync/core/result.hpp"
#include "rtsync/protocol/filter.hpp"
#include "rtsync/server/change_feed.hpp"
#include "rtsync/server/row_authorizer.hpp"

namespace rtsync::server::realtime {

using SubscriberId = std::uint64_t;

namespace event_mask {
inline constexpr std::uint8_t kInsert = 1;
inline constexpr std::uint8_t kUpdate = 2;
inline constexpr std::uint8_t kDelete = 4;
inline constexpr std::uint8_t kAll = 7;
}  // namespace event_mask

// "INSERT" | "UPDATE" | "DELETE" (case-insensitive) → its bit; anything else ("*") → all.
std::uint8_t parse_event_mask(std::string_view event);

// One validated postgres_changes binding.
struct BindingSpec {
  std::int64_t id = 0;  // the id echoed in the join reply and carried in `ids`
  std::uint8_t events = event_mask::kAll;
  std::string schema = "public";  // "*" = any
  std::string table = "*";        // "*" = any
  std::optional<protocol::Filter> filter;
};

class Router {
 public:
  struct Match {
    SubscriberId subscriber = 0;
    // ascending, distinct; inline for the usual one or two bindings (route() builds one Match per
    // (change, subscriber) before visibility, so it must not allocate)
    boost::container::small_vector<std::int64_t, 2> ids;
    // `old_record` goes out as the primary key only (the class may not see the old image).
    bool key_only = false;
  };
  // Where the answers for one match are: request index and positions in its `rows` (-1: none).
  struct CheckSlot {
    int request = -1;
    int new_row = -1;
    int old_row = -1;
  };
  struct Plan {
    std::shared_ptr<const Transaction> txn;
    // matches[i]: subscribers change i goes to (before visibility is applied).
    std::vector<std::vector<Match>> matches;
    // One request per auth class with the row images it must be allowed to see (never null, but
    // for a resume replay's step once its answers are applied).
    VisibilityRequests requests;
    // checks[i][k]: where the answers for matches[i][k] are.
    std::vector<std::vector<CheckSlot>> checks;
  };

  // Replaces any earlier registration of `subscriber`.
  void add(SubscriberId subscriber, AuthClass auth, std::vector<BindingSpec> bindings);
  void remove(SubscriberId subscriber);
  // New claims after an access_token push: later transactions are authorized under them.
  void set_auth(SubscriberId subscriber, AuthClass auth);
  bool contains(SubscriberId subscriber) const { return subs_.count(subscriber) != 0; }
  std::size_t size() const { return subs_.size(); }

  Plan route(std::shared_ptr<const Transaction> txn) const;
  // Removes matches whose image the authorizer did not confirm (all of them on error) and marks
  // the ones whose old row goes out as the key only. Returns how many were removed.
  static std::size_t apply_visibility(Plan& plan,
                                      const Result<std::vector<VisibilityResult>>& results);

  // Stable binding id from the binding's parameters (same parameters ⇒ same id, so identical
  // bindings collapse and every socket subscribing the same thing shares frames).
  static std::int64_t binding_id(std::string_view event, std::string_view schema,
                                 std::string_view table, std::string_view filter);

 private:
  // One per distinct (role, claims) among the subscribers, shared by them: route() groups its
  // visibility questions by class without hashing the claims text per change.
  struct Class {
    std::shared_ptr<const AuthClass> auth;  // what every request of this class points at
    std::size_t subscribers = 0;
    // Scratch of route(): the class's request index in the plan whose stamp this is.
    mutable std::uint64_t plan_stamp = 0;
    mutable int request = -1;
  };
  struct Subscriber {
    Class* cls = nullptr;
    std::vector<BindingSpec> bindings;
    // Scratch of route(), valid while the stamp equals the current change's: where this
    // subscriber sits in that change's matches.
    mutable std::uint64_t change_stamp = 0;
    mutable std::size_t change_slot = 0;
  };
  struct Entry {
    SubscriberId subscriber;
    const Subscriber* sub;
    const BindingSpec* binding;
  };
  void index(SubscriberId id, const Subscriber& s);
  void unindex(SubscriberId id);
  Class* acquire(AuthClass auth);
  void release(Class* cls);

  std::unordered_map<SubscriberId, std::unique_ptr<Subscriber>> subs_;
  // "role\x1fclaims" → class
  std::unordered_map<std::string, std::unique_ptr<Class>> classes_;
  // "schema\x1ftable" (either may be "*") → entries
  std::unordered_map<std::string, std::vector<Entry>> index_;
  mutable std::uint64_t change_stamp_ = 0;
  mutable std::uint64_t plan_stamp_ = 0;
};

}  // namespace rtsync::server::realtime
