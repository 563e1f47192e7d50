"""Warm sandbox Pods (docs/warm-pool.md): a few kept ready per sandbox namespace and profile, each
taken by exactly one job.

`WarmPool` is what the operator's Pod watch last saw of its warm Pods (handlers.py feeds it, like
the pending-Pod count). `fill` keeps `warmPool.size` of them per namespace and profile, and removes
the ones that ended unused (a Pod left idle past `warmPool.idleSeconds`, or one whose proofs
failed, ends by itself). `take` is launch's way to a warm Pod: it claims a ready one for the job
(a patch of the Pod's labels, annotations and owner reference, guarded by its resourceVersion, so
two jobs never claim one Pod, and a restarted operator sees whose a Pod is), then delivers the job
over the Pod's channel. From then on the Pod is the job's, exactly as a Pod launched for it:
observe.py reads its record, the job's end deletes it, the garbage collector follows the job.

What is delivered is the source volume the cold Pod would mount, as files (builders.build_warm_request):
a ConfigMap's keys, or a bundle's manifest and each of its chunks, one API read per object. A job
goes cold (launch.py builds its own Pod) when its profile has no pool, its source is a volume (it
cannot reach a running Pod), no Pod is ready, an object its source needs is missing or cannot be
read, its request would exceed the Pod's cap, or no connection to the Pod could be made. Once anything
was sent, the job stays on that Pod: whether it ran is for the Pod's record to say, never for a
second Pod (a command must not run twice).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import OrderedDict
from typing import Any

from safeagent import builders
from safeagent.kube import Conflict, Kube, KubeError, NotFound
from safeagent.models import NetworkProfile
from safeagent.reconcile import pods
from safeagent.reconcile.context import Context
from safeagent.reconcile.deadlines import run_budget_seconds
from safeagent.reconcile.job import Job
from safeagent.reconcile.pool import WarmPod, warm_pod_of
from safeagent.reconcile.source import Manifest
from safeagent.sandbox import bundle, channel
from safeagent.sandbox.contract import LISTING_UNFINISHED, RUNNER_RESULT_KIND

log = logging.getLogger("safeagent.reconcile")

WARM_NAME_PREFIX = "sa-warm-"
WARM_INGRESS_POLICY = "safeagent-warm-channel"
# How long after the last take the pool waits before it refills (see `refill_wait`).
REFILL_QUIET_SECONDS = 1.0
# Connecting, sending and being answered: the Pod reads its request within channel.READ_SECONDS.
DELIVER_SECONDS = channel.READ_SECONDS + 3.0
# ---------------------------------------------------------------------------------------- the pool


def fill(ctx: Context) -> int:
    """Remove the warm Pods that ended unused and those beyond the pool's size (all of them where the
    pool is off: a release turned down leaves none behind), and create the missing ones, paced (see
    `refill_wait`); returns how many were created. A pass with nothing to do makes no API request
    (but the first, which lists)."""
    warm = ctx.config.warmPool
    if not ctx.warm.primed:
        for namespace in ctx.config.namespaces:
            for listed in ctx.kube.list_pods(namespace, f"{builders.LABEL_WARM}=true"):
                ctx.warm.seen(listed)
                ctx.uids.seen(listed)
        ctx.warm.primed = True
    created = 0
    for namespace in ctx.config.namespaces:
        for pod in ctx.warm.ended_unused(namespace) + ctx.warm.surplus(namespace, warm.size_of):
            _discard(ctx, pod)
        room = warm.startingMax - ctx.warm.starting(namespace)
        for profile, size in sorted(warm.size.items(), key=lambda item: ctx.warm.unused(namespace, item[0].value) - item[1]):
            unused = ctx.warm.unused(namespace, profile.value)
            if unused > warm.startingMax and ctx.warm.since_take() < REFILL_QUIET_SECONDS:
                continue
            missing = min(size - unused, room)
            if missing > 0:
                made = _create(ctx, namespace, profile, missing)
                created += made
                room -= made
    return created


def refill_wait(ctx: Context) -> float:
    """Seconds until `fill` may start Pods it is holding back now (0: it holds none back).

    A Pod's start costs its node about a CPU-second (the runtime, the network plugin and its policy
    enforcer, the API server), several times a warm job's own cost. So the pool refills paced: at
    most `startingMax` Pods starting at once per namespace, the emptiest profile first, and not
    while jobs are taking Pods (within REFILL_QUIET_SECONDS of the last take) unless a profile is
    down to `startingMax` unused Pods: commands that come one after another run on what is ready,
    and the pool refills in the pause after them (an agent's pauses, for a model's answer, are
    seconds)."""
    return max(0.0, REFILL_QUIET_SECONDS - ctx.warm.since_take())


def _create(ctx: Context, namespace: str, profile: NetworkProfile, count: int) -> int:
    """`count` new warm Pods of `profile`, after the policies they need."""
    config = ctx.config
    ctx.kube.apply_network_policy(builders.build_network_policy(namespace, profile, config))
    operator = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": config.warmPool.operatorNamespace}},
        "podSelector": {"matchLabels": dict(config.warmPool.operatorPodLabels)},
    }
    ctx.kube.apply_network_policy(builders.build_warm_ingress_policy(namespace, WARM_INGRESS_POLICY, operator))
    canary = pods.canary_address(ctx)
    made = 0
    for _ in range(count):
        name = f"{WARM_NAME_PREFIX}{profile.value}-{secrets.token_hex(5)}"
        uid = ctx.uids.reserve(namespace, name, config.sandbox.uidRange)
        if uid is None:  # every UID is held: jobs come first, the pool waits
            break
        pod = builders.build_warm_pod(namespace, name, profile, config, channel.new_token(),
                                      config.warmPool.idleSeconds, canary_address=canary, run_as_user=uid)
        ctx.warm.seen(ctx.kube.create_pod(pod))
        made += 1
    return made


# ----------------------------------------------------------------------------------- a job takes one


def take(job: Job, argv: list[str], max_output_kb: int, source_digest: str | None,
         manifest: Manifest | None = None) -> WarmPod | None:
    """Claim a ready warm Pod for `job` and deliver the job to it: that Pod, now the job's; None: the
    job goes cold. A bundle source comes with its `manifest`, read by launch (which needs it cold too)."""
    ctx = job.ctx
    spec = job.model.spec
    config_map = spec.source.configMap.name if spec.source.configMap is not None else None
    if (config_map is None and manifest is None) or not ctx.config.warmPool.size_of(spec.networkProfile):
        return None  # a volume (or a bundle without its manifest) cannot be sent; a profile without a pool
    adopted = _claimed_before(job)
    if adopted is not None:
        return adopted
    candidates = ctx.warm.ready(job.namespace, spec.networkProfile.value)
    if not candidates:
        return None
    files = source_files(ctx.kube, job.namespace, config_map, manifest, builders.WARM_MAX_REQUEST_BYTES)
    if files is None:
        return None  # the cold path reports what is missing or too large, as it does without a pool
    request = builders.build_warm_request(job.model, argv, max_output_kb, ctx.config, files, source_digest)
    if channel.request_size(request) > builders.WARM_MAX_REQUEST_BYTES:
        return None
    for pod in candidates:
        if not ctx.warm.start_taking(pod):
            continue
        try:
            taken = _claim_and_deliver(job, pod, request)
        finally:
            ctx.warm.done_taking(pod)
        if taken:
            return pod
    return None


def source_files(kube: Kube, namespace: str, config_map: str | None, manifest: Manifest | None,
                 cap: int) -> dict[str, str] | None:
    """The files of the source volume a cold Pod would mount (builders.configmap_files,
    builders.bundle_files), read from the API: the ConfigMap `config_map`, or the `manifest` and every
    chunk it names, each read once. None, and the job goes cold, when an object or a key the volume
    needs is missing, a read fails, or the files pass `cap` bytes (base64), where the reading stops.
    Nothing is checked here: the preparation step checks each chunk against the manifest, and the
    manifest against its name, in the Pod."""
    try:
        if manifest is None:
            return None if config_map is None else builders.configmap_files(kube.get_configmap(namespace, config_map))
        chunks: dict[str, str] = {}
        size = 4 * -(-len(manifest.data) // 3)  # the manifest's base64
        for digest in bundle.chunk_digests(manifest.manifest):
            content = builders.volume_file(kube.get_configmap(namespace, bundle.chunk_name(digest)), bundle.CHUNK_KEY)
            if content is None:
                return None  # the cold Pod's volume would not mount either
            size += len(content)
            if size > cap:
                return None
            chunks[digest] = content
    except KubeError as error:  # NotFound (a chunk not uploaded yet, or gone), or the API's trouble
        log.info("warm source not read", extra={"namespace": namespace, "error": str(error)})
        return None
    return builders.bundle_files(manifest.data, chunks)


def _claim(ctx: Context, namespace: str, pod: WarmPod, claim: dict[str, Any]) -> dict[str, Any] | None:
    """`claim` patched onto `pod` at the version the watch saw; if the Pod changed since (its status,
    most often: the watch lags the kubelet), once more at its current version if it is still ready
    and nobody's. The Pod as claimed, or None."""
    version = pod.resource_version
    for attempt in range(2):
        try:
            return ctx.kube.claim_pod(namespace, pod.name, version, claim)
        except NotFound:
            return None
        except Conflict:
            if attempt:
                return None
        try:
            current = warm_pod_of(ctx.kube.get_pod(namespace, pod.name))
        except NotFound:
            return None
        if current is None or current.claimed or not current.ready:
            return None
        version = current.resource_version
    return None


