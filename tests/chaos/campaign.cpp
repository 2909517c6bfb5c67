// chaos_campaign — the long randomized chaos campaign (bench/chaos/run.sh, docs/chaos.md): N runs
// with seeds S, S+1, …, each a plan drawn from its seed (profile `campaign` by default: every
// fault, the ranges), then one summary table per fault and overall.
//
//   chaos_campaign [--runs N] [--seed S] [--profile campaign|ci] [--fault NAME] [--keep-going]
//                  [--record FILE]
//   chaos_campaign --summarize FILE...
//
// --record appends one tab-separated line per run to FILE (its seed, fault and counts), so that a
// campaign split over processes, machines or days (disjoint seed ranges) is summarized as one by
// --summarize, which reads such files and prints the same table.
//
// Exit status 0 when every run was ok, 1 when any had a finding or failed, 2 on bad arguments.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "plan.hpp"
#include "run.hpp"

using namespace rtsync::chaos;

namespace {

// One run's outcome as recorded: what the summary table adds up.
struct Record {
  std::uint64_t seed = 0;
  std::string fault;
  bool ok = false, error = false, stale_final = false;
  std::size_t expected = 0, lost = 0, duplicates = 0, redelivered = 0, told_gaps = 0, resumed = 0,
              unrepaired = 0, leaks = 0, fetches = 0;
  long convergence_ms = -1;  // -1: nothing to converge on (no change committed before the heal)
  long seconds = 0;
  // The server's gap_history resume outcomes: rejoins whose position had left the history window
  // (bytes or seconds). -1: unknown (metrics not read, or a record from before they were).
  long gaps_history = -1;

  static Record of(std::uint64_t seed, const RunResult& r) {
    Record x;
    x.seed = seed;
    x.fault = std::string(to_string(r.plan.fault));
    x.ok = r.ok();
    x.error = !r.error.empty();
    x.seconds = static_cast<long>(r.seconds);
    if (x.error) return x;
    const auto& c = r.report;
    x.expected = c.expected;
    x.lost = c.silently_lost();
    x.duplicates = c.duplicates;
    x.redelivered = c.redelivered;
    x.told_gaps = c.told_gaps;
    x.resumed = c.resumed;
    x.unrepaired = c.gap_not_refetched;
    x.leaks = c.leaked + r.attacker_leaks;
    x.fetches = c.fetches;
    x.stale_final = !c.final_cache_matches;
    if (c.convergence) x.convergence_ms = static_cast<long>(c.convergence->count());
    if (!r.resume_outcomes.empty()) {
      auto it = r.resume_outcomes.find("gap_history");
      x.gaps_history = it == r.resume_outcomes.end() ? 0 : static_cast<long>(it->second);
    }
    return x;
  }

  // seed fault ok error expected lost dups redelivered gaps resumed unrepaired leaks fetches
  // stale_final convergence_ms seconds gaps_history, tab-separated (older records lack the last).
  std::string line() const {
    std::ostringstream o;
    o << seed << '\t' << fault << '\t' << ok << '\t' << error << '\t' << expected << '\t' << lost
      << '\t' << duplicates << '\t' << redelivered << '\t' << told_gaps << '\t' << resumed << '\t'
      << unrepaired << '\t' << leaks << '\t' << fetches << '\t' << stale_final << '\t'
      << convergence_ms << '\t' << seconds << '\t' << gaps_history;
    return o.str();
  }
  static std::optional<Record> parse(const std::string& text) {
    std::istringstream in(text);
    Record x;
    if (!(in >> x.seed >> x.fault >> x.ok >> x.error >> x.expected >> x.lost >> x.duplicates >>
          x.redelivered >> x.told_gaps >> x.resumed >> x.unrepaired >> x.leaks >> x.fetches >>
          x.stale_final >> x.convergence_ms >> x.seconds)) {
      return std::nullopt;
    }
    if (!(in >> x.gaps_history)) x.gaps_history = -1;
    return x;
  }
};

struct Totals {
  int runs = 0, ok = 0, errors = 0;
  std::size_t expected = 0, lost = 0, duplicates = 0, redelivered = 0, told_gaps = 0,
              unrepaired = 0, leaks = 0, fetches = 0, resumed = 0, stale_final = 0;
  std::size_t gaps_history = 0, gaps_unclassified = 0;  // runs whose gaps_history is unknown
  std::vector<long> convergence_ms;

