"""Typed status updates (safeagent.reconcile.status): pure."""

from __future__ import annotations

import datetime

import pytest
from pydantic import ValidationError

from safeagent.models import Condition, JobLimits, JobPhase, SandboxJobStatus
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
