"""The audit trail on a real cluster: the operator's JSON lines and the job's Events.

One approval round trip; then the lines the in-cluster operator wrote for that job are read back
from its log and checked against the one schema (`safeagent.audit.AuditRecord`).
"""

from __future__ import annotations

import json

from safeagent.audit import FIELDS, SCHEMA
from sbj_helpers import NS, OPERATOR_SELECTOR, SYSTEM_NS

from clusterlib import wait_for

REPO = {"README.md": "# audit\n", "delete-me.txt": "x\n"}


def audit_lines(kubectl, uid: str) -> list[dict]:
    """The operator's JSON audit lines about the object with this UID, oldest first."""
    out = kubectl("-n", SYSTEM_NS, "logs", "-l", OPERATOR_SELECTOR, "--tail=-1", "--prefix=false").stdout
    lines = []
    for text in out.splitlines():
        if not text.startswith("{"):
            continue
        record = json.loads(text)
        if record.get("schema") == SCHEMA and uid in (record.get("uid"),):
            lines.append(record)
    return lines


def test_approval_round_trip_leaves_one_schema_of_audit_lines_and_events(sandbox, kubectl, people):
    job = sandbox.job("rm delete-me.txt", sandbox.repo(REPO))
    status = sandbox.wait_phase(job, "AwaitingApproval", timeout=60)
    approval = status["approvalName"]
    reviewer = people["reviewer"]
    reviewer.decide(NS, approval, "Approved", note="fine")
    sandbox.wait_phase(job, "Succeeded")
    uid = sandbox.get("sandboxjob", job)["metadata"]["uid"]

    lines = wait_for(lambda: (found := audit_lines(kubectl, uid))
                     and found[-1]["event"] == "CommandFinished" and found,
                     timeout=30, what="the CommandFinished audit line")
    requester = sandbox.get("sandboxjob", job)["spec"]["requester"]["username"]  # whoever runs the tests
    for record in lines:
        assert tuple(sorted(record)) == tuple(sorted(FIELDS)), record
        assert record["namespace"] == NS and record["kind"] == "SandboxJob" and record["name"] == job
        assert record["requester"] == requester
    # On a busy cluster the Pod may wait for room on the sandbox node: the job says so, in a line
    # of the same schema (checked above), between launch and finish.
    lines = [record for record in lines if record["event"] != "SandboxPodWaiting"]
    events = [record["event"] for record in lines]
    assert events == ["ApprovalRequested", "ApprovalApproved", "SandboxLaunched", "CommandFinished"], events
    times = [record["time"] for record in lines]
    assert times == sorted(times)
    requested, approved, launched, finished = lines
    assert requested["decision"] == "require_approval" and requested["approval"] == approval
    assert approved["decidedBy"] == reviewer.user
    assert launched["pod"] and launched["profile"] == "none"
    assert finished["argv"] == ["rm", "delete-me.txt"]
    assert finished["exitCode"] == 0 and finished["changedFiles"] == 1

    # The same story as Events on the job, with the stable reasons.
    reasons = sandbox.event_reasons("SandboxJob", job)
    for reason in events:
        assert reason in reasons, (reason, reasons)
