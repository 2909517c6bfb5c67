#!/usr/bin/env bash
# The long randomized chaos campaign (docs/chaos.md): N runs of the chaos harness with seeds
# S, S+1, …, each drawing its fault and its parameters from its seed (the issue's ranges: link cuts
# of 1–30 s, a server down for 0–10 s, PostgreSQL restarts fast and immediate, the replication
# connection cut, an access token expiring during an outage, a slow consumer; 50–500 changes/s),
# then a summary table per fault: silently lost changes, duplicates, gaps told, convergence p50/p99
# after the heal, refetches. Exit status 1 when any run had a finding.
#
#   bench/chaos/run.sh [--runs N] [--seed S] [--profile campaign|ci] [--fault NAME]
#                      [--stop-on-failure] [--subscribe-trials N]
#
# A run's replay line is printed with it: `bench/chaos/run.sh --runs 1 --seed S` (or
# RTSYNC_CHAOS_SEED=S ctest --test-dir build/dev -R Chaos.Replay). --subscribe-trials N first runs
# the subscribe-then-write check with N trials. Built in the dev preset (the harness is test code).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
subscribe=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribe-trials) subscribe="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
cmake --preset dev >/dev/null
cmake --build build/dev -j2 --target chaos_campaign chaos_subscribe_tests rtsync
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$subscribe" -gt 0 ]; then
  RTSYNC_CHAOS_SUBSCRIBE_TRIALS="$subscribe" build/dev/tests/chaos/chaos_subscribe_tests \
    --gtest_brief=1
fi
exec build/dev/tests/chaos/chaos_campaign "${args[@]}"
