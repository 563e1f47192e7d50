"""Run argument vectors against the real programs and report what they printed (standard library only).

Used by tests/unit/policy/test_arity.py, inside the sandbox image (`docker run -i ... python3 -c ...`,
this file's text and the argument vectors arriving as one JSON document on standard input) or on a host whose
tools have the same versions. It builds a tiny git repository in a temporary directory, runs every
argv there with standard input empty, a clean environment and a time limit, and prints one JSON
document: the tools' versions and, per argv, the exit code and the first part of the combined output.
All the judging happens in the test; this side only runs programs.
"""

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

#: How each tool reports its version (the first line of the output is kept).
VERSION_COMMANDS = {
    "git": ["git", "--version"],
    "coreutils": ["ls", "--version"],
    "grep": ["grep", "--version"],
    "findutils": ["find", "--version"],
    "diffutils": ["diff", "--version"],
    "sed": ["sed", "--version"],
    "file": ["file", "--version"],
    "tree": ["tree", "--version"],
    "ripgrep": ["rg", "--version"],
    "make": ["make", "--version"],
    "pytest": ["pytest", "--version"],
}


def _environment(home: str) -> dict:
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": home,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "GIT_AUTHOR_NAME": "probe",
        "GIT_AUTHOR_EMAIL": "probe@example.invalid",
        "GIT_COMMITTER_NAME": "probe",
        "GIT_COMMITTER_EMAIL": "probe@example.invalid",
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
        "PYTEST_ADDOPTS": "",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _run(argv: list, directory: str, env: dict) -> dict:
    try:
        result = subprocess.run(
            argv, cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=20,
        )
    except FileNotFoundError:
        return {"rc": 127, "out": "probe: program not found"}
    except subprocess.TimeoutExpired:
        return {"rc": -1, "out": "probe: timed out"}
    return {"rc": result.returncode, "out": result.stdout[:4000].decode("utf-8", "replace")}


def _repository(directory: str, env: dict) -> None:
    """A repository with two commits, a tag, a branch, a remote and a stash; `a` and `b` are tracked files."""
    steps = [
        ["git", "init", "-q", "-b", "main", "."],
        ["git", "config", "user.name", "probe"],
        ["git", "config", "user.email", "probe@example.invalid"],
        ["git", "add", "a"],
        ["git", "commit", "-q", "-m", "first"],
        ["git", "tag", "-a", "-m", "v1", "v1"],
        ["git", "add", "b"],
        ["git", "commit", "-q", "-m", "second"],
        ["git", "branch", "side"],
        ["git", "remote", "add", "origin", "https://example.invalid/repo.git"],
    ]
    for name, text in (("a", "alpha\nbeta\n"), ("b", "one\ntwo\n")):
        with open(os.path.join(directory, name), "w") as handle:
            handle.write(text)
    for argv in steps:
        subprocess.run(argv, cwd=directory, env=env, check=True, stdin=subprocess.DEVNULL)
    # a stash, so that `git stash list` reaches the `git log` it runs (with no stash it stops first)
    with open(os.path.join(directory, "a"), "a") as handle:
        handle.write("stashed\n")
    subprocess.run(["git", "stash", "-q"], cwd=directory, env=env, check=True, stdin=subprocess.DEVNULL)


def main() -> None:
    request = json.load(sys.stdin)
    with tempfile.TemporaryDirectory(prefix="arity-probe-") as directory:
        env = _environment(directory)
        work = os.path.join(directory, "repo")
        os.mkdir(work)
        _repository(work, env)
        versions = {name: _run(argv, work, env)["out"].splitlines()[:1] for name, argv in VERSION_COMMANDS.items()}
        with ThreadPoolExecutor(max_workers=int(request.get("workers", 4))) as pool:
            results = list(pool.map(lambda argv: _run(argv, work, env), request["argvs"]))
    json.dump({"versions": {name: (line[0] if line else "") for name, line in versions.items()}, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
