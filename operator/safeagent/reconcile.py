"""Observe -> decide -> converge, for SandboxJobs and Approvals. No Kopf in here.

`reconcile_job` is the one ensure-function behind every SandboxJob handler (create, resume, the
periodic timer, and nudges from Pod and Approval events). It always starts from a fresh GET of
the job, so it is level-based: whatever happened before (a crash, a lost event, a duplicate
call), it looks at the stored status and the children, and takes the next step:

  no decision        -> policy decision; deny -> Denied (no Pod ever)
  require_approval   -> create the Approval (deterministic name, owned by the job) -> AwaitingApproval
  awaiting approval  -> Approved and bound to this UID + spec hash + argv -> launch;
                        Denied -> Denied; too old -> Expired / Failed
  allowed/approved   -> NetworkPolicy of the profile, then the Pod under a name derived from the
                        UID (AlreadyExists = our Pod from before a restart: adopt it) -> Running
  running            -> Pod finished: read the runner's record, check max_file_writes, copy into
                        status, delete the Pod; preparation refused the source -> Rejected
  final phase        -> make sure no Pod is left

Every write is a status merge patch followed by one audit record. Callers must serialise calls
for one job (handlers.py holds a lock per job); two operators must not run at once.

Errors: `PermanentFailure` (bad input; status already says why; never retry) and
`TransientFailure` (API trouble; retry later). Transient trouble past the job's deadline turns
into a final Failed, so nothing retries forever.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from safeagent import audit, builders
from safeagent.audit import Auditor
from safeagent.config import OperatorConfig
from safeagent.kube import AlreadyExists, Conflict, Invalid, Kube, KubeError, NotFound, Unavailable
from safeagent.models import (
    TERMINAL_JOB_PHASES,
    Approval,
    ApprovalDecision,
    ApprovalPhase,
    JobPhase,
    NetworkProfile,
    PrepareResult,
    RunnerResult,
    SandboxJob,
    spec_hash,
)
from safeagent.prepare import Rejected as SourceRejected
from safeagent.prepare import configmap_digest

log = logging.getLogger(__name__)

# The runner keeps at most this many KiB of each stream, whatever the policy says.
MAX_OUTPUT_KB_CAP = 256
# Status must fit in etcd (1.5 MiB per object). The API server stores JSON with '<', '>', '&' and
# control characters escaped to 6 bytes, so 256 KiB of output can take 1.5 MiB: each stream is
# trimmed to this many bytes *as stored* (and flagged truncated) before it goes into status.
STATUS_STREAM_BUDGET = 512 * 1024


def _stored_ascii_sizes() -> list[int]:
    sizes = [6 if code < 0x20 else 1 for code in range(128)]
    for char in '<>&':
        sizes[ord(char)] = 6
    for char in '"\\\n\r\t':
        sizes[ord(char)] = 2
    return sizes


_ASCII_STORED = _stored_ascii_sizes()
# The preparation step's reason when the source is not the one that was approved.
SOURCE_CHANGED = "source_changed"
EGRESS_NOT_ENFORCED = "EgressNotEnforced"
RETRY_DELAY_SECONDS = 10.0


class PermanentFailure(Exception):
    """Input that will never work; the job's status already records the reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class TransientFailure(Exception):
    """Try again later (API unavailable, policy file unreadable ...)."""

    def __init__(self, message: str, delay: float = RETRY_DELAY_SECONDS) -> None:
        super().__init__(message)
        self.delay = delay


def default_decided_by(approval: Approval) -> str:
    """Who decided an Approval. Today: the free-text spec.reviewer, else "unknown".

    This is not authenticated. The slot is a function so that an admission webhook (which sees
    the request's userInfo and could stamp an annotation) can replace it without touching the
    reconcile logic.
    """
    return approval.spec.reviewer.strip() or "unknown"


@dataclasses.dataclass
class Context:
    kube: Kube
    config: OperatorConfig
    policy: Callable[[], Any]  # returns the current Policy; raises on an unusable policy file
    decide: Callable[[Any, str], Any]  # safeagent.policy.decide
    auditor: Auditor
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc)
    decided_by: Callable[[Approval], str] = default_decided_by


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------ job bookkeeping


