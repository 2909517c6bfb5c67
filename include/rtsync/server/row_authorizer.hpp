// Row-level-security-correct delivery: decides which subscribers may SELECT a changed row.
//
// Subscribers are grouped into equivalence classes of (role, claims): two subscribers with the
// same role and the same JWT claims see the same rows, so the authorizer runs ONE query per class
// per (transaction, table) — never one per subscriber — under real RLS:
//   BEGIN; SET LOCAL ROLE <role>; SELECT set_config('request.jwt.claims', <claims>, true);
//   SELECT <pk cols> FROM <schema>.<table> WHERE (<pk cols>) IN (<the changed rows' keys>);
//   ROLLBACK
// Rows whose table has RLS disabled are visible to every role that has SELECT on the table.
// DELETEs cannot be checked (the row is gone): they are authorized by the class's join-time
// authorization alone (see DESIGN.md and the server's router).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/server/change_stream.hpp"

namespace rtsync::server {

struct AuthClass {
  std::string role;         // anon | authenticated | service_role | …
  std::string claims_json;  // the JWT claims, serialized canonically (same text ⇒ same class)
  friend bool operator==(const AuthClass&, const AuthClass&) = default;
};

struct VisibilityRequest {
  AuthClass auth;
  // Indexes into txn->changes (INSERT/UPDATE only) whose visibility this class needs.
  std::vector<std::size_t> changes;
};

struct VisibilityResult {
  // visible[i] answers request.changes[i].
  std::vector<bool> visible;
};

class RowAuthorizer {
 public:
  virtual ~RowAuthorizer() = default;
  // Asynchronous; `done` runs on the server loop with one result per request (same order), or an
  // error (then the router treats every row as not visible and counts the failure).
  virtual void authorize(std::shared_ptr<const Transaction> txn,
                         std::vector<VisibilityRequest> requests,
                         std::function<void(Result<std::vector<VisibilityResult>>)> done) = 0;
  // Queries run so far (one per class per table per transaction): for /metrics and tests.
  virtual std::uint64_t queries() const = 0;
};

}  // namespace rtsync::server
