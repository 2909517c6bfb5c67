#!/usr/bin/env bash
# Commit → event and commit → fresh cache at 10 and 200 task changes/s through the whole demo
# stack, with the cache's default coalescing window (100 ms) and the task pane's (10 ms): runs the
# release `rtsync bench`. Extra arguments go to it (e.g. --seconds 5 --json).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cmake --preset release >/dev/null
cmake --build --preset release --target rtsync
for window in 100 10; do
  echo "== coalescing window ${window} ms"
  build/release/src/app/rtsync bench --rates 10,200 --seconds 10 --coalesce-ms "$window" "$@"
  echo
done
