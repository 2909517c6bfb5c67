// Resumable change streams on virtual time (docs/resume.md): positions on every delivered change
// (counted across a transaction's parts), the join and heartbeat replies' rtsync fields, the
// history window's bounds (time and bytes, exactly at the floor), epochs, resumes authorized
// under the channel's current claims, live changes held while a replay is prepared, the slot
// hold-back (Hub::confirm_limit), and paced replays larger than the socket's queue (written as the
// client reads them; a client that stops reading, leaves or rejoins meanwhile; history trimmed
// meanwhile).
#include <gtest/gtest.h>

#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/protocol/join.hpp"
#include "rtsync/server/realtime/connection.hpp"
#include "unit/server_rt/fakes.hpp"

namespace rtsync::server::realtime {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using protocol::Message;
using protocol::Vsn;

const std::string kEpoch = "00c0ffee00c0ffee";
constexpr Lsn kStart = 0x1000;

// Commit position of the k-th transaction of a test.
constexpr Lsn at(int k) {
  return 0x2000 + static_cast<Lsn>(k) * 0x100;
}

class ResumeTest : public ::testing::Test {
 protected:
  ResumeTest() : verifier(kSecret, 2s) { make_hub(limits()); }
  static RealtimeLimits limits() {
    RealtimeLimits l;
    l.resume_window = 10s;
    l.resume_window_bytes = 1000;
    return l;
  }
  void make_hub(RealtimeLimits l) {
    clients.clear();
    hub = std::make_unique<Hub>(sched, verifier, &authz, l);
    hub->on_stream_state(true, "");
    hub->set_epoch(kEpoch, StreamPosition{kStart, 0});
    // Row-level security: a user sees the rows they own; anon sees nothing.
    authz.rule = [](const AuthClass& a, const RowChange& ch) {
      auto claims = core::parse_json(a.claims_json);
      if (!claims.ok() || !ch.record) return false;
      const auto* sub = core::find(claims.value(), "sub");
      const auto* owner = ch.record->if_contains("owner");
      return sub && owner && sub->is_string() && owner->is_string() &&
             sub->get_string() == owner->get_string();
    };
  }
  std::int64_t now_s() const {
    return std::chrono::duration_cast<std::chrono::seconds>(sched.wall_now().time_since_epoch())
        .count();
  }
  struct Client {
    FakeSession io;
    std::unique_ptr<Connection> conn;
    Client(Hub& hub, Vsn vsn, auth::VerifiedJwt key) : io(vsn) {
      conn = std::make_unique<Connection>(hub, io, vsn, std::move(key));
    }
    void send(const Message& m) { conn->on_text(protocol::encode_text(io.vsn, m)); }
  };
  Client& client(std::string sub, Vsn vsn = Vsn::v2) {
    json::object c{{"role", "authenticated"}, {"exp", now_s() + 3600}, {"sub", sub}};
    auto v = verifier.verify(auth::sign_hs256(c, kSecret), sched.wall_now());
    clients.push_back(std::make_unique<Client>(*hub, vsn, std::move(v.value())));
    return *clients.back();
  }
  static json::object config(std::optional<json::value> resume = std::nullopt,
                             std::string filter = "") {
    json::object binding{{"event", "*"}, {"schema", "public"}, {"table", "tasks"}};
    if (!filter.empty()) binding["filter"] = filter;
    json::object c{{"postgres_changes", json::array{binding}}};
    if (resume) c["rtsync"] = json::object{{"resume", *resume}};
    return c;
  }
  static Message join(json::object config, std::string topic = "room") {
    return Message{"1", "1", "realtime:" + topic, "phx_join", json::object{{"config", config}}};
  }
  static json::value pos(Lsn lsn, std::uint64_t index, std::string epoch = kEpoch) {
    return position_json(epoch, StreamPosition{lsn, index});
  }
  // A transaction committed at `lsn` (its end one after), `bytes` of pgoutput.
  std::shared_ptr<Transaction> tx(Lsn lsn, std::vector<RowChange> changes, std::size_t bytes = 10) {
    auto t = txn(std::move(changes), lsn + 1);
    t->bytes = bytes;
    return t;
  }
  void feed(std::shared_ptr<Transaction> t) {
    hub->on_transaction(std::move(t), [this] { ++done_calls; });
  }
  RowChange row_of(std::int64_t id, std::string owner, std::int64_t score = 1) {
    return insert(rel, row(id, std::move(owner), score));
  }
  // The postgres_changes frames among `msgs`: (record id, position).
  struct Got {
    std::int64_t id;
    std::string lsn;
    std::uint64_t index;
  };
  static std::vector<Got> changes(const std::vector<Message>& msgs) {
    std::vector<Got> out;
    for (const auto& m : msgs) {
      if (m.event != "postgres_changes") continue;
      const auto& data = m.payload.at("data");
      const auto& p = data.at("position");
      EXPECT_EQ(p.at("epoch").as_string(), kEpoch);
      out.push_back(Got{data.at("record").at("id").as_int64(), std::string(p.at("lsn").as_string()),
                        static_cast<std::uint64_t>(p.at("index").to_number<std::int64_t>())});
    }
    return out;
  }
  static std::vector<std::int64_t> ids(const std::vector<Got>& g) {
    std::vector<std::int64_t> out;
    for (const auto& x : g)
      out.push_back(x.id);
    return out;
  }
  static const json::value& rtsync_of(const Message& reply) {
    return reply.payload.at("response").at("rtsync");
  }

