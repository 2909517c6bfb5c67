// The chaos suite's application: one thread on one connection straight to PostgreSQL (not through
// any proxy) committing INSERTs and UPDATEs of public.tasks at a steady rate across every project,
// in transactions of 1..N changes. Each change writes the writer's next sequence number into the
// row (`params.chaos_seq`), so commit order is sequence order and an event names its change.
//
// The audit trigger (world.cpp) records what committed; the writer records when it sent each
// COMMIT and when it saw the outcome. A commit whose outcome the connection lost is settled by the
// audit table; its rows are never updated afterwards.
//
// Thread safety: start()/stop()/log() from the harness thread; the writer runs on its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "checker.hpp"

namespace rtsync::chaos {

struct WriterOptions {
  std::string conninfo;
  std::vector<std::string> projects;  // every project written to
  std::size_t watched = 0;            // index of the watched project in `projects`
  double watched_share = 0.35;        // of changes that go to it
  double rate = 100;                  // changes per second
  int max_changes_per_transaction = 3;
  // Random text of this many bytes written into each changed row's error_message (a column the
  // watched query does not read): large change events without large refetches.
  std::size_t pad_bytes = 0;
  std::uint64_t seed = 1;
};

// One transaction the writer sent.
struct WriterTxn {
  std::int64_t first_seq = 0;
  std::int64_t last_seq = 0;
  TimePoint sent{};        // before COMMIT
  TimePoint acked{};       // outcome seen (or the connection lost)
  bool committed = false;  // known committed (false: rolled back or unknown — see the audit)
};

class ChaosWriter {
 public:
  explicit ChaosWriter(WriterOptions options);
  ~ChaosWriter();  // stop()
  ChaosWriter(const ChaosWriter&) = delete;
  ChaosWriter& operator=(const ChaosWriter&) = delete;

  void start();
  void stop();
  std::vector<WriterTxn> log() const;
  std::uint64_t committed_changes() const noexcept { return committed_; }
  std::uint64_t failures() const noexcept { return failures_; }

 private:
  void run();

  WriterOptions options_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> committed_{0};
  std::atomic<std::uint64_t> failures_{0};
  mutable std::mutex mutex_;
  std::vector<WriterTxn> log_;
};

}  // namespace rtsync::chaos
