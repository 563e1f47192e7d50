"""Step 3, launch: a bundle source's manifest read (once, whichever way the job goes); a warm Pod if
one is ready for the job (warm.py); else the profile's NetworkPolicy, then the sandbox Pod under a
name derived from the job's UID (a Pod already under that name is adopted only if it is exactly the
one we would build), given the egress canary's address for the runner's pre-flight and a runAsUser
of its own (uids.py).
"""

from __future__ import annotations

from safeagent import audit, builders
from safeagent.models import JobPhase
from safeagent.reconcile import pods, source, warm
from safeagent.reconcile.job import Job
from safeagent.reconcile.status import ConditionChange, Update, progress
from safeagent.sandbox import bundle

LAUNCHED = "launched"


def launched_message(pod: str) -> str:
    return f"sandbox Pod {pod} launched"


def launch(job: Job) -> Update:
    ctx = job.ctx
    limits = job.status.limits
    assert limits is not None  # recorded with the decision, before any launch
    refused = source.forbidden(job)
    if refused is not None:
        return refused
    # A bundle's manifest, read once: a warm Pod is delivered it with its chunks, a cold Pod mounts them.
    manifest: source.Manifest | None = None
    if job.model.spec.source.bundle is not None:
        read = source.read_bundle(job)
        if isinstance(read, Update):
            return read
        manifest = read
    # A warm Pod, when one is ready for this job (warm.py); else a Pod of the job's own.
    hot = warm.take(job, job.status.argv or [], limits.maxOutputKb, job.status.sourceDigest, manifest)
    if hot is not None:
        warm.follow(job, hot.name)
        return _launched(job, hot.name, hot.uid, f"warm Pod {hot.name}")
    # The profile's NetworkPolicy must exist before the Pod, or the Pod starts unfiltered.
    chunks = bundle.chunk_digests(manifest.manifest) if manifest is not None else []
    ctx.kube.apply_network_policy(
        builders.build_network_policy(job.namespace, job.model.spec.networkProfile, ctx.config)
    )
    name = builders.child_name(job.name, job.model.uid)
    pod = builders.build_sandbox_pod(
        job.model, job.status.argv or [], limits.maxOutputKb, ctx.config,
        source_digest=job.status.sourceDigest, canary_address=pods.canary_address(ctx),
        pending_pods=ctx.pending.count(), bundle_chunks=chunks, run_as_user=pods.reserve_uid(job, name),
    )
    created = pods.create_or_adopt(job, pod)
    uid = pods.uid_of(created)
    if uid:  # counted now, not when the watch reports it: the rest of a burst waits longer at once
        ctx.pending.seen(uid, (created.get("status") or {}).get("phase"))
    return _launched(job, name, uid, f"Pod {name}")


def _launched(job: Job, name: str, uid: str | None, what: str) -> Update:
    return progress(
        audit.SANDBOX_LAUNCHED,
        (ConditionChange("Launched", "True", audit.SANDBOX_LAUNCHED, what),),
        phase=JobPhase.RUNNING,
        podName=name,
        podUid=uid,
        startTime=job.now(),
        reason=LAUNCHED,
        message=launched_message(name),
    )