class _Job:
    """A fresh job body plus helpers to write status and audit consistently."""

    def __init__(self, ctx: Context, body: dict[str, Any], model: SandboxJob) -> None:
        self.ctx = ctx
        self.body = body
        self.model = model
        self.status: dict[str, Any] = dict(body.get("status") or {})

    @property
    def namespace(self) -> str:
        return self.model.namespace

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    def write(self, changes: dict[str, Any], event: str | None = None, **audit_fields: Any) -> None:
        """Patch status with `changes` (a merge patch), then write the audit record for it."""
        now = timestamp(self.ctx.now())
        changes = {**changes, "observedGeneration": self.body["metadata"].get("generation")}
        conditions = changes.pop("_conditions", [])
        if conditions:
            current = self.status.get("conditions", [])
            for condition in conditions:
                current = _set_condition(current, condition, now)
            changes["conditions"] = current
        self.ctx.kube.patch_job_status(self.namespace, self.name, changes)
        self.status.update(changes)
        if event is not None:
            self.audit(event, **audit_fields)

    def audit(self, event: str, **fields: Any) -> None:
        status = self.status
        changed = status.get("changedFiles") or {}
        defaults = {
            "phase": status.get("phase"),
            "job": self.name,
            "argv": status.get("argv"),
            "decision": status.get("decision"),
            "reason": status.get("reason"),
            "message": status.get("message"),
            "profile": self.model.spec.networkProfile.value,
            "approval": status.get("approvalName"),
            "decidedBy": status.get("decidedBy"),
            "pod": status.get("podName"),
            "exitCode": status.get("exitCode"),
            "stdoutBytes": status.get("stdoutBytes"),
            "stderrBytes": status.get("stderrBytes"),
            "stdoutTruncated": status.get("stdoutTruncated"),
            "stderrTruncated": status.get("stderrTruncated"),
            "changedFiles": changed.get("total") if changed else None,
        }
        self.ctx.auditor.record(self.body, event, **{**defaults, **fields})

    def finish(
        self, phase: JobPhase, reason: str, message: str, event: str, extra: dict[str, Any] | None = None
    ) -> None:
        """Write a final phase (with completionTime and a Completed condition)."""
        extra = dict(extra or {})
        completed = ("Completed", "True" if phase is JobPhase.SUCCEEDED else "False", reason, message)
        self.write(
            {
                **extra,
                "phase": phase.value,
                "reason": reason,
                "message": message,
                "completionTime": timestamp(self.ctx.now()),
                "_conditions": [*extra.get("_conditions", []), completed],
            },
            event,
        )


def _set_condition(
    conditions: list[dict[str, Any]], condition: tuple[str, str, str, str], now: str
) -> list[dict[str, Any]]:
    kind, status, reason, message = condition
    previous = next((c for c in conditions if c.get("type") == kind), None)
    changed = previous is None or previous.get("status") != status
    entry = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now if changed else previous["lastTransitionTime"],
    }
    return [c for c in conditions if c.get("type") != kind] + [entry]


# ---------------------------------------------------------------------------------- job: ensure


def reconcile_job(ctx: Context, namespace: str, name: str, uid: str | None = None) -> str | None:
    """Take the job one or more steps towards its final phase; returns the phase it is left in."""
    try:
        body = ctx.kube.get_job(namespace, name)
    except NotFound:
        return None  # deleted; owner references clean up the children
    except KubeError as error:
        raise TransientFailure(str(error)) from error
    if uid is not None and body["metadata"].get("uid") != uid:
        return None  # a different object under the same name now
    try:
        model = SandboxJob.model_validate(body)
    except ValidationError as error:
        return _invalid_spec(ctx, body, error)
    job = _Job(ctx, body, model)
    try:
        _ensure(job)
    except (Unavailable, Conflict) as error:
        _give_up_if_overdue(job, str(error))
        raise TransientFailure(str(error)) from error
    except Invalid as error:
        _fail_on_refusal(job, error)
    return job.phase


def _invalid_spec(ctx: Context, body: dict[str, Any], error: ValidationError) -> str:
    message = "; ".join(
        f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
    )[:1024]
    status = body.get("status") or {}
    if status.get("phase") not in {p.value for p in TERMINAL_JOB_PHASES}:
        metadata = body["metadata"]
        changes = {
            "phase": JobPhase.FAILED.value,
            "reason": audit.INVALID_SPEC,
            "message": message,
            "completionTime": timestamp(ctx.now()),
        }
        try:
            ctx.kube.patch_job_status(metadata["namespace"], metadata["name"], changes)
        except KubeError as patch_error:
            raise TransientFailure(str(patch_error)) from patch_error
        ctx.auditor.record(body, audit.INVALID_SPEC, phase=JobPhase.FAILED.value, message=message)
    raise PermanentFailure(audit.INVALID_SPEC, message)


