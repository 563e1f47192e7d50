"""safeagent.sandbox.bundle: a tree packed into content-addressed chunks and rebuilt exactly (the
digest an Approval pins is the rebuilt tree's), an edit changes few chunks, and every way a
submitter could poison a bundle is refused: a manifest or chunk under its name with other bytes,
paths out of the tree, unsorted or orphaned entries, sizes that do not add up, a compression bomb,
trees over the caps."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zlib

import pytest

from safeagent.sandbox import bundle
from safeagent.sandbox.bundle import BundleRejected
from safeagent.sandbox.digest import digest_tree

CAPS = (10_000, 512 * 1024 * 1024)


def make_tree(root, files):
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def rebuild(packed, workspace, reader=None, caps=CAPS):
    manifest = bundle.read_manifest(packed.name, packed.manifest)
    workspace.mkdir()
    read = reader or (lambda digest: packed.compressed(digest))
    return manifest, bundle.unpack(manifest, read, str(workspace), *caps)


def test_a_tree_comes_back_exactly_and_its_digest_is_known_before(tmp_path):
    source = make_tree(tmp_path / "src", {
        "README.md": "hello\n", "src/app.py": "print(1)\n", "src/pkg/__init__.py": "", "empty/.keep": "",
        "big.bin": os.urandom(3 * bundle.MAX_CHUNK + 17),
    })
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    (source / "emptydir").mkdir()
    packed = bundle.pack(str(source))
    manifest, (files, size) = rebuild(packed, tmp_path / "ws")
    assert files == 6 and size == sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    assert bundle.tree_digest(manifest) == digest_tree(str(tmp_path / "ws")) == digest_tree(str(source))
    assert os.stat(tmp_path / "ws" / "run.sh").st_mode & 0o777 == 0o755
    assert os.stat(tmp_path / "ws" / "README.md").st_mode & 0o777 == 0o644
    assert all(len(chunk) <= bundle.MAX_CHUNK for chunk in packed.chunks.values())
    assert all(len(packed.compressed(digest)) < 1000 * 1024 for digest in packed.chunks), "fits a ConfigMap"


def test_an_empty_tree(tmp_path):
    (tmp_path / "src").mkdir()
    packed = bundle.pack(str(tmp_path / "src"))
    assert packed.chunks == {}
    assert rebuild(packed, tmp_path / "ws")[1] == (0, 0)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_git_repository_with_history_comes_back_and_git_reads_it(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    for round_ in range(5):
        make_tree(repo, {f"module{index}.py": f"# round {round_}\n" + "x = 1\n" * (index * 50) for index in range(40)})
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", f"round {round_}"], check=True)
    packed = bundle.pack(str(repo))
    rebuild(packed, tmp_path / "ws")
    log = subprocess.run(["git", "-C", str(tmp_path / "ws"), "log", "--oneline"], capture_output=True, text=True, check=True)
    assert len(log.stdout.splitlines()) == 5
    assert digest_tree(str(tmp_path / "ws")) == digest_tree(str(repo))


def test_an_edit_changes_few_chunks(tmp_path):
    files = {f"dir{index % 7}/file{index:04}.txt": os.urandom(20_000).hex() for index in range(600)}
    source = make_tree(tmp_path / "src", files)
    before = set(bundle.pack(str(source)).chunks)
    (source / "dir3/file0304.txt").write_text("changed\n")
    after = set(bundle.pack(str(source)).chunks)
    assert len(before) >= 10
    assert len(after - before) <= 2, f"{len(after - before)} of {len(after)} chunks to upload after one edit"


def test_a_large_file_keeps_its_chunks_when_a_small_one_changes(tmp_path):
    source = make_tree(tmp_path / "src", {"a.txt": "a\n", "pack.bin": os.urandom(4 * bundle.MAX_CHUNK), "z.txt": "z\n"})
    before = set(bundle.pack(str(source)).chunks)
    (source / "a.txt").write_text("a changed, and longer\n")
    after = set(bundle.pack(str(source)).chunks)
    assert len(after - before) == 1


# ------------------------------------------------------------------------------------ poisoned objects


def test_a_manifest_under_its_name_with_other_bytes_is_refused(tmp_path):
    packed = bundle.pack(str(make_tree(tmp_path / "src", {"a": "a"})))
    other = bundle.pack(str(make_tree(tmp_path / "other", {"b": "b"})))
    with pytest.raises(BundleRejected) as refused:
        bundle.read_manifest(packed.name, other.manifest)
    assert refused.value.reason == "bundle_digest_mismatch"


def test_a_chunk_under_its_name_with_other_bytes_is_refused(tmp_path):
    packed = bundle.pack(str(make_tree(tmp_path / "src", {"a.txt": "the real content\n"})))
    poisoned = zlib.compress(b"evil content here\n")
    with pytest.raises(BundleRejected) as refused:
        rebuild(packed, tmp_path / "ws", reader=lambda digest: poisoned)
    assert refused.value.reason == "chunk_digest_mismatch"


@pytest.mark.parametrize("payload", [b"not zlib", zlib.compress(b"x" * (bundle.MAX_CHUNK * 4))])
def test_garbage_and_compression_bombs_are_refused(tmp_path, payload):
    packed = bundle.pack(str(make_tree(tmp_path / "src", {"a.txt": "a" * 100})))
    with pytest.raises(BundleRejected) as refused:
        rebuild(packed, tmp_path / "ws", reader=lambda digest: payload)
    assert refused.value.reason == "chunk_digest_mismatch"


def test_a_missing_chunk(tmp_path):
    packed = bundle.pack(str(make_tree(tmp_path / "src", {"a.txt": "a"})))

    def missing(digest):
        raise FileNotFoundError(digest)

    with pytest.raises(BundleRejected) as refused:
        rebuild(packed, tmp_path / "ws", reader=missing)
    assert refused.value.reason == "chunk_missing"


def forged(entries, contents=b""):
    """A manifest someone wrote by hand (named correctly: the name check cannot stop a forger), and
    its one chunk."""
    chunks = [[hashlib.sha256(contents).hexdigest(), len(contents)]] if contents else []
    data = json.dumps({"kind": bundle.KIND, "version": 1, "entries": entries, "chunks": chunks}).encode()
    return bundle.manifest_name(data), data, zlib.compress(contents)


def sha(text):
    return hashlib.sha256(text).hexdigest()


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([["f", "../escape", False, 1, sha(b"x")]], "bad_path"),
        ([["f", "/etc/passwd", False, 1, sha(b"x")]], "bad_path"),
        ([["d", "a"], ["f", "a/../../x", False, 1, sha(b"x")]], "bad_path"),
        ([["f", "a//b", False, 1, sha(b"x")]], "bad_path"),
        ([["f", "a\nb", False, 1, sha(b"x")]], "bad_name"),
        ([["f", "a/b", False, 1, sha(b"x")]], "bad_bundle"),  # no directory entry for a
        ([["f", "b", False, 1, sha(b"x")], ["d", "a"]], "bad_bundle"),  # unsorted
        ([["f", "a", False, 1, sha(b"x")], ["f", "a", False, 0, sha(b"")]], "bad_bundle"),  # twice
        ([["f", "a", False, 2, sha(b"x")]], "bad_bundle"),  # sizes do not add up
        ([["l", "a", "target"]], "bad_bundle"),  # a link
        ([["f", "a", "yes", 1, sha(b"x")]], "bad_bundle"),
        ([["f", "a", False, 1, sha(b"y")]], "chunk_digest_mismatch"),  # the file is not what the entry says
    ],
)
def test_a_forged_manifest_is_refused(tmp_path, entries, reason):
    name, data, chunk = forged(entries, b"x")
    manifest = bundle.read_manifest(name, data)
    (tmp_path / "ws").mkdir()
    with pytest.raises(BundleRejected) as refused:
        bundle.unpack(manifest, lambda digest: chunk, str(tmp_path / "ws"), *CAPS)
    assert refused.value.reason == reason
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()


def test_caps_are_checked_before_anything_is_written(tmp_path):
    source = make_tree(tmp_path / "src", {f"f{index}": "x" for index in range(20)})
    packed = bundle.pack(str(source))
    with pytest.raises(BundleRejected) as refused:
        rebuild(packed, tmp_path / "ws", caps=(10, 1 << 20))
    assert refused.value.reason == "too_many_files"
    assert os.listdir(tmp_path / "ws") == []
    with pytest.raises(BundleRejected) as refused:
        rebuild(packed, tmp_path / "ws2", caps=(100, 10))
    assert refused.value.reason == "too_large"


@pytest.mark.parametrize("name", ["sa-bundle-xyz", "sa-chunk-" + "0" * 64, "../sa-bundle-" + "0" * 64])
def test_only_manifest_names_are_read(name):
    with pytest.raises(BundleRejected) as refused:
        bundle.read_manifest(name, b"{}")
    assert refused.value.reason == "bad_bundle"


def test_links_and_special_files_are_not_packed(tmp_path):
    source = make_tree(tmp_path / "src", {"a": "a"})
    os.symlink("a", source / "link")
    with pytest.raises(BundleRejected):
        bundle.pack(str(source))
