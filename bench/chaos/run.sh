#!/usr/bin/env bash
# The long randomized chaos campaign (docs/chaos.md): N runs of the chaos harness with seeds
# S, S+1, …, each drawing its fault and its parameters from its seed (the issue's ranges: link cuts
# of 1–30 s, a server down for 0–10 s, PostgreSQL restarts fast and immediate, the replication
# connection cut, an access token expiring during an outage, a slow consumer; 50–500 changes/s),
# then a summary table per fault: silently lost changes, duplicates, gaps told, convergence p50/p99
# after the heal, refetches. Exit status 1 when any run had a finding.
#
#   bench/chaos/run.sh [--runs N] [--seed S] [--profile campaign|ci] [--fault NAME]
#                      [--stop-on-failure] [--subscribe-trials N] [--jobs J] [--record FILE]
#                      [--release-server]
#   bench/chaos/run.sh --summarize FILE...
#
# --jobs J splits the runs over J campaign processes at once (seeds S… in J consecutive ranges;
# a run mostly waits out its fault, so a 2-core machine holds a few), each recording its runs
# (build/chaos/<time>-<j>.tsv, their output in .log beside), then prints one table for all.
# --record FILE appends each run's record to FILE; --summarize prints the table of record files
# (a campaign split over days or machines, disjoint seed ranges, is summarized as one).
#
# A run's replay line is printed with it: `bench/chaos/run.sh --runs 1 --seed S` (or
# RTSYNC_CHAOS_SEED=S ctest --test-dir build/dev -R Chaos.Replay). --subscribe-trials N first runs
# the subscribe-then-write check with N trials. Built in the dev preset (the harness is test code);
# --release-server has the runs start an `rtsync` of the release preset instead of the Debug one
# (what a deployment runs: convergence then measures the protocol, not a Debug server's speed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
subscribe=0
jobs=1
runs=20
seed=""
release_server=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribe-trials) subscribe="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --release-server) release_server=1; shift ;;
    --runs) runs="$2"; args+=("$1" "$2"); shift 2 ;;
    --seed) seed="$2"; args+=("$1" "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
cmake --preset dev >/dev/null
cmake --build build/dev -j2 --target chaos_campaign chaos_subscribe_tests rtsync
if [ "$release_server" = 1 ]; then
  cmake --preset release >/dev/null
  cmake --build build/release -j2 --target rtsync
  args+=(--server "$root/build/release/src/app/rtsync")
fi
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$subscribe" -gt 0 ]; then
  RTSYNC_CHAOS_SUBSCRIBE_TRIALS="$subscribe" build/dev/tests/chaos/chaos_subscribe_tests \
    --gtest_brief=1
fi
campaign=build/dev/tests/chaos/chaos_campaign
if [ "$jobs" -le 1 ]; then
  exec "$campaign" "${args[@]}"
fi
# Parallel: the same arguments with each process's --runs/--seed replaced by its range.
seed="${seed:-$((RANDOM * 30))}"
rest=()
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --runs | --seed) i=$((i + 1)) ;;
    *) rest+=("${args[$i]}") ;;
  esac
done
mkdir -p build/chaos
stamp="build/chaos/$(date -u +%Y%m%dT%H%M%S)"
per=$(((runs + jobs - 1) / jobs))
files=()
pids=()
for ((j = 0; j < jobs; j++)); do
  n=$((runs - j * per < per ? runs - j * per : per))
  [ "$n" -gt 0 ] || break
  files+=("$stamp-$j.tsv")
  "$campaign" "${rest[@]}" --runs "$n" --seed $((seed + j * per)) --record "$stamp-$j.tsv" \
    >"$stamp-$j.log" 2>&1 &
  pids+=($!)
done
echo "chaos campaign: $runs runs from seed $seed in ${#pids[@]} processes; output in $stamp-*.log"
for p in "${pids[@]}"; do wait "$p" || true; done
exec "$campaign" --summarize "${files[@]}"
