#include "rtsync/server/cluster/leadership.hpp"

#include "rtsync/core/log.hpp"
#include "rtsync/server/cluster/names.hpp"

namespace rtsync::server::cluster {

namespace {
// The lock's key: a constant class and the hash of the led name, so two slots (two deployments
// on one database) elect separately.
constexpr std::string_view kTryLock = "SELECT pg_catalog.pg_try_advisory_lock(31337, hashtext($1))";
}  // namespace

Leadership::Leadership(boost::asio::io_context& io, core::Scheduler& scheduler,
                       LeadershipOptions options)
    : scheduler_(scheduler), options_(std::move(options)) {
  // A vanished host's session is ended by PostgreSQL in about 4 s (idle 2 s, then 2 probes 1 s
  // apart), so its lock is free for the next check after that.
  conn_ = std::make_unique<pg::AsyncConnection>(
      io, options_.conninfo,
      std::vector<pg::ConnOption>{{"options",
                                   "-c tcp_keepalives_idle=2 -c "
                                   "tcp_keepalives_interval=1 -c "
                                   "tcp_keepalives_count=2"},
                                  {"application_name", "rtsync leadership"}});
}

Leadership::~Leadership() {
  *alive_ = false;
}

void Leadership::start() {
  stopped_ = false;
  check();
}

void Leadership::stop() {
  stopped_ = true;
  timer_.cancel();
  if (conn_) conn_->close();
  set_leader(false, "stopping");
}

void Leadership::schedule_check() {
  if (stopped_) return;
  timer_ = scheduler_.schedule(options_.check_interval, timers::LeaderCheck, [this] { check(); });
}

void Leadership::set_leader(bool leader, std::string_view why) {
  if (leader == leader_) return;
  leader_ = leader;
  log::get(loggers::kCluster)
      ->info("{} the replication slot {}: {}", leader ? "leading" : "no longer leading",
             options_.name, why);
  if (on_change_) on_change_(leader);
}

void Leadership::check() {
  if (stopped_ || asking_) return schedule_check();
  asking_ = true;
  auto alive = alive_;
  if (leader_) {
    // The lock lives as long as the session that took it: a reconnect means it is gone.
    conn_->query("SELECT 1", {}, [this, alive](Result<pg::PgResult> r) {
      if (!*alive) return;
      asking_ = false;
      if (!r.ok()) {
        set_leader(false, "the lock session failed: " + r.error().message);
      } else if (conn_->connects() != lock_session_) {
        set_leader(false, "the lock session was replaced");
      }
      schedule_check();
    });
    return;
  }
  conn_->query(std::string(kTryLock), {options_.name}, [this, alive](Result<pg::PgResult> r) {
    if (!*alive) return;
    asking_ = false;
    if (r.ok() && r.value().rows() == 1 && r.value().value(0, 0) == "t" && !stopped_) {
      lock_session_ = conn_->connects();
      set_leader(true, "took the advisory lock");
    } else if (!r.ok()) {
      log::get(loggers::kCluster)->debug("leadership check: {}", r.error().message);
    }
    schedule_check();
  });
}

}  // namespace rtsync::server::cluster
