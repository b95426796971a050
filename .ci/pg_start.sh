#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the tests (Debian packages), and print its DATABASE_URL.
# Usage: eval "$(bash .ci/pg_start.sh)"   — installs postgresql when missing (needs root).
set -euo pipefail
PGPORT="${PGPORT:-54329}"
PGROOT="${PGROOT:-/tmp/memberhub-pg}"
PGDB="${MEMBERHUB_PG_DB:-memberhub}"
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
RUNAS=()
if [ "$(id -u)" = "0" ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home "$PGROOT" postgres
  RUNAS=(runuser -u postgres --)
fi
mkdir -p "$PGROOT"
[ "$(id -u)" = "0" ] && chown postgres "$PGROOT"
if [ ! -f "$PGROOT/data/PG_VERSION" ]; then
  "${RUNAS[@]}" "$BIN/initdb" -D "$PGROOT/data" -U postgres -A trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! "${RUNAS[@]}" "$BIN/pg_ctl" -D "$PGROOT/data" status >/dev/null 2>&1; then
  "${RUNAS[@]}" "$BIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w \
    -o "-p $PGPORT -k $PGROOT -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
fi
for _ in $(seq 1 30); do
  "$BIN/pg_isready" -h 127.0.0.1 -p "$PGPORT" >/dev/null 2>&1 && break
  sleep 1
done
"$BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='$PGDB'" | grep -q 1 \
  || "$BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE \"$PGDB\"" >&2
echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/$PGDB"
