#include "rtsync/server/rest/db_pool.hpp"

#include <algorithm>

namespace rtsync::server::rest {

DbPool::DbPool(boost::asio::io_context& io, std::string conninfo, std::size_t size) {
  size = std::max<std::size_t>(size, 1);
  connections_.reserve(size);
  for (std::size_t i = 0; i < size; ++i) {
    connections_.push_back(std::make_unique<pg::AsyncConnection>(io, conninfo));
  }
}

DbPool::~DbPool() = default;

void DbPool::execute(std::vector<pg::Statement> batch, pg::AsyncConnection::BatchCallback done) {
  // Least outstanding work first; ties rotate so idle connections all get used.
  const std::size_t n = connections_.size();
  std::size_t best = next_ % n;
  for (std::size_t k = 1; k < n; ++k) {
    const std::size_t i = (next_ + k) % n;
    if (connections_[i]->pending() < connections_[best]->pending()) best = i;
  }
  next_ = best + 1;
  ++batches_;
  connections_[best]->execute(std::move(batch), std::move(done));
}

std::size_t DbPool::pending() const noexcept {
  std::size_t total = 0;
  for (const auto& c : connections_)
    total += c->pending();
  return total;
}

}  // namespace rtsync::server::rest
