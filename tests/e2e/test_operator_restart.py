"""The operator is killed while a job runs (after the restart exactly one sandbox Pod ever ran),
or while a job waits for its approval (after the restart the decision and both people are kept).

Disruptive: it force-deletes the operator Pod of the installed chart (the Deployment starts a new
one), so it lives in a file of its own.
"""

from __future__ import annotations

import json

import pytest

from clusterlib import wait_for
from sbj_helpers import (
    NS, OPERATOR_SELECTOR, SLOW_GREP, SYSTEM_NS, kill_operator, operator_pods, slow_grep_file, unique,
)
from test_operator_audit import audit_lines

# Alone, after the other modules (`make e2e`): it kills the operator.
pytestmark = pytest.mark.disruptive


def test_operator_killed_mid_job_adopts_the_pod_and_runs_it_once(sandbox, kubectl):
    repo = sandbox.repo({"slow.txt": slow_grep_file(3000)})
    job = sandbox.job(SLOW_GREP, repo, timeoutSeconds=300)
    status = sandbox.wait_phase(job, "Running", timeout=90)
    pod_name = status["podName"]
    kill_operator(kubectl)
    status = sandbox.wait_phase(job, "Succeeded", timeout=300)
    assert status["podName"] == pod_name
    assert status["stdout"] == "1\n"
    assert len(sandbox.scheduled_pod_uids(pod_name)) == 1, "a second sandbox Pod was scheduled"
    launched = sandbox.event_reasons("SandboxJob", job).count("SandboxLaunched")
    assert launched == 1
    uid = sandbox.get("sandboxjob", job)["metadata"]["uid"]
    sandbox.wait_pods_gone(uid)


def test_operator_killed_mid_approval_keeps_every_record(sandbox, kubectl, people):
    """Submitted by one identity, decided by another while no operator runs: the new operator
    finds the decision, runs the command once, and the job, its Approval and the audit trail name
    both people as the cluster recorded them."""
    agent, reviewer = people["agent"], people["reviewer"]
    repo = sandbox.repo({"delete-me.txt": "bye\n"})
    job = unique("restart")
    agent.kubectl("-n", NS, "create", "-f", "-", input=json.dumps({
        "apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": job},
        "spec": {"command": "rm delete-me.txt", "source": {"configMap": {"name": repo}}}}))
    sandbox.created.append(("sandboxjob", job))
    approval = sandbox.wait_phase(job, "AwaitingApproval", timeout=60)["approvalName"]
    before = operator_pods(kubectl)[0]["metadata"]["name"]
    kubectl("-n", SYSTEM_NS, "scale", "deployment", "-l", OPERATOR_SELECTOR, "--replicas=0")
    try:
        kubectl("-n", SYSTEM_NS, "wait", "--for=delete", f"pod/{before}", "--timeout=120s")
        reviewer.decide(NS, approval, "Approved", note="while the operator was away")
    finally:
        kubectl("-n", SYSTEM_NS, "scale", "deployment", "-l", OPERATOR_SELECTOR, "--replicas=1")
    status = sandbox.wait_phase(job, "Succeeded", timeout=240)
    assert status["decidedBy"] == reviewer.user and status["changedFiles"]["deleted"] == 1
    decided = sandbox.get("approval", approval)
    assert decided["spec"]["requester"]["username"] == agent.user
    assert decided["spec"]["decider"]["username"] == reviewer.user and decided["status"]["decidedBy"] == reviewer.user
    assert sandbox.get("sandboxjob", job)["spec"]["requester"]["username"] == agent.user
    uid = sandbox.get("sandboxjob", job)["metadata"]["uid"]
    lines = wait_for(lambda: (found := audit_lines(kubectl, uid)) and found[-1]["event"] == "CommandFinished" and found,
                     timeout=60, what="the new operator's CommandFinished line")
    assert all(line["requester"] == agent.user for line in lines)
    assert [line["decidedBy"] for line in lines if line["event"] == "ApprovalApproved"] == [reviewer.user]
    assert sandbox.event_reasons("SandboxJob", job).count("SandboxLaunched") == 1

