"""Retention on a real cluster (issue 18, item 5): the in-cluster operator's sweep deletes a finished
job once its time is up, and the garbage collector takes its Approval with it; an unfinished job
stays. The API tier (tests/api/test_retention.py) covers every rule with a moved clock; what only a
cluster shows is the sweep thread in the installed operator and the garbage collector.

It installs a release of its own, with a retention of seconds instead of days, in namespaces of
its own, and removes it at the end: it runs with the other modules that install releases.
"""

from __future__ import annotations

import json

import pytest

from burst import install_release, remove_release
from clusterlib import wait_for
from people import APPROVER, People

pytestmark = pytest.mark.disruptive

RELEASE, RELEASE_NS, SANDBOX_NS = "safeagent-retention", "safeagent-retention-system", "safeagent-retention-sandbox"
KEEP_SECONDS = 5  # finished jobs are kept this long
SWEEP_SECONDS = 10  # the chart's smallest sweep interval


@pytest.fixture(scope="module")
def release(kubectl):
    install_release(kubectl, RELEASE, RELEASE_NS, SANDBOX_NS,
                    "--set", f"retention.finishedJobSeconds={KEEP_SECONDS}",
                    "--set", f"retention.sweepIntervalSeconds={SWEEP_SECONDS}")
    yield
    remove_release(kubectl, RELEASE, RELEASE_NS, SANDBOX_NS)


def _exists(kubectl, kind: str, name: str) -> bool:
    return kubectl("-n", SANDBOX_NS, "get", kind, name, "--ignore-not-found", "-o", "name", check=False).stdout.strip() != ""


def _phase(kubectl, job: str) -> str:
    return kubectl("-n", SANDBOX_NS, "get", "sandboxjob", job, "-o", "jsonpath={.status.phase}", check=False).stdout


def _job(kubectl, name: str, command: str) -> None:
    kubectl("-n", SANDBOX_NS, "create", "-f", "-", input=json.dumps({
        "apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": name},
        "spec": {"command": command, "source": {"configMap": {"name": "repo"}}}}))


def test_a_finished_job_expires_with_its_approval_and_an_unfinished_one_stays(release, kubectl):
    kubectl("-n", SANDBOX_NS, "create", "configmap", "repo", "--from-literal=delete-me.txt=bye")
    people = People(kubectl, SANDBOX_NS)
    try:
        reviewer = people.make("retention-reviewer", (APPROVER,), reader=False)
        _job(kubectl, "removal", "rm delete-me.txt")
        _job(kubectl, "waiting", "rm delete-me.txt")  # left waiting for its approval: not final
        approval = wait_for(lambda: kubectl("-n", SANDBOX_NS, "get", "sandboxjob", "removal", "-o",
                                            "jsonpath={.status.approvalName}", check=False).stdout,
                            timeout=120, interval=1, what="the Approval of job removal")
        reviewer.decide(SANDBOX_NS, approval, "Approved")
        wait_for(lambda: _phase(kubectl, "removal") == "Succeeded", timeout=240, interval=2, what="removal to succeed")
        # Kept for KEEP_SECONDS, then gone within a sweep or two; the Approval goes with it.
        wait_for(lambda: not _exists(kubectl, "sandboxjob", "removal"), timeout=KEEP_SECONDS + 4 * SWEEP_SECONDS + 30,
                 interval=2, what="the finished job to expire")
        wait_for(lambda: not _exists(kubectl, "approval", approval), timeout=120, interval=2,
                 what="the garbage collector to delete the expired job's Approval")
        assert _phase(kubectl, "waiting") == "AwaitingApproval" and _exists(kubectl, "sandboxjob", "waiting")
        logs = kubectl("-n", RELEASE_NS, "logs", "-l",
                       f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator",
                       "--tail=-1", "--prefix=false").stdout
        expired = [json.loads(line) for line in logs.splitlines()
                   if line.startswith("{") and '"event":"JobExpired"' in line]
        assert [(line["name"], line["phase"]) for line in expired] == [("removal", "Succeeded")], expired
    finally:
        people.cleanup()