def _fail_on_refusal(job: _Job, error: KubeError) -> None:
    """The API refused a request we built (admission, RBAC): retrying it will not help."""
    message = str(error)[:1024]
    try:
        job.finish(JobPhase.FAILED, "ApiRefused", message, audit.JOB_FAILED)
    except Invalid:
        # The refused request may have been this status itself: store the bare minimum.
        minimal = {"phase": JobPhase.FAILED.value, "reason": "ApiRefused", "message": message}
        try:
            job.ctx.kube.patch_job_status(job.namespace, job.name, minimal)
        except KubeError as patch_error:
            raise TransientFailure(str(patch_error)) from patch_error
    except KubeError as patch_error:
        raise TransientFailure(str(patch_error)) from patch_error
    raise PermanentFailure("ApiRefused", message)


def _deadline(job: _Job) -> datetime.datetime | None:
    """When transient trouble stops being retried; None while waiting for a human."""
    if job.phase == JobPhase.AWAITING_APPROVAL.value and not job.status.get("approvedAt"):
        return None
    started = (
        parse_time(job.status.get("startTime"))
        or parse_time(job.status.get("approvedAt"))
        or parse_time(job.status.get("decidedAt"))
        or parse_time(job.body["metadata"].get("creationTimestamp"))
    )
    if started is None:
        return None
    grace = job.ctx.config.sandbox.launchGraceSeconds
    return started + datetime.timedelta(seconds=job.model.spec.timeoutSeconds + 2 * grace)


def _give_up_if_overdue(job: _Job, problem: str) -> None:
    deadline = _deadline(job)
    if deadline is None or job.ctx.now() < deadline:
        return
    message = f"gave up after repeated API errors: {problem}"[:1024]
    try:
        job.finish(JobPhase.FAILED, "GaveUp", message, audit.JOB_FAILED)
    except KubeError:
        return  # still unreachable: the caller retries, and we try this again
    _delete_pod_quietly(job)
    raise PermanentFailure("GaveUp", message)


def _ensure(job: _Job) -> None:
    if job.phase in {p.value for p in TERMINAL_JOB_PHASES}:
        _delete_pod_quietly(job)
        return
    if not job.status.get("decision"):
        _decide(job)
    if job.phase in {p.value for p in TERMINAL_JOB_PHASES}:
        return
    if job.status["decision"] == "require_approval":
        if not job.status.get("approvalName"):
            _request_approval(job)
            return
        if not job.status.get("approvedAt"):
            _check_approval(job)
            if not job.status.get("approvedAt"):
                return
    if job.phase != JobPhase.RUNNING.value:
        _launch(job)
    _observe(job)


# ------------------------------------------------------------------------------- job: decision


def _decide(job: _Job) -> None:
    ctx = job.ctx
    try:
        policy = ctx.policy()
    except Exception as error:  # an unreadable policy must never mean "allow"
        _give_up_if_overdue(job, f"policy unavailable: {error}")
        raise TransientFailure(f"policy unavailable: {error}") from error
    decision = ctx.decide(policy, job.model.spec.command)
    limits = {
        "maxOutputKb": min(int(policy.max_output_kb), MAX_OUTPUT_KB_CAP),
        "maxFileWrites": int(policy.max_file_writes),
    }
    recorded = {
        "decision": decision.decision,
        "reason": decision.reason,
        "message": decision.message,
        "argv": list(decision.argv) if decision.argv is not None else None,
        "specHash": spec_hash(job.model.spec),
        "limits": limits,
        "decidedAt": timestamp(ctx.now()),
        "_conditions": [("Decided", "True", decision.reason, decision.message)],
    }
    if decision.decision == "deny":
        job.finish(JobPhase.DENIED, decision.reason, decision.message, audit.POLICY_DENIED, recorded)
    elif decision.decision == "allow":
        job.write({**recorded, "phase": JobPhase.PENDING.value}, audit.POLICY_ALLOWED)
    elif decision.decision == "require_approval":
        # Recorded without an event: the state change people see is ApprovalRequested, next.
        job.write({**recorded, "phase": JobPhase.PENDING.value})
    else:
        job.finish(
            JobPhase.FAILED, "internal_error", f"unknown decision {decision.decision!r}",
            audit.JOB_FAILED, recorded,
        )


# ------------------------------------------------------------------------------- job: approval


# How long a job that needs an Approval waits for its ConfigMap source to appear (it may be
# applied in the same `kubectl apply` as the job, after it) before it fails SourceNotFound.
SOURCE_WAIT_SECONDS = 60


