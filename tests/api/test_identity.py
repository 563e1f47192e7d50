"""Who asked and who decided, as the API server authenticated them (issue 17): the chart's
identity policies (charts/safeagent/templates/admission-identity.yaml) on a real API server,
with real users (impersonated, as `kubectl --as` does) and real ServiceAccount tokens, and what
the operator checks again itself, also where those policies are missing."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from safeagent import builders, reconcile
from safeagent.models import GROUP, VERSION
from safeagent.sandbox.digest import configmap_digest
from tests.api.stage import (
    SOURCE_CLAIM,
    SOURCE_CONFIGMAP,
    SOURCE_FILES,
    SOURCE_READER,
    TIER_APPROVER,
    TIER_SUBMITTER,
    tool,
)
from tests.api.world import World, runner_record

API = (GROUP, VERSION)
REPO_DIGEST = configmap_digest({name: text.encode() for name, text in SOURCE_FILES.items()})
PVC = {"persistentVolumeClaim": {"claimName": SOURCE_CLAIM}}


def refused(call, *args, **kwargs) -> ApiException:
    with pytest.raises(ApiException) as refusal:
        call(*args, **kwargs)
    return refusal.value


def person(world: World, roles: tuple[str, ...] = ("safeagent-submitter",), reader: bool = True) -> tuple[str, object]:
    """A new user bound to `roles` (and the source reader) in the world's namespace, and its client."""
    name = f"user-{uuid.uuid4().hex[:6]}"
    for role in roles:
        world.stage.bind(world.ns, name, role)
    if reader:
        world.stage.bind(world.ns, name, SOURCE_READER, kind="Role")
    return name, client.CustomObjectsApi(world.stage.client_as(name))


def service_account(world: World, name: str, roles: tuple[str, ...]) -> tuple[str, object]:
    """A ServiceAccount bound to `roles` (and the source reader), and a client with its real token."""
    core = client.CoreV1Api(world.stage.admin)
    core.create_namespaced_service_account(world.ns, {"metadata": {"name": name}})
    rbac = client.RbacAuthorizationV1Api(world.stage.admin)
    for kind, role in [("ClusterRole", role) for role in roles] + [("Role", SOURCE_READER)]:
        rbac.create_namespaced_role_binding(world.ns, {
            "metadata": {"name": f"{name}-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": world.ns}],
        })
    token = core.create_namespaced_service_account_token(name, world.ns, {"spec": {"expirationSeconds": 3600}}).status.token
    return f"system:serviceaccount:{world.ns}:{name}", client.CustomObjectsApi(world.stage.server.client(token))


# ------------------------------------------------------------------------------- the requester


def test_the_cluster_records_the_requester_on_the_job_its_approval_audit_and_events(world):
    job = world.add_job("rm", "rm delete-me.txt")
    requester = job["spec"]["requester"]
    assert requester["username"] == TIER_SUBMITTER and "system:authenticated" in requester["groups"]
    assert world.run("rm") == "AwaitingApproval"
    approval = world.approvals[world.status("rm")["approvalName"]]
    assert approval["spec"]["requester"] == requester and "decider" not in approval["spec"]
    assert world.audit.lines and {line["requester"] for line in world.audit.lines} == {TIER_SUBMITTER}
    assert world.kube.events and all(f"(requester {TIER_SUBMITTER})" in text for _, _, text in world.kube.events)


def test_a_forged_requester_is_refused_and_a_true_one_accepted(world):
    body = lambda name, requester: {  # noqa: E731
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxJob", "metadata": {"name": name},
        "spec": {"command": "ls", "source": {"configMap": {"name": SOURCE_CONFIGMAP}}, "requester": requester},
    }
    for forged in ({"username": "alice"}, {"username": TIER_SUBMITTER, "groups": ["system:masters"]},
                   {"username": TIER_SUBMITTER, "uid": "someone-elses-uid", "groups": ["system:authenticated"]}):
        error = refused(world.submitter.create_namespaced_custom_object, *API, world.ns, "sandboxjobs",
                        body("forged", forged))
        assert error.status == 403, forged
        assert f"spec.requester is recorded by the cluster and must be exactly the caller, {TIER_SUBMITTER}" in error.body
    # The caller's exact identity (as the API server authenticates an impersonated user) passes.
    true = {"username": TIER_SUBMITTER, "groups": ["system:authenticated"]}
    assert world.submitter.create_namespaced_custom_object(
        *API, world.ns, "sandboxjobs", body("true", true))["spec"]["requester"]["username"] == TIER_SUBMITTER
    # ... and nobody changes it later, the cluster admin included (the spec is immutable).
    error = refused(world.custom.patch_namespaced_custom_object, *API, world.ns, "sandboxjobs", "true",
                    {"spec": {"requester": {"username": "alice"}}})
    assert error.status == 422 and "spec is immutable" in error.body


