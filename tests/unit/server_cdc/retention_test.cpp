// MessageRetention on virtual time: the first run at start, the cutoff exactly `retention` before
// the wall clock, the next run exactly one interval after a run ended, batches until one is short,
// failures that wait for the next interval.
#include "rtsync/server/cdc/message_retention.hpp"

#include <gtest/gtest.h>

#include <deque>

#include "rtsync/core/manual_scheduler.hpp"
#include "rtsync/server/cdc/names.hpp"

namespace rtsync::server::cdc {
namespace {

using namespace std::chrono_literals;

// Deletes answered in order from `answers` (0 when none is left); `defer` holds them.
class ScriptedStore final : public MessageStore {
 public:
  std::vector<std::pair<std::int64_t, std::size_t>> calls;  // (cutoff_ms, max_rows)
  std::deque<Result<std::size_t>> answers;
  bool defer = false;
  std::deque<DeleteCallback> held;

  void replay(std::string, std::int64_t, std::int64_t, std::vector<std::uint32_t>,
              ReplayCallback done) override {
    done(std::vector<StoredMessage>{});
  }
  void delete_before(std::int64_t cutoff_ms, std::size_t max_rows, DeleteCallback done) override {
    calls.emplace_back(cutoff_ms, max_rows);
    if (defer) return held.push_back(std::move(done));
    done(next());
  }
  void release() {
    auto d = std::move(held.front());
    held.pop_front();
    d(next());
  }

 private:
  Result<std::size_t> next() {
    if (answers.empty()) return std::size_t{0};
    auto r = std::move(answers.front());
    answers.pop_front();
    return r;
  }
};

std::int64_t wall_ms(const core::ManualScheduler& s) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(s.wall_now().time_since_epoch())
      .count();
}

constexpr std::int64_t k72h = 72LL * 3600 * 1000;

TEST(MessageRetention, FirstRunAtStartCutsOffExactlyTheRetentionPeriodBeforeNow) {
  core::ManualScheduler sched;
  ScriptedStore store;
  MessageRetention r(sched, store, {});
  r.start();
  r.start();  // idempotent
  EXPECT_TRUE(store.calls.empty()) << "posted, not run inside start()";
  sched.run_ready();
  ASSERT_EQ(store.calls.size(), 1u);
  EXPECT_EQ(store.calls[0].first, wall_ms(sched) - k72h);
  EXPECT_EQ(store.calls[0].second, 10'000u);
  EXPECT_EQ(r.runs(), 1u);
  EXPECT_FALSE(r.running());
}

TEST(MessageRetention, TheNextRunComesExactlyOneIntervalAfterARunEnded) {
  core::ManualScheduler sched;
  ScriptedStore store;
  store.defer = true;
  MessageRetentionOptions o;
  o.interval = 10min;
  MessageRetention r(sched, store, o);
  r.start();
  sched.run_ready();
  ASSERT_EQ(store.calls.size(), 1u);
  // The run takes 3 s of database time; the interval counts from its end.
  sched.advance(3s);
  EXPECT_FALSE(sched.pending(timers::Retention)) << "no next run while one is in flight";
  store.release();
  EXPECT_TRUE(sched.pending(timers::Retention));
  EXPECT_EQ(sched.time_until(timers::Retention), core::Duration(10min));
  sched.advance(10min - 1ns);
  EXPECT_EQ(store.calls.size(), 1u);
  sched.advance(1ns);
  ASSERT_EQ(store.calls.size(), 2u);
  EXPECT_EQ(store.calls[1].first, wall_ms(sched) - k72h) << "the cutoff moves with the wall clock";
  EXPECT_EQ(store.calls[1].first - store.calls[0].first, (3s + 10min) / 1ms);
}

TEST(MessageRetention, FullBatchesAreFollowedByMoreWithTheSameCutoffUntilOneIsShort) {
  core::ManualScheduler sched;
  ScriptedStore store;
  store.answers = {std::size_t{3}, std::size_t{3}, std::size_t{1}};
  MessageRetentionOptions o;
  o.batch_rows = 3;
  MessageRetention r(sched, store, o);
  std::optional<Result<std::size_t>> result;
  r.run_now([&](Result<std::size_t> n) { result = std::move(n); });
  ASSERT_EQ(store.calls.size(), 1u);
  EXPECT_TRUE(r.running());
  sched.advance(1s);  // each further batch waits for a loop turn, behind queued work
  sched.run_ready();
  sched.run_ready();
  ASSERT_EQ(store.calls.size(), 3u);
  EXPECT_EQ(store.calls[1].first, store.calls[0].first);
  EXPECT_EQ(store.calls[2].first, store.calls[0].first);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->value(), 7u);
  EXPECT_EQ(r.deleted(), 7u);
  EXPECT_EQ(r.runs(), 1u);
}

TEST(MessageRetention, AFailedBatchEndsTheRunAndTheNextRunWaitsOneInterval) {
  core::ManualScheduler sched;
  ScriptedStore store;
  store.answers = {make_error(Errc::io, "connection refused")};
  MessageRetention r(sched, store, {});
  r.start();
  sched.run_ready();
  EXPECT_EQ(r.failures(), 1u);
  EXPECT_FALSE(r.running());
  EXPECT_EQ(sched.time_until(timers::Retention), core::Duration(10min));
  sched.advance(10min);
  EXPECT_EQ(store.calls.size(), 2u);
  EXPECT_EQ(r.failures(), 1u);
}

TEST(MessageRetention, RunNowDuringARunWaitsForThatRun) {
  core::ManualScheduler sched;
  ScriptedStore store;
  store.defer = true;
  MessageRetention r(sched, store, {});
  int answered = 0;
  r.run_now([&](Result<std::size_t>) { ++answered; });
  r.run_now([&](Result<std::size_t>) { ++answered; });
  EXPECT_EQ(store.calls.size(), 1u);
  store.release();
  EXPECT_EQ(answered, 2);
}

TEST(MessageRetention, ZeroRetentionKeepsEverythingAndStopEndsTheSchedule) {
  core::ManualScheduler sched;
  ScriptedStore store;
  MessageRetentionOptions off;
  off.retention = core::Duration::zero();
  MessageRetention none(sched, store, off);
  none.start();
  sched.advance(24h);
  EXPECT_TRUE(store.calls.empty());

  MessageRetention r(sched, store, {});
  r.start();
  sched.run_ready();
  EXPECT_EQ(store.calls.size(), 1u);
  r.stop();
  sched.advance(24h);
  EXPECT_EQ(store.calls.size(), 1u);
}

}  // namespace
}  // namespace rtsync::server::cdc
