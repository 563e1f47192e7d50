"""What every step is given: the API, the configuration, the policy, the audit trail and a clock."""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
from collections.abc import Callable

from safeagent.audit import Auditor
from safeagent.config import OperatorConfig
from safeagent.kube import Kube
from safeagent.policy import Decision, Policy
from safeagent.reconcile.passes import PodChanges
from safeagent.reconcile.pool import WarmPool
from safeagent.reconcile.uids import SandboxUids


class PendingPods:
    """The operator's sandbox Pods that have not finished, as it launched them and as its Pod
    watch last saw them.

    Read at launch: each unfinished Pod lengthens the next Pod's wait for its egress proof
    (EgressCheckConfig.deadline_for), because an enforcer programs a burst's Pods one sync after
    another. A Pod counts from its launch (before the watch reports it, so a burst's own Pods
    count at once) until the watch sees it finish or go, or the operator deletes it; a Pod first
    seen longer than `horizon` seconds ago no longer counts (it is past any wait for proof, and a
    deletion the watch missed cannot inflate the count for ever). Thread-safe; rebuilt from the
    watch's first listing after a restart.
    """

    FINISHED = frozenset({"Succeeded", "Failed"})

    def __init__(self, horizon: float = 900.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._pods: dict[str, float] = {}
        self._lock = threading.Lock()
        self._horizon, self._clock = horizon, clock

    def seen(self, uid: str, phase: str | None, deleted: bool = False) -> None:
        with self._lock:
            if deleted or phase in self.FINISHED:
                self._pods.pop(uid, None)
            else:
                self._pods.setdefault(uid, self._clock())

    def count(self) -> int:
        with self._lock:
            oldest = self._clock() - self._horizon
            self._pods = {uid: first for uid, first in self._pods.items() if first >= oldest}
            return len(self._pods)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclasses.dataclass
class Context:
    kube: Kube
    config: OperatorConfig
    policy: Callable[[], Policy]  # the current policy; raises on an unusable policy file
    decide: Callable[[Policy, str], Decision]  # safeagent.policy.decide
    auditor: Auditor
    now: Callable[[], datetime.datetime] = utc_now
    pending: PendingPods = dataclasses.field(default_factory=PendingPods)  # unfinished sandbox Pods
    uids: SandboxUids = dataclasses.field(default_factory=SandboxUids)  # the UIDs those Pods hold
    warm: WarmPool = dataclasses.field(default_factory=WarmPool)  # the warm Pods (pool.py, warm.py)
    # Reconcile a job now, from another thread (namespace, name, UID); None: only the watch and timer do.
    nudge: Callable[[str, str, str | None], object] | None = None
    pod_changes: PodChanges = dataclasses.field(default_factory=PodChanges)  # which Pod reports ask for a pass
