"""A repository's own git settings must not make inspect-only git commands run a program.

Real git, real repositories: each hostile setting is first shown to run its program when left in
place (so the test can fail), then shown to stay silent after the preparation step's rewrite and
under the runner's environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safeagent.sandbox import gitconfig, prepare
from safeagent.sandbox.gitconfig import GIT_SAFE_ENV, GitConfigRejected, sanitize_repository_config
from safeagent.sandbox.runner import COMMAND_ENV

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
    assert sanitize_repository_config(str(tmp_path)) == {
        "repository": False, "kept": 0, "dropped": 0, "gitDirectories": 0, "indexRefreshed": False}


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


# ----------------------------------------------------------------- every nested repository (issue 9)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "oracle"))
import hostile_repo as fixtures  # noqa: E402  (tests/oracle/hostile_repo.py, shared with the oracle)

INSPECT_ALL = [("status",), ("status", "--ignore-submodules=none"), ("diff",), ("diff", "HEAD", "--"),
               ("diff", "--cached"), ("log", "-p", "-2"), ("show",), ("blame", "src/util.txt"),
               ("grep", "alpha"), ("ls-files", "-m"), ("describe", "--always"), ("log", "-1", "--", "sub")]


def prepared(tmp_path: Path, fixture: str = "worktree") -> tuple[Path, Path]:
    """The hostile fixture copied by the real preparation step; returns (workspace, marker)."""
    marker = tmp_path / "ran"
    source = tmp_path / "source"
    if fixture == "worktree":
        fixtures.worktree_fixture(str(source), str(marker))
    else:
        fixtures.bare_fixture(str(source), str(marker), str(tmp_path))
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    prepare.prepare({"source": "persistentVolumeClaim", "sourceDir": str(source), "workspace": str(workspace),
                     "maxFiles": 10000, "maxBytes": 1 << 26})
    return workspace, marker


def test_nested_repositories_run_programs_when_only_the_top_config_is_rewritten(tmp_path):
    """Control: the state before issue 9 (top-level config rewritten, runner environment) is open."""
    marker = tmp_path / "ran"
    repo = Path(fixtures.worktree_fixture(str(tmp_path / "workspace"), str(marker)))
    gitconfig.neutralise_git_dir(str(repo), str(repo / ".git"))
    # A tracked file of the submodule whose size is unchanged but whose mtime moved: git must read
    # its content through the filter. Without this the filter ran only when the fixture's files
    # happened to be "racily clean" (written in the same second as the index): 2 runs in 20 failed.
    later = time.time() + 10
    os.utime(repo / "sub" / ".gitattributes", (later, later))
    git(repo, "status", env=dict(COMMAND_ENV))  # .gitmodules says ignore = none: status enters sub
    assert marker.exists(), "control: the submodule's own filter should have run"


def test_every_nested_repository_is_neutralised(tmp_path):
    workspace, marker = prepared(tmp_path)
    for git_dir in (".git", ".git/modules/sub", "vendor/lib/.git"):
        config = (workspace / git_dir / "config").read_text()
        for word in ("fsmonitor", "textconv", "filter", "include", "worktree", "hooksPath", "pager", "promisor"):
            assert word not in config, (git_dir, config)
        # only a remote's url keeps its text: data for `git remote -v`, never used (protocol.allow=never)
        assert all("sh -c" not in line or line.strip().startswith("url = ext::") for line in config.splitlines())
    env = dict(COMMAND_ENV)
    for args in INSPECT_ALL:
        done = git(workspace, *args, env=env)
        assert done.returncode in (0, 1), (args, done.stderr)
    assert not marker.exists(), marker.read_text()
    status = git(workspace, "status", "--porcelain", env=env).stdout
    assert " M README.md" in status and "M  src/app.py" in status and " D -n" in status
    assert "?? notes.txt" in status and "?? vendor/" in status


def test_git_directories_finds_every_kind(tmp_path):
    marker = tmp_path / "ran"
    repo = Path(fixtures.worktree_fixture(str(tmp_path / "workspace"), str(marker)))
    (repo / "other").mkdir()
    (repo / "other" / ".git").write_text("gitdir: ../elsewhere\n")  # a gitfile naming a plain directory
    (repo / "elsewhere").mkdir()
    found = {os.path.relpath(path, repo) for path in gitconfig.git_directories(str(repo))}
    assert found == {".git", ".git/modules/sub", "vendor/lib/.git", "elsewhere"}


@pytest.mark.parametrize("content", ["gitdir: ../../outside\n", "gitdir: /etc\n", "gitdir: ../../workspace-x/.git"])
def test_a_nested_gitfile_naming_a_directory_outside_is_rejected(tmp_path, content):
    repo = tmp_path / "workspace"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / ".git").write_text(content)
    with pytest.raises(GitConfigRejected) as caught:
        sanitize_repository_config(str(repo))
    assert caught.value.reason == "git_points_outside"


@pytest.mark.parametrize("link", ["objects/info/alternates", "commondir"])
def test_links_out_of_a_nested_git_directory_are_rejected(tmp_path, link):
    repo = tmp_path / "workspace"
    modules = repo / ".git" / "modules" / "sub"
    for part in ("objects/info", "refs"):
        (modules / part).mkdir(parents=True)
    (modules / "HEAD").write_text("ref: refs/heads/main\n")
    (modules / link).write_text("/elsewhere\n")
    with pytest.raises(GitConfigRejected) as caught:
        sanitize_repository_config(str(repo))
    assert caught.value.reason == "git_points_outside"


def test_linked_worktree_records_are_removed_not_rejected(tmp_path):
    repo = tmp_path / "workspace"
    repo.mkdir()
    git(repo, "init", "-q")
    admin = repo / ".git" / "worktrees" / "feature"
    admin.mkdir(parents=True)
    (admin / "HEAD").write_text("ref: refs/heads/feature\n")
    (admin / "commondir").write_text("../..\n")
    (admin / "gitdir").write_text("/home/someone/feature/.git\n")
    sanitize_repository_config(str(repo))
    assert not (repo / ".git" / "worktrees").exists()


def test_a_bare_repository_at_the_root_runs_programs_unless_refused(tmp_path):
    marker = tmp_path / "ran"
    root = Path(fixtures.bare_fixture(str(tmp_path / "workspace"), str(marker), str(tmp_path)))
    open_env = {key: value for key, value in COMMAND_ENV.items() if not key.startswith("GIT_CONFIG_")}
    git(root, "log", "-p", "-1", env=open_env)
    assert marker.exists(), "control: a bare repository's textconv runs on git log -p"


def test_a_bare_repository_at_the_root_is_neutralised_and_refused(tmp_path):
    workspace, marker = prepared(tmp_path, "bare")
    assert "textconv" not in (workspace / "config").read_text()
    done = git(workspace, "log", "-p", "-1", env=dict(COMMAND_ENV))
    assert done.returncode == 128 and "cannot use bare repository" in done.stderr
    assert not marker.exists()


def _env_with(**overrides: str) -> dict[str, str]:
    env = dict(COMMAND_ENV)
    count = int(env["GIT_CONFIG_COUNT"])
    for index in range(count):
        if env[f"GIT_CONFIG_KEY_{index}"] in overrides:
            env[f"GIT_CONFIG_VALUE_{index}"] = overrides[env[f"GIT_CONFIG_KEY_{index}"]]
    return env


def test_safe_directory_is_the_workspace_exactly(tmp_path):
    """git's ownership check, forced on (the workspace is not ours in the Pod), passes for exactly
    the configured directory; a bare repository there stays refused."""
    workspace, _ = prepared(tmp_path)
    different_owner = {"GIT_TEST_ASSUME_DIFFERENT_OWNER": "1"}
    assert COMMAND_ENV[next(f"GIT_CONFIG_VALUE_{i}" for i in range(int(COMMAND_ENV["GIT_CONFIG_COUNT"]))
                            if COMMAND_ENV[f"GIT_CONFIG_KEY_{i}"] == "safe.directory")] == "/workspace"
    refused = git(workspace, "status", env={**dict(COMMAND_ENV), **different_owner})
    assert refused.returncode == 128 and "dubious ownership" in refused.stderr
    allowed = git(workspace, "status", "--short", env={**_env_with(**{"safe.directory": str(workspace)}), **different_owner})
    assert allowed.returncode == 0, allowed.stderr
    (tmp_path / "b").mkdir()
    bare, _ = prepared(tmp_path / "b", "bare")
    still = git(bare, "log", env={**_env_with(**{"safe.directory": str(bare)}), **different_owner})
    assert still.returncode == 128 and "cannot use bare repository" in still.stderr


def _index_state(workspace: Path) -> tuple[int, int]:
    info = (workspace / ".git" / "index").stat()
    return info.st_ino, info.st_mtime_ns


def test_inspection_never_writes_the_index_and_diff_output_is_exact(tmp_path):
    workspace, _ = prepared(tmp_path)
    before = _index_state(workspace)
    env = dict(COMMAND_ENV)
    for args in INSPECT_ALL:
        git(workspace, *args, env=env)
    assert _index_state(workspace) == before
    names = git(workspace, "diff", "--name-only", env=env).stdout.split()
    assert sorted(names) == ["-n", "README.md", "sub"]  # sub: dirty, and .gitmodules says ignore = none


def test_a_stale_index_is_what_the_refresh_is_for(tmp_path):
    """Control: without the preparation step's refresh, `git diff` rewrites the index (default
    settings) or lists untouched files as changed (autoRefreshIndex off)."""
    source = tmp_path / "source"
    fixtures.worktree_fixture(str(source), str(tmp_path / "ran"))
    workspace = tmp_path / "workspace"
    shutil.copytree(source, workspace)
    for git_dir in gitconfig.git_directories(str(workspace)):
        gitconfig.neutralise_git_dir(str(workspace), git_dir)
    env = dict(COMMAND_ENV)
    names = git(workspace, "diff", "--name-only", env=env).stdout.split()
    assert "src/util.txt" in names  # unchanged, but its stat data is new
    before = _index_state(workspace)
    git(workspace, "diff", env=_env_with(**{"diff.autoRefreshIndex": "true"}))
    assert _index_state(workspace) != before


def test_nested_gitfiles_name_their_target_absolutely(tmp_path):
    """Oracle finding: ripgrep resolved `gitdir: ../.git/modules/sub` against its working directory
    and read /.git/modules/sub/commondir, outside the workspace. Rewritten, every reader agrees."""
    workspace, _ = prepared(tmp_path)
    assert (workspace / "sub" / ".git").read_text() == f"gitdir: {workspace}/.git/modules/sub\n"
    assert git(workspace / "sub", "rev-parse", "--git-dir", env=dict(COMMAND_ENV)).stdout.strip() == \
        f"{workspace}/.git/modules/sub"


def test_a_nested_gitfile_naming_nothing_is_named_absolutely_too(tmp_path):
    repo = tmp_path / "workspace"
    (repo / "a" / "b").mkdir(parents=True)
    (repo / "a" / "b" / ".git").write_text("gitdir: ../missing\n")
    sanitize_repository_config(str(repo))
    assert (repo / "a" / "b" / ".git").read_text() == f"gitdir: {repo}/a/missing\n"
