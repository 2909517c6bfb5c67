// A small pool of pipelined PostgreSQL connections for the request-serving services (/rest/v1,
// /auth/v1). Each batch goes to the connection with the fewest batches outstanding; batches on one
// connection are pipelined, each one round trip and one implicit transaction (PostgreSQL runs the
// statements of a batch — up to its Sync — as one transaction, and rolls all of them back if one
// fails; a batch must not COMMIT by itself). Connections open lazily and reopen after a failure;
// idle ones that PostgreSQL closes (a restart) are dropped as it happens (pg::AsyncConnection).
//
// A batch that fails because its connection broke (is_connection_failure) runs once more, on a
// freshly chosen connection, when that is safe:
//   - always when it never reached PostgreSQL or PostgreSQL answered it with an error (57P01
//     admin_shutdown, say): its transaction did not commit (pg::Fate::not_sent / rolled_back);
//   - when the connection broke after it was sent and before its outcome arrived (Fate::unknown),
//     only if the caller marked it Retry::idempotent (reads): a write may have committed, and
//     the caller gets the failure (the REST API answers 503 PGRST001, auth 500).
// The second failure, if any, is the one reported.
//
// Thread safety: all calls and callbacks on the io_context's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rtsync/server/pg/async_connection.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::pg {

enum class Retry {
  if_not_committed,  // re-run after a connection failure only if it surely did not commit
  idempotent,        // running it twice is harmless (reads): re-run after any connection failure
};

// The connection failed rather than the statement: libpq lost or could not open the connection
// (Errc::io), SQLSTATE class 08 (connection exception), 57P01 admin_shutdown, 57P02
// crash_shutdown, 57P03 cannot_connect_now.
bool is_connection_failure(const Error& error);

class DbPool {
 public:
  // `conninfo`: a role that may SET ROLE to anon/authenticated/service_role (the migrations grant
  // that) and owns auth.users. `size` >= 1.
  DbPool(boost::asio::io_context& io, std::string conninfo, std::size_t size = 4);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  // Runs `batch` as one transaction; `done` gets one result per statement or the first error.
  void execute(std::vector<pg::Statement> batch, pg::AsyncConnection::BatchCallback done,
               Retry retry = Retry::if_not_committed);

  std::size_t size() const noexcept { return connections_.size(); }
  // Batches queued or in flight over all connections.
  std::size_t pending() const noexcept;
  std::uint64_t batches() const noexcept { return batches_; }
  // Batches run a second time after a connection failure.
  std::uint64_t retries() const noexcept { return retries_; }

 private:
  void dispatch(std::vector<pg::Statement> batch, pg::AsyncConnection::FateCallback done);

  std::vector<std::unique_ptr<pg::AsyncConnection>> connections_;
  std::size_t next_ = 0;
  std::uint64_t batches_ = 0;
  std::uint64_t retries_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rtsync::server::pg