  void add(const Record& r) {
    ++runs;
    if (r.ok) ++ok;
    if (r.error) {
      ++errors;
      return;
    }
    expected += r.expected;
    lost += r.lost;
    duplicates += r.duplicates;
    redelivered += r.redelivered;
    told_gaps += r.told_gaps;
    resumed += r.resumed;
    unrepaired += r.unrepaired;
    leaks += r.leaks;
    fetches += r.fetches;
    if (r.stale_final) ++stale_final;
    if (r.gaps_history >= 0) {
      gaps_history += static_cast<std::size_t>(r.gaps_history);
    } else if (r.told_gaps > 0) {
      ++gaps_unclassified;
    }
    if (r.convergence_ms >= 0) convergence_ms.push_back(r.convergence_ms);
  }
};

long percentile(std::vector<long> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void row(const std::string& name, const Totals& t) {
  std::string hist = std::to_string(t.gaps_history);
  if (t.gaps_unclassified) hist += "+" + std::to_string(t.gaps_unclassified) + "?";
  std::printf("%-22s %5d %5d %6d %9zu %6zu %6zu %7zu %6zu %6s %6zu %6zu %6zu %8ld %8ld %8zu\n",
              name.c_str(), t.runs, t.ok, t.errors, t.expected, t.lost, t.duplicates, t.redelivered,
              t.told_gaps, hist.c_str(), t.resumed, t.unrepaired, t.leaks,
              percentile(t.convergence_ms, 0.5), percentile(t.convergence_ms, 0.99), t.fetches);
}

// Prints the table, then the seeds of the runs that were not ok; the campaign's exit status.
int summarize(const std::map<std::string, Totals>& by_fault, const Totals& all,
              const std::vector<std::string>& failed) {
  std::printf("\n%-22s %5s %5s %6s %9s %6s %6s %7s %6s %6s %6s %6s %6s %8s %8s %8s\n", "fault",
              "runs", "ok", "errors", "expected", "lost", "dups", "redeliv", "gaps", "g_hist",
              "resumd", "unrep", "leaks", "conv_p50", "conv_p99", "fetches");
  for (const auto& [name, t] : by_fault)
    row(name, t);
  row("all", all);
  std::printf(
      "\nlost: silently lost changes; dups: duplicates; redeliv: re-sent after a told gap; gaps: "
      "told gaps (rejoins that refetch); g_hist: the server's gap_history answers (the position "
      "had left the history window; N+M?: M runs with gaps not classified); resumd: gapless "
      "resumes; unrep: told gaps never "
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

// Reads the records of `files` (lines that do not parse are reported and skipped) and prints
// their table; the seeds of runs that were not ok are listed. A seed recorded twice counts once
// (its last record): a range run again after an interruption is not counted double.
int summarize_files(const std::vector<std::string>& files) {
  std::map<std::uint64_t, Record> records;
  for (const auto& f : files) {
    std::ifstream in(f);
    if (!in) {
      std::cerr << "chaos_campaign: cannot read " << f << "\n";
      return 2;
    }
    std::string text;
    for (int n = 1; std::getline(in, text); ++n) {
      if (text.empty()) continue;
      auto r = Record::parse(text);
      if (!r) {
        std::cerr << f << ":" << n << ": not a run record, skipped\n";
        continue;
      }
      records[r->seed] = *r;
    }
  }
  std::map<std::string, Totals> by_fault;
  Totals all;
  std::vector<std::string> failed;
  for (const auto& [seed, r] : records) {
    by_fault[r.fault].add(r);
    all.add(r);
    if (!r.ok) failed.push_back(std::to_string(seed) + " (" + r.fault + ")");
  }
  if (!records.empty()) {
    std::cout << "chaos campaign: " << records.size() << " runs recorded, seeds "
              << records.begin()->first << "…" << records.rbegin()->first << "\n";
  }
  return summarize(by_fault, all, failed);
}

int usage() {
  std::cerr << "usage: chaos_campaign [--runs N] [--seed S] [--profile campaign|ci] "
               "[--fault NAME] [--keep-going] [--record FILE]\n"
               "                      [--server BINARY]\n"
               "       chaos_campaign --summarize FILE...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 20;
  std::uint64_t seed = std::random_device{}() % 1000000;
  Profile profile = Profile::campaign;
  std::optional<FaultKind> fault;
  bool keep_going = true;
  std::string record;
  // The `rtsync` the runs start: by default the one built beside this harness (a Debug build in
  // the dev preset); --server points at another, a Release build for a production-like campaign.
  std::string server = RTSYNC_CHAOS_BINARY;
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
    } else if (a == "--record") {
      const char* v = next();
      if (!v) return usage();
      record = v;
    } else if (a == "--server") {
      const char* v = next();
      if (!v) return usage();
      server = v;
    } else if (a == "--summarize") {
      std::vector<std::string> files(argv + i + 1, argv + argc);
      if (files.empty()) return usage();
      return summarize_files(files);
    } else {
      return usage();
    }
  }
  std::cout << "chaos campaign: " << runs << " runs, seeds " << seed << "…" << seed + runs - 1
            << ", profile " << to_string(profile)
            << (fault ? ", fault " + std::string(to_string(*fault)) : std::string()) << ", server "
            << server << std::endl;

  std::ofstream record_out;
  if (!record.empty()) {
    record_out.open(record, std::ios::app);
    if (!record_out) {
      std::cerr << "chaos_campaign: cannot append to " << record << "\n";
      return 2;
    }
  }
  std::map<std::string, Totals> by_fault;
  Totals all;
  std::vector<std::string> failed;
  for (int i = 0; i < runs; ++i) {
    const std::uint64_t s = seed + static_cast<std::uint64_t>(i);
    const auto plan = make_plan(s, profile, fault);
    std::string replay = "bench/chaos/run.sh --runs 1 --seed " + std::to_string(s) + " --profile " +
                         std::string(to_string(profile));
    if (fault) replay += " --fault " + std::string(to_string(*fault));
    if (server != RTSYNC_CHAOS_BINARY) replay += " --server " + server;
    auto r = run_chaos(plan, server, replay);
    print(r, std::cout);
    const auto rec = Record::of(s, r);
    if (record_out.is_open()) record_out << rec.line() << std::endl;  // flushed: a kill loses none
    by_fault[rec.fault].add(rec);
    all.add(rec);
    if (!r.ok()) {
      failed.push_back(std::to_string(s) + " (" + std::string(to_string(plan.fault)) + ")");
      if (!keep_going) break;
    }
  }

  return summarize(by_fault, all, failed);
}
