#!/usr/bin/env bash
# Build every Go component of the test bed from the Go module proxy, pinned by versions.env.
# Host tools land in $SAFEAGENT_CACHE/bin; node and image binaries in $SAFEAGENT_CACHE/out/<version>.
source "$(dirname "$0")/lib.sh"

WRAP="$SAFEAGENT_CACHE/wrappers"
OUT="$SAFEAGENT_CACHE/out"

# module_gomod MODULE@VERSION: path of that module's go.mod in the module cache (downloaded if needed).
module_gomod() {
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])'
}

# go_install STAMP DEST LDFLAGS PKG@VERSION...: `go install` for modules without replace directives.
go_install() {
  local stamp=$1 dest=$2 ldflags=$3; shift 3
  stamp_ok "$stamp" "$*|$ldflags" && { log "    $stamp: cached"; return; }
  mkdir -p "$dest"
  GOBIN="$dest" run_logged "$stamp" go install -trimpath -ldflags "-s -w $ldflags" "$@"
  stamp_set "$stamp" "$*|$ldflags"
}

build_kubernetes() {
  local ver=$KUBERNETES_VERSION minor; minor=$(kube_minor)
  local dest="$OUT/kubernetes-$ver" key="$ver"
  stamp_ok kubernetes "$key" && [[ -x "$dest/kubelet" ]] && { log "    kubernetes: cached"; return; }
  # k8s.io/kubernetes points its staging modules at ./staging with replace directives, which only
  # count in the main module; this wrapper pins each of them to the matching published v0.x version.
  local w="$WRAP/kubernetes-$ver"; mkdir -p "$w" "$dest"
  local gomod; gomod=$(module_gomod "k8s.io/kubernetes@$ver")
  {
    echo "module safeagent.local/build/kubernetes"
    echo "go 1.25.0"
    echo "require k8s.io/kubernetes $ver"
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 v0.'"${ver#v1.}"'#p' "$gomod"
  } >"$w/go.mod"
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl)
  local pkgs=() c; for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$w" && run_logged kubernetes-get go get "${pkgs[@]/%/@$ver}")
  local vpkg ld="" date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for vpkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $vpkg.gitVersion=$ver -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
    ld+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$date"
  done
  (cd "$w" && run_logged kubernetes-build go build -trimpath -ldflags "-s -w $ld" -o "$dest/" "${pkgs[@]}")
  stamp_set kubernetes "$key"
}

build_etcd() {
  local ver=$ETCD_VERSION dest="$OUT/etcd-$ETCD_VERSION"
  stamp_ok etcd "$ver" && [[ -x "$dest/etcd" ]] && { log "    etcd: cached"; return; }
  # etcd's server module uses replace directives, so `go install` refuses it; our own two-line main
  # calls the same entry point as upstream's etcd binary.
  local w="$WRAP/etcd-$ver"; mkdir -p "$w" "$dest"
  cat >"$w/go.mod" <<MOD
module safeagent.local/build/etcd
go 1.26.0
require go.etcd.io/etcd/server/v3 $ver
MOD
  cat >"$w/main.go" <<'GO'
// Command etcd is the etcd server, built from the published go.etcd.io/etcd/server/v3 module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$w" && run_logged etcd-get go get "go.etcd.io/etcd/server/v3@$ver" && run_logged etcd-tidy go mod tidy \
    && run_logged etcd-build go build -trimpath -ldflags "-s -w" -o "$dest/etcd" .)
  stamp_set etcd "$ver"
}

# helm's version, and the Kubernetes version it assumes when no cluster is asked (`helm template`,
# `helm lint`): that of the client-go it was built with, as helm's own release builds do.
helm_ldflags() {
  local gomod minor
  gomod=$(module_gomod "helm.sh/helm/v3@$HELM_VERSION")
  minor=$(sed -n 's#^\s*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$gomod")
  [[ -n $minor ]] || die "cannot read helm's client-go version"
  local v
  for v in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    printf ' -X %s.k8sVersionMajor=1 -X %s.k8sVersionMinor=%s' "$v" "$v" "$minor"
  done
  printf ' -X helm.sh/helm/v3/internal/version.version=%s' "$HELM_VERSION"
}

build_pause() {
  local dest="$OUT/pause" src="$CLUSTER_DIR/pause"
  local key; key=$(sha256sum "$src/main.go" | cut -c1-16)
  stamp_ok pause "$key" && [[ -x "$dest/pause" ]] && { log "    pause: cached"; return; }
  mkdir -p "$dest"
  (cd "$src" && run_logged pause go build -trimpath -ldflags "-s -w" -o "$dest/pause" .)
  stamp_set pause "$key"
}

main() {
  step "go: kind $KIND_VERSION" go_install kind "$BIN" "" "sigs.k8s.io/kind@$KIND_VERSION"
  step "go: helm $HELM_VERSION" go_install helm "$BIN" "$(helm_ldflags)" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  step "go: crictl $CRICTL_VERSION" go_install crictl "$OUT/crictl-$CRICTL_VERSION" \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION#v}" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  local p=github.com/containernetworking/plugins/plugins
  step "go: CNI plugins $CNI_PLUGINS_VERSION" go_install cni-plugins "$OUT/cni-$CNI_PLUGINS_VERSION" "" \
    "$p/main/ptp@$CNI_PLUGINS_VERSION" "$p/main/loopback@$CNI_PLUGINS_VERSION" \
    "$p/ipam/host-local@$CNI_PLUGINS_VERSION" "$p/meta/portmap@$CNI_PLUGINS_VERSION"
  step "go: pause (ours)" build_pause
  step "go: etcd $ETCD_VERSION" build_etcd
  step "go: coredns $COREDNS_VERSION" go_install coredns "$OUT/coredns-$COREDNS_VERSION" \
    "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION"
  step "go: kube-router $KUBE_ROUTER_VERSION" go_install kube-router "$OUT/kube-router-$KUBE_ROUTER_VERSION" \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
  step "go: kubernetes $KUBERNETES_VERSION (7 binaries; the long one when cold)" build_kubernetes
  ln -sf "$OUT/kubernetes-$KUBERNETES_VERSION/kubectl" "$BIN/kubectl"
  ln -sf "$OUT/crictl-$CRICTL_VERSION/crictl" "$BIN/crictl"
}

main "$@"
