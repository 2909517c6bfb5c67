// ChangeStream against a real PostgreSQL: decoding to typed JSON, commit order and one-at-a-time
// (or windowed) delivery, confirmation only after done() of every earlier transaction, PostgreSQL
// restarts.
#include "rtsync/server/cdc/change_stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <regex>

#include "pg_fixture.hpp"
#include "rtsync/core/log.hpp"

namespace rtsync::test {
namespace {

using server::ChangeKind;
using server::cdc::ChangeStream;
using server::cdc::ChangeStreamOptions;

json::value J(std::string_view text) {
  return json::parse(text);
}

class ChangeStreamTest : public PgSuite {
 protected:
  // The suite's cluster and `slot`, every other option at its default.
  ChangeStreamOptions options_for(const std::string& slot) {
    ChangeStreamOptions o;
    o.conninfo = cluster()->conninfo();
    o.slot = slot;
    return o;
  }
  std::unique_ptr<ChangeStream> make_stream(const std::string& slot) {
    ChangeStreamOptions o = options_for(slot);
    o.retry =
        core::ExponentialBackoff{std::chrono::milliseconds(50), std::chrono::milliseconds(500)};
    o.jitter_seed = 7;
    return std::make_unique<ChangeStream>(loop.io, loop.sched, sink, o);
  }
  void start(ChangeStream& s) {
    s.start();
    ASSERT_TRUE(loop.run_until([&] { return sink.running(); }))
        << "stream did not start; states: " << sink.states.size()
        << (sink.states.empty() ? "" : " last: " + sink.states.back().second);
  }
  bool wait_changes(std::size_t n, std::chrono::milliseconds timeout = 15s) {
    return loop.run_until([&] { return sink.change_count() >= n; }, timeout);
  }

