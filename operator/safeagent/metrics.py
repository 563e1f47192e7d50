"""Prometheus metrics of the operator, derived from the streams that already exist.

Nothing in the reconcile logic counts anything. Every state change already goes through
`audit.Auditor.record` (one JSON line and one Event, with a stable event name), so decisions,
final phases and most stage times are read from that stream by `Metrics.observe_record`. What
the audit stream cannot see comes from three other places, each one call in handlers.py or
kube.py:

  - sandbox Pod events (`observe_sandbox_pod`): when the runner container started and exited,
    from the Pod's own timestamps, for the "launch" and "run" stages;
  - SandboxJob watch events (`track_job`): the active-jobs gauge by phase, rebuilt by Kopf's
    initial listing after a restart;
  - the API client (`observe_api_call`), the handlers' error mapping (`observe_reconcile_error`)
    and each handler call (`observe_handler`: how much work final objects still cause).

Label values are bounded: reasons are stable codes, but one that does not look like a code (or
one past the first MAX_REASONS distinct ones) is counted as "other", so a surprise cannot blow
up the number of series. No label holds a job, Pod or namespace name.

Timestamps from the API server and the kubelet have one-second resolution; stage times built on
them are accurate to about a second, which the histogram buckets allow for. A negative duration
(clocks apart) is counted as zero. The metrics live in memory: an operator restart starts the
counters again from zero, which Prometheus' rate() expects.
"""

from __future__ import annotations

import collections
import datetime
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from safeagent import audit
from safeagent.models import TERMINAL_JOB_PHASES, JobPhase
from safeagent.sandbox.contract import EGRESS_PROOFS

log = logging.getLogger(__name__)

# Buckets in seconds: a decision takes well under a second, a run up to an hour, an approval a day.
STAGE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
# The proof takes milliseconds where enforcement is in place; seconds to minutes behind a lagging enforcer.
EGRESS_PROOF_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 240)
EGRESS_OUTCOMES = (*EGRESS_PROOFS, "not_proven")
STAGES = ("decision", "approval", "launch", "run", "result", "total")
MAX_REASONS = 200
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_FINAL_PHASES = frozenset(phase.value for phase in TERMINAL_JOB_PHASES)
_PHASES = frozenset(phase.value for phase in JobPhase)
_VERDICT_OF_EVENT = {
    audit.POLICY_ALLOWED: "allow",
    audit.POLICY_DENIED: "deny",
    audit.APPROVAL_REQUESTED: "require_approval",
}
_VERDICTS = frozenset(_VERDICT_OF_EVENT.values())
# The policy's reason code for the verdicts that have only one (safeagent.policy.decision.REASONS).
_ONLY_REASON = {"allow": "allowed", "require_approval": "approval_required"}
_APPROVAL_ENDS = frozenset({audit.APPROVAL_APPROVED, audit.APPROVAL_DENIED, audit.APPROVAL_EXPIRED})
_RUNNER_CONTAINER = "runner"  # builders.RUNNER_CONTAINER; not imported to keep builders out
_JOB_UID_LABEL = "safeagent.ca/job-uid"  # builders.LABEL_JOB_UID
# The Kopf handlers of safeagent.handlers, by function name (a fixed set of label values).
HANDLERS = ("job_changed", "job_tick", "job_seen", "sandbox_pod_event", "approval_changed")
_REMEMBERED = 4096  # Pods / jobs remembered to observe each stage once


def parse_timestamp(value: object) -> datetime.datetime | None:
    """An RFC 3339 time from the API ("2026-01-02T03:04:05Z", with or without fraction)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _seconds(start: datetime.datetime | None, end: datetime.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


class _Remembered:
    """A bounded set of keys (oldest forgotten first), thread-safe."""

    def __init__(self, size: int = _REMEMBERED) -> None:
        self._keys: collections.OrderedDict[object, object] = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, key: object, value: object = True) -> bool:
        """Remember `key`; False if it was already there."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = value
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True

    def pop(self, key: object) -> object | None:
        with self._lock:
            return self._keys.pop(key, None)


