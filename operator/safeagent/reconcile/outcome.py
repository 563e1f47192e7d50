"""Outcome rules: what the operator makes of what a sandbox Pod left behind. Pure functions.

Each takes the record (or its absence) and returns an `Outcome` (phase, reason, message, audit
event); the first rule that applies wins. They are tested as tables (tests/unit/reconcile/test_outcome.py),
and the e2e tests ask them what the operator will make of a record the real image wrote.
"""

from __future__ import annotations

from typing import NamedTuple

from safeagent import audit
from safeagent.models import JobPhase, PrepareResult, RunnerResult
from safeagent.reconcile.status import MAX_MESSAGE

# The preparation step's reasons: the source is not the one approved; the step itself failed.
from safeagent.sandbox.contract import (
    PREPARE_ERROR,
    PREPARE_SOURCE_CHANGED,
    TERMINATION_LOG_CAP,
    TERMINATION_LOG_VOLUME,
)

# The runner could not prove its Pod's egress filtered, so it ran nothing (safeagent.sandbox.preflight).
EGRESS_NOT_ENFORCED = "EgressNotEnforced"
# The runner found no PID bound of the Pod's own in force, so it ran nothing (safeagent.sandbox.limits).
RESOURCES_NOT_LIMITED = "ResourcesNotLimited"


class Outcome(NamedTuple):
    phase: JobPhase
    reason: str
    message: str
    event: str


def outcome_of(result: RunnerResult, max_file_writes: int, timeout_seconds: int) -> Outcome:
    """(phase, reason, message, audit event) of a finished run: the first rule that applies wins."""
    changed = result.changedFiles
    if result.egress is not None and not result.egress.enforced:
        message = f"the command never ran: {result.egress.detail}"
        return Outcome(JobPhase.FAILED, EGRESS_NOT_ENFORCED, message, audit.EGRESS_NOT_ENFORCED)
    if result.pids is not None and not result.pids.limited and result.exitCode is None:
        message = (
            f"the command never ran: {result.pids.detail}. Set the kubelet's podPidsLimit on the sandbox "
            "nodes (see the README, 'PID limit'), or turn off sandbox.pids.required"
        )
        return Outcome(JobPhase.FAILED, RESOURCES_NOT_LIMITED, message, audit.JOB_FAILED)
    if result.error and result.exitCode is None:
        return Outcome(JobPhase.FAILED, "RunnerError", result.error, audit.JOB_FAILED)
    if result.timedOut:
        message = f"the command ran longer than {timeout_seconds} seconds"
        return Outcome(JobPhase.FAILED, "Timeout", message, audit.TIMED_OUT)
    if result.memoryExhausted:
        filled = f"; full: {', '.join(result.fullVolumes)}" if result.fullVolumes else ""
        message = (
            f"the sandbox's memory was nearly used up, so the command was stopped{filled} "
            f"({changed.total} workspace entries changed{'' if changed.complete else ' or more'})"
        )
        return Outcome(JobPhase.FAILED, "MemoryLimitReached", message, audit.POLICY_VIOLATION)
    if not changed.complete:
        message = result.error or "the workspace could not be fully inspected after the run"
        return Outcome(JobPhase.FAILED, "WorkspaceUninspectable", message, audit.POLICY_VIOLATION)
    if changed.total > max_file_writes:
        message = (
            f"the command changed {changed.total} workspace entries; the policy allows {max_file_writes}"
        )
        return Outcome(JobPhase.FAILED, "TooManyFileWrites", message, audit.POLICY_VIOLATION)
    if result.fullVolumes:
        volumes = [volume for volume in result.fullVolumes if volume != TERMINATION_LOG_VOLUME]
        parts = [f"filled its {' and '.join(volumes)} volume to the configured size limit"] if volumes else []
        if TERMINATION_LOG_VOLUME in result.fullVolumes:
            parts.append(
                f"wrote more than {TERMINATION_LOG_CAP} bytes to the termination message file, which is on the "
                "node's disk, so it was stopped"
            )
        message = f"the command {' and '.join(parts)} (exit status {result.exitCode})"
        return Outcome(JobPhase.FAILED, "DiskLimitReached", message, audit.POLICY_VIOLATION)
    if result.exitCode != 0:
        message = result.error or f"the command exited with status {result.exitCode}"
        return Outcome(JobPhase.FAILED, "NonZeroExit", message, audit.COMMAND_FAILED)
    return Outcome(JobPhase.SUCCEEDED, "Completed", "the command exited with status 0", audit.COMMAND_FINISHED)


def _prepare_failed(detail: str) -> Outcome:
    message = f"preparing the workspace failed: {detail}"[:MAX_MESSAGE]
    return Outcome(JobPhase.FAILED, "PrepareFailed", message, audit.JOB_FAILED)


def prepare_outcome(exit_code: int | None, record: PrepareResult | None) -> Outcome:
    """The job's end when the run Pod's preparation step exited non-zero (nothing ran)."""
    if exit_code == 1 and record is not None and record.reason == PREPARE_SOURCE_CHANGED:
        # The files are not the ones a human approved: nothing ran, and the review is void.
        return Outcome(JobPhase.FAILED, "ApprovalMismatch", record.message[:MAX_MESSAGE], audit.APPROVAL_MISMATCH)
    if exit_code == 1 and record is not None and not record.ok:
        return Outcome(JobPhase.REJECTED, record.reason, record.message[:MAX_MESSAGE], audit.SOURCE_REJECTED)
    return _prepare_failed(record.message if record is not None else f"exit {exit_code}")


def review_outcome(record: PrepareResult | None) -> str | Outcome:
    """A review Pod's record: the source's digest, or how the job ends."""
    if record is not None and record.ok and record.digest:
        return record.digest
    if record is not None and not record.ok and record.reason != PREPARE_ERROR:
        return Outcome(JobPhase.REJECTED, record.reason, record.message[:MAX_MESSAGE], audit.SOURCE_REJECTED)
    return _prepare_failed(record.message if record is not None else "no record this operator can read")


def no_record_outcome(pod_reason: str | None, runner_exit: int | None) -> Outcome:
    """A finished Pod whose runner left no (readable) result record: none at all, or one this
    operator's model refuses (another release's; safeagent.sandbox.contract)."""
    if pod_reason == "DeadlineExceeded":
        return Outcome(JobPhase.FAILED, "Timeout", "the Pod exceeded its deadline", audit.TIMED_OUT)
    message = f"the runner left no result record this operator can read (container exit {runner_exit})"
    return Outcome(JobPhase.FAILED, "ResultUnreadable", message, audit.JOB_FAILED)
