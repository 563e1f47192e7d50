"""safeagent.sandbox.prepare (the sandbox's preparation step) on real directory trees."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import safeagent
from safeagent.sandbox import digest, prepare

PACKAGE_ROOT = str(Path(safeagent.__file__).resolve().parent.parent)


def configmap_volume(root: Path, data: dict[str, str]) -> Path:
    """Lay out a directory exactly like the kubelet's ConfigMap volume (AtomicWriter)."""
    root.mkdir()
    real = root / "..2025_01_01_00_00_00.000000001"
    real.mkdir()
    for key, text in data.items():
        (real / key).write_text(text)
        (root / key).symlink_to(f"..data/{key}")
    (root / "..data").symlink_to(real.name)
    return root


def run_prepare(kind: str, source: Path, workspace: Path, max_files=100, max_bytes=1 << 20):
    spec = {
        "source": kind,
        "sourceDir": str(source),
        "workspace": str(workspace),
        "maxFiles": max_files,
        "maxBytes": max_bytes,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "safeagent.sandbox.prepare", json.dumps(spec)],
        capture_output=True, text=True, timeout=60, env={"PYTHONPATH": PACKAGE_ROOT},
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(lines[0])


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


def test_configmap_keys_become_a_tree(tmp_path, workspace):
    source = configmap_volume(
        tmp_path / "cm",
        {"README.md": "hi\n", "src--app.py": "print(1)\n", "src--pkg--__init__.py": "", "delete-me.txt": "x"},
    )
    code, record = run_prepare("configMap", source, workspace)
    assert code == 0 and record["ok"] is True, record
    files = sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if p.is_file())
    assert files == ["README.md", "delete-me.txt", "src/app.py", "src/pkg/__init__.py"]
    assert (workspace / "src" / "app.py").read_text() == "print(1)\n"
    assert not any(p.is_symlink() for p in workspace.rglob("*"))


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        (["a----b"], "bad_key"),
        (["--a"], "bad_key"),
        (["a--..--b"], "bad_key"),
        (["a", "a--b"], "path_conflict"),
    ],
)
def test_bad_configmap_keys_are_rejected(tmp_path, workspace, keys, reason):
    source = configmap_volume(tmp_path / "cm", {key: "x" for key in keys})
    code, record = run_prepare("configMap", source, workspace)
    assert (code, record["ok"], record["reason"]) == (1, False, reason)
    assert list(workspace.iterdir()) == []


def test_configmap_data_link_must_stay_in_the_volume(tmp_path, workspace):
    root = tmp_path / "cm"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "..data").symlink_to("../elsewhere")
    code, record = run_prepare("configMap", root, workspace)
    assert (code, record["reason"]) == (1, "bad_configmap_layout")


def test_plain_directory_is_not_taken_for_a_configmap(tmp_path, workspace):
    (tmp_path / "plain").mkdir()
    code, record = run_prepare("configMap", tmp_path / "plain", workspace)
    assert (code, record["reason"]) == (1, "bad_configmap_layout")


def test_volume_tree_is_copied_without_links_and_set_id_bits(tmp_path, workspace):
    source = tmp_path / "repo"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(source / "bin" / "tool", 0o4755)
    (source / "data.txt").write_text("data\n")
    code, record = run_prepare("persistentVolumeClaim", source, workspace)
    assert code == 0, record
    assert record["files"] == 2
    assert stat.S_IMODE((workspace / "bin" / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((workspace / "data.txt").stat().st_mode) == 0o644


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_special_entries_reject_the_source(tmp_path, workspace, kind):
    source = tmp_path / "repo"
    source.mkdir()
    (source / "ok.txt").write_text("ok")
    if kind == "symlink":
        (source / "escape").symlink_to("/etc/passwd")
    else:
        os.mkfifo(source / "pipe")
    code, record = run_prepare("persistentVolumeClaim", source, workspace)
    assert (code, record["ok"], record["reason"]) == (1, False, kind)
    assert list(workspace.iterdir()) == []


def test_caps_apply(tmp_path, workspace):
    source = tmp_path / "repo"
    source.mkdir()
    for index in range(5):
        (source / f"f{index}").write_text("x" * 100)
    code, record = run_prepare("persistentVolumeClaim", source, workspace, max_files=3)
    assert (code, record["ok"]) == (1, False)
    (tmp_path / "ws2").mkdir()
    code, record = run_prepare("persistentVolumeClaim", source, tmp_path / "ws2", max_bytes=50)
    assert (code, record["ok"]) == (1, False)


def test_copy_refuses_a_link_that_appears_after_validation(tmp_path, workspace):
    source = tmp_path / "repo"
    source.mkdir()
    (source / "late").symlink_to("/etc/passwd")
    with pytest.raises(prepare.Rejected) as caught:
        prepare.copy_tree(str(source), str(workspace), prepare._Budget(10, 1000))
    assert caught.value.reason == "changed_during_copy"


def test_bad_spec_exits_2(tmp_path, workspace):
    code, record = run_prepare("tarball", tmp_path, workspace)
    assert (code, record["reason"]) == (2, "prepare_error")


def _run_with_digest(kind, source, workspace, expected):
    spec = {
        "source": kind, "sourceDir": str(source), "workspace": str(workspace),
        "maxFiles": 100, "maxBytes": 1 << 20, "expectedDigest": expected,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "safeagent.sandbox.prepare", json.dumps(spec)],
        capture_output=True, text=True, timeout=60, env={"PYTHONPATH": PACKAGE_ROOT},
    )
    return proc.returncode, json.loads(proc.stdout.splitlines()[0])


FILES = {"README.md": "hi\n", "src--app.py": "print(1)\n", "src--pkg--__init__.py": "", "delete-me.txt": "x"}


def test_the_operator_and_the_copy_agree_on_a_configmap_digest(tmp_path, workspace):
    """Issue 8: the digest the operator pins from ConfigMap data is the digest of what prepare
    copied; the same files approved under that digest are copied, nothing else is."""
    pinned = digest.configmap_digest({key: text.encode() for key, text in FILES.items()})
    source = configmap_volume(tmp_path / "cm", FILES)
    code, record = run_prepare("configMap", source, workspace)
    assert code == 0 and record["digest"] == pinned

    again = tmp_path / "ws2"
    again.mkdir()
    code, record = _run_with_digest("configMap", source, again, pinned)
    assert code == 0 and record["ok"] is True


@pytest.mark.parametrize(
    "change",
    [
        lambda files: files.update({"delete-me.txt": "y"}),  # content
        lambda files: files.update({"extra.txt": ""}),  # a file added
        lambda files: files.pop("README.md"),  # a file removed
        lambda files: files.update({"src--app2.py": files.pop("src--app.py")}),  # renamed
    ],
)
def test_a_source_changed_after_the_review_is_refused(tmp_path, workspace, change):
    pinned = digest.configmap_digest({key: text.encode() for key, text in FILES.items()})
    files = dict(FILES)
    change(files)
    source = configmap_volume(tmp_path / "cm", files)
    code, record = _run_with_digest("configMap", source, workspace, pinned)
    assert code == 1 and record["reason"] == "source_changed"
    assert pinned in record["message"]


def test_a_tree_digest_sees_the_executable_bit_and_empty_directories(tmp_path):
    from safeagent.sandbox.digest import digest_tree

    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "run.sh").write_text("echo\n")
    first = digest_tree(str(tree))
    (tree / "run.sh").chmod(0o755)
    second = digest_tree(str(tree))
    (tree / "empty").mkdir()
    third = digest_tree(str(tree))
    assert len({first, second, third}) == 3
