"""What the API server itself refuses, before the operator sees anything: the CRDs' schema and CEL
rules, the status subresource, the chart's RBAC for its two user roles and its admission policy on
owner references and finalizers. Requests are made as the users would make them (impersonated, as
`kubectl --as` does), and what the operator then does with what got through is checked too."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from safeagent.models import GROUP, VERSION
from tests.api.stage import BOUND_NAMESPACE, SOURCE_CONFIGMAP, SOURCE_READER
from tests.api.world import World

SUBMITTER, APPROVER = "safeagent-submitter", "safeagent-approver"


def refused(call, *args, **kwargs) -> ApiException:
    with pytest.raises(ApiException) as refusal:
        call(*args, **kwargs)
    return refusal.value


def job_body(name: str, command: str = "ls", **extra) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxJob", "metadata": {"name": name, **extra.pop("metadata", {})},
        "spec": {"command": command, "source": {"configMap": {"name": SOURCE_CONFIGMAP}}, **extra.pop("spec", {})},
        **extra,
    }


@pytest.fixture
def users(stage, namespace):
    """A submitter and an approver, bound in the test's namespace to the chart's two user roles."""
    suffix = uuid.uuid4().hex[:6]
    names = {"submitter": f"submitter-{suffix}", "approver": f"approver-{suffix}"}
    stage.bind(namespace, names["submitter"], SUBMITTER)
    stage.bind(namespace, names["submitter"], SOURCE_READER, kind="Role")  # it names a source it can read
    stage.bind(namespace, names["approver"], APPROVER)
    return {role: client.CustomObjectsApi(stage.client_as(user)) for role, user in names.items()}


BAD_SPECS = {
    "no source": {"command": "ls", "source": {}},
    "two sources": {"command": "ls", "source": {"configMap": {"name": "r"}, "persistentVolumeClaim": {"claimName": "x"}}},
    "zero timeout": {"command": "ls", "source": {"configMap": {"name": "r"}}, "timeoutSeconds": 0},
    "huge timeout": {"command": "ls", "source": {"configMap": {"name": "r"}}, "timeoutSeconds": 100000},
    "path escape": {"command": "ls", "source": {"persistentVolumeClaim": {"claimName": "x", "path": "../etc"}}},
    "unknown profile": {"command": "ls", "source": {"configMap": {"name": "r"}}, "networkProfile": "internet"},
    "no command": {"source": {"configMap": {"name": "r"}}},
}


@pytest.mark.parametrize("spec", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_the_schema_refuses_a_bad_spec(world, spec):
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxJob", "metadata": {"name": "bad"}, "spec": spec}
    error = refused(world.custom.create_namespaced_custom_object, GROUP, VERSION, world.ns, "sandboxjobs", body)
    assert error.status == 422


def test_a_jobs_spec_is_immutable(world):
    world.add_job("list", "ls")
    error = refused(world.custom.patch_namespaced_custom_object, GROUP, VERSION, world.ns, "sandboxjobs", "list",
                    {"spec": {"command": "rm delete-me.txt"}})
    assert error.status == 422 and "spec is immutable" in error.body


def test_submitter_cannot_smuggle_a_decision_in_through_status(world, users):
    """Create drops status (status subresource): the operator decides from the policy alone."""
    forged_status = {
        "phase": "Pending", "decision": "allow", "argv": ["rm", "delete-me.txt"],
        "limits": {"maxOutputKb": 1, "maxFileWrites": 100}, "approvedAt": "2020-01-01T00:00:00Z",
    }
    users["submitter"].create_namespaced_custom_object(
        GROUP, VERSION, world.ns, "sandboxjobs", job_body("rm", "rm delete-me.txt", status=forged_status))
    assert world.status("rm") == {}
    assert world.run("rm") == "AwaitingApproval"
    status = world.status("rm")
    assert status["decision"] == "require_approval" and "approvedAt" not in status
    assert status["limits"]["maxOutputKb"] != 1 and world.pods == {}
    # ... and cannot write status afterwards either,
    error = refused(users["submitter"].patch_namespaced_custom_object_status, GROUP, VERSION, world.ns, "sandboxjobs",
                    "rm", {"status": {"approvedAt": "2020-01-01T00:00:00Z"}})
    assert error.status == 403
    # nor change what it asked for (no update verb, and the spec is immutable anyway).
    error = refused(users["submitter"].patch_namespaced_custom_object, GROUP, VERSION, world.ns, "sandboxjobs",
                    "rm", {"spec": {"command": "ls"}})
    assert error.status == 403


def test_approvals_cannot_be_forged_or_rewritten(world, users):
    _, approval_name = world.await_approval()
    approval = world.approvals[approval_name]
    forged = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Approval",
        "metadata": {"name": "forged", "ownerReferences": approval["metadata"]["ownerReferences"]},
        "spec": {**approval["spec"], "decision": "Approved"},
    }
    for who in ("submitter", "approver"):  # neither role may create an Approval
        error = refused(users[who].create_namespaced_custom_object, GROUP, VERSION, world.ns, "approvals", forged)
        assert error.status == 403, who
    # The submitter cannot decide; the approver cannot change what is being decided on, nor the status.
    error = refused(users["submitter"].patch_namespaced_custom_object, GROUP, VERSION, world.ns, "approvals",
                    approval_name, {"spec": {"decision": "Approved"}})
    assert error.status == 403
    error = refused(users["approver"].patch_namespaced_custom_object, GROUP, VERSION, world.ns, "approvals",
                    approval_name, {"spec": {"command": ["rm", "-rf", "."], "decision": "Approved"}})
    assert error.status == 422 and "command is immutable" in error.body
    error = refused(users["approver"].patch_namespaced_custom_object_status, GROUP, VERSION, world.ns, "approvals",
                    approval_name, {"status": {"phase": "Approved"}})
    assert error.status == 403
    # The real decision still works, and launches exactly the reviewed argv.
    users["approver"].patch_namespaced_custom_object(GROUP, VERSION, world.ns, "approvals", approval_name,
                                                     {"spec": {"decision": "Approved", "note": "reviewed"}})
    assert world.run("rm") == "Running" and world.status("rm")["argv"] == ["rm", "delete-me.txt"]


@pytest.fixture
def bound_world(stage):
    """A world in the namespace the chart's admission policy binds, shared with the Kopf module:
    the jobs a test leaves there are deleted, so the operator never picks them up later."""
    world = World(stage, BOUND_NAMESPACE)
    before = {job["metadata"]["name"] for job in _jobs(world)}
    yield world
    left = {job["metadata"]["name"] for job in _jobs(world)} - before
    for name in left:
        world.custom.delete_namespaced_custom_object(GROUP, VERSION, BOUND_NAMESPACE, "sandboxjobs", name)
    for name, approval in world.approvals.items():
        if approval["spec"]["jobName"] in left:
            world.delete_approval(name)


def _jobs(world):
    return world.custom.list_namespaced_custom_object(GROUP, VERSION, BOUND_NAMESPACE, "sandboxjobs")["items"]


def test_a_submitter_cannot_tie_a_job_to_another_objects_lifetime_or_pin_it(stage, bound_world):
    """Owner references let the garbage collector erase the job (the record of what ran) when the
    owner goes; finalizers pin it. Neither may come from anyone but the operator: the chart's
    ValidatingAdmissionPolicy, bound in the release's sandbox namespaces."""
    world = bound_world
    submitter = f"submitter-{uuid.uuid4().hex[:6]}"
    stage.bind(BOUND_NAMESPACE, submitter, SUBMITTER)
    stage.bind(BOUND_NAMESPACE, submitter, SOURCE_READER, kind="Role")
    as_submitter = client.CustomObjectsApi(stage.client_as(submitter))
    victim = f"victim-{uuid.uuid4().hex[:6]}"
    world.add_job(victim, "ls")
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxJob", "name": victim,
             "uid": world.job(victim)["metadata"]["uid"]}
    attempts = {
        "ownerReferences": job_body(f"owned-{uuid.uuid4().hex[:6]}", metadata={"ownerReferences": [owner]}),
        "finalizers": job_body(f"pinned-{uuid.uuid4().hex[:6]}", metadata={"finalizers": ["example.com/keep-forever"]}),
    }
    for field, body in attempts.items():
        error = refused(as_submitter.create_namespaced_custom_object, GROUP, VERSION, BOUND_NAMESPACE, "sandboxjobs", body)
        assert f"metadata.{field} may be set only by the safeagent operator" in error.body, field
    as_submitter.create_namespaced_custom_object(GROUP, VERSION, BOUND_NAMESPACE, "sandboxjobs",
                                                 job_body(f"plain-{uuid.uuid4().hex[:6]}"))
    # Not on update either, and not by a cluster administrator.
    error = refused(world.custom.patch_namespaced_custom_object, GROUP, VERSION, BOUND_NAMESPACE, "sandboxjobs",
                    victim, {"metadata": {"finalizers": ["example.com/keep-forever"]}})
    assert "may be set only by the safeagent operator" in error.body
    # The operator may: it puts its Approval under its job (world.run acts as the operator).
    rm = f"rm-{uuid.uuid4().hex[:6]}"
    world.add_job(rm, "rm delete-me.txt")
    assert world.run(rm) == "AwaitingApproval"
    assert world.approvals[world.status(rm)["approvalName"]]["metadata"]["ownerReferences"]
