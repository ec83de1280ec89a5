#!/usr/bin/env bash
# Lake catalog lifecycle: start | stop | status | wait | url [writer|reader].
# A project-local PostgreSQL cluster holds DuckLake's metadata, run the way a production one is:
# - its superuser logs in only over the cluster's own Unix socket (peer: the OS user that runs
#   the server), and only this script uses it;
# - the lake has two roles without superuser (scripts/catalog-roles.sql): netpulse_writer for
#   workers, netpulse_reader (SELECT only) for the CLI's reads, the dashboard and your own tools;
#   they log in by password (scram-sha-256) over loopback TCP, nothing is `trust`;
# - the passwords are made at first start into $DATA_DIR/secrets/pgpass (mode 0600, a libpq
#   password file; the worker and the CLI find it there, or by PGPASSFILE) and never printed.
# A cluster made by an earlier version (trust, superuser netpulse) gets all of this on its next start.
# NETPULSE_CATALOG (a libpq connection string) selects an external catalog instead; then nothing
# is started here (run scripts/catalog-roles.sql there once).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR="$(realpath -m "${NETPULSE_DATA_DIR:-$PWD/data}")"   # absolute: postgres runs from /
PORT="${NETPULSE_CATALOG_PORT:-5433}"
SECRETS_DIR="$DATA_DIR/secrets"
PASSFILE="$SECRETS_DIR/pgpass"
ROLES_SQL="$PWD/scripts/catalog-roles.sql"
DB=netpulse
EXTERNAL="${NETPULSE_CATALOG:-}"
local_url() { echo "host=127.0.0.1 port=$PORT dbname=$DB user=netpulse_$1"; }
URL="${EXTERNAL:-$(local_url writer)}"
READER_URL="${NETPULSE_CATALOG_READER:-${EXTERNAL:-$(local_url reader)}}"
PG_BIN=""

# The OS user that runs the server (PostgreSQL refuses root) and is its superuser over the socket.
if [ "$(id -u)" = 0 ]; then SERVER_USER=postgres; else SERVER_USER="$(id -un)"; fi

# Client output may be logged (CI), so never print a password from NETPULSE_CATALOG.
redacted() { sed -E "s/(password=)('[^']*'|[^ ]*)/\1***/; s#(://[^:/@]*:)[^@]*@#\1***@#" <<<"$1"; }

# initdb/pg_ctl from PATH, else the highest Debian/Ubuntu version; sibling tools from the same folder.
find_pg() {
  local ctl
  ctl="$(command -v pg_ctl || true)"
  [ -n "$ctl" ] && command -v initdb >/dev/null || ctl="$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$ctl" ]; then
    echo "[catalog] ERROR: PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin;" \
      "install them, e.g. apt-get install postgresql (as root), or set NETPULSE_CATALOG to an existing catalog" >&2
    exit 1
  fi
  PG_BIN="$(dirname "$(readlink -f "$ctl")")"
}
pg_tool() { if [ -x "$PG_BIN/$1" ]; then echo "$PG_BIN/$1"; else command -v "$1" || echo "$1"; fi; }

# Runs a server tool as $SERVER_USER, from / so that an unreadable working directory does not matter.
as_owner() {
  if [ "$(id -u)" != 0 ]; then "$@"; return; fi
  id "$SERVER_USER" >/dev/null 2>&1 || {
    echo "[catalog] ERROR: PostgreSQL refuses to run as root and there is no '$SERVER_USER' user to run it as" \
      "(apt-get install postgresql creates one)" >&2; exit 1; }
  (cd / && if command -v runuser >/dev/null; then runuser -u "$SERVER_USER" -- "$@"
          else su "$SERVER_USER" -s /bin/bash -c "$(printf '%q ' "$@")"; fi)
}

# Where the cluster lives: $DATA_DIR/catalog when its server user can reach it. As root, a data
# folder under a private home is not reachable by postgres; rather than open the folders above it,
# the cluster then lives in a folder postgres owns, named after the data folder.
cluster_dir() {
  if [ -f "$DATA_DIR/catalog/PG_VERSION" ] || [ "$(id -u)" != 0 ]; then echo "$DATA_DIR/catalog"; return; fi
  mkdir -p "$DATA_DIR"
  if as_owner test -x "$DATA_DIR"; then echo "$DATA_DIR/catalog"; return; fi
  local home
  home="$(getent passwd "$SERVER_USER" | cut -d: -f6)"
  echo "$home/netpulse-catalogs/$(printf '%s' "$DATA_DIR" | sha256sum | cut -c1-16)"
}
CLUSTER="$(cluster_dir)"
LOG_DIR="$CLUSTER/log"

