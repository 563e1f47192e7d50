"""Pinning the source a human will review: the content digest the Approval carries.

A bundle's manifest lists every entry of the tree with its content's SHA-256, so its digest is
computed from the manifest (checked against its name); the preparation step proves it on the
rebuilt tree before the command runs.

A ConfigMap is read and digested here (the same digest the preparation step computes over its
copy). A volume cannot be read by the operator, so a review Pod runs only the preparation step on
it, with no network, and reports the digest; the run's preparation step later refuses any other
content.
"""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

from safeagent import audit, builders
from safeagent.kube import NotFound
from safeagent.models import JobPhase, NetworkProfile, PrepareResult
from safeagent.reconcile import outcome, pods, waiting
from safeagent.reconcile.deadlines import is_past
from safeagent.reconcile.errors import TransientFailure
from safeagent.reconcile.job import Job
from safeagent.reconcile.status import MAX_MESSAGE, Update, finished, progress
from safeagent.sandbox import bundle
from safeagent.sandbox.digest import BadConfigMapKeys, configmap_digest

REVIEWING = "reviewing_source"


def forbidden(job: Job) -> Update | None:
    """Ends the job unless its requester may `get` its source (ConfigMap, bundle manifest or claim) itself.

    The admission policy asked the same when the job was made; this asks again, with a namespaced
    review, right before the operator reads the source or mounts it into a Pod: rights taken
    away while a job waited for its approval are taken away from the job too.
    """
    requester = job.model.spec.requester
    if requester is None:
        return unknown_requester()
    kind, resource, name = job.model.spec.source.read_from()
    if job.ctx.kube.may_get(job.namespace, requester, resource, name).allowed:
        return None
    message = f"{requester.username} may not get {kind} {name}: a job may use only a source its requester can read"
    return finished(JobPhase.REJECTED, audit.SOURCE_FORBIDDEN, message, audit.SOURCE_FORBIDDEN)


def unknown_requester() -> Update:
    message = (
        "the job carries no requester recorded by the cluster: safeagent's admission policies "
        "are missing, or the job was made before they were installed"
    )
    return finished(JobPhase.REJECTED, audit.REQUESTER_UNKNOWN, message, audit.REQUESTER_UNKNOWN)


def pin(job: Job) -> str | Update | None:
    """The source's content digest, or the status change to make first (None: not known yet)."""
    refused = forbidden(job)
    if refused is not None:
        return refused
    source = job.model.spec.source
    if source.bundle is not None:
        read = read_bundle(job)
        return read if isinstance(read, Update) else bundle.tree_digest(read.manifest)
    if source.configMap is None:
        return _pin_volume(job)
    name = source.configMap.name
    configmap = _source_configmap(job, name)
    if isinstance(configmap, Update):
        return configmap
    files = {key: str(text).encode() for key, text in (configmap.get("data") or {}).items()}
    for key, encoded in (configmap.get("binaryData") or {}).items():
        files[key] = base64.b64decode(encoded)
    try:
        return configmap_digest(files)
    except BadConfigMapKeys as rejected:
        return finished(JobPhase.REJECTED, rejected.reason, rejected.message[:MAX_MESSAGE], audit.SOURCE_REJECTED)


def _source_configmap(job: Job, name: str) -> dict[str, Any] | Update:
    """A ConfigMap the source needs; not there yet is retried, not there after the grace ends the job."""
    try:
        configmap: dict[str, Any] = job.ctx.kube.get_configmap(job.namespace, name)
        return configmap
    except NotFound:
        if not is_past(job.ctx.now(), job.status.decidedAt, job.ctx.config.sandbox.sourceGraceSeconds):
            raise TransientFailure(f"ConfigMap {name} not found (yet)") from None
        message = f"the source ConfigMap {name} does not exist"
        return finished(JobPhase.FAILED, "SourceNotFound", message, audit.JOB_FAILED)


class Manifest(NamedTuple):
    """A bundle source's manifest, checked, and its bytes as stored (what a warm Pod is delivered:
    the preparation step checks those against the manifest's name, never a copy made here)."""

    manifest: dict[str, Any]
    data: bytes


def read_bundle(job: Job) -> Manifest | Update:
    """A bundle source's manifest, checked against its name and the caps (safeagent.sandbox.bundle),
    or how the job ends. Its chunks are checked by the preparation step, which reads them."""
    source = job.model.spec.source.bundle
    assert source is not None
    configmap = _source_configmap(job, source.name)
    if isinstance(configmap, Update):
        return configmap
    data = (configmap.get("data") or {}).get(bundle.MANIFEST_KEY)
    sandbox = job.ctx.config.sandbox
    try:
        if not isinstance(data, str):
            raise bundle.BundleRejected("bad_bundle", f"ConfigMap {source.name} holds no {bundle.MANIFEST_KEY}")
        stored = data.encode()
        manifest = bundle.read_manifest(source.name, stored)
        bundle.checked_entries(manifest, sandbox.sourceMaxFiles, sandbox.sourceMaxBytes)
    except bundle.BundleRejected as rejected:
        return finished(JobPhase.REJECTED, rejected.reason, rejected.message[:MAX_MESSAGE], audit.SOURCE_REJECTED)
    return Manifest(manifest, stored)


def _reviewing_message(pod: str) -> str:
    return f"Pod {pod} is copying the source to pin its content for the review"


def _pin_volume(job: Job) -> str | Update | None:
    """A volume source's digest, from a review Pod that only copies it."""
    ctx = job.ctx
    name = job.status.reviewPodName
    if not name:
        ctx.kube.apply_network_policy(
            builders.build_network_policy(job.namespace, NetworkProfile.NONE, ctx.config)
        )
        uid = pods.reserve_uid(job, builders.review_pod_name(job.model))
        created = pods.create_or_adopt(job, builders.build_review_pod(job.model, ctx.config, run_as_user=uid))
        created_name = created["metadata"]["name"]
        return progress(
            reviewPodName=created_name,
            reviewPodUid=pods.uid_of(created),
            reason=REVIEWING,
            message=_reviewing_message(created_name),
        )
    pod = pods.get_or_empty(job, name)
    if pods.uid_of(pod) != job.status.reviewPodUid:
        message = f"review Pod {name} disappeared or was replaced"
        return finished(JobPhase.FAILED, "PodLost", message, audit.JOB_FAILED)
    if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
        # The review budget runs from the decision (`or now`: a job decided before it was recorded).
        since = job.status.decidedAt or job.now()
        if is_past(ctx.now(), since, 2 * ctx.config.sandbox.launchGraceSeconds):
            message = f"review Pod {name} did not finish{waiting.waited_for(job)}"
            return finished(JobPhase.FAILED, "Timeout", message, audit.TIMED_OUT)
        trouble = waiting.look(job, pod)
        return waiting.waiting_update(job, trouble, since, (REVIEWING, _reviewing_message(name)))
    record = pods.read_record(job, name, builders.PREPARE_CONTAINER, PrepareResult, 64 * 1024)
    if not pods.still_ours(job, name, job.status.reviewPodUid):
        # Another Pod under the name printed that record: its digest would pin unreviewed content.
        message = f"review Pod {name} was replaced by another object; its record is not trusted"
        return finished(JobPhase.FAILED, "PodReplaced", message, audit.JOB_FAILED)
    job.delete_pods()
    result = outcome.review_outcome(record)
    if isinstance(result, str):
        return result
    return finished(*result)
