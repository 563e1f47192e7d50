"""git works on a real repository source, and inspecting it writes nothing (issue 9).

A repository is built here with git (three commits, a branch, an annotated tag, a remote, a
modified file; its .git/config also carries settings that would run a program), delivered to the
cluster as a source, and every git subcommand the shipped policies allow is run on it as a
SandboxJob. Each must succeed with the output git gives for that repository on this machine, and
change no file of the workspace (.git/index included: `changedFiles` counts every entry).

Two ways in, because a ConfigMap cannot hold `/` in a key:
- a volume: the repository is copied onto the kind node (a hostPath PersistentVolume, tar over
  `docker exec`), the way a PVC would hold a checkout;
- a ConfigMap: every file a key (`.git--objects--pack--pack-....pack`, `--` for `/`), the binary
  ones in `binaryData`. Objects are packed and refs kept loose so that no directory is empty.

The workspace in the Pod is an emptyDir owned by root; without the runner's `safe.directory`
every one of these jobs failed with "detected dubious ownership" (exit 128).
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from sbj_helpers import KEY_SEPARATOR, docker_exec, kind_nodes, unique

ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "Ada Author", "GIT_AUTHOR_EMAIL": "ada@example.invalid",
    "GIT_COMMITTER_NAME": "Ada Author", "GIT_COMMITTER_EMAIL": "ada@example.invalid",
}
HOSTILE = (
    "[core]\n\tfsmonitor = \"sh -c 'echo ran > PWNED-fsmonitor'\"\n"
    "[diff \"evil\"]\n\ttextconv = \"sh -c 'echo ran > PWNED-textconv'\"\n"
    "[filter \"evil\"]\n\tclean = \"sh -c 'echo ran > PWNED-filter'\"\n"
)


def git(repo: Path, *args: str, date: int = 0) -> str:
    stamp = f"{1_700_000_000 + date * 86400} +0000"
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60, check=True,
                          env={**ENV, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    return done.stdout


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("needs git on this machine to build the repository")
    return build_repository(tmp_path_factory.mktemp("git-source") / "repo")


def build_repository(repo: Path) -> Path:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", ".")
    (repo / "app.py").write_text("def hello():\n    return 'hello'\n")
    (repo / "README.md").write_text("# demo\n")
    (repo / "notes.secret").write_text("one\n")
    (repo / ".gitattributes").write_text("*.secret diff=evil filter=evil\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first: hello", date=1)
    git(repo, "tag", "-a", "-m", "release one", "v1")
    git(repo, "branch", "feature")
    (repo / "app.py").write_text("def hello():\n    return 'hello, world'\n")
    git(repo, "commit", "-q", "-am", "second: greet the world", date=2)
    (repo / "util.py").write_text("TODO = 1\n")
    (repo / "notes.secret").write_text("two\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "third: util", date=3)
    git(repo, "remote", "add", "origin", "https://example.invalid/demo.git")
    # objects into one pack; refs stay loose files, so that refs/ is not an empty directory
    # (which a ConfigMap cannot express, and without which git does not see a repository)
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")
    (repo / "README.md").write_text("# demo\n\nchanged, not committed\n")
    with open(repo / ".git" / "config", "a") as config:
        config.write(HOSTILE)
    for leftover in ("COMMIT_EDITMSG", "ORIG_HEAD"):
        (repo / ".git" / leftover).unlink(missing_ok=True)
    return repo


def expected(repo: Path) -> dict[str, str]:
    """command line -> the exact stdout git gives on this machine (hostile settings left out)."""
    def rev(name: str) -> str:
        return git(repo, "-c", "core.fsmonitor=false", "rev-parse", name).strip()

    head = rev("HEAD")
    short = head[:7]
    return {
        "git status --porcelain": " M README.md\n",
        "git status --short --branch": None,
        "git diff --name-only": "README.md\n",
        "git diff --stat": " README.md | 2 ++\n 1 file changed, 2 insertions(+)\n",
        "git log --oneline": None,
        "git log --format=%s": "third: util\nsecond: greet the world\nfirst: hello\n",
        "git show --stat --format=%s HEAD": None,
        "git ls-files": ".gitattributes\nREADME.md\napp.py\nnotes.secret\nutil.py\n",
        "git blame -s app.py": None,
        "git grep -n TODO": "util.py:1:TODO = 1\n",
        "git ls-tree --name-only HEAD": ".gitattributes\nREADME.md\napp.py\nnotes.secret\nutil.py\n",
        "git cat-file -t HEAD": "commit\n",
        "git cat-file -p v1": None,
        "git rev-parse HEAD": head + "\n",
        "git rev-parse --abbrev-ref HEAD": "main\n",
        "git describe --tags": f"v1-2-g{short}\n",
        "git shortlog -sn HEAD": "     3\tAda Author\n",
        "git branch": "  feature\n* main\n",
        "git tag": "v1\n",
        "git tag --list 'v*'": "v1\n",
        "git remote -v": "origin\thttps://example.invalid/demo.git (fetch)\norigin\thttps://example.invalid/demo.git (push)\n",
        "git log -p -1 -- notes.secret": None,
        "git reflog -n 3 --format=%gs": "commit: third: util\ncommit: second: greet the world\ncommit (initial): first: hello\n",
        "git stash list": "",
        "git rev-list --count HEAD": "3\n",
        "git merge-base main feature": rev("feature") + "\n",
        "git diff-tree --no-commit-id --name-only -r HEAD": "notes.secret\nutil.py\n",
        "git show-ref --tags": f"{rev('v1')} refs/tags/v1\n",
        "git symbolic-ref HEAD": "refs/heads/main\n",
        "git for-each-ref '--format=%(refname)' refs/tags": "refs/tags/v1\n",
        "git count-objects -v": None,
        "git remote get-url origin": "https://example.invalid/demo.git\n",
    }


CONTAINS = {
    "git status --short --branch": ["## main", " M README.md"],
    "git log --oneline": ["third: util", "second: greet the world", "first: hello"],
    "git show --stat --format=%s HEAD": ["third: util", "util.py      | 1 +"],
    "git blame -s app.py": ["return 'hello, world'"],
    "git cat-file -p v1": ["tag v1", "release one"],
    "git log -p -1 -- notes.secret": ["-one", "+two"],  # textconv neutralised: the plain diff
    "git count-objects -v": ["count: 0\n", "packs: 1\n"],
}


def _check(sandbox, job: str, command: str, want: str | None) -> list[str]:
    status = sandbox.wait_phase(job, {"Succeeded", "Failed", "Denied", "Rejected"}, timeout=300)
    problems = []
    if status.get("phase") != "Succeeded" or status.get("exitCode") != 0:
        return [f"{command}: {status.get('phase')} exit {status.get('exitCode')}: "
                f"{status.get('reason')} {status.get('message')} {status.get('stderr', '')[:300]!r}"]
    if want is not None and status["stdout"] != want:
        problems.append(f"{command}: stdout {status['stdout']!r}, wanted {want!r}")
    for piece in CONTAINS.get(command, []):
        if piece not in status["stdout"]:
            problems.append(f"{command}: {piece!r} not in {status['stdout'][:500]!r}")
    changed = status.get("changedFiles") or {}
    if changed.get("total") != 0:
        problems.append(f"{command}: changed the workspace: {changed}")
    return problems


def _volume(sandbox, kubectl, repo: Path) -> dict:
    claim = sandbox.node_volume("true")
    path = f"/var/lib/safeagent-e2e/{claim}"
    archive = subprocess.run(["tar", "-C", str(repo), "-cf", "-", "."], capture_output=True, check=True).stdout
    for node in kind_nodes(kubectl):
        done = subprocess.run(["docker", "exec", "-i", node, "tar", "-x", "-C", path], input=archive,
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        docker_exec(node, f"chmod -R a+rX {path}")
    return {"persistentVolumeClaim": {"claimName": claim}}


def _configmap(sandbox, repo: Path) -> dict:
    data, binary = {}, {}
    for path in sorted(p for p in repo.rglob("*") if p.is_file()):
        key = str(path.relative_to(repo)).replace(os.sep, KEY_SEPARATOR)
        content = path.read_bytes()
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
    name = unique("git-repo")
    sandbox.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                   "data": data, "binaryData": binary})
    return {"configMap": {"name": name}}


@pytest.mark.parametrize("delivery", ["volume", "configMap"])
def test_every_git_command_of_the_policies_works_on_a_real_repository(sandbox, kubectl, repository, delivery):
    source = _volume(sandbox, kubectl, repository) if delivery == "volume" else _configmap(sandbox, repository)
    wanted = expected(repository)
    if delivery == "configMap":  # the same source twice is not the point; a few commands suffice
        wanted = {key: wanted[key] for key in ("git status --porcelain", "git diff --name-only", "git log --oneline",
                                               "git rev-parse HEAD", "git describe --tags", "git branch")}
    jobs = {command: sandbox.job(command, source) for command in wanted}
    problems = []
    for command, job in jobs.items():
        problems += _check(sandbox, job, command, wanted[command])
    assert not problems, "\n".join(problems)


def test_the_commands_are_allowed_and_cover_every_git_subcommand_of_the_policies(repository):
    from safeagent.policy import decide, load_policy

    configs = Path(__file__).resolve().parents[2] / "configs"
    subcommands = set()
    for name in ("policy.yaml", "policy.execution.yaml"):
        policy = load_policy(configs / name)
        subcommands |= set(policy._compiled.programs["git"].subcommands)
        for command in expected(repository):
            assert decide(policy, command).decision == "allow", (name, command)
    assert {command.split()[1] for command in expected(repository)} == subcommands
