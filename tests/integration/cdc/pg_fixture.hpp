// Pieces of the change-stream integration tests: the shared PostgreSQL fixture
// (tests/support/pg_suite.hpp) bootstrapped once per suite, and a recording ChangeSink.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/server/change_feed.hpp"
#include "rtsync/server/pg/bootstrap.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/testkit/temp_cluster.hpp"
#include "support/pg_suite.hpp"

namespace rtsync::test {

// The users of these suites' fixtures (the `sub` of their tokens).
inline constexpr const char* kAlice = "11111111-1111-1111-1111-111111111111";
inline constexpr const char* kBob = "22222222-2222-2222-2222-222222222222";

// The JWT claims of an authenticated user, as text (request.jwt.claims).
inline std::string claims(const char* sub) {
  return std::string(R"({"sub":")") + sub + R"(","role":"authenticated"})";
}

using namespace std::chrono_literals;

// Records what the stream hands over. With `auto_done`, acknowledges at once; otherwise keeps the
// `done` callbacks for the test to call.
class RecordingSink : public server::ChangeSink {
 public:
  bool auto_done = true;
  std::vector<std::shared_ptr<const server::Transaction>> txns;
  std::vector<std::function<void()>> pending;
  std::vector<std::pair<bool, std::string>> states;
  int outstanding = 0;              // delivered, done not yet called
  int overlapping_deliveries = 0;   // deliveries while another was outstanding
  std::size_t in_flight_limit = 1;  // what max_in_flight() answers
  int max_outstanding = 0;

  std::size_t max_in_flight() const override { return in_flight_limit; }

  void on_transaction(std::shared_ptr<const server::Transaction> txn,
                      std::function<void()> done) override {
    if (outstanding > 0) ++overlapping_deliveries;
    ++outstanding;
    max_outstanding = std::max(max_outstanding, outstanding);
    txns.push_back(std::move(txn));
    auto wrapped = [this, done = std::move(done)] {
      --outstanding;
      done();
    };
    if (auto_done) {
      wrapped();
    } else {
      pending.push_back(std::move(wrapped));
    }
  }
  void on_stream_state(bool running, const std::string& reason) override {
    states.emplace_back(running, reason);
  }

  void done_all() {
    auto p = std::move(pending);
    pending.clear();
    for (auto& d : p)
      if (d) d();
  }
  // Calls `done` of the i-th transaction held back (in delivery order), leaving the others.
  void done_at(std::size_t i) {
    if (i >= pending.size() || !pending[i]) return;
    auto d = std::move(pending[i]);
    pending[i] = nullptr;
    d();
  }
  std::size_t change_count() const {
    std::size_t n = 0;
    for (const auto& t : txns)
      n += t->changes.size();
    return n;
  }
  bool running() const { return !states.empty() && states.back().first; }
};

// One throwaway PostgreSQL per test suite (tests/support/pg_suite.hpp), bootstrapped once.
class PgSuite : public PgSuiteBase<PgSuite> {
 public:
  // Every test makes its own slot; running a whole suite in one process needs more than 10.
  static testkit::TempClusterOptions cluster_options() {
    testkit::TempClusterOptions options;
    options.extra_config = {"max_replication_slots = 40", "max_wal_senders = 40"};
    return options;
  }
  static Result<void> after_start(testkit::TempCluster& cluster) {
    first_report().reset();
    auto conn = server::pg::Connection::open(cluster.conninfo());
    if (!conn) return conn.error();
    server::pg::BootstrapOptions bo;
    bo.create_slot = false;  // each test makes its own slot: tests stay independent
    auto report = server::pg::bootstrap(conn.value(), bo);
    if (!report) return report.error();
    first_report() = report.value();
    return {};
  }

 protected:
  // A fresh pgoutput slot named after the running test.
  std::string make_slot() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "t_";
    for (char ch : std::string(info->name())) {
      name.push_back(ch >= 'A' && ch <= 'Z'
                         ? static_cast<char>(ch - 'A' + 'a')
                         : (std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_'));
    }
    name = name.substr(0, 60);
    auto r = db.exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", {name});
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
    return name;
  }
  server::Lsn slot_confirmed(const std::string& slot) {
    auto r = db.exec("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1",
                     {slot});
    if (!r.ok() || r->rows() != 1 || r->is_null(0, 0)) return 0;
    auto lsn = server::parse_lsn(r->value(0, 0));
    return lsn ? *lsn : 0;
  }

  static std::optional<server::pg::BootstrapReport>& first_report() {
    static std::optional<server::pg::BootstrapReport> r;
    return r;
  }
};

}  // namespace rtsync::test
