#!/usr/bin/env bash
# Build the Debian base image every local image starts from, without pulling anything:
# debootstrap (minbase) into a directory, then `docker import`. apt works inside it, pointed at the
# same Debian mirror this host uses (or $DEBIAN_MIRROR).
#   usage: base-image.sh [IMAGE]        default IMAGE: safeagent/debian-base:$DEBIAN_SUITE
source "$(dirname "$0")/lib.sh"

IMAGE=${1:-safeagent/debian-base:$DEBIAN_SUITE}

# The host's Debian mirror, read from its apt sources (deb822 or one-line format).
host_mirror() {
  local kind=$1  # "main" or "security"
  local uris
  # A host may have only one of the two formats: a missing file is no error here.
  uris=$( { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } | sed -n 's/^URIs:[[:space:]]*//p'; \
          { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } | awk '$1=="deb" {print $2}')
  if [[ $kind == security ]]; then grep -m1 -- '-security' <<<"$uris" || true
  else grep -v -- '-security' <<<"$uris" | head -n1; fi
}

build() {
  local mirror=${DEBIAN_MIRROR:-$(host_mirror main)}
  local security=${DEBIAN_SECURITY_MIRROR:-$(host_mirror security)}
  [[ -n $mirror ]] || die "no Debian mirror found in the host's apt sources; set DEBIAN_MIRROR"
  local root; root=$(mktemp -d "$SAFEAGENT_CACHE/rootfs.XXXXXX")
  run_logged debootstrap debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$mirror"
  {
    echo "deb $mirror $DEBIAN_SUITE main"
    echo "deb $mirror $DEBIAN_SUITE-updates main"
    [[ -n $security ]] && echo "deb $security $DEBIAN_SUITE-security main"
  } >"$root/etc/apt/sources.list"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/90safeagent"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$IMAGE" >/dev/null
  rm -rf "$root"
}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "    $IMAGE: present"
else
  step "image: $IMAGE (debootstrap $DEBIAN_SUITE)" build
fi
