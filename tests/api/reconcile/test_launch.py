"""reconcile/launch.py on a real API server: the Pod the server admits (Pod Security `restricted`,
the chart's RBAC), with the egress proof's target and wait in its spec."""

from __future__ import annotations

import json

from tests.api.stage import CANARY_ADDRESS
from tests.api.world import runner_record


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
