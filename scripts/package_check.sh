#!/usr/bin/env bash
# Checks the installed package the way a user meets it (part of scripts/test.sh):
#   1. `cmake --install <build>` into a temporary prefix; examples/consumer, a separate CMake
#      project, finds it with find_package(rtsync) and links rtsync::client; its object is linked
#      a second time with the flags of rtsync-client.pc (pkg-config);
#   2. a throwaway PostgreSQL 15 and the installed `rtsync server`; the consumer subscribes to a
#      table, a row is inserted, and the consumer must print that one change;
#   3. `cpack -G DEB`, and `dpkg-deb -c` must list the binary, headers, libraries, CMake package,
#      pkg-config files and the systemd unit (and no test doubles).
#
#   bash scripts/package_check.sh [build-dir]      (default build/dev, already built)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$root/build/dev}" && pwd)"

work="$(mktemp -d)"
chmod 755 "$work"  # PostgreSQL runs as `postgres` when this script runs as root
pgdata="$work/pg"
server_pid=""
consumer_pid=""
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
pgbin="$(ls -d /usr/lib/postgresql/15/bin)"

cleanup() {
  if [ -n "$consumer_pid" ]; then kill "$consumer_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -f "$pgdata/data/postmaster.pid" ]; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "package check: $*" >&2
  for f in "$work"/*.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

# Waits up to $3 seconds for the file $1 to contain the text $2.
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# 1. Install, then build the consumer against the installed package only.
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$root/examples/consumer" -B "$work/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer-configure.log" 2>&1 ||
  fail "examples/consumer does not configure against the installed package"
cmake --build "$work/consumer" >"$work/consumer-build.log" 2>&1 ||
  fail "examples/consumer does not build against the installed package"
consumer="$work/consumer/consumer"

# pkg-config: the same object, linked with rtsync-client.pc's flags alone.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
object="$(find "$work/consumer" -name 'main.cpp.o' | head -n 1)"
# shellcheck disable=SC2046
c++ "$object" -o "$work/consumer-pc" $(pkg-config --libs rtsync-client) \
  >"$work/pkg-config.log" 2>&1 || fail "linking with pkg-config --libs rtsync-client fails"
pkg-config --cflags rtsync >/dev/null || fail "pkg-config does not resolve rtsync.pc"
echo "package check: consumer built with find_package(rtsync) and linked with rtsync-client.pc"

# 2. A throwaway PostgreSQL (unix socket in $work only) and the installed server on a free port.
mkdir -p "$pgdata"
[ ${#as_pg[@]} -eq 0 ] || chown postgres "$pgdata"
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdata/data" -U postgres -A trust >"$work/initdb.log" 2>&1 ||
  fail "initdb failed"
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata/data" -w -l "$pgdata/postgres.log" \
  -o "-c wal_level=logical -c listen_addresses='' -c unix_socket_directories='$pgdata' -p 5432" \
  start >/dev/null || fail "PostgreSQL did not start ($(tail -n 5 "$pgdata/postgres.log"))"
db="host=$pgdata port=5432 user=postgres dbname=postgres"
secret="$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 40)"

"$prefix/bin/rtsync" server --db "$db" --listen 127.0.0.1:0 --jwt-secret "$secret" --no-rest \
  >"$work/server.log" 2>&1 &
server_pid=$!
wait_for "$work/server.log" "listening on" 30 || fail "rtsync server did not start"
url="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/server.log" | head -n 1)"

# The table the consumer watches: in the server's publication, readable by the anon role.
psql -X -q -v ON_ERROR_STOP=1 "$db" >/dev/null <<'SQL' || fail "setting up the table failed"
CREATE TABLE consumer_items (id int PRIMARY KEY, name text NOT NULL);
ALTER PUBLICATION supabase_realtime ADD TABLE consumer_items;
GRANT SELECT ON consumer_items TO anon;
SQL
key="$("$prefix/bin/rtsync" token --secret "$secret" --role anon)"

"$consumer" "$url" "$key" consumer_items >"$work/consumer.out" 2>"$work/consumer.log" &
consumer_pid=$!
wait_for "$work/consumer.out" "SUBSCRIBED" 30 || fail "the consumer did not subscribe"
psql -X -q -v ON_ERROR_STOP=1 "$db" \
  -c "INSERT INTO consumer_items VALUES (1, 'from the package check')" >/dev/null ||
  fail "insert failed"
status=0
wait "$consumer_pid" || status=$?
consumer_pid=""
[ "$status" -eq 0 ] || fail "the consumer exited with $status"
change="$(sed -n 2p "$work/consumer.out")"
echo "package check: consumer printed: $change"
case "$change" in
  *'"eventType":"INSERT"'*'"from the package check"'*) ;;
  *'"from the package check"'*'"eventType":"INSERT"'*) ;;
  *) fail "the consumer's line is not the inserted row" ;;
esac
[ "$(wc -l <"$work/consumer.out")" -eq 2 ] || fail "the consumer printed more than one change"

# 3. The Debian package.
(cd "$work" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/deb" \
  >"$work/cpack.log" 2>&1) || fail "cpack -G DEB failed"
deb="$(ls "$work"/deb/*.deb)"
dpkg-deb -c "$deb" | awk '{print $NF}' >"$work/deb-files.txt"
for f in \
  ./usr/bin/rtsync \
  ./usr/include/rtsync/core/result.hpp \
  ./usr/include/rtsync/net/http_client.hpp \
  ./usr/include/rtsync/client/transport/realtime_socket.hpp \
  ./usr/include/rtsync/client/query/query_client.hpp \
  ./usr/include/rtsync/server/server.hpp \
  ./usr/lib/librtsync_core.a \
  ./usr/lib/librtsync_protocol.a \
  ./usr/lib/librtsync_client_transport.a \
  ./usr/lib/librtsync_client_sync.a \
  ./usr/lib/librtsync_server.a \
  ./usr/lib/cmake/rtsync/rtsyncConfig.cmake \
  ./usr/lib/cmake/rtsync/rtsyncConfigVersion.cmake \
  ./usr/lib/cmake/rtsync/rtsyncTargets.cmake \
  ./usr/lib/pkgconfig/rtsync.pc \
  ./usr/lib/pkgconfig/rtsync-client.pc \
  ./usr/lib/systemd/system/rtsync-server.service \
  ./usr/share/rtsync/server.env.example; do
  grep -qxF "$f" "$work/deb-files.txt" || fail "$(basename "$deb") lacks $f"
done
if grep -E 'fake_transport|temp_cluster|testkit|_test' "$work/deb-files.txt"; then
  fail "$(basename "$deb") holds test support"
fi
dpkg-deb -I "$deb" | grep -E '^ (Package|Version|Depends):'
echo "package check: $(basename "$deb") holds the binary, headers, libraries, CMake package," \
  "pkg-config files and the systemd unit ($(wc -l <"$work/deb-files.txt") entries)"
