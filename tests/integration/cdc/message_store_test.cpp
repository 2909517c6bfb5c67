// PgMessageStore against a real PostgreSQL with the bootstrap's realtime.messages: what a replay
// reads (topic, private, extension, since and limit at their boundaries, order), what retention
// deletes (strictly older than the cutoff, at most max_rows), and that a replay asked for before
// a delete reads the rows as they were.
#include "rtsync/server/cdc/pg_message_store.hpp"

#include "pg_fixture.hpp"

namespace rtsync::test {
namespace {

using server::StoredMessage;
using server::cdc::PgMessageStore;

class MessageStoreTest : public PgSuite {
 protected:
  void SetUp() override {
    PgSuite::SetUp();
    sql("TRUNCATE realtime.messages");
    // T0: now, to the millisecond, as an epoch for `since` and as the session's local timestamp
    // for inserted_at (the same instant, the way the store converts it).
    auto r = query(
        "SELECT (extract(epoch FROM date_trunc('milliseconds', now())) * 1000)::bigint, "
        "date_trunc('milliseconds', localtimestamp)::text");
    ASSERT_EQ(r.rows(), 1);
    t0_ms = std::stoll(std::string(r.value(0, 0)));
    t0 = std::string(r.value(0, 1));
  }
  // A row inserted_at T0 + offset_ms.
  void insert(const std::string& id, const std::string& topic, std::int64_t offset_ms,
              bool is_private = true, const std::string& extension = "broadcast") {
    auto r = db.exec(
        "INSERT INTO realtime.messages (id, topic, extension, event, payload, private, "
        "inserted_at) VALUES ($1::uuid, $2, $3, 'e', jsonb_build_object('id', $1::text), $4, "
        "$5::timestamp + $6::bigint * interval '1 millisecond')",
        {id, topic, extension, is_private ? "true" : "false", t0, std::to_string(offset_ms)});
    ASSERT_TRUE(r.ok()) << r.error().describe();
  }
  static std::string uuid(int n) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
    return buf;
  }
  std::vector<std::string> ids(const std::vector<StoredMessage>& messages) {
    std::vector<std::string> out;
    for (const auto& m : messages)
      out.push_back(m.id);
    return out;
  }
  Result<std::vector<StoredMessage>> replay(PgMessageStore& store, std::string topic,
                                            std::int64_t since, std::int64_t limit,
                                            std::vector<std::uint32_t> xids = {}) {
    std::optional<Result<std::vector<StoredMessage>>> out;
    store.replay(std::move(topic), since, limit, std::move(xids),
                 [&](Result<std::vector<StoredMessage>> r) { out = std::move(r); });
    EXPECT_TRUE(loop.run_until([&] { return out.has_value(); }));
    if (!out) return make_error(Errc::timeout, "no answer");
    return std::move(*out);
  }
  Result<std::size_t> delete_before(PgMessageStore& store, std::int64_t cutoff, std::size_t max) {
    std::optional<Result<std::size_t>> out;
    store.delete_before(cutoff, max, [&](Result<std::size_t> r) { out = std::move(r); });
    EXPECT_TRUE(loop.run_until([&] { return out.has_value(); }));
    if (!out) return make_error(Errc::timeout, "no answer");
    return std::move(*out);
  }
  std::int64_t count() { return std::stoll(scalar("SELECT count(*) FROM realtime.messages")); }

