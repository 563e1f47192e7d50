#!/usr/bin/env bash
# Build the Debian base image every local image starts from, without pulling anything:
# debootstrap (minbase) into a directory, then `docker import`. apt works inside it, pointed at the
# same Debian mirror this host uses (or $DEBIAN_MIRROR).
#   usage: base-image.sh [IMAGE]        default IMAGE: safeagent/debian-base:$DEBIAN_SUITE
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE=${1:-safeagent/debian-base:$DEBIAN_SUITE}

# apt_sources DIR: one "URI SUITE" line for every source of binary packages that the apt
# configuration under DIR (normally /etc/apt) names, in the order apt reads the files: sources.list,
# then sources.list.d/ by name, where *.list files are in the one-line format and *.sources files
# in the deb822 format (stanzas of "Field: value" lines; some Debian hosts have only these).
# deb-src entries, disabled stanzas (Enabled: no), comments and URIs that are not http(s) are left
# out. A format the host does not use is simply absent: nothing here fails for a missing file.
apt_sources() {
  local dir=$1 file
  local files=()
  for file in "$dir"/sources.list "$dir"/sources.list.d/*; do
    if [[ -f $file && ($file == */sources.list || $file == *.list || $file == *.sources) ]]; then files+=("$file"); fi
  done
  if ((${#files[@]} == 0)); then return 0; fi  # awk without files would read standard input
  awk '
    function keep(uri) { return uri ~ /^https?:\/\// }
    function is_deb(types,   t, n, i) { n = split(types, t); for (i = 1; i <= n; i++) if (t[i] == "deb") return 1; return 0 }
    function flush(   n, m, i, j, uri, suite) {
      if (enabled && is_deb(types)) {
        n = split(uris, uri, " "); m = split(suites, suite, " ")
        for (i = 1; i <= n; i++) if (keep(uri[i])) for (j = 1; j <= m; j++) print uri[i], suite[j]
      }
      types = uris = suites = field = ""; enabled = 1
    }
    FNR == 1 { flush(); deb822 = FILENAME ~ /\.sources$/ }
    deb822 && /^#/ { next }
    deb822 && /^[ \t]*$/ { flush(); next }
    deb822 && /^[ \t]/ {  # a continuation line adds to the field above it
      if (field == "types") types = types " " $0
      else if (field == "uris") uris = uris " " $0
      else if (field == "suites") suites = suites " " $0
      next
    }
    deb822 {
      field = tolower(substr($0, 1, index($0, ":") - 1)); value = substr($0, index($0, ":") + 1)
      if (field == "types") types = value
      else if (field == "uris") uris = value
      else if (field == "suites") suites = value
      else if (field == "enabled") enabled = (tolower(value) !~ /^[ \t]*no[ \t]*$/)
      next
    }
    {  # one-line format: deb [ options ] URI SUITE [COMPONENT...]
      sub(/#.*/, "")
      if ($1 != "deb") next
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if (i + 1 <= NF && keep($i)) print $i, $(i + 1)
    }
    END { flush() }
  ' "${files[@]}"
}

# host_mirror main|security: the host's Debian mirror (or security mirror) for DEBIAN_SUITE, read
# from the apt sources under $APT_DIR (default /etc/apt). Preferred: the entry for DEBIAN_SUITE
# (or DEBIAN_SUITE-security); else, on a host of another release, the first entry of that kind.
# Prints nothing when there is none.
host_mirror() {
  local kind=$1
  apt_sources "${APT_DIR:-/etc/apt}" | awk -v kind="$kind" -v want="$DEBIAN_SUITE" '
    { security = ($2 ~ /-security$/) }
    (kind == "security") != security { next }
    $2 == (kind == "security" ? want "-security" : want) && best == "" { best = $1 }
    first == "" { first = $1 }
    END { if (best != "") print best; else if (first != "") print first }
  '
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

# Sourced (as the unit tests do), this file only defines its functions.
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "    $IMAGE: present"
else
  step "image: $IMAGE (debootstrap $DEBIAN_SUITE)" build
fi
