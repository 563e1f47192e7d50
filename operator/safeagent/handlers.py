"""Thin Kopf glue: every handler names the object and calls safeagent.reconcile.

Run it with either

    kopf run -m safeagent.handlers --namespace safeagent-sandbox [--liveness http://0.0.0.0:8080/healthz]
    python -m safeagent.handlers [--liveness URL]     # namespaces from SAFEAGENT_NAMESPACES / config

Configuration (see safeagent.config): SAFEAGENT_CONFIG, SAFEAGENT_POLICY, SAFEAGENT_NAMESPACES.
A bad configuration or policy file at startup stops the operator with a clear message (it never
runs without a policy); later edits of the policy file are picked up on the next decision.

Handlers are sync (Kopf runs them in a thread pool of `HANDLER_THREADS`). Every handler asks for
a pass of its job through one `reconcile.JobPasses`: one pass at a time per job, an ask during a
pass folded into one more pass by the thread already running it (no thread waits on another's
pass), none for a job whose final pass ended, and a timer tick only for a job no other pass
moved for a whole interval (reconcile/passes.py says why: a burst's profile). A pass holds a lock
per (namespace, job name), which Approval handlers share, so two threads never reconcile the
same job at once. Kopf keeps its own bookkeeping in annotations prefixed safeagent.ca, never in
status (the CRD schema is structural and would prune it).

Every SandboxJob handler refuses a final job with a `when` filter, which Kopf evaluates in its
event loop before it hands a call to a thread, and an Approval already decided is neither resumed
nor taken for new: finished jobs cost no call, timer or API request (tests/unit/test_handlers.py,
docs/bench.md). A final job's Pod that outlived a killed operator is still deleted: the Pod watch's
first listing reaches it. What Kopf itself still keeps per job is the job's latest body (it does so
for every object of a resource with a timer), until the job is deleted.

Because of the timer, Kopf puts its finalizer on jobs that are not final yet and removes it when
they are; deleting an unfinished job therefore needs the operator running (or the finalizer
removed by hand after an uninstall).

Retention (safeagent.reconcile.retention) runs in a thread of its own, started at startup and
stopped at cleanup: every `retention.sweepIntervalSeconds` it sweeps each sandbox namespace once
(expired final jobs, unreferenced uploaded sources). It is no Kopf timer: a timer on final jobs
would give them Kopf's finalizer back, and there is no object per namespace to hang one on.

Every minute a thread of its own gives freed memory back to the system (safeagent.memory).

Metrics (safeagent.metrics) are fed from here and nowhere else in the control flow: the Auditor
and the API client report to them, two watch handlers pass SandboxJobs and sandbox Pods on as
they are seen, and the error mapping counts retries. `/metrics` is served when the configuration
enables it (the chart does). Diagnostics are JSON lines on stderr (safeagent.logs).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import kopf

from safeagent import audit, logs, memory, metrics, reconcile
from safeagent.builders import ANNOTATION_JOB_NAME, LABEL_JOB_UID, LABEL_SANDBOX
from safeagent.config import ENV_NAMESPACES, ConfigError, PolicyFile, load_config
from safeagent.metrics import METRICS
from safeagent.models import GROUP, TERMINAL_JOB_PHASES, VERSION, ApprovalPhase

log = logging.getLogger("safeagent.operator")

JOBS = (GROUP, VERSION, "sandboxjobs")
APPROVALS = (GROUP, VERSION, "approvals")
TIMER_INTERVAL_SECONDS = 5.0
# While the Pod watch follows a job's unfinished Pod (its changes ask for passes themselves), the
# timer acts on the job only when no pass moved it for this long: deadlines are then kept to
# within about this much, as with a lost watch event.
FOLLOWED_POD_QUIET_SECONDS = 15.0
# Handlers block on API round trips, not on CPU: Kopf's default pool (the CPU count + 4, so 6 on
# a 2-core node) held a burst's jobs back before their Pods were created (docs/bench.md).
HANDLER_THREADS = 24
HANDLER_RETRIES = 20
HANDLER_BACKOFF_SECONDS = 10.0
_TERMINAL = {phase.value for phase in TERMINAL_JOB_PHASES}


class _Runtime:
    context: reconcile.Context | None = None
    sweeper: _Sweeper | None = None
    trimmer: memory.Trimmer | None = None
    factory: Callable[[], reconcile.Context] | None = None  # None: build_context
    pending = reconcile.PendingPods()
    uids = reconcile.SandboxUids()
    warm = reconcile.WarmPool()
    filler: _Filler | None = None
    passes = reconcile.JobPasses(frozenset(_TERMINAL))
    pod_changes = reconcile.PodChanges()
    locks: ClassVar[dict[tuple[str, str], threading.Lock]] = {}
    guard = threading.Lock()


def _lock(namespace: str, job_name: str) -> threading.Lock:
    with _Runtime.guard:
        return _Runtime.locks.setdefault((namespace, job_name), threading.Lock())


def _forget(namespace: str, job_name: str) -> None:
    with _Runtime.guard:
        _Runtime.locks.pop((namespace, job_name), None)


class _Sweeper:
    """The retention sweep's thread: one sweep of every namespace, then a wait, until stopped."""

    FIRST_DELAY_SECONDS = 30.0

    def __init__(self, context: reconcile.Context) -> None:
        self.context = context
        self.retention = reconcile.Retention()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="safeagent-retention", daemon=True)

    def _loop(self) -> None:
        interval = float(self.context.config.retention.sweepIntervalSeconds)
        delay = min(self.FIRST_DELAY_SECONDS, interval)
        while not self.stop.wait(delay):
            delay = interval
            for namespace in self.context.config.namespaces:
                try:
                    self.retention.sweep(self.context, namespace)
                except Exception as error:  # the next sweep starts over; jobs never wait on this one
                    log.warning("retention sweep failed", extra={"namespace": namespace, "error": str(error)})


