#!/usr/bin/env bash
# README command (1): install what is missing, build the release binary, run the main job.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target rtsync
./build/release/src/app/rtsync --help
