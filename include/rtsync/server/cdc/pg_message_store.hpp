// PgMessageStore: the MessageStore (rtsync/server/message_store.hpp) over PostgreSQL's
// `realtime.messages`, on one pipelined connection of its own (pg::AsyncConnection, so the loop
// never waits).
//
// Replay: one statement, with a 5 s statement timeout (Supabase Realtime's):
//   the last `limit` rows of the topic with private IS TRUE, extension = 'broadcast',
//   inserted_at >= `since` and inserted_at < now + 1 minute, newest first (ties by their position
//   in the table), returned oldest first —
// answered only when the statement's snapshot sees every xid of `visible_xids`
// (pg_visible_in_snapshot, each widened to an xid8 in the snapshot's epoch); otherwise it runs
// again after a wait (timers::VisibilityWait: 1 ms doubling to 50 ms), and after 2 s answers from
// whatever it sees (with a warning).
// A replay that fails because the connection broke is run once more on a fresh one (a read).
//
// Retention: DELETE of at most `max_rows` rows with inserted_at < cutoff, one statement (60 s
// timeout). Both go through the same connection in the order they were asked for, so a replay
// asked for before a delete reads the rows as they were before it, and a replay asked for during a
// long retention run waits at most one delete batch.
//
// Times: inserted_at is `timestamp without time zone` written by now() in the inserting session's
// TimeZone; `since` and the cutoff (milliseconds since the epoch) are turned into that same
// representation in this connection's session, whose TimeZone is the database's default — so
// both agree whenever the writers use the default (UTC on Supabase).
//
// The connecting role must see every row of realtime.messages: its owner (who created it at
// bootstrap) or a role with BYPASSRLS. Thread safety: construct, call and destroy on the loop
// thread that runs `io`; callbacks run there and never after destruction.
#pragma once

#include <memory>
#include <string>

#include "rtsync/core/scheduler.hpp"
#include "rtsync/server/message_store.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rtsync::server::cdc {

// The MessageStore over PostgreSQL (see the file comment).
class PgMessageStore final : public MessageStore {
 public:
  // Connects lazily (the first call). `scheduler` runs on the loop of `io` (visibility waits).
  PgMessageStore(boost::asio::io_context& io, core::Scheduler& scheduler, std::string conninfo);
  ~PgMessageStore() override;
  PgMessageStore(const PgMessageStore&) = delete;
  PgMessageStore& operator=(const PgMessageStore&) = delete;

  void replay(std::string topic, std::int64_t since_ms, std::int64_t limit,
              std::vector<std::uint32_t> visible_xids, ReplayCallback done) override;
  void delete_before(std::int64_t cutoff_ms, std::size_t max_rows, DeleteCallback done) override;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtsync::server::cdc
