#include "rtsync/server/pg/db_pool.hpp"

#include <algorithm>

#include "rtsync/core/log.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/server/pg/names.hpp"

namespace rtsync::server::pg {

bool is_connection_failure(const Error& error) {
  if (error.code == Errc::io) return true;
  const std::string_view state = pg::sqlstate_of(error);
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03";
}

DbPool::DbPool(boost::asio::io_context& io, std::string conninfo, std::size_t size) {
  size = std::max<std::size_t>(size, 1);
  connections_.reserve(size);
  for (std::size_t i = 0; i < size; ++i) {
    connections_.push_back(std::make_unique<pg::AsyncConnection>(io, conninfo));
  }
}

DbPool::~DbPool() = default;

void DbPool::execute(std::vector<pg::Statement> batch, pg::AsyncConnection::BatchCallback done,
                     Retry retry) {
  ++batches_;
  // The batch is kept for a second run: statements are small next to a round trip.
  auto again = std::make_shared<std::vector<pg::Statement>>(batch);
  dispatch(std::move(batch), [this, weak = std::weak_ptr<bool>(alive_), again, retry,
                              done = std::move(done)](Result<std::vector<pg::PgResult>> r,
                                                      pg::Fate fate) mutable {
    const bool rerun = !r.ok() && !weak.expired() && is_connection_failure(r.error()) &&
                       (fate != pg::Fate::unknown || retry == Retry::idempotent);
    if (!rerun) return done(std::move(r));
    ++retries_;
    log::get(loggers::kServer)
        ->info("re-running a batch on a fresh connection after: {}", r.error().message);
    dispatch(std::move(*again), [done = std::move(done)](Result<std::vector<pg::PgResult>> r2,
                                                         pg::Fate) { done(std::move(r2)); });
  });
}

void DbPool::dispatch(std::vector<pg::Statement> batch, pg::AsyncConnection::FateCallback done) {
  // Least outstanding work first; ties rotate so idle connections all get used. A connection
  // whose batch just failed is idle and reconnects on its next batch.
  const std::size_t n = connections_.size();
  std::size_t best = next_ % n;
  for (std::size_t k = 1; k < n; ++k) {
    const std::size_t i = (next_ + k) % n;
    if (connections_[i]->pending() < connections_[best]->pending()) best = i;
  }
  next_ = best + 1;
  connections_[best]->execute(std::move(batch), std::move(done));
}

std::size_t DbPool::pending() const noexcept {
  std::size_t total = 0;
  for (const auto& c : connections_)
    total += c->pending();
  return total;
}

}  // namespace rtsync::server::pg