  TestLoop loop;
  RecordingSink sink;
};

TEST_F(ChangeStreamTest, DecodesEveryColumnTypeToTypedJson) {
  sql(R"sql(
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE TABLE all_types (
      id int8 PRIMARY KEY, i2 int2, i4 int4, n numeric, n_big numeric, f4 float4, f8 float8,
      f_nan float8, b bool, t text, vc varchar(20), u uuid, tstz timestamptz, ts timestamp,
      d date, j json, jb jsonb, ai int4[], at text[], by bytea, m mood, nothing text);
    ALTER PUBLICATION supabase_realtime ADD TABLE all_types;
  )sql");
  const auto slot = make_slot();
  auto stream = make_stream(slot);
  start(*stream);

  sql(R"sql(
    INSERT INTO all_types VALUES (
      9007199254740993, -32768, 2147483647, 12.50, 123456789012345678901234567890.5, 1.5,
      -2.25e-10, 'NaN', true, 'héllo "world"', 'short', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '2025-11-03 09:32:55.123+00', '2025-11-03 09:32:55', '2025-11-03', '{"a": [1, 2]}',
      '{"b": {"c": null}}', '{1,NULL,3}', ARRAY['x "q"', NULL, 'NULL', 'a,b', ''], '\x0102ff',
      'sad', NULL);
  )sql");
  sql("UPDATE all_types SET t = 'changed', m = 'happy' WHERE id = 9007199254740993");
  sql("DELETE FROM all_types WHERE id = 9007199254740993");
  ASSERT_TRUE(wait_changes(3)) << sink.change_count();
  ASSERT_EQ(sink.txns.size(), 3u);

  const auto& ins = sink.txns[0]->changes.at(0);
  EXPECT_EQ(ins.kind, ChangeKind::insert);
  ASSERT_TRUE(ins.record);
  EXPECT_FALSE(ins.old_record);
  const json::object& rec = *ins.record;
  EXPECT_EQ(rec.at("id"), json::value(std::int64_t{9007199254740993}));
  EXPECT_EQ(rec.at("i2"), json::value(-32768));
  EXPECT_EQ(rec.at("i4"), json::value(2147483647));
  EXPECT_EQ(rec.at("n"), json::value(12.5));
  EXPECT_TRUE(rec.at("n_big").is_double());
  EXPECT_DOUBLE_EQ(rec.at("n_big").as_double(), 123456789012345678901234567890.5);
  EXPECT_EQ(rec.at("f4"), json::value(1.5));
  EXPECT_EQ(rec.at("f8"), json::value(-2.25e-10));
  EXPECT_EQ(rec.at("f_nan"), json::value("NaN"));
  EXPECT_EQ(rec.at("b"), json::value(true));
  EXPECT_EQ(rec.at("t"), json::value("héllo \"world\""));
  EXPECT_EQ(rec.at("vc"), json::value("short"));
  EXPECT_EQ(rec.at("u"), json::value("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
  EXPECT_EQ(rec.at("tstz"), json::value("2025-11-03T09:32:55.123+00:00"));
  EXPECT_EQ(rec.at("ts"), json::value("2025-11-03T09:32:55"));
  EXPECT_EQ(rec.at("d"), json::value("2025-11-03"));
  EXPECT_EQ(rec.at("j"), J(R"({"a":[1,2]})"));
  EXPECT_EQ(rec.at("jb"), J(R"({"b":{"c":null}})"));
  EXPECT_EQ(rec.at("ai"), J("[1,null,3]"));
  EXPECT_EQ(rec.at("at"), J(R"(["x \"q\"",null,"NULL","a,b",""])"));
  EXPECT_EQ(rec.at("by"), json::value("0102ff"));
  EXPECT_EQ(rec.at("m"), json::value("sad"));
  EXPECT_EQ(rec.at("nothing"), json::value(nullptr));

  // Relation: schema, table, typnames (enum and arrays included), key flags.
  const auto& rel = *ins.relation;
  EXPECT_EQ(rel.schema, "public");
  EXPECT_EQ(rel.table, "all_types");
  EXPECT_EQ(rel.replica_identity, 'd');
  EXPECT_EQ(rel.key_columns(), std::vector<std::string>{"id"});
  std::vector<std::string> types;
  for (const auto& c : rel.wire_columns())
    types.push_back(c.name + ":" + c.type);
  EXPECT_EQ(types,
            (std::vector<std::string>{
                "id:int8",    "i2:int2",     "i4:int4",          "n:numeric",    "n_big:numeric",
                "f4:float4",  "f8:float8",   "f_nan:float8",     "b:bool",       "t:text",
                "vc:varchar", "u:uuid",      "tstz:timestamptz", "ts:timestamp", "d:date",
                "j:json",     "jb:jsonb",    "ai:_int4",         "at:_text",     "by:bytea",
                "m:mood",     "nothing:text"}));

  const auto& up = sink.txns[1]->changes.at(0);
  EXPECT_EQ(up.kind, ChangeKind::update);
  EXPECT_EQ(up.record->at("t"), json::value("changed"));
  EXPECT_EQ(up.record->at("m"), json::value("happy"));
  EXPECT_EQ(up.record->at("ai"), J("[1,null,3]"));
  ASSERT_TRUE(up.old_record);  // default identity: the key only
  EXPECT_EQ(json::value(*up.old_record), J(R"({"id":9007199254740993})"));

  const auto& del = sink.txns[2]->changes.at(0);
  EXPECT_EQ(del.kind, ChangeKind::remove);
  EXPECT_FALSE(del.record);
  EXPECT_EQ(json::value(*del.old_record), J(R"({"id":9007199254740993})"));

  // commit_timestamp: "YYYY-MM-DDTHH:MM:SS.mmmZ", and it is now-ish.
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  for (const auto& t : sink.txns) {
    EXPECT_TRUE(std::regex_match(t->commit_timestamp, iso)) << t->commit_timestamp;
    EXPECT_EQ(t->commit_timestamp, core::format_iso8601(t->commit_time));
    EXPECT_LT(std::chrono::abs(t->commit_time - std::chrono::system_clock::now()),
              std::chrono::minutes(1));
  }
  const auto m = stream->metrics();
  EXPECT_EQ(m.changes_decoded, 3u);
  EXPECT_EQ(m.transactions, 3u);
  EXPECT_GT(m.bytes_received, 0u);
  EXPECT_GE(m.last_received_lsn, sink.txns[2]->commit_lsn);
}

TEST_F(ChangeStreamTest, ReplicaIdentityFullCarriesTheWholeOldRow) {
  sql(R"sql(
    CREATE TABLE full_rows (id int PRIMARY KEY, name text, score int);
    ALTER TABLE full_rows REPLICA IDENTITY FULL;
    ALTER PUBLICATION supabase_realtime ADD TABLE full_rows;
  )sql");
  const auto slot = make_slot();
  auto stream = make_stream(slot);
  start(*stream);
  sql("INSERT INTO full_rows VALUES (1, 'a', 10)");
  sql("UPDATE full_rows SET score = 11 WHERE id = 1");
  sql("DELETE FROM full_rows WHERE id = 1");
  ASSERT_TRUE(wait_changes(3));
  EXPECT_EQ(sink.txns[0]->changes[0].relation->replica_identity, 'f');
  const auto& up = sink.txns[1]->changes[0];
  EXPECT_EQ(json::value(*up.old_record), J(R"({"id":1,"name":"a","score":10})"));
  EXPECT_EQ(json::value(*up.record), J(R"({"id":1,"name":"a","score":11})"));
  const auto& del = sink.txns[2]->changes[0];
  EXPECT_EQ(json::value(*del.old_record), J(R"({"id":1,"name":"a","score":11})"));
}

TEST_F(ChangeStreamTest, UnchangedToastedValuesComeFromTheOldRowOrAreLeftOut) {
  sql(R"sql(
    CREATE TABLE docs_default (id int PRIMARY KEY, body text, n int);
    CREATE TABLE docs_full (id int PRIMARY KEY, body text, n int);
    ALTER TABLE docs_default ALTER COLUMN body SET STORAGE EXTERNAL;
    ALTER TABLE docs_full ALTER COLUMN body SET STORAGE EXTERNAL;
    ALTER TABLE docs_full REPLICA IDENTITY FULL;
    ALTER PUBLICATION supabase_realtime ADD TABLE docs_default, docs_full;
  )sql");
  const auto slot = make_slot();
  auto stream = make_stream(slot);
  start(*stream);
  sql("INSERT INTO docs_default VALUES (1, repeat('x', 10000), 0)");
  sql("INSERT INTO docs_full VALUES (1, repeat('y', 10000), 0)");
  sql("UPDATE docs_default SET n = 1");
  sql("UPDATE docs_full SET n = 1");
  ASSERT_TRUE(wait_changes(4));
  const auto& up_default = sink.txns[2]->changes[0];
  EXPECT_FALSE(up_default.record->contains("body"));  // unchanged TOAST, old row unknown
  EXPECT_EQ(up_default.record->at("n"), json::value(1));
  const auto& up_full = sink.txns[3]->changes[0];
  ASSERT_TRUE(up_full.record->contains("body")) << json::serialize(*up_full.record);
  EXPECT_EQ(up_full.record->at("body").as_string().size(), 10000u);
}

TEST_F(ChangeStreamTest, TransactionsArriveInCommitOrderOneAtATime) {
  sql(R"sql(
    CREATE TABLE ordered (id int PRIMARY KEY, label text);
    ALTER PUBLICATION supabase_realtime ADD TABLE ordered;
  )sql");
  const auto slot = make_slot();
  auto stream = make_stream(slot);
  sink.auto_done = false;
  start(*stream);

  sql("INSERT INTO ordered VALUES (1, 'first')");
  sql("BEGIN; INSERT INTO ordered VALUES (2, 'multi'), (3, 'multi'); "
      "UPDATE ordered SET label = 'multi-updated' WHERE id = 1; COMMIT");
  sql("INSERT INTO ordered VALUES (4, 'last')");

  ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() == 1; }));
  // The next transaction waits for done(), even though PostgreSQL already sent it.
  ASSERT_TRUE(loop.run_until([&] { return stream->metrics().transactions == 3; }));
  loop.poll();
  EXPECT_EQ(sink.txns.size(), 1u);
  EXPECT_EQ(stream->metrics().queued, 2u);
  EXPECT_TRUE(stream->metrics().in_flight);