class _Filler:
    """The warm pool's thread (safeagent.reconcile.warm): fills each namespace's pool when a warm Pod
    was taken, ended or went, and every few seconds in any case, until stopped; a pass with nothing
    to do reads only the operator's memory."""

    INTERVAL_SECONDS = 5.0
    RETRY_SECONDS = 10.0

    def __init__(self, context: reconcile.Context) -> None:
        self.context = context
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="safeagent-warm-pool", daemon=True)

    def _loop(self) -> None:
        delay = 0.0
        while not self.stop.is_set():
            self.context.warm.changed.wait(delay)
            self.context.warm.changed.clear()
            if self.stop.is_set():
                return
            try:
                reconcile.fill_warm_pools(self.context)
                delay = reconcile.warm_refill_wait(self.context) or self.INTERVAL_SECONDS
            except Exception as error:  # jobs go cold meanwhile; the next pass tries again
                log.warning("warm pool not filled", extra={"error": str(error)})
                delay = self.RETRY_SECONDS


def _nudge(namespace: str, name: str, uid: str | None) -> None:
    """Reconcile a job now from a thread of the operator's own (a warm Pod's record just written)."""
    try:
        run_job(namespace, name, uid)
    except (kopf.PermanentError, kopf.TemporaryError) as error:  # the timer retries
        log.info("nudge deferred", extra={"namespace": namespace, "job": name, "error": str(error)})


def _context() -> reconcile.Context:
    if _Runtime.context is None:
        raise kopf.TemporaryError("the operator is still starting", delay=5)
    return _Runtime.context


def build_context() -> reconcile.Context:
    """Configuration, policy and API client; raises ConfigError/PolicyError if unusable."""
    from safeagent.kube import KubeApi
    from safeagent.policy import decide

    config = load_config()
    policy = PolicyFile(config.policyPath)
    policy.current()  # fail fast on a bad policy file
    kube = KubeApi(observer=METRICS.observe_api_call)
    auditor = audit.Auditor(kube, observers=[METRICS.observe_record])
    return reconcile.Context(kube=kube, config=config, policy=policy.current, decide=decide, auditor=auditor,
                             pending=_Runtime.pending, uids=_Runtime.uids, warm=_Runtime.warm,
                             pod_changes=_Runtime.pod_changes)


def use_context(factory: Callable[[], reconcile.Context] | None) -> None:
    """Build the operator's context with `factory` at the next startup instead of from the
    configuration files (None: from the files again).

    The API tier's seam (tests/api): its operator runs here, in the test's process, against a
    real API server with no kubelet, so the test supplies the client whose Pod-log read it plays.
    The Pod watch's pending-Pod count, held UIDs and Pod states are kept whatever the factory
    returns."""
    _Runtime.factory = factory


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events narrate; Kopf's only on trouble
    # The namespaces are named exactly (--namespace, no globs) and the CRDs are installed with the
    # chart: Kopf need not list CRDs or namespaces cluster-wide, so the operator gets no
    # cluster-scoped permission at all.
    settings.scanning.disabled = True
    settings.execution.max_workers = HANDLER_THREADS
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    logs.configure_logging(logging.getLogger().getEffectiveLevel())
    try:
        _Runtime.context = dataclasses.replace(
            (_Runtime.factory or build_context)(), pending=_Runtime.pending, uids=_Runtime.uids, warm=_Runtime.warm,
            nudge=_nudge, pod_changes=_Runtime.pod_changes,
        )
    except ConfigError as error:
        raise kopf.PermanentError(f"configuration unusable: {error}") from None
    except Exception as error:  # PolicyError and friends: do not run without a policy
        raise kopf.PermanentError(f"startup failed: {type(error).__name__}: {error}") from None
    config = _Runtime.context.config
    if config.egressCheck is None:
        # Without the pre-flight a command could run before its Pod's NetworkPolicy is enforced.
        raise kopf.PermanentError("configuration unusable: egressCheck is not set (the chart sets it)")
    if config.metrics.enabled:
        try:
            metrics.serve(METRICS, config.metrics.port, config.metrics.address)
        except OSError as error:  # the port is taken: say so and stop, rather than run unobserved
            raise kopf.PermanentError(f"cannot serve metrics on port {config.metrics.port}: {error}") from None
    _Runtime.sweeper = _Sweeper(_Runtime.context)
    _Runtime.sweeper.thread.start()
    # Also with the pool off: the first pass removes warm Pods a bigger pool left behind.
    _Runtime.filler = _Filler(_Runtime.context)
    _Runtime.filler.thread.start()
    _Runtime.trimmer = memory.Trimmer(METRICS.observe_memory_returned)
    _Runtime.trimmer.thread.start()
    log.info(
        "operator configured",
        extra={"policy": config.policyPath, "namespaces": config.namespaces,
               "metricsPort": config.metrics.port if config.metrics.enabled else None},
    )


