"""The pure parts of retention (safeagent.reconcile.retention): which jobs are due, which objects
are the client's, and which of those may go. The sweep itself runs against a real API server
(tests/api/test_retention.py)."""

from __future__ import annotations

import datetime

import pytest

from safeagent.reconcile.retention import SourceObject, is_expired, job_facts, removable, uploaded_object
from safeagent.sandbox import bundle

NOW = datetime.datetime(2026, 12, 10, 12, 0, tzinfo=datetime.timezone.utc)
HOUR = 3600
MANIFEST = "sa-bundle-" + "a" * 64
CHUNK = "sa-chunk-" + "b" * 64
LABELS = {bundle.UPLOADED_LABEL: bundle.UPLOADED_BY}


def ago(seconds: float) -> datetime.datetime:
    return NOW - datetime.timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return ago(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(phase: str | None, completed: float | None, source: dict | None = None) -> dict:
    status = {"phase": phase} if phase else {}
    if completed is not None:
        status["completionTime"] = stamp(completed)
    return {"metadata": {"name": "j", "uid": "u"}, "spec": {"source": source or {"configMap": {"name": "repo"}}},
            "status": status}


@pytest.mark.parametrize(("phase", "completed", "keep", "due"), [
    ("Succeeded", 7 * 24 * HOUR, 7 * 24 * HOUR, True),
    ("Failed", 7 * 24 * HOUR + 1, 7 * 24 * HOUR, True),
    ("Denied", 2 * HOUR, HOUR, True),
    ("Rejected", 2 * HOUR, HOUR, True),
    ("Succeeded", 7 * 24 * HOUR - 1, 7 * 24 * HOUR, False),  # younger than the retention
    ("Succeeded", 10 ** 9, 0, False),  # 0 keeps for ever
    ("Running", 10 ** 6, HOUR, False),  # not final, whatever its status says
    ("AwaitingApproval", None, HOUR, False),
    (None, None, HOUR, False),
    ("Failed", None, HOUR, False),  # final without a completion time: never guessed
])
def test_a_job_is_due_only_when_final_and_completed_long_enough_ago(phase, completed, keep, due):
    assert is_expired(job_facts(job(phase, completed)), NOW, keep) is due


def test_a_job_names_its_bundle_and_nothing_else():
    assert job_facts(job("Running", None, {"bundle": {"name": MANIFEST}})).bundle == MANIFEST
    assert job_facts(job("Running", None)).bundle is None
    assert job_facts({"metadata": {}, "status": {"completionTime": "yesterday"}}).completed is None


@pytest.mark.parametrize(("name", "labels", "theirs"), [
    (MANIFEST, LABELS, True),
    (CHUNK, LABELS, True),
    (CHUNK, {}, False),  # a user's ConfigMap under a chunk's name
    (CHUNK, {bundle.UPLOADED_LABEL: "someone-else"}, False),
    ("repo", LABELS, False),  # labelled, but not a manifest's or chunk's name
    ("sa-chunk-" + "B" * 64, LABELS, False),
    ("sa-chunk-" + "b" * 63, LABELS, False),
    (MANIFEST + "-copy", LABELS, False),
])
def test_only_labelled_objects_named_like_a_manifest_or_chunk_are_the_clients(name, labels, theirs):
    metadata = {"name": name, "uid": "u", "labels": labels, "creationTimestamp": stamp(HOUR)}
    assert (uploaded_object(metadata) is not None) is theirs


def _object(name: str, created: float, uid: str = "u") -> SourceObject:
    return SourceObject(name=name, uid=uid, created=ago(created))


@pytest.mark.parametrize(("created", "unreferenced", "gone"), [
    (2 * HOUR, 2 * HOUR, True),
    (HOUR, HOUR, True),
    (HOUR - 1, 2 * HOUR, False),  # too young: may belong to a job about to be made
    (30 * 24 * HOUR, HOUR - 1, False),  # old, but unreferenced only for a while (a reuse in flight)
    (30 * 24 * HOUR, None, False),  # never seen unreferenced
])
def test_an_object_goes_when_old_and_unreferenced_for_the_grace(created, unreferenced, gone):
    since = {} if unreferenced is None else {"u": ago(unreferenced)}
    chosen = removable([_object(CHUNK, created)], set(), True, since, NOW, HOUR)
    assert bool(chosen) is gone


def test_referenced_objects_stay_and_unknown_chunks_stay():
    old = {"m": ago(2 * HOUR), "c": ago(2 * HOUR)}
    objects = [_object(MANIFEST, 2 * HOUR, "m"), _object(CHUNK, 2 * HOUR, "c")]
    assert removable(objects, {MANIFEST, CHUNK}, True, old, NOW, HOUR) == []
    assert [item.name for item in removable(objects, set(), False, old, NOW, HOUR)] == [MANIFEST]
    assert removable(objects, set(), True, old, NOW, 0) == [], "0 keeps every upload"
