#!/usr/bin/env bash
# rtsync server benchmarks: prints the markdown tables recorded in BENCHMARKS.md.
# Each mode forks its own server child (throwaway PostgreSQL + the server on port 0); this
# process is the C++ load client on the same machine.
#
#   bench/server/run.sh                 # all four, build/srv-release
#   BUILD_DIR=build/x bench/server/run.sh latency fanout presence dbcast
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build/srv-release}"
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(latency throughput fanout idle)

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTSYNC_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target bench_server -j2 >/dev/null
bin="$build/bench/server/bench_server"
export RTSYNC_LOG_LEVEL="${RTSYNC_LOG_LEVEL:-error}"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo
for m in "${modes[@]}"; do
  case "$m" in
    latency)
      echo "| latency | p50 | p99 | max | received / expected |"
      echo "| --- | --- | --- | --- | --- |"
      "$bin" latency --subs 100 --rate 1000 --seconds 10 || echo "(not every event arrived in time)" ;;
    throughput)
      echo "| throughput | result | writer | delivered | CPU |"
      echo "| --- | --- | --- | --- | --- |"
      "$bin" throughput --subs 500 --users 50 --changes 50000 --per-txn 100 || echo "(incomplete)" ;;
    fanout)
      echo "| fan-out | deliveries/s | time | delivered | CPU |"
      echo "| --- | --- | --- | --- | --- |"
      "$bin" fanout --subs 1000 --messages 2000 --bytes 100 || echo "(incomplete)"
      # The peer: the same probe against a hand-written Node `ws` relay (ws_relay.mjs).
      "$bin" fanout --subs 1000 --messages 2000 --bytes 100 --relay 1 || echo "(incomplete)" ;;
    presence)
      echo "| presence | convergence | frames by kind | bytes | CPU |"
      echo "| --- | --- | --- | --- | --- |"
      "$bin" presence --clients 1000 --window-ms 50 --max-delay-ms 500 --updates 50 ||
        echo "(not every client converged)" ;;
    dbcast)
      echo "| delivery | live | drain (server stopped while writing) | commit → event |"
      echo "| --- | --- | --- | --- |"
      "$bin" dbcast --subs 500 --projects 50 --changes 20000 --writers 4 --rate 500 --seconds 5 \
        || echo "(incomplete)" ;;
    idle)
      echo "| memory | per connection | server RSS |"
      echo "| --- | --- | --- |"
      "$bin" idle --conns 10000 ;;
  esac
  echo
done