def test_a_service_account_is_recorded_by_its_full_name(world):
    agent, as_agent = service_account(world, "agent", ("safeagent-submitter",))
    job = as_agent.create_namespaced_custom_object(*API, world.ns, "sandboxjobs", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxJob", "metadata": {"name": "by-agent"},
        "spec": {"command": "ls", "source": {"configMap": {"name": SOURCE_CONFIGMAP}}},
    })
    requester = job["spec"]["requester"]
    assert requester["username"] == agent and requester["uid"]  # the ServiceAccount's UID
    assert f"system:serviceaccounts:{world.ns}" in requester["groups"]
    assert world.run("by-agent") == "Running"


# ------------------------------------------------------------------------------- the decider


def test_decided_by_is_the_authenticated_user_whatever_spec_says(world):
    _, approval = world.await_approval()
    error = refused(world.approver.patch_namespaced_custom_object, *API, world.ns, "approvals", approval,
                    {"spec": {"decision": "Approved", "decider": {"username": "alice"}}})
    assert error.status == 403 and f"must be exactly the caller, {TIER_APPROVER}" in error.body
    error = refused(world.approver.patch_namespaced_custom_object, *API, world.ns, "approvals", approval,
                    {"spec": {"decider": {"username": TIER_APPROVER}}})  # without a decision
    assert error.status == 422 and "recorded by the cluster with the decision, and only then" in error.body
    decided = world.decide(approval, "Approved", note="looked at the diff")
    assert decided["spec"]["decider"]["username"] == TIER_APPROVER
    assert world.run("rm") == "Running"
    assert world.status("rm")["decidedBy"] == TIER_APPROVER
    assert world.approvals[approval]["status"]["decidedBy"] == TIER_APPROVER
    lines = [line for line in world.audit.lines if line["event"] == "ApprovalApproved"]
    assert lines and all(line["decidedBy"] == TIER_APPROVER and line["requester"] == TIER_SUBMITTER for line in lines)


def test_the_requester_may_not_decide_its_own_job(world):
    """One user holding both roles submits and approves: refused, and a second person decides."""
    both, as_both = person(world, ("safeagent-submitter", "safeagent-approver"))
    world.add_job("rm", "rm delete-me.txt", by=as_both)
    assert world.run("rm") == "AwaitingApproval"
    approval = world.status("rm")["approvalName"]
    for decision in ("Approved", "Denied"):
        error = refused(world.decide, approval, decision, by=as_both)
        assert error.status == 403
        assert f"{both} submitted job rm and may not decide its Approval" in error.body
    world.decide(approval, "Approved")  # the namespace's approver: another person
    assert world.run("rm") == "Running" and world.status("rm")["decidedBy"] == TIER_APPROVER


def test_a_service_account_may_not_approve_a_job_it_submitted(world):
    agent, as_agent = service_account(world, "agent", ("safeagent-submitter", "safeagent-approver"))
    world.add_job("rm", "rm delete-me.txt", by=as_agent)
    assert world.run("rm") == "AwaitingApproval"
    approval = world.status("rm")["approvalName"]
    error = refused(world.decide, approval, "Approved", by=as_agent)
    assert error.status == 403 and f"{agent} submitted job rm" in error.body
    # A second ServiceAccount, another identity, may.
    reviewer, as_reviewer = service_account(world, "reviewer", ("safeagent-approver",))
    world.decide(approval, "Approved", by=as_reviewer)
    assert world.run("rm") == "Running" and world.status("rm")["decidedBy"] == reviewer


def test_the_operator_never_decides(world):
    _, approval = world.await_approval()
    as_operator = client.CustomObjectsApi(world.stage.operator)
    error = refused(world.decide, approval, "Approved", by=as_operator)
    assert error.status == 403 and "never decides an Approval" in error.body


