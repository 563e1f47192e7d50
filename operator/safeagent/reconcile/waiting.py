"""A launched Pod that has not started: say what it waits for, and end the job when its source
does not exist (after `sandbox.sourceGraceSeconds`, in case the source is applied after the job).

The reading is here (the Pod's Events and the source's existence, only while the Pod has not
started); the judgement is trouble.pod_trouble. One status write per change of reason, with an
audit record `SandboxPodWaiting`; when the trouble clears, the step's normal reason and message
come back.
"""

from __future__ import annotations

import logging
from typing import Any

from safeagent import audit
from safeagent.kube import Invalid, KubeError, NotFound
from safeagent.models import JobPhase
from safeagent.reconcile.deadlines import is_past
from safeagent.reconcile.job import Job
from safeagent.reconcile.status import Update, finished, progress
from safeagent.reconcile.trouble import SOURCE_NOT_FOUND, WAITING_REASONS, Trouble, has_started, pod_trouble

log = logging.getLogger("safeagent.reconcile")


def _events(job: Job, pod: dict[str, Any]) -> list[dict[str, Any]]:
    uid = (pod.get("metadata") or {}).get("uid")
    if not uid:
        return []
    try:
        return job.ctx.kube.list_pod_events(job.namespace, uid)
    except KubeError as error:  # diagnostics only: without them the job still ends at its deadline
        log.warning("pod events not read", extra={"namespace": job.namespace, "error": str(error)})
        return []


def missing_source(job: Job) -> str | None:
    """The job's source as "ConfigMap NAME" when the API says it does not exist, else None.

    Unavailable propagates (the pass is retried); a refusal (no right to read it) means unknown.
    """
    # A bundle's manifest; a chunk missing from it shows as the kubelet's FailedMount (VolumeMountFailed).
    kind, _, name = job.model.spec.source.read_from()
    kube = job.ctx.kube
    try:
        if kind == "ConfigMap":
            kube.get_configmap(job.namespace, name)
        else:
            kube.get_persistent_volume_claim(job.namespace, name)
    except NotFound:
        return f"{kind} {name}"
    except Invalid as error:
        log.warning("source not checked", extra={"namespace": job.namespace, "error": str(error)})
    return None


def look(job: Job, pod: dict[str, Any]) -> Trouble | None:
    """What the Pod waits for; its Events and the source are read only while it has not started,
    and its Events only once it has a node: the Events trouble.py reads are the kubelet's (the
    scheduler's own show in the Pod's condition), so a Pod just created or still queued for a node
    has none (under a burst, most passes of a job before its Pod starts)."""
    if has_started(pod):
        return pod_trouble(pod)
    scheduled = bool((pod.get("spec") or {}).get("nodeName"))
    return pod_trouble(pod, _events(job, pod) if scheduled else [], missing_source(job))


def waiting_update(job: Job, trouble: Trouble | None, since: str | None, normal: tuple[str, str]) -> Update | None:
    """The status change for `trouble` (None: nothing new). `since` starts the source's grace;
    `normal` is the (reason, message) the step shows when nothing is wrong."""
    status = job.status
    grace = job.ctx.config.sandbox.sourceGraceSeconds
    if trouble is not None and trouble.reason == SOURCE_NOT_FOUND and is_past(job.ctx.now(), since, grace):
        return finished(JobPhase.FAILED, SOURCE_NOT_FOUND, trouble.detail, audit.JOB_FAILED)
    if trouble is not None:
        if status.reason == trouble.reason:
            return None  # one write per change of reason, not per changing detail
        return progress(audit.SANDBOX_WAITING, reason=trouble.reason, message=trouble.message)
    if status.reason in WAITING_REASONS:
        return progress(reason=normal[0], message=normal[1])
    return None


def waited_for(job: Job) -> str:
    """'; <what the Pod was waiting for>' for a timeout message, or ''."""
    if job.status.reason in WAITING_REASONS and job.status.message:
        return f"; {job.status.message}"
    return ""