  for (std::size_t expected = 2; expected <= 3; ++expected) {
    sink.done_all();
    ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() == expected; }));
  }
  sink.done_all();
  EXPECT_EQ(sink.overlapping_deliveries, 0);

  ASSERT_EQ(sink.txns.size(), 3u);
  EXPECT_EQ(sink.txns[0]->changes.size(), 1u);
  const auto& multi = sink.txns[1]->changes;
  ASSERT_EQ(multi.size(), 3u);
  EXPECT_EQ(multi[0].record->at("id"), json::value(2));
  EXPECT_EQ(multi[1].record->at("id"), json::value(3));
  EXPECT_EQ(multi[2].kind, ChangeKind::update);
  EXPECT_EQ(multi[2].record->at("label"), json::value("multi-updated"));
  EXPECT_EQ(sink.txns[2]->changes[0].record->at("id"), json::value(4));
  for (std::size_t i = 1; i < sink.txns.size(); ++i) {
    EXPECT_LT(sink.txns[i - 1]->end_lsn, sink.txns[i]->end_lsn);
    EXPECT_LT(sink.txns[i - 1]->xid, sink.txns[i]->xid);
  }
  // Every change of one transaction shares its commit timestamp and relation object.
  EXPECT_EQ(multi[0].relation.get(), multi[2].relation.get());
}

