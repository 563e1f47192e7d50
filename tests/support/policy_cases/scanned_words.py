"""Words programs look for outside their option parser (policy v3, issue 19), as classes.

git 2.39 (the sandbox image's; `programs.git.version` in the policy) scans the whole argv for some
words before its option parser runs, so a word the policy reads as another option's value is an
option to git:

    git diff          --no-index in every word before the first operand (builtin/diff.c), then it
                      compares plain files
    git log, show, reflog, stash list
                      the first pass of builtin/log.c: -q/--quiet, --source, --use-mailmap/--mailmap,
                      --decorate*, --clear-decorations, -L (and their --no- forms)
    every revision walk (diff, log, show, reflog, stash list, rev-list, diff-tree)
                      the first -- anywhere ends the options (revision.c setup_revisions)
    git rev-list      --exclude-promisor-objects, --missing=... (builtin/rev-list.c)

Each is refused as a separate value of every option that takes one (`argument_denied`); attached it
is one word (`--grep=--mailmap`) and stays allowed. Rows marked `# bypass` were allowed by policy v2.
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

#: options that take the next word as their value, per command (a sample of each kind of value)
TAKERS = {
    "git diff": ["--src-prefix", "--dst-prefix", "--line-prefix", "-S", "-G", "--word-diff-regex", "--anchored",
                 "--diff-filter", "--output-indicator-new"],
    "git log": ["--grep", "--author", "-S", "-G", "--src-prefix", "--exclude", "--encoding", "--decorate-refs"],
    "git show": ["--grep", "-S", "--line-prefix"],
    "git reflog": ["--grep", "--author"],
    "git stash list": ["--grep", "-S"],
    "git rev-list": ["--grep", "--author", "--exclude"],
    "git diff-tree -r": ["-S", "--src-prefix"],
}
SCANNED = {
    "git diff": ["--no-index", "--"],
    "git log": ["--source", "--mailmap", "--use-mailmap", "-q", "--quiet", "-L1,1:README.md", "-Lfoo",
                "--decorate", "--decorate=full", "--decorate-refs=x", "--clear-decorations", "--no-mailmap", "--"],
    "git show": ["--source", "-q", "-L:main:src/app.py", "--"],
    "git reflog": ["--mailmap", "-L1,2:a", "--"],
    "git stash list": ["--source", "--"],
    "git rev-list": ["--exclude-promisor-objects", "--missing=allow-any", "--"],
    "git diff-tree -r": ["--"],
}


def _rows() -> list:
    rows = []
    for command, takers in TAKERS.items():
        for index, word in enumerate(SCANNED[command]):
            taker = takers[index % len(takers)]
            tail = " HEAD" if command in ("git rev-list", "git diff-tree -r") else ""
            rows.append((I, f"{command} {taker} {word}{tail}", DENY, "argument_denied"))  # bypass
            attached = f"{taker}={word}" if taker.startswith("--") else f"{taker}{word}"
            rows.append((I, f"{command} {attached}{tail}", ALLOW, "allowed"))
    return rows


ROWS = _rows() + [
    # the red-team round's lines: --no-index smuggled through a value, then plain files compared
    (I, "git diff --src-prefix --no-index README.md notes.txt", DENY, "argument_denied"),  # bypass
    (I, "git diff -S --no-index a b", DENY, "argument_denied"),  # bypass
    (I, "git diff --word-diff-regex --no-index --stat a b", DENY, "argument_denied"),  # bypass
    (I, "git log --grep --mailmap --oneline", DENY, "argument_denied"),  # bypass
    (I, "git log -S -L1,1:README.md", DENY, "argument_denied"),  # bypass
    (I, "git log --author --source --all", DENY, "argument_denied"),  # bypass
    (X, "git diff --line-prefix --no-index a b", DENY, "argument_denied"),  # bypass
    (X, "git log --grep -q", DENY, "argument_denied"),  # bypass
    # where git's scans do not look: after --, and in the commands that parse step by step
    (I, "git diff -- --no-index", ALLOW, "allowed"),  # a path after --
    (I, "git log --oneline -- -q", ALLOW, "allowed"),
    (I, "git shortlog --author --mailmap HEAD", ALLOW, "allowed"),  # shortlog parses option by option
    (I, "git blame -L 1,2 --date iso README.md", ALLOW, "allowed"),
    # words that only look alike
    (I, "git log --grep --sourcery", ALLOW, "allowed"),
    (I, "git log --grep --no-index", ALLOW, "allowed"),  # only git diff looks for --no-index
    (I, "git diff --src-prefix --no-indexes a", ALLOW, "allowed"),
]