def _claimed_before(job: Job) -> WarmPod | None:
    """A warm Pod this job claimed before the operator stopped, before its status said so: the job's
    Pod, delivered to or not (a second Pod could run the command twice; one that got nothing says
    so in its record when its wait ends)."""
    selector = f"{builders.LABEL_WARM}=true,{builders.LABEL_JOB_UID}={job.model.uid}"
    for listed in job.ctx.kube.list_pods(job.namespace, selector):
        pod = warm_pod_of(listed)
        if pod is not None:
            log.info("warm pod adopted", extra={"namespace": job.namespace, "pod": pod.name})
            return pod
    return None


def _claim_and_deliver(job: Job, pod: WarmPod, request: Any) -> bool:
    ctx = job.ctx
    claimed = _claim(ctx, job.namespace, pod, builders.job_ties(job.model))
    if claimed is None:
        return False  # claimed by another job, or gone: another Pod, or cold
    ctx.warm.seen(claimed)
    assert pod.ip is not None and pod.token is not None  # only such Pods are ready
    try:
        channel.deliver(pod.ip, builders.WARM_CHANNEL_PORT, pod.token, request, timeout=DELIVER_SECONDS)
    except channel.ChannelUnreached as error:
        # Nothing reached it: the Pod is not to be trusted with anything more, and the job goes cold.
        log.warning("warm pod unreachable", extra={"namespace": job.namespace, "pod": pod.name, "error": str(error)})
        _discard(ctx, pod)
        return False
    except channel.ChannelError as error:
        # Something was sent: whether it ran is the Pod's record's to say; the job stays on this Pod.
        log.warning("warm delivery unconfirmed", extra={"namespace": job.namespace, "pod": pod.name,
                                                         "error": str(error)})
    return True