  core::ManualScheduler sched;
  auth::JwtVerifier verifier;
  FakeAuthorizer authz;
  std::unique_ptr<Hub> hub;
  std::vector<std::unique_ptr<Client>> clients;
  std::shared_ptr<Relation> rel = make_relation("public", "tasks");
  std::shared_ptr<Relation> other = [] {
    auto r = make_relation("public", "notes");
    r->oid = 16385;
    return r;
  }();
  int done_calls = 0;
  // Sockets queue at most 8 frames, so a replay of more than 4 is paced; the history keeps 1 MiB.
  void make_paced_hub() {
    auto l = limits();
    l.max_queued_frames = 8;
    l.resume_window_bytes = 1 << 20;
    make_hub(l);
  }
  // A hub whose joins may hold 2 live items (its history keeping `window_bytes`); one row of
  // alice's commits while she is away, then she rejoins resuming from the start, and her replay's
  // row check is left unanswered (checks are deferred from then on).
  Client& alice_resuming_holding_two(std::size_t window_bytes = limits().resume_window_bytes) {
    auto l = limits();
    l.max_queued_frames = 2;
    l.resume_window_bytes = window_bytes;
    make_hub(l);
    feed(tx(0x2000, {row_of(1, "alice")}));
    authz.defer = true;
    auto& c = client("alice");
    c.send(join(config(pos(kStart, 0))));
    sched.run_ready();
    return c;
  }
  // `n` transactions of one row of alice's commit while she is away; then she rejoins, resuming
  // from the start.
  Client& alice_resuming_after(int n) {
    for (int k = 1; k <= n; ++k)
      feed(tx(at(k), {row_of(k, "alice")}));
    auto& a = client("alice");
    a.send(join(config(pos(kStart, 0))));
    sched.run_ready();
    return a;
  }
};

TEST_F(ResumeTest, EveryChangeCarriesItsPositionCountedOverAllChangesAndParts) {
  auto& c = client("alice");
  c.send(join(config()));
  auto first = c.io.take();
  ASSERT_GE(first.size(), 1u);
  // The head of a join before any transaction: where the stream starts.
  EXPECT_EQ(
      json::serialize(rtsync_of(first[0])),
      R"({"epoch":"00c0ffee00c0ffee","position":{"epoch":"00c0ffee00c0ffee","lsn":"0/1000","index":0}})");

  // A transaction in two parts: a change of another table (nobody's) counts too.
  auto p0 = tx(0x2000, {insert(other, row(9, "alice", 1)), row_of(1, "alice")});
  p0->last = false;
  p0->end_lsn = 0;
  auto p1 = tx(0x2000, {row_of(2, "bob"), row_of(3, "alice")});
  p1->part = 1;
  feed(p0);
  feed(p1);
  auto got = changes(c.io.take());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, 1);
  EXPECT_EQ(got[0].lsn, "0/2000");
  EXPECT_EQ(got[0].index, 2u);
  EXPECT_EQ(got[1].id, 3);
  EXPECT_EQ(got[1].index, 4u);  // bob's row (3) is counted, not sent
  // The next transaction starts again at 1.
  feed(tx(0x3000, {row_of(4, "alice")}));
  got = changes(c.io.take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].lsn, "0/3000");
  EXPECT_EQ(got[0].index, 1u);

  // The heartbeat reply says how far the stream was handed to this socket.
  c.send(Message{std::nullopt, "9", "phoenix", "heartbeat", json::object()});
  auto hb = c.io.take();
  ASSERT_EQ(hb.size(), 1u);
  EXPECT_EQ(json::serialize(rtsync_of(hb[0]).at("position")),
            R"({"epoch":"00c0ffee00c0ffee","lsn":"0/3000","index":1})");
  // A fresh join's head is the last transaction accepted.
  auto& d = client("alice");
  d.send(join(config(), "other"));
  EXPECT_EQ(rtsync_of(d.io.take()[0]).at("position").at("lsn").as_string(), "0/3000");
}

TEST_F(ResumeTest, ResumeReplaysExactlyTheMissedChangesThenLiveOnesOnce) {
  auto& a = client("alice");
  a.send(join(config()));
  feed(tx(0x2000, {row_of(1, "alice")}));
  auto seen = changes(a.io.take());
  ASSERT_EQ(seen.size(), 1u);
  a.conn.reset();  // the link is cut
  feed(tx(0x3000, {row_of(2, "alice"), row_of(3, "alice")}));
  feed(tx(0x4000, {row_of(4, "alice")}));

  auto& b = client("alice");
  b.send(join(config(pos(0x2000, 1))));
  EXPECT_TRUE(b.io.frames.empty());  // held until the replay is ready
  sched.run_ready();
  auto msgs = b.io.take();
  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].event, "phx_reply");
  const auto& rt = rtsync_of(msgs[0]);
  EXPECT_EQ(json::serialize(rt.at("resume")), R"({"status":"resumed","replayed":3})");
  EXPECT_EQ(rt.at("position").at("lsn").as_string(), "0/4000");
  EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{2, 3, 4}));
  // Live after the head, once.
  feed(tx(0x5000, {row_of(5, "alice")}));
  EXPECT_EQ(ids(changes(b.io.take())), (std::vector<std::int64_t>{5}));
  EXPECT_EQ(hub->metrics().resume_replayed_changes, 3u);
  EXPECT_EQ(hub->metrics().resumes.at("resumed"), 1u);
}

