// Row-level-security-correct delivery: decides which subscribers may see a changed row, and how
// much of it.
//
// Subscribers are grouped into equivalence classes of (role, claims): two subscribers with the
// same role and the same JWT claims see the same rows, so an authorizer answers ONE question per
// class per (transaction, table) — never one per subscriber.
//
// Every question is about one row IMAGE as it was committed, decoded from the WAL: the new row of
// an INSERT/UPDATE, or the old row of an UPDATE/DELETE. It is never answered from the row as it is
// in the table when the check runs (a row inserted into one tenant's scope and moved to another's
// an instant later must not reach the second tenant as an INSERT image of the first's data).
// docs/row-security.md describes the method; in short, per class:
//   - the role may not SELECT the table (or is not an API role)            → hidden;
//   - the table has RLS disabled, or the role bypasses it                    → full;
//   - otherwise the table's SELECT policies that apply to the role are evaluated on the image
//     (under the class's role and claims) → full when they pass, else hidden — for an old image
//     only when it is complete (REPLICA IDENTITY FULL). An incomplete old image (the key or
//     index columns only) cannot be judged: it is answered key_only, Supabase's documented
//     behaviour for such tables (the primary key alone, to roles that may SELECT the table).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/server/change_feed.hpp"

namespace rtsync::server {

struct AuthClass {
  std::string role;         // anon | authenticated | service_role | …
  std::string claims_json;  // the JWT claims, serialized canonically (same text ⇒ same class)
  friend bool operator==(const AuthClass&, const AuthClass&) = default;
};

// Which committed version of a changed row a question is about.
enum class RowImage : std::uint8_t {
  new_row,  // `record` of an INSERT/UPDATE
  old_row,  // `old_record` of an UPDATE/DELETE
};

struct RowCheck {
  std::size_t change = 0;  // index into txn->changes
  RowImage image = RowImage::new_row;
  friend bool operator==(const RowCheck&, const RowCheck&) = default;
};

struct VisibilityRequest {
  // Shared with the router's class and never changed: a transaction's requests do not copy the
  // claims text (one request per class per transaction), and an authorizer may tell classes apart
  // by this pointer (equal pointers, same class; the converse need not hold).
  std::shared_ptr<const AuthClass> auth;
  // The images this class needs answered, each at most once.
  std::vector<RowCheck> rows;
};

// A transaction's requests, immutable once made: the caller keeps them for a retry while an
// authorizer reads them, with no copy.
using VisibilityRequests = std::shared_ptr<const std::vector<VisibilityRequest>>;

enum class Visibility : std::uint8_t {
  hidden,    // nothing of the row may reach the class
  key_only,  // the primary key only (an old image that cannot be judged, see above)
  full,      // the whole image
};

struct VisibilityResult {
  // rows[i] answers request.rows[i]. A new image is never answered key_only.
  std::vector<Visibility> rows;
};

class RowAuthorizer {
 public:
  virtual ~RowAuthorizer() = default;
  // Asynchronous; `done` runs on the server loop with one result per request (same order), or an
  // error. An error is never an answer: the caller retries (PostgreSQL may be restarting) and
  // delivers nothing of the transaction until it has one. `transient(error)` tells an outage
  // (retry for as long as it lasts) from an error that repeats for the same input.
  virtual void authorize(std::shared_ptr<const Transaction> txn, VisibilityRequests requests,
                         std::function<void(Result<std::vector<VisibilityResult>>)> done) = 0;
  // Questions put to the database so far (one per class per table per batch): for /metrics.
  virtual std::uint64_t queries() const = 0;
  // Does this error mean "the database is unreachable or restarting" (true, the default) rather
  // than "this input fails the same way every time"?
  virtual bool transient(const Error& error) const {
    (void)error;
    return true;
  }
};

}  // namespace rtsync::server
