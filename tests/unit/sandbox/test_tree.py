"""Source-tree validation: links and special files refused, caps enforced, nothing followed or opened."""

import ast
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO
from safeagent.sandbox.tree import validate_tree


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "src"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "README.md").write_text("hello\n")
    (root / "pkg" / "a.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "b.txt").write_bytes(b"\0" * 100)
    return root


def test_plain_tree_is_ok(source):
    report = validate_tree(source)
    assert report["ok"] is True and report["reason"] == "ok"
    assert (report["files"], report["directories"], report["bytes"]) == (3, 2, 6 + 6 + 100)
    assert report["problems"] == []


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: os.symlink("/etc/passwd", d / "link"), "symlink"),
        (lambda d: os.symlink("pkg", d / "dirlink"), "symlink"),
        (lambda d: os.symlink("missing", d / "dangling"), "symlink"),
        (lambda d: os.symlink("/", d / "pkg" / "sub" / "root"), "symlink"),
        (lambda d: os.mkfifo(d / "pkg" / "fifo"), "fifo"),
        (lambda d: os.mknod(d / "null", 0o600 | 0o020000, os.makedev(1, 3)), "device"),
        (lambda d: os.mknod(d / "blk", 0o600 | 0o060000, os.makedev(7, 0)), "device"),
        (lambda d: (d / "bad\nname").write_text("x"), "bad_name"),
        (lambda d: (d / "esc\x1b[2J").write_text("x"), "bad_name"),
    ],
)
def test_special_entries_are_refused(source, make, reason):
    try:
        make(source)
    except PermissionError as error:
        pytest.skip(f"cannot create the special file here (needs root): {error}")
    report = validate_tree(source)
    assert report["ok"] is False and report["reason"] == reason, report
    assert report["problems"][0]["reason"] == reason


def test_socket_is_refused(source):
    path = source / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        try:
            server.bind(str(path))
        except OSError as error:
            pytest.skip(f"cannot bind a unix socket here: {error}")
        report = validate_tree(source)
    assert report["reason"] == "socket"


def test_a_fifo_is_never_opened(source):
    """Opening a FIFO for reading would block forever; the walk must finish regardless."""
    os.mkfifo(source / "trap")
    result = subprocess.run([sys.executable, "-m", "safeagent.sandbox.tree", str(source)], capture_output=True, timeout=20)
    assert result.returncode == 1 and json.loads(result.stdout)["reason"] == "fifo"


def test_root_symlink_and_non_directories_are_refused(source, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(source)
    assert validate_tree(link)["reason"] == "symlink"
    assert validate_tree(source / "README.md")["reason"] == "not_a_directory"
    assert validate_tree(tmp_path / "absent")["reason"] == "not_found"


def test_caps(source):
    assert validate_tree(source, max_files=5)["ok"] is True
    assert validate_tree(source, max_files=4)["reason"] == "too_many_files"
    assert validate_tree(source, max_bytes=112)["ok"] is True
    assert validate_tree(source, max_bytes=111)["reason"] == "too_large"
    assert validate_tree(source, max_depth=2)["ok"] is True
    assert validate_tree(source, max_depth=1)["reason"] == "too_deep"


def test_many_problems_are_listed_up_to_a_cap(source):
    for index in range(40):
        os.symlink("x", source / f"l{index}")
    report = validate_tree(source)
    assert report["reason"] == "symlink" and len(report["problems"]) == 20


def test_unreadable_directory(source):
    if os.geteuid() == 0:
        pytest.skip("root can read any directory, so an unreadable one cannot be made")
    (source / "pkg").chmod(0)
    try:
        assert validate_tree(source)["reason"] == "unreadable"
    finally:
        (source / "pkg").chmod(0o755)


@pytest.mark.parametrize("entry", [["python3", "-m", "safeagent.sandbox.tree"], ["safeagent", "validate-tree"]])
def test_command_line_exit_codes(source, entry):
    command = [sys.executable, "-m", "safeagent.sandbox.tree"] if entry[0] == "python3" else [str(Path(sys.executable).parent / "safeagent"), "validate-tree"]
    ok = subprocess.run(command + [str(source)], capture_output=True, text=True, timeout=20)
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True
    capped = subprocess.run(command + ["--max-files", "2", str(source)], capture_output=True, text=True, timeout=20)
    assert capped.returncode == 1 and json.loads(capped.stdout)["reason"] == "too_many_files"
    usage = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert usage.returncode == 2 and "path" in usage.stderr
    bad = subprocess.run(command + ["--max-files", "zero", str(source)], capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2


def test_tree_module_uses_only_the_standard_library():
    """It runs inside the sandbox image, which has no third-party packages."""
    tree = ast.parse((REPO / "operator" / "safeagent" / "sandbox" / "tree.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "tree.py must not import other safeagent modules"
            if node.module != "safeagent.sandbox.contract":  # the record shapes; stdlib-only itself
                imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
