#!/usr/bin/env bash
# The API reference of the public headers (include/rtsync), generated with Doxygen (docs/Doxyfile).
#
#   bash scripts/api-docs.sh [OUT_DIR]          HTML in OUT_DIR/html (default build/docs)
#   bash scripts/api-docs.sh --check [OUT_DIR]  no HTML; fails when a public symbol of the client
#                                               layer (include/rtsync/client) is undocumented
#
# Every undocumented symbol is listed in OUT_DIR/warnings.log; those of the other layers are
# reported as a count and do not fail the check. How a header comment becomes documentation is
# described in docs/api/doxygen_filter.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
out="${1:-$root/build/docs}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

command -v doxygen >/dev/null || { echo "[api-docs] doxygen is not installed (scripts/install-deps.sh)" >&2; exit 1; }

rm -rf "$out/include"
python3 docs/api/doxygen_filter.py include "$out/include"
html=YES
if [ "$check" = 1 ]; then html=NO; fi
# Doxygen's own notices go to stderr (its warnings to warnings.log); "no output formats" is
# expected in check mode.
if ! RTSYNC_DOXYGEN_OUT="$out" RTSYNC_DOXYGEN_HTML="$html" doxygen docs/Doxyfile 2>"$out/doxygen.err"; then
  cat "$out/doxygen.err" >&2
  exit 1
fi
grep -v "No output formats selected" "$out/doxygen.err" >&2 || true

# Warnings name the filtered copies; show the headers' own paths.
sed -i "s|$out/include/|include/|g" "$out/warnings.log"
client=$(grep -c '^include/rtsync/client/.*warning: .* is not documented' "$out/warnings.log" || true)
other=$(grep -c 'warning: .* is not documented' "$out/warnings.log" || true)
other=$((other - client))
echo "[api-docs] undocumented public symbols: client layer $client, other layers $other ($out/warnings.log)"
if [ "$html" = YES ]; then echo "[api-docs] HTML: $out/html/index.html"; fi
if [ "$check" = 1 ] && [ "$client" -gt 0 ]; then
  grep '^include/rtsync/client/.*warning: .* is not documented' "$out/warnings.log" >&2
  echo "[api-docs] FAILED: document the client layer's public symbols above" >&2
  exit 1
fi
