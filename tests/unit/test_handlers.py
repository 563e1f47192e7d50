"""The Kopf handlers' filters: a finished job costs no handler call (issue 21, item 4).

Kopf evaluates a handler's `when` filter in its event loop, before it hands the call to a thread;
an object the filter refuses costs that evaluation and nothing else. Every handler Kopf holds for
SandboxJobs must refuse a final job, so that 1,000 finished jobs cost no resume at startup, no
timer and no call per watch event (tests/api/test_handlers.py shows it under Kopf;
docs/bench.md measures it). A handler added later without such a filter fails here.
"""

from __future__ import annotations

import kopf
import pytest

from safeagent import handlers
from safeagent.metrics import Metrics
from safeagent.models import TERMINAL_JOB_PHASES, ApprovalPhase, JobPhase


def _handlers_for(plural: str) -> list:
    registry = kopf.get_default_registry()
    found = []
    for kind in (registry._changing, registry._watching, registry._spawning):
        found += [handler for handler in kind._handlers if handler.selector.any_name == plural]
    return found


def _called_for(handler, status: dict, name: str = "job") -> bool:
    return handler.when is None or bool(handler.when(status=status, namespace="ns", name=name))


@pytest.mark.parametrize("phase", sorted(phase.value for phase in TERMINAL_JOB_PHASES))
def test_no_sandboxjob_handler_is_called_for_a_final_job(phase):
    job_handlers = _handlers_for("sandboxjobs")
    assert {handler.fn.__name__ for handler in job_handlers} == {"job_changed", "job_tick", "job_seen"}
    called = [handler.id for handler in job_handlers if _called_for(handler, {"phase": phase})]
    assert called == [], f"called for a {phase} job"


@pytest.mark.parametrize("phase", [None, *(phase.value for phase in JobPhase if phase not in TERMINAL_JOB_PHASES)])
def test_every_sandboxjob_handler_is_called_for_an_active_job(phase):
    status = {"phase": phase} if phase else {}
    assert all(_called_for(handler, status) for handler in _handlers_for("sandboxjobs"))


def test_the_event_that_ends_a_counted_job_still_reaches_the_gauge(monkeypatch):
    """job_seen keeps the active-jobs gauge: the final event of a job it counts must reach it (and
    the ones after it must not)."""
    metrics = Metrics()
    monkeypatch.setattr(handlers, "METRICS", metrics)
    (seen,) = [handler for handler in _handlers_for("sandboxjobs") if handler.fn.__name__ == "job_seen"]
    metrics.track_job("ns", "job", "Running")
    assert _called_for(seen, {"phase": "Succeeded"})
    metrics.track_job("ns", "job", "Succeeded")
    assert not _called_for(seen, {"phase": "Succeeded"})


def test_a_decided_approval_is_neither_resumed_nor_taken_for_new():
    approval_handlers = [handler for handler in _handlers_for("approvals") if handler.reason is not kopf.Reason.UPDATE]
    assert approval_handlers
    for phase in (ApprovalPhase.APPROVED, ApprovalPhase.DENIED, ApprovalPhase.EXPIRED):
        assert not [handler.id for handler in approval_handlers if _called_for(handler, {"phase": phase.value})]
    for status in ({}, {"phase": ApprovalPhase.PENDING.value}):
        assert all(_called_for(handler, status) for handler in approval_handlers)