TEST_F(ResumeTest, APositionExactlyAtTheFloorResumesAndOneBeforeItIsAGap) {
  feed(tx(0x2000, {row_of(1, "alice"), row_of(2, "alice")}));  // delivered at t=0
  sched.advance(1s);
  feed(tx(0x3000, {row_of(3, "alice")}));  // t=1s
  // Just inside the window (10 s): nothing trimmed, the start still resumes.
  sched.advance(9s - 1ns);
  {
    auto& c = client("alice");
    c.send(join(config(pos(kStart, 0))));
    sched.run_ready();
    auto msgs = c.io.take();
    EXPECT_EQ(rtsync_of(msgs[0]).at("resume").at("status").as_string(), "resumed");
    EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{1, 2, 3}));
  }
  // At 10 s the first transaction is trimmed: the floor is its last change.
  sched.advance(1ns);
  EXPECT_EQ(hub->confirm_limit(), Lsn{0x2000});
  EXPECT_EQ(hub->history().floor(), (StreamPosition{0x2000, 2}));
  {
    auto& c = client("alice");
    c.send(join(config(pos(0x2000, 2))));
    sched.run_ready();
    auto msgs = c.io.take();
    EXPECT_EQ(rtsync_of(msgs[0]).at("resume").at("status").as_string(), "resumed");
    EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{3}));
  }
  {
    auto& c = client("alice");
    c.send(join(config(pos(0x2000, 1))));
    sched.run_ready();
    auto msgs = c.io.take();
    EXPECT_EQ(
        json::serialize(rtsync_of(msgs[0]).at("resume")),
        R"({"status":"gap","reason":"position older than the server's history","replayed":0})");
    EXPECT_TRUE(changes(msgs).empty());
    // Live changes follow a gap.
    feed(tx(0x4000, {row_of(4, "alice")}));
    EXPECT_EQ(ids(changes(c.io.take())), (std::vector<std::int64_t>{4}));
  }
  EXPECT_EQ(hub->metrics().resumes.at("gap_history"), 1u);
}

TEST_F(ResumeTest, TheByteBoundTrimsTheOldestTransactions) {
  feed(tx(0x2000, {row_of(1, "alice")}, 600));
  EXPECT_EQ(hub->history().transactions(), 1u);
  feed(tx(0x3000, {row_of(2, "alice")}, 400));  // 1000 bytes: exactly the bound, kept
  EXPECT_EQ(hub->history().transactions(), 2u);
  EXPECT_EQ(hub->history().floor(), (StreamPosition{kStart, 0}));
  feed(tx(0x4000, {row_of(3, "alice")}, 1));  // 1001: the oldest goes
  EXPECT_EQ(hub->history().transactions(), 2u);
  EXPECT_EQ(hub->history().bytes(), 401u);
  EXPECT_EQ(hub->history().floor(), (StreamPosition{0x2000, 1}));
  EXPECT_EQ(hub->confirm_limit(), Lsn{0x2000});
  auto& c = client("alice");
  c.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  EXPECT_EQ(rtsync_of(c.io.take()[0]).at("resume").at("status").as_string(), "gap");
}

TEST_F(ResumeTest, APositionOfAnotherEpochIsAGap) {
  feed(tx(0x2000, {row_of(1, "alice")}));
  auto& c = client("alice");
  c.send(join(config(pos(0x2000, 1, "feedfacefeedface"))));
  auto msgs = c.io.take();  // answered at once
  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"gap","reason":"position of another epoch","replayed":0})");
  EXPECT_EQ(hub->metrics().resumes.at("gap_epoch"), 1u);
  feed(tx(0x3000, {row_of(2, "alice")}));
  EXPECT_EQ(ids(changes(c.io.take())), (std::vector<std::int64_t>{2}));
}

TEST_F(ResumeTest, AttackerResumeReplaysOnlyWhatTheCurrentClaimsAndFilterMaySee) {
  feed(tx(0x2000, {row_of(1, "alice", 9), row_of(2, "bob", 9), row_of(3, "alice", 1)}));
  feed(tx(0x3000, {row_of(4, "bob", 9), row_of(5, "alice", 9)}));
  // Bob resumes from the start with a position alice's client held: he gets his own rows only.
  auto& bob = client("bob");
  bob.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  auto msgs = bob.io.take();
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":2})");
  EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{2, 4}));
  // Alice with a filter: her rows that pass it, nothing else.
  auto& alice = client("alice");
  alice.send(join(config(pos(kStart, 0), "score=gt.5")));
  sched.run_ready();
  EXPECT_EQ(ids(changes(alice.io.take())), (std::vector<std::int64_t>{1, 5}));
  // Anonymous: nothing.
  json::object anon{{"role", "anon"}, {"exp", now_s() + 3600}};
  auto v = verifier.verify(auth::sign_hs256(anon, kSecret), sched.wall_now());
  clients.push_back(std::make_unique<Client>(*hub, Vsn::v2, std::move(v.value())));
  auto& a = *clients.back();
  a.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  msgs = a.io.take();
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":0})");
  EXPECT_TRUE(changes(msgs).empty());
}

