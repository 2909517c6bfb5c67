#!/usr/bin/env bash
# Builds bench_sync optimised in build/sync-release (its own directory, never shared) and runs the
# burst in both modes. Arguments are passed on, e.g. bench/sync/run.sh --seconds 2 --rate 5000
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cmake -S . -B build/sync-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTSYNC_BUILD_TESTS=OFF \
  -DRTSYNC_BUILD_APP=OFF >/dev/null
cmake --build build/sync-release --target bench_sync -j2 >/dev/null
echo "Machine: $(lscpu | grep 'Model name' | sed 's/.*: *//'), $(nproc) cores (shared)."
./build/sync-release/bench/sync/bench_sync "$@"