def _pin_source(job: _Job) -> str | None:
    """The content digest of the job's source, for the Approval; None when the job is finished."""
    source = job.model.spec.source
    if source.configMap is None:
        return _review_volume_source(job)
    name = source.configMap.name
    try:
        configmap = job.ctx.kube.get_configmap(job.namespace, name)
    except NotFound:
        decided = parse_time(job.status.get("decidedAt")) or job.ctx.now()
        if job.ctx.now() < decided + datetime.timedelta(seconds=SOURCE_WAIT_SECONDS):
            raise TransientFailure(f"ConfigMap {name} not found (yet)") from None
        message = f"the source ConfigMap {name} does not exist"
        job.finish(JobPhase.FAILED, "SourceNotFound", message, audit.JOB_FAILED)
        return None
    files = {key: str(text).encode() for key, text in (configmap.get("data") or {}).items()}
    for key, encoded in (configmap.get("binaryData") or {}).items():
        files[key] = base64.b64decode(encoded)
    try:
        return configmap_digest(files)
    except SourceRejected as rejected:
        job.finish(JobPhase.REJECTED, rejected.reason, rejected.message[:1024], audit.SOURCE_REJECTED)
        return None


def _review_volume_source(job: _Job) -> str | None:
    """A volume source's digest, from a review Pod that only copies it (None: not known yet).

    The operator cannot read a volume, so the preparation step does, in a Pod of its own that
    runs no command and has no network; the run's preparation step later refuses any other
    content.
    """
    ctx = job.ctx
    name = job.status.get("reviewPodName")
    if not name:
        ctx.kube.apply_network_policy(
            builders.build_network_policy(job.namespace, NetworkProfile.NONE, ctx.config)
        )
        created = _create_or_adopt_pod(job, builders.build_review_pod(job.model, ctx.config))
        job.write(
            {
                "reviewPodName": created["metadata"]["name"],
                "reviewPodUid": created["metadata"].get("uid"),
                "reason": "reviewing_source",
                "message": f"Pod {created['metadata']['name']} is copying the source to pin its "
                "content for the review",
            }
        )
        return None
    try:
        pod = ctx.kube.get_pod(job.namespace, name)
    except NotFound:
        pod = {}
    if (pod.get("metadata") or {}).get("uid") != job.status.get("reviewPodUid"):
        job.finish(
            JobPhase.FAILED, "PodLost", f"review Pod {name} disappeared or was replaced",
            audit.JOB_FAILED,
        )
        return None
    if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
        decided = parse_time(job.status.get("decidedAt")) or ctx.now()
        budget = datetime.timedelta(seconds=2 * ctx.config.sandbox.launchGraceSeconds)
        if ctx.now() >= decided + budget:
            job.finish(JobPhase.FAILED, "Timeout", f"review Pod {name} did not finish", audit.TIMED_OUT)
            _delete_pod_quietly(job)
        return None
    record = _read_record(job, builders.PREPARE_CONTAINER, PrepareResult, 64 * 1024, pod=name)
    _delete_pod_quietly(job)
    if record is not None and record.ok and record.digest:
        return record.digest
    if record is not None and not record.ok and record.reason != "prepare_error":
        job.finish(JobPhase.REJECTED, record.reason, record.message[:1024], audit.SOURCE_REJECTED)
    else:
        detail = record.message if record is not None else "no record"
        job.finish(
            JobPhase.FAILED, "PrepareFailed", f"preparing the workspace failed: {detail}"[:1024],
            audit.JOB_FAILED,
        )
    return None


def _request_approval(job: _Job) -> None:
    digest = _pin_source(job)
    if digest is None:
        return
    body = builders.build_approval(job.model, job.status["argv"], digest)
    name = body["metadata"]["name"]
    try:
        created = job.ctx.kube.create_approval(body)
    except AlreadyExists:
        # Ours from before a restart, or made by someone else: _check_approval verifies the
        # binding, and a decision taken before this job asked for one is no decision at all.
        try:
            created = job.ctx.kube.get_approval(job.namespace, name)
        except NotFound:
            raise TransientFailure(f"Approval {name} vanished while being adopted") from None
        decision = (created.get("spec") or {}).get("decision")
        if decision != ApprovalDecision.PENDING.value:
            message = f"Approval {name} already said {decision!r} before this job asked for one"
            job.finish(JobPhase.FAILED, "ApprovalMismatch", message, audit.APPROVAL_MISMATCH)
            raise PermanentFailure("ApprovalMismatch", message)
    job.write(
        {
            "phase": JobPhase.AWAITING_APPROVAL.value,
            "approvalName": name,
            "approvalUid": (created.get("metadata") or {}).get("uid"),
            "approvalRequestedAt": timestamp(job.ctx.now()),
            "sourceDigest": digest,
            "reason": "approval_required",
            "message": f"waiting for a human to approve or deny Approval {name}",
        },
        audit.APPROVAL_REQUESTED,
    )


