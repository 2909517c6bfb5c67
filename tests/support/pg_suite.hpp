// The PostgreSQL fixture every integration suite shares: one throwaway cluster (TempCluster) per
// test suite, started in SetUpTestSuite and removed in TearDownTestSuite, a connection per test,
// and helpers that fail the test on a SQL error; plus TestLoop, an io_context the test thread
// drives until a condition holds (bounded, never a fixed sleep).
//
//   class MySuite : public rtsync::test::PgSuiteBase<MySuite> {
//    public:
//     static testkit::TempClusterOptions cluster_options() { return testkit::with_migrations(); }
//     static Result<void> after_start(testkit::TempCluster&) { return {}; }  // optional
//   };
//
// Every ctest entry is its own process, so "per suite" is one cluster per test in ctest; a suite
// run as one binary shares it. `cluster_options()` picks the starting point: a fresh cluster
// (the default), or the migrated template (testkit::with_migrations) so a test skips the
// migration. Tests that need a cluster of their own to stop, kill or restart create one
// (TempCluster::create) as before.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rtsync/core/event_loop.hpp"
#include "rtsync/server/pg/connection.hpp"
#include "rtsync/testkit/temp_cluster.hpp"

namespace rtsync::test {

using namespace std::chrono_literals;

// An io_context driven by the test thread. `run_until` processes real events (sockets, timers)
// until `pred` holds or `timeout` passes — never a fixed sleep.
struct TestLoop {
  boost::asio::io_context io;
  core::AsioScheduler sched{io};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      boost::asio::make_work_guard(io)};

  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io.run_one_for(20ms);
    }
    return true;
  }
  // Lets already-due work run (bounded) without waiting for anything new.
  void poll() { io.poll(); }
};

// `Suite` may declare `static testkit::TempClusterOptions cluster_options()` and
// `static Result<void> after_start(testkit::TempCluster&)` (run once the cluster is up; its error
// fails every test of the suite).
template <class Suite>
class PgSuiteBase : public ::testing::Test {
 public:
  static testkit::TempClusterOptions cluster_options() { return {}; }
  static Result<void> after_start(testkit::TempCluster&) { return {}; }

 protected:
  static void SetUpTestSuite() {
    setup_error().clear();
    auto c = testkit::TempCluster::create(Suite::cluster_options());
    if (!c) {
      setup_error() = c.error().describe();
      return;
    }
    cluster() = std::move(c).value();
    if (auto r = Suite::after_start(*cluster()); !r) setup_error() = r.error().describe();
  }
  // Stopped here, not at exit: TempCluster's own registry is a static that may be gone by then.
  static void TearDownTestSuite() { cluster().reset(); }

  void SetUp() override {
    ASSERT_TRUE(cluster()) << setup_error();
    ASSERT_TRUE(setup_error().empty()) << setup_error();
    auto c = server::pg::Connection::open(conninfo());
    ASSERT_TRUE(c.ok()) << c.error().describe();
    db = std::move(c).value();
  }

  static std::string conninfo(std::string_view dbname = "postgres") {
    return cluster()->conninfo(dbname);
  }

  // Runs SQL (script, no parameters) and fails the test on error.
  void sql(std::string_view text) {
    auto r = db.exec_script(text);
    ASSERT_TRUE(r.ok()) << text << "\n" << r.error().describe();
  }
  server::pg::PgResult query(std::string_view text,
                             const std::vector<server::pg::Param>& params = {}) {
    auto r = db.exec(text, params);
    EXPECT_TRUE(r.ok()) << text << "\n" << (r.ok() ? "" : r.error().describe());
    return r.ok() ? std::move(r).value() : server::pg::PgResult();
  }
  // First column of the first row ("" when there is none).
  std::string scalar(std::string_view text, const std::vector<server::pg::Param>& params = {}) {
    auto r = query(text, params);
    return r.empty() || r.rows() == 0 ? std::string() : std::string(r.value(0, 0));
  }

  static std::unique_ptr<testkit::TempCluster>& cluster() {
    static std::unique_ptr<testkit::TempCluster> c;
    return c;
  }
  static std::string& setup_error() {
    static std::string e;
    return e;
  }

  server::pg::Connection db;
};

}  // namespace rtsync::test
