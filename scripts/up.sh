#!/usr/bin/env bash
# Brings netpulse up on this machine: installs what is missing, starts the Temporal dev server
# (persistent SQLite in data/), the lake's PostgreSQL catalog (data/catalog, unless
# NETPULSE_CATALOG points at one), the worker, the generator, the continuous pipeline and the
# maintenance schedule (every 10 minutes); Ctrl-C stops everything, also when the output is piped
# (`up.sh | tee up.log`: Ctrl-C kills tee too, and the shutdown's messages then go to the terminal
# and, as every message of this script does, to data/logs/up.log). Running it again resumes with
# the same history, landing zone and lake.
#
# Environment: NETPULSE_DATA_DIR (default data/: logs, Temporal's SQLite file, catalog, landing
# zone, lake), TEMPORAL_PORT and TEMPORAL_UI_PORT (7233, 8233), NETPULSE_CATALOG_PORT (5433),
# NETPULSE_DASHBOARD_PORT (8080), NETPULSE_LANDING_DIR, NETPULSE_DATA_PATH, NETPULSE_THROTTLE_ADAPTER
# (dryrun; tc or webhook enforce throttles, docs/throttling.md); with all of them set,
# it runs beside another up.sh without touching its data or ports. NETPULSE_SKIP_SETUP=1 skips
# scripts/setup.sh and the build (for test/up.test.ts, which runs after both).
#
# `up.sh --s3` (or NETPULSE_S3=1) puts the lake's data files and the landing zone on object
# storage: a local SeaweedFS S3 server (scripts/s3.sh, NETPULSE_S3_PORT 8333 and the nine ports
# after it) with the bucket netpulse, s3://netpulse/lake and s3://netpulse/landing, and everything
# else in data-s3/ (a lake of its own: its catalog, Temporal history and keys), so the local-disk
# stack in data/ stays as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${1:-}" = "--s3" ] && NETPULSE_S3=1
S3="${NETPULSE_S3:-}"
if [ -n "$S3" ]; then DATA_DIR="${NETPULSE_DATA_DIR:-$PWD/data-s3}"; else DATA_DIR="${NETPULSE_DATA_DIR:-$PWD/data}"; fi
export NETPULSE_DATA_DIR="$DATA_DIR"
LOG_DIR="$DATA_DIR/logs"
UP_LOG="$LOG_DIR/up.log"
DASHBOARD_PORT="${NETPULSE_DASHBOARD_PORT:-8080}"
mkdir -p "$LOG_DIR"

# A reader of stdout that has gone away (tee after Ctrl-C, `| head`) must not kill this script
# before it stops what it started: writes to it fail instead, and say falls back.
trap '' PIPE

# A message to stdout and to data/logs/up.log; when stdout cannot take it, to the terminal if
# there is one. A message that cannot be written anywhere is dropped: it never stops the script.
say() {
  printf '%s\n' "$*" >>"$UP_LOG" 2>/dev/null || true
  { printf '%s\n' "$*" || printf '%s\n' "$*" >/dev/tty; } 2>/dev/null || true
}

# Runs a command with its output (stdout and stderr) through say, line by line; its exit status.
say_output() {
  local line
  "$@" 2>&1 | while IFS= read -r line || [ -n "$line" ]; do say "$line"; done
}

say "[up] $(date -u +%FT%TZ) starting (data: $DATA_DIR)"
if [ -z "${NETPULSE_SKIP_SETUP:-}" ]; then
  bash scripts/setup.sh
  say "[up] building"
  npm run --silent build
fi

worker_pid="" dashboard_pid="" watch_pid="" stopping=""

# On Ctrl-C, TERM or any exit (a start that failed too): stop what runs, in order. Nothing in here
# may end it early: no -e, messages through say, and a second Ctrl-C is ignored (the commands
# started from here ignore it too), so the catalog and the server are always asked to stop.
shutdown() {
  trap '' INT
  trap - TERM EXIT
  set +e
  stopping=1
  local failed="" pid
  say ""
  say "[up] stopping the worker (it finishes its running batches), then the catalog and the Temporal dev server"
  for pid in $dashboard_pid $watch_pid; do kill -TERM "$pid" 2>/dev/null; done
  if [ -n "$worker_pid" ]; then
    kill -INT "$worker_pid" 2>/dev/null
    wait "$worker_pid" 2>/dev/null
  fi
  say_output bash scripts/catalog.sh stop || failed+=" the catalog"
  [ -n "$S3" ] && { say_output bash scripts/s3.sh stop || failed+=" the S3 server"; }
  say_output bash scripts/server.sh stop || failed+=" the Temporal dev server"
  if [ -z "$failed" ]; then say "[up] stopped"; else say "[up] ERROR: could not stop$failed (see above and $LOG_DIR)"; fi
}
trap shutdown INT TERM EXIT

