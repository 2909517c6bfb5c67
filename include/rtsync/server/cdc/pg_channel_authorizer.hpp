// PgChannelAuthorizer: the ChannelAuthorizer over the project's row-level-security policies on
// `realtime.messages` (rtsync/server/channel_authorizer.hpp; docs/private-channels.md), checked the
// way Supabase Realtime checks them: a probe whose writes never outlive it.
//
// One check is one batch on a pooled connection (one round trip; checks from many joins are
// pipelined on the same connections, never waiting for each other's answers), one implicit
// transaction:
//   1. SELECT set_config(...) of `realtime.topic` (the channel name), `request.jwt.claims`,
//      `request.jwt.claim.sub`, `request.jwt.claim.role` and `request.headers` ('{}'), each local
//      to the transaction, with the values bound as parameters (never spliced into SQL);
//   2. a DO block that, inside a sub-transaction it always rolls back:
//        - for read rights, inserts one probe row per extension ('broadcast', 'presence') into
//          realtime.messages as the server's own role (the table's owner), switches to the
//          caller's role (set_config('role', …, true)) and SELECTs each probe row back by id: a
//          row the SELECT policies let through is a read right;
//        - for write rights, under the caller's role, INSERTs one row per extension, each in its
//          own sub-transaction: insufficient_privilege (no INSERT grant, or a row the INSERT
//          policies refuse: "new row violates row-level security policy") is no right, success
//          is the right;
//      then keeps the answers and lets the rolled-back sub-transaction take every probe row (and
//      the role switch) with it;
//   3. SELECT of the answers.
// Nothing is committed: the probe rows never exist outside the check, so logical decoding (the
// messages publication) never sees them.
//
// Failures (ChannelAuthError): any error PostgreSQL raises in the check (a policy that raises, a
// role that does not exist, no realtime.messages, no USAGE on schema realtime) is policy_error;
// 57014 is query_canceled (the connection's statement_timeout); a connection that cannot be opened
// or breaks (pg::is_connection_failure) is unavailable, after one more try on a fresh connection
// (the check is read-only in effect); no answer within `answer_timeout`
// (timers::ChannelAuthDeadline) is unavailable too, so a PostgreSQL that hangs never holds a join
// for longer than that. Roles outside `allowed_roles` are refused without a query (policy_error),
// as the row authorizer does.
//
// Identical checks in flight at once (same role, claims, topic and rights) share one probe.
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
#include "rtsync/server/channel_authorizer.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::cdc {

// Settings of PgChannelAuthorizer (the server uses the defaults).
struct PgChannelAuthorizerOptions {
  std::string conninfo;  // a role that owns realtime.messages and may SET ROLE to the API roles
  // Roles a check may run as; any other is refused without a query.
  std::vector<std::string> allowed_roles{"anon", "authenticated", "service_role"};
  std::size_t connections = 2;  // pooled connections the checks are pipelined on
  // PostgreSQL cancels a check running longer (a slow policy): query_canceled.
  std::chrono::milliseconds statement_timeout{3000};
  // The longest a caller waits for an answer, connecting included: unavailable after it.
  core::Duration answer_timeout = std::chrono::seconds(5);
};

// The ChannelAuthorizer over PostgreSQL (see the file comment).
class PgChannelAuthorizer final : public ChannelAuthorizer {
 public:
  // Connections open lazily (or at start()); nothing blocks.
  PgChannelAuthorizer(boost::asio::io_context& io, core::Scheduler& scheduler,
                      PgChannelAuthorizerOptions options);
  // Pending `done` callbacks are dropped (not called).
  ~PgChannelAuthorizer() override;

  // Opens the pooled connections now (otherwise the first check does).
  void start();

  // See ChannelAuthorizer::check; answered within options.answer_timeout.
  void check(ChannelCheck check, std::function<void(ChannelAuthResult)> done) override;

  // Probes sent to PostgreSQL (a retry on a fresh connection counts again).
  std::uint64_t probes() const;
  // Checks answered by an identical probe already in flight.
  std::uint64_t coalesced() const;
  // Checks answered with an error (any ChannelAuthFailure).
  std::uint64_t failures() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::cdc