TEST_F(ResumeTest, ALiveChangeArrivingDuringTheReplaysAuthorizationFollowsItExactlyOnce) {
  auto& carol = client("carol");  // a bystander: transactions need row checks
  carol.send(join(config(), "carol"));
  feed(tx(0x2000, {row_of(1, "alice")}));
  authz.defer = true;
  // Accepted before the join, still being authorized: part of the replay, not a live change.
  feed(tx(0x3000, {row_of(2, "alice")}));
  auto& c = client("alice");
  c.send(join(config(pos(0x2000, 1))));
  sched.run_ready();
  EXPECT_TRUE(c.io.frames.empty());  // waits for 0/3000 to be delivered
  authz.flush();                     // 0/3000 delivered; the replay's check is asked (deferred)
  sched.run_ready();
  EXPECT_TRUE(c.io.frames.empty());
  feed(tx(0x4000, {row_of(3, "alice")}));  // live, while the replay is authorized
  authz.answer(1);                         // the live one is answered first: held
  EXPECT_TRUE(c.io.frames.empty());
  authz.flush();  // the replay's answer
  sched.run_ready();
  auto msgs = c.io.take();
  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":1})");
  EXPECT_EQ(rtsync_of(msgs[0]).at("position").at("lsn").as_string(), "0/3000");
  EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{2, 3}));
  feed(tx(0x5000, {row_of(4, "alice")}));
  authz.flush();
  EXPECT_EQ(ids(changes(c.io.take())), (std::vector<std::int64_t>{4}));
  EXPECT_TRUE(changes(carol.io.take()).empty());  // none of it was carol's
}

// More live changes arrive while the replay is checked than a join may hold (2 here): they are
// let go and replayed from history instead — the head moves to what was delivered, their rows
// are checked like the replay's — so the client resumes with all of them, once, in order, and
// none of bob's rows, which came in between.
TEST_F(ResumeTest, LiveChangesOverflowingWhileTheReplayIsCheckedAreReplayedFromHistory) {
  auto& c = alice_resuming_holding_two();
  for (Lsn lsn : {0x3000, 0x4000, 0x5000, 0x6000}) {
    const auto id = static_cast<std::int64_t>(lsn >> 12);
    feed(tx(lsn, {row_of(id, "alice"), row_of(100 + id, "bob")}));
    authz.answer_last();  // the live change's check
  }
  EXPECT_TRUE(c.io.frames.empty());
  authz.flush();  // the first replay's answer; the moved head's checks are asked
  sched.run_ready();
  authz.flush();
  sched.run_ready();
  auto msgs = c.io.read_all(1);  // the replay is paced by the 2-frame queue
  ASSERT_GE(msgs.size(), 1u);
  const auto& rt = rtsync_of(msgs[0]);
  EXPECT_EQ(json::serialize(rt.at("resume")), R"({"status":"resumed","replayed":5})");
  EXPECT_EQ(rt.at("position").at("lsn").as_string(), "0/6000");
  EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{1, 3, 4, 5, 6}));
  authz.defer = false;
  feed(tx(0x7000, {row_of(7, "alice")}));
  EXPECT_EQ(ids(changes(c.io.take())), (std::vector<std::int64_t>{7}));
  EXPECT_EQ(hub->metrics().resumes.at("resumed"), 1u);
  EXPECT_EQ(hub->metrics().drops_for(drop::kResumeHeldOverflow), 0u);
}

// A replay whose live changes keep overflowing moves its head at most kMaxReplayExtensions
// times; then the join is a gap, and live changes after its head follow.
TEST_F(ResumeTest, AReplayThatNeverCatchesUpEndsInAGapWithLiveChangesAfterItsHead) {
  auto& c = alice_resuming_holding_two(1 << 20);
  Lsn lsn = 0x3000;
  // Each round: three live changes (one more than may be held) before the replay's next answer.
  for (int round = 0; round <= Hub::kMaxReplayExtensions; ++round) {
    for (int k = 0; k < 3; ++k, lsn += 0x100) {
      feed(tx(lsn, {row_of(static_cast<std::int64_t>(lsn >> 8), "alice")}));
      authz.answer_last();  // the live change's check
    }
    EXPECT_TRUE(c.io.frames.empty()) << round;
    authz.flush();  // the replay's checks so far
    sched.run_ready();
  }
  auto msgs = c.io.take();
  ASSERT_GE(msgs.size(), 1u);
  const auto& rt = rtsync_of(msgs[0]);
  EXPECT_EQ(rt.at("resume").at("status").as_string(), "gap");
  EXPECT_TRUE(changes(msgs).empty());
  authz.defer = false;
  feed(tx(0x9000, {row_of(9, "alice")}));
  EXPECT_EQ(ids(changes(c.io.take())), (std::vector<std::int64_t>{9}));
  EXPECT_EQ(hub->metrics().resumes.at("gap_overflow"), 1u);
}

