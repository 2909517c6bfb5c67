#!/usr/bin/env bash
# README command (2): install what is missing, build, and run every test suite:
#   1. the `ci` preset build (the dev build with warnings as errors: a warning fails the run) and
#      all of ctest (unit, integration with throwaway PostgreSQL clusters the tests start
#      themselves, conformance against the npm clients, end-to-end); then the installed package
#      (scripts/package_check.sh): examples/consumer built against a `cmake --install` of that
#      build receives a change from the installed `rtsync server`,
#      and `cpack -G DEB` holds the binary, headers, libraries, CMake package and systemd unit;
#      The servers the tests start run two loop threads (RTSYNC_SERVER_THREADS=2, docs/scaling.md):
#      websocket sockets alternate between the realtime loop itself (what one thread does) and
#      an I/O loop, so both paths run in every suite;
#   2. the unit suites again under AddressSanitizer + UBSan, and the server's unit, realtime and
#      edge integration suites under ThreadSanitizer, the realtime suite with one loop thread and
#      with two (these builds and the fuzz build run in the background while step 1's tests run);
#   3. each libFuzzer target for RTSYNC_FUZZ_SECONDS (default 20 here) from the committed seed corpus;
#   4. the API reference check: Doxygen over include/rtsync fails the run when a public symbol of
#      the client layer (include/rtsync/client) is undocumented (scripts/api-docs.sh, seconds).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-deps.sh

# ccache keyed on paths relative to the checkout, so a fresh clone elsewhere reuses earlier builds.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true

# Each step prints the minutes spent so far, so a slow stage shows in the log.
step() { printf '\n==== %s (at %dm%02ds) ====\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

step "API reference (undocumented public symbols of the client layer fail the run)"
bash scripts/api-docs.sh --check build/docs

# The ci preset is the dev preset plus -Werror, built into its own folder (build/ci): CI builds the
# tree once, and a contributor's build/dev keeps its own settings.
step "ci build (dev with warnings as errors)"
cmake --preset ci >/dev/null
cmake --build --preset ci
# The sanitizer and fuzz builds run beside the ci tests, niced: the tests spend much of their time
# waiting on PostgreSQL, sockets and timers, so the builds take the idle cores instead of adding
# their minutes after them. Their log is printed if they fail.
sanitizer_builds() {
  cmake --preset asan >/dev/null && cmake --build --preset asan &&
    cmake --preset tsan >/dev/null &&
    cmake --build --preset tsan --target core_tests server_rt_tests server_realtime_tests \
      server_edge_tests cluster_redis_tests cluster_node_tests &&
    { [ ! -f tests/fuzz/CMakeLists.txt ] ||
      { cmake --preset fuzz >/dev/null && cmake --build --preset fuzz; }; }
}
mkdir -p build
step "asan, tsan and fuzz builds start in the background (log: build/sanitizer-builds.log)"
setsid nice -n 10 bash -c "$(declare -f sanitizer_builds); sanitizer_builds" \
  >build/sanitizer-builds.log 2>&1 &
builds_pid=$!
# A failing step ends the run: the builds' process group goes with it.
trap 'kill -- "-$builds_pid" 2>/dev/null || true' EXIT

step "ci tests (all labels; servers with two loop threads)"
RTSYNC_SERVER_THREADS=2 ctest --preset ci

step "installed package: find_package consumer, pkg-config, .deb"
bash scripts/package_check.sh build/ci

step "waiting for the asan, tsan and fuzz builds"
if ! wait "$builds_pid"; then
  tail -n 200 build/sanitizer-builds.log
  echo "the sanitizer or fuzz build failed (above: the end of build/sanitizer-builds.log)" >&2
  exit 1
fi

# The TSan suites run one binary after another and mostly keep one core busy (the realtime suite
# waits on PostgreSQL and sockets); the ASan suites (ctest -j2) run beside them on the other.
tsan_tests() {
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
  ./build/tsan/tests/unit/core_tests --gtest_brief=1 &&
    ./build/tsan/tests/unit/server_rt/server_rt_tests --gtest_brief=1 &&
    RTSYNC_SERVER_THREADS=1 ./build/tsan/tests/integration/realtime/server_realtime_tests \
      --gtest_brief=1 &&
    RTSYNC_SERVER_THREADS=2 ./build/tsan/tests/integration/realtime/server_realtime_tests \
      --gtest_brief=1 &&
    RTSYNC_SERVER_THREADS=2 ./build/tsan/tests/integration/realtime/server_edge_tests \
      --gtest_brief=1 &&
    ./build/tsan/tests/integration/cluster/cluster_redis_tests --gtest_brief=1 &&
    RTSYNC_SERVER_THREADS=2 ./build/tsan/tests/integration/cluster/cluster_node_tests \
      --gtest_brief=1
}
step "tsan tests start in the background (log: build/tsan-tests.log); asan tests"
setsid bash -c "$(declare -f tsan_tests); tsan_tests" >build/tsan-tests.log 2>&1 &
tsan_pid=$!
trap 'kill -- "-$builds_pid" "-$tsan_pid" 2>/dev/null || true' EXIT
ctest --preset asan

step "waiting for the tsan tests"
if ! wait "$tsan_pid"; then
  tail -n 200 build/tsan-tests.log
  echo "a ThreadSanitizer suite failed (above: the end of build/tsan-tests.log)" >&2
  exit 1
fi
grep -E '^\[  PASSED  \]' build/tsan-tests.log

if [ -f tests/fuzz/CMakeLists.txt ]; then
  # 20 s a target from the committed corpus: a regression check of every parser on each run;
  # longer campaigns are run by hand (tests/fuzz/CMakeLists.txt).
  export RTSYNC_FUZZ_SECONDS="${RTSYNC_FUZZ_SECONDS:-20}"
  step "fuzz runs (${RTSYNC_FUZZ_SECONDS} s each)"
  ctest --preset fuzz
fi
step "done"
