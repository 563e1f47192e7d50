"""The operator is killed while a job runs; after the restart exactly one sandbox Pod ever ran.

Disruptive: it force-deletes the operator Pod of the installed chart (the Deployment starts a new
one), so it lives in a file of its own.
"""

from __future__ import annotations

import time

import pytest

from sbj_helpers import SLOW_GREP, SYSTEM_NS, operator_pods, slow_grep_file

# Alone, after the other modules (`make e2e`): it kills the operator.
pytestmark = pytest.mark.disruptive


def test_operator_killed_mid_job_adopts_the_pod_and_runs_it_once(sandbox, kubectl):
    repo = sandbox.repo({"slow.txt": slow_grep_file(3000)})
    job = sandbox.job(SLOW_GREP, repo, timeoutSeconds=300)
    status = sandbox.wait_phase(job, "Running", timeout=90)
    pod_name = status["podName"]
    before = operator_pods(kubectl)
    assert len(before) == 1
    kubectl("-n", SYSTEM_NS, "delete", "pod", before[0]["metadata"]["name"], "--grace-period=0", "--force")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        after = operator_pods(kubectl)
        if after and after[0]["metadata"]["uid"] != before[0]["metadata"]["uid"]:
            break
        time.sleep(2)
    else:
        raise AssertionError("the operator did not come back")
    status = sandbox.wait_phase(job, "Succeeded", timeout=300)
    assert status["podName"] == pod_name
    assert status["stdout"] == "1\n"
    assert len(sandbox.scheduled_pod_uids(pod_name)) == 1, "a second sandbox Pod was scheduled"
    launched = sandbox.event_reasons("SandboxJob", job).count("SandboxLaunched")
    assert launched == 1
    uid = sandbox.get("sandboxjob", job)["metadata"]["uid"]
    assert sandbox.pods_of(uid) == []
