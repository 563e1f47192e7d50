#!/usr/bin/env bash
# `make cluster-down`: delete the kind cluster; keep every cache.
source "$(dirname "$0")/lib.sh"
rm -f "$SAFEAGENT_CACHE/CLUSTER_READY"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  step "delete cluster $CLUSTER_NAME" delete_kind_cluster
else
  log "no cluster named $CLUSTER_NAME"
fi