running() { [ -f "$CLUSTER/PG_VERSION" ] && as_owner "$(pg_tool pg_ctl)" status -D "$CLUSTER" >/dev/null 2>&1; }

# pg_isready needs no password: it only asks whether the server accepts connections.
wait_healthy() {
  for _ in $(seq 1 120); do
    if "$(pg_tool pg_isready)" -q -d "$URL" >/dev/null 2>&1; then
      echo "[catalog] accepting connections: $(redacted "$URL")"; return 0
    fi
    [ -n "$EXTERNAL" ] || running || { echo "[catalog] ERROR: PostgreSQL is not running; see $LOG_DIR" >&2; return 1; }
    sleep 0.5
  done
  echo "[catalog] ERROR: not accepting connections after 60 s: $(redacted "$URL")" >&2; return 1
}

# Two random passwords in a libpq password file only the invoking user can read; kept once made.
ensure_passwords() {
  [ -s "$PASSFILE" ] && return 0
  (umask 077; mkdir -p "$SECRETS_DIR"; chmod 700 "$SECRETS_DIR"
   {
     for role in writer reader; do
       printf '*:*:%s:netpulse_%s:%s\n' "$DB" "$role" "$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
     done
   } >"$PASSFILE.part" && mv "$PASSFILE.part" "$PASSFILE")
  echo "[catalog] made the lake roles' passwords: $PASSFILE (mode 0600)"
}
password_of() { sed -n "s/^\*:\*:$DB:netpulse_$1://p" "$PASSFILE"; }

# The cluster's authentication, written anew on every start: superuser by peer over the socket,
# the lake roles by password over loopback TCP, nobody else.
write_hba() {
  as_owner tee "$CLUSTER/pg_hba.conf" >/dev/null <<HBA
# Written by scripts/catalog.sh on every start; edits are lost.
# TYPE  DATABASE  USER                              ADDRESS       METHOD
local   all       $SERVER_USER                      peer
host    $DB       netpulse_writer,netpulse_reader   127.0.0.1/32  scram-sha-256
HBA
}

admin_psql() { as_owner "$(pg_tool psql)" -X -q -v ON_ERROR_STOP=1 -h "$CLUSTER" -p "$PORT" -U "${ADMIN:-$SERVER_USER}" "$@"; }

# Earlier versions made the cluster with trust auth and the superuser netpulse: log in as it one
# last time to create the superuser this script now uses (the old role can no longer log in).
upgrade_trust_cluster() {
  uses_trust || return 0
  echo "[catalog] this cluster used trust authentication: moving it to passwords and two lake roles"
  ADMIN=netpulse admin_psql -d postgres -tAc \
    "SELECT 1 FROM pg_roles WHERE rolname = '$SERVER_USER'" | grep -q 1 \
    || ADMIN=netpulse admin_psql -d postgres -c "CREATE ROLE \"$SERVER_USER\" SUPERUSER LOGIN"
}

