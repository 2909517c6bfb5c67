// Which node of a cluster streams the replication slot: the one holding a PostgreSQL advisory
// lock on a dedicated session (docs/scaling.md §3 says why a lock and not a Redis lease).
//
// Every `check_interval` a standby asks `pg_try_advisory_lock`; the leader checks that its session
// is still the one that took the lock (a reconnected session holds no lock) and still answers. A
// leader whose session fails or was replaced is a standby at once (`on_change(false)`), before
// any other node can take the lock; PostgreSQL ends the session of a vanished host within about
// 4 s (keepalives set on the session), so a standby takes over within the interval after that.
//
// Thread safety: loop-confined.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/pg/async_connection.hpp"

namespace boost::asio {
class io_context;
}

namespace rtsync::server::cluster {

struct LeadershipOptions {
  std::string conninfo;
  std::string name;  // what is led (the slot's name): the lock's key
  core::Duration check_interval = std::chrono::seconds(1);
};

class Leadership {
 public:
  Leadership(boost::asio::io_context& io, core::Scheduler& scheduler, LeadershipOptions options);
  ~Leadership();
  Leadership(const Leadership&) = delete;
  Leadership& operator=(const Leadership&) = delete;

  // Called on the loop when this node becomes leader (true) or stops being one (false).
  void set_on_change(std::function<void(bool leader)> cb) { on_change_ = std::move(cb); }
  void start();
  // Releases the lock (closes the session): another node may lead within its interval.
  void stop();
  bool leader() const noexcept { return leader_; }

 private:
  void check();
  void schedule_check();
  void set_leader(bool leader, std::string_view why);

  core::Scheduler& scheduler_;
  LeadershipOptions options_;
  std::unique_ptr<pg::AsyncConnection> conn_;
  std::function<void(bool)> on_change_;
  core::Timer timer_;
  bool leader_ = false;
  bool asking_ = false;
  bool stopped_ = true;
  std::uint64_t lock_session_ = 0;  // AsyncConnection::connects() when the lock was taken
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rtsync::server::cluster
