"""Step 4, observe and finish: read the running Pod and, once it is done, the runner's record.

The Pod must still be the one we launched (its UID), before and after its log is read. A
preparation step that refused the source ends the job Rejected; a finished runner's record is
copied into status (streams trimmed to what etcd can hold) and judged by outcome.outcome_of. A Pod
that has not started says what it waits for (waiting.py); past launch grace + timeout the job
times out.
"""

from __future__ import annotations

from typing import Any

from safeagent import audit, builders
from safeagent.models import JobPhase, PrepareResult, RunnerResult
from safeagent.reconcile import outcome, pods, waiting, warm
from safeagent.reconcile.deadlines import is_past, run_budget_seconds
from safeagent.reconcile.job import Job
from safeagent.reconcile.launch import LAUNCHED, launched_message
from safeagent.reconcile.status import Update, finished, fit_for_status
from safeagent.reconcile.trouble import runner_running
from safeagent.sandbox.contract import LISTING_UNFINISHED, PREPARE_ERROR, WARM_PREPARE_FAILED


def _replaced(name: str) -> Update:
    message = f"Pod {name} was replaced by another object; its output is not trusted"
    return finished(JobPhase.FAILED, "PodReplaced", message, audit.JOB_FAILED)


def _log_limit(max_output_kb: int) -> int:
    # Two records (the command's part, then the final one: safeagent.sandbox.runner), each with two
    # capped streams JSON-escaped (at most 6 bytes per byte), plus the rest of the record.
    return 2 * (2 * 6 * max_output_kb * 1024 + 256 * 1024)


def observe(job: Job) -> Update | None:
    name = job.status.podName or ""
    # A Pod launched in this very pass is the create's answer: nothing has happened to it since.
    launched = job.launched if job.launched and job.launched["metadata"].get("name") == name else None
    pod = launched if launched is not None else pods.get_or_empty(job, name)
    if not pod:
        message = f"Pod {name} disappeared before its result was read"
        return finished(JobPhase.FAILED, "PodLost", message, audit.JOB_FAILED)
    if not pods.is_ours(pod, job.status.podUid):
        return _replaced(name)
    pod_status = pod.get("status") or {}
    prepare = pods.terminated(pod_status.get("initContainerStatuses"), builders.PREPARE_CONTAINER)
    if prepare is not None and prepare.get("exitCode") not in (0, None):
        return _prepare_refused(job, name, prepare)
    limits = job.status.limits
    assert limits is not None  # recorded with the decision, before any launch
    running = pod_status.get("phase") not in ("Succeeded", "Failed")
    warm_pod = _warm(pod)
    if running and not warm_pod and not _record_written(job, name, pod):
        return _still_running(job, name, pod)
    runner = pods.terminated(pod_status.get("containerStatuses"), builders.RUNNER_CONTAINER)
    result = pods.read_record(job, name, builders.RUNNER_CONTAINER, RunnerResult, _log_limit(limits.maxOutputKb))
    if running and (result is None or result.error == LISTING_UNFINISHED):
        # A warm Pod is read as soon as its runner has written its final record (warm.follow nudges
        # the job then), a second or more before the kubelet reports the container's end; until
        # then it runs.
        return _still_running(job, name, pod)
    if not pods.still_ours(job, name, job.status.podUid):
        return _replaced(name)
    if result is None:
        return finished(*outcome.no_record_outcome(pod_status.get("reason"), runner.get("exitCode") if runner else None))
    if result.error == WARM_PREPARE_FAILED and result.exitCode is None:
        # A warm Pod's preparation step ran in its runner's container: its record is in that log.
        return _warm_prepare_refused(job, name)
    return _with_result(job, result, limits.maxFileWrites)


def _warm_prepare_refused(job: Job, name: str) -> Update:
    record = pods.read_record(job, name, builders.RUNNER_CONTAINER, PrepareResult, 64 * 1024)
    if not pods.still_ours(job, name, job.status.podUid):
        return _replaced(name)
    # The step's exit status as the cold Pod's init container would have had it (prepare.main).
    exit_code = 1 if record is not None and not record.ok and record.reason != PREPARE_ERROR else 2
    return finished(*outcome.prepare_outcome(exit_code, record))


def _record_written(job: Job, name: str, pod: dict[str, Any]) -> bool:
    """Whether a running cold Pod's runner has written its final record: once the kubelet says the
    runner runs (a report that asks for a pass: passes.pod_state), a thread follows its log
    (warm.follow, as from a warm Pod's launch) and nudges the job when the record goes by, a second
    or more before the kubelet reports the container's end. Until then the log is not read: a pass
    while the command runs costs no request for it."""
    if not runner_running(pod):
        return False
    warm.follow(job, name)
    return warm.final_record_seen(job.namespace, name)


def _warm(pod: dict[str, Any]) -> bool:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(builders.LABEL_WARM) == "true"


def _prepare_refused(job: Job, name: str, terminated: dict[str, Any]) -> Update:
    record = pods.read_record(job, name, builders.PREPARE_CONTAINER, PrepareResult, 64 * 1024)
    if not pods.still_ours(job, name, job.status.podUid):
        return _replaced(name)
    return finished(*outcome.prepare_outcome(terminated.get("exitCode"), record))


def _still_running(job: Job, name: str, pod: dict[str, Any]) -> Update | None:
    config = job.ctx.config.sandbox
    budget = run_budget_seconds(job.model.spec.timeoutSeconds, config.launchGraceSeconds)
    if is_past(job.ctx.now(), job.status.startTime, budget):
        message = f"no result within {budget} seconds of launch{waiting.waited_for(job)}"
        return finished(JobPhase.FAILED, "Timeout", message, audit.TIMED_OUT)
    trouble = waiting.look(job, pod)
    return waiting.waiting_update(job, trouble, job.status.startTime, (LAUNCHED, launched_message(name)))


def _with_result(job: Job, result: RunnerResult, max_file_writes: int) -> Update:
    judged = outcome.outcome_of(result, max_file_writes, job.model.spec.timeoutSeconds)
    waited = result.egress.elapsedMs if result.egress else None
    if judged.reason == outcome.EGRESS_NOT_ENFORCED:
        # Nothing ran: no exit code, no output, no changed files; only how long the proof was awaited.
        return finished(*judged, egressCheckMs=waited)
    if judged.reason == outcome.RESOURCES_NOT_LIMITED:
        assert result.pids is not None  # the rule that gave this reason read it
        return finished(*judged, pidsAvailable=result.pids.available)
    stdout, stdout_cut = fit_for_status(result.stdout)
    stderr, stderr_cut = fit_for_status(result.stderr)
    return finished(
        *judged,
        exitCode=result.exitCode,
        timedOut=result.timedOut,
        stdout=stdout,
        stderr=stderr,
        stdoutBytes=result.stdoutBytes,
        stderrBytes=result.stderrBytes,
        stdoutTruncated=result.stdoutTruncated or stdout_cut,
        stderrTruncated=result.stderrTruncated or stderr_cut,
        changedFiles=result.changedFiles,
        fullVolumes=result.fullVolumes,
        memoryExhausted=result.memoryExhausted,
        pidsAvailable=result.pids.available if result.pids else None,
        egressCheckMs=waited,
        egressProof=result.egress.proof if result.egress else None,
    )
