"""reconcile/approval.py and waiting.py on a real API server: an Approval binds one exact request,
is decided once, and anything else about it fails closed."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from safeagent import builders, reconcile
from safeagent.models import GROUP, VERSION, SandboxJobSpec, spec_hash
from safeagent.sandbox.digest import configmap_digest
from tests.api.stage import SOURCE_FILES, TIER_APPROVER
from tests.api.world import runner_record

REPO_DIGEST = configmap_digest({name: text.encode() for name, text in SOURCE_FILES.items()})


def _job(world, name):
    return reconcile.SandboxJob.model_validate(world.job(name))


def test_approval_is_bound_to_job_uid_spec_and_argv(world):
    job, approval_name = world.await_approval()
    approval = world.approvals[approval_name]
    assert approval_name == builders.child_name("rm", job["metadata"]["uid"])
    assert approval["spec"]["command"] == ["rm", "delete-me.txt"]
    assert approval["spec"]["jobUid"] == job["metadata"]["uid"]
    assert approval["spec"]["specHash"] == spec_hash(SandboxJobSpec.model_validate(job["spec"]))
    assert approval["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert world.run("rm") == "AwaitingApproval"
    assert world.kube.pods_created == 0
    assert world.reasons() == ["ApprovalRequested"]


def test_approve_round_trip(world):
    _, approval_name = world.await_approval()
    world.decide(approval_name, "Approved")
    assert world.run_approval(approval_name) == "rm"
    approval = world.approvals[approval_name]
    assert approval["status"]["phase"] == "Approved" and approval["status"]["decidedBy"] == TIER_APPROVER
    assert world.run("rm") == "Running"
    st = world.status("rm")
    assert st["approvedAt"] and st["decidedBy"] == TIER_APPROVER
    runner = world.pods[st["podName"]]["spec"]["containers"][0]
    assert json.loads(runner["args"][0])["argv"] == ["rm", "delete-me.txt"]
    changed = {"created": 0, "modified": 0, "deleted": 1, "total": 1, "complete": True, "paths": ["-delete-me.txt"]}
    world.finish_pod(st["podName"], runner_record(stdout="", changedFiles=changed))
    assert world.run("rm") == "Succeeded"
    assert world.status("rm")["changedFiles"]["paths"] == ["-delete-me.txt"]
    assert world.reasons() == [
        "ApprovalRequested", "ApprovalApproved", "ApprovalApproved", "SandboxLaunched", "CommandFinished",
    ]  # one ApprovalApproved on the Approval, one on the job
    assert [kind for kind, reason, _ in world.kube.events if reason == "ApprovalApproved"] == ["Approval", "SandboxJob"]


def test_deny_round_trip_and_the_decision_is_final(world):
    _, approval_name = world.await_approval()
    world.decide(approval_name, "Denied")
    assert world.run("rm") == "Denied"
    status = world.approvals[approval_name]["status"]
    assert (status["phase"], status["decidedBy"]) == ("Denied", TIER_APPROVER) and status["decidedAt"]
    with pytest.raises(ApiException) as refused:  # the CRD's CEL rule: a decision is final
        world.decide(approval_name, "Approved")
    assert refused.value.status == 422 and "a decision is final" in refused.value.body
    world.run_approval(approval_name)
    assert world.run("rm") == "Denied" and world.approvals[approval_name]["status"]["phase"] == "Denied"
    assert world.kube.pods_created == 0


BOUND_FIELDS = [
    ("command", ["rm", "-rf", "."], "approved command"),
    ("specHash", "f" * 64, "spec changed"),
    ("jobUid", "someone-else", "another job"),
    ("networkProfile", "git-read", "network profile"),
    ("sourceDigest", "sha256:" + "0" * 64, "source content"),
    ("requester", {"username": "someone-else"}, "another requester"),
]


@pytest.mark.parametrize(("field", "value", "problem"), BOUND_FIELDS, ids=[row[0] for row in BOUND_FIELDS])
def test_a_bound_field_cannot_be_changed_in_place(world, field, value, problem):
    """The CRD's CEL rules refuse the change itself, whoever asks (here: the cluster admin)."""
    _, approval_name = world.await_approval()
    with pytest.raises(ApiException) as refused:
        world.patch_approval(approval_name, {"spec": {field: value, "decision": "Approved"}})
    assert refused.value.status == 422 and f"{field} is immutable" in refused.value.body


def test_an_approval_made_again_with_another_request_never_runs(world):
    """Deleted and created again for another command (by someone who may: here the cluster admin),
    then approved: the operator sees another object (UID) than the one it asked for, and fails the
    job closed. Created already approved, it would not even be admitted."""
    _, approval_name = world.await_approval()
    forged = world.approvals[approval_name]
    world.delete_approval(approval_name)
    forged["spec"].update({"command": ["rm", "-rf", "."], "decision": "Approved", "decider": {"username": "x"}})
    forged["metadata"] = {"name": approval_name, "ownerReferences": forged["metadata"]["ownerReferences"]}
    forged.pop("status", None)
    with pytest.raises(ApiException) as refused:
        world.create_approval(forged)
    assert refused.value.status == 403 and "an Approval is created Pending" in refused.value.body
    forged["spec"].update({"decision": "Pending"})
    del forged["spec"]["decider"]
    world.create_approval(forged)
    world.decide(approval_name, "Approved")
    with pytest.raises(reconcile.PermanentFailure):
        world.run("rm")
    st = world.status("rm")
    assert (st["phase"], st["reason"]) == ("Failed", "ApprovalMismatch") and "replaced" in st["message"]
    assert world.kube.pods_created == 0


