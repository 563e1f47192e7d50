"""What every step is given: the API, the configuration, the policy, the audit trail and a clock."""

from __future__ import annotations

import dataclasses
import datetime
import threading
from collections.abc import Callable
from typing import Any

from safeagent.audit import Auditor
from safeagent.config import OperatorConfig
from safeagent.kube import Kube
from safeagent.models import Approval


def default_decided_by(approval: Approval) -> str:
    """Who decided an Approval. Today: the free-text spec.reviewer, else "unknown".

    This is not authenticated. The slot is a function so that an admission webhook (which sees
    the request's userInfo and could stamp an annotation) can replace it without touching the
    reconcile logic.
    """
    return approval.spec.reviewer.strip() or "unknown"


def no_pending_pods() -> int:
    return 0


class PendingPods:
    """The operator's sandbox Pods that have not finished, as its Pod watch last saw them.

    Fed by the watch (safeagent.handlers) and read at launch: each unfinished Pod lengthens the
    next Pod's wait for its egress proof (EgressCheckConfig.deadline_for), because an enforcer
    programs a burst's Pods one sync after another. Thread-safe; rebuilt from the watch's first
    listing after a restart.
    """

    FINISHED = frozenset({"Succeeded", "Failed"})

    def __init__(self) -> None:
        self._pods: set[str] = set()
        self._lock = threading.Lock()

    def seen(self, uid: str, phase: str | None, deleted: bool = False) -> None:
        with self._lock:
            if deleted or phase in self.FINISHED:
                self._pods.discard(uid)
            else:
                self._pods.add(uid)

    def count(self) -> int:
        with self._lock:
            return len(self._pods)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclasses.dataclass
class Context:
    kube: Kube
    config: OperatorConfig
    policy: Callable[[], Any]  # returns the current Policy; raises on an unusable policy file
    decide: Callable[[Any, str], Any]  # safeagent.policy.decide
    auditor: Auditor
    now: Callable[[], datetime.datetime] = utc_now
    decided_by: Callable[[Approval], str] = default_decided_by
    pending_pods: Callable[[], int] = no_pending_pods  # unfinished sandbox Pods (PendingPods.count)