TEST_F(ChangeStreamTest, UnconfirmedTransactionIsDeliveredAgainAfterRestart) {
  sql(R"sql(
    CREATE TABLE confirm_a (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE confirm_a;
  )sql");
  const auto slot = make_slot();
  sink.auto_done = false;
  auto stream = make_stream(slot);
  start(*stream);
  sql("INSERT INTO confirm_a VALUES (1)");
  ASSERT_TRUE(wait_changes(1));
  const auto first = sink.txns[0];
  // Stop without done(): the slot must not have moved past the transaction.
  stream->stop();
  sink.pending.clear();
  sink.outstanding = 0;
  EXPECT_LT(slot_confirmed(slot), first->end_lsn);

  RecordingSink second_sink;
  second_sink.auto_done = true;
  ChangeStreamOptions o = options_for(slot);
  ChangeStream again(loop.io, loop.sched, second_sink, o);
  again.start();
  ASSERT_TRUE(loop.run_until([&] { return second_sink.txns.size() >= 1; }));
  EXPECT_EQ(second_sink.txns[0]->end_lsn, first->end_lsn);
  EXPECT_EQ(second_sink.txns[0]->xid, first->xid);
  EXPECT_EQ(json::value(*second_sink.txns[0]->changes[0].record), J(R"({"id":1})"));
}

TEST_F(ChangeStreamTest, ConfirmedTransactionIsNotDeliveredAgain) {
  sql(R"sql(
    CREATE TABLE confirm_b (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE confirm_b;
  )sql");
  const auto slot = make_slot();
  sink.auto_done = false;
  auto stream = make_stream(slot);
  start(*stream);
  sql("INSERT INTO confirm_b VALUES (1)");
  ASSERT_TRUE(wait_changes(1));
  const auto first = sink.txns[0];
  // Not confirmed while the sink holds it.
  loop.poll();
  EXPECT_LT(stream->metrics().confirmed_lsn, first->end_lsn);
  sink.done_all();
  // Feedback reaches PostgreSQL without waiting for the 10 s status interval.
  ASSERT_TRUE(loop.run_until([&] { return slot_confirmed(slot) >= first->end_lsn; }, 5s))
      << server::format_lsn(slot_confirmed(slot)) << " < " << server::format_lsn(first->end_lsn);
  EXPECT_GE(stream->metrics().reported_lsn, first->end_lsn);
  stream->stop();

  RecordingSink second_sink;
  ChangeStreamOptions o = options_for(slot);
  ChangeStream again(loop.io, loop.sched, second_sink, o);
  again.start();
  ASSERT_TRUE(loop.run_until([&] { return second_sink.running(); }));
  sql("INSERT INTO confirm_b VALUES (2)");
  ASSERT_TRUE(loop.run_until([&] { return second_sink.txns.size() >= 1; }));
  loop.poll();
  ASSERT_EQ(second_sink.txns.size(), 1u);
  EXPECT_EQ(json::value(*second_sink.txns[0]->changes[0].record), J(R"({"id":2})"));
}

TEST_F(ChangeStreamTest, SurvivesPostgresRestartWithoutLossOrDuplicates) {
  sql(R"sql(
    CREATE TABLE survive (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE survive;
  )sql");
  const auto slot = make_slot();
  auto stream = make_stream(slot);
  start(*stream);
  sql("INSERT INTO survive VALUES (1)");
  ASSERT_TRUE(wait_changes(1));
  // Committed while the loop is not reading: it is either in flight to us when PostgreSQL goes
  // down, or still in the slot. Either way it must arrive exactly once.
  sql("INSERT INTO survive VALUES (2)");
  db.close();
  // A fast shutdown waits for the walsender to see its WAL confirmed, so the loop keeps running
  // (answering keepalives) while another thread restarts PostgreSQL.
  auto restarted = std::async(std::launch::async, [] { return cluster()->restart(); });
  ASSERT_TRUE(loop.run_until(
      [&] { return restarted.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
      60s));
  auto restart_result = restarted.get();
  ASSERT_TRUE(restart_result.ok()) << restart_result.error().describe() << cluster()->log_tail();

  ASSERT_TRUE(loop.run_until([&] {
    return std::any_of(sink.states.begin(), sink.states.end(), [](auto& s) { return !s.first; });
  })) << "no on_stream_state(false)";
  ASSERT_TRUE(loop.run_until([&] { return sink.running(); }, 20s)) << "stream did not come back";
  auto c = server::pg::Connection::open(cluster()->conninfo());
  ASSERT_TRUE(c.ok());
  db = std::move(c).value();
  sql("INSERT INTO survive VALUES (3)");
  ASSERT_TRUE(wait_changes(3));
  loop.run_until([] { return false; }, 300ms);  // a duplicate would arrive within this window

  std::vector<std::int64_t> ids;
  for (const auto& t : sink.txns) {
    for (const auto& ch : t->changes)
      ids.push_back(ch.record->at("id").as_int64());
  }
  EXPECT_EQ(ids, (std::vector<std::int64_t>{1, 2, 3}));
  // States: running, down (with a reason), running again.
  ASSERT_GE(sink.states.size(), 3u);
  EXPECT_TRUE(sink.states[0].first);
  EXPECT_FALSE(sink.states[1].first);
  EXPECT_FALSE(sink.states[1].second.empty());
  EXPECT_TRUE(sink.states[2].first);
  EXPECT_GE(stream->metrics().reconnects, 1u);
}

TEST_F(ChangeStreamTest, RedeliveryOfTheTransactionInFlightAcrossAReconnectIsDropped) {
  sql(R"sql(
    CREATE TABLE inflight (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE inflight;
  )sql");
  const auto slot = make_slot();
  sink.auto_done = false;
  auto stream = make_stream(slot);
  start(*stream);
  sql("INSERT INTO inflight VALUES (1)");
  ASSERT_TRUE(wait_changes(1));
  db.close();
  // The sink still holds transaction 1 (not confirmed) when PostgreSQL crashes and comes back:
  // the slot sends it again after the reconnect.
  auto restarted = std::async(std::launch::async, [] {
    return cluster()->restart(testkit::TempCluster::StopMode::immediate);
  });
  ASSERT_TRUE(loop.run_until(
      [&] { return restarted.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
      60s));
  ASSERT_TRUE(restarted.get().ok()) << cluster()->log_tail();
  ASSERT_TRUE(loop.run_until([&] { return sink.states.size() >= 3 && sink.running(); }, 20s));
  ASSERT_TRUE(loop.run_until([&] { return stream->metrics().queued == 1; }))
      << json::serialize(stream->diagnostics());
  EXPECT_EQ(sink.txns.size(), 1u);  // still one at a time
  sink.done_all();                  // the original is handed on: its copy is now a duplicate
  auto c = server::pg::Connection::open(cluster()->conninfo());
  ASSERT_TRUE(c.ok());
  db = std::move(c).value();
  sql("INSERT INTO inflight VALUES (2)");
  ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() >= 2; }));
  sink.done_all();
  loop.run_until([] { return false; }, 200ms);
  ASSERT_EQ(sink.txns.size(), 2u);
  EXPECT_EQ(sink.txns[0]->changes[0].record->at("id"), json::value(1));
  EXPECT_EQ(sink.txns[1]->changes[0].record->at("id"), json::value(2));
  EXPECT_EQ(stream->metrics().transactions_deduplicated, 1u);
}

TEST_F(ChangeStreamTest, PipelinedTransactionsConfirmOnlyTheDonePrefix) {
  sql(R"sql(
    CREATE TABLE pipelined (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE pipelined;
  )sql");
  const auto slot = make_slot();
  sink.auto_done = false;
  sink.in_flight_limit = 3;
  auto stream = make_stream(slot);
  start(*stream);
  for (int i = 1; i <= 4; ++i)
    sql("INSERT INTO pipelined VALUES (" + std::to_string(i) + ")");
  ASSERT_TRUE(loop.run_until([&] { return stream->metrics().transactions == 4; }));
  ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() == 3; }));
  loop.poll();
  // Three with the sink at once, in commit order; the fourth waits for the window.
  EXPECT_EQ(sink.txns.size(), 3u);
  EXPECT_EQ(stream->metrics().in_flight_count, 3u);
  EXPECT_EQ(stream->metrics().queued, 1u);
  const auto base = stream->metrics().confirmed_lsn;
  EXPECT_LT(base, sink.txns[0]->end_lsn);

  // The third finishes first: nothing may be confirmed past the first, still undelivered.
  sink.done_at(2);
  loop.run_until([] { return false; }, 100ms);
  EXPECT_EQ(stream->metrics().confirmed_lsn, base);
  EXPECT_LT(slot_confirmed(slot), sink.txns[0]->end_lsn);
  EXPECT_EQ(sink.txns.size(), 3u);  // the window is counted from the oldest unconfirmed

  // The first finishes: only it is confirmed; the window moves and the fourth is handed on.
  sink.done_at(0);
  ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() == 4; }));
  EXPECT_EQ(stream->metrics().confirmed_lsn, sink.txns[0]->end_lsn);
  ASSERT_TRUE(loop.run_until([&] { return slot_confirmed(slot) >= sink.txns[0]->end_lsn; }, 5s));
  EXPECT_LT(slot_confirmed(slot), sink.txns[1]->end_lsn);

  // The second finishes: the first three are now a done prefix.
  sink.done_at(1);
  loop.poll();
  EXPECT_EQ(stream->metrics().confirmed_lsn, sink.txns[2]->end_lsn);
  sink.done_at(3);
  loop.poll();
  // Nothing outstanding: a keepalive may take it on to the server's position (other WAL).
  EXPECT_GE(stream->metrics().confirmed_lsn, sink.txns[3]->end_lsn);
  ASSERT_TRUE(loop.run_until([&] { return slot_confirmed(slot) >= sink.txns[3]->end_lsn; }, 5s));
  EXPECT_EQ(sink.max_outstanding, 3);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(sink.txns[i]->changes[0].record->at("id"), json::value(i + 1));
}