def approval_mismatch(
    job: SandboxJob,
    approval: Approval,
    argv: list[str] | None,
    approval_uid: str | None = None,
    source_digest: str | None = None,
) -> str | None:
    """Why `approval` does not authorise this exact job, or None if it does.

    `approval_uid` is the UID of the Approval the operator requested (None for jobs from before
    it was recorded): another object under the same name is not that request. `source_digest`
    is the content digest the operator pinned when it asked; the Approval must carry the same.
    """
    if approval_uid and approval.metadata.get("uid") != approval_uid:
        return "the Approval was replaced after it was requested"
    owners = approval.metadata.get("ownerReferences") or []
    if not any(ref.get("uid") == job.uid and ref.get("controller") for ref in owners):
        return "the Approval is not owned by this job"
    spec = approval.spec
    if spec.jobUid != job.uid or spec.jobName != job.name:
        return "the Approval was made for another job"
    if spec.specHash != spec_hash(job.spec):
        return "the job's spec changed after the Approval was requested"
    if argv is None or spec.command != argv:
        return "the approved command is not the command this job would run"
    if spec.networkProfile != job.spec.networkProfile or spec.source != job.spec.source:
        return "the approved network profile or source differs from the job's"
    if not source_digest or spec.sourceDigest != source_digest:
        return "the Approval was given for other source content than this job pinned"
    return None


def _check_approval(job: _Job) -> None:
    ctx = job.ctx
    name = job.status["approvalName"]
    try:
        body = ctx.kube.get_approval(job.namespace, name)
    except NotFound:
        job.finish(
            JobPhase.FAILED, "ApprovalMissing", f"Approval {name} was deleted before a decision",
            audit.JOB_FAILED,
        )
        raise PermanentFailure("ApprovalMissing", name) from None
    try:
        approval = Approval.model_validate(body)
    except ValidationError as error:
        job.finish(JobPhase.FAILED, "ApprovalInvalid", str(error)[:1024], audit.APPROVAL_MISMATCH)
        raise PermanentFailure("ApprovalInvalid", name) from None
    problem = approval_mismatch(
        job.model, approval, job.status.get("argv"), job.status.get("approvalUid"),
        job.status.get("sourceDigest"),
    )
    if problem is not None:
        job.finish(JobPhase.FAILED, "ApprovalMismatch", problem, audit.APPROVAL_MISMATCH)
        raise PermanentFailure("ApprovalMismatch", problem)

    record_approval_decision(ctx, body, approval)
    decision = approval.spec.decision
    decided_by = ctx.decided_by(approval)
    if approval.status.phase is ApprovalPhase.EXPIRED:
        job.finish(JobPhase.FAILED, "ApprovalExpired", "the Approval expired", audit.APPROVAL_EXPIRED)
    elif decision is ApprovalDecision.PENDING:
        _expire_if_old(job, body)
    elif decision is ApprovalDecision.DENIED:
        job.finish(
            JobPhase.DENIED, "ApprovalDenied", f"denied by {decided_by}: {approval.spec.note}".strip(),
            audit.APPROVAL_DENIED, {"decidedBy": decided_by},
        )
    else:
        job.write(
            {
                "approvedAt": timestamp(ctx.now()),
                "decidedBy": decided_by,
                "reason": "approved",
                "message": f"approved by {decided_by}",
                "_conditions": [("Approved", "True", "ApprovalApproved", f"approved by {decided_by}")],
            },
            audit.APPROVAL_APPROVED,
        )


def _expire_if_old(job: _Job, approval_body: dict[str, Any]) -> None:
    ctx = job.ctx
    requested = parse_time(job.status.get("approvalRequestedAt"))
    ttl = datetime.timedelta(seconds=ctx.config.approvalTimeoutSeconds)
    if requested is None or ctx.now() < requested + ttl:
        return
    message = f"no decision within {ctx.config.approvalTimeoutSeconds} seconds"
    metadata = approval_body["metadata"]
    ctx.kube.patch_approval_status(
        metadata["namespace"],
        metadata["name"],
        {"phase": ApprovalPhase.EXPIRED.value, "decidedAt": timestamp(ctx.now()), "message": message},
    )
    ctx.auditor.record(
        approval_body, audit.APPROVAL_EXPIRED, phase=ApprovalPhase.EXPIRED.value,
        job=job.name, message=message,
    )
    job.finish(JobPhase.FAILED, "ApprovalExpired", message, audit.APPROVAL_EXPIRED)


