"""Step 1, decide: the policy's verdict on the command, recorded with the limits it sets.

deny -> Denied (no Pod, ever); allow -> Pending (launch next); require_approval -> Pending (an
Approval next). The policy's limits are captured now, so a later policy edit cannot change them.
"""

from __future__ import annotations

from safeagent import audit
from safeagent.models import JobLimits, JobPhase, spec_hash
from safeagent.reconcile import source
from safeagent.reconcile.errors import TransientFailure
from safeagent.reconcile.job import Job
from safeagent.reconcile.status import ConditionChange, FinishedFields, Update, finished, progress

# The runner keeps at most this many KiB of each stream, whatever the policy says.
MAX_OUTPUT_KB_CAP = 256


def decide(job: Job) -> Update:
    ctx = job.ctx
    if job.model.spec.requester is None:
        return source.unknown_requester()
    try:
        policy = ctx.policy()
    except Exception as error:  # an unreadable policy must never mean "allow"
        raise TransientFailure(f"policy unavailable: {error}") from error
    decision = ctx.decide(policy, job.model.spec.command)
    recorded = FinishedFields(
        decision=decision.decision,
        argv=list(decision.argv) if decision.argv is not None else None,
        specHash=spec_hash(job.model.spec),
        limits=JobLimits(
            maxOutputKb=min(int(policy.max_output_kb), MAX_OUTPUT_KB_CAP),
            maxFileWrites=int(policy.max_file_writes),
        ),
        decidedAt=job.now(),
    )
    decided = (ConditionChange("Decided", "True", decision.reason, decision.message),)
    if decision.decision == "deny":
        return finished(
            JobPhase.DENIED, decision.reason, decision.message, audit.POLICY_DENIED, decided, **recorded
        )
    if decision.decision == "allow":
        return progress(
            audit.POLICY_ALLOWED, decided,
            phase=JobPhase.PENDING, reason=decision.reason, message=decision.message, **recorded,
        )
    if decision.decision == "require_approval":
        # Recorded without an event: the state change people see is ApprovalRequested, next.
        return progress(None, decided, phase=JobPhase.PENDING, reason=decision.reason, message=decision.message, **recorded)
    del recorded["decision"]
    return finished(
        JobPhase.FAILED, "internal_error", f"unknown decision {decision.decision!r}",
        audit.JOB_FAILED, decided, **recorded,
    )
