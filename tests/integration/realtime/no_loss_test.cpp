// A bad day for the operator: PostgreSQL restarts (fast, immediate) or is down for 10 s while an
// application keeps committing. Every committed row must reach every subscriber allowed to see it
// exactly once and in commit order — in particular the rows committed just before the outage,
// which are decoded while the server's row authorizer cannot reach PostgreSQL: delivery waits for
// it and resumes, it does not drop them (rtsync_drops_total{reason="authorizer_failed"}).
//
// Each test: a writer thread commits single-row INSERTs every 10 ms on its own connection
// (reconnecting after a failure; a commit whose outcome is unknown is settled by reading the
// table at the end), subscribers read on their own threads, the outage happens mid-stream, and
// the table is the truth afterwards.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "realtime_helpers.hpp"
#include "rtsync/server/pg/connection.hpp"

namespace rtsync::testkit {
namespace {

using StopMode = testkit::TempCluster::StopMode;

const std::string kAlice = "11111111-1111-1111-1111-111111111111";
const std::string kBob = "22222222-2222-2222-2222-222222222222";

// Commits `insert into feed values (<n>, <owner>, …)` with n = 1, 2, 3, … (even n: Alice's, odd:
// Bob's) one transaction at a time, so commit order is id order. An id whose INSERT failed is not
// reused: it either committed or not, and the table says which.
class SteadyWriter {
 public:
  SteadyWriter(std::string conninfo, std::chrono::milliseconds every)
      : conninfo_(std::move(conninfo)), every_(every) {}
  ~SteadyWriter() { stop(); }

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int committed() const { return committed_; }
  int failed() const { return failed_; }

 private:
  void run() {
    std::optional<server::pg::Connection> conn;
    std::int64_t id = 0;
    while (!stop_) {
      if (!conn) {
        auto c = server::pg::Connection::open(conninfo_, {{"connect_timeout", "2"}});
        if (!c.ok()) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
        conn.emplace(std::move(c.value()));
      }
      ++id;
      auto r = conn->exec(
          "insert into feed values ($1, $2, $3)",
          {std::to_string(id), id % 2 == 0 ? kAlice : kBob, "row " + std::to_string(id)});
      if (r.ok()) {
        ++committed_;
        std::this_thread::sleep_for(every_);
      } else {
        ++failed_;
        conn.reset();
        std::this_thread::sleep_for(50ms);
      }
    }
  }

  std::string conninfo_;
  std::chrono::milliseconds every_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> committed_{0};
  std::atomic<int> failed_{0};
};

// One websocket subscriber reading on its own thread: the ids of the INSERTs it receives on its
// channel, in arrival order.
class Subscriber {
 public:
  Subscriber(std::string name, std::unique_ptr<WsClient> client)
      : name_(std::move(name)), client_(std::move(client)) {}
  ~Subscriber() { stop(); }

  const std::string& name() const { return name_; }
  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::int64_t> ids() const {
    std::lock_guard lock(mutex_);
    return ids_;
  }
  bool closed() const { return closed_; }

 private:
  void run() {
    auto last_heartbeat = std::chrono::steady_clock::now();
    while (!stop_ && !client_->closed()) {
      // The socket must not look idle to the server (it only reads otherwise).
      if (std::chrono::steady_clock::now() - last_heartbeat > 5s) {
        client_->send_text(R"([null,"hb","phoenix","heartbeat",{}])");
        last_heartbeat = std::chrono::steady_clock::now();
      }
      auto m = client_->next(200ms);
      if (!m || m->event != "postgres_changes") continue;
      auto ev = protocol::parse_change_event(m->payload);
      if (!ev.ok() || !ev.value().data.record) continue;
      std::lock_guard lock(mutex_);
      ids_.push_back(id_of(*ev.value().data.record));
    }
    closed_ = client_->closed();
  }

