// The "subscribe hole" check (realtime-js#525: a row committed right after SUBSCRIBED never
// arrives, because Supabase Realtime answers the join before the subscription is live for the
// replication stream). Each trial joins a fresh channel filtered to one row id, and the moment the
// join reply says ok — when realtime-js reports SUBSCRIBED — commits that row; the row's INSERT
// must then arrive on the channel. Lanes run trials in parallel, each on its own socket and
// PostgreSQL connection, against one in-process server on a real PostgreSQL, through row-level
// security (the rows belong to the subscriber).
//
// Trials: RTSYNC_CHAOS_SUBSCRIBE_TRIALS (default 10,000; docs/chaos.md has the timing).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "realtime_helpers.hpp"
#include "rtsync/core/json.hpp"
#include "rtsync/protocol/postgres_changes.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::testkit {
namespace {

using namespace std::chrono_literals;

const std::string kOwner = "44444444-4444-4444-4444-444444444444";

int trials_from_env(int fallback) {
  const char* s = std::getenv("RTSYNC_CHAOS_SUBSCRIBE_TRIALS");
  return s && *s ? std::max(1, std::atoi(s)) : fallback;
}

struct Miss {
  std::int64_t id = 0;
  std::string what;
};

TEST(SubscribeThenWrite, EveryRowCommittedRightAfterTheJoinReplyIsDelivered) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.hole (id bigint primary key, owner uuid not null, body text);
    alter table public.hole enable row level security;
    create policy own_hole on public.hole for select to authenticated using (owner = auth.uid());
    grant select on public.hole to authenticated;
    alter publication supabase_realtime add table public.hole;)"));

  const int trials = trials_from_env(10'000);
  const int lanes = 16;
  const std::string token = s->key("authenticated", 1h, kOwner);
  std::atomic<int> next{0};
  std::atomic<int> delivered{0};
  std::mutex mutex;
  std::vector<Miss> misses;
  std::vector<std::string> lane_errors;
  std::vector<double> latencies_ms;  // commit → event, per trial

  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int lane = 0; lane < lanes; ++lane) {
    threads.emplace_back([&, lane] {
      auto fail_lane = [&](std::string what) {
        std::lock_guard lock(mutex);
        lane_errors.push_back("lane " + std::to_string(lane) + ": " + what);
      };
      auto ws = WsClient::connect_key(s->port(), s->anon_key());
      if (!ws.ok()) return fail_lane("connect: " + ws.error().describe());
      auto& c = *ws.value();
      auto db = server::pg::Connection::open(s->conninfo());
      if (!db.ok()) return fail_lane("database: " + db.error().describe());
      std::vector<double> mine;
      auto last_heartbeat = std::chrono::steady_clock::now();
      // Twenty misses say enough (each waits 10 s): stop every lane.
      auto enough = [&] {
        std::lock_guard lock(mutex);
        return misses.size() >= 20;
      };
      for (int k = next++; k < trials && !enough(); k = next++) {
        const std::int64_t id = k + 1;
        const std::string topic = "realtime:hole-" + std::to_string(id);
        json::object config{{"broadcast", json::object{{"ack", false}, {"self", false}}},
                            {"presence", json::object{{"key", ""}, {"enabled", false}}},
                            {"postgres_changes",
                             json::array{binding("INSERT", "hole", "id=eq." + std::to_string(id))}},
                            {"private", false}};
        auto reply = c.join(topic, std::move(config), token);
        if (!reply || core::find_string(reply->payload, "status") != "ok") {
          std::lock_guard lock(mutex);
          misses.push_back({id, "join refused or unanswered"});
          continue;
        }
        // SUBSCRIBED as realtime-js sees it: commit at once.
        auto ins =
            db->exec("insert into public.hole values ($1, $2, 'x')", {std::to_string(id), kOwner});
        const auto committed = std::chrono::steady_clock::now();
        if (!ins.ok()) return fail_lane("insert: " + ins.error().describe());
        auto ev = c.wait_for(
            [&](const protocol::Message& m) {
              if (m.event != "postgres_changes" || m.topic != topic) return false;
              auto e = protocol::parse_change_event(m.payload);
              return e.ok() && e.value().data.record && id_of(*e.value().data.record) == id;
            },
            10s);
        if (!ev) {
          std::lock_guard lock(mutex);
          misses.push_back({id, "no INSERT within 10 s of the commit"});
        } else {
          ++delivered;
          mine.push_back(std::chrono::duration<double, std::milli>(
                             std::chrono::steady_clock::now() - committed)
                             .count());
        }
        c.send(
            protocol::Message{c.join_ref(topic), c.next_ref(), topic, "phx_leave", json::object{}});
        if (std::chrono::steady_clock::now() - last_heartbeat > 10s) {
          c.send_text(R"([null,"hb","phoenix","heartbeat",{}])");
          last_heartbeat = std::chrono::steady_clock::now();
        }
      }
      std::lock_guard lock(mutex);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads)
    t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms.empty()
               ? -1.0
               : latencies_ms[static_cast<std::size_t>(p * (latencies_ms.size() - 1))];
  };
  std::cout << "subscribe-then-write: " << trials << " trials on " << lanes << " lanes in "
            << seconds << " s: delivered " << delivered << ", missed " << misses.size()
            << "; commit→event p50 " << pct(0.5) << " ms, p99 " << pct(0.99) << " ms, max "
            << pct(1.0) << " ms" << std::endl;
  for (const auto& e : lane_errors)
    ADD_FAILURE() << e;
  for (std::size_t i = 0; i < misses.size() && i < 20; ++i)
    ADD_FAILURE() << "row " << misses[i].id << ": " << misses[i].what;
  EXPECT_EQ(delivered.load(), trials);
  EXPECT_TRUE(misses.empty());
}

}  // namespace
}  // namespace rtsync::testkit