TEST_F(ChangeStreamTest, RestartMidPipelineLosesAndDuplicatesNothing) {
  sql(R"sql(
    CREATE TABLE midpipe (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE midpipe;
  )sql");
  const auto slot = make_slot();
  sink.auto_done = false;
  sink.in_flight_limit = 8;
  auto stream = make_stream(slot);
  start(*stream);
  for (int i = 1; i <= 3; ++i)
    sql("INSERT INTO midpipe VALUES (" + std::to_string(i) + ")");
  ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() == 3; }));
  sink.done_at(0);  // only the first is handed on; the other two stay with the sink
  ASSERT_TRUE(loop.run_until([&] { return slot_confirmed(slot) >= sink.txns[0]->end_lsn; }, 5s));
  db.close();
  auto restarted = std::async(std::launch::async, [] {
    return cluster()->restart(testkit::TempCluster::StopMode::immediate);
  });
  ASSERT_TRUE(loop.run_until(
      [&] { return restarted.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
      60s));
  ASSERT_TRUE(restarted.get().ok()) << cluster()->log_tail();
  ASSERT_TRUE(loop.run_until([&] { return sink.states.size() >= 3 && sink.running(); }, 20s));
  // The slot sends 2 and 3 again: they are still with the sink, so the copies are dropped.
  ASSERT_TRUE(loop.run_until([&] { return stream->metrics().transactions_deduplicated >= 2; }, 10s))
      << json::serialize(stream->diagnostics());
  EXPECT_EQ(sink.txns.size(), 3u);
  // Their `done` calls from before the reconnect still count.
  sink.done_at(2);
  sink.done_at(1);
  loop.poll();
  // At least the third transaction's end: with nothing outstanding any more, a keepalive that
  // arrived meanwhile (the restart wrote WAL of its own) may already have taken the confirmed
  // position to the server's. Had the early `done` calls been lost, it would still sit at the
  // first transaction's end.
  EXPECT_GE(stream->metrics().confirmed_lsn, sink.txns[2]->end_lsn);
  auto c = server::pg::Connection::open(cluster()->conninfo());
  ASSERT_TRUE(c.ok());
  db = std::move(c).value();
  sql("INSERT INTO midpipe VALUES (4)");
  ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() >= 4; }));
  sink.done_all();
  loop.run_until([] { return false; }, 200ms);  // a duplicate would arrive within this window
  std::vector<std::int64_t> ids;
  for (const auto& t : sink.txns)
    ids.push_back(t->changes[0].record->at("id").as_int64());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{1, 2, 3, 4}));
  ASSERT_TRUE(loop.run_until([&] { return slot_confirmed(slot) >= sink.txns[3]->end_lsn; }, 5s));
}

