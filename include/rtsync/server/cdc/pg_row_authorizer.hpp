// PgRowAuthorizer: the RowAuthorizer over real PostgreSQL row-level security.
//
// Per authorize() call (one transaction's changes, several classes of subscribers), at most two
// round trips on one pooled connection, both pipelined:
//   1. only when the relation metadata cache lacks or has aged out something: the tables'
//      relrowsecurity and key columns, and per (role, table) whether the role bypasses RLS and
//      may SELECT the key (schema USAGE + table or key-column SELECT);
//   2. one read-only transaction (the pipeline's implicit transaction, ended by its Sync, so
//      nothing set in it outlives it): per class
//        SELECT set_config('transaction_read_only', 'on', true), set_config('role', $1, true),
//               set_config('request.jwt.claims', $2, true)
//      (the role is bound as a parameter, never spliced into SQL, and must be in
//      `allowed_roles` and exist), then per table of that class ONE prepared query
//        SELECT k.i FROM unnest($1[, $2…]) WITH ORDINALITY AS k(c1[, c2…], i)
//        WHERE EXISTS (SELECT 1 FROM <schema>.<table> t WHERE t.<pk1> = k.c1 …)
//      with the changed rows' primary keys bound as typed arrays.
// Before step 2 can answer, the transaction itself must be visible: logical decoding hands a
// transaction on once its commit record is flushed, a moment before the committing backend leaves
// the proc array, and a snapshot taken in that window does not see its rows yet (RLS would refuse
// every one of them). So the batch starts with `pg_visible_in_snapshot(<xid>)`; while it answers
// false the batch's answers are discarded and it is re-run after `visibility_wait_first`, doubling
// up to 100 ms, for at most `visibility_wait_max` (then the answers stand and a warning is logged).
// Transactions with xid 0 (built by hand, not decoded) skip the wait.
// A row is visible to a class iff its table's query returned its ordinal. Without a query:
// tables with RLS disabled and roles that bypass RLS see every row if they may SELECT the table;
// roles outside `allowed_roles`, unknown roles and roles without SELECT see none. DELETE entries
// (the row is gone) are answered by the privilege check alone.
//
// Batching (max_batch_transactions > 1): calls queued behind a busy pool whose metadata is cached
// share one batch — one pg_visible_in_snapshot per transaction first, then one set_config and one
// visibility query per (class, table) over all their rows; each call still gets its own answer.
// `queries()` counts the per-(class, table) visibility queries of step 2 (never one per
// subscriber or per row; one per batch when calls are batched).
//
// Thread safety: construct, call and destroy on the loop thread that runs `io`; callbacks run
// there.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/row_authorizer.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::cdc {

struct PgRowAuthorizerOptions {
  std::string conninfo;  // a role that may SET ROLE to the API roles (bootstrap grants them)
  std::vector<std::string> allowed_roles{"anon", "authenticated", "service_role"};
  std::size_t connections = 2;
  // How long table/role metadata (RLS flag, keys, privileges) is trusted before re-reading.
  core::Duration metadata_ttl = std::chrono::seconds(1);
  std::chrono::milliseconds statement_timeout{5000};
  // The commit-visibility wait described above.
  core::Duration visibility_wait_first = std::chrono::milliseconds(1);
  core::Duration visibility_wait_max = std::chrono::seconds(5);
  // Calls waiting for a connection whose metadata is known are answered together, up to this
  // many per batch: their rows go into one visibility query per (class, table), each
  // transaction keeps its own commit-visibility check. 1 = one call per batch.
  std::size_t max_batch_transactions = 1;
};

class PgRowAuthorizer final : public RowAuthorizer {
 public:
  PgRowAuthorizer(boost::asio::io_context& io, core::Scheduler& scheduler,
                  PgRowAuthorizerOptions options);
  // Pending `done` callbacks are dropped (not called).
  ~PgRowAuthorizer() override;

  // Opens the pooled connections now (otherwise the first authorize() does).
  void start();

  void authorize(std::shared_ptr<const Transaction> txn, std::vector<VisibilityRequest> requests,
                 std::function<void(Result<std::vector<VisibilityResult>>)> done) override;
  std::uint64_t queries() const override;

  std::uint64_t metadata_queries() const;
  std::uint64_t failures() const;
  // Batches re-run because their transaction was not yet visible to a fresh snapshot.
  std::uint64_t visibility_waits() const;
  // authorize() calls waiting for a free connection.
  std::size_t waiting() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::cdc