def record_approval_decision(ctx: Context, body: dict[str, Any], approval: Approval) -> None:
    """Mirror a human decision into the Approval's status, once; a final status never changes."""
    current = approval.status.phase
    if current in (ApprovalPhase.APPROVED, ApprovalPhase.DENIED, ApprovalPhase.EXPIRED):
        return
    decision = approval.spec.decision
    metadata = body["metadata"]
    if decision is ApprovalDecision.PENDING:
        if current is None:
            ctx.kube.patch_approval_status(
                metadata["namespace"], metadata["name"], {"phase": ApprovalPhase.PENDING.value}
            )
        return
    decided_by = ctx.decided_by(approval)
    phase = ApprovalPhase(decision.value)
    ctx.kube.patch_approval_status(
        metadata["namespace"],
        metadata["name"],
        {"phase": phase.value, "decidedBy": decided_by, "decidedAt": timestamp(ctx.now())},
    )
    approval.status.phase = phase
    ctx.auditor.record(
        body,
        audit.APPROVAL_APPROVED if phase is ApprovalPhase.APPROVED else audit.APPROVAL_DENIED,
        phase=phase.value,
        job=approval.spec.jobName,
        argv=list(approval.spec.command),
        profile=approval.spec.networkProfile.value,
        approval=metadata["name"],
        decidedBy=decided_by,
        message=approval.spec.note or None,
    )


def reconcile_approval(ctx: Context, namespace: str, name: str) -> str | None:
    """Record an Approval's decision; returns the job name to reconcile next (or None)."""
    try:
        body = ctx.kube.get_approval(namespace, name)
        approval = Approval.model_validate(body)
        record_approval_decision(ctx, body, approval)
    except NotFound:
        return None
    except ValidationError as error:
        raise PermanentFailure("ApprovalInvalid", str(error)[:1024]) from None
    except KubeError as error:
        raise TransientFailure(str(error)) from error
    return approval.spec.jobName


# --------------------------------------------------------------------------------- job: launch


def _create_or_adopt_pod(job: _Job, pod: dict[str, Any]) -> dict[str, Any]:
    """Create `pod`; if its name is taken, adopt it only if it is exactly the Pod we would build."""
    name = pod["metadata"]["name"]
    try:
        return job.ctx.kube.create_pod(pod)
    except AlreadyExists:
        pass
    # Ours from before a restart, or someone else's: adopt only the Pod we would have built.
    created = job.ctx.kube.get_pod(job.namespace, name)
    problem = builders.pod_mismatch(pod, created)
    if problem is not None:
        job.finish(
            JobPhase.FAILED, "PodNameConflict",
            f"Pod {name} exists and is not the Pod this job would run ({problem} differs)",
            audit.JOB_FAILED,
        )
        raise PermanentFailure("PodNameConflict", name) from None
    log.info("pod-adopted namespace=%s pod=%s", job.namespace, name)
    return created


def _launch(job: _Job) -> None:
    ctx = job.ctx
    argv = job.status["argv"]
    profile = job.model.spec.networkProfile
    # The profile's NetworkPolicy must exist before the Pod, or the Pod starts unfiltered.
    ctx.kube.apply_network_policy(builders.build_network_policy(job.namespace, profile, ctx.config))
    canary_address = None
    if ctx.config.egressCheck is not None:
        canary = ctx.config.egressCheck.canary
        try:
            canary_address = ctx.kube.get_service_address(canary.namespace, canary.service)
        except NotFound as error:  # no pre-flight, no run: wait for the canary, then give up
            _give_up_if_overdue(job, f"egress canary missing: {error}")
            raise TransientFailure(f"egress canary missing: {error}") from error
    pod = builders.build_sandbox_pod(
        job.model, argv, job.status["limits"]["maxOutputKb"], ctx.config,
        source_digest=job.status.get("sourceDigest"), canary_address=canary_address,
    )
    name = pod["metadata"]["name"]
    created = _create_or_adopt_pod(job, pod)
    job.write(
        {
            "phase": JobPhase.RUNNING.value,
            "podName": name,
            "podUid": (created.get("metadata") or {}).get("uid"),
            "startTime": timestamp(ctx.now()),
            "reason": "launched",
            "message": f"sandbox Pod {name} launched",
            "_conditions": [("Launched", "True", audit.SANDBOX_LAUNCHED, f"Pod {name}")],
        },
        audit.SANDBOX_LAUNCHED,
    )


