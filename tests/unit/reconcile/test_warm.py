"""Which runner log line ends a warm job early (reconcile.warm.is_final_record), what the pool
makes of a Pod it sees (reconcile.pool.warm_pod_of), and what a job's source costs to deliver
(reconcile.warm.source_files): each object read once, no more read than the cap lets through."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from safeagent import builders
from safeagent.kube import NotFound, Unavailable
from safeagent.reconcile.pool import WarmPool, warm_pod_of
from safeagent.reconcile.source import Manifest
from safeagent.reconcile.warm import is_final_record, source_files
from safeagent.sandbox import bundle, channel, contract, runner


def _line(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


@pytest.mark.parametrize(("line", "final"), [
    pytest.param(_line(runner.no_result(None)), True, id="nothing-ran"),
    pytest.param(_line({**runner.no_result(None), "error": contract.LISTING_UNFINISHED}), False, id="commands-part"),
    pytest.param(_line(runner.no_result("bad spec")), True, id="runner-error"),
    pytest.param(b'{"kind":"safeagent.ca/prepare-result","ok":true}', False, id="preparation-record"),
    pytest.param(_line(runner.no_result(None))[:-5], False, id="cut-mid-line"),
    pytest.param(b"some diagnostics", False, id="not-a-record"),
])
def test_only_the_runners_last_record_ends_a_warm_job_early(line, final):
    assert is_final_record(line) is final


def _pod(phase="Running", ready=True, claimed=False, labels=None) -> dict:
    metadata_labels = {builders.LABEL_WARM: "true", builders.LABEL_PROFILE: "none", **(labels or {})}
    if claimed:
        metadata_labels[builders.LABEL_JOB_UID] = "u"
    return {
        "metadata": {"name": "w", "namespace": "ns", "uid": "p", "resourceVersion": "7", "labels": metadata_labels},
        "spec": {"containers": [{"env": [{"name": channel.TOKEN_ENV, "value": "t" * 64}]}]},
        "status": {"phase": phase, "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_a_pod_without_the_warm_label_is_not_in_the_pool():
    pod = _pod()
    del pod["metadata"]["labels"][builders.LABEL_WARM]
    assert warm_pod_of(pod) is None


@pytest.mark.parametrize(("pod", "ready"), [
    pytest.param(_pod(), True, id="ready"),
    pytest.param(_pod(ready=False), False, id="still-proving"),
    pytest.param(_pod(claimed=True), False, id="claimed"),
    pytest.param(_pod(phase="Succeeded"), False, id="ended"),
])
def test_only_a_ready_unclaimed_running_pod_can_be_taken(pod, ready):
    pool = WarmPool()
    pool.seen(pod)
    assert bool(pool.ready("ns", "none")) is ready
    assert pool.ready("ns", "git-read") == []


def test_a_pod_being_taken_is_offered_to_nobody_else_and_a_deleted_one_goes():
    pool = WarmPool()
    pool.seen(_pod())
    (taken,) = pool.ready("ns", "none")
    assert pool.start_taking(taken) and not pool.start_taking(taken)
    assert pool.ready("ns", "none") == [] and pool.unused("ns", "none") == 0
    pool.done_taking(taken)
    assert pool.unused("ns", "none") == 1
    pool.seen(_pod(), deleted=True)
    assert pool.unused("ns", "none") == 0


# ------------------------------------------------------------------ what a job's source costs warm


class Objects:
    """A namespace's ConfigMaps as the API would return them, each read counted."""

    def __init__(self, objects: dict[str, dict]) -> None:
        self.objects, self.reads = objects, []
        self.failing: dict[str, Exception] = {}

    def get_configmap(self, namespace: str, name: str) -> dict:
        self.reads.append(name)
        if name in self.failing:
            raise self.failing[name]
        if name not in self.objects:
            raise NotFound(f"configmaps {name} not found")
        return self.objects[name]


