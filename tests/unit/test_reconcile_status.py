"""Typed status updates and lifecycle arithmetic (safeagent.reconcile.status, .deadlines): pure."""

from __future__ import annotations

import datetime

import pytest
from pydantic import ValidationError

from safeagent.models import Condition, JobLimits, JobPhase, SandboxJobStatus
from safeagent.reconcile.deadlines import give_up_at, is_past
from safeagent.reconcile.status import ConditionChange, finished, merge_conditions, patch_of, progress

T0 = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def test_only_the_fields_a_step_set_are_written():
    current = SandboxJobStatus(phase=JobPhase.PENDING, reason="allowed", argv=["ls"])
    patch, after = patch_of(current, progress(podName="p", reason="launched"), 3, "NOW")
    assert patch == {"podName": "p", "reason": "launched", "observedGeneration": 3}
    assert after.argv == ["ls"] and after.podName == "p" and after.phase is JobPhase.PENDING


def test_a_field_set_to_none_is_removed_by_the_merge_patch():
    patch, _ = patch_of(SandboxJobStatus(argv=["x"]), progress(argv=None), 1, "NOW")
    assert patch == {"argv": None, "observedGeneration": 1}


def test_a_final_update_stamps_completion_and_a_completed_condition():
    update = finished(JobPhase.FAILED, "Timeout", "too slow", "TimedOut", limits=JobLimits(maxOutputKb=1, maxFileWrites=2))
    patch, after = patch_of(SandboxJobStatus(), update, 1, "NOW")
    assert update.final and patch["completionTime"] == "NOW" and patch["phase"] == "Failed"
    assert patch["limits"] == {"maxOutputKb": 1, "maxFileWrites": 2}
    assert patch["conditions"] == [
        {"type": "Completed", "status": "False", "reason": "Timeout", "message": "too slow", "lastTransitionTime": "NOW"}
    ]
    assert after.completionTime == "NOW"


def test_a_misspelt_field_fails_at_once():
    with pytest.raises(ValidationError):
        progress(podname="p")


def test_a_condition_keeps_its_transition_time_while_its_status_holds():
    old = [Condition(type="Decided", status="True", reason="a", lastTransitionTime="T1"),
           Condition(type="Launched", status="True", reason="b", lastTransitionTime="T1")]
    merged = merge_conditions(old, (ConditionChange("Decided", "True", "c", "m"),
                                    ConditionChange("Launched", "False", "d", "m")), "T2")
    assert [(c.type, c.reason, c.lastTransitionTime) for c in merged] == [("Decided", "c", "T1"), ("Launched", "d", "T2")]


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
