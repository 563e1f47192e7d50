#!/usr/bin/env bash
# `make demo`: the whole safeagent story on a fresh machine, end to end.
#   1. the kind cluster, the images and the chart (make cluster images images-load install)
#   2. the example SandboxJobs of manifests/examples/ applied in the sandbox namespace
#   3. `kubectl get sbj`, and the stdout of a finished job taken from its status
#   4. an approval round trip: rm delete-me.txt -> AwaitingApproval -> kubectl patch Approved -> Succeeded,
#      decided by a second identity (the ServiceAccount demo-reviewer): nobody approves their own job
# Re-runnable: the example jobs are deleted and applied again, so every run shows a fresh round trip.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/cluster/lib.sh"
# Functions run under `step`, where `set -e` does not apply: failures die or chain with &&.

NS=${DEMO_NAMESPACE:-safeagent-sandbox}
EXAMPLES="$REPO_ROOT/manifests/examples"
WAIT_SECONDS=${DEMO_WAIT_SECONDS:-240}
APPROVAL_COMMAND="rm delete-me.txt"
REVIEWER=demo-reviewer

banner() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
phase_of() { kubectl -n "$NS" get sandboxjob "$1" -o jsonpath='{.status.phase}' 2>/dev/null || true; }

# wait_for_phase JOB PHASE...: poll until the job is in one of the phases; print each change.
wait_for_phase() {
    local job=$1; shift
    local deadline=$((SECONDS + WAIT_SECONDS)) last="" phase
    while ((SECONDS < deadline)); do
        phase=$(phase_of "$job")
        [[ "$phase" != "$last" ]] && log "    $job: ${phase:-<no phase yet>}"
        last=$phase
        for wanted in "$@"; do [[ "$phase" == "$wanted" ]] && return 0; done
        sleep 2
    done
    kubectl -n "$NS" get sandboxjob "$job" -o yaml >&2 || true
    die "$job did not reach $* within ${WAIT_SECONDS}s (last phase: ${last:-none})"
}

# Jobs that are finished or waiting for a human; anything else is still on its way.
SETTLED=(Succeeded Failed Denied Rejected AwaitingApproval)

bring_up() { make -C "$REPO_ROOT" --no-print-directory cluster images images-load install; }

apply_examples() {
    compgen -G "$EXAMPLES/*.yaml" >/dev/null || die "no examples in manifests/examples/"
    # Delete the previous run's jobs first: a job's spec is immutable and a finished job stays.
    kubectl -n "$NS" delete -f "$EXAMPLES" --ignore-not-found --wait=true >/dev/null \
        && kubectl -n "$NS" apply -f "$EXAMPLES"
}

wait_for_examples() {
    local job
    for job in $(kubectl -n "$NS" get sandboxjobs -o jsonpath='{.items[*].metadata.name}'); do
        wait_for_phase "$job" "${SETTLED[@]}"
    done
}

job_with_command() {
    kubectl -n "$NS" get sandboxjobs \
        -o jsonpath="{.items[?(@.spec.command==\"$1\")].metadata.name}" | cut -d' ' -f1
}

show_output() {
    local job
    job=$(kubectl -n "$NS" get sandboxjobs -o jsonpath='{range .items[?(@.status.phase=="Succeeded")]}{.metadata.name}{"\n"}{end}' | head -n1)
    [[ -n "$job" ]] || die "no example job succeeded"
    echo "\$ kubectl -n $NS get sbj $job -o jsonpath='{.status.stdout}'   # command: $(kubectl -n "$NS" get sbj "$job" -o jsonpath='{.spec.command}')"
    kubectl -n "$NS" get sbj "$job" -o jsonpath='{.status.stdout}'
    echo
}

# The reviewer: a ServiceAccount with the approver role. The demo's own user submitted the jobs,
# and the cluster refuses a decision by the job's requester, so a second identity decides. Here the
# demo's admin acts as it (`--as`); in real use the reviewer has credentials of their own.
make_reviewer() {
    kubectl -n "$NS" get serviceaccount "$REVIEWER" >/dev/null 2>&1 \
        || kubectl -n "$NS" create serviceaccount "$REVIEWER" >/dev/null || return 1
    kubectl -n "$NS" get rolebinding "$REVIEWER-approves" >/dev/null 2>&1 \
        || kubectl -n "$NS" create rolebinding "$REVIEWER-approves" --clusterrole=safeagent-approver \
            --serviceaccount="$NS:$REVIEWER" >/dev/null
}

approval_round_trip() {
    local job approval reviewer="system:serviceaccount:$NS:$REVIEWER"
    make_reviewer || die "could not make the reviewer $REVIEWER"
    job=$(job_with_command "$APPROVAL_COMMAND")
    [[ -n "$job" ]] || die "no example job runs '$APPROVAL_COMMAND'"
    wait_for_phase "$job" AwaitingApproval
    approval=$(kubectl -n "$NS" get sbj "$job" -o jsonpath='{.status.approvalName}')
    echo "\$ kubectl -n $NS get approval $approval -o jsonpath='{.spec}'"
    kubectl -n "$NS" get approval "$approval" -o jsonpath='{.spec}'
    echo
    echo "\$ kubectl -n $NS --as $reviewer patch approval $approval --type merge -p '{\"spec\":{\"decision\":\"Approved\",\"note\":\"demo: looks fine\"}}'"
    kubectl -n "$NS" --as "$reviewer" patch approval "$approval" --type merge \
        -p '{"spec":{"decision":"Approved","note":"demo: looks fine"}}' || die "could not approve $approval"
    wait_for_phase "$job" Succeeded Failed Denied Rejected
    echo "\$ kubectl -n $NS get approval $approval"
    kubectl -n "$NS" get approval "$approval"
    echo "\$ kubectl -n $NS get sbj $job"
    kubectl -n "$NS" get sbj "$job"
    echo "exit code: $(kubectl -n "$NS" get sbj "$job" -o jsonpath='{.status.exitCode}')," \
         "changed files: $(kubectl -n "$NS" get sbj "$job" -o jsonpath='{.status.changedFiles}')"
    [[ "$(phase_of "$job")" == Succeeded ]] || die "the approved job did not succeed"
}

t0=$SECONDS
banner "1/4 cluster, images, chart"
step "make cluster images images-load install" bring_up
banner "2/4 example SandboxJobs (manifests/examples/)"
step "apply examples" apply_examples
step "wait for the examples to settle" wait_for_examples
banner "3/4 results"
echo "\$ kubectl -n $NS get sbj"
kubectl -n "$NS" get sbj
show_output
banner "4/4 approval round trip: $APPROVAL_COMMAND"
step "approve and run" approval_round_trip
log "demo done in $((SECONDS - t0))s"
