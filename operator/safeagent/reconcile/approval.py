"""Step 2, approval: ask a human about exactly this job, then read the answer.

`request` pins the source's content (source.py) and creates the Approval, bound to the job's UID,
spec hash, argv and that digest; `check` reads it back, refuses any binding that does not hold,
mirrors the decision into the Approval's status and moves the job on (approved: launch next),
ends it (denied, expired) or leaves it waiting. A decision taken before this job asked is none.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from safeagent import audit, builders
from safeagent.kube import AlreadyExists, KubeError, NotFound
from safeagent.models import (
    Approval,
    ApprovalDecision,
    ApprovalPhase,
    ApprovalStatus,
    JobPhase,
    SandboxJob,
    dump,
    spec_hash,
)
from safeagent.reconcile import source
from safeagent.reconcile.context import Context
from safeagent.reconcile.deadlines import is_past, timestamp
from safeagent.reconcile.errors import PermanentFailure, TransientFailure, is_refusal
from safeagent.reconcile.job import Job
from safeagent.reconcile.status import MAX_MESSAGE, ConditionChange, Update, finished, progress


def _mismatch(message: str) -> PermanentFailure:
    final = finished(JobPhase.FAILED, "ApprovalMismatch", message, audit.APPROVAL_MISMATCH)
    return PermanentFailure("ApprovalMismatch", message, final)


def request(job: Job) -> Update | None:
    """Create (or adopt) the job's Approval; None while the source's digest is not known yet."""
    pinned = source.pin(job)
    if not isinstance(pinned, str):
        return pinned
    argv = job.status.argv or []
    body = builders.build_approval(job.model, argv, pinned)
    name = body["metadata"]["name"]
    try:
        created = job.ctx.kube.create_approval(body)
    except AlreadyExists:
        # Ours from before a restart, or made by someone else: `check` verifies the binding,
        # and a decision taken before this job asked for one is no decision at all.
        try:
            created = job.ctx.kube.get_approval(job.namespace, name)
        except NotFound:
            raise TransientFailure(f"Approval {name} vanished while being adopted") from None
        decision = (created.get("spec") or {}).get("decision")
        if decision != ApprovalDecision.PENDING.value:
            raise _mismatch(f"Approval {name} already said {decision!r} before this job asked for one") from None
    return progress(
        audit.APPROVAL_REQUESTED,
        phase=JobPhase.AWAITING_APPROVAL,
        approvalName=name,
        approvalUid=(created.get("metadata") or {}).get("uid"),
        approvalRequestedAt=job.now(),
        sourceDigest=pinned,
        reason="approval_required",
        message=f"waiting for a human to approve or deny Approval {name}",
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
    if spec.requester != job.spec.requester:
        return "the Approval names another requester than the job's"
    return None


def unattributed(approval: Approval) -> str | None:
    """Why a decided Approval's decision counts for nothing, or None if it counts.

    The cluster's admission policies already refuse both cases; this holds where they are missing
    (the chart installed without them, or a binding deleted): a decision the API server did not
    attribute, or one taken by the job's own requester, never lets a command run.
    """
    spec = approval.spec
    if spec.decision is ApprovalDecision.PENDING:
        return None
    if spec.decider is None:
        return "the decision carries no decider recorded by the cluster (are safeagent's admission policies installed?)"
    if spec.decider.username == spec.requester.username:
        return f"{spec.decider.username} decided the Approval of a job they submitted: another person must decide"
    return None


def check(job: Job) -> Update | None:
    """Read the job's Approval and act on its decision; None while it is pending and not old."""
    ctx = job.ctx
    name = job.status.approvalName or ""
    try:
        body = ctx.kube.get_approval(job.namespace, name)
    except NotFound:
        message = f"Approval {name} was deleted before a decision"
        raise PermanentFailure(
            "ApprovalMissing", name, finished(JobPhase.FAILED, "ApprovalMissing", message, audit.JOB_FAILED)
        ) from None
    try:
        approval = Approval.model_validate(body)
    except ValidationError as error:
        final = finished(JobPhase.FAILED, "ApprovalInvalid", str(error)[:MAX_MESSAGE], audit.APPROVAL_MISMATCH)
        raise PermanentFailure("ApprovalInvalid", name, final) from None
    status = job.status
    problem = approval_mismatch(
        job.model, approval, status.argv, status.approvalUid, status.sourceDigest
    ) or unattributed(approval)
    if problem is not None:
        raise _mismatch(problem)

    record_approval_decision(ctx, body, approval)
    decision = approval.spec.decision
    if approval.status.phase is ApprovalPhase.EXPIRED:
        return finished(JobPhase.FAILED, "ApprovalExpired", "the Approval expired", audit.APPROVAL_EXPIRED)
    if decision is ApprovalDecision.PENDING:
        return _expire_if_old(job, body)
    decided_by = _decided_by(approval)
    if decision is ApprovalDecision.DENIED:
        return finished(
            JobPhase.DENIED, "ApprovalDenied", f"denied by {decided_by}: {approval.spec.note}".strip(),
            audit.APPROVAL_DENIED, decidedBy=decided_by,
        )
    approved = f"approved by {decided_by}"
    return progress(
        audit.APPROVAL_APPROVED,
        (ConditionChange("Approved", "True", "ApprovalApproved", approved),),
        approvedAt=job.now(),
        decidedBy=decided_by,
        reason="approved",
        message=approved,
    )


