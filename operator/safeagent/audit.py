"""The audit trail: one JSON line per state change, plus a Kubernetes Event with a stable reason.

The JSON line is the record (Events are garbage-collected after about an hour); every line has
exactly the keys of `AuditRecord`, null where a key does not apply, so log pipelines can rely on
one schema. Lines go to the `safeagent.audit` logger, which `configure_logging` writes to stdout
as bare JSON. A record is written after the state change it describes was stored in the API, so
the log never claims something the cluster does not show; a crash in between loses that line.
One exception: `JobExpired` is written *before* the retention sweep deletes the job, because after
the deletion nothing is left to retry from: a crash in between leaves the job, and the next sweep
writes the line again (a duplicate, never a gap in the trail).

Event reasons are CamelCase and stable; tests and alerting may match on them.

Observers (the Prometheus metrics, safeagent.metrics) are called with each record after its line
was written; one that fails is logged and never stops the record or the reconcile.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from safeagent.kube import Kube, KubeError

AUDIT_LOGGER = "safeagent.audit"
SCHEMA = "safeagent.ca/audit/v1"
# Diagnostics of this module: not a child of AUDIT_LOGGER, whose lines go to stdout as the record.
log = logging.getLogger("safeagent.auditor")

# Stable Event reasons; (reason, is_warning).
POLICY_ALLOWED = "PolicyAllowed"
POLICY_DENIED = "PolicyDenied"
APPROVAL_REQUESTED = "ApprovalRequested"
APPROVAL_APPROVED = "ApprovalApproved"
APPROVAL_DENIED = "ApprovalDenied"
APPROVAL_EXPIRED = "ApprovalExpired"
APPROVAL_MISMATCH = "ApprovalMismatch"
SOURCE_REJECTED = "SourceRejected"
SOURCE_FORBIDDEN = "SourceForbidden"
REQUESTER_UNKNOWN = "RequesterUnknown"
SANDBOX_LAUNCHED = "SandboxLaunched"
SANDBOX_WAITING = "SandboxPodWaiting"
COMMAND_FINISHED = "CommandFinished"
COMMAND_FAILED = "CommandFailed"
POLICY_VIOLATION = "PolicyViolation"
TIMED_OUT = "TimedOut"
JOB_FAILED = "JobFailed"
INVALID_SPEC = "InvalidSpec"
EGRESS_NOT_ENFORCED = "EgressNotEnforced"
JOB_EXPIRED = "JobExpired"

WARNING_REASONS = frozenset(
    {
        POLICY_DENIED,
        APPROVAL_DENIED,
        APPROVAL_EXPIRED,
        APPROVAL_MISMATCH,
        SOURCE_REJECTED,
        SOURCE_FORBIDDEN,
        REQUESTER_UNKNOWN,
        SANDBOX_WAITING,
        COMMAND_FAILED,
        POLICY_VIOLATION,
        TIMED_OUT,
        JOB_FAILED,
        INVALID_SPEC,
        EGRESS_NOT_ENFORCED,
    }
)


@dataclasses.dataclass(frozen=True)
class AuditRecord:
    event: str
    namespace: str
    kind: str
    name: str
    uid: str
    requester: str | None = None
    phase: str | None = None
    job: str | None = None
    argv: list[str] | None = None
    decision: str | None = None
    reason: str | None = None
    message: str | None = None
    profile: str | None = None
    approval: str | None = None
    decidedBy: str | None = None
    pod: str | None = None
    exitCode: int | None = None
    stdoutBytes: int | None = None
    stderrBytes: int | None = None
    stdoutTruncated: bool | None = None
    stderrTruncated: bool | None = None
    changedFiles: int | None = None
    egressCheckMs: int | None = None
    egressProof: str | None = None
    time: str = ""
    schema: str = SCHEMA

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))


FIELDS = tuple(field.name for field in dataclasses.fields(AuditRecord))


Observer = Callable[[AuditRecord, dict[str, Any]], None]


def requester_of(involved: dict[str, Any]) -> str | None:
    """Who submitted the job a SandboxJob or Approval is about, as the cluster recorded it."""
    requester = (involved.get("spec") or {}).get("requester") or {}
    name = requester.get("username") if isinstance(requester, dict) else None
    return name if isinstance(name, str) and name else None


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Auditor:
    """Writes audit lines and posts Events; an Event that cannot be posted is logged, not raised."""

    def __init__(
        self, kube: Kube, logger: logging.Logger | None = None, observers: Sequence[Observer] = ()
    ) -> None:
        self._kube = kube
        self._log = logger or logging.getLogger(AUDIT_LOGGER)
        self._observers = tuple(observers)

    def record(self, involved: dict[str, Any], event: str, **fields: Any) -> AuditRecord:
        metadata = involved.get("metadata", {})
        record = AuditRecord(
            event=event,
            namespace=metadata.get("namespace", ""),
            kind=involved.get("kind", ""),
            name=metadata.get("name", ""),
            uid=metadata.get("uid", ""),
            requester=requester_of(involved),
            time=_utc_now(),
            **fields,
        )
        self._log.info(record.to_json())
        message = record.message or event
        if record.requester:
            message = f"{message} (requester {record.requester})"
        try:
            self._kube.post_event(involved, event, message, warning=event in WARNING_REASONS)
        except KubeError as error:
            log.warning("event-not-posted", extra={"reason": event, "error": str(error)})
        for observe in self._observers:
            try:
                observe(record, involved)
            except Exception:  # an observer's bug must not cost the record or the reconcile
                log.exception("audit observer failed", extra={"event": event})
        return record


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time of the line (a test may have replaced it)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """Audit lines go to stdout as bare JSON; operator diagnostics stay on stderr."""
    audit = logging.getLogger(AUDIT_LOGGER)
    if not any(isinstance(h, _StdoutHandler) for h in audit.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        audit.addHandler(handler)
    audit.setLevel(level)
    audit.propagate = False