# -------------------------------------------------------------------------------- job: observe


def _observe(job: _Job) -> None:
    ctx = job.ctx
    name = job.status["podName"]
    try:
        pod = ctx.kube.get_pod(job.namespace, name)
    except NotFound:
        job.finish(
            JobPhase.FAILED, "PodLost", f"Pod {name} disappeared before its result was read",
            audit.JOB_FAILED,
        )
        return
    if not _is_our_pod(job, pod):
        return
    pod_status = pod.get("status") or {}
    prepare = _terminated(pod_status.get("initContainerStatuses"), builders.PREPARE_CONTAINER)
    if prepare is not None and prepare.get("exitCode") not in (0, None):
        _finish_rejected(job, prepare)
        return
    phase = pod_status.get("phase")
    if phase not in ("Succeeded", "Failed"):
        _time_out_if_overdue(job)
        return
    runner = _terminated(pod_status.get("containerStatuses"), builders.RUNNER_CONTAINER)
    result = _read_record(job, builders.RUNNER_CONTAINER, RunnerResult, _log_limit(job))
    if not _still_our_pod(job):
        return
    if result is None:
        if pod_status.get("reason") == "DeadlineExceeded":
            job.finish(JobPhase.FAILED, "Timeout", "the Pod exceeded its deadline", audit.TIMED_OUT)
        else:
            code = runner.get("exitCode") if runner else None
            job.finish(
                JobPhase.FAILED, "ResultUnreadable",
                f"the runner left no result record (container exit {code})", audit.JOB_FAILED,
            )
    else:
        _finish_with_result(job, result)
    _delete_pod_quietly(job)


def _is_our_pod(job: _Job, pod: dict[str, Any]) -> bool:
    """False (and the job Failed) when the Pod under our name is not the one we launched."""
    expected = job.status.get("podUid")
    if not expected or (pod.get("metadata") or {}).get("uid") == expected:
        return True
    name = job.status["podName"]
    job.finish(
        JobPhase.FAILED, "PodReplaced",
        f"Pod {name} was replaced by another object; its output is not trusted", audit.JOB_FAILED,
    )
    return False


def _still_our_pod(job: _Job) -> bool:
    """After reading a log by name: was it still our Pod? (A name never returns to an old UID.)"""
    try:
        pod = job.ctx.kube.get_pod(job.namespace, job.status["podName"])
    except NotFound:
        pod = {}
    return _is_our_pod(job, pod)


def _terminated(statuses: list[dict[str, Any]] | None, container: str) -> dict[str, Any] | None:
    for entry in statuses or []:
        if entry.get("name") == container:
            return (entry.get("state") or {}).get("terminated")
    return None


def _log_limit(job: _Job) -> int:
    # Two capped streams, JSON-escaped (at most 6 bytes per byte), plus the rest of the record.
    return 2 * 6 * job.status["limits"]["maxOutputKb"] * 1024 + 256 * 1024


def _read_record(
    job: _Job, container: str, model: type[Any], limit: int, pod: str | None = None
) -> Any | None:
    """The last record line of a container's log, parsed; None if there is none or it is broken."""
    try:
        text = job.ctx.kube.read_pod_log(job.namespace, pod or job.status["podName"], container, limit)
    except (NotFound, Invalid):
        return None
    kind = model.model_fields["kind"].annotation.__args__[0]
    for line in reversed(text.splitlines()):
        if line.startswith('{"kind":"' + kind + '"'):
            try:
                return model.model_validate(json.loads(line))
            except (ValueError, ValidationError):
                return None
    return None


def _finish_rejected(job: _Job, terminated: dict[str, Any]) -> None:
    record = _read_record(job, builders.PREPARE_CONTAINER, PrepareResult, 64 * 1024)
    if not _still_our_pod(job):
        return
    if terminated.get("exitCode") == 1 and record is not None and record.reason == SOURCE_CHANGED:
        # The files are not the ones a human approved: nothing ran, and the review is void.
        job.finish(JobPhase.FAILED, "ApprovalMismatch", record.message[:1024], audit.APPROVAL_MISMATCH)
    elif terminated.get("exitCode") == 1 and record is not None and not record.ok:
        job.finish(JobPhase.REJECTED, record.reason, record.message[:1024], audit.SOURCE_REJECTED)
    else:
        detail = record.message if record is not None else f"exit {terminated.get('exitCode')}"
        job.finish(JobPhase.FAILED, "PrepareFailed", f"preparing the workspace failed: {detail}"[:1024], audit.JOB_FAILED)
    _delete_pod_quietly(job)