def _uploaded(tmp_path, files: dict[str, bytes]) -> tuple[bundle.Packed, Objects]:
    """`files` packed and uploaded as `safeagent run --source DIR` does: the chunks' objects (the
    manifest's is read by launch, not here)."""
    for path, content in files.items():
        (tmp_path / path).write_bytes(content)
    packed = bundle.pack(str(tmp_path))
    objects = {bundle.chunk_name(digest): {"binaryData": {bundle.CHUNK_KEY: base64.b64encode(
        packed.compressed(digest)).decode()}} for digest in packed.chunks}
    return packed, Objects(objects)


def _manifest(packed: bundle.Packed) -> Manifest:
    return Manifest(json.loads(packed.manifest), packed.manifest)


def _noise(size: int, seed: int) -> bytes:
    """Bytes zlib cannot shrink, so each chunk's object is about its size."""
    return b"".join(hashlib.sha256(f"{seed}/{n}".encode()).digest() for n in range(size // 32))


CAP = builders.WARM_MAX_REQUEST_BYTES


def test_a_bundles_files_are_its_manifest_and_each_chunk_read_once(tmp_path):
    same = _noise(bundle.LARGE_FILE, 1)
    packed, kube = _uploaded(tmp_path, {"a.bin": same, "b.bin": same, "c.txt": b"hello\n"})
    assert len(json.loads(packed.manifest)["chunks"]) == 3 and len(packed.chunks) == 2  # one chunk named twice
    files = source_files(kube, "ns", None, _manifest(packed), CAP)
    assert files is not None
    assert kube.reads == [bundle.chunk_name(digest) for digest in packed.chunks]  # each once; no manifest read
    assert base64.b64decode(files[bundle.MANIFEST_KEY]) == packed.manifest  # the bytes as stored
    assert {name: base64.b64decode(content) for name, content in files.items() if name != bundle.MANIFEST_KEY} == {
        bundle.chunk_name(digest): packed.compressed(digest) for digest in packed.chunks}


def test_a_bundle_with_a_chunk_missing_goes_cold_and_reads_no_further(tmp_path):
    packed, kube = _uploaded(tmp_path, {f"{n}.bin": _noise(bundle.LARGE_FILE, n) for n in range(3)})
    first, second, _ = packed.chunks
    del kube.objects[bundle.chunk_name(second)]
    assert source_files(kube, "ns", None, _manifest(packed), CAP) is None
    assert kube.reads == [bundle.chunk_name(first), bundle.chunk_name(second)]


@pytest.mark.parametrize("trouble", ["no-key", "unavailable"])
def test_a_chunk_object_the_volume_could_not_mount_or_the_api_could_not_give_sends_the_job_cold(tmp_path, trouble):
    packed, kube = _uploaded(tmp_path, {"a.bin": _noise(bundle.LARGE_FILE, 1), "b.txt": b"x"})
    name = bundle.chunk_name(next(iter(packed.chunks)))
    if trouble == "no-key":
        kube.objects[name] = {"binaryData": {"other": "eA=="}}
    else:
        kube.failing[name] = Unavailable("the server is busy")
    assert source_files(kube, "ns", None, _manifest(packed), CAP) is None


def test_a_bundle_past_the_cap_goes_cold_as_soon_as_the_reading_passes_it(tmp_path):
    packed, kube = _uploaded(tmp_path, {f"{n}.bin": _noise(bundle.LARGE_FILE, n) for n in range(4)})
    one = len(kube.objects[bundle.chunk_name(next(iter(packed.chunks)))]["binaryData"][bundle.CHUNK_KEY])
    assert source_files(kube, "ns", None, _manifest(packed), 2 * one) is None
    assert len(kube.reads) == 2  # the second chunk passed the cap: the other two were never read
    kube.reads.clear()
    assert source_files(kube, "ns", None, _manifest(packed), 5 * one) is not None
    assert len(kube.reads) == 4


def test_a_configmaps_files_are_its_keys_in_one_read():
    kube = Objects({"repo": {"data": {"a.txt": "x"}, "binaryData": {"b.bin": "AP8="}}})
    assert source_files(kube, "ns", "repo", None, CAP) == {"a.txt": "eA==", "b.bin": "AP8="}
    assert kube.reads == ["repo"]
    assert source_files(Objects({}), "ns", "repo", None, CAP) is None  # the cold path says SourceNotFound