TEST_F(ChangeStreamTest, IdleStreamConfirmsServerPositionAndReportsNoLag) {
  const auto slot = make_slot();
  auto stream = make_stream(slot);
  start(*stream);
  // WAL unrelated to the publication (a table not published) moves the server ahead.
  sql("CREATE TABLE unpublished (id int); INSERT INTO unpublished VALUES (1)");
  ASSERT_TRUE(loop.run_until(
      [&] {
        const auto m = stream->metrics();
        return m.server_wal_end > 0 && m.confirmed_lsn >= m.server_wal_end &&
               slot_confirmed(slot) >= m.server_wal_end;
      },
      10s))
      << json::serialize(stream->diagnostics());
  EXPECT_EQ(stream->metrics().lag_bytes, 0u);
  EXPECT_TRUE(sink.txns.empty() || sink.change_count() == 0);
}

TEST_F(ChangeStreamTest, LongQueueStopsReadingUntilTheSinkCatchesUp) {
  sql(R"sql(
    CREATE TABLE flood (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE flood;
  )sql");
  const auto slot = make_slot();
  ChangeStreamOptions o = options_for(slot);
  o.max_queued_transactions = 4;
  sink.auto_done = false;
  ChangeStream stream(loop.io, loop.sched, sink, o);
  start(stream);
  for (int i = 1; i <= 12; ++i)
    sql("INSERT INTO flood VALUES (" + std::to_string(i) + ")");
  ASSERT_TRUE(loop.run_until([&] { return stream.metrics().paused; }));
  loop.run_until([] { return false; }, 200ms);
  // Paused as soon as the queue passed the limit; nothing more is read meanwhile.
  EXPECT_EQ(stream.metrics().queued, 5u);
  EXPECT_EQ(stream.metrics().transactions, 6u);
  while (sink.txns.size() < 12) {
    const auto before = sink.txns.size();
    sink.done_all();
    ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() > before; }))
        << json::serialize(stream.diagnostics());
  }
  sink.done_all();
  EXPECT_FALSE(stream.metrics().paused);
  for (std::size_t i = 0; i < sink.txns.size(); ++i) {
    EXPECT_EQ(sink.txns[i]->changes[0].record->at("id"), json::value(static_cast<int>(i + 1)));
  }
}

