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
# Only where it does end it: bash runs the ERR trap inside command substitutions too, where `set -e`
# is off and the script goes on, and an ERROR line there would report a failure that did not happen
# (a successful `make demo` once printed four). The caller sees such a status, or the empty output.
set -E
trap 'on_error $? "$BASH_COMMAND" "${BASH_SOURCE[0]##*/}" "$LINENO"' ERR
on_error() {
  if [[ $- == *e* ]]; then log "ERROR: exit status $1 from: $2 ($3 line $4)"; fi
}

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

# remove_node_container NAME: `docker rm -f`, and when that fails, recover the way it fails here.
# If the Docker engine was killed while a node ran (a session's end), runc processes inside the node
# can be left waiting in cgroups that a runc killed mid-operation had frozen; Docker then never sees
# the container exit. Thaw those cgroups, kill whatever is left in them, and remove the container.
remove_node_container() {
  local name=$1 id state procs
  id=$(docker inspect --format '{{.Id}}' "$name" 2>/dev/null) || return 0
  timeout 120 docker rm -f -v "$name" >/dev/null 2>&1 && return 0
  log "    $name does not stop: thawing its frozen cgroups and killing what is left in them"
  while IFS= read -r state; do
    grep -q FROZEN "$state" 2>/dev/null && { echo THAWED >"$state" 2>/dev/null || true; }
  done < <(find /sys/fs/cgroup -path "*$id*" -name freezer.state 2>/dev/null)
  while IFS= read -r procs; do
    xargs -r kill -9 <"$procs" 2>/dev/null || true
  done < <(find /sys/fs/cgroup -path "*$id*" -name cgroup.procs 2>/dev/null)
  sleep 2
  timeout 120 docker rm -f -v "$name" >/dev/null
}

# delete_kind_cluster: `kind delete cluster`, forcing the node containers out if Docker cannot stop them.
delete_kind_cluster() {
  kind delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 && return 0
  local node
  for node in $(docker ps -a --filter "label=io.x-k8s.kind.cluster=$CLUSTER_NAME" --format '{{.Names}}'); do
    remove_node_container "$node"
  done
  kind delete cluster --name "$CLUSTER_NAME" >/dev/null
}

kube_minor() { local v=${KUBERNETES_VERSION#v}; v=${v#*.}; echo "${v%%.*}"; }
