#!/usr/bin/env bash
# Builds bench_query (release preset; shares build/release, never wipes it), runs it and the
# @tanstack/query-core peer (tanstack_peer.mjs, browser mode) on the same workload, and prints a
# markdown table with the ratios.
#   bench/query/run.sh                                   # sizes 1k, 10k, 100k; 10k invalidations
#   SIZES=1000,10000 INVALIDATIONS=1000 bench/query/run.sh   # quick look
# The peer's invalidations per size are capped by INVALIDATE_SECONDS of CPU (default 20) because
# TanStack scans the whole cache on every call; the table shows how many it ran.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
sizes=${SIZES:-1000,10000,100000}
invalidations=${INVALIDATIONS:-10000}
cmake --preset release >/dev/null 2>&1
cmake --build --preset release --target bench_query >/dev/null 2>&1 ||
  cmake --build --preset release --target bench_query
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
./build/release/bench/query/bench_query --sizes "$sizes" --invalidations "$invalidations" >"$out/cpp.jsonl"
node --expose-gc bench/query/tanstack_peer.mjs "$sizes" "$invalidations" >"$out/js.jsonl"
python3 - "$out/cpp.jsonl" "$out/js.jsonl" <<'PY'
import json, subprocess, sys
cpp = {r["queries"]: r for r in map(json.loads, open(sys.argv[1]))}
js = {r["queries"]: r for r in map(json.loads, open(sys.argv[2]))}
model = subprocess.run("lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True,
                       capture_output=True, text=True).stdout.strip()
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
version = next(iter(js.values()))["version"]
print(f"Machine: {model}, {cores} cores (shared). Node {node}, @tanstack/query-core {version} "
      "(browser mode). Process CPU time per operation, one thread.\n")
print("Workload: N cached queries in N/100 families, keys "
      "[\"family-NNNN\",\"paginated\",\"project-P\",page,50,\"Queued\"], 10 % observed "
      "(10 per family), no-op fetchers. Invalidation = one family (100 matches, 10 active "
      "queries refetched), awaited until the refetches settled and observers were notified.\n")
print("| metric | queries | rtsync | TanStack | TanStack / rtsync |")
print("| --- | ---: | ---: | ---: | ---: |")
def row(label, key, unit, fmt="{:,.1f}", note=lambda n: ""):
    for n in sorted(cpp):
        c, j = cpp[n][key], js[n][key]
        print(f"| {label}{note(n)} | {n:,} | {fmt.format(c)} {unit} | {fmt.format(j)} {unit} | {j / c:,.1f}× |")
row("invalidate one family", "invalidate_us", "µs", "{:,.2f}",
    lambda n: f" ({cpp[n]['invalidations']:,} / {js[n]['invalidations']:,} calls)")
row("build (setQueryData, new query)", "build_ns", "ns", "{:,.0f}")
row("lookup (getQueryData, key hashed per call)", "lookup_ns", "ns", "{:,.0f}")
row("setQueryData on an existing query", "set_ns", "ns", "{:,.0f}")
row("memory per cached query", "bytes_per_query", "B", "{:,.0f}")
ns = sorted(cpp)
if len(ns) > 1:
    lo, hi = ns[0], ns[-1]
    print(f"\nInvalidation cost from {lo:,} to {hi:,} queries: rtsync ×"
          f"{cpp[hi]['invalidate_us'] / cpp[lo]['invalidate_us']:.2f}, TanStack ×"
          f"{js[hi]['invalidate_us'] / js[lo]['invalidate_us']:.2f} "
          f"(cache ×{hi // lo}).")
for n in ns:
    if abs(cpp[n]["refetched_per_call"] - js[n]["refetched_per_call"]) > 1e-9:
        print(f"\nWARNING: refetches per call differ at {n}: "
              f"{cpp[n]['refetched_per_call']} vs {js[n]['refetched_per_call']}")
PY
