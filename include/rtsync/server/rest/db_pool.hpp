// A small pool of pipelined PostgreSQL connections for the request-serving services (/rest/v1,
// /auth/v1). Each batch goes to the connection with the fewest batches outstanding; batches on one
// connection are pipelined, each one round trip and one implicit transaction (PostgreSQL runs the
// statements of a batch — up to its Sync — as one transaction, and rolls all of them back if one
// fails). Connections open lazily and reopen after a failure.
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

namespace rtsync::server::rest {

class DbPool {
 public:
  // `conninfo`: a role that may SET ROLE to anon/authenticated/service_role (the migrations grant
  // that) and owns auth.users. `size` >= 1.
  DbPool(boost::asio::io_context& io, std::string conninfo, std::size_t size = 4);
  ~DbPool();
  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  // Runs `batch` as one transaction; `done` gets one result per statement or the first error.
  void execute(std::vector<pg::Statement> batch, pg::AsyncConnection::BatchCallback done);

  std::size_t size() const noexcept { return connections_.size(); }
  // Batches queued or in flight over all connections.
  std::size_t pending() const noexcept;
  std::uint64_t batches() const noexcept { return batches_; }

 private:
  std::vector<std::unique_ptr<pg::AsyncConnection>> connections_;
  std::size_t next_ = 0;
  std::uint64_t batches_ = 0;
};

}  // namespace rtsync::server::rest
