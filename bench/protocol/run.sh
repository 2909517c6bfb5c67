#!/usr/bin/env bash
# Builds bench_protocol (release preset; shares build/release, never wipes it), runs it and the
# realtime-js serializer peer on the same frames, and prints a markdown table with the ratio.
#   bench/protocol/run.sh            # ~2 minutes
#   MIN_TIME=0.3 JS_SECONDS=0.3 bench/protocol/run.sh   # quick look
# Both sides report rates per CPU second on one thread (median of 3 runs).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build="${BUILD_DIR:-build/release}"
if [ "$build" = build/release ]; then
  cmake --preset release >/dev/null 2>&1
else
  [ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTSYNC_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target bench_protocol -j2 >/dev/null 2>&1 || cmake --build "$build" --target bench_protocol -j2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$build/bench/protocol/bench_protocol" --benchmark_format=json \
  --benchmark_min_time="${MIN_TIME:-1}" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true >"$out/cpp.json"
node bench/protocol/realtime_js_serializer.mjs "${JS_SECONDS:-1}" 3 >"$out/js.jsonl" 2>"$out/js.err"
python3 - "$out/cpp.json" "$out/js.jsonl" "$(cat "$out/js.err")" <<'PY'
import json, subprocess, sys
cpp = {b["run_name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("aggregate_name") == "median"}
js = {r["name"]: r for r in map(json.loads, open(sys.argv[2]))}
model = subprocess.run("lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True, capture_output=True, text=True).stdout.strip()
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
rows = [
    ("decode v2 text, postgres_changes", "BM_DecodeText/v2_pg_changes", "decode_v2_pg_changes"),
    ("decode v1 text, postgres_changes", "BM_DecodeText/v1_pg_changes", "decode_v1_pg_changes"),
    ("decode v2 text, broadcast", "BM_DecodeText/v2_broadcast", "decode_v2_broadcast"),
    ("decode v1 text, broadcast", "BM_DecodeText/v1_broadcast", "decode_v1_broadcast"),
    ("read v2 text (FrameReader: envelope + validated read-only payload), postgres_changes", "BM_ReadText/v2_pg_changes", "decode_v2_pg_changes"),
    ("read v1 text (FrameReader), postgres_changes", "BM_ReadText/v1_pg_changes", "decode_v1_pg_changes"),
    ("read v2 text (FrameReader), broadcast", "BM_ReadText/v2_broadcast", "decode_v2_broadcast"),
    ("read v1 text (FrameReader), broadcast", "BM_ReadText/v1_broadcast", "decode_v1_broadcast"),
    ("v2 text → client shape, DOM path", "BM_ClientShapeDom/v2_pg_changes", "client_shape_v2_pg_changes"),
    ("v2 text → client shape, FrameReader", "BM_ClientShapeReader/v2_pg_changes", "client_shape_v2_pg_changes"),
    ("encode v2 text, postgres_changes", "BM_EncodeText/v2_pg_changes", "encode_v2_pg_changes"),
    ("encode v1 text, postgres_changes", "BM_EncodeText/v1_pg_changes", "encode_v1_pg_changes"),
    ("encode v2 text, broadcast", "BM_EncodeText/v2_broadcast", "encode_v2_broadcast"),
    ("encode v1 text, broadcast", "BM_EncodeText/v1_broadcast", "encode_v1_broadcast"),
    ("decode kind 4 → Message", "BM_DecodeKind4", "decode_kind4"),
    ("decode kind 4 fields + validation (relay)", "BM_DecodeKind4Fields", None),
    ("encode kind 4", "BM_EncodeKind4", None),
    ("encode kind 3 from a broadcast push", "BM_EncodeKind3FromMessage", "encode_kind3"),
]
print(f"Machine: {model}, {cores} cores (shared). {sys.argv[3]}. Rates per CPU second, one thread, median of 3.\n")
print("| case | frame bytes | rtsync frames/s | rtsync MB/s | realtime-js frames/s | realtime-js MB/s | ratio |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for label, c, j in rows:
    b = cpp[c]
    fps = b["items_per_second"]
    mbs = b["bytes_per_second"] / 1e6
    nbytes = round(b["bytes_per_second"] / b["items_per_second"])
    if j:
        r = js[j]
        print(f"| {label} | {nbytes} | {fps:,.0f} | {mbs:,.0f} | {r['frames_per_s']:,.0f} | {r['mb_per_s']:,.0f} | {fps / r['frames_per_s']:.1f}× |")
    else:
        print(f"| {label} | {nbytes} | {fps:,.0f} | {mbs:,.0f} | n/a | n/a | — |")
PY