  std::string name_;
  std::unique_ptr<WsClient> client_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};
  mutable std::mutex mutex_;
  std::vector<std::int64_t> ids_;
};

std::vector<std::int64_t> parse_ids(std::string_view csv) {
  std::vector<std::int64_t> out;
  while (!csv.empty()) {
    auto comma = csv.find(',');
    out.push_back(std::stoll(std::string(csv.substr(0, comma))));
    csv = comma == std::string_view::npos ? std::string_view() : csv.substr(comma + 1);
  }
  return out;
}

// The writer runs for 2 s, then a large transaction commits and `outage` happens at once, then
// the writer runs 3 s more. Subscribers: Alice and
// Bob on the RLS table `feed` (each sees only their own rows), Carol on `feed_plain` (no RLS, a
// copy of every row made by a trigger in the same transaction).
void run_outage_scenario(const std::function<void(TestStack&)>& outage) {
  auto s = start_stack();
  ASSERT_TRUE(s);
  REQUIRE_OK(s->sql(R"(
    create table public.feed (id bigint primary key, owner uuid not null, body text);
    alter table public.feed enable row level security;
    create policy own_feed on public.feed for select to authenticated using (owner = auth.uid());
    grant select on public.feed to authenticated;
    create table public.feed_plain (id bigint primary key);
    grant select on public.feed_plain to authenticated;
    create function public.copy_feed() returns trigger language plpgsql as $$
      begin insert into public.feed_plain values (new.id); return new; end $$;
    create trigger copy_feed after insert on public.feed
      for each row execute function public.copy_feed();
    create table public.batch (id bigint, pad text);
    alter publication supabase_realtime add table public.feed, public.feed_plain, public.batch;)"));

  std::vector<std::unique_ptr<Subscriber>> subs;
  auto subscribe = [&](const std::string& name, const std::string& uid, const std::string& table) {
    auto c = connect(*s, s->anon_key());
    if (!c) return false;
    if (!c->join_pg("realtime:" + table, json::array{binding("INSERT", table)},
                    s->key("authenticated", 1h, uid))) {
      return false;
    }
    subs.push_back(std::make_unique<Subscriber>(name, std::move(c)));
    subs.back()->start();
    return true;
  };
  ASSERT_TRUE(subscribe("alice", kAlice, "feed"));
  ASSERT_TRUE(subscribe("bob", kBob, "feed"));
  ASSERT_TRUE(subscribe("carol", "33333333-3333-3333-3333-333333333333", "feed_plain"));

  SteadyWriter writer(s->conninfo(), 10ms);
  writer.start();
  std::this_thread::sleep_for(2s);
  // A batch job's large transaction commits just before the outage: the application's commits
  // right behind it in the WAL are still being decoded (and so authorized) while PostgreSQL shuts
  // down, which is when the row authorizer's connections are gone.
  REQUIRE_OK(
      s->sql("insert into batch select g, repeat('x', 100) from generate_series(1, 100000) g;"));
  outage(*s);
  std::this_thread::sleep_for(3s);
  writer.stop();
  ASSERT_TRUE(s->pg().running());

  // The table is the truth (a commit whose reply the outage cut off may or may not be in it).
  std::optional<std::vector<std::int64_t>> in_table;
  for (int attempt = 0; attempt < 50 && !in_table; ++attempt) {
    auto v = s->sql_value("select coalesce(string_agg(id::text, ',' order by id), '') from feed");
    if (v.ok()) {
      in_table = parse_ids(v.value());
    } else {
      std::this_thread::sleep_for(100ms);
    }
  }
  ASSERT_TRUE(in_table) << "cannot read the table back";
  const std::vector<std::int64_t>& all = *in_table;
  std::vector<std::int64_t> even, odd;
  for (auto id : all)
    (id % 2 == 0 ? even : odd).push_back(id);
  const std::vector<std::pair<Subscriber*, const std::vector<std::int64_t>*>> expect{
      {subs[0].get(), &even}, {subs[1].get(), &odd}, {subs[2].get(), &all}};

  // Wait (bounded) until every subscriber has every row; give up early once nothing has arrived
  // for 10 s — rows dropped by the server never come.
  const auto deadline = std::chrono::steady_clock::now() + 45s;
  auto last_progress = std::chrono::steady_clock::now();
  std::size_t last_total = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    bool complete = true;
    std::size_t total = 0;
    for (const auto& [sub, want] : expect) {
      auto got = sub->ids();
      total += got.size();
      std::set<std::int64_t> have(got.begin(), got.end());
      complete = complete && std::includes(have.begin(), have.end(), want->begin(), want->end());
    }
    if (complete) break;
    if (total != last_total) {
      last_total = total;
      last_progress = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_progress > 10s) {
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  std::this_thread::sleep_for(1s);  // a duplicate would arrive now
  for (auto& sub : subs)
    sub->stop();

  EXPECT_GE(all.size(), 150u) << "the writer committed steadily";
  EXPECT_GE(writer.failed(), 1) << "the outage cut the writer's connection (it hit mid-stream)";
  for (const auto& [sub, want] : expect) {
    const auto got = sub->ids();
    std::vector<std::int64_t> sorted = got;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> dups;
    for (std::size_t i = 1; i < sorted.size(); ++i) {
      if (sorted[i] == sorted[i - 1]) dups.push_back(sorted[i]);
    }
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::vector<std::int64_t> missing, extra;
    std::set_difference(want->begin(), want->end(), sorted.begin(), sorted.end(),
                        std::back_inserter(missing));
    std::set_difference(sorted.begin(), sorted.end(), want->begin(), want->end(),
                        std::back_inserter(extra));
    auto first = [](const std::vector<std::int64_t>& v) {
      std::string out;
      for (std::size_t i = 0; i < v.size() && i < 8; ++i)
        out += (i ? "," : "") + std::to_string(v[i]);
      return out;
    };
    EXPECT_TRUE(missing.empty()) << sub->name() << ": " << missing.size() << " of " << want->size()
                                 << " committed rows never arrived, first " << first(missing);
    EXPECT_TRUE(dups.empty()) << sub->name() << ": " << dups.size() << " rows arrived twice, first "
                              << first(dups);
    EXPECT_TRUE(extra.empty()) << sub->name() << ": " << extra.size()
                               << " rows that are not its to see or not in the table, first "
                               << first(extra);
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()))
        << sub->name() << ": rows arrived out of commit order";
    EXPECT_FALSE(sub->closed()) << sub->name() << ": the socket was closed";
  }
  const auto metrics = s->server().metrics_text();
  EXPECT_EQ(drops_in(metrics, "authorizer_failed"), 0u)
      << "committed rows dropped because the row authorizer could not reach PostgreSQL";
}

TEST(RealtimeNoLoss, CommitThenFastRestartLosesAndDuplicatesNothing) {
  run_outage_scenario([](TestStack& s) { REQUIRE_OK(s.pg().restart(StopMode::fast)); });
}

TEST(RealtimeNoLoss, CommitThenImmediateRestartLosesAndDuplicatesNothing) {
  run_outage_scenario([](TestStack& s) { REQUIRE_OK(s.pg().restart(StopMode::immediate)); });
}

TEST(RealtimeNoLoss, PostgresDownForTenSecondsLosesAndDuplicatesNothing) {
  run_outage_scenario([](TestStack& s) {
    REQUIRE_OK(s.pg().stop(StopMode::fast));
    std::this_thread::sleep_for(10s);
    REQUIRE_OK(s.pg().start());
  });
}

}  // namespace
}  // namespace rtsync::testkit
