#!/usr/bin/env bash
# Builds the release bench_e2e and runs it: commit → event and commit → fresh cache at 10 and
# 200 task changes/s, with the cache's default coalescing window (100 ms) and the task pane's
# (10 ms). Extra arguments go to bench_e2e.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cmake --preset release >/dev/null
cmake --build --preset release --target bench_e2e
bin=$(ls build/release/bench/e2e/bench_e2e build/release/bench/e2e-from-app/bench_e2e 2>/dev/null | head -1)
for window in 100 10; do
  echo "== coalescing window ${window} ms"
  "$bin" --rates 10,200 --seconds 10 --coalesce-ms "$window" "$@"
  echo
done