@kopf.on.cleanup()
def stop_sweeping(**_: Any) -> None:
    sweeper, _Runtime.sweeper = _Runtime.sweeper, None
    if sweeper is not None:
        sweeper.stop.set()
        sweeper.thread.join(timeout=30)
    filler, _Runtime.filler = _Runtime.filler, None
    if filler is not None:
        filler.stop.set()
        _Runtime.warm.changed.set()
        filler.thread.join(timeout=30)
    trimmer, _Runtime.trimmer = _Runtime.trimmer, None
    if trimmer is not None:
        trimmer.stop.set()


@contextlib.contextmanager
def _kopf_errors(kind: str) -> Iterator[None]:
    """Reconcile's two failure classes as Kopf's retry semantics, counted in the metrics."""
    try:
        yield
    except reconcile.PermanentFailure as error:
        METRICS.observe_reconcile_error(kind, retried=False)
        raise kopf.PermanentError(str(error)) from None
    except reconcile.TransientFailure as error:
        METRICS.observe_reconcile_error(kind, retried=True)
        raise kopf.TemporaryError(str(error), delay=error.delay) from None


def run_job(namespace: str, name: str, uid: str | None, quiet_for: float = 0.0) -> bool:
    """Ask for a pass of one job (reconcile.JobPasses: now, or folded into the one running, or
    not at all); map reconcile errors onto Kopf's retry semantics. True: a pass ran here."""
    ctx = _context()

    def one_pass(job_uid: str | None) -> str | None:
        with _lock(namespace, name), _kopf_errors("SandboxJob"):
            phase = reconcile.reconcile_job(ctx, namespace, name, job_uid)
        if phase is None or phase in _TERMINAL:
            _forget(namespace, name)  # gone or final for good: no call will need the lock again
        return phase

    return _Runtime.passes.run((namespace, name), uid, one_pass, quiet_for=quiet_for)