@pytest.mark.parametrize("patch", [
    {"metadata": {"labels": {"safeagent.ca/job-uid": "another"}}},
    {"metadata": {"annotations": {"kopf.zalando.org/last-handled-configuration": "{}"}}},
    {"metadata": {"annotations": {"note": "hello"}}},
    {"metadata": {"finalizers": ["example.com/keep"]}},
    {"metadata": {"labels": {"extra": "x"}}, "spec": {"decision": "Approved"}},
], ids=["relabel", "kopf-bookkeeping", "annotate", "finalizer", "label-with-decision"])
def test_an_approver_changes_only_the_decision_and_note(world, patch):
    _, approval = world.await_approval()
    error = refused(world.approver.patch_namespaced_custom_object, *API, world.ns, "approvals", approval, patch)
    assert error.status == 403 and "a reviewer changes only spec.decision and spec.note" in error.body
    assert world.approvals[approval]["spec"]["decision"] == "Pending"


def test_the_decision_and_its_note_are_final(world):
    _, approval = world.await_approval()
    world.decide(approval, "Denied", note="no")
    for patch in ({"spec": {"note": "yes after all"}}, {"spec": {"decision": "Approved"}}):
        error = refused(world.approver.patch_namespaced_custom_object, *API, world.ns, "approvals", approval, patch)
        assert error.status == 422, patch
    assert world.run("rm") == "Denied" and world.kube.pods_created == 0


# ------------------------------------------------------------------------------- the source


@pytest.mark.parametrize(("source", "kind", "name"), [
    ({"configMap": {"name": SOURCE_CONFIGMAP}}, "ConfigMap", SOURCE_CONFIGMAP),
    (PVC, "PersistentVolumeClaim", SOURCE_CLAIM),
], ids=["configmap", "claim"])
def test_a_job_may_name_only_a_source_its_requester_can_read(world, source, kind, name):
    user, as_user = person(world, reader=False)  # may submit, may not read the sources
    error = refused(world.add_job, "peek", "cat delete-me.txt", by=as_user, source=source)
    assert error.status == 403
    assert f"{user} may not get {kind} {name} in namespace {world.ns}: a job may name only a source its requester can read" in error.body


