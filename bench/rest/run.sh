#!/usr/bin/env bash
# REST benchmark: prints the markdown tables recorded in bench/rest/README.md. Needs `wrk` (Debian).
#
#   bench/rest/run.sh                       # build/rest-release, 10 s per phase
#   BUILD_DIR=build/x bench/rest/run.sh --seconds 20 --pool 2
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build/rest-release}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTSYNC_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target bench_rest -j2 >/dev/null
export RTSYNC_LOG_LEVEL="${RTSYNC_LOG_LEVEL:-error}"
"$build/bench/rest/bench_rest" "$@"
