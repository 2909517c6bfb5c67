// One chaos run (docs/chaos.md): build the world, let the victim join, write for the warm-up,
// inject the plan's fault, heal it, write a while longer once the victim is live again, stop the
// writer, then check the victim's history against the audit until every change is accounted for
// and its cache equals the database (bounded by the plan's converge_timeout: what is still missing
// then is a finding), and the attacker's for leaks. Every run prints its plan and how to replay it.
//
// Thread safety: run_chaos blocks the calling thread for the whole run.
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "checker.hpp"
#include "plan.hpp"

namespace rtsync::chaos {

struct RunResult {
  Plan plan;
  std::string error;  // the world could not be built or a step failed (not a finding)
  CheckReport report;
  std::size_t attacker_leaks = 0;
  std::vector<std::string> attacker_problems;
  // The server's resume outcomes at the end of the run (rtsync_resumes_total by outcome, of its
  // last start): which told gaps were outside the history window (gap_history) and which not.
  // Empty when /metrics could not be read.
  std::map<std::string, std::size_t> resume_outcomes;
  std::uint64_t writer_committed = 0;
  std::uint64_t writer_failures = 0;
  double seconds = 0;
  std::string replay;       // the command that replays this run
  std::string diagnostics;  // server log tail and client snapshot, for a failed run

  bool ok() const noexcept { return error.empty() && report.ok() && attacker_leaks == 0; }
};

// `replay`: how to run this plan again (printed with the result).
RunResult run_chaos(const Plan& plan, const std::string& server_binary, std::string replay);

// The run's lines: plan, replay command, check summary, problems (and diagnostics if it failed).
void print(const RunResult& r, std::ostream& out);

}  // namespace rtsync::chaos