// A transaction far larger than the stream may hold arrives in parts while reads pause; when the
// connection drops halfway, the parts already handed on are not handed on again, nothing is
// confirmed inside the transaction, and every row arrives exactly once.
TEST_F(ChangeStreamTest, LargeTransactionIsHeldInBoundedMemoryAndResumesWithoutDuplicates) {
  sql(R"sql(
    CREATE TABLE bulk (id int PRIMARY KEY, pad text);
    ALTER PUBLICATION supabase_realtime ADD TABLE bulk;
  )sql");
  const auto slot = make_slot();
  ChangeStreamOptions o = options_for(slot);
  o.part_changes = 100;
  o.max_held_bytes = 64 * 1024;
  o.retry = core::ExponentialBackoff{std::chrono::milliseconds(50), std::chrono::milliseconds(500)};
  sink.auto_done = false;
  sink.in_flight_limit = 4;
  ChangeStream stream(loop.io, loop.sched, sink, o);
  start(stream);
  constexpr int kRows = 5000;
  sql("INSERT INTO bulk SELECT g, repeat('x', 100) FROM generate_series(1, " +
      std::to_string(kRows) + ") g");
  ASSERT_TRUE(loop.run_until([&] { return stream.metrics().paused; }))
      << json::serialize(stream.diagnostics());
  // What the stream holds stays within its limit (plus the part that crossed it).
  std::size_t peak = 0;
  std::size_t part_bytes = 0;
  auto hand_on = [&](std::size_t n) {
    for (std::size_t i = 0; i < n && !sink.pending.empty(); ++i) {
      peak = std::max(peak, stream.metrics().held_bytes);
      for (const auto& t : sink.txns)
        part_bytes = std::max(part_bytes, t->bytes);
      sink.done_at(0);
      sink.pending.erase(sink.pending.begin());
      loop.run_until([] { return false; }, 5ms);
    }
  };
  hand_on(10);
  ASSERT_FALSE(sink.txns.empty());
  const auto commit = sink.txns[0]->commit_lsn;
  EXPECT_LT(stream.metrics().confirmed_lsn, commit);  // nothing inside the transaction
  // PostgreSQL restarts halfway, while the sink still holds parts: its fast shutdown waits for
  // the stream to confirm what it was sent, so the stream lets go once the sink has stalled for
  // stall_release; PostgreSQL then sends the whole transaction again.
  db.close();
  const auto t0 = std::chrono::steady_clock::now();
  auto restarted = std::async(
      std::launch::async, [] { return cluster()->restart(testkit::TempCluster::StopMode::fast); });
  ASSERT_TRUE(loop.run_until(
      [&] { return restarted.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
      60s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << "the stream held PostgreSQL's shutdown";
  ASSERT_TRUE(restarted.get().ok()) << cluster()->log_tail();
  ASSERT_TRUE(loop.run_until(
      [&] {
        hand_on(1);
        return sink.change_count() >= static_cast<std::size_t>(kRows) && sink.pending.empty() &&
               stream.metrics().confirmed_lsn > commit;
      },
      60s))
      << sink.change_count() << " " << json::serialize(stream.diagnostics());
  EXPECT_LE(peak, o.max_held_bytes + part_bytes);
  EXPECT_GT(stream.metrics().transactions_deduplicated, 0u);
  std::vector<int> ids;
  for (const auto& t : sink.txns) {
    EXPECT_LE(t->changes.size(), 100u);
    for (const auto& ch : t->changes)
      ids.push_back(static_cast<int>(ch.record->at("id").as_int64()));
  }
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kRows));
  for (int i = 0; i < kRows; ++i)
    ASSERT_EQ(ids[static_cast<std::size_t>(i)], i + 1);
  EXPECT_TRUE(sink.txns.back()->last);
  auto c = server::pg::Connection::open(cluster()->conninfo());
  ASSERT_TRUE(c.ok());
  db = std::move(c).value();
}

// The stall watch measures from the sink's last progress, not from the first part: a sink that
// finishes every transaction well within stall_release keeps the connection however long the
// whole takes, and one that then finishes nothing for stall_release loses it.
TEST_F(ChangeStreamTest, ASlowButSteadySinkIsNotTakenForStalled) {
  sql(R"sql(
    CREATE TABLE steady (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE steady;
  )sql");
  const auto slot = make_slot();
  ChangeStreamOptions o = options_for(slot);
  o.stall_release = std::chrono::milliseconds(400);
  ChangeStream stream(loop.io, loop.sched, sink, o);
  sink.auto_done = false;
  start(stream);
  constexpr int kTxns = 8;
  for (int i = 1; i <= kTxns; ++i)
    sql("INSERT INTO steady VALUES (" + std::to_string(i) + ")");
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 1; i <= kTxns; ++i) {
    ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() >= i; }, 10s));
    loop.run_until([] { return false; }, 150ms);  // a slow sink: 150 ms per transaction
    sink.done_all();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 3 * o.stall_release);
  EXPECT_EQ(stream.metrics().reconnects, 0u);
  EXPECT_EQ(sink.txns.size(), static_cast<std::size_t>(kTxns));

  // Now it holds one and finishes nothing: the stream lets go (and comes back).
  sql("INSERT INTO steady VALUES (100)");
  ASSERT_TRUE(loop.run_until([&] { return sink.txns.size() == kTxns + 1; }, 10s));
  const auto held = std::chrono::steady_clock::now();
  ASSERT_TRUE(loop.run_until([&] { return stream.metrics().reconnects == 1; }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - held, o.stall_release);
  sink.done_all();
}

TEST_F(ChangeStreamTest, StatusUpdatesGoOutEveryInterval) {
  const auto slot = make_slot();
  ChangeStreamOptions o = options_for(slot);
  o.status_interval = std::chrono::milliseconds(50);
  ChangeStream stream(loop.io, loop.sched, sink, o);
  start(stream);
  const auto before = stream.metrics().status_updates;
  ASSERT_TRUE(loop.run_until([&] { return stream.metrics().status_updates >= before + 4; }, 5s));
}

