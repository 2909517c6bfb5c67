#!/usr/bin/env bash
# Installs every Debian package rtsync needs to build, test and benchmark, then the npm test peers.
# Idempotent: only packages that are missing are passed to apt-get, and `npm ci` runs only when the
# lock file changed since the last install. Safe to run on every CI start.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  # lld links every preset (CMakePresets.json): a fraction of ld.bfd's time on the test binaries.
  lld
  # cpack -G DEB (scripts/package_check.sh): dpkg-shlibdeps, and `file` to find the ELF files.
  dpkg-dev file
  clang libclang-rt-14-dev clang-format
  # Boost 1.81 by name: the default libboost-dev is 1.74 (no Boost.URL, old JSON) and conflicts.
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl ca-certificates
  libpq-dev postgresql-15 postgresql-contrib
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libncurses-dev
  libsimdjson-dev
  # tcmalloc, the allocator of the rtsync binary (cmake/RtsyncAllocator.cmake).
  libgoogle-perftools-dev
  # The cluster (docs/scaling.md §3): hiredis encodes and parses RESP; the tests start redis-server.
  libhiredis-dev redis-server
  tmux procps wrk
  doxygen python3
)
# Node.js for the npm peers: the machine image ships nodesource's nodejs (which bundles npm and
# conflicts with Debian's npm package); install Debian's pair only where there is no node at all.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "[install-deps] installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[install-deps] all Debian packages present"
fi

# npm peers for conformance tests and benchmarks (lock file committed).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -f "$root/tests/peers/package-lock.json" ]; then
  stamp="$root/tests/peers/node_modules/.rtsync-lock-stamp"
  if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$root/tests/peers/package-lock.json"; then
    echo "[install-deps] npm ci in tests/peers"
    (cd "$root/tests/peers" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$root/tests/peers/package-lock.json" "$stamp"
  fi
fi