// The live changes let go at an overflow are replayed from history — unless its byte bound
// dropped some of them meanwhile: then the join is a gap (its reason: the history), not a
// resume that silently lacks them.
TEST_F(ResumeTest, LiveChangesLetGoAndTrimmedFromHistoryBeforeTheirReplayAreAGap) {
  auto& c = alice_resuming_holding_two();  // the history keeps 1,000 bytes
  for (Lsn lsn : {0x3000, 0x4000, 0x5000}) {
    feed(tx(lsn, {row_of(static_cast<std::int64_t>(lsn >> 12), "alice")}, 400));
    authz.answer_last();
  }
  authz.flush();
  sched.run_ready();
  auto msgs = c.io.read_all(1);
  ASSERT_GE(msgs.size(), 1u);
  const auto& resume = rtsync_of(msgs[0]).at("resume");
  EXPECT_EQ(resume.at("status").as_string(), "gap");
  EXPECT_EQ(resume.at("reason").as_string(), "position older than the server's history");
  EXPECT_TRUE(changes(msgs).empty());
  EXPECT_EQ(hub->metrics().resumes.at("gap_history"), 1u);
}

TEST_F(ResumeTest, AResumeAheadOfTheHeadGetsOnlyChangesAfterItsPosition) {
  // After a restart the server may still be decoding its window again: a client ahead of the
  // head gets nothing twice.
  auto& c = client("alice");
  c.send(join(config(pos(0x3000, 1))));
  sched.run_ready();
  auto msgs = c.io.take();
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":0})");
  feed(tx(0x2000, {row_of(1, "alice")}));
  feed(tx(0x3000, {row_of(2, "alice"), row_of(3, "alice")}));
  EXPECT_EQ(ids(changes(c.io.take())), (std::vector<std::int64_t>{3}));
}

TEST_F(ResumeTest, DatabaseBroadcastsCarryAPositionAndAreReplayed) {
  feed(tx(0x2000,
          {message_insert("room", "ev", json::object{{"n", 1}}, false, "m1"), row_of(1, "alice")}));
  auto& c = client("alice", Vsn::v1);
  c.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  auto msgs = c.io.take();
  ASSERT_GE(msgs.size(), 3u);
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":2})");
  std::vector<std::string> order;
  for (const auto& m : msgs) {
    if (m.event == "broadcast") {
      order.push_back("broadcast");
      EXPECT_EQ(json::serialize(m.payload.at("meta")),
                R"({"id":"m1","position":{"epoch":"00c0ffee00c0ffee","lsn":"0/2000","index":1}})");
    }
    if (m.event == "postgres_changes") order.push_back("change");
  }
  EXPECT_EQ(order, (std::vector<std::string>{"broadcast", "change"}));
}

TEST_F(ResumeTest, CatchUpAfterARestartIsHistoryForResumersAndNobodysLiveChange) {
  // The server started when the WAL was at 0/3000: what committed before is decoded again.
  hub->set_epoch(kEpoch, StreamPosition{kStart, 0}, 0x3000);
  auto& fresh = client("alice");
  fresh.send(join(config()));
  auto msgs = fresh.io.take();
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("position")),
            R"({"epoch":"00c0ffee00c0ffee","lsn":"0/3000","index":0})");
  auto& resumer = client("alice");
  resumer.send(join(config(pos(kStart, 0)), "resumer"));
  sched.run_ready();
  EXPECT_TRUE(resumer.io.frames.empty());  // waits for the catch-up to end
  feed(tx(0x2000, {row_of(1, "alice")}));
  EXPECT_TRUE(fresh.io.take().empty());
  EXPECT_TRUE(resumer.io.frames.empty());
  EXPECT_EQ(done_calls, 1);  // confirmed like any other
  // PostgreSQL's keepalive: everything before 0/3000 was handed on.
  hub->on_stream_position(0x3000);
  msgs = resumer.io.take();
  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":1})");
  EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{1}));
  feed(tx(0x3000, {row_of(2, "alice")}));
  EXPECT_EQ(ids(changes(fresh.io.take())), (std::vector<std::int64_t>{2}));
  EXPECT_EQ(ids(changes(resumer.io.take())), (std::vector<std::int64_t>{2}));
}

TEST_F(ResumeTest, APrivateDatabaseBroadcastIsNotReplayedToAPublicChannelOfTheSameName) {
  feed(tx(0x2000, {message_insert("room", "secret", json::object{{"n", 1}}, true, "p1"),
                   message_insert("room", "open", json::object{{"n", 2}}, false, "o1")}));
  auto& c = client("alice", Vsn::v1);
  c.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  auto msgs = c.io.take();
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":1})");
  std::vector<std::string> events;
  for (const auto& m : msgs)
    if (m.event == "broadcast") events.push_back(std::string(m.payload.at("event").as_string()));
  EXPECT_EQ(events, (std::vector<std::string>{"open"}));
}

TEST_F(ResumeTest, AReplayOfATransactionInPartsKeepsItsContinuousIndexes) {
  auto p0 = tx(0x2000, {row_of(1, "alice"), row_of(2, "alice")});
  p0->last = false;
  p0->end_lsn = 0;
  auto p1 = tx(0x2000, {row_of(3, "alice"), row_of(4, "alice")});
  p1->part = 1;
  feed(p0);
  feed(p1);
  // A client that applied the first two changes (part 0) resumes inside the transaction.
  auto& c = client("alice");
  c.send(join(config(pos(0x2000, 2))));
  sched.run_ready();
  auto got = changes(c.io.take());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, 3);
  EXPECT_EQ(got[0].index, 3u);
  EXPECT_EQ(got[1].id, 4);
  EXPECT_EQ(got[1].index, 4u);
}

