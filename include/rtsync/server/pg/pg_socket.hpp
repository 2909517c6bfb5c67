// Readiness of a libpq socket on an Asio io_context, and non-blocking connection set-up.
//
// libpq owns its socket: PgSocket only watches the descriptor (never closes it) and must be
// released before the PGconn is finished. Both types keep Asio out of this header.
//
// Thread safety: everything here runs on the thread that runs the io_context.
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "rtsync/core/result.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::pg {

// Watches one file descriptor for read / write readiness (level-triggered, one-shot waits).
class PgSocket {
 public:
  explicit PgSocket(boost::asio::io_context& io);
  ~PgSocket();  // releases the descriptor; pending waits are abandoned (callbacks not called)
  PgSocket(const PgSocket&) = delete;
  PgSocket& operator=(const PgSocket&) = delete;

  // Starts watching `fd` (releases a previously watched one first). No-op if already watching it.
  void watch(int fd);
  // Forgets the descriptor without closing it; pending waits are abandoned.
  void release() noexcept;
  bool watching() const noexcept;
  int fd() const noexcept;

  // One outstanding wait per direction; a second request while one is pending is ignored.
  // `fn(true)` on readiness, `fn(false)` if the wait failed. Never called after release().
  void wait_read(std::function<void(bool)> fn);
  void wait_write(std::function<void(bool)> fn);
  bool read_pending() const noexcept;
  bool write_pending() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// A connection being established without blocking the loop (PQconnectStartParams +
// PQconnectPoll on socket readiness). Destroying it cancels: the callback is then never called
// and the half-open connection is closed.
class PendingConnect {
 public:
  PendingConnect() = default;
  PendingConnect(PendingConnect&&) noexcept = default;
  PendingConnect& operator=(PendingConnect&& other) noexcept;
  PendingConnect(const PendingConnect&) = delete;
  PendingConnect& operator=(const PendingConnect&) = delete;
  ~PendingConnect();

  void cancel() noexcept;
  bool pending() const noexcept;

  struct Op;
  explicit PendingConnect(std::shared_ptr<Op> op) : op_(std::move(op)) {}

 private:
  std::shared_ptr<Op> op_;
};

// Starts connecting; `done` runs on the io_context with the open connection (in blocking mode;
// callers switch to non-blocking as they need) or an Errc::io error.
PendingConnect async_connect(boost::asio::io_context& io, std::string_view conninfo,
                             const std::vector<ConnOption>& overrides,
                             std::function<void(Result<Connection>)> done);

}  // namespace rtsync::server::pg
