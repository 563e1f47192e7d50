"""Retention: finished SandboxJobs expire, and uploaded sources no job refers to are removed.

One sweep of one sandbox namespace (`Retention.sweep`, called by the operator every
`retention.sweepIntervalSeconds`, handlers.py) costs a bounded number of API calls:

  1. the namespace's SandboxJobs, listed in pages of JOB_PAGE;
     a final job whose completionTime is `retention.finishedJobSeconds` old (0: never) gets the
     audit line `JobExpired` first, then a delete with its UID as precondition (its Approval goes
     with it: the garbage collector follows the owner reference). At most MAX_JOB_DELETIONS a sweep;
     the rest wait for the next one.
  2. the metadata (no data) of the ConfigMaps carrying the client's label, in pages of OBJECT_PAGE;
     only those also named `sa-bundle-<sha256>` or `sa-chunk-<sha256>` are candidates: a user's own
     ConfigMap is never one, whatever its name or label alone.
  3. each manifest a remaining job names, read once per (name, UID) for the chunks it lists (a
     manifest is immutable and named by its digest: the answer is kept for the operator's life).
  4. a delete, UID as precondition, of each candidate that no remaining job refers to (directly, or
     through a manifest a job names), that is `retention.sourceGraceSeconds` old, and that this
     operator has seen unreferenced for as long (0: never). At most MAX_OBJECT_DELETIONS a sweep.

Why both ages: the client uploads the chunks and the manifest before it creates the job, so a young
object may belong to a job about to be made (its creation time protects it); and an old chunk that a
new upload reuses was just checked by the client, so an object stops being protected only once it
has been unreferenced for the whole grace (the time it was first seen unreferenced is kept in
memory: a restarted operator starts that clock again, which delays a deletion and never hastens
one). What remains is a narrow race, stated in docs/operations.md: a client that reuses an object
unreferenced for the whole grace in the moment the sweep deletes it. Its job then ends
SourceNotFound (nothing ran), and running the command again uploads what is missing.

A manifest a remaining job names that cannot be read now (the API is unavailable) leaves its chunks
unknown: that sweep removes no chunk at all. Pure decisions are functions of their arguments and a
given `now` (tests/unit/reconcile/test_retention.py); the sweep is tested against a real API server
(tests/api/test_retention.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from safeagent import audit
from safeagent.kube import Conflict, KubeError, NotFound
from safeagent.models import TERMINAL_JOB_PHASES
from safeagent.reconcile.context import Context
from safeagent.reconcile.deadlines import parse_time, seconds_after
from safeagent.sandbox import bundle

log = logging.getLogger("safeagent.retention")

JOB_PAGE = 100
OBJECT_PAGE = 500
MAX_JOB_DELETIONS = 200
MAX_OBJECT_DELETIONS = 500
UPLOADED_SELECTOR = f"{bundle.UPLOADED_LABEL}={bundle.UPLOADED_BY}"
_FINAL = frozenset(phase.value for phase in TERMINAL_JOB_PHASES)


@dataclasses.dataclass(frozen=True)
class JobFacts:
    """What retention needs of a job: whether it is final and since when, and what source it names."""

    name: str
    uid: str
    phase: str | None
    completed: datetime.datetime | None
    bundle: str | None


def job_facts(body: dict[str, Any]) -> JobFacts:
    metadata, status = body.get("metadata") or {}, body.get("status") or {}
    source = (body.get("spec") or {}).get("source") or {}
    named = (source.get("bundle") or {}).get("name") if isinstance(source, dict) else None
    try:
        completed = parse_time(status.get("completionTime"))
    except ValueError:
        completed = None
    return JobFacts(
        name=str(metadata.get("name", "")), uid=str(metadata.get("uid", "")), phase=status.get("phase"),
        completed=completed, bundle=named if isinstance(named, str) else None,
    )


def is_expired(job: JobFacts, now: datetime.datetime, keep_seconds: int) -> bool:
    """A final job whose completionTime is `keep_seconds` old; never with 0, never without a time."""
    if keep_seconds <= 0 or job.phase not in _FINAL or job.completed is None:
        return False
    return now >= seconds_after(job.completed, keep_seconds)


@dataclasses.dataclass(frozen=True)
class SourceObject:
    """An object the client uploaded: a manifest or a chunk, by name, UID and creation time."""

    name: str
    uid: str
    created: datetime.datetime | None

    @property
    def is_manifest(self) -> bool:
        return self.name.startswith(bundle.MANIFEST_PREFIX)


def uploaded_object(metadata: dict[str, Any]) -> SourceObject | None:
    """The object if it is one the client made (its label *and* a manifest's or chunk's name), else None."""
    name = str(metadata.get("name", ""))
    labels = metadata.get("labels") or {}
    if labels.get(bundle.UPLOADED_LABEL) != bundle.UPLOADED_BY:
        return None
    if not (bundle.MANIFEST_NAME.match(name) or bundle.CHUNK_NAME.match(name)):
        return None
    try:
        created = parse_time(metadata.get("creationTimestamp"))
    except ValueError:
        created = None
    return SourceObject(name=name, uid=str(metadata.get("uid", "")), created=created)


def removable(
    objects: Iterable[SourceObject],
    referenced: set[str],
    chunks_known: bool,
    unreferenced_since: dict[str, datetime.datetime],
    now: datetime.datetime,
    grace_seconds: int,
) -> list[SourceObject]:
    """The objects to delete now: not referenced, `grace_seconds` old, and unreferenced (as first seen,
    `unreferenced_since` by UID) that long. No chunk while `chunks_known` is False; nothing with 0."""
    if grace_seconds <= 0:
        return []
    chosen = []
    for item in objects:
        if item.name in referenced or (not item.is_manifest and not chunks_known):
            continue
        since = unreferenced_since.get(item.uid)
        if item.created is None or since is None:
            continue
        if now >= seconds_after(item.created, grace_seconds) and now >= seconds_after(since, grace_seconds):
            chosen.append(item)
    return chosen


@dataclasses.dataclass
class Report:
    """What one sweep of one namespace did (logged, and returned for tests)."""

    namespace: str
    jobs_seen: int = 0
    jobs_expired: list[str] = dataclasses.field(default_factory=list)
    objects_seen: int = 0
    objects_removed: list[str] = dataclasses.field(default_factory=list)
    chunks_known: bool = True
    api_calls: int = 0


class Retention:
    """The sweep and what it remembers between sweeps: when each uploaded object was first seen
    unreferenced (by UID), and each manifest's chunks (by name and UID). Thread-safe."""

    def __init__(self) -> None:
        self._since: dict[str, dict[str, datetime.datetime]] = {}  # namespace -> UID -> first seen unreferenced
        self._chunks: dict[tuple[str, str, str], frozenset[str]] = {}  # (namespace, manifest, UID) -> chunk names
        self._lock = threading.Lock()

    def sweep(self, ctx: Context, namespace: str) -> Report:
        """One pass over `namespace`. API errors propagate (KubeError); the next sweep starts over."""
        with self._lock:
            report = Report(namespace)
            bundles = self._expire_jobs(ctx, namespace, report)
            if ctx.config.retention.sourceGraceSeconds > 0:
                self._remove_sources(ctx, namespace, bundles, report)
            if report.jobs_expired or report.objects_removed:
                log.info("retention swept", extra={
                    "namespace": namespace, "jobsExpired": len(report.jobs_expired),
                    "objectsRemoved": len(report.objects_removed), "apiCalls": report.api_calls,
                })
            return report

    # ------------------------------------------------------------------ jobs

    def _expire_jobs(self, ctx: Context, namespace: str, report: Report) -> set[str]:
        """Expire what is due; returns the manifests the remaining jobs name."""
        keep = ctx.config.retention.finishedJobSeconds
        bundles: set[str] = set()
        for body in _pages(ctx.kube.list_jobs, namespace, JOB_PAGE, report):
            report.jobs_seen += 1
            facts = job_facts(body)
            due = is_expired(facts, ctx.now(), keep) and len(report.jobs_expired) < MAX_JOB_DELETIONS
            if due and self._expire(ctx, body, facts, keep, report):
                continue
            if facts.bundle:
                bundles.add(facts.bundle)
        return bundles

    def _expire(self, ctx: Context, body: dict[str, Any], facts: JobFacts, keep: int, report: Report) -> bool:
        """Record, then delete one job; False when it is still there (its source stays referenced)."""
        status = body.get("status") or {}
        ctx.auditor.record(
            body, audit.JOB_EXPIRED, phase=facts.phase, job=facts.name, argv=status.get("argv"),
            reason=status.get("reason"), approval=status.get("approvalName"), decidedBy=status.get("decidedBy"),
            exitCode=status.get("exitCode"), profile=(body.get("spec") or {}).get("networkProfile"),
            message=f"deleted {keep} seconds after it finished (retention.finishedJobSeconds)",
        )
        report.api_calls += 1
        try:
            ctx.kube.delete_job(body["metadata"]["namespace"], facts.name, facts.uid)
        except NotFound:
            pass  # deleted meanwhile: gone all the same
        except Conflict:
            return False  # another object under the name now: not the one that expired
        except KubeError as error:
            log.warning("expired job not deleted", extra={"job": facts.name, "error": str(error)})
            return False
        report.jobs_expired.append(facts.name)
        return True

    # ------------------------------------------------------------------ uploaded sources

    def _remove_sources(self, ctx: Context, namespace: str, bundles: set[str], report: Report) -> None:
        objects = [
            found for found in (uploaded_object(item.get("metadata") or {}) for item in
                                _pages(lambda ns, limit, after: ctx.kube.list_configmap_metadata(
                                    ns, UPLOADED_SELECTOR, limit, after), namespace, OBJECT_PAGE, report))
            if found is not None
        ]
        report.objects_seen = len(objects)
        uids = {item.name: item.uid for item in objects}
        referenced = set(bundles)
        for manifest in sorted(bundles):
            chunks = self._chunks_of(ctx, namespace, manifest, uids.get(manifest), report)
            if chunks is None:
                report.chunks_known = False
            else:
                referenced |= chunks
        now = ctx.now()
        since = self._since.setdefault(namespace, {})
        alive = {item.uid for item in objects if item.name not in referenced}
        for uid in list(since):
            if uid not in alive:
                del since[uid]  # referenced again, or gone
        for uid in alive:
            since.setdefault(uid, now)
        grace = ctx.config.retention.sourceGraceSeconds
        for item in removable(objects, referenced, report.chunks_known, since, now, grace)[:MAX_OBJECT_DELETIONS]:
            report.api_calls += 1
            try:
                ctx.kube.delete_configmap(namespace, item.name, item.uid)
            except (NotFound, Conflict):
                pass  # gone, or replaced by a new object (whose own clock starts now)
            except KubeError as error:
                log.warning("source object not deleted", extra={"object": item.name, "error": str(error)})
                continue
            since.pop(item.uid, None)
            report.objects_removed.append(item.name)
        self._chunks = {key: value for key, value in self._chunks.items()
                        if key[0] != namespace or key[1] in bundles}

    def _chunks_of(
        self, ctx: Context, namespace: str, manifest: str, uid: str | None, report: Report
    ) -> frozenset[str] | None:
        """The chunk names a manifest lists (empty: it does not exist or is not a valid manifest, so
        its job reads no chunk); None when it cannot be read now."""
        if uid is not None and (namespace, manifest, uid) in self._chunks:
            return self._chunks[(namespace, manifest, uid)]
        report.api_calls += 1
        try:
            body = ctx.kube.get_configmap(namespace, manifest)
        except NotFound:
            return frozenset()
        except KubeError as error:
            log.warning("manifest not read", extra={"object": manifest, "error": str(error)})
            return None
        data = (body.get("data") or {}).get(bundle.MANIFEST_KEY)
        try:
            if not isinstance(data, str):
                raise bundle.BundleRejected("bad_bundle", "no manifest")
            listed = bundle.read_manifest(manifest, data.encode())
            chunks = frozenset(bundle.chunk_name(digest) for digest in bundle.chunk_digests(listed))
        except bundle.BundleRejected:
            chunks = frozenset()  # the job that names it is rejected before any chunk is read
        found_uid = str((body.get("metadata") or {}).get("uid", ""))
        self._chunks[(namespace, manifest, found_uid)] = chunks
        return chunks


def _pages(list_page: Any, namespace: str, limit: int, report: Report) -> Iterator[dict[str, Any]]:
    after: str | None = None
    while True:
        report.api_calls += 1
        items, after = list_page(namespace, limit, after)
        yield from items
        if not after:
            return
