#!/usr/bin/env bash
# Temporal dev server lifecycle: start | stop | status | wait.
# Persistent SQLite under data/, namespace default; ports and paths overridable by env.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL="${TEMPORAL_CLI:-$PWD/.tools/bin/temporal}"
DATA_DIR="${NETPULSE_DATA_DIR:-$PWD/data}"
PORT="${TEMPORAL_PORT:-7233}"
UI_PORT="${TEMPORAL_UI_PORT:-8233}"
DB_FILE="${TEMPORAL_DB_FILE:-$DATA_DIR/temporal.sqlite}"
LOG_FILE="$DATA_DIR/logs/temporal.log"
PID_FILE="$DATA_DIR/temporal.pid"
ADDRESS="127.0.0.1:$PORT"

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

# The process listening on TCP port $1 of loopback, as ss shows it (users:(("name",pid=N,fd=M))), or nothing.
listener() { ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:(.*)' | head -n 1 || true; }
# Something accepts connections on port $1: ss where it can tell, else a plain connect.
port_taken() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ] || (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Healthy means this project's server answers: the process it started is alive and is the one
# listening on $PORT. A server of someone else's on the port would answer the health check too,
# and the worker and CLI would then use a Temporal that is not theirs.
wait_healthy() {
  local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  for _ in $(seq 1 120); do
    running || { echo "[server] ERROR: server exited; see $LOG_FILE" >&2; tail -n 20 "$LOG_FILE" >&2 || true; return 1; }
    if "$TEMPORAL" operator cluster health --address "$ADDRESS" >/dev/null 2>&1; then
      local holder; holder="$(listener "$PORT")"
      if [ -n "$holder" ] && ! grep -q "pid=$pid," <<<"$holder"; then
        echo "[server] ERROR: the server answering at $ADDRESS is not the one this script started (pid $pid): $holder" >&2; return 1
      fi
      echo "[server] healthy at $ADDRESS — Web UI http://localhost:$UI_PORT"; return 0
    fi
    sleep 0.5
  done
  echo "[server] ERROR: not healthy after 60 s; see $LOG_FILE" >&2; return 1
}

case "${1:-}" in
  start)
    [ -x "$TEMPORAL" ] || { echo "[server] ERROR: $TEMPORAL missing; run scripts/setup.sh" >&2; exit 1; }
    if running; then echo "[server] already running (pid $(cat "$PID_FILE"))"; wait_healthy; exit; fi
    for port in "$PORT" "$UI_PORT"; do
      if port_taken "$port"; then
        echo "[server] ERROR: port $port on 127.0.0.1 is already in use$(listener "$port" | sed 's/^/ by /'): not starting a second Temporal there," \
          "and not using that one (it is not this project's). Stop it, or choose other ports: TEMPORAL_PORT=… TEMPORAL_UI_PORT=… bash scripts/server.sh start" >&2
        exit 1
      fi
    done
    mkdir -p "$DATA_DIR/logs"
    # Custom search attributes make runs findable in the Web UI by layer and source. A session of
    # its own: Ctrl-C on up.sh must not reach the server before the worker has drained (the worker's
    # last results went nowhere), `server.sh stop` stops it.
    setsid nohup "$TEMPORAL" server start-dev \
      --db-filename "$DB_FILE" --namespace default --ip 127.0.0.1 \
      --port "$PORT" --ui-port "$UI_PORT" --log-level warn --ui-disable-news-fetch \
      --search-attribute NetpulseLayer=Keyword --search-attribute NetpulseSource=Keyword --search-attribute NetpulseParked=Bool --search-attribute NetpulseRetrying=Bool \
      >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    echo "[server] started pid $! (db $DB_FILE, log $LOG_FILE)"
    wait_healthy ;;
  wait) wait_healthy ;;
  status)
    if running; then echo "[server] running pid $(cat "$PID_FILE") at $ADDRESS"; else echo "[server] not running"; exit 1; fi ;;
  stop)
    if running; then
      pid="$(cat "$PID_FILE")"; kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      echo "[server] stopped"
    else echo "[server] not running"; fi
    rm -f "$PID_FILE" ;;
  *) echo "usage: $0 start|stop|status|wait" >&2; exit 2 ;;
esac
