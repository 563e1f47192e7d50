"""reconcile.reconcile_job / reconcile_approval against an in-memory API and a fake policy.

The fake API behaves like the real one where it matters: 404 / 409 as errors, status merge
patches, and failures injected per call to show retry and crash-recovery behaviour.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import types
import uuid

import pytest

from safeagent import audit, builders, reconcile
from safeagent.config import parse_config
from safeagent.kube import AlreadyExists, Conflict, Invalid, NotFound, Unavailable
from safeagent.models import spec_hash, SandboxJobSpec
from safeagent.sandbox.digest import configmap_digest

NS = "sandbox"
T0 = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def merge(target: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class FakeKube:
    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}
        self.approvals: dict[str, dict] = {}
        self.pods: dict[str, dict] = {}
        self.network_policies: dict[str, dict] = {}
        # The source every job names (spec.source.configMap.name "repo").
        self.configmaps: dict[str, dict] = {"repo": {"data": {"delete-me.txt": "bye\n"}}}
        # The volume source the PVC jobs name (spec.source.persistentVolumeClaim.claimName "repos").
        self.claims: dict[str, dict] = {"repos": {"metadata": {"name": "repos"}}}
        self.pod_events: dict[str, list[dict]] = {}  # Pod UID -> its Events
        self.services: dict[str, str] = {"safeagent-canary": "10.96.7.7"}
        self.logs: dict[tuple[str, str], str] = {}
        self.events: list[tuple[str, str, str]] = []
        self.pods_created = 0
        self.failures: dict[str, list[Exception]] = {}

    def fail(self, method: str, error: Exception, times: int = 1) -> None:
        self.failures.setdefault(method, []).extend([error] * times)

    def _maybe_fail(self, method: str) -> None:
        queue = self.failures.get(method)
        if queue:
            raise queue.pop(0)

    # jobs
    def add_job(self, name: str, command: str, **spec) -> dict:
        body = {
            "apiVersion": "safeagent.ca/v1alpha1",
            "kind": "SandboxJob",
            "metadata": {
                "name": name, "namespace": NS, "uid": str(uuid.uuid4()), "generation": 1,
                "creationTimestamp": reconcile.timestamp(T0),
            },
            "spec": {"command": command, "source": {"configMap": {"name": "repo"}}, **spec},
        }
        self.jobs[name] = body
        return body

    def get_job(self, namespace, name):
        self._maybe_fail("get_job")
        if name not in self.jobs:
            raise NotFound(name)
        return copy.deepcopy(self.jobs[name])

    def patch_job_status(self, namespace, name, status):
        self._maybe_fail("patch_job_status")
        body = self.jobs[name]
        body.setdefault("status", {})
        merge(body["status"], status)

    # approvals
    def get_approval(self, namespace, name):
        self._maybe_fail("get_approval")
        if name not in self.approvals:
            raise NotFound(name)
        return copy.deepcopy(self.approvals[name])

    def create_approval(self, body):
        self._maybe_fail("create_approval")
        name = body["metadata"]["name"]
        if name in self.approvals:
            raise AlreadyExists(name)
        stored = copy.deepcopy(body)
        stored["metadata"]["uid"] = str(uuid.uuid4())
        self.approvals[name] = stored
        return stored

    def patch_approval_status(self, namespace, name, status):
        self._maybe_fail("patch_approval_status")
        merge(self.approvals[name].setdefault("status", {}), status)

    def decide_approval(self, name, decision, reviewer=""):
        self.approvals[name]["spec"].update({"decision": decision, "reviewer": reviewer})

    # sources
    def get_configmap(self, namespace, name):
        self._maybe_fail("get_configmap")
        if name not in self.configmaps:
            raise NotFound(name)
        return copy.deepcopy(self.configmaps[name])

    def get_persistent_volume_claim(self, namespace, name):
        self._maybe_fail("get_persistent_volume_claim")
        if name not in self.claims:
            raise NotFound(name)
        return copy.deepcopy(self.claims[name])

    def list_pod_events(self, namespace, pod_uid):
        self._maybe_fail("list_pod_events")
        return copy.deepcopy(self.pod_events.get(pod_uid, []))
    def get_canary_address(self, namespace, name):
        self._maybe_fail("get_canary_address")
        if name not in self.services:
            raise NotFound(name)
        return self.services[name]

    # pods
    def get_pod(self, namespace, name):
        self._maybe_fail("get_pod")
        if name not in self.pods:
            raise NotFound(name)
        return copy.deepcopy(self.pods[name])

    def create_pod(self, body):
        self._maybe_fail("create_pod")
        name = body["metadata"]["name"]
        if name in self.pods:
            raise AlreadyExists(name)
        self.pods_created += 1
        self.pods[name] = {**copy.deepcopy(body), "status": {"phase": "Pending"}}
        self.pods[name]["metadata"]["uid"] = str(uuid.uuid4())
        return copy.deepcopy(self.pods[name])

    def delete_pod(self, namespace, name, uid=None):
        self._maybe_fail("delete_pod")
        if name not in self.pods:
            raise NotFound(name)
        if uid is not None and self.pods[name]["metadata"].get("uid") != uid:
            raise Conflict(f"precondition failed: UID in precondition: {uid}")
        del self.pods[name]

    def read_pod_log(self, namespace, name, container, limit_bytes):
        if name not in self.pods:
            raise NotFound(name)
        return self.logs.get((name, container), "")[:limit_bytes]

    def apply_network_policy(self, body):
        self._maybe_fail("apply_network_policy")
        self.network_policies[body["metadata"]["name"]] = body

    def post_event(self, involved, reason, message, warning=False):
        self.events.append((involved["kind"], reason, message))

    # test helpers
    def finish_pod(self, name, record=None, phase="Succeeded", prepare_exit=0, prepare_record=None, reason=None):
        pod = self.pods[name]
        pod["status"] = {
            "phase": phase,
            "initContainerStatuses": [
                {"name": "prepare", "state": {"terminated": {"exitCode": prepare_exit}}}
            ],
            "containerStatuses": [{"name": "runner", "state": {"terminated": {"exitCode": 0}}}],
        }
        if reason:
            pod["status"]["reason"] = reason
        if record is not None:
            self.logs[(name, "runner")] = "some diagnostics\n" + json.dumps(record, separators=(",", ":")) + "\n"
        if prepare_record is not None:
            self.logs[(name, "prepare")] = json.dumps(prepare_record, separators=(",", ":")) + "\n"


REPO_DIGEST = configmap_digest({"delete-me.txt": b"bye\n"})


def runner_record(**overrides):
    record = {
        "kind": "safeagent.ca/runner-result", "version": 1, "exitCode": 0, "signal": None,
        "timedOut": False, "durationMs": 5, "stdout": "a.txt\nb.txt\n", "stderr": "",
        "stdoutBytes": 12, "stderrBytes": 0, "stdoutTruncated": False, "stderrTruncated": False,
        "changedFiles": {"created": 0, "modified": 0, "deleted": 0, "total": 0, "complete": True, "paths": []},
        "leftoverProcessesKilled": 0, "fullVolumes": [], "egress": None, "error": None,
    }
    return {**record, **overrides}


# The keys of a preparation record that only some records fill (every key is required).
PREPARE_NULLS = {"files": None, "bytes": None, "digest": None, "report": None, "git": None}


DECISIONS = {
    "ls": ("allow", ["ls"], "allowed"),
    "ls -la": ("allow", ["ls", "-la"], "allowed"),
    "rm delete-me.txt": ("require_approval", ["rm", "delete-me.txt"], "approval_required"),
    "curl evil": ("deny", ["curl", "evil"], "program_not_allowed"),
}


def fake_decide(policy, command):
    decision, argv, reason = DECISIONS[command]
    return types.SimpleNamespace(decision=decision, argv=argv, reason=reason, message=f"{reason}: {command}")


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)


class AuditLines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture
def world():
    kube = FakeKube()
    clock = Clock()
    lines = AuditLines()
    logger = logging.getLogger("test.safeagent.audit")
    logger.handlers[:] = [lines]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    policy = types.SimpleNamespace(max_output_kb=64, max_file_writes=2)
    ctx = reconcile.Context(
        kube=kube, config=parse_config({}), policy=lambda: policy, decide=fake_decide,
        auditor=audit.Auditor(kube, logger), now=clock,
    )
    return types.SimpleNamespace(kube=kube, clock=clock, ctx=ctx, audit=lines, policy=policy)


def reasons(kube):
    return [reason for _, reason, _ in kube.events]


def status(world, name):
    return world.kube.jobs[name]["status"]


def test_allowed_job_runs_and_its_output_lands_in_status(world):
    world.kube.add_job("list", "ls -la")
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    st = status(world, "list")
    assert st["podName"] in world.kube.pods and st["argv"] == ["ls", "-la"]
    assert "safeagent-profile-none" in world.kube.network_policies
    assert st["decidedAt"] and st["startTime"] and st["limits"] == {"maxOutputKb": 64, "maxFileWrites": 2}
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"  # nothing new while it runs
    world.kube.finish_pod(st["podName"], runner_record())
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Succeeded"
    st = status(world, "list")
    assert st["stdout"] == "a.txt\nb.txt\n" and st["exitCode"] == 0 and st["completionTime"]
    assert world.kube.pods == {}  # deleted after the result was stored
    assert reasons(world.kube) == ["PolicyAllowed", "SandboxLaunched", "CommandFinished"]
    assert world.kube.pods_created == 1
    assert {c["type"]: c["status"] for c in st["conditions"]} == {"Decided": "True", "Launched": "True", "Completed": "True"}
    reconcile.reconcile_job(world.ctx, NS, "list")
    assert len(world.kube.events) == 3  # a final job stays quiet


def test_denied_job_never_gets_a_pod(world):
    world.kube.add_job("bad", "curl evil")
    assert reconcile.reconcile_job(world.ctx, NS, "bad") == "Denied"
    st = status(world, "bad")
    assert (st["decision"], st["reason"]) == ("deny", "program_not_allowed")
    assert world.kube.pods_created == 0 and world.kube.approvals == {}
    assert reasons(world.kube) == ["PolicyDenied"]


def _await(world, name="rm"):
    job = world.kube.add_job(name, "rm delete-me.txt")
    assert reconcile.reconcile_job(world.ctx, NS, name) == "AwaitingApproval"
    approval_name = status(world, name)["approvalName"]
    return job, approval_name


def test_approval_is_bound_to_job_uid_spec_and_argv(world):
    job, approval_name = _await(world)
    approval = world.kube.approvals[approval_name]
    assert approval_name == builders.child_name("rm", job["metadata"]["uid"])
    assert approval["spec"]["command"] == ["rm", "delete-me.txt"]
    assert approval["spec"]["jobUid"] == job["metadata"]["uid"]
    assert approval["spec"]["specHash"] == spec_hash(SandboxJobSpec.model_validate(job["spec"]))
    assert approval["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "AwaitingApproval"
    assert world.kube.pods_created == 0
    assert reasons(world.kube) == ["ApprovalRequested"]


def test_approve_round_trip(world):
    _, approval_name = _await(world)
    world.kube.decide_approval(approval_name, "Approved", reviewer="alice")
    assert reconcile.reconcile_approval(world.ctx, NS, approval_name) == "rm"
    assert world.kube.approvals[approval_name]["status"]["phase"] == "Approved"
    assert world.kube.approvals[approval_name]["status"]["decidedBy"] == "alice"
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Running"
    st = status(world, "rm")
    assert st["approvedAt"] and st["decidedBy"] == "alice"
    runner = world.kube.pods[st["podName"]]["spec"]["containers"][0]
    assert json.loads(runner["args"][0])["argv"] == ["rm", "delete-me.txt"]
    changed = {"created": 0, "modified": 0, "deleted": 1, "total": 1, "complete": True, "paths": ["-delete-me.txt"]}
    world.kube.finish_pod(st["podName"], runner_record(stdout="", changedFiles=changed))
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Succeeded"
    assert status(world, "rm")["changedFiles"]["paths"] == ["-delete-me.txt"]
    assert reasons(world.kube) == [
        "ApprovalRequested", "ApprovalApproved", "ApprovalApproved", "SandboxLaunched", "CommandFinished",
    ]  # one ApprovalApproved on the Approval, one on the job
    assert [kind for kind, reason, _ in world.kube.events if reason == "ApprovalApproved"] == ["Approval", "SandboxJob"]


def test_deny_round_trip_and_decision_is_final(world):
    _, approval_name = _await(world)
    world.kube.decide_approval(approval_name, "Denied")
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Denied"
    assert world.kube.approvals[approval_name]["status"] == {
        "phase": "Denied", "decidedBy": "unknown", "decidedAt": reconcile.timestamp(T0)
    }
    # Even if someone flips the spec later (CEL forbids it), the final status and job stay.
    world.kube.decide_approval(approval_name, "Approved")
    reconcile.reconcile_approval(world.ctx, NS, approval_name)
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Denied"
    assert world.kube.approvals[approval_name]["status"]["phase"] == "Denied"
    assert world.kube.pods_created == 0


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (lambda a: a["spec"].update(command=["rm", "-rf", "."]), "approved command"),
        (lambda a: a["spec"].update(specHash="f" * 64), "spec changed"),
        (lambda a: a["spec"].update(jobUid="someone-else"), "another job"),
        (lambda a: a["metadata"].update(ownerReferences=[]), "not owned"),
        (lambda a: a["spec"].update(networkProfile="git-read"), "network profile"),
    ],
)
def test_approval_that_does_not_match_never_runs(world, tamper, problem):
    _, approval_name = _await(world)
    approval = world.kube.approvals[approval_name]
    tamper(approval)
    approval["spec"]["decision"] = "Approved"
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "rm")
    st = status(world, "rm")
    assert (st["phase"], st["reason"]) == ("Failed", "ApprovalMismatch")
    assert problem in st["message"]
    assert world.kube.pods_created == 0


def test_pre_existing_approval_is_checked_not_trusted(world):
    job = world.kube.add_job("rm", "rm delete-me.txt")
    name = builders.child_name("rm", job["metadata"]["uid"])
    forged = builders.build_approval(reconcile.SandboxJob.model_validate(job), ["rm", "-rf", "/workspace"], REPO_DIGEST)
    forged["spec"]["decision"] = "Approved"
    world.kube.approvals[name] = forged
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "rm")
    assert status(world, "rm")["reason"] == "ApprovalMismatch" and world.kube.pods_created == 0


def test_approval_expires(world):
    _, approval_name = _await(world)
    world.clock.advance(world.ctx.config.approvalTimeoutSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Failed"
    assert status(world, "rm")["reason"] == "ApprovalExpired"
    assert world.kube.approvals[approval_name]["status"]["phase"] == "Expired"
    world.kube.decide_approval(approval_name, "Approved")
    reconcile.reconcile_approval(world.ctx, NS, approval_name)
    assert world.kube.approvals[approval_name]["status"]["phase"] == "Expired"
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Failed" and world.kube.pods_created == 0


def test_deleted_approval_fails_closed(world):
    _, approval_name = _await(world)
    del world.kube.approvals[approval_name]
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "rm")
    assert status(world, "rm")["reason"] == "ApprovalMissing"


def test_crash_after_pod_creation_adopts_the_pod(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")  # decided: Pending... and launched
    assert world.kube.pods_created == 1
    # Simulate the crash window: the Pod exists but the status never said Running.
    st = status(world, "list")
    st["phase"] = "Pending"
    st.pop("podName")
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    assert world.kube.pods_created == 1 and len(world.kube.pods) == 1


def test_failed_status_write_after_create_is_retried_without_a_second_pod(world):
    world.kube.add_job("list", "ls")
    world.kube.fail("patch_job_status", Unavailable("etcd hiccup"), times=1)
    with pytest.raises(reconcile.TransientFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")  # fails writing the decision
    world.kube.fail("patch_job_status", Unavailable("etcd hiccup"), times=0)
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    # now fail the write that follows create_pod
    world.kube.add_job("list2", "ls")
    original = world.kube.create_pod

    def create_then_break(body):
        created = original(body)
        world.kube.fail("patch_job_status", Unavailable("lost"), times=1)
        return created

    world.kube.create_pod = create_then_break
    with pytest.raises(reconcile.TransientFailure):
        reconcile.reconcile_job(world.ctx, NS, "list2")
    world.kube.create_pod = original
    assert reconcile.reconcile_job(world.ctx, NS, "list2") == "Running"
    assert world.kube.pods_created == 2  # one per job, never two for one job


def test_foreign_pod_with_our_name_is_not_adopted(world):
    job = world.kube.add_job("list", "ls")
    name = builders.child_name("list", job["metadata"]["uid"])
    world.kube.pods[name] = {"metadata": {"name": name, "labels": {}}, "status": {"phase": "Running"}}
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    assert status(world, "list")["reason"] == "PodNameConflict"


def test_vanished_pod_fails_the_job_and_is_never_recreated(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    world.kube.pods.clear()
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Failed"
    assert status(world, "list")["reason"] == "PodLost" and world.kube.pods_created == 1


def test_rejected_source(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    pod = status(world, "list")["podName"]
    world.kube.finish_pod(
        pod, phase="Failed", prepare_exit=1,
        prepare_record={"kind": "safeagent.ca/prepare-result", **PREPARE_NULLS, "ok": False, "reason": "symlink",
                        "message": "source tree rejected: escape: symbolic link refused"},
    )
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Rejected"
    st = status(world, "list")
    assert st["reason"] == "symlink" and "symbolic link" in st["message"]
    assert "SourceRejected" in reasons(world.kube) and world.kube.pods == {}


def _run_to_result(world, record, name="list"):
    world.kube.add_job(name, "ls")
    reconcile.reconcile_job(world.ctx, NS, name)
    world.kube.finish_pod(status(world, name)["podName"], record)
    return reconcile.reconcile_job(world.ctx, NS, name)


def test_too_many_changed_files_is_a_policy_violation(world):
    changed = {"created": 3, "modified": 0, "deleted": 0, "total": 3, "complete": True, "paths": ["+a", "+b", "+c"]}
    assert _run_to_result(world, runner_record(changedFiles=changed)) == "Failed"
    assert status(world, "list")["reason"] == "TooManyFileWrites"
    assert "PolicyViolation" in reasons(world.kube)
    assert status(world, "list")["stdout"] == "a.txt\nb.txt\n"  # the result is kept for review


def test_uninspectable_workspace_fails_closed(world):
    changed = {"created": 0, "modified": 0, "deleted": 0, "total": 0, "complete": False, "paths": []}
    assert _run_to_result(world, runner_record(changedFiles=changed)) == "Failed"
    assert status(world, "list")["reason"] == "WorkspaceUninspectable"


def test_truncation_flags_are_copied(world):
    record = runner_record(stdout="x" * 10, stdoutBytes=10_000_000, stdoutTruncated=True)
    assert _run_to_result(world, record) == "Succeeded"
    st = status(world, "list")
    assert st["stdoutTruncated"] is True and st["stdoutBytes"] == 10_000_000


def test_nonzero_exit_fails(world):
    assert _run_to_result(world, runner_record(exitCode=2)) == "Failed"
    assert (status(world, "list")["reason"], status(world, "list")["exitCode"]) == ("NonZeroExit", 2)


def test_command_timeout_fails(world):
    assert _run_to_result(world, runner_record(timedOut=True, exitCode=137, signal="SIGKILL")) == "Failed"
    assert status(world, "list")["reason"] == "Timeout"
    assert "TimedOut" in reasons(world.kube)


def test_missing_record_fails(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    world.kube.finish_pod(status(world, "list")["podName"], record=None, phase="Failed")
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Failed"
    assert status(world, "list")["reason"] == "ResultUnreadable"


def test_forged_looking_lines_before_the_record_are_ignored(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    pod = status(world, "list")["podName"]
    world.kube.finish_pod(pod, runner_record(stdout="real"))
    fake = json.dumps(runner_record(stdout="fake"), separators=(",", ":"))
    world.kube.logs[(pod, "runner")] = fake + "\n" + world.kube.logs[(pod, "runner")]
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Succeeded"
    assert status(world, "list")["stdout"] == "real"


def test_pod_past_its_deadline_times_out(world):
    world.kube.add_job("slow", "ls", timeoutSeconds=10)
    reconcile.reconcile_job(world.ctx, NS, "slow")
    world.clock.advance(10 + world.ctx.config.sandbox.launchGraceSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "slow") == "Failed"
    assert status(world, "slow")["reason"] == "Timeout" and world.kube.pods == {}


def test_deadline_exceeded_pod_without_record_times_out(world):
    world.kube.add_job("slow", "ls", timeoutSeconds=10)
    reconcile.reconcile_job(world.ctx, NS, "slow")
    world.kube.finish_pod(status(world, "slow")["podName"], None, phase="Failed", reason="DeadlineExceeded")
    assert reconcile.reconcile_job(world.ctx, NS, "slow") == "Failed"
    assert status(world, "slow")["reason"] == "Timeout"


def test_invalid_spec_is_a_permanent_failure(world):
    world.kube.add_job("weird", "ls", timeoutSeconds=999999)
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "weird")
    assert status(world, "weird")["reason"] == "InvalidSpec"


def test_api_trouble_is_retried_then_given_up(world):
    world.kube.add_job("list", "ls")
    world.kube.fail("apply_network_policy", Unavailable("apiserver down"), times=100)
    with pytest.raises(reconcile.TransientFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    assert status(world, "list")["phase"] == "Pending"
    world.clock.advance(3600)
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    assert (status(world, "list")["phase"], status(world, "list")["reason"]) == ("Failed", "GaveUp")
    assert world.kube.pods_created == 0


def test_refused_pod_fails_permanently(world):
    world.kube.add_job("list", "ls")
    world.kube.fail("create_pod", Invalid("violates PodSecurity restricted"))
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    assert status(world, "list")["reason"] == "ApiRefused"


def test_unreadable_policy_never_decides(world):
    world.kube.add_job("list", "ls")

    def broken():
        raise ValueError("policy.yaml: bad")

    world.ctx.policy = broken
    with pytest.raises(reconcile.TransientFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    assert "decision" not in world.kube.jobs["list"].get("status", {})


def test_final_job_cleans_up_a_leftover_pod(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    pod = status(world, "list")["podName"]
    world.kube.finish_pod(pod, runner_record())
    world.kube.fail("delete_pod", Unavailable("timeout"))
    with pytest.raises(reconcile.TransientFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    assert status(world, "list")["phase"] == "Succeeded" and pod in world.kube.pods
    reconcile.reconcile_job(world.ctx, NS, "list")
    assert world.kube.pods == {}


def test_deleted_or_replaced_job_is_left_alone(world):
    assert reconcile.reconcile_job(world.ctx, NS, "gone") is None
    world.kube.add_job("list", "ls")
    assert reconcile.reconcile_job(world.ctx, NS, "list", uid="old-uid") is None
    assert world.kube.pods_created == 0


def test_every_audit_line_has_the_one_schema(world):
    _run_to_result(world, runner_record())
    _await(world)
    assert len(world.audit.lines) == 4
    for line in world.audit.lines:
        assert tuple(sorted(line)) == tuple(sorted(audit.FIELDS))
    finished = next(line for line in world.audit.lines if line["event"] == "CommandFinished")
    assert finished["exitCode"] == 0 and finished["stdoutBytes"] == 12 and finished["pod"]
    assert finished["argv"] == ["ls"] and finished["profile"] == "none" and finished["uid"]


def _go_json_size(text: str) -> int:
    """Upper bound of what the API server stores for a string (encoding/json escapes <, >, & and
    control characters as \\u00XX; invalid UTF-8 arrives as U+FFFD)."""
    return len(json.dumps(text, ensure_ascii=True)) + 5 * sum(text.count(c) for c in "<>&")


@pytest.mark.parametrize("char", ["<", "\ufffd", "\x01", "\U0001F600"])
def test_status_output_fits_etcd_whatever_the_characters(world, char):
    """256 KiB per stream (the policy's default) of characters that escape to 6 bytes would make
    the status ~3 MiB: etcd refuses it and the result is lost. The operator trims and flags."""
    # As the runner keeps them: 256 KiB of bytes (an invalid byte decodes to one U+FFFD).
    big = char * (256 * 1024 // (1 if char == "\ufffd" else len(char.encode())))
    record = runner_record(stdout=big, stderr=big, stdoutBytes=len(big), stderrBytes=len(big))
    world.policy.max_output_kb = 256
    assert _run_to_result(world, record) == "Succeeded"
    st = status(world, "list")
    assert _go_json_size(st["stdout"]) + _go_json_size(st["stderr"]) <= 1024 * 1024 + 16
    assert st["stdoutTruncated"] is True and st["stderrTruncated"] is True
    assert st["stdout"] and set(st["stdout"]) == {char}


def test_small_output_is_kept_whole(world):
    text = "<tag> & \"q\" \n" * 100
    assert _run_to_result(world, runner_record(stdout=text)) == "Succeeded"
    assert status(world, "list")["stdout"] == text and status(world, "list")["stdoutTruncated"] is False


def _impostor(world, name="list"):
    """A Pod someone else created under the job's Pod name, with the job's labels and owner
    reference copied (anyone who can create Pods can write those), running another argv."""
    job = reconcile.SandboxJob.model_validate(world.kube.jobs[name])
    pod = builders.build_sandbox_pod(job, ["rm", "-rf", "."], 64, world.ctx.config)
    pod["metadata"]["uid"] = "impostor-uid"
    pod["status"] = {"phase": "Pending"}
    return pod


def test_pod_with_forged_labels_and_another_argv_is_not_adopted(world):
    world.kube.add_job("list", "ls")
    pod = _impostor(world)
    world.kube.pods[pod["metadata"]["name"]] = pod
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    st = status(world, "list")
    assert (st["phase"], st["reason"]) == ("Failed", "PodNameConflict") and "args" in st["message"]
    reconcile.reconcile_job(world.ctx, NS, "list")
    assert pod["metadata"]["name"] in world.kube.pods  # not ours: never adopted, never deleted


def test_adopted_pod_uid_is_recorded(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    st = status(world, "list")
    assert st["podUid"] == world.kube.pods[st["podName"]]["metadata"]["uid"]


def test_pod_replaced_while_running_is_not_trusted(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    name = status(world, "list")["podName"]
    world.kube.pods[name] = _impostor(world)  # ours deleted, another one created under the name
    world.kube.finish_pod(name, runner_record(stdout="forged"))
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Failed"
    st = status(world, "list")
    assert st["reason"] == "PodReplaced" and "stdout" not in st
    reconcile.reconcile_job(world.ctx, NS, "list")
    assert name in world.kube.pods  # the impostor is not deleted by name


def test_pod_swapped_while_its_log_is_read_is_not_trusted(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    name = status(world, "list")["podName"]
    world.kube.finish_pod(name, runner_record(stdout="real"))
    original = world.kube.read_pod_log

    def read_then_swap(namespace, pod, container, limit):
        text = original(namespace, pod, container, limit)
        world.kube.pods[pod]["metadata"]["uid"] = "swapped"
        return text

    world.kube.read_pod_log = read_then_swap
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Failed"
    assert status(world, "list")["reason"] == "PodReplaced"


def test_pre_existing_approval_that_is_already_decided_never_runs(world):
    """Someone able to create Approvals (not the submitter role, but e.g. a namespace admin or an
    agent with too much RBAC) pre-creates the job's Approval, exact in every bound field, with
    decision Approved: no human decided on a request the operator made, so it must not run."""
    job = world.kube.add_job("rm", "rm delete-me.txt")
    forged = builders.build_approval(reconcile.SandboxJob.model_validate(job), ["rm", "delete-me.txt"], REPO_DIGEST)
    forged["spec"]["decision"] = "Approved"
    forged["metadata"]["uid"] = "forged-uid"
    world.kube.approvals[forged["metadata"]["name"]] = forged
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "rm")
    reconcile.reconcile_job(world.ctx, NS, "rm")
    st = status(world, "rm")
    assert (st["phase"], st["reason"]) == ("Failed", "ApprovalMismatch") and world.kube.pods_created == 0


def test_approval_replaced_after_the_request_never_runs(world):
    job, approval_name = _await(world)
    replacement = builders.build_approval(reconcile.SandboxJob.model_validate(job), ["rm", "delete-me.txt"], REPO_DIGEST)
    replacement["spec"]["decision"] = "Approved"
    replacement["metadata"]["uid"] = "replacement-uid"
    world.kube.approvals[approval_name] = replacement  # deleted and created again, already decided
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "rm")
    assert status(world, "rm")["reason"] == "ApprovalMismatch" and world.kube.pods_created == 0


def test_approval_from_before_a_restart_is_adopted_while_pending(world):
    job = world.kube.add_job("rm", "rm delete-me.txt")
    ours = world.kube.create_approval(
        builders.build_approval(reconcile.SandboxJob.model_validate(job), ["rm", "delete-me.txt"], REPO_DIGEST)
    )  # created, then the operator crashed before writing status
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "AwaitingApproval"
    assert status(world, "rm")["approvalUid"] == ours["metadata"]["uid"]
    world.kube.decide_approval(ours["metadata"]["name"], "Approved")
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Running"


# ----------------------------------------------------------------- issue 8: the reviewed source


def test_the_approval_pins_the_source_content_and_prepare_checks_it(world):
    _, approval_name = _await(world)
    approval = world.kube.approvals[approval_name]
    assert approval["spec"]["sourceDigest"] == REPO_DIGEST == status(world, "rm")["sourceDigest"]
    world.kube.decide_approval(approval_name, "Approved")
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Running"
    pod = world.kube.pods[status(world, "rm")["podName"]]
    assert json.loads(pod["spec"]["initContainers"][0]["args"][0])["expectedDigest"] == REPO_DIGEST


def test_a_source_changed_between_review_and_run_ends_approval_mismatch(world):
    _, approval_name = _await(world)
    world.kube.decide_approval(approval_name, "Approved")
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Running"
    pod = status(world, "rm")["podName"]
    record = {"kind": "safeagent.ca/prepare-result", **PREPARE_NULLS, "ok": False, "reason": "source_changed",
              "message": "the source is not the one that was approved"}
    world.kube.finish_pod(pod, phase="Failed", prepare_exit=1, prepare_record=record)
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Failed"
    st = status(world, "rm")
    assert st["reason"] == "ApprovalMismatch" and "exitCode" not in st
    assert reasons(world.kube)[-1] == "ApprovalMismatch"


def test_an_approval_with_another_source_digest_never_runs(world):
    _, approval_name = _await(world)
    world.kube.approvals[approval_name]["spec"].update(sourceDigest="sha256:" + "0" * 64, decision="Approved")
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "rm")
    st = status(world, "rm")
    assert (st["reason"], world.kube.pods_created) == ("ApprovalMismatch", 0)
    assert "source content" in st["message"]


def test_a_missing_configmap_source_is_waited_for_then_fails(world):
    world.kube.configmaps.clear()
    world.kube.add_job("rm", "rm delete-me.txt")
    with pytest.raises(reconcile.TransientFailure):
        reconcile.reconcile_job(world.ctx, NS, "rm")
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Failed"
    assert status(world, "rm")["reason"] == "SourceNotFound" and world.kube.approvals == {}


def test_a_configmap_with_a_bad_key_is_rejected_before_any_review(world):
    world.kube.configmaps["repo"] = {"data": {"a----b": "x"}}
    world.kube.add_job("rm", "rm delete-me.txt")
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Rejected"
    assert status(world, "rm")["reason"] == "bad_key" and world.kube.approvals == {}


def test_binary_data_counts_in_the_digest(world):
    world.kube.configmaps["repo"] = {"data": {"a.txt": "x"}, "binaryData": {"b.bin": "AAEC"}}
    _await(world)
    assert status(world, "rm")["sourceDigest"] == configmap_digest({"a.txt": b"x", "b.bin": b"\0\1\2"})


PVC = {"persistentVolumeClaim": {"claimName": "repos"}}
VOLUME_DIGEST = "sha256:" + "5" * 64


def test_a_volume_source_is_pinned_by_a_review_pod_before_the_approval(world):
    world.kube.add_job("rm", "rm delete-me.txt", source=PVC, networkProfile="git-read")
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Pending"
    review = status(world, "rm")["reviewPodName"]
    pod = world.kube.pods[review]
    assert "initContainers" not in pod["spec"] and [c["name"] for c in pod["spec"]["containers"]] == ["prepare"]
    assert pod["metadata"]["labels"]["safeagent.ca/network-profile"] == "none"
    assert "safeagent-profile-none" in world.kube.network_policies and world.kube.approvals == {}
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Pending"  # still copying
    record = {"kind": "safeagent.ca/prepare-result", **PREPARE_NULLS, "ok": True, "reason": "copied", "message": "",
              "digest": VOLUME_DIGEST}
    world.kube.pods[review]["status"] = {"phase": "Succeeded"}
    world.kube.logs[(review, "prepare")] = json.dumps(record, separators=(",", ":")) + "\n"
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "AwaitingApproval"
    approval = world.kube.approvals[status(world, "rm")["approvalName"]]
    assert approval["spec"]["sourceDigest"] == VOLUME_DIGEST and review not in world.kube.pods
    world.kube.decide_approval(approval["metadata"]["name"], "Approved")
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Running"
    run = world.kube.pods[status(world, "rm")["podName"]]
    assert json.loads(run["spec"]["initContainers"][0]["args"][0])["expectedDigest"] == VOLUME_DIGEST
    assert world.kube.pods_created == 2


def test_a_volume_source_rejected_by_the_review_pod_is_rejected(world):
    world.kube.add_job("rm", "rm delete-me.txt", source=PVC)
    reconcile.reconcile_job(world.ctx, NS, "rm")
    review = status(world, "rm")["reviewPodName"]
    world.kube.pods[review]["status"] = {"phase": "Failed"}
    world.kube.logs[(review, "prepare")] = json.dumps(
        {"kind": "safeagent.ca/prepare-result", **PREPARE_NULLS, "ok": False, "reason": "symlink", "message": "a link"},
        separators=(",", ":"),
    ) + "\n"
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Rejected"
    assert status(world, "rm")["reason"] == "symlink" and world.kube.approvals == {} and world.kube.pods == {}


def test_a_review_pod_that_never_finishes_times_out(world):
    world.kube.add_job("rm", "rm delete-me.txt", source=PVC)
    reconcile.reconcile_job(world.ctx, NS, "rm")
    world.clock.advance(2 * world.ctx.config.sandbox.launchGraceSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Failed"
    assert status(world, "rm")["reason"] == "Timeout" and world.kube.pods == {}


def test_a_command_that_fills_a_scratch_volume_is_reported(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    world.kube.finish_pod(status(world, "list")["podName"], runner_record(exitCode=1, fullVolumes=["tmp"]))
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Failed"
    st = status(world, "list")
    assert st["reason"] == "DiskLimitReached" and "tmp" in st["message"] and st["exitCode"] == 1


# --------------------------------------------------- issue 11 item 8: Pod trouble shows in the job


def _waiting_reasons(world):
    return [reason for reason in reasons(world.kube) if reason == "SandboxPodWaiting"]


def test_a_missing_configmap_shows_at_once_and_ends_the_job_after_the_grace(world):
    world.kube.configmaps.clear()
    world.kube.add_job("list", "ls")
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    st = status(world, "list")
    assert st["reason"] == "SourceNotFound" and "the source ConfigMap repo does not exist" in st["message"]
    pod = st["podName"]
    assert st["message"].startswith(f"Pod {pod} is waiting")
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    assert len(_waiting_reasons(world)) == 1  # one record per change, not per pass
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Failed"
    st = status(world, "list")
    assert (st["reason"], st["message"]) == ("SourceNotFound", "the source ConfigMap repo does not exist")
    assert world.kube.pods == {} and reasons(world.kube)[-1] == "JobFailed"


def test_a_source_that_appears_within_the_grace_clears_the_trouble(world):
    saved = world.kube.configmaps.pop("repo")
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    assert status(world, "list")["reason"] == "SourceNotFound"
    world.kube.configmaps["repo"] = saved
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    st = status(world, "list")
    assert (st["reason"], st["message"]) == ("launched", f"sandbox Pod {st['podName']} launched")
    world.kube.finish_pod(st["podName"], runner_record())
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Succeeded"


def test_a_missing_volume_source_ends_the_job(world):
    world.kube.claims.clear()
    world.kube.add_job("list", "ls", source=PVC)
    reconcile.reconcile_job(world.ctx, NS, "list")
    st = status(world, "list")
    assert (st["phase"], st["reason"]) == ("Running", "SourceNotFound")
    assert "PersistentVolumeClaim repos" in st["message"]
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Failed"
    assert status(world, "list")["reason"] == "SourceNotFound"


def test_a_missing_volume_source_ends_a_job_that_needs_an_approval(world):
    world.kube.claims.clear()
    world.kube.add_job("rm", "rm delete-me.txt", source=PVC)
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Pending"
    assert status(world, "rm")["reason"] == "reviewing_source"  # the review Pod was just created
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Pending"
    assert status(world, "rm")["reason"] == "SourceNotFound"
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "rm") == "Failed"
    assert status(world, "rm")["reason"] == "SourceNotFound"
    assert world.kube.pods == {} and world.kube.approvals == {}


def test_an_image_that_is_not_present_shows_and_the_timeout_says_so(world):
    world.kube.add_job("slow", "ls", timeoutSeconds=10)
    reconcile.reconcile_job(world.ctx, NS, "slow")
    pod = status(world, "slow")["podName"]
    world.kube.pods[pod]["status"] = {
        "phase": "Pending",
        "initContainerStatuses": [{"name": "prepare", "state": {"waiting": {
            "reason": "ErrImageNeverPull",
            "message": 'Container image "safeagent/sandbox:dev" is not present with pull policy of Never'}}}],
    }
    assert reconcile.reconcile_job(world.ctx, NS, "slow") == "Running"
    st = status(world, "slow")
    assert st["reason"] == "ImageNotPresent" and "is not present" in st["message"]
    world.clock.advance(10 + world.ctx.config.sandbox.launchGraceSeconds + 1)
    assert reconcile.reconcile_job(world.ctx, NS, "slow") == "Failed"
    st = status(world, "slow")
    assert st["reason"] == "Timeout" and "is not present" in st["message"]  # the image is not the source: no early end


def test_volume_trouble_is_read_from_the_pods_events(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    pod = world.kube.pods[status(world, "list")["podName"]]
    world.kube.pod_events[pod["metadata"]["uid"]] = [{
        "type": "Warning", "reason": "FailedMount", "lastTimestamp": "2025-01-01T12:00:05Z",
        "message": 'MountVolume.SetUp failed for volume "source" : rpc error: code = DeadlineExceeded',
    }]
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    assert status(world, "list")["reason"] == "VolumeMountFailed"


def test_unreadable_events_or_source_never_fail_the_job(world):
    world.kube.add_job("list", "ls")
    world.kube.fail("list_pod_events", Invalid("events is forbidden"), times=5)
    world.kube.fail("get_configmap", Invalid("configmaps is forbidden"), times=5)
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    assert status(world, "list")["reason"] == "launched"


def test_a_started_pod_is_not_asked_about_its_source(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    pod = status(world, "list")["podName"]
    world.kube.pods[pod]["status"] = {"phase": "Running"}
    world.kube.configmaps.clear()  # deleted after the copy: it no longer matters
    world.kube.fail("list_pod_events", AssertionError("not asked"), times=1)
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    assert status(world, "list")["reason"] == "launched"
# ---------------------------------------------------------------- issue 10: egress pre-flight

EGRESS_CHECK = {"deadlineSeconds": 20, "canary": {
    "namespace": "safeagent-system", "service": "safeagent-canary", "podLabels": {"component": "canary"}}}


def test_the_runner_gets_the_canary_address_to_prove_enforcement(world):
    world.ctx.config = parse_config({"egressCheck": EGRESS_CHECK})
    world.kube.add_job("list", "ls")
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Running"
    runner = world.kube.pods[status(world, "list")["podName"]]["spec"]["containers"][0]
    assert json.loads(runner["args"][0])["egressCheck"]["host"] == "10.96.7.7"


def test_no_canary_no_launch_then_give_up(world):
    world.ctx.config = parse_config({"egressCheck": EGRESS_CHECK})
    world.kube.services.clear()
    world.kube.add_job("list", "ls")
    with pytest.raises(reconcile.TransientFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    assert world.kube.pods_created == 0
    world.clock.advance(3600)
    with pytest.raises(reconcile.PermanentFailure):
        reconcile.reconcile_job(world.ctx, NS, "list")
    assert status(world, "list")["reason"] == "GaveUp" and world.kube.pods_created == 0


def test_a_pod_whose_egress_was_never_proven_filtered_ran_nothing(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    egress = {"enforced": False, "rounds": 300, "elapsedMs": 20000,
              "detail": "egress not enforced within 20 seconds: the canary's closed port is reachable", "proof": None}
    record = runner_record(exitCode=None, egress=egress)
    world.kube.finish_pod(status(world, "list")["podName"], record)
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Failed"
    st = status(world, "list")
    assert st["reason"] == "EgressNotEnforced" and "never ran" in st["message"]
    assert not {"exitCode", "stdout", "changedFiles"} & set(st)
    assert st["egressCheckMs"] == 20000 and "egressProof" not in st  # how long it waited, in vain
    assert reasons(world.kube)[-1] == "EgressNotEnforced"


UNCHANGED = {"created": 0, "modified": 0, "deleted": 0, "total": 0, "complete": True, "paths": []}


def test_a_pod_counts_as_pending_from_its_launch_and_lengthens_the_next_wait(world):
    """A burst's own Pods count at once (not when the watch reports them), and stop counting when
    the job ends, whether or not the watch saw the Pod go."""
    world.ctx.config = parse_config({"egressCheck": {**EGRESS_CHECK, "perPendingPodSeconds": 5}})
    waits = []
    for name in ("one", "two", "three"):
        world.kube.add_job(name, "ls")
        assert reconcile.reconcile_job(world.ctx, NS, name) == "Running"
        runner = world.kube.pods[status(world, name)["podName"]]["spec"]["containers"][0]
        waits.append(json.loads(runner["args"][0])["egressCheck"]["deadlineSeconds"])
    assert waits == [20, 25, 30] and world.ctx.pending.count() == 3
    world.kube.finish_pod(status(world, "one")["podName"], runner_record(changedFiles=UNCHANGED))
    assert reconcile.reconcile_job(world.ctx, NS, "one") == "Succeeded"
    assert world.ctx.pending.count() == 2


def test_the_egress_wait_and_proof_reach_the_status(world):
    world.kube.add_job("list", "ls")
    reconcile.reconcile_job(world.ctx, NS, "list")
    egress = {"enforced": True, "rounds": 1, "elapsedMs": 7, "detail": "enforced", "proof": "refusal"}
    world.kube.finish_pod(status(world, "list")["podName"], runner_record(egress=egress, changedFiles=UNCHANGED))
    assert reconcile.reconcile_job(world.ctx, NS, "list") == "Succeeded"
    st = status(world, "list")
    assert (st["egressCheckMs"], st["egressProof"]) == (7, "refusal")
