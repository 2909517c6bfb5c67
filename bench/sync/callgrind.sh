#!/usr/bin/env bash
# Instructions per event inside the frame deliveries (valgrind callgrind, collection toggled on
# FakeTransport::receive_text), per bench_sync mode. Instruction counts do not depend on the
# machine's load, unlike the CPU times of run.sh, so before/after comparisons hold on a busy host.
#   bench/sync/callgrind.sh [path/to/bench_sync] [modes, default transport,coordination,coalesced]
# Each mode runs 1 s at 2,000 events/s (2,000 events; valgrind is ~50x slower than native).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/build/sync-release/bench/sync/bench_sync}
modes=${2:-transport,coordination,coalesced}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
prev=""
for m in ${modes//,/ }; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$m.cg" \
    "--toggle-collect=rtsync::testkit::FakeTransport::receive_text*" \
    "$bin" --seconds 1 --rate 2000 --modes "$m" >"$out/$m.log" 2>&1
  events=$(grep -o '"events":[0-9]*' "$out/$m.log" | head -1 | cut -d: -f2)
  ir=$(callgrind_annotate "$out/$m.cg" 2>/dev/null | grep 'PROGRAM TOTALS' | awk '{gsub(",","",$1); print $1}')
  per=$((ir / events))
  if [ -n "$prev" ]; then
    echo "$m: $per instructions/event (+$((per - prev)) over the previous mode), $events events"
  else
    echo "$m: $per instructions/event, $events events"
  fi
  prev=$per
done
