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
// A row is visible to a class iff its table's query returned its ordinal. Without a query:
// tables with RLS disabled and roles that bypass RLS see every row if they may SELECT the table;
// roles outside `allowed_roles`, unknown roles and roles without SELECT see none. DELETE entries
// (the row is gone) are answered by the privilege check alone.
//
// `queries()` counts the per-(class, table) visibility queries of step 2 (never one per
// subscriber or per row).
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
  // authorize() calls waiting for a free connection.
  std::size_t waiting() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::cdc