# Database, roles, grants: idempotent, so existing lakes get the roles on the next start. The
# passwords reach psql on its standard input, never its command line.
provision() {
  if [ "$(admin_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    admin_psql -d postgres -c "CREATE DATABASE $DB"
    echo "[catalog] created database $DB"
  fi
  { printf "\\set writer_password '%s'\n\\set reader_password '%s'\n" "$(password_of writer)" "$(password_of reader)"
    cat "$ROLES_SQL"; } | admin_psql -d "$DB" -f -
}

# Logs bounded and free of customer data: one file per hour of the day, overwritten a day later;
# errors without the statement or its DETAIL (a failed insert would otherwise log its rows).
SERVER_SETTINGS=(-p "$PORT" -c listen_addresses=127.0.0.1 -k "'$CLUSTER'" -c password_encryption=scram-sha-256
  -c logging_collector=on -c log_directory=log -c log_filename=catalog-%H.log -c log_rotation_age=60
  -c log_rotation_size=0 -c log_truncate_on_rotation=on -c log_error_verbosity=terse
  -c log_min_error_statement=panic -c "log_line_prefix='%m [%p] %u@%d '"
  -c "max_connections=${NETPULSE_CATALOG_MAX_CONNECTIONS:-100}"
  -c "fsync=${NETPULSE_CATALOG_FSYNC:-on}")   # off only for throwaway test clusters

start_server() {
  as_owner mkdir -p "$LOG_DIR"
  # Settings on the command line, not in postgresql.conf, so a changed port applies on restart.
  as_owner "$(pg_tool pg_ctl)" start -D "$CLUSTER" -l "$LOG_DIR/server-start.log" -w -t 60 -o "${SERVER_SETTINGS[*]}" >/dev/null \
    || { echo "[catalog] ERROR: PostgreSQL did not start; see $LOG_DIR" >&2; as_owner tail -n 20 "$LOG_DIR/server-start.log" >&2; exit 1; }
  echo "[catalog] started PostgreSQL on 127.0.0.1:$PORT (cluster $CLUSTER, logs $LOG_DIR)"
}
uses_trust() { as_owner grep -qE '^[^#]*\btrust\b' "$CLUSTER/pg_hba.conf"; }

case "${1:-}" in
  start)
    if [ -n "$EXTERNAL" ]; then echo "[catalog] NETPULSE_CATALOG is set: using the external catalog $(redacted "$URL"), starting nothing"; exit 0; fi
    find_pg
    ensure_passwords
    if [ "$CLUSTER" != "$DATA_DIR/catalog" ]; then
      echo "[catalog] $DATA_DIR is not reachable by the $SERVER_USER user (a private folder above it): the cluster lives in $CLUSTER, owned by $SERVER_USER"
    fi
    # A cluster of an earlier version still running has its old settings (logs with statements): restart it.
    if running && uses_trust; then as_owner "$(pg_tool pg_ctl)" stop -D "$CLUSTER" -m fast -w >/dev/null; fi
    if running; then
      echo "[catalog] already running ($CLUSTER)"
    else
      if [ ! -f "$CLUSTER/PG_VERSION" ]; then
        mkdir -p "$CLUSTER"; chmod 700 "$CLUSTER"
        [ "$(id -u)" != 0 ] || chown "$SERVER_USER": "$CLUSTER"
        echo "[catalog] initdb $CLUSTER ($("$(pg_tool initdb)" --version))"
        out="$(as_owner "$(pg_tool initdb)" -D "$CLUSTER" --auth-local=peer --auth-host=scram-sha-256 -U "$SERVER_USER" -E UTF8 --locale=C 2>&1)" \
          || { echo "[catalog] ERROR: initdb failed: $out" >&2; exit 1; }
      fi
      start_server
    fi
    upgrade_trust_cluster
    write_hba
    as_owner "$(pg_tool pg_ctl)" reload -D "$CLUSTER" >/dev/null
    provision
    wait_healthy ;;
  wait) if [ -n "$EXTERNAL" ]; then command -v pg_isready >/dev/null || find_pg; else find_pg; fi; wait_healthy ;;
  status)
    if [ -n "$EXTERNAL" ]; then
      command -v pg_isready >/dev/null || find_pg
      if "$(pg_tool pg_isready)" -q -d "$URL"; then echo "[catalog] external catalog reachable: $(redacted "$URL")"
      else echo "[catalog] external catalog not reachable: $(redacted "$URL")"; exit 1; fi
    else
      find_pg
      if running; then echo "[catalog] running at 127.0.0.1:$PORT ($CLUSTER, logs $LOG_DIR)"; else echo "[catalog] not running"; exit 1; fi
    fi ;;
  stop)
    if [ -n "$EXTERNAL" ]; then echo "[catalog] NETPULSE_CATALOG is set: external catalog, nothing to stop"; exit 0; fi
    find_pg
    if running; then as_owner "$(pg_tool pg_ctl)" stop -D "$CLUSTER" -m fast -w >/dev/null; echo "[catalog] stopped"
    else echo "[catalog] not running"; fi ;;
  url) case "${2:-writer}" in writer) echo "$URL" ;; reader) echo "$READER_URL" ;; *) echo "usage: $0 url [writer|reader]" >&2; exit 2 ;; esac ;;
  *) echo "usage: $0 start|stop|status|wait|url [writer|reader]" >&2; exit 2 ;;
esac