TEST(ChangeStreamTimeout, SilentServerTimesOutTheStart) {
  // A listener that completes TCP handshakes but never answers the startup packet.
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(s, 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  TestLoop loop;
  RecordingSink sink;
  ChangeStreamOptions o;
  o.conninfo = "host=127.0.0.1 port=" + std::to_string(ntohs(addr.sin_port)) +
               " dbname=postgres user=postgres";
  o.connect_timeout = std::chrono::milliseconds(200);
  o.retry = core::ExponentialBackoff{std::chrono::seconds(10), std::chrono::seconds(10)};
  ChangeStream stream(loop.io, loop.sched, sink, o);
  const auto t0 = std::chrono::steady_clock::now();
  stream.start();
  ASSERT_TRUE(loop.run_until([&] { return !sink.states.empty(); }, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(200));
  EXPECT_FALSE(sink.states[0].first);
  EXPECT_NE(sink.states[0].second.find("timed out"), std::string::npos) << sink.states[0].second;
  stream.stop();
  ::close(s);
}

// The default reconnect schedule: ceilings 0.2, 0.4, 0.8, 1.6 s, then 2 s however long PostgreSQL
// (or the link to it) is away, so the stream is back within 2 s of its return.
TEST(ChangeStreamOptionsDefaults, RetryCeilingsDoubleFromTwoHundredMillisecondsToTwoSeconds) {
  const auto retry = ChangeStreamOptions{}.retry;
  EXPECT_EQ(retry.ceiling(1), core::Duration(std::chrono::milliseconds(200)));
  EXPECT_EQ(retry.ceiling(4), core::Duration(std::chrono::milliseconds(1600)));
  EXPECT_EQ(retry.ceiling(5), core::Duration(std::chrono::seconds(2)));
  EXPECT_EQ(retry.ceiling(1000), core::Duration(std::chrono::seconds(2)));
  EXPECT_EQ(retry.delay(1000, 1.0), core::Duration(std::chrono::seconds(2)));
}

TEST_F(ChangeStreamTest, MissingSlotReportsDownAndKeepsRetrying) {
  ChangeStreamOptions o = options_for("no_such_slot");
  o.retry = core::ExponentialBackoff{std::chrono::milliseconds(20), std::chrono::milliseconds(50)};
  ChangeStream stream(loop.io, loop.sched, sink, o);
  stream.start();
  ASSERT_TRUE(loop.run_until([&] { return !sink.states.empty(); }));
  EXPECT_FALSE(sink.states[0].first);
  EXPECT_NE(sink.states[0].second.find("no_such_slot"), std::string::npos) << sink.states[0].second;
  // Creating the slot lets the next retry succeed.
  query("SELECT pg_create_logical_replication_slot('no_such_slot', 'pgoutput')");
  ASSERT_TRUE(loop.run_until([&] { return sink.running(); }));
  EXPECT_EQ(sink.states.size(), 2u);  // one "down", one "up": retries are not re-reported
}

// Broadcast from Database: realtime.messages inserts come through the same slot as every other
// change, in commit order with them; retention's deletes do not (the publication is insert-only).
TEST_F(ChangeStreamTest, MessagesPublicationIsStreamedInCommitOrderWithTheOtherChanges) {
  sql(R"sql(
    CREATE TABLE bc_notes (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE bc_notes;
  )sql");
  const auto slot = make_slot();
  auto stream = make_stream(slot);
  start(*stream);
  sql(R"sql(
    BEGIN;
    INSERT INTO bc_notes VALUES (1);
    SELECT realtime.send('{"n": 1}', 'ping', 'room');
    INSERT INTO bc_notes VALUES (2);
    COMMIT;
    SELECT realtime.send('{"n": 2}', 'pong', 'room', false);
    DELETE FROM realtime.messages;
    INSERT INTO bc_notes VALUES (3);
  )sql");
  ASSERT_TRUE(wait_changes(5)) << sink.change_count();
  std::vector<std::string> seen;
  for (const auto& t : sink.txns) {
    for (const auto& c : t->changes) {
      std::string s = c.relation->schema + "." + c.relation->table + " " +
                      std::string(server::to_string(c.kind));
      if (server::is_messages_relation(*c.relation)) {
        s += " " + std::string(c.record->at("event").as_string()) +
             (c.record->at("private").as_bool() ? " private" : " public");
      }
      seen.push_back(s);
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "public.bc_notes INSERT", "realtime.messages INSERT ping private",
                      "public.bc_notes INSERT", "realtime.messages INSERT pong public",
                      "public.bc_notes INSERT"}));
  const auto& msg = sink.txns[0]->changes.at(1);
  EXPECT_EQ(json::serialize(msg.record->at("payload").at("n")), "1");
  EXPECT_EQ(msg.record->at("payload").at("id"), msg.record->at("id"))
      << "realtime.send puts the message id into the payload";
}

TEST_F(ChangeStreamTest, AMissingMessagesPublicationLeavesTheStreamRunningWithoutIt) {
  sql("CREATE TABLE bc_plain (id int PRIMARY KEY); "
      "ALTER PUBLICATION supabase_realtime ADD TABLE bc_plain;");
  const auto slot = make_slot();
  ChangeStreamOptions o = options_for(slot);
  o.messages_publication = "no_such_publication";
  ChangeStream stream(loop.io, loop.sched, sink, o);
  log::Capture logs;
  start(stream);
  sql("SELECT realtime.send('{}', 'e', 't'); INSERT INTO bc_plain VALUES (1);");
  ASSERT_TRUE(wait_changes(1));
  EXPECT_EQ(sink.change_count(), 1u);
  EXPECT_EQ(sink.txns.back()->changes.at(0).relation->table, "bc_plain");
  EXPECT_TRUE(logs.contains("publication no_such_publication does not exist"));
}

}  // namespace
}  // namespace rtsync::test
