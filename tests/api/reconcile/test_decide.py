"""reconcile/decide.py and ensure.py on a real API server: the policy's decision, written once."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from safeagent import audit, reconcile
from tests.api.world import runner_record


def test_allowed_job_runs_and_its_output_lands_in_status(world):
    world.add_job("list", "ls -la")
    assert world.run("list") == "Running"
    st = world.status("list")
    assert st["podName"] in world.pods and st["argv"] == ["ls", "-la"]
    assert "safeagent-profile-none" in world.network_policies
    assert st["decidedAt"] and st["startTime"] and st["limits"] == {"maxOutputKb": 64, "maxFileWrites": 2}
    assert world.run("list") == "Running"  # nothing new while it runs
    world.finish_pod(st["podName"], runner_record())
    assert world.run("list") == "Succeeded"
    st = world.status("list")
    assert st["stdout"] == "a.txt\nb.txt\n" and st["exitCode"] == 0 and st["completionTime"]
    assert world.pods == {}  # deleted after the result was stored
    assert world.reasons() == ["PolicyAllowed", "SandboxLaunched", "CommandFinished"]
    assert world.kube.pods_created == 1
    assert {c["type"]: c["status"] for c in st["conditions"]} == {"Decided": "True", "Launched": "True", "Completed": "True"}
    world.run("list")
    assert len(world.kube.events) == 3  # a final job stays quiet


def test_denied_job_never_gets_a_pod(world):
    world.add_job("bad", "curl evil")
    assert world.run("bad") == "Denied"
    st = world.status("bad")
    assert st["decision"] == "deny" and st["reason"] == "interpreter_denied"
    assert world.kube.pods_created == 0 and world.approvals == {}
    assert world.reasons() == ["PolicyDenied"]


def test_a_spec_the_schema_refuses_never_becomes_a_job(world):
    """timeoutSeconds has a maximum in the CRD: the server refuses the job, nothing is reconciled."""
    with pytest.raises(ApiException) as refused:
        world.add_job("weird", "ls", timeoutSeconds=999999)
    assert refused.value.status == 422 and "timeoutSeconds" in refused.value.body


def test_a_spec_the_models_refuse_is_a_permanent_failure(world):
    """A job the operator's model refuses (a CRD older or newer than the operator) ends, once:
    the body is read from the server and edited on its way in, as a skewed schema would pass it."""
    world.add_job("weird", "ls")
    body = world.job("weird")
    body["spec"]["timeoutSeconds"] = 999999
    original = world.kube.get_job
    world.kube.get_job = lambda namespace, name: body if name == "weird" else original(namespace, name)
    with pytest.raises(reconcile.PermanentFailure):
        world.run("weird")
    assert world.status("weird")["reason"] == "InvalidSpec"


def test_unreadable_policy_never_decides(world):
    world.add_job("list", "ls")

    def broken():
        raise ValueError("policy.yaml: bad")

    world.ctx.policy = broken
    with pytest.raises(reconcile.TransientFailure):
        world.run("list")
    assert "decision" not in world.status("list")


def test_deleted_or_replaced_job_is_left_alone(world):
    assert world.run("gone") is None
    world.add_job("list", "ls")
    assert world.run("list", uid="old-uid") is None
    assert world.kube.pods_created == 0


def test_every_audit_line_has_the_one_schema(world):
    world.run_to_result(runner_record())
    world.await_approval()
    assert len(world.audit.lines) == 4
    for line in world.audit.lines:
        assert tuple(sorted(line)) == tuple(sorted(audit.FIELDS))
    finished = next(line for line in world.audit.lines if line["event"] == "CommandFinished")
    assert finished["exitCode"] == 0 and finished["stdoutBytes"] == 12 and finished["pod"]
    assert finished["argv"] == ["ls"] and finished["profile"] == "none" and finished["uid"]