@pytest.mark.parametrize(("field", "value", "problem"), BOUND_FIELDS, ids=[row[0] for row in BOUND_FIELDS])
def test_a_pre_existing_approval_for_another_request_never_runs(world, field, value, problem):
    """Created before the operator asked (by a namespace admin, or in the crash window between
    decision and request), still pending, with one bound field not this job's: the operator
    adopts it as the request and checks it field by field once it is decided."""
    world.add_job("rm", "rm delete-me.txt")
    forged = builders.build_approval(_job(world, "rm"), ["rm", "delete-me.txt"], REPO_DIGEST)
    forged["spec"][field] = value
    world.create_approval(forged)
    assert world.run("rm") == "AwaitingApproval"
    world.decide(forged["metadata"]["name"], "Approved")
    with pytest.raises(reconcile.PermanentFailure):
        world.run("rm")
    st = world.status("rm")
    assert (st["phase"], st["reason"]) == ("Failed", "ApprovalMismatch") and problem in st["message"]
    assert world.kube.pods_created == 0


def test_an_approval_without_its_owner_reference_never_runs(world):
    """Nobody but the operator may touch an Approval's owner references (the chart's identity
    policy; the cluster admin is refused too). Should one go anyway (here the operator's own
    account removes it), an Approval that no longer names its job as owner is not trusted."""
    _, approval_name = world.await_approval()
    with pytest.raises(ApiException) as refused:
        world.patch_approval(approval_name, {"metadata": {"ownerReferences": None}, "spec": {"decision": "Approved"}})
    assert refused.value.status == 403 and "owner references are the operator's" in refused.value.body
    as_operator = client.CustomObjectsApi(world.stage.operator)
    as_operator.patch_namespaced_custom_object(GROUP, VERSION, world.ns, "approvals", approval_name,
                                               {"metadata": {"ownerReferences": None}})
    world.decide(approval_name, "Approved")
    with pytest.raises(reconcile.PermanentFailure):
        world.run("rm")
    st = world.status("rm")
    assert st["reason"] == "ApprovalMismatch" and "not owned" in st["message"]
    assert world.kube.pods_created == 0


def test_pre_existing_approval_that_is_already_decided_is_refused(world):
    """Someone able to create Approvals (not the submitter role, but e.g. a namespace admin or an
    agent with too much RBAC) pre-creates the job's Approval, exact in every bound field, with
    decision Approved: no human decided on a request the operator made, and the cluster refuses
    it. (Where the admission policies are missing the operator refuses it: test_identity.py.)"""
    world.add_job("rm", "rm delete-me.txt")
    forged = builders.build_approval(_job(world, "rm"), ["rm", "delete-me.txt"], REPO_DIGEST)
    forged["spec"].update({"decision": "Approved", "decider": {"username": TIER_APPROVER}})
    with pytest.raises(ApiException) as refused:
        world.create_approval(forged)
    assert refused.value.status == 403 and "an Approval is created Pending" in refused.value.body


def test_approval_replaced_after_the_request_never_runs(world):
    _, approval_name = world.await_approval()
    replacement = builders.build_approval(_job(world, "rm"), ["rm", "delete-me.txt"], REPO_DIGEST)
    world.delete_approval(approval_name)
    world.create_approval(replacement)  # exact in every field but its UID
    world.decide(approval_name, "Approved")
    with pytest.raises(reconcile.PermanentFailure):
        world.run("rm")
    assert world.status("rm")["reason"] == "ApprovalMismatch" and world.kube.pods_created == 0


def test_approval_from_before_a_restart_is_adopted_while_pending(world):
    world.add_job("rm", "rm delete-me.txt")
    # created, then the operator crashed before writing status
    ours = world.kube.create_approval(builders.build_approval(_job(world, "rm"), ["rm", "delete-me.txt"], REPO_DIGEST))
    assert world.run("rm") == "AwaitingApproval"
    assert world.status("rm")["approvalUid"] == ours["metadata"]["uid"]
    world.decide(ours["metadata"]["name"], "Approved")
    assert world.run("rm") == "Running"


def test_approval_expires(world):
    _, approval_name = world.await_approval()
    world.clock.advance(world.ctx.config.approvalTimeoutSeconds + 1)
    assert world.run("rm") == "Failed"
    assert world.status("rm")["reason"] == "ApprovalExpired"
    assert world.approvals[approval_name]["status"]["phase"] == "Expired"
    world.decide(approval_name, "Approved")  # still Pending in spec: CEL lets a late decision through
    world.run_approval(approval_name)
    assert world.approvals[approval_name]["status"]["phase"] == "Expired"
    assert world.run("rm") == "Failed" and world.kube.pods_created == 0


def test_deleted_approval_fails_closed(world):
    _, approval_name = world.await_approval()
    world.delete_approval(approval_name)
    with pytest.raises(reconcile.PermanentFailure):
        world.run("rm")
    assert world.status("rm")["reason"] == "ApprovalMissing"


def test_the_approval_pins_the_source_content_and_prepare_checks_it(world):
    _, approval_name = world.await_approval()
    assert world.approvals[approval_name]["spec"]["sourceDigest"] == REPO_DIGEST == world.status("rm")["sourceDigest"]
    world.decide(approval_name, "Approved")
    assert world.run("rm") == "Running"
    pod = world.pods[world.status("rm")["podName"]]
    assert json.loads(pod["spec"]["initContainers"][0]["args"][0])["expectedDigest"] == REPO_DIGEST
