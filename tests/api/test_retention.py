"""Retention on the real API server: the sweep (safeagent.reconcile.retention) as the chart's
operator ServiceAccount, with the World's clock moved past the retention and the grace.

Held here: a final job older than `retention.finishedJobSeconds` is deleted after its audit line
JobExpired (its Approval left to the garbage collector by its owner reference: the tier runs no
controller manager, so the test checks the reference the collector follows); a younger final job and
an unfinished one stay; 0 keeps finished jobs for ever. Uploaded objects no job refers to are
removed once they are `retention.sourceGraceSeconds` old and have been unreferenced that long;
referenced ones, young ones, a user's unlabelled ConfigMaps (even under an sa- name) and a labelled
ConfigMap with another name stay. A sweep costs a list per kind, and nothing more when nothing is due.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from safeagent import reconcile
from safeagent.client import Client, VerifiedCache
from safeagent.kube import Unavailable
from safeagent.models import GROUP, VERSION
from safeagent.sandbox import bundle
from tests.api.world import runner_record

DAY = 24 * 3600


def _names(world, plural: str = "sandboxjobs") -> set[str]:
    return {item["metadata"]["name"] for item in world.custom.list_namespaced_custom_object(
        GROUP, VERSION, world.ns, plural)["items"]}


def _configmaps(world) -> set[str]:
    return {item.metadata.name for item in world.core.list_namespaced_config_map(world.ns).items}


def _denied(world, name: str) -> tuple[str, str]:
    """A job whose Approval a reviewer denied: final, with an Approval it owns. (job UID, Approval)"""
    job, approval = world.await_approval(name)
    world.decide(approval, "Denied", "not today")
    assert world.run(name) == "Denied"
    return job["metadata"]["uid"], approval


def test_a_finished_job_past_its_retention_is_recorded_then_deleted(world):
    keep = world.ctx.config.retention.finishedJobSeconds
    assert keep == 7 * DAY, "the chart's default"
    retention = reconcile.Retention()
    uid, approval = _denied(world, "old-denied")
    assert world.run_to_result(runner_record(), "old-listed") == "Succeeded"
    world.add_job("unfinished", "ls")
    assert world.run("unfinished") == "Running"
    assert not retention.sweep(world.ctx, world.ns).jobs_expired, "nothing is due yet"

    world.clock.advance(keep + 1)
    assert world.run_to_result(runner_record(), "young") == "Succeeded"  # finished at the moved clock
    report = retention.sweep(world.ctx, world.ns)

    assert sorted(report.jobs_expired) == ["old-denied", "old-listed"]
    assert _names(world) == {"unfinished", "young"}
    expired = [line for line in world.audit.lines if line["event"] == "JobExpired"]
    assert {line["name"] for line in expired} == {"old-denied", "old-listed"}
    denied = next(line for line in expired if line["name"] == "old-denied")
    assert denied["phase"] == "Denied" and denied["requester"] == "tier-submitter"
    assert denied["approval"] == approval and denied["argv"] == ["rm", "delete-me.txt"]
    assert "retention.finishedJobSeconds" in denied["message"]
    assert ("SandboxJob", "JobExpired") in {(kind, reason) for kind, reason, _ in world.kube.events}
    # The Approval is the garbage collector's: owned by the deleted job, which the collector follows.
    owners = world.approvals[approval]["metadata"]["ownerReferences"]
    assert [(owner["uid"], owner["controller"]) for owner in owners] == [(uid, True)]


def test_zero_keeps_finished_jobs_for_ever(world):
    world.ctx.config = world.config(retention={"finishedJobSeconds": 0})
    _denied(world, "kept")
    world.clock.advance(3650 * DAY)
    assert not reconcile.Retention().sweep(world.ctx, world.ns).jobs_expired
    assert "kept" in _names(world)


def test_a_failed_deletion_leaves_the_job_referenced_and_is_tried_again(world):
    _denied(world, "stuck")
    world.clock.advance(world.ctx.config.retention.finishedJobSeconds + 1)
    world.kube.fail("delete_job", Unavailable("the server is busy"))
    retention = reconcile.Retention()
    assert not retention.sweep(world.ctx, world.ns).jobs_expired
    assert "stuck" in _names(world)
    assert retention.sweep(world.ctx, world.ns).jobs_expired == ["stuck"]
    lines = [line for line in world.audit.lines if line["event"] == "JobExpired"]
    assert len(lines) == 2, "the line comes first: a deletion that failed is recorded again, never missed"


# ------------------------------------------------------------------------------------ sources


def _upload(world, root: Path, files: dict[str, str]) -> tuple[str, set[str]]:
    """`files` uploaded as the client does it (labelled, immutable); (manifest, chunk names)."""
    root.mkdir()
    for path, text in files.items():
        (root / path).write_text(text)
    upload = Client(namespace=world.ns, api_client=world.stage.admin).upload(str(root), cache=VerifiedCache(None))
    manifest = upload.source.name
    data = world.core.read_namespaced_config_map(manifest, world.ns).data[bundle.MANIFEST_KEY]
    chunks = {bundle.chunk_name(digest) for digest in bundle.chunk_digests(bundle.read_manifest(manifest, data.encode()))}
    return manifest, chunks


def _bundle_job(world, name: str, manifest: str) -> None:
    world.add_job(name, "ls", source={"bundle": {"name": manifest}})


def test_uploads_no_job_refers_to_are_removed_after_the_grace(world, tmp_path):
    grace = world.ctx.config.retention.sourceGraceSeconds
    assert grace == 3600, "the chart's default"
    used, used_chunks = _upload(world, tmp_path / "used", {"a.txt": "kept\n"})
    unused, unused_chunks = _upload(world, tmp_path / "unused", {"b.txt": "removed\n"})
    assert not used_chunks & unused_chunks
    _bundle_job(world, "uses-it", used)
    # Not the client's: a user's ConfigMap under a chunk's name without the label, and a labelled
    # ConfigMap under another name. Neither is ever a candidate.
    lookalike = bundle.chunk_name(hashlib.sha256(b"mine").hexdigest())
    world.core.create_namespaced_config_map(world.ns, {"metadata": {"name": lookalike}, "data": {"x": "1"}})
    world.core.create_namespaced_config_map(world.ns, {"metadata": {
        "name": "notes", "labels": {bundle.UPLOADED_LABEL: bundle.UPLOADED_BY}}, "data": {"x": "1"}})
    retention = reconcile.Retention()

    first = retention.sweep(world.ctx, world.ns)
    assert first.objects_seen == 2 + len(used_chunks) + len(unused_chunks)
    assert not first.objects_removed, "young objects may belong to a job about to be made"

    world.clock.advance(grace + 1)
    second = retention.sweep(world.ctx, world.ns)
    assert set(second.objects_removed) == {unused} | unused_chunks
    left = _configmaps(world)
    assert {used, lookalike, "notes", "repo"} | used_chunks <= left
    assert not ({unused} | unused_chunks) & left

    # The job goes: its source is unreferenced from now on, and removed one grace later, not at once.
    world.custom.delete_namespaced_custom_object(GROUP, VERSION, world.ns, "sandboxjobs", "uses-it")
    assert not retention.sweep(world.ctx, world.ns).objects_removed, "unreferenced only since this sweep"
    world.clock.advance(grace + 1)
    assert set(retention.sweep(world.ctx, world.ns).objects_removed) == {used} | used_chunks
    assert {lookalike, "notes", "repo"} <= _configmaps(world)


def test_a_chunk_shared_with_a_referenced_bundle_stays(world, tmp_path):
    files = {"a.txt": "shared\n"}
    kept, chunks = _upload(world, tmp_path / "kept", files)
    other, other_chunks = _upload(world, tmp_path / "other", {**files, "b.txt": ""})
    assert chunks == other_chunks, "one small tree, one chunk: both manifests list it"
    _bundle_job(world, "keeps", kept)
    retention = reconcile.Retention()
    retention.sweep(world.ctx, world.ns)
    world.clock.advance(world.ctx.config.retention.sourceGraceSeconds + 1)
    assert retention.sweep(world.ctx, world.ns).objects_removed == [other]
    assert {kept} | chunks <= _configmaps(world)


def test_an_unreadable_manifest_spares_every_chunk(world, tmp_path):
    used, _ = _upload(world, tmp_path / "used", {"a.txt": "kept\n"})
    unused, unused_chunks = _upload(world, tmp_path / "unused", {"b.txt": "spared\n"})
    _bundle_job(world, "uses-it", used)
    world.kube.fail("get_configmap", Unavailable("the server is busy"), times=2)
    retention = reconcile.Retention()
    assert not retention.sweep(world.ctx, world.ns).chunks_known
    world.clock.advance(world.ctx.config.retention.sourceGraceSeconds + 1)
    report = retention.sweep(world.ctx, world.ns)
    assert not report.chunks_known
    assert report.objects_removed == [unused], "a manifest no job names goes; no chunk while one is unknown"
    assert unused_chunks <= _configmaps(world)


def test_zero_grace_keeps_uploads(world, tmp_path):
    world.ctx.config = world.config(retention={"sourceGraceSeconds": 0})
    unused, _ = _upload(world, tmp_path / "unused", {"b.txt": "kept\n"})
    retention = reconcile.Retention()
    retention.sweep(world.ctx, world.ns)
    world.clock.advance(365 * DAY)
    assert not retention.sweep(world.ctx, world.ns).objects_removed
    assert unused in _configmaps(world)


def test_a_sweep_costs_a_list_per_kind_when_nothing_is_due(world, tmp_path):
    used, _ = _upload(world, tmp_path / "used", {"a.txt": "kept\n"})
    for index in range(3):
        _bundle_job(world, f"uses-it-{index}", used)
    retention = reconcile.Retention()
    first = retention.sweep(world.ctx, world.ns)
    assert first.api_calls == 3, "a list of jobs, a list of uploads, one read of the one manifest named"
    assert retention.sweep(world.ctx, world.ns).api_calls == 2, "the manifest's chunks are remembered"


@pytest.mark.parametrize("page", [1, 2])
def test_jobs_and_uploads_are_read_page_by_page(world, tmp_path, monkeypatch, page):
    from safeagent.reconcile import retention as module

    monkeypatch.setattr(module, "JOB_PAGE", page)
    monkeypatch.setattr(module, "OBJECT_PAGE", page)
    used, chunks = _upload(world, tmp_path / "used", {"a.txt": "kept\n"})
    for index in range(3):
        _bundle_job(world, f"uses-it-{index}", used)
    report = reconcile.Retention().sweep(world.ctx, world.ns)
    assert report.jobs_seen == 3 and report.objects_seen == 1 + len(chunks)
