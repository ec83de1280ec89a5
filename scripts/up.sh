#!/usr/bin/env bash
# Brings netpulse up on this machine: installs what is missing, starts the Temporal dev server
# (persistent SQLite in data/), the lake's PostgreSQL catalog (data/catalog, unless
# NETPULSE_CATALOG points at one), the worker, the generator, the continuous pipeline and the
# maintenance schedule (every 10 minutes); Ctrl-C stops everything. Running it again resumes with
# the same history, landing zone and lake.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "[up] building"
npm run --silent build

bash scripts/server.sh start
bash scripts/catalog.sh start
mkdir -p data/logs
node dist/worker.js >>data/logs/worker.log 2>&1 &
worker_pid=$!
node dist/client/cli.js dashboard --port "${NETPULSE_DASHBOARD_PORT:-8080}" >>data/logs/dashboard.log 2>&1 &
dashboard_pid=$!
stopping=""

shutdown() {
  trap - INT TERM EXIT
  stopping=1
  echo; echo "[up] stopping the worker (it finishes its running batches), then the catalog and the Temporal dev server"
  kill -TERM "$dashboard_pid" "${watch_pid:-}" 2>/dev/null || true
  kill -INT "$worker_pid" 2>/dev/null || true
  wait "$worker_pid" 2>/dev/null || true
  bash scripts/catalog.sh stop || true
  bash scripts/server.sh stop || true
}
trap shutdown INT TERM EXIT

cli() { node dist/client/cli.js "$@"; }
cli generator start --mode population
cli continuous start
# Event-driven passes: a file watcher signals the pipeline when files land (the interval stays as a safety net).
cli watch >>data/logs/watch.log 2>&1 &
watch_pid=$!
# Every 10 minutes: each continuous pass adds small files to the tables it rewrites, and every
# statement on a table reads its file list, so a pass slows as they pile up (bench/profile.ts
# --micro 150: gold 0.63 -> 0.91 s a pass without maintenance, 0.49 -> 0.54 s with it every 50).
# Landing files are archived an hour after they were taken: every pass lists each source's folder
# (2,000 files in one made its batch ~60 ms longer, bench/profile.ts --files 2000 --micro 10).
cli maintenance schedule --every 10m --landing archive --landing-retention-hours 1
echo "[up] dashboard: http://localhost:${NETPULSE_DASHBOARD_PORT:-8080}/   Temporal Web UI: http://localhost:${TEMPORAL_UI_PORT:-8233}   logs: data/logs/"
echo "[up] landing zone: ${NETPULSE_LANDING_DIR:-data/landing}   lake files: ${NETPULSE_DATA_PATH:-data/lake}   catalog: $(bash scripts/catalog.sh status 2>&1 | head -n1)"
echo "[up] answers: node dist/client/cli.js report   status: node dist/client/cli.js status   Ctrl-C to stop"
while kill -0 "$worker_pid" 2>/dev/null; do
  sleep 10
  cli generator status --brief 2>/dev/null || true
  cli continuous status --brief 2>/dev/null || true
done
[ -n "$stopping" ] && exit 0
echo "[up] the worker exited on its own; see data/logs/worker.log" >&2
exit 1
