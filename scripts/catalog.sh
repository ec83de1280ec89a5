#!/usr/bin/env bash
# Lake catalog lifecycle: start | stop | status | wait | url.
# A project-local PostgreSQL cluster under data/catalog holds DuckLake's metadata. Loopback only
# with trust auth (a dev cluster: no password in the repo). NETPULSE_CATALOG (a libpq connection
# string) selects an external catalog instead; then nothing is started here.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR="$(realpath -m "${NETPULSE_DATA_DIR:-$PWD/data}")"   # absolute: postgres runs from /
PORT="${NETPULSE_CATALOG_PORT:-5433}"
CLUSTER="$DATA_DIR/catalog"
LOG_FILE="$DATA_DIR/logs/catalog.log"
EXTERNAL="${NETPULSE_CATALOG:-}"
URL="${EXTERNAL:-host=127.0.0.1 port=$PORT dbname=netpulse user=netpulse}"
PG_USER=postgres   # who runs the cluster when we are root
PG_BIN=""

# Client output may be logged (CI), so never print a password from NETPULSE_CATALOG.
redacted() { sed -E "s/(password=)('[^']*'|[^ ]*)/\1***/; s#(://[^:/@]*:)[^@]*@#\1***@#" <<<"$1"; }

# initdb/pg_ctl from PATH, else the highest Debian/Ubuntu version; sibling tools from the same folder.
find_pg() {
  local ctl
  ctl="$(command -v pg_ctl || true)"
  [ -n "$ctl" ] && command -v initdb >/dev/null || ctl="$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$ctl" ]; then
    echo "[catalog] ERROR: PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin;" \
      "install them, e.g. apt-get install postgresql, or set NETPULSE_CATALOG to an existing catalog" >&2
    exit 1
  fi
  PG_BIN="$(dirname "$(readlink -f "$ctl")")"
}
pg_tool() { if [ -x "$PG_BIN/$1" ]; then echo "$PG_BIN/$1"; else command -v "$1" || echo "$1"; fi; }

# PostgreSQL refuses to run as root: then run the server tools as $PG_USER, from / so that an
# unreadable working directory does not matter.
as_owner() {
  if [ "$(id -u)" != 0 ]; then "$@"; return; fi
  (cd / && if command -v runuser >/dev/null; then runuser -u "$PG_USER" -- "$@"
          else su "$PG_USER" -s /bin/bash -c "$(printf '%q ' "$@")"; fi)
}

# As root: hand the cluster folder and log to $PG_USER and make every parent folder traversable.
prepare_dirs() {
  mkdir -p "$CLUSTER" "$(dirname "$LOG_FILE")"
  touch "$LOG_FILE"
  [ "$(id -u)" = 0 ] || return 0
  id "$PG_USER" >/dev/null 2>&1 || {
    echo "[catalog] ERROR: PostgreSQL refuses to run as root and there is no '$PG_USER' user to run it as" \
      "(apt-get install postgresql creates one)" >&2; exit 1; }
  chown "$PG_USER": "$CLUSTER" "$LOG_FILE"
  chmod 700 "$CLUSTER"
  local d="" part
  IFS=/ read -ra parts <<<"${DATA_DIR#/}"
  for part in "${parts[@]}"; do   # top down, so each test sees its parents already fixed
    d="$d/$part"
    if ! as_owner test -x "$d"; then chmod o+x "$d"; echo "[catalog] made $d traversable for $PG_USER"; fi
  done
}

running() { [ -f "$CLUSTER/PG_VERSION" ] && as_owner "$(pg_tool pg_ctl)" status -D "$CLUSTER" >/dev/null 2>&1; }

wait_healthy() {
  for _ in $(seq 1 120); do
    if "$(pg_tool pg_isready)" -q -d "$URL" >/dev/null 2>&1; then
      echo "[catalog] accepting connections: $(redacted "$URL")"; return 0
    fi
    [ -n "$EXTERNAL" ] || running || { echo "[catalog] ERROR: PostgreSQL is not running; see $LOG_FILE" >&2; tail -n 20 "$LOG_FILE" >&2 || true; return 1; }
    sleep 0.5
  done
  echo "[catalog] ERROR: not accepting connections after 60 s: $(redacted "$URL")" >&2; return 1
}

case "${1:-}" in
  start)
    if [ -n "$EXTERNAL" ]; then echo "[catalog] NETPULSE_CATALOG is set: using the external catalog $(redacted "$URL"), starting nothing"; exit 0; fi
    find_pg
    if running; then echo "[catalog] already running ($CLUSTER)"; wait_healthy; exit; fi
    prepare_dirs
    if [ ! -f "$CLUSTER/PG_VERSION" ]; then
      echo "[catalog] initdb $CLUSTER ($("$(pg_tool initdb)" --version))"
      as_owner "$(pg_tool initdb)" -D "$CLUSTER" -A trust -U netpulse -E UTF8 --locale=C >>"$LOG_FILE" 2>&1 \
        || { echo "[catalog] ERROR: initdb failed; see $LOG_FILE" >&2; tail -n 20 "$LOG_FILE" >&2; exit 1; }
    fi
    # Settings on the command line, not in postgresql.conf, so a changed port applies on restart.
    as_owner "$(pg_tool pg_ctl)" start -D "$CLUSTER" -l "$LOG_FILE" -w -t 60 \
      -o "-p $PORT -c listen_addresses=127.0.0.1 -k '$CLUSTER'" >/dev/null \
      || { echo "[catalog] ERROR: PostgreSQL did not start; see $LOG_FILE" >&2; tail -n 20 "$LOG_FILE" >&2; exit 1; }
    echo "[catalog] started PostgreSQL on 127.0.0.1:$PORT (cluster $CLUSTER, log $LOG_FILE)"
    wait_healthy
    psql=("$(pg_tool psql)" -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PORT dbname=postgres user=netpulse")
    if [ "$("${psql[@]}" -tAc "select 1 from pg_database where datname = 'netpulse'")" != 1 ]; then
      "${psql[@]}" -c 'create database netpulse'
      echo "[catalog] created database netpulse"
    fi ;;
  wait) if [ -n "$EXTERNAL" ]; then command -v pg_isready >/dev/null || find_pg; else find_pg; fi; wait_healthy ;;
  status)
    if [ -n "$EXTERNAL" ]; then
      command -v pg_isready >/dev/null || find_pg
      if "$(pg_tool pg_isready)" -q -d "$URL"; then echo "[catalog] external catalog reachable: $(redacted "$URL")"
      else echo "[catalog] external catalog not reachable: $(redacted "$URL")"; exit 1; fi
    else
      find_pg
      if running; then echo "[catalog] running at 127.0.0.1:$PORT ($CLUSTER)"; else echo "[catalog] not running"; exit 1; fi
    fi ;;
  stop)
    if [ -n "$EXTERNAL" ]; then echo "[catalog] NETPULSE_CATALOG is set: external catalog, nothing to stop"; exit 0; fi
    find_pg
    if running; then as_owner "$(pg_tool pg_ctl)" stop -D "$CLUSTER" -m fast -w >/dev/null; echo "[catalog] stopped"
    else echo "[catalog] not running"; fi ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|wait|url" >&2; exit 2 ;;
esac
