"""`safeagent run --source DIR` on the real API server, as an agent bound to the submitter role, with
the operator under Kopf in this process (test_handlers.py's `operated`). The test plays the node:
it lays the Pod's projected volume out from the ConfigMaps as the kubelet would (a `..data` link to
a hidden directory of files) and runs the real preparation step on it.

Held here: a directory's chunks are uploaded once and reused (an unchanged tree sends nothing, one
edit a chunk or two); the Pod mounts exactly the manifest and its chunks; the preparation step
rebuilds the tree and its digest is the directory's; an Approval pins that digest before any Pod;
an object pre-created under a chunk's name with other bytes (or not immutable) stops the upload,
and one slipped in after the upload never reaches a command; and a 50 MB repository with its
history goes through (timings printed with -s).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from safeagent.client import BundleSource, Client, Outcome, SourceRefused, VerifiedCache
from safeagent.sandbox import bundle, prepare
from safeagent.sandbox.digest import digest_tree
from tests.api.stage import BOUND_NAMESPACE
from tests.api.test_client import identity, pod_of, status_of
from tests.api.test_handlers import _as_the_operator, eventually, operated  # noqa: F401 -- the fixture and its login
from tests.api.world import runner_record

SAFEAGENT = str(Path(sys.executable).parent / "safeagent")


def tree(root: Path, files: dict[str, bytes | str]) -> Path:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def git_repository(root: Path, rounds: int, files: int, size: int) -> Path:
    """A repository with `rounds` commits of `files` files of `size` random bytes each."""
    root.mkdir()
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    for round_ in range(rounds):
        tree(root, {f"src/module{index:03}.bin": os.urandom(size) for index in range(round_, files, rounds)})
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", f"round {round_}"], check=True)
    return root


@pytest.fixture
def agent(stage, operated, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return Client(kubeconfig=identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path), namespace=BOUND_NAMESPACE)


def play_the_kubelet(world, pod: dict, root: Path) -> tuple[str, dict]:
    """The Pod's projected source volume as the kubelet lays it out, and the prepare step's spec."""
    volume = next(item for item in pod["spec"]["volumes"] if item["name"] == "source")
    hidden = root / "..2026_01_01_00_00_00.000000000"
    hidden.mkdir(parents=True)
    for projected in volume["projected"]["sources"]:
        configmap = world.core.read_namespaced_config_map(projected["configMap"]["name"], world.ns)
        for item in projected["configMap"]["items"]:
            if configmap.binary_data and item["key"] in configmap.binary_data:
                data = base64.b64decode(configmap.binary_data[item["key"]])
            else:
                data = configmap.data[item["key"]].encode()
            (hidden / item["path"]).write_bytes(data)
    os.symlink(hidden.name, root / "..data")
    for entry in hidden.iterdir():
        os.symlink(f"..data/{entry.name}", root / entry.name)
    spec = json.loads(pod["spec"]["initContainers"][0]["args"][0])
    return str(root), spec


def prepared(world, pod_name: str, tmp_path: Path) -> tuple[dict, Path]:
    pod = world.pod(pod_name)
    source_dir, spec = play_the_kubelet(world, pod, tmp_path / "source")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    spec.update(sourceDir=source_dir, workspace=str(workspace))
    try:
        record = prepare.prepare(spec)
    except prepare.Rejected as rejected:
        record = prepare.record(False, rejected.reason, rejected.message)
    return record, workspace


def start(target, *args, **kwargs):
    box: dict = {}

    def body():
        try:
            box["result"] = target(*args, **kwargs)
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, box


def test_a_directory_runs_and_its_chunks_are_reused(operated, agent, tmp_path):  # noqa: F811
    world = operated
    source = git_repository(tmp_path / "repo", rounds=3, files=30, size=40_000)
    first = agent.upload(str(source))
    assert first.sent > 0 and first.chunks >= 2
    for digest in bundle.pack(str(source)).chunks:
        made = world.core.read_namespaced_config_map(bundle.chunk_name(digest), world.ns)
        assert made.immutable is True
    again = agent.upload(str(source))
    assert (again.source, again.sent) == (first.source, 0), "an unchanged tree sends nothing"
    fresh_cache = agent.upload(str(source), cache=VerifiedCache(None))
    assert fresh_cache.sent == 0, "chunks another run made are checked, then reused"
    (source / "src" / "module007.bin").write_bytes(b"edited\n")
    edited = agent.upload(str(source))
    assert 0 < edited.sent < first.sent / 2, (edited.sent, first.sent)

    name = f"dir-{uuid.uuid4().hex[:6]}"
    thread, box = start(agent.run, "git log --oneline", edited.source, name=name, timeout=60)
    pod_name = eventually(lambda: pod_of(world, name), "the job's Pod launched")
    pod = world.pod(pod_name)
    mounted = [item["configMap"]["name"] for item in
               next(v for v in pod["spec"]["volumes"] if v["name"] == "source")["projected"]["sources"]]
    manifest = bundle.read_manifest(edited.source.name, world.core.read_namespaced_config_map(
        edited.source.name, world.ns).data[bundle.MANIFEST_KEY].encode())
    assert mounted == [edited.source.name] + [bundle.chunk_name(d) for d in bundle.chunk_digests(manifest)]
    record, workspace = prepared(world, pod_name, tmp_path)
    assert record["ok"], record
    assert bundle.tree_digest(manifest) == digest_tree(str(source)), "the manifest describes the edited tree"
    assert record["digest"] == digest_tree(str(source)), (record, sorted(os.listdir(workspace)))
    log = subprocess.run(["git", "-C", str(workspace), "log", "--oneline"], capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 3
    world.finish_pod(pod_name, runner_record(stdout=log.stdout), prepare_record=record)
    thread.join(45)
    assert box.get("result") is not None, box
    assert box["result"].outcome is Outcome.SUCCEEDED


def test_an_approval_pins_the_directorys_digest_before_any_pod(operated, agent, tmp_path):  # noqa: F811
    world = operated
    source = tree(tmp_path / "repo", {"delete-me.txt": "bye\n", "keep.txt": "stay\n"})
    uploaded = agent.upload(str(source))
    result = agent.run("rm delete-me.txt", uploaded.source, timeout=60, wait_approval=0)
    assert result.outcome is Outcome.AWAITING_APPROVAL
    approval = world.approvals[result.approval]
    assert approval["spec"]["sourceDigest"] == digest_tree(str(source))
    assert approval["spec"]["source"] == {"bundle": {"name": uploaded.source.name}}
    assert not status_of(world, result.job).get("reviewPodName"), "no review Pod: the manifest names every file's digest"


def test_a_chunk_pre_created_with_other_bytes_stops_the_upload(stage, operated, agent, tmp_path):  # noqa: F811
    world = operated
    source = tree(tmp_path / "repo", {"a.txt": "the real content " + uuid.uuid4().hex})
    digest = next(iter(bundle.pack(str(source)).chunks))
    world.core.create_namespaced_config_map(world.ns, {
        "metadata": {"name": bundle.chunk_name(digest)}, "immutable": True,
        "binaryData": {bundle.CHUNK_KEY: base64.b64encode(__import__("zlib").compress(b"evil")).decode()}})
    with pytest.raises(SourceRefused) as refused:
        agent.upload(str(source))
    assert refused.value.reason == "poisoned_object"
    code = subprocess.run([SAFEAGENT, "run", "--kubeconfig", agent_kubeconfig(stage, tmp_path), "-n", BOUND_NAMESPACE,
                           "--source", str(source), "--", "ls"], capture_output=True, text=True, timeout=60)
    assert code.returncode == 201 and "poisoned_object" in code.stderr


def test_a_mutable_object_under_a_chunks_name_is_not_reused(operated, agent, tmp_path):  # noqa: F811
    world = operated
    source = tree(tmp_path / "repo", {"a.txt": "content " + uuid.uuid4().hex})
    packed = bundle.pack(str(source))
    digest = next(iter(packed.chunks))
    world.core.create_namespaced_config_map(world.ns, {  # the right bytes, but it could change later
        "metadata": {"name": bundle.chunk_name(digest)},
        "binaryData": {bundle.CHUNK_KEY: base64.b64encode(packed.compressed(digest)).decode()}})
    with pytest.raises(SourceRefused):
        agent.upload(str(source))


def test_a_chunk_swapped_after_the_upload_never_reaches_a_command(operated, agent, tmp_path):  # noqa: F811
    """An administrator-level swap (delete and re-create under the name, which a submitter cannot):
    the preparation step checks every chunk against its name and rejects the source."""
    world = operated
    source = tree(tmp_path / "repo", {"a.txt": "content " + uuid.uuid4().hex})
    uploaded = agent.upload(str(source))
    digest = next(iter(bundle.pack(str(source)).chunks))
    world.core.delete_namespaced_config_map(bundle.chunk_name(digest), world.ns)
    world.core.create_namespaced_config_map(world.ns, {
        "metadata": {"name": bundle.chunk_name(digest)}, "immutable": True,
        "binaryData": {bundle.CHUNK_KEY: base64.b64encode(__import__("zlib").compress(b"swapped")).decode()}})
    name = f"swap-{uuid.uuid4().hex[:6]}"
    thread, box = start(agent.run, "cat a.txt", uploaded.source, name=name, timeout=60)
    pod_name = eventually(lambda: pod_of(world, name), "the job's Pod launched")
    record, _ = prepared(world, pod_name, tmp_path)
    assert (record["ok"], record["reason"]) == (False, "chunk_digest_mismatch")
    world.finish_pod(pod_name, None, phase="Failed", prepare_exit=1, prepare_record=record)
    thread.join(45)
    assert box["result"].outcome is Outcome.REJECTED and box["result"].reason == "chunk_digest_mismatch"


def agent_kubeconfig(stage, tmp_path) -> str:
    return identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_50_mb_repository_with_its_history(operated, agent, tmp_path):  # noqa: F811
    world = operated
    source = git_repository(tmp_path / "big", rounds=2, files=250, size=100_000)  # 25 MB of files, 25 MB in .git
    size = sum(path.stat().st_size for path in source.rglob("*") if path.is_file())
    assert size >= 50 * 1000 * 1000, size
    started = time.monotonic()
    first = agent.upload(str(source))
    first_seconds = time.monotonic() - started
    started = time.monotonic()
    again = agent.upload(str(source))
    again_seconds = time.monotonic() - started
    name = f"big-{uuid.uuid4().hex[:6]}"
    thread, box = start(agent.run, "git log --oneline", again.source, name=name, timeout=60)
    pod_name = eventually(lambda: pod_of(world, name), "the job's Pod launched")
    started = time.monotonic()
    record, workspace = prepared(world, pod_name, tmp_path)
    prepare_seconds = time.monotonic() - started
    assert record["ok"], record
    assert record["digest"] == digest_tree(str(source))
    log = subprocess.run(["git", "-C", str(workspace), "log", "--oneline"], capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 2
    world.finish_pod(pod_name, runner_record(), prepare_record=record)
    thread.join(45)
    assert box["result"].outcome is Outcome.SUCCEEDED
    assert again.sent == 0
    sys.__stderr__.write(f"\n50 MB repository: {size} bytes in {first.files} files, {first.chunks} chunks; first upload "
          f"{first.sent} bytes in {first_seconds:.1f} s, unchanged {again.sent} bytes in {again_seconds:.1f} s; "
          f"prepare (verify, rebuild, digest, git config) {prepare_seconds:.1f} s\n")
    assert isinstance(again.source, BundleSource)
