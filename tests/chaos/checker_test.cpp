// The offline checker (checker.hpp) on hand-made histories: each rule accepts what it should and
// names what it must — a change skipped mid-session, a gap never refetched, a resume that hid a
// change, duplicates, reordering, leaks, a stale final cache — so a chaos run that reports "ok"
// means something.
#include "checker.hpp"

#include <gtest/gtest.h>

namespace rtsync::chaos {
namespace {

using namespace std::chrono_literals;

const std::string kUser = "user-a";
const std::string kOther = "user-b";
const std::string kScope = "project-a1";
const std::string kOtherProject = "project-b1";

TimePoint at(int ms) {
  return TimePoint{} + std::chrono::hours(1) + std::chrono::milliseconds(ms);
}

struct World {
  std::vector<Committed> committed;
  ClientHistory client;
  Rows db;

  World() {
    client.user_id = kUser;
    client.project_id = kScope;
  }
  // A change committed at `ms` (sent at ms, acked 2 ms later) to `row` of the scope.
  Committed& commit(std::int64_t seq, int ms, std::string row, Op op = Op::insert,
                    std::string project = kScope, std::string owner = kUser) {
    committed.push_back(Committed{seq, row, op, project, owner, at(ms), at(ms + 2)});
    if (project == kScope && op != Op::remove) db[row] = RowVersion{project, seq};
    return committed.back();
  }
  void deliver(std::int64_t seq, int ms) {
    for (const auto& c : committed)
      if (c.seq == seq)
        client.deliveries.push_back(Delivery{seq, c.row_id, c.op, c.project_id, at(ms)});
  }
  void rejoin(int ms, bool gap = true, std::int64_t replayed = -1) {
    client.rejoins.push_back(Rejoin{at(ms), gap, replayed});
  }
  void down(int ms) { client.downs.push_back(at(ms)); }
  // A successful fetch at [start, end] returning the database as it was at `as_of` ms.
  void fetch(int start, int end, int as_of) {
    Fetch f{at(start), at(end), true, {}};
    for (const auto& c : committed)
      if (c.project_id == kScope && c.sent <= at(as_of)) f.rows[c.row_id] = {c.project_id, c.seq};
    client.fetches.push_back(std::move(f));
  }
  void final_cache_is_db() { client.final_cache = db; }
  // The client's first session delivers r1 and goes down; r2 and r3 are committed meanwhile.
  void outage_after_r1() {
    rejoin(0);
    commit(1, 100, "r1");
    deliver(1, 105);
    down(150);
    commit(2, 200, "r2");
    commit(3, 300, "r3");
  }
  // The session live at `ms` goes down, and the next rejoin (at 5 s) is a told gap and refetches.
  void down_then_told_gap(int ms) {
    down(ms);
    rejoin(5000, /*gap=*/true);
    fetch(5001, 5010, 5001);
  }
  CheckReport run(CheckOptions o = {}) { return check(committed, client, db, o); }
};

TEST(ChaosChecker, EveryChangeDeliveredOnceIsOk) {
  World w;
  w.rejoin(0);
  w.fetch(1, 5, 1);
  for (int i = 1; i <= 5; ++i) {
    w.commit(i, i * 100, "r" + std::to_string(i));
    w.deliver(i, i * 100 + 10);
  }
  w.final_cache_is_db();
  auto r = w.run();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.expected, 5u);
  EXPECT_EQ(r.delivered_once, 5u);
  EXPECT_EQ(r.told_gaps, 0u);
}

TEST(ChaosChecker, AChangeSkippedWhileLaterOnesArriveIsASilentLoss) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.commit(2, 200, "r2");
  w.commit(3, 300, "r3");
  w.deliver(1, 110);
  w.deliver(3, 310);
  // Even a later told gap whose refetch shows r2 does not excuse it: the client was live.
  w.down(400);
  w.rejoin(500);
  w.fetch(501, 520, 501);
  w.final_cache_is_db();
  auto r = w.run();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lost_in_session, 1u) << r.summary();
  EXPECT_EQ(r.silently_lost(), 1u);
}

