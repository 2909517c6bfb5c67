// chaos_campaign — the long randomized chaos campaign (bench/chaos/run.sh, docs/chaos.md): N runs
// with seeds S, S+1, …, each a plan drawn from its seed (profile `campaign` by default: every
// fault, the ranges), then one summary table per fault and overall.
//
//   chaos_campaign [--runs N] [--seed S] [--profile campaign|ci] [--fault NAME] [--keep-going]
//
// Exit status 0 when every run was ok, 1 when any had a finding or failed, 2 on bad arguments.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "plan.hpp"
#include "run.hpp"

using namespace rtsync::chaos;

namespace {

struct Totals {
  int runs = 0, ok = 0, errors = 0;
  std::size_t expected = 0, lost = 0, duplicates = 0, redelivered = 0, told_gaps = 0,
              unrepaired = 0, leaks = 0, fetches = 0, resumed = 0, stale_final = 0;
  std::vector<long> convergence_ms;

  void add(const RunResult& r) {
    ++runs;
    if (r.ok()) ++ok;
    if (!r.error.empty()) {
      ++errors;
      return;
    }
    const auto& c = r.report;
    expected += c.expected;
    lost += c.silently_lost();
    duplicates += c.duplicates;
    redelivered += c.redelivered;
    told_gaps += c.told_gaps;
    resumed += c.resumed;
    unrepaired += c.gap_not_refetched;
    leaks += c.leaked + r.attacker_leaks;
    fetches += c.fetches;
    if (!c.final_cache_matches) ++stale_final;
    if (c.convergence) convergence_ms.push_back(static_cast<long>(c.convergence->count()));
  }
};

long percentile(std::vector<long> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void row(const std::string& name, const Totals& t) {
  std::printf("%-22s %5d %5d %6d %9zu %6zu %6zu %7zu %6zu %6zu %6zu %6zu %8ld %8ld %8zu\n",
              name.c_str(), t.runs, t.ok, t.errors, t.expected, t.lost, t.duplicates, t.redelivered,
              t.told_gaps, t.resumed, t.unrepaired, t.leaks, percentile(t.convergence_ms, 0.5),
              percentile(t.convergence_ms, 0.99), t.fetches);
}

int usage() {
  std::cerr << "usage: chaos_campaign [--runs N] [--seed S] [--profile campaign|ci] "
               "[--fault NAME] [--keep-going]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 20;
  std::uint64_t seed = std::random_device{}() % 1000000;
  Profile profile = Profile::campaign;
  std::optional<FaultKind> fault;
  bool keep_going = true;
  if (auto env = seed_from_env()) seed = *env;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--runs") {
      const char* v = next();
      if (!v) return usage();
      runs = std::atoi(v);
    } else if (a == "--seed") {
      const char* v = next();
      if (!v) return usage();
      seed = std::strtoull(v, nullptr, 10);
    } else if (a == "--profile") {
      const char* v = next();
      if (!v) return usage();
      profile = std::string(v) == "ci" ? Profile::ci : Profile::campaign;
    } else if (a == "--fault") {
      const char* v = next();
      if (!v || !(fault = parse_fault(v))) return usage();
    } else if (a == "--stop-on-failure") {
      keep_going = false;
    } else if (a == "--keep-going") {
      keep_going = true;
    } else {
      return usage();
    }
  }
  std::cout << "chaos campaign: " << runs << " runs, seeds " << seed << "…" << seed + runs - 1
            << ", profile " << to_string(profile)
            << (fault ? ", fault " + std::string(to_string(*fault)) : std::string()) << std::endl;

  std::map<std::string, Totals> by_fault;
  Totals all;
  std::vector<std::string> failed;
  for (int i = 0; i < runs; ++i) {
    const std::uint64_t s = seed + static_cast<std::uint64_t>(i);
    const auto plan = make_plan(s, profile, fault);
    std::string replay = "bench/chaos/run.sh --runs 1 --seed " + std::to_string(s) + " --profile " +
                         std::string(to_string(profile));
    if (fault) replay += " --fault " + std::string(to_string(*fault));
    auto r = run_chaos(plan, RTSYNC_CHAOS_BINARY, replay);
    print(r, std::cout);
    by_fault[std::string(to_string(plan.fault))].add(r);
    all.add(r);
    if (!r.ok()) {
      failed.push_back(std::to_string(s) + " (" + std::string(to_string(plan.fault)) + ")");
      if (!keep_going) break;
    }
  }

  std::printf("\n%-22s %5s %5s %6s %9s %6s %6s %7s %6s %6s %6s %6s %8s %8s %8s\n", "fault", "runs",
              "ok", "errors", "expected", "lost", "dups", "redeliv", "gaps", "resumd", "unrep",
              "leaks", "conv_p50", "conv_p99", "fetches");
  for (const auto& [name, t] : by_fault)
    row(name, t);
  row("all", all);
  std::printf(
      "\nlost: silently lost changes; dups: duplicates; redeliv: re-sent after a told gap; gaps: "
      "told gaps (rejoins that refetch); resumd: gapless resumes; unrep: told gaps never "
      "refetched; conv: ms from the heal until everything committed before it was accounted "
      "for; fetches: refetches of the watched query; stale final caches: %zu\n",
      all.stale_final);
  if (!failed.empty()) {
    std::cout << "failed seeds:";
    for (const auto& f : failed)
      std::cout << " " << f;
    std::cout << "\n";
  }
  return failed.empty() ? 0 : 1;
}
