"""reconcile/passes.py: one pass at a time per job, asks during a pass folded into one more, none for
a final job, the timer's only for a quiet job; a Pod's reports ask for a pass only when they change
what a pass reads."""

from __future__ import annotations

import threading

import pytest

from safeagent.reconcile.passes import JobPasses, PodChanges

FINAL = frozenset({"Succeeded", "Failed"})
KEY = ("ns", "job")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_ask_during_a_pass_returns_at_once_and_is_one_more_pass_by_the_running_thread():
    passes = JobPasses(FINAL)
    inside, release = threading.Event(), threading.Event()
    ran: list[tuple[str, str | None]] = []

    def slow_pass(uid):
        ran.append((threading.current_thread().name, uid))
        if len(ran) == 1:
            inside.set()
            release.wait(5)
        return "Running"

    first = threading.Thread(target=passes.run, args=(KEY, "u1", slow_pass), name="first")
    first.start()
    assert inside.wait(5)
    # Three asks while the first pass runs: none runs a pass of its own, none waits.
    assert [passes.run(KEY, "u1", slow_pass) for _ in range(3)] == [False, False, False]
    assert passes.active() == 1
    release.set()
    first.join(5)
    assert ran == [("first", "u1"), ("first", "u1")], "the three asks became one more pass, on the running thread"
    assert passes.active() == 0


def test_a_final_job_gets_no_more_passes_but_a_new_object_under_its_name_does():
    passes = JobPasses(FINAL)
    calls: list[str | None] = []

    def to_final(uid):
        calls.append(uid)
        return "Succeeded"

    assert passes.run(KEY, "u1", to_final)
    assert not passes.run(KEY, "u1", to_final) and passes.is_final("u1")
    assert passes.run(KEY, "u2", to_final), "another object under the same name"
    assert calls == ["u1", "u2"]


def test_a_pass_that_fails_is_not_an_end_and_the_next_ask_runs_again():
    clock = Clock()
    passes = JobPasses(FINAL, clock=clock)

    def failing(uid):
        raise RuntimeError("api down")

    assert passes.run(KEY, "u1", lambda uid: "Running")
    with pytest.raises(RuntimeError):
        passes.run(KEY, "u1", failing)
    assert passes.active() == 0
    # A failed pass clears the last end: the timer's next ask is not skipped as "quiet".
    assert passes.run(KEY, "u1", lambda uid: "Running", quiet_for=5.0)


def test_the_timers_ask_is_skipped_while_another_pass_ended_within_the_interval():
    clock = Clock()
    passes = JobPasses(FINAL, clock=clock)
    calls: list[str | None] = []

    def one(uid):
        calls.append(uid)
        return "Running"

    assert passes.run(KEY, "u1", one)  # a Pod event's pass
    clock.now += 4.9
    assert not passes.run(KEY, "u1", one, quiet_for=5.0)
    clock.now += 0.2
    assert passes.run(KEY, "u1", one, quiet_for=5.0)
    assert passes.run(KEY, "u1", one), "an event's ask is never skipped as quiet"
    assert len(calls) == 3


def test_a_gone_job_is_forgotten_and_final_uids_are_remembered_up_to_a_bound():
    passes = JobPasses(FINAL, remember_final=2)
    assert passes.run(KEY, "u1", lambda uid: None)
    assert passes.active() == 0
    for uid in ("a", "b", "c"):
        passes.run(("ns", uid), uid, lambda uid: "Failed")
    assert not passes.is_final("a") and passes.is_final("b") and passes.is_final("c")


def _pod(phase="Pending", statuses=(), init=(), conditions=(), uid="p1", deleting=False):
    metadata = {"name": "sbx", "uid": uid}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    return {"metadata": metadata, "status": {
        "phase": phase, "containerStatuses": list(statuses), "initContainerStatuses": list(init),
        "conditions": list(conditions)}}


RUNNING = {"name": "prepare", "state": {"running": {"startedAt": "2026-12-07T00:00:00Z"}}}
DONE = {"name": "prepare", "state": {"terminated": {"exitCode": 0}}}
RUNNER_RUNNING = {"name": "runner", "state": {"running": {"startedAt": "2026-12-07T00:00:01Z"}}}
PULL_FAILED = {"name": "runner", "state": {"waiting": {"reason": "ErrImagePull", "message": "no"}}}
UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "cpu"}


def test_a_pods_reports_ask_for_a_pass_only_when_they_change_what_a_pass_reads():
    changes = PodChanges()
    reports = [
        (_pod(), True),  # first seen (or created by the pass itself)
        (_pod(), False),  # scheduled: nothing a pass reads
        (_pod(conditions=[UNSCHEDULABLE]), True),  # trouble shows
        (_pod(conditions=[{**UNSCHEDULABLE, "message": "memory"}]), False),  # its detail only
        (_pod(init=[RUNNING]), True),  # started (the trouble cleared)
        (_pod(phase="Running", init=[RUNNING]), False),  # Pending -> Running
        (_pod(phase="Running", statuses=[RUNNER_RUNNING], init=[DONE]), True),  # its log is followed from here
        (_pod(phase="Running", statuses=[RUNNER_RUNNING], init=[RUNNING]), False),
        (_pod(phase="Running", statuses=[PULL_FAILED], init=[RUNNING]), True),
        (_pod(phase="Succeeded", init=[RUNNING]), True),
        (_pod(phase="Succeeded", init=[RUNNING], deleting=True), True),
    ]
    assert [changes.worth_a_pass(pod) for pod, _ in reports] == [worth for _, worth in reports]
    assert changes.worth_a_pass(_pod(phase="Succeeded"), deleted=True)
    assert changes.worth_a_pass(_pod(phase="Succeeded")), "a deleted Pod is forgotten"


def test_the_watch_follows_a_pod_until_it_finishes_or_goes():
    changes = PodChanges()
    assert not changes.follows("p1") and not changes.follows(None)
    changes.worth_a_pass(_pod(conditions=[UNSCHEDULABLE]))
    assert changes.follows("p1")
    changes.worth_a_pass(_pod(phase="Succeeded", init=[RUNNING]))
    assert not changes.follows("p1"), "finished: only the final pass is left, the timer's job"
    changes.worth_a_pass(_pod(uid="p2", init=[RUNNING]))
    changes.worth_a_pass(_pod(uid="p2"), deleted=True)
    assert not changes.follows("p2")


def test_a_failed_preparation_step_asks_for_a_pass():
    changes = PodChanges()
    failed = {"name": "prepare", "state": {"terminated": {"exitCode": 3}}}
    assert changes.worth_a_pass(_pod(init=[RUNNING]))
    assert changes.worth_a_pass(_pod(init=[failed])), "started before and after: only the step's exit code changed"