TEST_F(ResumeTest, WithoutAnEpochNoRtsyncFieldsAppear) {
  hub = std::make_unique<Hub>(sched, verifier, &authz, limits());
  hub->on_stream_state(true, "");
  auto& c = client("alice");
  c.send(join(config(pos(kStart, 0))));
  auto msgs = c.io.take();
  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].payload.at("response").as_object().if_contains("rtsync"), nullptr);
  feed(tx(0x2000, {row_of(1, "alice")}));
  msgs = c.io.take();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].payload.at("data").as_object().if_contains("position"), nullptr);
  EXPECT_EQ(hub->confirm_limit(), std::nullopt);
}

TEST_F(ResumeTest, LeavingWhileTheReplayIsPreparedEndsIt) {
  feed(tx(0x2000, {row_of(1, "alice")}));
  authz.defer = true;
  auto& c = client("alice");
  c.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  c.send(Message{"1", "2", "realtime:room", "phx_leave", json::object()});
  authz.flush();
  sched.run_ready();
  auto msgs = c.io.take();
  ASSERT_EQ(msgs.size(), 1u);  // the leave's reply only
  EXPECT_EQ(msgs[0].ref, "2");
  EXPECT_EQ(hub->router().size(), 0u);
}

// ---- paced replays: larger than the socket's queue, written as the client reads ----

// The replay larger than the socket's whole queue (found by the chaos campaign: a token-expiry
// outage of 4,177 changes was a told gap) is delivered completely, in commit order, once, then
// the live changes held meanwhile, then live ones — and the queue never held more than half of
// its limit.
TEST_F(ResumeTest, AReplayLargerThanTheSendQueueIsWrittenAsTheClientReadsAndArrivesWhole) {
  make_paced_hub();
  auto& bob = client("bob");  // another user on the same topic
  bob.send(join(config()));
  bob.io.take();
  for (int k = 1; k <= 24; ++k)
    feed(tx(at(k), {row_of(k, "alice"), row_of(1000 + k, "bob")}));
  EXPECT_EQ(changes(bob.io.take()).size(), 24u);

  auto& a = client("alice");
  a.io.max_frames = 8;  // the transport's limit: more queued closes the socket
  a.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  EXPECT_LE(a.io.queued_frames(), 4u);
  EXPECT_TRUE(a.io.drain_armed());
  // Live while the replay is written: held, and sent after it.
  feed(tx(at(25), {row_of(25, "alice"), row_of(1025, "bob")}));
  auto msgs = a.io.read(3);
  // The heartbeat reply claims no change the channel has yet to send.
  a.send(Message{std::nullopt, "9", "phoenix", "heartbeat", json::object()});
  feed(tx(at(26), {row_of(26, "alice")}));
  auto rest = a.io.read_all(1);
  msgs.insert(msgs.end(), rest.begin(), rest.end());

  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].event, "phx_reply");
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":24})");
  std::vector<std::int64_t> want;
  for (int k = 1; k <= 26; ++k)
    want.push_back(k);
  EXPECT_EQ(ids(changes(msgs)), want);
  std::optional<std::string> last_lsn;
  bool heartbeat_seen = false;
  for (const auto& m : msgs) {
    if (m.event == "postgres_changes") {
      last_lsn = std::string(m.payload.at("data").at("position").at("lsn").as_string());
    }
    if (m.topic == "phoenix") {
      heartbeat_seen = true;
      auto p = parse_position(rtsync_of(m).at("position"));
      ASSERT_TRUE(p && last_lsn);
      EXPECT_LE(p->position, (StreamPosition{parse_lsn(*last_lsn).value(), 1}));
      EXPECT_LT(p->position, hub->delivered());
    }
  }
  EXPECT_TRUE(heartbeat_seen);
  EXPECT_LE(a.io.peak_frames, 5u);  // half the queue for the replay, and the heartbeat reply
  EXPECT_FALSE(a.io.closed);
  // Then live, once; and nothing of it went to bob.
  feed(tx(at(27), {row_of(27, "alice")}));
  EXPECT_EQ(ids(changes(a.io.take())), (std::vector<std::int64_t>{27}));
  EXPECT_EQ(ids(changes(bob.io.take())), (std::vector<std::int64_t>{1025}));
  EXPECT_EQ(hub->metrics().resume_replayed_changes, 24u);
  EXPECT_EQ(hub->metrics().resumes.at("resumed"), 1u);
}

TEST_F(ResumeTest, AReplayLargerThanTheQueuesBytesIsWrittenInBurstsOfHalfOfThem) {
  auto l = limits();
  l.max_queued_bytes = 3000;
  l.resume_window_bytes = 1 << 20;
  make_hub(l);
  for (int k = 1; k <= 30; ++k)
    feed(tx(at(k), {row_of(k, "alice")}));
  auto& a = client("alice");
  a.io.max_bytes = 3000;
  a.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  auto msgs = a.io.read_all(1);
  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":30})");
  std::vector<std::int64_t> want;
  for (int k = 1; k <= 30; ++k)
    want.push_back(k);
  EXPECT_EQ(ids(changes(msgs)), want);
  EXPECT_LE(a.io.peak_bytes, 1500u);
  EXPECT_FALSE(a.io.closed);
}

