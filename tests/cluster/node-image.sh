#!/usr/bin/env bash
# Build the kind node image from local parts only: the Debian base (base-image.sh), the Go builds
# (build-tools.sh) and images made from them, preloaded. Prints the image name on stdout.
source "$(dirname "$0")/lib.sh"

OUT="$SAFEAGENT_CACHE/out"
KOUT="$OUT/kubernetes-$KUBERNETES_VERSION"
NODE_IMAGE="$LOCAL_REPO/kind-node:$KUBERNETES_VERSION"

# scratch_image NAME BINARY ENTRYPOINT: one static binary on an empty filesystem, by docker import.
scratch_image() {
  local name=$1 binary=$2 entry=$3 dir; dir=$(mktemp -d)
  install -D -m 0755 "$binary" "$dir$entry"
  tar -C "$dir" -c . | docker import --change "ENTRYPOINT [\"$entry\"]" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$name" >/dev/null
  rm -rf "$dir"
}

# net_image NAME BINARY: kube-proxy / kube-router with iptables, ipset and the backend selector.
net_image() {
  local name=$1 binary=$2 ctx; ctx=$(mktemp -d)
  cp "$binary" "$CLUSTER_DIR/images/Dockerfile.netbinary" "$ctx/"
  run_logged "image-$(basename "$binary")" docker build -q -f "$ctx/Dockerfile.netbinary" \
    --build-arg NETBASE="$LOCAL_REPO/netbase:1" --build-arg BINARY="$(basename "$binary")" -t "$name" "$ctx"
  rm -rf "$ctx"
}

component_images() {
  local k=registry.k8s.io c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    scratch_image "$k/$c:$KUBERNETES_VERSION" "$KOUT/$c" "/usr/local/bin/$c"
  done
  scratch_image "$LOCAL_REPO/etcd:$ETCD_VERSION" "$OUT/etcd-$ETCD_VERSION/etcd" /usr/local/bin/etcd
  scratch_image "$LOCAL_REPO/coredns:$COREDNS_VERSION" "$OUT/coredns-$COREDNS_VERSION/coredns" /coredns
  scratch_image "$LOCAL_REPO/pause:1.0" "$OUT/pause/pause" /pause
  run_logged image-netbase docker build -q -f "$CLUSTER_DIR/images/Dockerfile.netbase" \
    --build-arg BASE_IMAGE="safeagent/debian-base:$DEBIAN_SUITE" -t "$LOCAL_REPO/netbase:1" "$CLUSTER_DIR/images"
  net_image "$k/kube-proxy:$KUBERNETES_VERSION" "$KOUT/kube-proxy"
  net_image "$LOCAL_REPO/kube-router:$KUBE_ROUTER_VERSION" "$OUT/kube-router-$KUBE_ROUTER_VERSION/kube-router"
}

preloaded_images() {
  echo registry.k8s.io/kube-{apiserver,controller-manager,scheduler,proxy}:"$KUBERNETES_VERSION" \
    "$LOCAL_REPO/etcd:$ETCD_VERSION" "$LOCAL_REPO/coredns:$COREDNS_VERSION" "$LOCAL_REPO/pause:1.0" \
    "$LOCAL_REPO/kube-router:$KUBE_ROUTER_VERSION"
}

node_image() {
  local ctx="$SAFEAGENT_CACHE/node-context"
  rm -rf "$ctx"; mkdir -p "$ctx/bin" "$ctx/cni" "$ctx/images"
  cp "$KOUT"/{kubeadm,kubelet,kubectl} "$OUT/crictl-$CRICTL_VERSION/crictl" "$ctx/bin/"
  cp "$OUT/cni-$CNI_PLUGINS_VERSION"/* "$ctx/cni/"
  cp -a "$CLUSTER_DIR/node/files" "$ctx/files"
  echo "$KUBERNETES_VERSION" >"$ctx/files/kind/version"
  # shellcheck disable=SC2046
  docker save -o "$ctx/images/preloaded.tar" $(preloaded_images)
  run_logged node-image docker build -f "$CLUSTER_DIR/node/Dockerfile" \
    --build-arg BASE_IMAGE="safeagent/debian-base:$DEBIAN_SUITE" -t "$NODE_IMAGE" "$ctx"
  rm -rf "$ctx"
}

# Everything the node image is made of; a change to any of it rebuilds the image.
inputs_key() {
  (cat "$CLUSTER_DIR/versions.env"; find "$CLUSTER_DIR/node" "$CLUSTER_DIR/images" -type f -print0 | sort -z | xargs -0 cat) \
    | sha256sum | cut -c1-16
}

main() {
  "$CLUSTER_DIR/base-image.sh"
  local key; key=$(inputs_key)
  if stamp_ok node-image "$key" && docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
    log "    $NODE_IMAGE: cached"
  else
    step "images: control plane, etcd, CoreDNS, pause, kube-proxy, kube-router" component_images
    step "image: $NODE_IMAGE" node_image
    stamp_set node-image "$key"
  fi
  echo "$NODE_IMAGE"
}

main "$@"