bash scripts/server.sh start
bash scripts/catalog.sh start
if [ -n "$S3" ]; then
  bash scripts/s3.sh start
  set -a; . "$DATA_DIR/secrets/s3.env"; set +a   # the store's keys: into this environment, never printed
  export NETPULSE_S3_ENDPOINT="127.0.0.1:${NETPULSE_S3_PORT:-8333}" NETPULSE_S3_URL_STYLE=path NETPULSE_S3_USE_SSL=false AWS_REGION="${AWS_REGION:-us-east-1}"
  export NETPULSE_DATA_PATH="${NETPULSE_DATA_PATH:-s3://netpulse/lake}" NETPULSE_LANDING_DIR="${NETPULSE_LANDING_DIR:-s3://netpulse/landing}"
  export NETPULSE_LANDING_ROOTS="${NETPULSE_LANDING_ROOTS:-s3://netpulse}"
  # Where the store and the lake are, for the CLI (config.ts reads it with NETPULSE_DATA_DIR=$DATA_DIR); no key in it.
  printf '%s\n' "NETPULSE_S3_ENDPOINT=$NETPULSE_S3_ENDPOINT" "NETPULSE_S3_URL_STYLE=path" "NETPULSE_S3_USE_SSL=false" \
    "AWS_REGION=$AWS_REGION" "NETPULSE_DATA_PATH=$NETPULSE_DATA_PATH" "NETPULSE_LANDING_DIR=$NETPULSE_LANDING_DIR" \
    "NETPULSE_LANDING_ROOTS=$NETPULSE_LANDING_ROOTS" >"$DATA_DIR/netpulse.env"
fi
NETPULSE_THROTTLE_ADAPTER="${NETPULSE_THROTTLE_ADAPTER:-dryrun}" node dist/worker.js >>"$LOG_DIR/worker.log" 2>&1 &
worker_pid=$!
node dist/client/cli.js dashboard --port "$DASHBOARD_PORT" >>"$LOG_DIR/dashboard.log" 2>&1 &
dashboard_pid=$!

cli() { node dist/client/cli.js "$@"; }
cli generator start --mode population
cli continuous start
# Event-driven passes: a file watcher signals the pipeline when files land (the interval stays as a
# safety net). An object store has no file events to watch: the pipeline lists its prefix each interval.
if [ -z "$S3" ]; then
  cli watch >>"$LOG_DIR/watch.log" 2>&1 &
  watch_pid=$!
fi
# Every 10 minutes: each continuous pass adds small files to the tables it rewrites, and every
# statement on a table reads its file list, so a pass slows as they pile up (bench/profile.ts
# --micro 150: gold 0.63 -> 0.91 s a pass without maintenance, 0.49 -> 0.54 s with it every 50).
# Landing files are archived an hour after they were taken: every pass lists each source's folder
# (2,000 files in one made its batch ~60 ms longer, bench/profile.ts --files 2000 --micro 10).
cli maintenance schedule --every 10m --landing archive --landing-retention-hours 1
# Throttle proposals for heavy clients, in a dry run: nothing touches the network unless the
# worker runs with NETPULSE_THROTTLE_ADAPTER=tc or webhook (docs/throttling.md).
cli throttle start --observe-seconds 60
say "[up] dashboard: http://localhost:$DASHBOARD_PORT/   Temporal Web UI: http://localhost:${TEMPORAL_UI_PORT:-8233}   logs: $LOG_DIR/"
say "[up] landing zone: ${NETPULSE_LANDING_DIR:-$DATA_DIR/landing}   lake files: ${NETPULSE_DATA_PATH:-$DATA_DIR/lake}   catalog: $(bash scripts/catalog.sh status 2>&1 | head -n1)"
say "[up] answers: node dist/client/cli.js report   status: node dist/client/cli.js status   Ctrl-C to stop"
while kill -0 "$worker_pid" 2>/dev/null; do
  sleep 10
  cli generator status --brief 2>/dev/null || true
  cli continuous status --brief 2>/dev/null || true
done
[ -n "$stopping" ] && exit 0
say "[up] the worker exited on its own; see $LOG_DIR/worker.log" >&2
exit 1