class _ActiveJobs(Collector):
    """safeagent_active_jobs{phase}: jobs not in a final phase, as last seen on the watch."""

    def __init__(self) -> None:
        self._phases: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def holds(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._phases

    def set(self, key: tuple[str, str], phase: str | None) -> None:
        with self._lock:
            if phase is None:
                self._phases.pop(key, None)
            else:
                self._phases[key] = phase

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts = collections.Counter(self._phases.values())
        family = GaugeMetricFamily(
            "safeagent_active_jobs",
            "SandboxJobs not yet in a final phase, by phase (New: not decided yet).",
            labels=["phase"],
        )
        for phase in ("New", JobPhase.PENDING.value, JobPhase.AWAITING_APPROVAL.value, JobPhase.RUNNING.value):
            family.add_metric([phase], counts.pop(phase, 0))
        for phase, count in sorted(counts.items()):
            family.add_metric([phase], count)
        yield family


class Metrics:
    """Every metric of the operator, in a registry of its own (tests make as many as they like)."""

    def __init__(self, registry: CollectorRegistry | None = None, process_metrics: bool = False) -> None:
        self.registry = registry or CollectorRegistry()
        if process_metrics:
            from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        self.decisions = Counter(
            "safeagent_decisions", "Policy decisions on SandboxJobs, by verdict and reason code.",
            ["verdict", "reason"], registry=self.registry,
        )
        self.jobs_finished = Counter(
            "safeagent_jobs_finished", "SandboxJobs that reached a final phase, by phase and reason.",
            ["phase", "reason"], registry=self.registry,
        )
        self.audit_events = Counter(
            "safeagent_audit_events", "Audit records written (each also an Event), by kind and event.",
            ["kind", "event"], registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "safeagent_stage_duration_seconds",
            "Time a SandboxJob spent in each stage: decision, approval, launch, run, result, total.",
            ["stage"], buckets=STAGE_BUCKETS, registry=self.registry,
        )
        self.egress_proof_seconds = Histogram(
            "safeagent_egress_proof_wait_seconds",
            "Time a sandbox Pod waited for proof that its egress is filtered, by outcome "
            "(refusal or silence: what proved it; not_proven: it gave up and ran nothing).",
            ["outcome"], buckets=EGRESS_PROOF_BUCKETS, registry=self.registry,
        )
        self.api_requests = Counter(
            "safeagent_kube_requests", "Kubernetes API requests made by safeagent's own code.",
            ["verb", "resource"], registry=self.registry,
        )
        self.api_errors = Counter(
            "safeagent_kube_request_errors",
            "Failed Kubernetes API requests, by error (NotFound and AlreadyExists are often expected).",
            ["verb", "resource", "error"], registry=self.registry,
        )
        self.reconcile_retries = Counter(
            "safeagent_reconcile_retries",
            "Reconciles that hit a transient error and will be retried, by resource kind.",
            ["kind"], registry=self.registry,
        )
        self.reconcile_failures = Counter(
            "safeagent_reconcile_failures",
            "Reconciles that failed for good (never retried), by resource kind.",
            ["kind"], registry=self.registry,
        )
        self.handler_calls = Counter(
            "safeagent_handler_calls",
            "Calls of the operator's Kopf handlers, by handler and by whether the object they were "
            "called for was already final (a final job, a decided Approval, a finished Pod).",
            ["handler", "final"], registry=self.registry,
        )
        self.memory_returned = Counter(
            "safeagent_memory_returned_bytes",
            "Resident bytes the periodic malloc_trim gave back to the system (safeagent.memory).",
            registry=self.registry,
        )
        self.active_jobs = _ActiveJobs()
        self.registry.register(self.active_jobs)
        for stage in STAGES:
            self.stage_seconds.labels(stage)
        for outcome in EGRESS_OUTCOMES:
            self.egress_proof_seconds.labels(outcome)
        for handler in HANDLERS:
            for final in ("false", "true"):
                self.handler_calls.labels(handler, final)
        for kind in ("SandboxJob", "Approval"):
            self.reconcile_retries.labels(kind)
            self.reconcile_failures.labels(kind)
        self._reasons: set[str] = set()
        self._reasons_lock = threading.Lock()
        self._decided = _Remembered()
        self._launch_seen = _Remembered()
        self._run_seen = _Remembered()
        self._runner_finished = _Remembered()

    # ------------------------------------------------------------------ labels

    def _reason(self, value: object) -> str:
        if not isinstance(value, str) or not _CODE.match(value):
            return "other" if value else "none"
        with self._reasons_lock:
            if value in self._reasons:
                return value
            if len(self._reasons) >= MAX_REASONS:
                return "other"
            self._reasons.add(value)
            return value

    # ------------------------------------------------------------- audit stream

    def observe_record(self, record: audit.AuditRecord, involved: dict[str, Any]) -> None:
        """Count one audit record; called by the Auditor after the line was written."""
        kind = record.kind if record.kind in ("SandboxJob", "Approval") else "other"
        event = record.event if _CODE.match(record.event) else "other"  # a fixed set of names
        self.audit_events.labels(kind, event).inc()
        if record.kind != "SandboxJob":
            return  # an Approval's own records repeat what its job's records say
        end = parse_timestamp(record.time)
        metadata = involved.get("metadata") or {}
        status = involved.get("status") or {}
        created = parse_timestamp(metadata.get("creationTimestamp"))
        verdict = _VERDICT_OF_EVENT.get(record.event)
        if verdict is None and record.phase in _FINAL_PHASES and not status.get("decidedAt"):
            # Decided and ended in one reconcile without a decision event of its own (an Approval
            # that was decided before it was requested): this record carries the decision.
            verdict = record.decision if record.decision in _VERDICTS else None
        if verdict is not None and self._decided.add(record.uid):
            reason = record.reason if record.event in _VERDICT_OF_EVENT else _ONLY_REASON.get(verdict)
            self.decisions.labels(verdict, self._reason(reason)).inc()
            self._observe("decision", _seconds(created, end))
        if record.event in _APPROVAL_ENDS:
            self._observe("approval", _seconds(parse_timestamp(status.get("approvalRequestedAt")), end))
        if record.phase in _FINAL_PHASES:
            self.jobs_finished.labels(record.phase, self._reason(record.reason or record.event)).inc()
            if record.egressCheckMs is not None:
                outcome = record.egressProof if record.egressProof in EGRESS_OUTCOMES else "not_proven"
                self.egress_proof_seconds.labels(outcome).observe(max(0, record.egressCheckMs) / 1000)
            self._observe("total", _seconds(created, end))
            finished = self._runner_finished.pop(record.uid)
            if isinstance(finished, datetime.datetime):
                self._observe("result", _seconds(finished, end))

    def _observe(self, stage: str, seconds: float | None) -> None:
        if seconds is not None:
            self.stage_seconds.labels(stage).observe(seconds)

    # ------------------------------------------------------------ other streams

    def observe_sandbox_pod(self, pod: dict[str, Any]) -> None:
        """Launch and run times of a sandbox Pod, once each per Pod, from its own timestamps."""
        metadata = pod.get("metadata") or {}
        uid = metadata.get("uid")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        runner = next((entry for entry in statuses if entry.get("name") == _RUNNER_CONTAINER), None)
        if not uid or runner is None:
            return
        state = runner.get("state") or {}
        current = state.get("running") or state.get("terminated") or {}
        started = parse_timestamp(current.get("startedAt"))
        if started is not None and self._launch_seen.add(uid):
            self._observe("launch", _seconds(parse_timestamp(metadata.get("creationTimestamp")), started))
        terminated = state.get("terminated") or {}
        finished = parse_timestamp(terminated.get("finishedAt"))
        if finished is not None and self._run_seen.add(uid):
            self._observe("run", _seconds(parse_timestamp(terminated.get("startedAt")), finished))
            job_uid = (metadata.get("labels") or {}).get(_JOB_UID_LABEL)
            if job_uid:
                self._runner_finished.add(job_uid, finished)

    def track_job(self, namespace: str, name: str, phase: object, deleted: bool = False) -> None:
        """The job as just seen on the watch: active in `phase`, or gone from the gauge."""
        key = (namespace, name)
        if deleted or phase in _FINAL_PHASES:
            self.active_jobs.set(key, None)
        elif not phase:
            self.active_jobs.set(key, "New")
        else:
            self.active_jobs.set(key, phase if phase in _PHASES else "other")

    def tracks_job(self, namespace: str, name: str) -> bool:
        """Whether the active-jobs gauge counts this job (its final or deleted event must still come)."""
        return self.active_jobs.holds((namespace, name))

    def observe_handler(self, handler: str, final: bool) -> None:
        """One call of a Kopf handler; `final`: for an object with nothing left to do."""
        self.handler_calls.labels(handler if handler in HANDLERS else "other", "true" if final else "false").inc()

    def observe_memory_returned(self, returned: int) -> None:
        self.memory_returned.inc(returned)

    def observe_api_call(self, verb: str, resource: str, error: Exception | None) -> None:
        self.api_requests.labels(verb, resource).inc()
        if error is not None:
            self.api_errors.labels(verb, resource, type(error).__name__).inc()

    def observe_reconcile_error(self, kind: str, retried: bool) -> None:
        (self.reconcile_retries if retried else self.reconcile_failures).labels(kind).inc()


def serve(metrics: Metrics, port: int, address: str = "0.0.0.0") -> Any:
    """Serve /metrics of `metrics` on address:port in a daemon thread; returns the server handles."""
    return start_http_server(port, addr=address, registry=metrics.registry)


# The operator's metrics. Tests build their own `Metrics()` instead.
METRICS = Metrics(process_metrics=True)