def _expire_if_old(job: Job, approval_body: dict[str, Any]) -> Update | None:
    ctx = job.ctx
    if not is_past(ctx.now(), job.status.approvalRequestedAt, ctx.config.approvalTimeoutSeconds):
        return None
    message = f"no decision within {ctx.config.approvalTimeoutSeconds} seconds"
    metadata = approval_body["metadata"]
    expired = ApprovalStatus(phase=ApprovalPhase.EXPIRED, decidedAt=job.now(), message=message)
    ctx.kube.patch_approval_status(metadata["namespace"], metadata["name"], dump(expired))
    ctx.auditor.record(
        approval_body, audit.APPROVAL_EXPIRED, phase=ApprovalPhase.EXPIRED.value,
        job=job.name, message=message,
    )
    return finished(JobPhase.FAILED, "ApprovalExpired", message, audit.APPROVAL_EXPIRED)


def record_approval_decision(ctx: Context, body: dict[str, Any], approval: Approval) -> None:
    """Mirror a human decision into the Approval's status, once; a final status never changes."""
    current = approval.status.phase
    if current in (ApprovalPhase.APPROVED, ApprovalPhase.DENIED, ApprovalPhase.EXPIRED):
        return
    decision = approval.spec.decision
    metadata = body["metadata"]
    if decision is ApprovalDecision.PENDING:
        if current is None:
            pending = ApprovalStatus(phase=ApprovalPhase.PENDING)
            ctx.kube.patch_approval_status(metadata["namespace"], metadata["name"], dump(pending))
        return
    if unattributed(approval) is not None:
        return  # no decision to mirror: the job fails ApprovalMismatch, and says why
    decided_by = _decided_by(approval)
    phase = ApprovalPhase(decision.value)
    decided = ApprovalStatus(phase=phase, decidedBy=decided_by, decidedAt=timestamp(ctx.now()))
    ctx.kube.patch_approval_status(metadata["namespace"], metadata["name"], dump(decided))
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


def _decided_by(approval: Approval) -> str:
    decider = approval.spec.decider
    assert decider is not None  # unattributed() refused a decision without one
    return decider.username


def reconcile_approval(ctx: Context, namespace: str, name: str) -> str | None:
    """Record an Approval's decision; returns the job name to reconcile next (or None)."""
    try:
        body = ctx.kube.get_approval(namespace, name)
        approval = Approval.model_validate(body)
        record_approval_decision(ctx, body, approval)
    except NotFound:
        return None
    except ValidationError as error:
        raise PermanentFailure("ApprovalInvalid", str(error)[:MAX_MESSAGE]) from None
    except KubeError as error:
        if is_refusal(error):
            raise PermanentFailure("ApiRefused", str(error)[:MAX_MESSAGE]) from error
        raise TransientFailure(str(error)) from error
    return approval.spec.jobName
