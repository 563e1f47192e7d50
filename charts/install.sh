#!/usr/bin/env bash
# Install or upgrade the safeagent chart into the current kubectl context and wait until the
# operator is ready. Idempotent: run it again after `make images images-load` to pick up new images.
#   usage: charts/install.sh [extra helm flags...]     e.g. --set policy.preset=execution
# Environment: RELEASE (safeagent), RELEASE_NAMESPACE (safeagent-system), SAFEAGENT_CACHE.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/cluster/lib.sh"
# Functions run under `step`, where `set -e` does not apply: they chain with && themselves.

RELEASE=${RELEASE:-safeagent}
RELEASE_NAMESPACE=${RELEASE_NAMESPACE:-safeagent-system}
CHART="$REPO_ROOT/charts/safeagent"
OPERATOR_IMAGE=${OPERATOR_IMAGE:-safeagent/operator:dev}
SANDBOX_IMAGE=${SANDBOX_IMAGE:-safeagent/sandbox:dev}

for tool in kubectl helm; do
    command -v "$tool" >/dev/null || die "$tool not found: make cluster builds it into $BIN"
done

# Helm installs the CRDs in crds/ on first install only, never on upgrade: apply them every time so
# that a changed schema reaches the cluster (server-side apply keeps this idempotent), and tell
# Helm to leave them alone (--skip-crds).
apply_crds() {
    kubectl apply --server-side --force-conflicts --field-manager=safeagent-install -f "$CHART/crds/" \
        && kubectl wait --for condition=Established --timeout=60s -f "$CHART/crds/" >/dev/null
}

helm_upgrade() {
    helm upgrade --install "$RELEASE" "$CHART" --namespace "$RELEASE_NAMESPACE" --create-namespace \
        --skip-crds --wait --timeout 5m "$@"
}

# Images keep their :dev tag when rebuilt, so the Deployments' specs do not change; restart the
# operator and the egress canary (which runs the sandbox image and must speak the same protocol as
# the runner in new sandbox Pods) when an image behind a tag differs from what the last install used.
restart_if_images_changed() {
    local ids=""
    ids=$(docker image inspect --format '{{.Id}}' "$OPERATOR_IMAGE" "$SANDBOX_IMAGE" 2>/dev/null | tr '\n' ' ') || true
    local key="$RELEASE/$RELEASE_NAMESPACE $ids"
    if [[ -z "$ids" ]] || stamp_ok "installed-images-$RELEASE" "$key"; then
        log "    operator: images unchanged since the last install"
        return 0
    fi
    if ((fresh_install)); then
        stamp_set "installed-images-$RELEASE" "$key"
        return 0
    fi
    local deployments
    deployments=$(kubectl -n "$RELEASE_NAMESPACE" get deployment -o name \
        -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component in (operator,canary)")
    [[ -n "$deployments" ]] || die "no operator Deployment of release $RELEASE in $RELEASE_NAMESPACE"
    # shellcheck disable=SC2086  # one name per word
    kubectl -n "$RELEASE_NAMESPACE" rollout restart $deployments >/dev/null \
        && for deployment in $deployments; do
               kubectl -n "$RELEASE_NAMESPACE" rollout status "$deployment" --timeout=180s || return 1
           done \
        && stamp_set "installed-images-$RELEASE" "$key"
}

# A cluster with nodes reserved for sandboxes (the test bed's `make cluster` makes one, labelled
# and tainted safeagent.ca/sandbox=true) gets its sandbox Pods there; flags given to this script
# come later on helm's command line and win.
placement=()
sandbox_nodes=$(kubectl get nodes -l safeagent.ca/sandbox=true -o jsonpath='{.items[*].metadata.name}')
if [[ -n "$sandbox_nodes" ]]; then
    placement=(--set-json 'sandbox.nodeSelector={"safeagent.ca/sandbox":"true"}'
               --set-json 'sandbox.tolerations=[{"key":"safeagent.ca/sandbox","operator":"Equal","value":"true","effect":"NoSchedule"}]')
    log "    sandbox Pods go to the nodes labelled safeagent.ca/sandbox=true: $sandbox_nodes"
fi

# Admission policies take effect a moment after they are created (the API server loads them from
# a watch): until the identity policies are in force a job would carry no requester (and the
# operator would reject it). Ask the API server with a dry run until it records one.
await_identity_policies() {
    local namespace probe requester
    namespace=$(helm get values "$RELEASE" --namespace "$RELEASE_NAMESPACE" --all -o json \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["sandboxNamespaces"][0])') || return 1
    probe='{"apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": "install-probe"},
            "spec": {"command": "ls", "source": {"configMap": {"name": "install-probe"}}}}'
    for _ in $(seq 120); do
        requester=$(kubectl -n "$namespace" create --dry-run=server -o 'jsonpath={.spec.requester.username}' \
            -f - <<<"$probe" 2>/dev/null) && [[ -n "$requester" ]] && {
            log "    jobs in $namespace are recorded as their requester's (you are $requester)"
            return 0
        }
        sleep 0.5
    done
    log "the identity admission policies are not in force in namespace $namespace after 60 s"
    return 1
}

fresh_install=1
helm status "$RELEASE" --namespace "$RELEASE_NAMESPACE" >/dev/null 2>&1 && fresh_install=0
step "CRDs" apply_crds
step "helm upgrade --install $RELEASE (namespace $RELEASE_NAMESPACE)" helm_upgrade "${placement[@]}" "$@"
step "operator rollout" restart_if_images_changed
step "identity admission policies in force" await_identity_policies
kubectl -n "$RELEASE_NAMESPACE" get deployment,pods -l app.kubernetes.io/instance="$RELEASE"