def _time_out_if_overdue(job: _Job) -> None:
    started = parse_time(job.status.get("startTime"))
    if started is None:
        return
    budget = job.model.spec.timeoutSeconds + job.ctx.config.sandbox.launchGraceSeconds
    if job.ctx.now() < started + datetime.timedelta(seconds=budget):
        return
    job.finish(
        JobPhase.FAILED, "Timeout", f"no result within {budget} seconds of launch", audit.TIMED_OUT
    )
    _delete_pod_quietly(job)


def fit_for_status(text: str, budget: int = STATUS_STREAM_BUDGET) -> tuple[str, bool]:
    """The longest prefix of `text` whose stored JSON form is at most `budget` bytes (an upper
    bound: non-ASCII counted as its \\u escape), and whether anything was cut."""
    if 12 * len(text) + 2 <= budget:
        return text, False
    used = 2
    for index, char in enumerate(text):
        code = ord(char)
        used += _ASCII_STORED[code] if code < 128 else (6 if code <= 0xFFFF else 12)
        if used > budget:
            return text[:index], True
    return text, False


def _finish_with_result(job: _Job, result: RunnerResult) -> None:
    limits = job.status["limits"]
    changed = result.changedFiles
    stdout, stdout_cut = fit_for_status(result.stdout)
    stderr, stderr_cut = fit_for_status(result.stderr)
    recorded = {
        "exitCode": result.exitCode,
        "timedOut": result.timedOut,
        "stdout": stdout,
        "stderr": stderr,
        "stdoutBytes": result.stdoutBytes,
        "stderrBytes": result.stderrBytes,
        "stdoutTruncated": result.stdoutTruncated or stdout_cut,
        "stderrTruncated": result.stderrTruncated or stderr_cut,
        "changedFiles": changed.model_dump(mode="json"),
        "egressCheckMs": result.egress.elapsedMs if result.egress else None,
    }
    phase, reason, message, event = outcome_of(
        result, limits["maxFileWrites"], job.model.spec.timeoutSeconds
    )
    if reason == EGRESS_NOT_ENFORCED:
        recorded = {}  # nothing ran: no exit code, no output, no changed files
    job.finish(phase, reason, message, event, recorded)


def outcome_of(
    result: RunnerResult, max_file_writes: int, timeout_seconds: int
) -> tuple[JobPhase, str, str, str]:
    """(phase, reason, message, audit event) of a finished run: the first rule that applies wins.

    Pure, so the rules are tested as a table, and the e2e tests can ask what the operator will
    make of a record the real image wrote.
    """
    changed = result.changedFiles
    if result.egress is not None and not result.egress.enforced:
        message = f"the command never ran: {result.egress.detail}"
        return JobPhase.FAILED, EGRESS_NOT_ENFORCED, message, audit.EGRESS_NOT_ENFORCED
    if result.error and result.exitCode is None:
        return JobPhase.FAILED, "RunnerError", result.error, audit.JOB_FAILED
    if result.timedOut:
        message = f"the command ran longer than {timeout_seconds} seconds"
        return JobPhase.FAILED, "Timeout", message, audit.TIMED_OUT
    if not changed.complete:
        message = "the workspace could not be fully inspected after the run"
        return JobPhase.FAILED, "WorkspaceUninspectable", message, audit.POLICY_VIOLATION
    if changed.total > max_file_writes:
        message = (
            f"the command changed {changed.total} workspace entries; the policy allows {max_file_writes}"
        )
        return JobPhase.FAILED, "TooManyFileWrites", message, audit.POLICY_VIOLATION
    if result.fullVolumes:
        message = (
            f"the command filled its {' and '.join(result.fullVolumes)} volume to the configured "
            f"size limit (exit status {result.exitCode})"
        )
        return JobPhase.FAILED, "DiskLimitReached", message, audit.POLICY_VIOLATION
    if result.exitCode != 0:
        message = result.error or f"the command exited with status {result.exitCode}"
        return JobPhase.FAILED, "NonZeroExit", message, audit.COMMAND_FAILED
    return JobPhase.SUCCEEDED, "Completed", "the command exited with status 0", audit.COMMAND_FINISHED


def _delete_pod_quietly(job: _Job) -> None:
    for name_key, uid_key in (("reviewPodName", "reviewPodUid"), ("podName", "podUid")):
        name = job.status.get(name_key)
        if not name:
            continue
        try:
            # Only the Pod we launched: the UID precondition spares another object under the name.
            job.ctx.kube.delete_pod(job.namespace, name, uid=job.status.get(uid_key))
        except (NotFound, Conflict):
            pass
