#!/usr/bin/env bash
# Brings netpulse up on this machine: installs what is missing, starts the Temporal dev server
# (persistent SQLite in data/), the worker, the generator and the continuous pipeline;
# Ctrl-C stops everything.
# Running it again resumes with the same SQLite history, landing zone and lake.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "[up] building"
npm run --silent build

bash scripts/server.sh start
mkdir -p data/logs
node dist/worker.js >>data/logs/worker.log 2>&1 &
worker_pid=$!

shutdown() {
  trap - INT TERM EXIT
  echo; echo "[up] stopping worker (graceful) and Temporal dev server"
  kill -INT "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  bash scripts/server.sh stop
}
trap shutdown INT TERM EXIT

node dist/client/cli.js generator start --mode population
node dist/client/cli.js continuous start
echo "[up] Temporal Web UI: http://localhost:${TEMPORAL_UI_PORT:-8233}   worker log: data/logs/worker.log"
echo "[up] landing zone: ${NETPULSE_LANDING_DIR:-data/landing}   Ctrl-C to stop"
while kill -0 "$worker_pid" 2>/dev/null; do
  sleep 10
  node dist/client/cli.js generator status --brief 2>/dev/null || true
  node dist/client/cli.js continuous status --brief 2>/dev/null || true
done
echo "[up] worker exited; see data/logs/worker.log" >&2
exit 1
