// PgRowAuthorizer: the RowAuthorizer over real PostgreSQL row-level security, evaluated on the
// committed row images (rtsync/server/row_authorizer.hpp; docs/row-security.md).
//
// Per authorize() call (one transaction's images, several classes of subscribers), at most two
// round trips on one pooled connection, both pipelined:
//   1. only when the metadata cache lacks or has aged out something: the tables' relrowsecurity
//      and names, and per (role, table) whether the role bypasses RLS (superuser, BYPASSRLS, or
//      owner without FORCE), may SELECT the table (schema USAGE + table SELECT), and the USING
//      expressions of the SELECT/ALL policies that apply to it (pg_get_expr of pg_policy);
//   2. one transaction (the pipeline's implicit transaction, ended by its Sync, so nothing set
//      or written in it outlives it): per table, the batch's images written once into the
//      connection's temporary table `pg_temp.rtsync_images_<oid>` (an ordinal, then the table's
//      columns; made from the table's type, ON COMMIT DELETE ROWS, remade when the table's
//      columns change or the connection is new), each row jsonb_populate_record of the image;
//      then per class
//        SELECT set_config('transaction_read_only', 'on', true), set_config('role', $1, true),
//               set_config('request.jwt.claims', $2, true)
//      (the role is bound as a parameter, never spliced into SQL, and must be in
//      `allowed_roles` and exist), then per table of that class ONE prepared query
//        SELECT <table>.rtsync_ordinal FROM pg_temp.rtsync_images_<oid> AS <table>
//        WHERE <asked> AND has_schema_privilege(…, 'USAGE')
//          AND has_table_privilege(<oid>, 'SELECT')
//          AND (<permissive policies, OR>) AND (<restrictive policies, AND>)
//      where <asked> names the images the class asks about: `rtsync_ordinal = ANY($1)` with their
//      ordinals when they are few among the batch's, otherwise `$1[rtsync_ordinal]` with a
//      boolean mask (a parameter array is searched, not hashed, per image: asking about n of n
//      images by list costs n², by mask n). The policies run under the class's
//      role and claims exactly as PostgreSQL would run them on a query of the table, but on the
//      images instead of the stored rows; subqueries in them (another table's ownership, say)
//      read the database as it is now. Column values an image lacks (unchanged TOASTed values
//      without REPLICA IDENTITY FULL) read as NULL.
// Without a query: tables with RLS disabled and roles that bypass it see every image if they may
// SELECT the table; roles outside `allowed_roles`, unknown roles and roles without SELECT see
// none; no permissive policy for the role means no image is visible; an old image that is not
// complete (REPLICA IDENTITY other than FULL) is answered key_only.
// Policies may read other tables that the same transaction changed, so the batch starts with
// `pg_visible_in_snapshot(<xid>)`: logical decoding hands a transaction on once its commit record
// is flushed, a moment before the committing backend leaves the proc array, and a snapshot taken
// in that window does not see its rows yet. While it answers false the batch's answers are
// discarded and it is re-run after `visibility_wait_first`, doubling up to 100 ms, for at most
// `visibility_wait_max` (then the answers stand and a warning is logged). Transactions with
// xid 0 (built by hand, not decoded) skip the wait.
//
// Batching (max_batch_transactions > 1): calls queued behind a busy pool whose metadata is cached
// share one batch — one commit-visibility statement for all their transactions first, one image
// write per table, then one set_config and one visibility query per (class, table) over all
// their images; each call still gets its own
// answer. `queries()` counts the per-(class, table) visibility queries of step 2 (never one per
// subscriber or per row; one per batch when calls are batched).
//
// Errors: a failed batch answers each of its calls with the error; `transient()` is true for
// connection loss and PostgreSQL's shutdown, recovery and resource errors (SQLSTATE classes 08,
// 53, 57, 58, 40), false for errors the same input repeats (a policy that fails on a value). A
// cancelled statement (57014: the statement timeout) is transient for a batch of several calls,
// whose batches then shrink (`shrunk_batches_for`), and a too_large error for a call alone.
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
  // A batch also holds at most this many rows asked about (over all its classes), so each of its
  // statements stays short; a call asking about more has a batch of its own. A huge
  // transaction's parts (1,000 changes each) then go a few at a time, not 64 in one batch that
  // outlasts the statement timeout on a loaded machine.
  std::size_t max_batch_checks = 16384;
  // A batch the statement timeout cancels: its calls are answered with that error (a transient
  // one: callers retry) and, for this long, batches hold at most half its rows (halved again by
  // another cancellation); a call alone that is cancelled is answered with a too_large error,
  // not transient (the same rows meet the same policies again).
  core::Duration shrunk_batches_for = std::chrono::seconds(60);
  // While a batch runs, another connection takes the calls waiting only once this many wait
  // (0: at once). A batch's PostgreSQL work is per class and table — with single-row commits and
  // many classes, nearly all of it — so two batches running side by side each do that work for
  // half the transactions: under load, one batch at a time of everything that waited costs far
  // less. Batches on different connections may answer out of order either way.
  std::size_t parallel_batch_from = 0;
};

class PgRowAuthorizer final : public RowAuthorizer {
 public:
  PgRowAuthorizer(boost::asio::io_context& io, core::Scheduler& scheduler,
                  PgRowAuthorizerOptions options);
  // Pending `done` callbacks are dropped (not called).
  ~PgRowAuthorizer() override;

  // Opens the pooled connections now (otherwise the first authorize() does).
  void start();

  void authorize(std::shared_ptr<const Transaction> txn, VisibilityRequests requests,
                 std::function<void(Result<std::vector<VisibilityResult>>)> done) override;
  std::uint64_t queries() const override;
  bool transient(const Error& error) const override;

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