// A client that stops reading mid-replay is closed as a slow consumer once its held live changes
// and its queue pass the socket's limits (memory stays bounded); the other sessions keep being
// served and receive nothing of it; a rejoin resumes from what it applied.
TEST_F(ResumeTest, AClientThatStopsReadingMidReplayIsClosedAsASlowConsumerAndResumesAgain) {
  make_paced_hub();
  auto& bob = client("bob");
  bob.send(join(config()));
  bob.io.take();
  for (int k = 1; k <= 20; ++k)
    feed(tx(at(k), {row_of(k, "alice")}));
  auto& a = client("alice");
  a.io.max_frames = 8;
  a.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  auto seen = changes(a.io.read(4));  // then it stops reading
  ASSERT_FALSE(seen.empty());
  const std::size_t queued = a.io.queued_frames();
  EXPECT_LE(queued, 4u);
  // No live traffic: nothing more is written, nothing is closed.
  EXPECT_EQ(a.io.queued_frames(), queued);
  EXPECT_FALSE(a.io.closed);
  // Live changes for it are held; past the socket's limit it is a slow consumer.
  int k = 21;
  for (; k <= 40 && !a.io.closed; ++k)
    feed(tx(at(k), {row_of(k, "alice"), row_of(1000 + k, "bob")}));
  EXPECT_TRUE(a.io.closed);
  EXPECT_EQ(a.io.close_code, 1008);
  EXPECT_NE(a.io.close_reason.find("slow consumer"), std::string::npos) << a.io.close_reason;
  EXPECT_EQ(k - 21, 9);  // 8 held (the queue's limit), the 9th closes it
  EXPECT_LE(a.io.peak_frames, 8u);
  EXPECT_GE(hub->metrics().drops[std::string(drop::kSlowConsumer)], 1u);
  // Bob is served on, his rows only.
  feed(tx(at(50), {row_of(50, "alice"), row_of(1050, "bob")}));
  std::vector<std::int64_t> bobs;
  for (int b = 21; b < k; ++b)
    bobs.push_back(1000 + b);
  bobs.push_back(1050);
  EXPECT_EQ(ids(changes(bob.io.take())), bobs);
  // The transport tears the socket down: the resume ends with it.
  a.conn.reset();
  EXPECT_EQ(hub->router().size(), 1u);
  // Its reconnect resumes from the last change it applied: the rest, once.
  auto& again = client("alice");
  const auto& last = seen.back();
  again.send(join(config(pos(parse_lsn(last.lsn).value(), last.index))));
  sched.run_ready();
  auto msgs = again.io.read_all(1);
  std::vector<std::int64_t> want;
  for (std::int64_t i = seen.back().id + 1; i < k; ++i)
    want.push_back(i);
  want.push_back(50);
  EXPECT_EQ(ids(changes(msgs)), want);
}

TEST_F(ResumeTest, LeavingMidReplayStopsItAndARejoinReplaysFromTheNewPositionOnce) {
  make_paced_hub();
  auto& a = alice_resuming_after(20);
  auto seen = changes(a.io.read(4));
  ASSERT_FALSE(seen.empty());
  a.send(Message{"1", "2", "realtime:room", "phx_leave", json::object()});
  auto after = a.io.read_all(1);
  // What was queued before the leave, then its reply (and phx_close), then nothing of the
  // channel.
  auto reply = std::find_if(after.begin(), after.end(), [](const Message& m) {
    return m.event == "phx_reply" && m.ref == "2";
  });
  ASSERT_NE(reply, after.end());
  EXPECT_TRUE(changes(std::vector<Message>(reply, after.end())).empty());
  EXPECT_FALSE(a.io.drain_armed());
  EXPECT_EQ(hub->router().size(), 0u);
  feed(tx(at(21), {row_of(21, "alice")}));
  EXPECT_TRUE(a.io.take().empty());

  // The same socket joins again from the last change it applied.
  a.send(Message{"3", "3", "realtime:room", "phx_join",
                 json::object{{"config", config(pos(parse_lsn(seen.back().lsn).value(),
                                                    seen.back().index))}}});
  sched.run_ready();
  auto msgs = a.io.read_all(1);
  std::vector<std::int64_t> want;
  for (std::int64_t i = seen.back().id + 1; i <= 21; ++i)
    want.push_back(i);
  EXPECT_EQ(ids(changes(msgs)), want);
  // A rejoin of the topic while its replay is written ends that replay (phx_close) first.
  a.send(Message{"4", "4", "realtime:room", "phx_join",
                 json::object{{"config", config(pos(kStart, 0))}}});
  sched.run_ready();
  auto part = a.io.read(3);
  a.send(Message{"5", "5", "realtime:room", "phx_join",
                 json::object{{"config", config(pos(at(19), 1))}}});
  sched.run_ready();
  msgs = a.io.read_all(1);
  std::size_t closes = 0;
  std::vector<std::int64_t> after_rejoin;
  bool rejoined = false;
  for (const auto& m : msgs) {
    if (m.event == "phx_close") ++closes;
    if (m.event == "phx_reply" && m.ref == "5") rejoined = true;
    if (rejoined && m.event == "postgres_changes") {
      after_rejoin.push_back(m.payload.at("data").at("record").at("id").as_int64());
    }
  }
  EXPECT_EQ(closes, 1u);
  EXPECT_EQ(after_rejoin, (std::vector<std::int64_t>{20, 21}));
  EXPECT_EQ(hub->router().size(), 1u);
}

