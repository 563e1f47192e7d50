"""Lifecycle arithmetic: timestamps and deadlines as pure functions of the status and a given now.

No function here reads the wall clock; the caller passes `now` (Context.now), so every deadline is
tested with a fixed clock.
"""

from __future__ import annotations

import datetime

from safeagent.models import JobPhase, SandboxJobStatus


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with one-second resolution, as Kubernetes writes times."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def seconds_after(moment: datetime.datetime, seconds: float) -> datetime.datetime:
    return moment + datetime.timedelta(seconds=seconds)


def give_up_at(
    status: SandboxJobStatus, created: str | None, timeout_seconds: int, launch_grace_seconds: int
) -> datetime.datetime | None:
    """When transient trouble stops being retried; None while waiting for a human.

    From the latest start the job has (launch, approval, decision, creation): the command's
    timeout plus twice the launch grace, so a run that could still finish is never cut short.
    """
    if status.phase is JobPhase.AWAITING_APPROVAL and not status.approvedAt:
        return None
    started = (
        parse_time(status.startTime)
        or parse_time(status.approvedAt)
        or parse_time(status.decidedAt)
        or parse_time(created)
    )
    if started is None:
        return None
    return seconds_after(started, timeout_seconds + 2 * launch_grace_seconds)


def run_budget_seconds(timeout_seconds: int, launch_grace_seconds: int) -> int:
    """How long after launch a Pod may take to leave a result: the command's timeout plus the
    launch grace (scheduling, image, preparation)."""
    return timeout_seconds + launch_grace_seconds


def is_past(now: datetime.datetime, since: str | None, seconds: float) -> bool:
    """True when `seconds` have passed since the time `since` (False when `since` is unknown)."""
    start = parse_time(since)
    return start is not None and now >= seconds_after(start, seconds)
