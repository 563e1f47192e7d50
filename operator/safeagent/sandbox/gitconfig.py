"""Keep the repositories in a workspace from running programs, reading outside it or writing. STDLIB ONLY.

The policy lets `git status`, `git diff`, `git log`, `git show` ... run, but git reads configuration
from the repository under inspection, and several settings name programs that git then runs by
itself: `core.fsmonitor` (every `git status`), `diff.external` (every `git diff` without
`--no-ext-diff`), `diff.<driver>.textconv`/`.command` and `filter.<driver>.*` (selected by
`.gitattributes`), `core.pager`, `include.path` pulling in more of the same. A repository crafted
that way turns "inspect-only" into "run anything". And git does not read only `/workspace/.git`:
it enters nested repositories (submodules, from `git status` and `git diff` whenever `.gitmodules`
or `--ignore-submodules` says so), whose configuration lives in `sub/.git/`, in `.git/modules/NAME/`
or wherever a gitfile (`sub/.git` holding `gitdir: PATH`) points.

Two layers, both applied to every sandbox:

1. `sanitize_repository_config` (preparation step) neutralises EVERY git directory git could open
   in the copied tree, not only the top-level one: the top-level `.git`, every directory named
   `.git` anywhere, every git directory inside one of those (`.git/modules/**`), every directory a
   nested gitfile points at (the gitfile is rewritten to name it by absolute path, so that every
   reader, git or ripgrep, resolves it alike), and the workspace root itself when it is shaped like
   a (bare) git directory. In each, `config` is rewritten to an allow-list of inert keys (read with
   `git config --file`, which never follows includes) and `config.worktree` is deleted; a
   `worktrees/` directory (the administrative files of linked worktrees, whose checkouts are
   outside the source) is deleted. Rejected, with a stable reason, because what they name is
   outside the workspace or beyond what was neutralised: a top-level `.git` that is a file
   (`git_dir_not_directory`), object alternates, a `commondir`, or a nested gitfile that points
   outside the workspace (`git_points_outside`). Then the top-level index is refreshed once, here,
   so that the command's own `git diff` finds nothing to refresh (see below).
2. `GIT_SAFE_ENV` (runner): settings that outrank every configuration file and reach nested git
   processes (git keeps GIT_CONFIG_COUNT/KEY/VALUE for submodules): no system or global config,
   fsmonitor off, hooks pointed at /dev/null, no pager, submodules ignored by default, no index
   refresh, no protocol, and the two settings that make the workspace usable at all:
   - `safe.directory=/workspace`, exactly that path. The workspace is an emptyDir the kubelet
     leaves owned by root, so git refuses it as "dubious ownership" (exit 128). The sandbox cannot
     own it instead (chown needs root or CAP_CHOWN, which a restricted Pod never has). git's check
     exists against a repository planted by another user; here every file under /workspace was
     created by the preparation step (under the Pod's own UID, the runner's too) from the source,
     and every git directory in it was neutralised above. git reads safe.directory only from
     protected (system, global, command-line) configuration, never from the repository, and this
     entry matches a repository whose work tree is /workspace, or a bare repository AT /workspace
     -- hence:
   - `safe.bareRepository=explicit`: git refuses to use a bare repository it finds by discovery
     (only `--git-dir`/GIT_DIR, both refused by the policy, could name one). A source whose root is
     a git directory is therefore never used as a repository, whatever its config says.

Index writes. `git status` refreshes `.git/index` unless GIT_OPTIONAL_LOCKS=0; `git diff` refreshes
it regardless (its quiet refresh ignores optional locks) whenever stat data differs from the index,
which is true of every file of a fresh copy. `diff.autoRefreshIndex=false` stops that write, but on a
stale index `git diff --raw`/`--name-only` would then list every unchanged file as modified. So the
preparation step refreshes the index once (trusted code, after neutralising, under this
environment) and the command runs with `diff.autoRefreshIndex=false`: correct output, no write.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

from safeagent.sandbox.contract import GitSummaryRecord

WORKSPACE = "/workspace"

# Keys kept from a repository's config; everything else is dropped.
KEPT_KEYS = (
    r"^(core\.(repositoryformatversion|bare|filemode|ignorecase|precomposeunicode|logallrefupdates)"
    r"|extensions\.(objectformat|refstorage)"
    r"|remote\..+\.(url|fetch)"
    r"|branch\..+\.(remote|merge))$"
)

_OVERRIDES = (
    ("safe.directory", WORKSPACE),
    ("safe.bareRepository", "explicit"),
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.untrackedCache", "false"),
    ("core.attributesFile", "/dev/null"),
    ("core.excludesFile", "/dev/null"),
    ("diff.autoRefreshIndex", "false"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
    ("submodule.recurse", "false"),
    ("protocol.allow", "never"),
)

GIT_SAFE_ENV: dict[str, str] = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    # the image's /etc/gitattributes (absent): what git reads is the repository's, nothing else
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    # `git status` would otherwise refresh .git/index (an inspection that writes).
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_CONFIG_COUNT": str(len(_OVERRIDES)),
}
for _index, (_key, _value) in enumerate(_OVERRIDES):
    GIT_SAFE_ENV[f"GIT_CONFIG_KEY_{_index}"] = _key
    GIT_SAFE_ENV[f"GIT_CONFIG_VALUE_{_index}"] = _value

_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C"}
# Reading a config file needs only "no system or global config" from the overrides above.
_GIT_CONFIG_ENV = {**_BASE_ENV, **{key: GIT_SAFE_ENV[key] for key in ("GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL")}}

# Files that make git read another repository's objects or directory: refused in every git
# directory, since what they name is outside the workspace or was not neutralised.
_LINKS_OUT = ("objects/info/alternates", "objects/info/http-alternates", "commondir")
_GITFILE_MAX_BYTES = 4096


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


def _is_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def looks_like_git_dir(path: str) -> bool:
    """Shaped like a git directory: a HEAD file and objects/ with refs/, or a config, or a commondir.

    Wider than git's own test (HEAD must also parse, and a config alone is not enough): anything
    git could take for a repository is neutralised, at the price of now and then rewriting a
    `config` file that git would never have read. `logs/` (HEAD and refs/, no objects/) is not one.
    """
    return _is_file(os.path.join(path, "HEAD")) and (
        (_is_dir(os.path.join(path, "objects")) and _is_dir(os.path.join(path, "refs")))
        or _is_file(os.path.join(path, "config")) or os.path.lexists(os.path.join(path, "commondir")))


def _relative(workspace: str, path: str) -> str:
    return os.path.relpath(path, workspace)


def _gitfile_target(workspace: str, gitfile: str) -> str | None:
    """The directory a nested gitfile names, if it is inside the workspace; rejects one outside.

    git reads `gitdir: PATH` (relative to the gitfile's directory) and opens PATH as the
    repository. The tree has no links (validated), so resolving PATH lexically is what git does.
    A gitfile git cannot parse makes git fail, never run anything: None.
    """
    with open(gitfile, "rb") as handle:
        content = handle.read(_GITFILE_MAX_BYTES + 1)
    if len(content) > _GITFILE_MAX_BYTES or not content.startswith(b"gitdir: "):
        return None
    named = content[len(b"gitdir: "):].rstrip(b"\r\n\t ").decode("utf-8", "surrogateescape")
    if not named or "\0" in named:
        return None
    target = os.path.normpath(os.path.join(os.path.dirname(gitfile), named))
    root = os.path.normpath(workspace)
    if target != root and not target.startswith(root + os.sep):
        raise GitConfigRejected(
            "git_points_outside",
            f"the source's {_relative(workspace, gitfile)} names a git directory outside the workspace")
    return target


def _name_absolutely(gitfile: str, target: str) -> None:
    """Rewrite a nested gitfile to name its target by absolute path.

    git resolves a relative `gitdir:` against the gitfile's own directory, ripgrep (13) against the
    directory it was started in: `sub/.git` saying `gitdir: ../.git/modules/sub` sends ripgrep to
    `/.git/modules/sub`, outside the workspace. Named absolutely, both read the same, checked place.
    """
    fresh = gitfile + ".safeagent"
    with open(fresh, "x") as handle:
        handle.write(f"gitdir: {target}\n")
    os.chmod(fresh, 0o644)
    os.replace(fresh, gitfile)


def git_directories(workspace: str) -> list[str]:
    """Every directory of the tree that git could open as a repository (see the module docstring)."""
    roots: list[str] = []
    if looks_like_git_dir(workspace):
        roots.append(workspace)
    pending = [workspace]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as iterator:
            entries = sorted(iterator, key=lambda entry: entry.name)
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            if entry.name == ".git" and stat.S_ISDIR(info.st_mode):
                roots.append(entry.path)
            elif entry.name == ".git" and stat.S_ISREG(info.st_mode) and directory != workspace:
                target = _gitfile_target(workspace, entry.path)
                if target is not None:
                    _name_absolutely(entry.path, target)  # even when it names nothing (yet)
                    if _is_dir(target):
                        roots.append(target)
            if stat.S_ISDIR(info.st_mode):
                pending.append(entry.path)
    found: list[str] = []
    seen: set[str] = set()
    for root in roots:
        if not _is_dir(root):  # inside a worktrees/ directory deleted below
            continue
        # linked worktrees' administrative files: they describe checkouts outside the source
        worktrees = os.path.join(root, "worktrees")
        if _is_dir(worktrees):
            shutil.rmtree(worktrees)
        for directory in [root, *_git_dirs_below(root)]:
            if directory not in seen:
                seen.add(directory)
                found.append(directory)
    return found


def _git_dirs_below(root: str) -> list[str]:
    """Git directories nested inside a git directory (`modules/NAME`, `modules/A/modules/B` ...)."""
    found: list[str] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as iterator:
            subdirectories = sorted(entry.path for entry in iterator if entry.is_dir(follow_symlinks=False))
        for path in subdirectories:
            if looks_like_git_dir(path):
                found.append(path)
            pending.append(path)
    return found


def neutralise_git_dir(workspace: str, git_dir: str) -> tuple[int, int | None]:
    """Rewrite git_dir/config to its inert keys, delete config.worktree; refuse links out.

    Returns how many keys were kept and dropped (None: the config did not parse, none were kept).
    """
    for link in _LINKS_OUT:
        if os.path.lexists(os.path.join(git_dir, link)):
            raise GitConfigRejected(
                "git_points_outside",
                f"the source's {_relative(workspace, os.path.join(git_dir, link))} makes git read "
                "outside the workspace")
    leftover = os.path.join(git_dir, "config.worktree")
    if os.path.lexists(leftover):
        os.unlink(leftover)
    config = os.path.join(git_dir, "config")
    if not _is_file(config):
        return 0, 0
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
    return len(kept_pairs), None if total is None else total - len(kept_pairs)


def refresh_index(workspace: str) -> bool:
    """Bring the top-level index's stat data up to date with the fresh copy (see the docstring).

    Best effort: a repository git cannot refresh (no index, a corrupt one) only makes `git diff`
    list stat-dirty files as changed; it never makes the command write. A leftover index.lock
    from the source would make every refresh fail, so it goes first.
    """
    git_dir = os.path.join(workspace, ".git")
    if not _is_file(os.path.join(git_dir, "index")):
        return False
    lock = os.path.join(git_dir, "index.lock")
    if os.path.lexists(lock):
        os.unlink(lock)
    env = {**_BASE_ENV, **GIT_SAFE_ENV}
    # safe.directory names the sandbox's /workspace; a preparation run elsewhere (tests) names its own.
    env[f"GIT_CONFIG_VALUE_{[key for key, _ in _OVERRIDES].index('safe.directory')}"] = workspace
    try:
        done = subprocess.run(
            ["git", "update-index", "-q", "--unmerged", "--ignore-missing", "--ignore-submodules", "--refresh"],
            cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def sanitize_repository_config(workspace: str) -> GitSummaryRecord:
    """Neutralise every git directory in the workspace, then refresh the top-level index.

    Returns the summary the preparation record carries (safeagent.sandbox.contract.GitSummaryRecord):
    whether the workspace is a repository, the keys kept and dropped from its top-level config, how
    many git directories were neutralised in all, and whether the top-level index was refreshed.
    """
    top = os.path.join(workspace, ".git")
    if os.path.lexists(top) and not _is_dir(top):
        raise GitConfigRejected("git_dir_not_directory",
                                "the source's .git is not a directory (a gitdir link is not supported)")
    repository = _is_dir(top)
    top_counts: tuple[int, int | None] = (0, 0)
    directories = git_directories(workspace)
    for git_dir in directories:
        counts = neutralise_git_dir(workspace, git_dir)
        if git_dir == top:
            top_counts = counts
    kept, dropped = top_counts
    return GitSummaryRecord(
        repository=repository,
        kept=kept,
        dropped=dropped,
        gitDirectories=len(directories),
        indexRefreshed=refresh_index(workspace) if repository else False,
    )