def test_a_read_right_narrowed_to_one_name_covers_that_name_only(world):
    user, as_user = person(world, reader=False)
    rbac = client.RbacAuthorizationV1Api(world.stage.admin)
    rbac.create_namespaced_role(world.ns, {"metadata": {"name": "read-repo"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": [SOURCE_CONFIGMAP]}]})
    world.stage.bind(world.ns, user, "read-repo", kind="Role")
    world.put_configmap({"secret.txt": "not yours\n"}, name="other")
    world.add_job("mine", "ls", by=as_user)
    error = refused(world.add_job, "theirs", "cat secret.txt", by=as_user, source={"configMap": {"name": "other"}})
    assert error.status == 403 and "may not get ConfigMap other" in error.body


@pytest.mark.parametrize("command", ["ls", "rm delete-me.txt"], ids=["allowed", "needs-approval"])
def test_the_operator_asks_again_before_it_reads_the_source(world, command):
    """Admitted while the requester could read the source; the right is taken away before the
    operator reads it (to pin its digest) or mounts it (at launch): the job ends, nothing runs."""
    user, as_user = person(world)
    world.add_job("job", command, by=as_user)
    client.RbacAuthorizationV1Api(world.stage.admin).delete_namespaced_role_binding(f"{user}-{SOURCE_READER}", world.ns)
    assert world.run("job") == "Rejected"
    status = world.status("job")
    assert status["reason"] == "SourceForbidden" and f"{user} may not get ConfigMap {SOURCE_CONFIGMAP}" in status["message"]
    assert world.kube.pods_created == 0 and world.approvals == {}
    assert "SourceForbidden" in world.reasons()


def test_access_taken_away_while_waiting_for_approval_stops_the_launch(world):
    user, as_user = person(world)
    world.add_job("rm", "rm delete-me.txt", by=as_user)
    assert world.run("rm") == "AwaitingApproval"
    world.decide(world.status("rm")["approvalName"], "Approved")
    client.RbacAuthorizationV1Api(world.stage.admin).delete_namespaced_role_binding(f"{user}-{SOURCE_READER}", world.ns)
    assert world.run("rm") == "Rejected" and world.status("rm")["reason"] == "SourceForbidden"
    assert world.kube.pods_created == 0


# ------------------------------------------------------------------------------- impersonation


def test_impersonation_acts_as_the_named_user_and_needs_its_own_right(world):
    """`kubectl --as` is recorded as the user it names (the API server's audit log keeps who
    impersonated): whoever may impersonate may act as anyone, so the chart never grants it.
    A submitter that tries is refused."""
    kubeconfig = world.stage.workdir / "admin.kubeconfig"
    kubectl = [tool("kubectl"), "--kubeconfig", str(kubeconfig), "-n", world.ns]
    manifest = (f"apiVersion: {GROUP}/{VERSION}\nkind: SandboxJob\nmetadata: {{name: as-someone}}\n"
                f"spec: {{command: ls, source: {{configMap: {{name: {SOURCE_CONFIGMAP}}}}}}}\n")
    subprocess.run([*kubectl, "--as", TIER_SUBMITTER, "apply", "-f", "-"], input=manifest, text=True, check=True,
                   capture_output=True)
    assert world.job("as-someone")["spec"]["requester"]["username"] == TIER_SUBMITTER
    # A ServiceAccount holding the submitter role has no right to impersonate the approver.
    agent, as_agent = service_account(world, "agent", ("safeagent-submitter",))
    as_agent.api_client.set_default_header("Impersonate-User", TIER_APPROVER)
    error = refused(as_agent.list_namespaced_custom_object, *API, world.ns, "approvals")
    assert error.status == 403 and "cannot impersonate" in error.body


def test_kubectl_shows_requester_decision_and_decider(world):
    _, approval = world.await_approval()
    world.decide(approval, "Approved")
    kubeconfig = world.stage.workdir / "admin.kubeconfig"
    kubectl = [tool("kubectl"), "--kubeconfig", str(kubeconfig), "-n", world.ns]
    approvals = subprocess.run([*kubectl, "get", "approvals"], capture_output=True, text=True, check=True).stdout
    header, row = approvals.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "JOB", "COMMAND", "REQUESTER", "DECISION", "DECIDER"]
    assert row.split()[3:6] == [TIER_SUBMITTER, "Approved", TIER_APPROVER]
    jobs = subprocess.run([*kubectl, "get", "sbj", "-o", "wide"], capture_output=True, text=True, check=True).stdout
    assert "REQUESTER" in jobs.splitlines()[0] and TIER_SUBMITTER in jobs.splitlines()[1]


# ------------------------------------------------------------------------------- without the policies


@pytest.fixture
def unbound(stage):
    """A namespace the chart's identity policies do not cover: a cluster where they are missing."""
    return World(stage, stage.new_namespace(bound=False))


def test_without_the_policies_a_job_with_no_requester_never_runs(unbound):
    job = unbound.add_job("list", "ls", by=unbound.custom)
    assert "requester" not in job["spec"]
    assert unbound.run("list") == "Rejected"
    status = unbound.status("list")
    assert status["reason"] == "RequesterUnknown" and "admission policies" in status["message"]
    assert unbound.kube.pods_created == 0


def test_without_the_policies_the_operator_still_refuses_self_approval(unbound):
    unbound.add_job("rm", "rm delete-me.txt", by=unbound.custom, requester={"username": TIER_SUBMITTER})
    assert unbound.run("rm") == "AwaitingApproval"
    approval = unbound.status("rm")["approvalName"]
    unbound.patch_approval(approval, {"spec": {"decision": "Approved", "decider": {"username": TIER_SUBMITTER}}})
    with pytest.raises(reconcile.PermanentFailure):
        unbound.run("rm")
    status = unbound.status("rm")
    assert status["reason"] == "ApprovalMismatch" and f"{TIER_SUBMITTER} decided the Approval of a job they submitted" in status["message"]
    assert unbound.kube.pods_created == 0
    assert unbound.approvals[approval].get("status", {}).get("phase") != "Approved"


def test_without_the_policies_a_pre_decided_approval_never_runs(unbound):
    unbound.add_job("rm", "rm delete-me.txt", by=unbound.custom, requester={"username": TIER_SUBMITTER})
    job = reconcile.SandboxJob.model_validate(unbound.job("rm"))
    forged = builders.build_approval(job, ["rm", "delete-me.txt"], REPO_DIGEST)
    forged["spec"].update({"decision": "Approved", "decider": {"username": "someone"}})
    unbound.create_approval(forged)
    with pytest.raises(reconcile.PermanentFailure):
        unbound.run("rm")
    status = unbound.status("rm")
    assert status["reason"] == "ApprovalMismatch" and "before this job asked" in status["message"]
    assert unbound.kube.pods_created == 0


def test_a_finished_job_keeps_its_people(world):
    _, approval = world.await_approval()
    world.decide(approval, "Approved")
    world.run("rm")
    world.finish_pod(world.status("rm")["podName"], runner_record(stdout=""))
    assert world.run("rm") == "Succeeded"
    job = world.job("rm")
    assert job["spec"]["requester"]["username"] == TIER_SUBMITTER and job["status"]["decidedBy"] == TIER_APPROVER
