"""Which reconcile passes to run: one at a time per job, none that could not change anything.

Every handler asks for a pass of a job (its create, a Pod event, an Approval, the timer), and a
pass is a fresh GET of the job plus what its step reads. Under a burst those asks pile up: a Pod
reports five to eight changes on its way, the timer ticks every few seconds, and each ask used to
hold one of Kopf's few worker threads, most of them waiting on the job's lock while another thread
ran the same job's pass. Profiled under a burst of 50 jobs (docs/bench.md), that queue was where
a job waited before its Pod was created, and five of a job's eight passes found it already final.

So, per job (namespace, name), as a work queue keeps it:
  - one pass at a time. An ask while a pass runs returns at once and marks the job *again*; the
    thread running the pass runs one more, from a fresh GET, when it ends. Nothing is missed (the
    last pass starts after the last ask) and no worker waits on another's pass;
  - a job whose final pass ended (final phase stored, its Pods deleted) is not passed again for
    the same object (UID): what is left of its Pods only reports going away. The memory is the
    process's: after a restart a final job gets one pass more, which finds nothing to do;
  - a periodic ask (`quiet_for`) is skipped while the job's last pass ended less than that many
    seconds ago: the timer is a safety net for a job nothing else moves (deadlines, a missed
    event, a failed pass, which clears the last end), not a second poll of a job whose Pod
    reports. handlers.py asks with a longer interval while the Pod watch follows the job's
    unfinished Pod (`PodChanges.follows`): under a burst a Pod waits tens of seconds for a node,
    and a tick every 5 s read the job, the Pod and the source each time.

And of a sandbox Pod's reports (`PodChanges`), only those that change what a pass reads of it ask
for one: the first seen, started, finished (or its preparation step failed), gone, and a change of
the trouble its status shows (trouble.py, without its Events); the Pod's creation is its first
report, so the watch's echo of it asks for nothing. A kubelet reports a Pod five to eight times on
its way, most of them (scheduled, a container created, Pending -> Running) nothing a pass acts on;
what only a Pod's Events or the clock tell (volume trouble, deadlines) is the timer's to find, as
before.

A failed pass ends the loop and propagates to the thread that ran it (Kopf retries it, or the
timer does); a job's *again* mark set meanwhile is dropped with it, the retry covering it.
Thread-safe. No Kopf in here: handlers.py calls `run`.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from safeagent.reconcile.trouble import has_started, pod_trouble, runner_running

JobKey = tuple[str, str]  # (namespace, name)
Pass = Callable[[str | None], str | None]  # (job UID or None) -> the phase it left the job in, None: gone


@dataclasses.dataclass
class _Job:
    running: bool = False
    again: bool = False
    uid: str | None = None  # the UID the next pass is for (the latest ask's)
    ended: float | None = None  # when the last pass ended without an error (the clock's time)


class JobPasses:
    """One pass at a time per job, asks during a pass folded into one more (see the module)."""

    def __init__(self, final_phases: frozenset[str], remember_final: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._final_phases = final_phases
        self._jobs: dict[JobKey, _Job] = {}
        self._final: collections.OrderedDict[str, None] = collections.OrderedDict()  # UIDs, oldest first
        self._remember_final = remember_final
        self._clock = clock
        self._lock = threading.Lock()

    def is_final(self, uid: str | None) -> bool:
        """The job object `uid` had its final pass here (its Pods are deleted)."""
        with self._lock:
            return uid is not None and uid in self._final

    def run(self, key: JobKey, uid: str | None, one_pass: Pass, quiet_for: float = 0.0) -> bool:
        """Run `one_pass(uid)` now, and again while asks come in during it; False: it was not run
        here (a pass is running and will run once more, the job is final, or it is quiet)."""
        with self._lock:
            if uid is not None and uid in self._final:
                return False
            job = self._jobs.setdefault(key, _Job())
            if job.running:
                job.again = True
                job.uid = uid if uid is not None else job.uid
                return False
            if quiet_for and job.ended is not None and self._clock() - job.ended < quiet_for:
                return False
            job.running, job.again, job.uid = True, False, uid
        try:
            while True:
                ran_for = job.uid
                phase = one_pass(ran_for)
                with self._lock:
                    job.ended = self._clock()
                    final = phase in self._final_phases
                    if final and ran_for is not None:
                        self._remember(ran_for)
                    if job.again and not (job.uid is not None and job.uid in self._final):
                        job.again = False  # asked for during the pass: one more, from a fresh GET
                        continue
                    job.running = job.again = False
                    if phase is None or final:
                        self._jobs.pop(key, None)
                    return True
        except BaseException:
            with self._lock:
                job.running = job.again = False
                job.ended = None  # not an end: the timer's next ask runs, whatever the interval
            raise

    def _remember(self, uid: str) -> None:
        self._final[uid] = None
        self._final.move_to_end(uid)
        while len(self._final) > self._remember_final:
            self._final.popitem(last=False)

    def active(self) -> int:
        """How many jobs have a pass running (for tests and metrics)."""
        with self._lock:
            return sum(1 for job in self._jobs.values() if job.running)


# gone, started, finished, preparation failed, trouble, the runner's container running
PodState = tuple[bool, bool, bool, bool, str | None, bool]


def pod_state(pod: dict[str, Any], deleted: bool = False) -> PodState:
    """What a pass reads of a sandbox Pod, as one value: a report that leaves it equal changes
    nothing a pass would do."""
    status = pod.get("status") or {}
    gone = deleted or bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    failed_step = any(
        ((entry.get("state") or {}).get("terminated") or {}).get("exitCode") not in (0, None)
        for entry in status.get("initContainerStatuses") or []
    )
    trouble = pod_trouble(pod)
    # The runner's start asks for a pass: from then on its log is followed for the final record
    # (reconcile.observe), which ends the job a second or more before the kubelet reports its end.
    return (gone, has_started(pod), status.get("phase") in ("Succeeded", "Failed"), failed_step,
            trouble.reason if trouble else None, runner_running(pod))


class PodChanges:
    """The last state a pass was asked for, per sandbox Pod (by UID); thread-safe."""

    def __init__(self) -> None:
        self._states: dict[str, PodState] = {}
        self._lock = threading.Lock()

    def worth_a_pass(self, pod: dict[str, Any], deleted: bool = False) -> bool:
        """True for a Pod's first report and for each that changes its `pod_state`; a deleted Pod
        is forgotten. The pass that creates a Pod calls it with the create's answer, so that the
        watch's first report of the same Pod asks for nothing."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        state = pod_state(pod, deleted)
        with self._lock:
            if deleted:
                self._states.pop(uid, None)
                return True
            if not uid or self._states.get(uid) == state:
                return not uid
            self._states[uid] = state
            return True

    def follows(self, uid: str | None) -> bool:
        """The watch has reported the Pod `uid` (or its creating pass recorded it) and it has
        neither finished nor gone: its next change will ask for a pass by itself."""
        with self._lock:
            state = self._states.get(uid or "")
        return state is not None and not (state[0] or state[2] or state[3])

    def tracked(self) -> set[str]:
        """The UIDs of the Pods whose state is kept (seen and not yet deleted)."""
        with self._lock:
            return set(self._states)
