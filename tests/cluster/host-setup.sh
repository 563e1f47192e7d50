#!/usr/bin/env bash
# Host prerequisites: Debian packages, and a running Docker engine able to run kind's privileged
# node containers. Touches Docker's configuration only when this host lacks CAP_SYS_RESOURCE.
source "$(dirname "$0")/lib.sh"

PACKAGES=(docker.io debootstrap iptables ipset iproute2 nftables python3 python3-venv ca-certificates)
SHIM=/usr/local/libexec/safeagent/runc-shim

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then log "    all present: ${PACKAGES[*]}"; return; fi
  log "    installing: ${missing[*]}"
  run_logged apt-update apt-get update
  DEBIAN_FRONTEND=noninteractive run_logged apt-install apt-get install -y --no-install-recommends "${missing[@]}"
}

# CAP_SYS_RESOURCE is capability 24; test it in this process's bounding set.
lacks_sys_resource() {
  local bnd; bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (( (16#$bnd >> 24 & 1) == 0 ))
}

configure_docker() {
  if ! lacks_sys_resource; then log "    CAP_SYS_RESOURCE present: Docker configuration left alone"; return; fi
  install -D -m 0755 "$CLUSTER_DIR/runc-shim.py" "$SHIM"
  local want; want=$(printf '{\n  "runtimes": {"safeagent-runc": {"path": "%s"}},\n  "default-runtime": "safeagent-runc"\n}\n' "$SHIM")
  if [[ -f /etc/docker/daemon.json ]] && ! grep -q safeagent-runc /etc/docker/daemon.json; then
    die "/etc/docker/daemon.json exists and is not ours; add the runtime $SHIM to it by hand (see tests/cluster/README)"
  fi
  if [[ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$want" ]]; then
    mkdir -p /etc/docker && printf '%s' "$want" >/etc/docker/daemon.json
    log "    CHANGED /etc/docker/daemon.json: default runtime $SHIM (drops CAP_SYS_RESOURCE, which root here lacks)"
    if docker info >/dev/null 2>&1; then log "    restarting dockerd for the new runtime"; pkill -x dockerd; sleep 3; fi
  fi
}

start_docker() {
  if docker info >/dev/null 2>&1; then log "    dockerd already running"; return; fi
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker
  else
    setsid nohup dockerd >>"$SAFEAGENT_CACHE/logs/dockerd.log" 2>&1 </dev/null &
  fi
  local i; for i in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
  die "dockerd did not start; see $SAFEAGENT_CACHE/logs/dockerd.log"
}

step "host: Debian packages" install_packages
step "host: Docker runtime for privileged containers" configure_docker
step "host: dockerd" start_docker
