"""Lifecycle arithmetic (safeagent.reconcile.deadlines): when a job gives up, and whether a time is past. Pure."""

from __future__ import annotations

import datetime

import pytest

from safeagent.models import JobPhase, SandboxJobStatus
from safeagent.reconcile.deadlines import give_up_at, is_past

T0 = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (SandboxJobStatus(), T0 + datetime.timedelta(seconds=100 + 2 * 10)),  # from creation
        (SandboxJobStatus(decidedAt="2025-01-01T12:01:00Z"), T0 + datetime.timedelta(seconds=60 + 120)),
        (SandboxJobStatus(phase=JobPhase.AWAITING_APPROVAL), None),  # waiting for a human: no deadline
        (SandboxJobStatus(phase=JobPhase.AWAITING_APPROVAL, approvedAt="2025-01-01T12:00:30Z"),
         T0 + datetime.timedelta(seconds=30 + 120)),
        (SandboxJobStatus(startTime="2025-01-01T12:02:00Z", decidedAt="2025-01-01T12:01:00Z"),
         T0 + datetime.timedelta(seconds=120 + 120)),
    ],
)
def test_give_up_deadline(status, expected):
    assert give_up_at(status, "2025-01-01T12:00:00Z", 100, 10) == expected


def test_is_past():
    assert not is_past(T0, None, 0)
    assert not is_past(T0, "2025-01-01T11:59:01Z", 60)
    assert is_past(T0, "2025-01-01T11:59:00Z", 60)