  TestLoop loop;
  std::int64_t t0_ms = 0;
  std::string t0;
};

TEST_F(MessageStoreTest, ReplayReadsTheLastNPrivateBroadcastsOfTheTopicSinceOldestFirst) {
  insert(uuid(1), "room", -1);  // a millisecond before `since`
  insert(uuid(2), "room", 0);   // exactly at `since`
  for (int i = 3; i <= 7; ++i)
    insert(uuid(i), "room", (i - 2) * 1000);
  insert(uuid(20), "room", 6000, /*is_private=*/false);
  insert(uuid(21), "room", 6000, true, "presence");
  insert(uuid(22), "other", 6000);
  insert(uuid(23), "room", 120'000);  // two minutes ahead: not yet

  PgMessageStore store(loop.io, loop.sched, conninfo());
  auto last3 = replay(store, "room", t0_ms, 3);
  ASSERT_TRUE(last3.ok()) << last3.error().describe();
  EXPECT_EQ(ids(last3.value()), (std::vector<std::string>{uuid(5), uuid(6), uuid(7)}));
  EXPECT_EQ(last3->front().event, "e");
  EXPECT_EQ(last3->front().payload, R"({"id": ")" + uuid(5) + R"("})");

  auto all = replay(store, "room", t0_ms, 25);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(ids(all.value()),
            (std::vector<std::string>{uuid(2), uuid(3), uuid(4), uuid(5), uuid(6), uuid(7)}));
  auto earlier = replay(store, "room", t0_ms - 1, 25);
  ASSERT_TRUE(earlier.ok());
  EXPECT_EQ(earlier->front().id, uuid(1));
  // The store clamps like the server does.
  EXPECT_EQ(replay(store, "room", t0_ms, 100)->size(), 6u);
  EXPECT_EQ(replay(store, "room", t0_ms, 0)->size(), 1u);
  // Any time a client can name works, even before PostgreSQL's calendar starts.
  EXPECT_EQ(replay(store, "room", -377'705'116'800'000, 25)->size(), 7u);
  EXPECT_TRUE(replay(store, "nobody", 0, 25)->empty());
}

// Logical decoding hands a commit on a moment before snapshots see it: a replay reads from a
// snapshot that sees the transactions the caller already delivered, waiting while one is not.
TEST_F(MessageStoreTest, ReplayWaitsUntilItsSnapshotSeesTheGivenTransactions) {
  sql("BEGIN");
  insert(uuid(1), "room", 0);
  const auto committed = std::stoul(scalar("SELECT txid_current() % 4294967296"));
  sql("COMMIT");
  PgMessageStore store(loop.io, loop.sched, conninfo());
  auto seen = replay(store, "room", t0_ms, 25, {static_cast<std::uint32_t>(committed)});
  ASSERT_TRUE(seen.ok()) << seen.error().describe();
  EXPECT_EQ(ids(seen.value()), (std::vector<std::string>{uuid(1)}));

  // A transaction still running is not visible: the replay waits (and, after 2 s, answers from
  // what it sees, with a warning) — it does not answer at once.
  auto other = server::pg::Connection::open(conninfo()).value();
  ASSERT_TRUE(other.exec_script("BEGIN").ok());
  const auto running =
      std::stoul(std::string(other.exec("SELECT txid_current() % 4294967296").value().value(0, 0)));
  std::optional<Result<std::vector<StoredMessage>>> out;
  const auto start = std::chrono::steady_clock::now();
  store.replay("room", t0_ms, 25, {static_cast<std::uint32_t>(running)},
               [&](Result<std::vector<StoredMessage>> r) { out = std::move(r); });
  EXPECT_FALSE(loop.run_until([&] { return out.has_value(); }, 500ms));
  ASSERT_TRUE(other.exec_script("COMMIT").ok());
  ASSERT_TRUE(loop.run_until([&] { return out.has_value(); }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1900ms) << "answered once visible";
  ASSERT_TRUE(out->ok());
  EXPECT_EQ(ids(out->value()), (std::vector<std::string>{uuid(1)}));
}

TEST_F(MessageStoreTest, DeleteBeforeRemovesOnlyRowsStrictlyOlderThanTheCutoff) {
  insert(uuid(1), "room", -1);
  insert(uuid(2), "room", 0);
  insert(uuid(3), "room", 1);
  insert(uuid(4), "other", -5000, false);
  PgMessageStore store(loop.io, loop.sched, conninfo());
  auto n = delete_before(store, t0_ms, 1000);
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ(n.value(), 2u);
  EXPECT_EQ(scalar("SELECT string_agg(id::text, ',' ORDER BY inserted_at) FROM realtime.messages"),
            uuid(2) + "," + uuid(3));
}

TEST_F(MessageStoreTest, DeleteBeforeTakesAtMostMaxRowsPerCall) {
  for (int i = 1; i <= 5; ++i)
    insert(uuid(i), "room", -10'000 - i);
  PgMessageStore store(loop.io, loop.sched, conninfo());
  EXPECT_EQ(delete_before(store, t0_ms, 2).value(), 2u);
  EXPECT_EQ(delete_before(store, t0_ms, 2).value(), 2u);
  EXPECT_EQ(delete_before(store, t0_ms, 2).value(), 1u);
  EXPECT_EQ(delete_before(store, t0_ms, 2).value(), 0u);
  EXPECT_EQ(count(), 0);
}

TEST_F(MessageStoreTest, AReplayAskedForBeforeADeleteReadsTheRowsAsTheyWere) {
  for (int i = 1; i <= 3; ++i)
    insert(uuid(i), "room", -3'600'000 + i);
  PgMessageStore store(loop.io, loop.sched, conninfo());
  // Warm the connection, then hold the table so that the replay is in progress (waiting for its
  // lock) when retention asks for its delete.
  ASSERT_TRUE(replay(store, "room", 0, 1).ok());
  sql("BEGIN; LOCK TABLE realtime.messages IN ACCESS EXCLUSIVE MODE");
  std::optional<Result<std::vector<StoredMessage>>> replayed;
  std::optional<Result<std::size_t>> deleted;
  store.replay("room", t0_ms - 7'200'000, 25, {},
               [&](Result<std::vector<StoredMessage>> r) { replayed = std::move(r); });
  store.delete_before(t0_ms + 60'000, 1000, [&](Result<std::size_t> r) { deleted = std::move(r); });
  auto waiting =
      std::make_unique<server::pg::Connection>(server::pg::Connection::open(conninfo()).value());
  EXPECT_TRUE(loop.run_until([&] {
    auto r = waiting->exec(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rtsync_messages' "
        "AND wait_event_type = 'Lock'");
    return r.ok() && r->value(0, 0) == "1";
  }));
  EXPECT_FALSE(replayed.has_value());
  sql("ROLLBACK");
  ASSERT_TRUE(loop.run_until([&] { return replayed.has_value() && deleted.has_value(); }));
  ASSERT_TRUE(replayed->ok()) << replayed->error().describe();
  EXPECT_EQ(ids(replayed->value()), (std::vector<std::string>{uuid(1), uuid(2), uuid(3)}));
  ASSERT_TRUE(deleted->ok());
  EXPECT_EQ(deleted->value(), 3u);
  EXPECT_TRUE(replay(store, "room", 0, 25)->empty());
}

}  // namespace
}  // namespace rtsync::test