// The history may drop entries while a replay is written (its window is time and bytes): the
// replay pinned them and is delivered whole. Dropped before the replay began (while its head was
// on its way), they are a told gap.
TEST_F(ResumeTest, HistoryTrimmedMidReplayIsStillReplayedAndTrimmedBeforeItIsAGap) {
  make_paced_hub();
  auto& a = alice_resuming_after(20);
  auto msgs = a.io.read(4);
  sched.advance(10s);  // the whole window is trimmed
  EXPECT_EQ(hub->confirm_limit(), at(20));
  EXPECT_EQ(hub->history().transactions(), 0u);
  auto rest = a.io.read_all(1);
  msgs.insert(msgs.end(), rest.begin(), rest.end());
  std::vector<std::int64_t> want;
  for (int k = 1; k <= 20; ++k)
    want.push_back(k);
  EXPECT_EQ(ids(changes(msgs)), want);

  // Trimmed while the head was on its way: a gap.
  auto& carol = client("carol");  // a bystander: transactions need row checks
  carol.send(join(config(), "carol"));
  feed(tx(at(30), {row_of(30, "alice")}));
  authz.defer = true;
  feed(tx(at(31), {row_of(31, "alice")}));  // accepted, being authorized
  auto& b = client("alice");
  b.send(join(config(pos(at(20), 1))));  // the floor now
  sched.run_ready();
  EXPECT_TRUE(b.io.frames.empty());
  sched.advance(10s);
  authz.flush();  // 0/…31 delivered; 0/…30 is 10 s old and goes
  sched.run_ready();
  msgs = b.io.take();
  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"gap","reason":"position older than the server's history","replayed":0})");
}

TEST_F(ResumeTest, TheReplaysRowChecksAreAskedAFewAtATime) {
  auto l = limits();
  l.max_transactions_in_flight = 2;
  make_hub(l);
  for (int k = 1; k <= 5; ++k)
    feed(tx(at(k), {row_of(k, "alice")}));
  authz.defer = true;
  const std::size_t before = authz.calls.size();
  auto& a = client("alice");
  a.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  EXPECT_EQ(authz.calls.size(), before + 2);
  authz.answer(before);
  EXPECT_EQ(authz.calls.size(), before + 3);
  authz.flush();  // answers 2 and 3, which ask 4 and 5
  EXPECT_EQ(authz.calls.size(), before + 5);
  EXPECT_TRUE(a.io.frames.empty());
  authz.flush();
  sched.run_ready();
  auto msgs = a.io.take();
  ASSERT_GE(msgs.size(), 1u);
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":5})");
  EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
}

// A change whose frame alone is larger than the socket's queue can never be sent on it (live, it
// closes the socket as a slow consumer): a replay holding one is a gap, so the client's rejoin
// does not ask for it again and again. A replay after it resumes.
TEST_F(ResumeTest, AReplayHoldingAChangeLargerThanTheWholeQueueIsAGap) {
  auto l = limits();
  l.max_queued_bytes = 4000;
  make_hub(l);
  feed(tx(at(1), {row_of(1, "alice")}));
  feed(tx(at(2), {insert(rel, row(2, "alice", 1, std::string(5000, 'x')))}));
  feed(tx(at(3), {row_of(3, "alice")}));

  auto& more = client("alice");
  more.send(join(config(pos(kStart, 0))));
  sched.run_ready();
  auto msgs = more.io.take();
  ASSERT_GE(msgs.size(), 1u);
  const auto& rt = rtsync_of(msgs[0]);
  EXPECT_EQ(rt.at("resume").at("status").as_string(), "gap");
  EXPECT_NE(rt.at("resume").at("reason").as_string().find("larger than the socket's send queue"),
            std::string::npos);
  EXPECT_EQ(rt.at("position").at("lsn").as_string(), format_lsn(at(3)));
  EXPECT_TRUE(changes(msgs).empty());
  feed(tx(at(4), {row_of(4, "alice")}));
  EXPECT_EQ(ids(changes(more.io.take())), (std::vector<std::int64_t>{4}));

  auto& after = client("alice");
  after.send(join(config(pos(at(2), 1))));
  sched.run_ready();
  msgs = after.io.take();
  EXPECT_EQ(json::serialize(rtsync_of(msgs[0]).at("resume")),
            R"({"status":"resumed","replayed":2})");
  EXPECT_EQ(ids(changes(msgs)), (std::vector<std::int64_t>{3, 4}));

  EXPECT_EQ(hub->metrics().resumes.at("gap_too_large"), 1u);
  const auto text = hub->metrics().render();
  EXPECT_NE(text.find(R"(rtsync_resumes_total{outcome="gap_too_large"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(rtsync_drops_total{reason="resume_too_large"} 3)"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace rtsync::server::realtime