TEST(ChaosChecker, ChangesInsideAToldGapAreCoveredByTheRefetchAfterIt) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.deliver(1, 110);
  w.commit(2, 200, "r2");  // sent just before the link died: never delivered
  w.down(250);
  w.commit(3, 300, "r3");  // while away
  w.commit(4, 350, "r1", Op::update);
  w.rejoin(1000);  // told: a gap
  w.fetch(1001, 1030, 1001);
  w.commit(5, 1100, "r5");
  w.deliver(5, 1110);
  w.final_cache_is_db();
  auto r = w.run();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.covered_by_gap, 3u);
  EXPECT_EQ(r.delivered_once, 2u);
  EXPECT_EQ(r.told_gaps, 1u);
}

TEST(ChaosChecker, AToldGapWithoutARefetchShowingTheChangeIsAFinding) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.down(150);
  w.rejoin(1000);
  // The only fetch after the rejoin read the database before the change: it cannot show it.
  w.fetch(90, 95, 90);
  w.client.fetches.push_back(Fetch{at(1001), at(1020), false, {}});  // and this one failed
  w.final_cache_is_db();
  auto r = w.run();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.gap_not_refetched, 1u) << r.summary();
}

TEST(ChaosChecker, AnUndeliveredChangeWithNoRejoinAfterItIsLost) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.deliver(1, 105);
  w.commit(2, 200, "r2");
  w.final_cache_is_db();
  auto r = w.run();
  EXPECT_EQ(r.lost_no_rejoin, 1u) << r.summary();
  EXPECT_FALSE(r.ok());
}

TEST(ChaosChecker, AResumedRejoinMustReplayWhatWasMissed) {
  World w;
  w.outage_after_r1();
  w.rejoin(1000, /*gap=*/false);
  w.deliver(2, 1001);
  w.deliver(3, 1002);
  w.final_cache_is_db();
  auto ok = w.run();
  EXPECT_TRUE(ok.ok()) << ok.summary();
  EXPECT_EQ(ok.resumed, 1u);
  EXPECT_EQ(ok.told_gaps, 0u);

  // The same resume without replaying r3: lost, whatever a refetch shows.
  w.client.deliveries.pop_back();
  w.fetch(1003, 1010, 1003);
  auto lost = w.run();
  EXPECT_EQ(lost.lost_resumed, 1u) << lost.summary();
  EXPECT_FALSE(lost.ok());
}

// Chaos seed 40354: a resume announced its replay, the consumer stalled again after a few of its
// changes and was dropped, and the next rejoin — from the last change applied — told a gap and
// refetched. The changes the cut replay never reached were accounted for by that gap.
TEST(ChaosChecker, AResumeCutShortBeforeAChangeLeavesItToTheNextRejoin) {
  // r2, r3 and r4 missed; the resume at 1 s announces `replayed` of them, and r2 arrives.
  auto resumed = [](std::int64_t replayed) {
    World w;
    w.outage_after_r1();
    w.commit(4, 400, "r4");
    w.rejoin(1000, /*gap=*/false, replayed);
    w.deliver(2, 1001);
    return w;
  };
  {
    // Cut short after r2, and the next rejoin told a gap: r3, r4 (and r5, sent while down) are
    // covered by it.
    World w = resumed(3);
    w.commit(5, 1100, "r5");
    w.down_then_told_gap(1050);
    w.final_cache_is_db();
    auto r = w.run();
    EXPECT_TRUE(r.ok()) << r.summary();
    EXPECT_EQ(r.covered_by_gap, 3u) << r.summary();
    EXPECT_EQ(r.delivered_once, 2u);
  }
  {
    // The session went on past r3 without it: the replay skipped it.
    World w = resumed(3);
    w.deliver(4, 1003);
    w.down_then_told_gap(1050);
    w.final_cache_is_db();
    auto r = w.run();
    EXPECT_EQ(r.lost_resumed, 1u) << r.summary();
    EXPECT_FALSE(r.ok());
  }
  {
    // The replay announced only r2 and delivered it: it was complete, and hid r3 and r4.
    World w = resumed(1);
    w.down_then_told_gap(1050);
    w.final_cache_is_db();
    EXPECT_EQ(w.run().lost_resumed, 2u) << w.run().summary();
  }
  {
    // Cut short, and no rejoin after it: nothing ever accounted for r3 and r4.
    World w = resumed(3);
    w.fetch(1002, 1010, 1002);
    w.final_cache_is_db();
    EXPECT_EQ(w.run().lost_resumed, 2u) << w.run().summary();
  }
}

