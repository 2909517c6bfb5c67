#!/usr/bin/env bash
# README command (1): install what is missing, build the release binary, run the main job:
# `rtsync demo` — a throwaway PostgreSQL, the schema, the server, a simulated worker and the task
# pane signed in as the demo user. Quit with q or Ctrl-C; everything it started is removed.
#
# In a terminal the task pane opens full screen; without one (CI, a pipe) the demo prints its
# --json line stream for RTSYNC_DEMO_SECONDS (default 30) seconds instead. Extra arguments go to
# `rtsync demo` (e.g. `bash scripts/demo.sh --rate 10`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target rtsync
rtsync=./build/release/src/app/rtsync
if [ -t 0 ] && [ -t 1 ]; then
  exec "$rtsync" demo "$@"
else
  exec "$rtsync" demo --no-tui --duration "${RTSYNC_DEMO_SECONDS:-30}" "$@"
fi
