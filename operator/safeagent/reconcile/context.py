"""What every step is given: the API, the configuration, the policy, the audit trail and a clock."""

from __future__ import annotations

import dataclasses
import datetime
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
