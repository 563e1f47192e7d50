"""reconcile/launch.py on a real API server: the Pod the server admits (Pod Security `restricted`,
the chart's RBAC), with the egress proof's target and wait in its spec."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import threading

import pytest

from safeagent import builders, reconcile
from tests.api.stage import CANARY_ADDRESS
from tests.api.world import compact, prepare_record, runner_record


def _runner_spec(world, job_name):
    runner = world.pods[world.status(job_name)["podName"]]["spec"]["containers"][0]
    return json.loads(runner["args"][0])


def test_the_runner_gets_the_canary_pods_address_to_prove_enforcement(world):
    world.add_job("list", "ls")
    assert world.run("list") == "Running"
    check = _runner_spec(world, "list")["egressCheck"]
    assert check["host"] == CANARY_ADDRESS and (check["openPort"], check["closedPort"]) == (8081, 8082)


def test_the_sandbox_pod_is_admitted_under_pod_security_restricted(world):
    """The namespace enforces `restricted` (as the chart labels it) and the server admitted the
    Pod the operator wrote: read-only roots everywhere, no ServiceAccount token."""
    world.add_job("list", "ls")
    world.run("list")
    pod = world.pods[world.status("list")["podName"]]
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in spec["containers"] + spec["initContainers"])


def test_a_pod_counts_as_pending_from_its_launch_and_lengthens_the_next_wait(world):
    """A burst's own Pods count at once (not when the watch reports them), and stop counting when
    the job ends, whether or not the watch saw the Pod go."""
    base = world.ctx.config.egressCheck.deadlineSeconds
    world.ctx.config = world.config(egressCheck={"perPendingPodSeconds": 5})
    waits = []
    for name in ("one", "two", "three"):
        world.add_job(name, "ls")
        assert world.run(name) == "Running"
        waits.append(_runner_spec(world, name)["egressCheck"]["deadlineSeconds"])
    assert waits == [base, base + 5, base + 10] and world.ctx.pending.count() == 3
    world.finish_pod(world.status("one")["podName"], runner_record())
    assert world.run("one") == "Succeeded"
    assert world.ctx.pending.count() == 2


# ------------------------------------------------- issue 20: a UID of its own for each sandbox Pod

def _run_as(world, job_name):
    uid = builders.run_as_user_of(world.pods[world.status(job_name)["podName"]])
    assert uid is not None, "the pod and both containers must run as one UID"
    return uid


def test_jobs_launched_at_once_run_as_different_uids_and_a_restarted_operator_keeps_them_apart(world):
    """Three UIDs in the range: two jobs launched concurrently get two of them; an operator started
    afresh (nothing in memory) lists the sandbox Pods before its first launch and gives a third job
    the third; a fourth waits, naming the chart value, until a Pod finishes."""
    world.ctx.config = world.config(sandbox={"uidRange": {"first": 300000, "count": 3}})
    for name in ("one", "two", "three", "four"):
        world.add_job(name, "ls")
    start = threading.Barrier(2)

    def launch(name):
        start.wait()
        return world.run(name)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert list(pool.map(launch, ("one", "two"))) == ["Running", "Running"]
    first = {_run_as(world, "one"), _run_as(world, "two")}
    assert len(first) == 2 and first <= {300000, 300001, 300002}

    world.ctx = dataclasses.replace(world.ctx, uids=reconcile.SandboxUids(), pending=reconcile.PendingPods())
    assert world.run("three") == "Running"
    assert _run_as(world, "three") == ({300000, 300001, 300002} - first).pop()

    with pytest.raises(reconcile.TransientFailure, match=r"sandbox\.uidRange\.count"):
        world.run("four")
    assert "podName" not in world.status("four") and world.kube.pods_created == 3
    freed = _run_as(world, "one")
    world.finish_pod(world.status("one")["podName"], runner_record())
    assert world.run("one") == "Succeeded"
    assert world.run("four") == "Running" and _run_as(world, "four") == freed


def test_the_review_pod_holds_a_uid_until_its_review_is_read_then_the_run_gets_one(world):
    """One UID in the range: the review Pod of a volume source holds it while it copies; once its
    digest is read (and the Pod deleted) the run Pod gets it. No watch here: the job frees it."""
    world.ctx.config = world.config(sandbox={"uidRange": {"first": 310000, "count": 1}})
    world.add_job("rm", "rm delete-me.txt", source={"persistentVolumeClaim": {"claimName": "repos"}})
    assert world.run("rm") == "Pending"
    review = world.status("rm")["reviewPodName"]
    assert builders.run_as_user_of(world.pods[review]) == 310000
    assert world.ctx.uids.held() == {(world.ns, review): 310000}
    world.set_log(review, "prepare", compact(prepare_record(True, "copied", digest="sha256:" + "5" * 64)) + "\n")
    world.set_pod_status(review, {"phase": "Succeeded"})
    assert world.run("rm") == "AwaitingApproval" and world.ctx.uids.held() == {}
    world.decide(world.status("rm")["approvalName"], "Approved")
    assert world.run("rm") == "Running" and _run_as(world, "rm") == 310000
