"""Pod trouble shows in the job within seconds (issue 11, item 8), on a real cluster.

A job whose source ConfigMap or PersistentVolumeClaim does not exist says so in its status while
its Pod waits. Each test holds the operator's rules (safeagent.reconcile.trouble) against what the
kubelet and the scheduler really report for that Pod, so a change in their wording shows here
rather than as a job that silently waits. That such a job then ends Failed/SourceNotFound after
`sandbox.sourceGraceSeconds` (a minute of waiting here) is the operator's own logic, shown on a
real API server with the clock moved on: tests/api/reconcile/test_trouble.py.

The missing image is tested on the exact sandbox Pod the operator would build (sandbox_pods), not
through the operator: the image is operator-wide configuration, and changing the installed one
would disturb every other test. The API tier (tests/api/reconcile/test_trouble.py) shows that the
job says whatever `pod_trouble` makes of its Pod.
"""

from __future__ import annotations

import json
import uuid

import pytest

from clusterlib import wait_for
from sandbox_pods import installed_config, made_up_job
from sbj_helpers import NS, require_operator, unique

# Status shows the trouble on the operator's first pass after the Pod exists; allow for a busy node.
SHOWS_WITHIN = 30


@pytest.fixture(scope="module", autouse=True)
def operator_installed(kubectl):
    require_operator(kubectl)


def _reason_becomes(sandbox, job: str, reason: str) -> dict:
    def current():
        status = sandbox.status(job)
        return status if status.get("reason") == reason else None

    return wait_for(current, SHOWS_WITHIN, what=f"{job} to show reason {reason}")


def _pod(kubectl, name: str) -> dict:
    return json.loads(kubectl("-n", NS, "get", "pod", name, "-o", "json").stdout)


def _pod_events(sandbox, pod: dict) -> list[dict]:
    return sandbox.events(f"involvedObject.uid={pod['metadata']['uid']}")


def test_a_missing_configmap_shows_within_seconds(sandbox, kubectl):
    from safeagent.reconcile.trouble import pod_trouble

    missing = unique("no-such-cm")
    job = sandbox.job("ls", missing)
    status = _reason_becomes(sandbox, job, "SourceNotFound")
    assert status["phase"] == "Running"
    assert f"the source ConfigMap {missing} does not exist" in status["message"]
    # The kubelet says it only in an Event: FailedMount ... configmap "<name>" not found.
    pod = _pod(kubectl, status["podName"])
    events = wait_for(
        lambda: [e for e in _pod_events(sandbox, pod) if e["reason"] == "FailedMount"],
        SHOWS_WITHIN, what="the kubelet's FailedMount Event",
    )
    assert f'configmap "{missing}" not found' in events[-1]["message"]
    trouble = pod_trouble(_pod(kubectl, status["podName"]), events)
    assert trouble is not None and trouble.reason == "VolumeMountFailed" and missing in trouble.message
    assert "SandboxPodWaiting" in sandbox.event_reasons("SandboxJob", job)


def test_a_missing_persistent_volume_claim_shows_within_seconds(sandbox, kubectl):
    from safeagent.reconcile.trouble import pod_trouble

    missing = unique("no-such-pvc")
    job = sandbox.job("ls", {"persistentVolumeClaim": {"claimName": missing}})
    status = _reason_becomes(sandbox, job, "SourceNotFound")
    assert status["phase"] == "Running"
    assert f"the source PersistentVolumeClaim {missing} does not exist" in status["message"]
    # The scheduler says it in the Pod's PodScheduled condition.
    pod = wait_for(
        lambda: (p := _pod(kubectl, status["podName"])) and pod_trouble(p) is not None and p,
        SHOWS_WITHIN, what="the scheduler to mark the Pod unschedulable",
    )
    trouble = pod_trouble(pod)
    assert trouble.reason == "Unschedulable" and f'persistentvolumeclaim "{missing}" not found' in trouble.message
    assert "SandboxPodWaiting" in sandbox.event_reasons("SandboxJob", job)


def test_a_source_created_within_the_grace_lets_the_job_run(sandbox, kubectl):
    name = unique("late-cm")
    job = sandbox.job("ls", name)
    _reason_becomes(sandbox, job, "SourceNotFound")
    sandbox.repo({"late.txt": "here now\n"}, name=name)
    # The kubelet retries the mount with a back-off of up to about two minutes.
    status = sandbox.wait_phase(job, "Succeeded", timeout=240)
    assert "late.txt" in status["stdout"]


def test_a_missing_image_is_reported_as_not_present(kubectl, namespace):
    """The exact sandbox Pod the operator builds, with an image the node does not have and may not
    pull: the kubelet reports ErrImageNeverPull, which the operator's rules call ImageNotPresent."""
    from safeagent import builders
    from safeagent.reconcile.trouble import pod_trouble

    kubectl("-n", namespace, "create", "configmap", "repo", "--from-literal=a.txt=a")
    image = f"safeagent/sandbox:e2e-missing-{uuid.uuid4().hex[:8]}"
    installed = installed_config(kubectl)
    config = installed.model_copy(
        update={"sandbox": installed.sandbox.model_copy(update={"image": image, "imagePullPolicy": "Never"})}
    )
    pod = builders.build_sandbox_pod(made_up_job(namespace, {"configMap": {"name": "repo"}}), ["ls"], 64, config)
    pod["metadata"].pop("ownerReferences")  # the made-up job does not exist: the GC would reap the Pod
    kubectl("create", "-f", "-", input=json.dumps(pod))
    name = pod["metadata"]["name"]

    def reported():
        current = json.loads(kubectl("-n", namespace, "get", "pod", name, "-o", "json").stdout)
        return pod_trouble(current)

    trouble = wait_for(reported, SHOWS_WITHIN, what="the kubelet to report the missing image")
    assert trouble.reason == "ImageNotPresent" and image in trouble.message
    assert "container prepare" in trouble.message  # the first container that needs the image
