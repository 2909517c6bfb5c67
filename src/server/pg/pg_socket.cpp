#include "rtsync/server/pg/pg_socket.hpp"

#include <libpq-fe.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <optional>

namespace rtsync::server::pg {

namespace asio = boost::asio;

// Handlers hold the state (not the PgSocket) so they stay valid when the owner goes away; the
// generation tells a handler whether the descriptor it waited on is still the watched one.
struct PgSocket::State {
  explicit State(asio::io_context& io) : io(io) {}
  asio::io_context& io;
  std::optional<asio::posix::stream_descriptor> desc;
  int fd = -1;
  std::uint64_t generation = 0;
  bool read_pending = false;
  bool write_pending = false;
};

PgSocket::PgSocket(asio::io_context& io) : state_(std::make_shared<State>(io)) {}

PgSocket::~PgSocket() {
  release();
}

void PgSocket::watch(int fd) {
  if (state_->desc && state_->fd == fd) return;
  release();
  if (fd < 0) return;
  state_->desc.emplace(state_->io, fd);
  state_->fd = fd;
}

void PgSocket::release() noexcept {
  auto& s = *state_;
  ++s.generation;
  s.read_pending = false;
  s.write_pending = false;
  if (s.desc) {
    boost::system::error_code ec;
    s.desc->cancel(ec);
    // release() deregisters from the reactor without closing: libpq owns the descriptor.
    (void)s.desc->release();
    s.desc.reset();
  }
  s.fd = -1;
}

bool PgSocket::watching() const noexcept {
  return state_->desc.has_value();
}
int PgSocket::fd() const noexcept {
  return state_->fd;
}
bool PgSocket::read_pending() const noexcept {
  return state_->read_pending;
}
bool PgSocket::write_pending() const noexcept {
  return state_->write_pending;
}

void PgSocket::wait_read(std::function<void(bool)> fn) {
  auto& s = *state_;
  if (!s.desc || s.read_pending) return;
  s.read_pending = true;
  s.desc->async_wait(
      asio::posix::descriptor_base::wait_read,
      [st = state_, gen = s.generation, fn = std::move(fn)](const boost::system::error_code& ec) {
        if (gen != st->generation) return;
        st->read_pending = false;
        fn(!ec);
      });
}

void PgSocket::wait_write(std::function<void(bool)> fn) {
  auto& s = *state_;
  if (!s.desc || s.write_pending) return;
  s.write_pending = true;
  s.desc->async_wait(
      asio::posix::descriptor_base::wait_write,
      [st = state_, gen = s.generation, fn = std::move(fn)](const boost::system::error_code& ec) {
        if (gen != st->generation) return;
        st->write_pending = false;
        fn(!ec);
      });
}

// ---- async_connect ---------------------------------------------------------------------------

struct PendingConnect::Op : std::enable_shared_from_this<PendingConnect::Op> {
  explicit Op(asio::io_context& io) : sock(io) {}
  PgSocket sock;
  PGconn* conn = nullptr;
  std::function<void(Result<Connection>)> done;
  bool finished = false;

  void finish(Result<Connection> r) {
    if (finished) return;
    finished = true;
    sock.release();
    auto fn = std::move(done);
    done = nullptr;
    if (fn) fn(std::move(r));
  }

  void fail(std::string what) {
    std::string msg = "connecting to PostgreSQL: " + std::move(what);
    if (conn) {
      PQfinish(conn);
      conn = nullptr;
    }
    finish(make_error(Errc::io, std::move(msg)));
  }

  void step(PostgresPollingStatusType st) {
    if (finished) return;
    switch (st) {
      case PGRES_POLLING_OK:
        route_notices_to_log(conn);
        finish(Connection(std::exchange(conn, nullptr)));
        return;
      case PGRES_POLLING_FAILED: {
        std::string m = PQerrorMessage(conn);
        while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
          m.pop_back();
        fail(m);
        return;
      }
      case PGRES_POLLING_READING:
      case PGRES_POLLING_WRITING: {
        // libpq may switch sockets while trying several hosts/addresses: rebind every step.
        sock.watch(PQsocket(conn));
        if (!sock.watching()) return fail("no socket");
        auto next = [weak = weak_from_this()](bool) {
          if (auto self = weak.lock()) self->step(PQconnectPoll(self->conn));
        };
        if (st == PGRES_POLLING_READING) {
          sock.wait_read(std::move(next));
        } else {
          sock.wait_write(std::move(next));
        }
        return;
      }
      default:
        return fail("unexpected polling state");
    }
  }
};

PendingConnect& PendingConnect::operator=(PendingConnect&& other) noexcept {
  if (this != &other) {
    cancel();
    op_ = std::move(other.op_);
  }
  return *this;
}

PendingConnect::~PendingConnect() {
  cancel();
}

void PendingConnect::cancel() noexcept {
  if (!op_) return;
  auto op = std::move(op_);
  op->finished = true;
  op->done = nullptr;
  op->sock.release();
  if (op->conn) {
    PQfinish(op->conn);
    op->conn = nullptr;
  }
}

bool PendingConnect::pending() const noexcept {
  return op_ && !op_->finished;
}

PendingConnect async_connect(asio::io_context& io, std::string_view conninfo,
                             const std::vector<ConnOption>& overrides,
                             std::function<void(Result<Connection>)> done) {
  auto op = std::make_shared<PendingConnect::Op>(io);
  op->done = std::move(done);
  auto params = ConnParams::parse(conninfo, overrides);
  if (!params) {
    // Report on the loop, never from inside the caller's stack.
    asio::post(io, [op, err = params.error()]() mutable { op->finish(std::move(err)); });
    return PendingConnect(op);
  }
  op->conn = PQconnectStartParams(params->keywords(), params->values(), 0);
  if (!op->conn || PQstatus(op->conn) == CONNECTION_BAD) {
    std::string m = op->conn ? PQerrorMessage(op->conn) : "out of memory";
    asio::post(io, [op, m] { op->fail(m); });
    return PendingConnect(op);
  }
  // PQconnectStart behaves as if PQconnectPoll had just returned PGRES_POLLING_WRITING.
  asio::post(io, [weak = std::weak_ptr<PendingConnect::Op>(op)] {
    if (auto self = weak.lock()) self->step(PGRES_POLLING_WRITING);
  });
  return PendingConnect(op);
}

}  // namespace rtsync::server::pg
