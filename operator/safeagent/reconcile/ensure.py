"""The one ensure-function behind every SandboxJob handler: read the level, take the next steps.

Each step (decide, approval, launch, observe) returns a typed `Update` or None; `Job.apply`
writes it. Errors are sorted here, once, by type (errors.py): a PermanentFailure records its final
status and is raised on; an API refusal ends the job ApiRefused; everything else is transient, and
past the job's deadline it ends the job GaveUp instead of retrying forever.
"""

from __future__ import annotations

from typing import Any, NoReturn

from pydantic import ValidationError

from safeagent import audit
from safeagent.kube import Invalid, KubeError, NotFound
from safeagent.models import TERMINAL_JOB_PHASES, JobPhase, SandboxJob, SandboxJobStatus
from safeagent.reconcile import approval, decide, launch, observe
from safeagent.reconcile.context import Context
from safeagent.reconcile.deadlines import give_up_at, timestamp
from safeagent.reconcile.errors import PermanentFailure, TransientFailure, is_refusal
from safeagent.reconcile.job import Job
from safeagent.reconcile.status import MAX_MESSAGE, Update, finished


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
        _invalid_spec(ctx, body, error)
    job = Job(ctx, body, model)
    try:
        try:
            _ensure(job)
        except PermanentFailure as failure:
            if failure.final is not None and not job.is_final:
                job.apply(failure.final)
            raise
    except TransientFailure as failure:
        _give_up_if_overdue(job, str(failure))
        raise
    except KubeError as error:
        if is_refusal(error):
            _fail_on_refusal(job, error)
        _give_up_if_overdue(job, str(error))
        raise TransientFailure(str(error)) from error
    return job.phase.value if job.phase else None


def _ensure(job: Job) -> None:
    """The state table (see the package's docstring), one step after the other."""
    if job.is_final:
        job.delete_pods()
        return
    if job.status.decision is None:
        job.apply(decide.decide(job))
        if job.is_final:
            return
    if job.status.decision == "require_approval" and not job.status.approvedAt:
        if not job.status.approvalName:
            _apply(job, approval.request(job))
            return
        _apply(job, approval.check(job))
        if not job.status.approvedAt:
            return
    if job.phase is not JobPhase.RUNNING:
        job.apply(launch.launch(job))
    _apply(job, observe.observe(job))


def _apply(job: Job, update: Update | None) -> None:
    if update is not None:
        job.apply(update)


def _invalid_spec(ctx: Context, body: dict[str, Any], error: ValidationError) -> NoReturn:
    message = "; ".join(
        f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
    )[:MAX_MESSAGE]
    phase = (body.get("status") or {}).get("phase")
    if phase not in {p.value for p in TERMINAL_JOB_PHASES}:
        metadata = body["metadata"]
        failed = SandboxJobStatus(
            phase=JobPhase.FAILED, reason=audit.INVALID_SPEC, message=message,
            completionTime=timestamp(ctx.now()),
        )
        try:
            ctx.kube.patch_job_status(
                metadata["namespace"], metadata["name"], failed.model_dump(mode="json", exclude_unset=True)
            )
        except KubeError as patch_error:
            raise TransientFailure(str(patch_error)) from patch_error
        ctx.auditor.record(body, audit.INVALID_SPEC, phase=JobPhase.FAILED.value, message=message)
    raise PermanentFailure(audit.INVALID_SPEC, message)


def _fail_on_refusal(job: Job, error: KubeError) -> NoReturn:
    """The API refused a request we built (admission, RBAC): retrying it will not help."""
    message = str(error)[:MAX_MESSAGE]
    if not job.is_final:
        try:
            job.apply(finished(JobPhase.FAILED, "ApiRefused", message, audit.JOB_FAILED))
        except Invalid:
            # The refused request may have been this status itself: store the bare minimum.
            minimal = SandboxJobStatus(phase=JobPhase.FAILED, reason="ApiRefused", message=message)
            try:
                job.ctx.kube.patch_job_status(
                    job.namespace, job.name, minimal.model_dump(mode="json", exclude_unset=True)
                )
            except KubeError as patch_error:
                raise TransientFailure(str(patch_error)) from patch_error
        except KubeError as patch_error:
            raise TransientFailure(str(patch_error)) from patch_error
    raise PermanentFailure("ApiRefused", message)


def _give_up_if_overdue(job: Job, problem: str) -> None:
    if job.is_final:
        return  # only clean-up is left; it is retried, never turned into another outcome
    deadline = give_up_at(
        job.status, job.body["metadata"].get("creationTimestamp"),
        job.model.spec.timeoutSeconds, job.ctx.config.sandbox.launchGraceSeconds,
    )
    if deadline is None or job.ctx.now() < deadline:
        return
    message = f"gave up after repeated API errors: {problem}"[:MAX_MESSAGE]
    try:
        job.apply(finished(JobPhase.FAILED, "GaveUp", message, audit.JOB_FAILED))
    except KubeError:
        return  # still unreachable: the caller retries, and we try this again
    raise PermanentFailure("GaveUp", message)
