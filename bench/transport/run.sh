#!/usr/bin/env bash
# Transport throughput: events/s decoded and dispatched to callbacks by one rtsync client and by
# one @supabase/realtime-js client (Node, `ws`), each receiving the same stream of N ~1 KB
# postgres_changes frames from the same local peer (stream_peer.mjs). Prints a markdown table.
#
#   bench/transport/run.sh            # N=200000, 3 runs each, build/release
#   N=50000 RUNS=5 BUILD_DIR=build/x bench/transport/run.sh
#   BATCH=1 bench/transport/run.sh    # the peer writes one frame per socket write (ws.send)
#   PREBUILT=1 bench/transport/run.sh # the peer builds the stream up front: clients saturated
#   BENCH_READ=string|copy ...        # what rtsync's callback reads (bench_transport.cpp)
#   PIN=0 bench/transport/run.sh      # do not pin the peer and the clients to separate cores
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/bench/transport"
N="${N:-200000}"
RUNS="${RUNS:-3}"
BATCH="${BATCH:-64}"
build="${BUILD_DIR:-$root/build/release}"

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTSYNC_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target bench_transport -j2 >/dev/null
bin="$build/bench/transport/bench_transport"

work="$(mktemp -d)"
peer_pid=""
cleanup() {
  if [ -n "$peer_pid" ]; then kill "$peer_pid" 2>/dev/null || true; wait "$peer_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

prebuilt=()
if [ "${PREBUILT:-0}" = 1 ]; then prebuilt=(--prebuilt); fi
# Per core means per core: with two or more, the peer runs on CPU 0 and each client on CPU 1, so
# the client measured never shares its core (or its caches) with the load it measures.
peer_cpu=()
client_cpu=()
pinned="no"
if [ "${PIN:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  peer_cpu=(taskset -c 0)
  client_cpu=(taskset -c 1)
  pinned="peer on CPU 0, clients on CPU 1"
fi
"${peer_cpu[@]}" node "$here/stream_peer.mjs" --count "$N" --batch "$BATCH" "${prebuilt[@]}" >"$work/peer.log" 2>&1 &
peer_pid=$!
for _ in $(seq 1 100); do
  grep -q '^PORT ' "$work/peer.log" 2>/dev/null && break
  sleep 0.05
done
port="$(sed -n 's/^PORT //p' "$work/peer.log")"
[ -n "$port" ] || { echo "peer did not start:"; cat "$work/peer.log"; exit 1; }
url="http://127.0.0.1:$port"

for i in $(seq 1 "$RUNS"); do
  "${client_cpu[@]}" "$bin" "$url" "$N" >>"$work/results.jsonl" ||
    echo "rtsync run $i lost events" >&2
  "${client_cpu[@]}" node "$here/realtime_js_client.mjs" "$url" "$N" >>"$work/results.jsonl" ||
    echo "realtime-js run $i lost events" >&2
done

load_after="$(cut -d" " -f1-3 /proc/loadavg)"
PINNED="$pinned" node - "$work/results.jsonl" "$N" "$RUNS" "$BATCH" "$load_after" <<'EOF'
const fs = require('node:fs');
const os = require('node:os');
const [file, n, runs, batch, load] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const summary = {};
for (const c of ['rtsync', 'realtime-js']) {
  const r = rows.filter((x) => x.client === c);
  summary[c] = {
    eps: median(r.map((x) => x.events_per_s)),
    ecpu: median(r.map((x) => x.events_per_cpu_s)),
    lost: Math.max(...r.map((x) => x.expected - x.events)),
    runs: r.length,
  };
}
const f = (x) => Math.round(x).toLocaleString('en-US');
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`Transport throughput: ${Number(n).toLocaleString('en-US')} postgres_changes frames (~1 KB, vsn 2.0.0) per run, median of ${runs} runs, loopback, ${cpu}, ${os.cpus().length} cores, Node ${process.version}, peer batch ${batch} frame(s) per write${process.env.PREBUILT === '1' ? ' (prebuilt)' : ''}, rtsync reads ${process.env.BENCH_READ || 'seed'}, pinned: ${process.env.PINNED}, load average ${load} (after the runs)`);
console.log('');
console.log('| client | events/s (wall) | events per CPU-second | frames lost (worst run) |');
console.log('| --- | ---: | ---: | ---: |');
for (const c of ['rtsync', 'realtime-js']) {
  const s = summary[c];
  const label = c === 'rtsync' ? 'rtsync RealtimeSocket (C++, release)' : '@supabase/realtime-js 2.119.1 (Node, ws)';
  console.log(`| ${label} | ${f(s.eps)} | ${f(s.ecpu)} | ${s.lost} |`);
}
const r1 = summary['rtsync'].eps / summary['realtime-js'].eps;
const r2 = summary['rtsync'].ecpu / summary['realtime-js'].ecpu;
console.log(`| **ratio rtsync / realtime-js** | **${r1.toFixed(1)}×** | **${r2.toFixed(1)}×** | |`);
EOF
