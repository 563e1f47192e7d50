"""A repository's own git settings must not make inspect-only git commands run a program.

Real git, real repositories: each hostile setting is first shown to run its program when left in
place (so the test can fail), then shown to stay silent after the preparation step's rewrite and
under the runner's environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from safeagent.gitconfig import GIT_SAFE_ENV, GitConfigRejected, sanitize_repository_config
from safeagent.runner import COMMAND_ENV

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed on this machine")

BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          env=env or BASE_ENV, timeout=60, check=False)


def hostile_repo(root: Path, marker: Path) -> Path:
    """A committed repository, a modified file, and settings that each try to touch `marker`."""
    repo = root / "workspace"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\n")
    (repo / "b.secret").write_text("one\n")
    (repo / ".gitattributes").write_text("*.secret diff=evil filter=evil\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init")
    (repo / "a.txt").write_text("two\n")
    (repo / "b.secret").write_text("two\n")
    payload = f"sh -c 'echo ran >> {marker}'"
    with open(repo / ".git" / "config", "a") as config:
        config.write(
            "[core]\n"
            f"\tfsmonitor = \"{payload}\"\n"
            f"\tpager = \"{payload}\"\n"
            "[diff]\n"
            f"\texternal = \"{payload}\"\n"
            "[diff \"evil\"]\n"
            f"\ttextconv = \"{payload}\"\n"
            "[filter \"evil\"]\n"
            f"\tclean = \"{payload}\"\n"
            "[remote \"origin\"]\n"
            "\turl = https://example.invalid/repo.git\n"
            "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
        )
    return repo


INSPECT = [("status",), ("diff",), ("diff", "HEAD"), ("log", "-p", "-1"), ("show",)]


def run_inspections(repo: Path, env: dict[str, str]) -> None:
    for args in INSPECT:
        git(repo, *args, env=env)


def test_hostile_settings_run_programs_when_left_alone(tmp_path):
    marker = tmp_path / "ran"
    repo = hostile_repo(tmp_path, marker)
    run_inspections(repo, BASE_ENV)
    assert marker.exists(), "control: the hostile settings should have run their program"


def test_rewritten_config_and_runner_environment_run_nothing(tmp_path):
    marker = tmp_path / "ran"
    repo = hostile_repo(tmp_path, marker)
    summary = sanitize_repository_config(str(repo))
    assert summary["repository"] is True and summary["dropped"] >= 5
    config = (repo / ".git" / "config").read_text()
    for word in ("fsmonitor", "pager", "external", "textconv", "filter", "sh -c"):
        assert word not in config
    assert "https://example.invalid/repo.git" in config  # inert keys survive
    env = dict(COMMAND_ENV)
    run_inspections(repo, env)
    assert not marker.exists(), marker.read_text()
    # The repository still works: status sees the modification.
    assert "a.txt" in git(repo, "status", "--porcelain", env=env).stdout


def test_runner_environment_alone_stops_fsmonitor_and_pager(tmp_path):
    marker = tmp_path / "ran"
    repo = tmp_path / "workspace"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "x").write_text("x\n")
    git(repo, "config", "core.fsmonitor", f"sh -c 'echo ran >> {marker}'")
    env = {**BASE_ENV, **GIT_SAFE_ENV}
    git(repo, "status", env=env)
    assert not marker.exists()
    git(repo, "status", env=BASE_ENV)
    assert marker.exists(), "control: fsmonitor runs without the overrides"


def test_gitdir_file_is_rejected(tmp_path):
    repo = tmp_path / "workspace"
    repo.mkdir()
    (repo / ".git").write_text("gitdir: elsewhere/.git\n")
    with pytest.raises(GitConfigRejected) as caught:
        sanitize_repository_config(str(repo))
    assert caught.value.reason == "git_dir_not_directory"


def test_no_repository_is_fine(tmp_path):
    assert sanitize_repository_config(str(tmp_path)) == {"repository": False, "kept": 0, "dropped": 0}


def test_runner_environment_carries_the_overrides():
    assert COMMAND_ENV["GIT_CONFIG_NOSYSTEM"] == "1"
    count = int(COMMAND_ENV["GIT_CONFIG_COUNT"])
    keys = {COMMAND_ENV[f"GIT_CONFIG_KEY_{i}"]: COMMAND_ENV[f"GIT_CONFIG_VALUE_{i}"] for i in range(count)}
    assert keys["core.fsmonitor"] == "false" and keys["core.hooksPath"] == "/dev/null"
    assert os.pathsep not in COMMAND_ENV["GIT_CONFIG_GLOBAL"]


@pytest.mark.parametrize("link", ["objects/info/alternates", "objects/info/http-alternates", "commondir"])
def test_links_to_other_repositories_are_rejected(tmp_path, link):
    repo = tmp_path / "workspace"
    repo.mkdir()
    git(repo, "init", "-q")
    target = repo / ".git" / link
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("/elsewhere/objects\n")
    with pytest.raises(GitConfigRejected) as caught:
        sanitize_repository_config(str(repo))
    assert caught.value.reason == "git_points_outside"


def test_alternates_really_read_outside_objects(tmp_path):
    """Control for the rule above: with alternates, git shows an object stored outside the repo."""
    outside = tmp_path / "outside"
    outside.mkdir()
    git(outside, "init", "-q")
    (outside / "secret.txt").write_text("outside secret\n")
    blob = git(outside, "hash-object", "-w", "secret.txt").stdout.strip()
    repo = tmp_path / "workspace"
    repo.mkdir()
    git(repo, "init", "-q")
    assert git(repo, "show", blob).returncode != 0
    (repo / ".git" / "objects" / "info" / "alternates").write_text(str(outside / ".git" / "objects") + "\n")
    assert git(repo, "show", blob).stdout == "outside secret\n"


def test_git_status_does_not_touch_the_index_under_the_runner_environment(tmp_path):
    repo = tmp_path / "workspace"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a").write_text("a\n")
    git(repo, "add", "a")
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    os.utime(repo / "a", None)  # stat data changes: a refreshing status would rewrite the index
    git(repo, "status", "--porcelain", env=dict(COMMAND_ENV))
    assert index.stat().st_mtime_ns == before
    # Control: without the runner's environment the same status rewrites the index.
    later = (repo / "a").stat().st_mtime + 5
    os.utime(repo / "a", (later, later))
    git(repo, "status", "--porcelain", env=BASE_ENV)
    assert index.stat().st_mtime_ns != before
