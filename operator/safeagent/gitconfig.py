"""Keep a workspace repository's own git configuration from running programs. STDLIB ONLY.

The policy lets `git status`, `git diff`, `git log` and `git show` run, but git reads
`.git/config` from the repository under inspection, and several of its settings name programs that
git then runs by itself: `core.fsmonitor` (on every `git status`), `diff.external` (on every
`git diff` without `--no-ext-diff`), `diff.<driver>.textconv`/`.command` and `filter.<driver>.*`
(selected by `.gitattributes`), `core.pager`, `include.path` pulling in more of the same. A
repository crafted that way turns "inspect-only" into "run anything".

Two layers, both applied to every sandbox:
1. `sanitize_repository_config` (preparation step): rewrites `/workspace/.git/config` keeping only
   an allow-list of inert keys (format version and extensions, remotes and branch tracking), read
   with `git config --file` (which never follows includes without `--includes`). A `.git` that is a
   file (`gitdir: elsewhere`) cannot be rewritten safely and is rejected, and so are object
   alternates and a worktree's `commondir`, which make git read another repository.
2. `GIT_SAFE_ENV` (runner): environment settings that outrank every configuration file and reach
   nested git processes (submodules): no system or global config, fsmonitor off, hooks pointed at
   /dev/null, no pager, submodules ignored.
"""

from __future__ import annotations

import os
import stat
import subprocess

# Keys kept from the repository's .git/config; everything else is dropped.
KEPT_KEYS = (
    r"^(core\.(repositoryformatversion|bare|filemode|ignorecase|precomposeunicode|logallrefupdates)"
    r"|extensions\.(objectformat|refstorage)"
    r"|remote\..+\.(url|fetch)"
    r"|branch\..+\.(remote|merge))$"
)

_OVERRIDES = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.untrackedCache", "false"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
    ("submodule.recurse", "false"),
    ("protocol.allow", "never"),
)

GIT_SAFE_ENV: dict[str, str] = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    # `git status` would otherwise refresh .git/index (an inspection that writes).
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_CONFIG_COUNT": str(len(_OVERRIDES)),
}
for _index, (_key, _value) in enumerate(_OVERRIDES):
    GIT_SAFE_ENV[f"GIT_CONFIG_KEY_{_index}"] = _key
    GIT_SAFE_ENV[f"GIT_CONFIG_VALUE_{_index}"] = _value

# Reading a config file needs only "no system or global config" from the overrides above.
_GIT_CONFIG_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C",
                   **{key: GIT_SAFE_ENV[key] for key in ("GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL")}}


class GitConfigRejected(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _git_config(path: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "config", "--file", path, *args], capture_output=True,
                          env=_GIT_CONFIG_ENV, timeout=30, check=False)


def _entries(output: bytes) -> list[tuple[str, str]]:
    """Parse `git config -z` output: records `key\\nvalue` separated by NUL."""
    pairs = []
    for record in output.split(b"\0"):
        if record:
            key, _, value = record.decode("utf-8", "surrogateescape").partition("\n")
            pairs.append((key, value))
    return pairs


def sanitize_repository_config(workspace: str) -> dict[str, object]:
    """Rewrite workspace/.git/config to its inert keys; report how many keys were dropped."""
    git_path = os.path.join(workspace, ".git")
    try:
        info = os.lstat(git_path)
    except FileNotFoundError:
        return {"repository": False, "kept": 0, "dropped": 0}
    if not stat.S_ISDIR(info.st_mode):
        raise GitConfigRejected("git_dir_not_directory",
                                "the source's .git is not a directory (a gitdir link is not supported)")
    # Files that make git read another repository's objects or directory (alternates, a linked
    # worktree's common dir): refused, since whatever they point at is outside the workspace.
    for link in ("objects/info/alternates", "objects/info/http-alternates", "commondir"):
        if os.path.lexists(os.path.join(git_path, link)):
            raise GitConfigRejected("git_points_outside",
                                    f"the source's .git/{link} makes git read outside the workspace")
    for leftover in ("config.worktree",):
        candidate = os.path.join(git_path, leftover)
        if os.path.lexists(candidate):
            os.unlink(candidate)
    config = os.path.join(git_path, "config")
    if not os.path.lexists(config):
        return {"repository": True, "kept": 0, "dropped": 0}
    everything = _git_config(config, "-z", "--list")
    kept = _git_config(config, "-z", "--get-regexp", KEPT_KEYS)
    # Exit status 1 means "no key matched"; anything else (an unparsable file) keeps nothing.
    kept_pairs = _entries(kept.stdout) if kept.returncode == 0 else []
    total = len(_entries(everything.stdout)) if everything.returncode == 0 else None
    fresh = config + ".safeagent"
    with open(fresh, "x"):
        pass
    for key, value in kept_pairs:
        added = _git_config(fresh, "--add", key, value)
        if added.returncode != 0:
            os.unlink(fresh)
            raise GitConfigRejected("git_config_unusable", f"cannot rewrite git setting {key!r}")
    os.chmod(fresh, 0o644)
    os.replace(fresh, config)
    dropped = None if total is None else total - len(kept_pairs)
    return {"repository": True, "kept": len(kept_pairs), "dropped": dropped}
