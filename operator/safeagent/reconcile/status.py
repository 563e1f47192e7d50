"""Typed status updates: what a step decided, as a partial `SandboxJobStatus`, and how it becomes
one merge patch. Pure; `job.Job.apply` is the one place that writes the patch and its audit record.

A step never builds a dict of status keys: it returns `progress(...)` or `finished(...)`, whose
keyword arguments are typed (StatusFields: a misspelt field or a value of the wrong type is a mypy
error at the call site) and validated by the status model when the update is made, plus the
conditions it sets and the audit event that narrates it. Only the fields a step set are written.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, TypedDict, Unpack

from safeagent.models import TERMINAL_JOB_PHASES, ChangedFiles, Condition, JobLimits, JobPhase, SandboxJobStatus
from safeagent.policy.decision import Verdict
from safeagent.sandbox.contract import EgressProof

# Status must fit in etcd (1.5 MiB per object). The API server stores JSON with '<', '>', '&' and
# control characters escaped to 6 bytes, so 256 KiB of output can take 1.5 MiB: each stream is
# trimmed to this many bytes *as stored* (and flagged truncated) before it goes into status.
STATUS_STREAM_BUDGET = 512 * 1024
# Messages a step builds from text it did not write (an API error, a record) are cut to this.
MAX_MESSAGE = 1024


@dataclasses.dataclass(frozen=True)
class ConditionChange:
    """A condition a step sets; its lastTransitionTime is decided when it is applied."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str


class FinishedFields(TypedDict, total=False):
    """The status fields a step may set besides phase, reason and message (which `finished` takes
    as arguments). Their types are SandboxJobStatus's; the fields `Job.apply` writes itself
    (observedGeneration, completionTime, conditions) are not here. A unit test
    (tests/unit/test_wire_contract.py) holds these fields to the model's, both ways."""

    decision: Verdict | None
    argv: list[str] | None
    specHash: str | None
    limits: JobLimits | None
    sourceDigest: str | None
    reviewPodName: str | None
    reviewPodUid: str | None
    approvalName: str | None
    approvalUid: str | None
    decidedBy: str | None
    podName: str | None
    podUid: str | None
    exitCode: int | None
    timedOut: bool | None
    stdout: str | None
    stderr: str | None
    stdoutBytes: int | None
    stderrBytes: int | None
    stdoutTruncated: bool | None
    stderrTruncated: bool | None
    changedFiles: ChangedFiles | None
    egressCheckMs: int | None
    egressProof: EgressProof | None
    fullVolumes: list[str] | None
    memoryExhausted: bool | None
    pidsAvailable: int | None
    decidedAt: str | None
    approvalRequestedAt: str | None
    approvedAt: str | None
    startTime: str | None


class StatusFields(FinishedFields, total=False):
    """Every status field a step may set (what `progress` takes)."""

    phase: JobPhase | None
    reason: str | None
    message: str | None


@dataclasses.dataclass(frozen=True)
class Update:
    """One step's outcome: the status fields it sets, its conditions and its audit event."""

    fields: SandboxJobStatus
    conditions: tuple[ConditionChange, ...] = ()
    event: str | None = None

    @property
    def final(self) -> bool:
        return self.fields.phase in TERMINAL_JOB_PHASES


def progress(
    event: str | None = None, conditions: tuple[ConditionChange, ...] = (), **fields: Unpack[StatusFields]
) -> Update:
    """An update that moves the job on without ending it (no event: recorded silently)."""
    return Update(SandboxJobStatus(**fields), conditions, event)


def finished(
    phase: JobPhase,
    reason: str,
    message: str,
    event: str,
    conditions: tuple[ConditionChange, ...] = (),
    **fields: Unpack[FinishedFields],
) -> Update:
    """A final phase, with a Completed condition (completionTime is stamped when applied)."""
    completed = ConditionChange("Completed", "True" if phase is JobPhase.SUCCEEDED else "False", reason, message)
    status = SandboxJobStatus(phase=phase, reason=reason, message=message, **fields)
    return Update(status, (*conditions, completed), event)


def merge_conditions(
    current: list[Condition], changes: tuple[ConditionChange, ...], now: str
) -> list[Condition]:
    """Set each changed condition (last in the list); its transition time moves only when its
    status does."""
    result = list(current)
    for change in changes:
        previous = next((c for c in result if c.type == change.type), None)
        moved = previous is None or previous.status != change.status
        entry = Condition(
            type=change.type,
            status=change.status,
            reason=change.reason,
            message=change.message,
            lastTransitionTime=now if moved or previous is None else previous.lastTransitionTime,
        )
        result = [c for c in result if c.type != change.type] + [entry]
    return result


def patch_of(
    current: SandboxJobStatus, update: Update, generation: int | None, now: str
) -> tuple[dict[str, Any], SandboxJobStatus]:
    """The merge patch for `update` and the status it leaves (both from the same values)."""
    values: dict[str, Any] = {name: getattr(update.fields, name) for name in update.fields.model_fields_set}
    values["observedGeneration"] = generation
    if update.final:
        values["completionTime"] = now
    if update.conditions:
        values["conditions"] = merge_conditions(current.conditions, update.conditions, now)
    after = current.model_copy(update=values)
    patch = after.model_dump(mode="json", include=set(values))
    if "conditions" in patch:
        patch["conditions"] = [c.model_dump(mode="json", exclude_none=True) for c in values["conditions"]]
    return patch, after


def _stored_ascii_sizes() -> list[int]:
    sizes = [6 if code < 0x20 else 1 for code in range(128)]
    for char in "<>&":
        sizes[ord(char)] = 6
    for char in '"\\\n\r\t':
        sizes[ord(char)] = 2
    return sizes


_ASCII_STORED = _stored_ascii_sizes()


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