def _job_is_active(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in _TERMINAL


def _approval_is_pending(status: kopf.Status, **_: Any) -> bool:
    """Not decided yet as far as the operator has recorded (no status, or Pending)."""
    return status.get("phase") in (None, ApprovalPhase.PENDING.value)


def _namespaced(namespace: str | None) -> str:
    """Every resource watched here is namespaced: Kopf passes its namespace (typed optional)."""
    if not namespace:
        raise kopf.PermanentError("a namespaced handler got an object without a namespace")
    return namespace


@kopf.on.resume(*JOBS, retries=HANDLER_RETRIES, backoff=HANDLER_BACKOFF_SECONDS, when=_job_is_active)
@kopf.on.create(*JOBS, retries=HANDLER_RETRIES, backoff=HANDLER_BACKOFF_SECONDS, when=_job_is_active)
@kopf.on.update(*JOBS, retries=HANDLER_RETRIES, backoff=HANDLER_BACKOFF_SECONDS, when=_job_is_active)
def job_changed(namespace: str | None, name: str, uid: str, status: kopf.Status, **_: Any) -> None:
    METRICS.observe_handler("job_changed", final=not _job_is_active(status))
    run_job(_namespaced(namespace), name, uid)


@kopf.timer(*JOBS, interval=TIMER_INTERVAL_SECONDS, initial_delay=TIMER_INTERVAL_SECONDS, when=_job_is_active)
def job_tick(namespace: str | None, name: str, uid: str, status: kopf.Status, **_: Any) -> None:
    """Level-based safety net: progress even if an event was missed (or a pass failed); enforces
    deadlines. Skipped while another pass of the job ended less than an interval ago, or
    FOLLOWED_POD_QUIET_SECONDS while the Pod watch follows its unfinished Pod."""
    final = not _job_is_active(status)
    METRICS.observe_handler("job_tick", final=final)
    if final:
        return  # a tick already due as the job ended (Kopf stops the timer after): its end deleted the Pods
    followed = _Runtime.pod_changes.follows(status.get("podUid"))
    quiet = FOLLOWED_POD_QUIET_SECONDS if followed else TIMER_INTERVAL_SECONDS
    run_job(_namespaced(namespace), name, uid, quiet_for=quiet)


def _job_seen_matters(status: kopf.Status, namespace: str | None, name: str, **_: Any) -> bool:
    """An active job, or the event that ends one the active-jobs gauge still holds."""
    return _job_is_active(status) or METRICS.tracks_job(namespace or "", name)


@kopf.on.event(*JOBS, when=_job_seen_matters)
def job_seen(event: kopf.RawEvent, namespace: str | None, name: str, status: kopf.Status, **_: Any) -> None:
    """Every SandboxJob as the watch sees it: the active-jobs gauge, nothing else."""
    METRICS.observe_handler("job_seen", final=not _job_seen_matters(status, namespace, name))
    METRICS.track_job(_namespaced(namespace), name, status.get("phase"), deleted=event.get("type") == "DELETED")


@kopf.on.event("", "v1", "pods", labels={LABEL_SANDBOX: "true"})
def sandbox_pod_event(
    event: kopf.RawEvent, body: kopf.Body, meta: kopf.Meta, namespace: str | None, **_: Any
) -> None:
    """A sandbox Pod changed: count it as pending or not, note the UID it holds or frees, and, when
    the change is one a pass acts on (reconcile.PodChanges), look at its job now instead of at the
    next tick."""
    deleted = event.get("type") == "DELETED"
    phase = (body.get("status") or {}).get("phase")
    METRICS.observe_handler("sandbox_pod_event", final=deleted or phase in reconcile.PendingPods.FINISHED)
    if meta.get("uid"):
        _Runtime.pending.seen(str(meta["uid"]), phase, deleted=deleted)
    _Runtime.uids.seen(dict(body), deleted=deleted)
    _Runtime.warm.seen(dict(body), deleted=deleted)
    try:
        METRICS.observe_sandbox_pod(dict(body))
    except Exception:  # metrics never keep a job from moving on
        log.exception("pod not observed for metrics", extra={"pod": meta.get("name")})
    job_name = (meta.get("annotations") or {}).get(ANNOTATION_JOB_NAME)
    job_uid = (meta.get("labels") or {}).get(LABEL_JOB_UID)
    if not job_name or not _Runtime.pod_changes.worth_a_pass(dict(body), deleted=deleted):
        return
    try:
        run_job(_namespaced(namespace), job_name, job_uid)
    except (kopf.PermanentError, kopf.TemporaryError) as error:
        # The timer retries.
        log.info("pod event deferred", extra={"namespace": namespace, "job": job_name, "error": str(error)})


@kopf.on.resume(*APPROVALS, retries=HANDLER_RETRIES, backoff=HANDLER_BACKOFF_SECONDS, when=_approval_is_pending)
@kopf.on.create(*APPROVALS, retries=HANDLER_RETRIES, backoff=HANDLER_BACKOFF_SECONDS, when=_approval_is_pending)
@kopf.on.update(*APPROVALS, field="spec", retries=HANDLER_RETRIES, backoff=HANDLER_BACKOFF_SECONDS)
def approval_changed(namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any) -> None:
    METRICS.observe_handler("approval_changed", final=not _approval_is_pending(status))
    ctx = _context()
    namespace = _namespaced(namespace)
    job_name = spec.get("jobName")
    if not job_name:
        raise kopf.PermanentError("spec.jobName is missing")
    with _lock(namespace, job_name), _kopf_errors("Approval"):
        reconcile.reconcile_approval(ctx, namespace, name)
    run_job(namespace, job_name, spec.get("jobUid"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the safeagent operator.")
    parser.add_argument("--liveness", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    args = parser.parse_args(argv)
    logs.configure_logging(logging.INFO)
    try:
        namespaces = load_config().namespaces
    except ConfigError as error:
        raise SystemExit(f"safeagent: {error}") from None
    if not namespaces:
        # Cluster scanning is off and the chart grants rights per namespace only: watching
        # "everything" would be refused. Name the namespaces.
        raise SystemExit(f"safeagent: no sandbox namespaces configured (set {ENV_NAMESPACES} or `namespaces`)")
    kopf.run(standalone=True, namespaces=namespaces, liveness_endpoint=args.liveness)


if __name__ == "__main__":
    main()