TEST(ChaosChecker, DuplicatesInASessionOrAcrossAResumeAreFindingsRedeliveryAfterAGapIsNot) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.deliver(1, 105);
  w.deliver(1, 106);
  w.final_cache_is_db();
  auto same_session = w.run();
  EXPECT_EQ(same_session.duplicates, 1u);
  EXPECT_FALSE(same_session.ok());

  World g;
  g.rejoin(0);
  g.commit(1, 100, "r1");
  g.deliver(1, 105);
  g.down(150);
  g.rejoin(1000);  // told gap (a restarted server re-sent what its slot had not confirmed)
  g.deliver(1, 1001);
  g.fetch(1001, 1010, 1001);
  g.final_cache_is_db();
  auto today = g.run();
  EXPECT_TRUE(today.ok()) << today.summary();
  EXPECT_EQ(today.redelivered, 1u);
  CheckOptions strict;
  strict.strict_once = true;
  EXPECT_EQ(g.run(strict).duplicates, 1u);

  g.client.rejoins.back().gap = false;  // a resume must never re-send
  EXPECT_EQ(g.run().duplicates, 1u);
}

TEST(ChaosChecker, ALaterChangeBeforeAnEarlierOneInASessionIsReordered) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.commit(2, 101, "r2");
  w.deliver(2, 110);
  w.deliver(1, 111);
  w.final_cache_is_db();
  auto r = w.run();
  EXPECT_EQ(r.reordered, 1u);
  EXPECT_FALSE(r.ok());
}

TEST(ChaosChecker, AnythingOfAnotherProjectOrUserIsALeak) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "b1", Op::insert, kOtherProject, kOther);
  w.deliver(1, 110);  // the victim's client received Bob's change
  w.client.fetches.push_back(Fetch{at(120), at(130), true, {{"b1", {kOtherProject, 1}}}});
  w.final_cache_is_db();
  auto r = w.run();
  EXPECT_EQ(r.leaked, 2u) << r.summary();
  EXPECT_EQ(r.expected, 0u);  // Bob's change is not the victim's to account for
  EXPECT_FALSE(r.ok());

  ClientHistory attacker;
  attacker.user_id = kOther;
  attacker.project_id = kScope;
  std::vector<std::string> problems;
  EXPECT_EQ(check_attacker(attacker, problems), 0u);
  attacker.deliveries.push_back(Delivery{5, "a1", Op::insert, kScope, at(1)});
  attacker.final_cache = Rows{{"a1", {kScope, 5}}};
  EXPECT_EQ(check_attacker(attacker, problems), 2u);
  EXPECT_EQ(problems.size(), 2u);
}

TEST(ChaosChecker, UnboundOperationsAndOtherScopesAreNotExpected) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.deliver(1, 101);
  w.commit(2, 200, "r1", Op::remove);  // the task binding has no DELETE registration
  w.db.erase("r1");
  w.commit(3, 300, "x1", Op::insert, "project-a2", kUser);  // the user's other project
  w.final_cache_is_db();
  auto r = w.run();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.expected, 1u);
  EXPECT_EQ(r.committed, 3u);
}

TEST(ChaosChecker, AStaleFinalCacheIsAFinding) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.deliver(1, 101);
  w.commit(2, 200, "r1", Op::update);
  w.deliver(2, 201);
  w.client.final_cache = Rows{{"r1", {kScope, 1}}};  // never refetched after seq 2
  auto r = w.run();
  EXPECT_FALSE(r.final_cache_matches);
  EXPECT_NE(r.final_cache_diff.find("cache seq 1, database seq 2"), std::string::npos)
      << r.final_cache_diff;
  EXPECT_FALSE(r.ok());
}

TEST(ChaosChecker, ConvergenceIsWhenTheLastChangeBeforeTheHealWasAccountedFor) {
  World w;
  w.rejoin(0);
  w.commit(1, 100, "r1");
  w.deliver(1, 101);
  w.down(150);
  w.commit(2, 200, "r2");
  w.rejoin(2500);
  w.fetch(2501, 3500, 2501);  // covers r2, finished 1.5 s after the heal
  w.commit(3, 4000, "r3");    // after the heal: not part of convergence
  w.deliver(3, 9000);
  w.final_cache_is_db();
  CheckOptions o;
  o.healed = at(2000);
  auto r = w.run(o);
  ASSERT_TRUE(r.convergence.has_value()) << r.summary();
  EXPECT_EQ(r.convergence->count(), 1500);

  // A lost change leaves convergence unknown.
  w.client.fetches.clear();
  EXPECT_FALSE(w.run(o).convergence.has_value());
}

}  // namespace
}  // namespace rtsync::chaos