def _discard(ctx: Context, pod: WarmPod) -> None:
    try:
        ctx.kube.delete_pod(pod.namespace, pod.name, pod.uid)
    except (NotFound, Conflict):
        pass


# ------------------------------------------------------------------------------ its record, at once

_RECORD_START = b'{"kind":"' + RUNNER_RESULT_KIND.encode() + b'"'


def is_final_record(line: bytes) -> bool:
    """A runner record line that is the last the runner means to write (not the command's part,
    which the listing's final record follows)."""
    if not line.startswith(_RECORD_START):
        return False
    try:
        return bool(json.loads(line).get("error") != LISTING_UNFINISHED)
    except ValueError:
        return False


# Pods whose runner's log a thread follows now (namespace, name), at most MAX_FOLLOWED at once: beyond
# that a job ends when the kubelet reports its Pod's end, as it always may. A Pod is followed once:
# the REMEMBERED latest Pods followed, each with whether its final record was seen, are never
# followed again, so a log that ends early or cannot be read costs one request, not one per pass.
MAX_FOLLOWED = 64
REMEMBERED = 4096
_following: set[tuple[str, str]] = set()
_followed: OrderedDict[tuple[str, str], bool] = OrderedDict()
_followed_lock = threading.Lock()


def _first_follow(key: tuple[str, str]) -> bool:
    with _followed_lock:
        if key in _followed or len(_following) >= MAX_FOLLOWED:
            return False
        _following.add(key)
        _followed[key] = False
        if len(_followed) > REMEMBERED:
            _followed.popitem(last=False)
        return True


def final_record_seen(namespace: str, pod_name: str) -> bool:
    """Whether the thread following this Pod's runner saw its final record go by."""
    with _followed_lock:
        return _followed.get((namespace, pod_name), False)


def follow(job: Job, pod_name: str) -> None:
    """Reconcile the job as soon as its Pod's runner has written its final record: a thread follows
    the runner's log and nudges the job then. The kubelet reports a container's end a second or more
    after it; the record is in the log at once. Once per Pod (a later call does nothing); a log that
    ends without the record, or cannot be read, nudges nothing: the Pod's own events and the timer
    still come. Without a way to nudge (the API tier's stepped passes) nothing is started."""
    ctx = job.ctx
    nudge = ctx.nudge
    if nudge is None:
        return
    key = (job.namespace, pod_name)
    if not _first_follow(key):
        return
    namespace, name, uid = job.namespace, job.name, job.model.uid
    budget = run_budget_seconds(job.model.spec.timeoutSeconds, ctx.config.sandbox.launchGraceSeconds)

    def watch() -> None:
        seen = False
        try:
            for line in ctx.kube.follow_pod_log(namespace, pod_name, builders.RUNNER_CONTAINER, budget):
                if is_final_record(line):
                    seen = True
                    break
        except Exception as error:  # noqa: BLE001 - the Pod's events and the timer still move the job
            log.info("pod log not followed", extra={"namespace": namespace, "pod": pod_name, "error": str(error)})
        with _followed_lock:
            _following.discard(key)
            if seen and key in _followed:
                _followed[key] = True
        if seen:
            nudge(namespace, name, uid)

    threading.Thread(target=watch, name=f"safeagent-follow-{pod_name}", daemon=True).start()
