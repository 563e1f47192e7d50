# Shared helpers for the test-bed scripts. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_DIR/../.." && pwd)"
# shellcheck source=versions.env
source "$CLUSTER_DIR/versions.env"

# One stable cache directory outside the repository holds every build product.
SAFEAGENT_CACHE="${SAFEAGENT_CACHE:-$HOME/.cache/safeagent}"
CLUSTER_NAME="${CLUSTER_NAME:-safeagent}"
BIN="$SAFEAGENT_CACHE/bin"
mkdir -p "$BIN" "$SAFEAGENT_CACHE/stamps" "$SAFEAGENT_CACHE/logs"
export PATH="$BIN:$PATH"

# Go builds: local toolchain only, caches inside SAFEAGENT_CACHE.
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
export GOMODCACHE="$SAFEAGENT_CACHE/go/mod" GOCACHE="$SAFEAGENT_CACHE/go/build"

# Images that exist only on this machine are named under this prefix.
LOCAL_REPO=safeagent.local

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A failing command anywhere (functions included) ends the script and says where.
set -E
trap 'log "ERROR: exit status $? from: $BASH_COMMAND (${BASH_SOURCE[0]##*/} line $LINENO)"' ERR

# step NAME CMD...: run one step, print its name and how long it took.
# `set -e` stays in force inside CMD (no `||` around it): a failure ends the script. Where a caller
# tests a step (`if step ...`), bash suspends `set -e` inside it, so such CMDs return their status
# explicitly, and step passes it on.
step() {
  local name=$1; shift
  local t0=$SECONDS rc
  log "==> $name"
  "$@"
  rc=$?
  if ((rc != 0)); then log "<== $name FAILED after $((SECONDS - t0))s"; return "$rc"; fi
  log "<== $name ($((SECONDS - t0))s)"
}

# Build stamps: a step is skipped when its stamp holds the same key (usually the versions it used).
stamp_ok() { [[ -f "$SAFEAGENT_CACHE/stamps/$1" && "$(cat "$SAFEAGENT_CACHE/stamps/$1")" == "$2" ]]; }
stamp_set() { printf '%s' "$2" >"$SAFEAGENT_CACHE/stamps/$1"; }

# run_logged NAME CMD...: run a noisy command with its output in a log file; show the tail on failure.
run_logged() {
  local name=$1; shift
  local logf="$SAFEAGENT_CACHE/logs/$name.log"
  if ! "$@" >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    die "$name failed; full log: $logf"
  fi
}

kube_minor() { local v=${KUBERNETES_VERSION#v}; v=${v#*.}; echo "${v%%.*}"; }
