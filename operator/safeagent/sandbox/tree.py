"""Source-tree validation: refuse links, special files and oversized trees before a sandbox uses them.

STANDARD LIBRARY ONLY: this module runs inside the sandbox image (no third-party packages), as
``python3 -m safeagent.sandbox.tree PATH``; ``safeagent validate-tree PATH`` is the same command.

It never follows a symbolic link and never opens anything but a directory: each directory is opened
with O_NOFOLLOW|O_DIRECTORY relative to its parent's descriptor and listed with ``os.scandir(fd)``,
and entries are classified by ``lstat`` data only. Regular files are counted, never read. Prints one
JSON report; exit status 0 = ok, 1 = rejected, 2 = usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys

from safeagent.sandbox.contract import TreeLimitsRecord, TreeProblemRecord, TreeReportRecord

DEFAULT_MAX_FILES = 10_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
MAX_LISTED_PROBLEMS = 20

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

#: lstat file type -> (problem reason, what a human is told)
_SPECIAL = (
    (stat.S_ISLNK, "symlink", "symbolic link"),
    (stat.S_ISCHR, "device", "character device"),
    (stat.S_ISBLK, "device", "block device"),
    (stat.S_ISSOCK, "socket", "socket"),
    (stat.S_ISFIFO, "fifo", "named pipe (FIFO)"),
)


class _Rejected(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _Walk:
    """Counters and problems of one validation."""

    def __init__(self, max_files: int, max_bytes: int, max_depth: int) -> None:
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.files = 0
        self.directories = 0
        self.bytes = 0
        self.problems: list[TreeProblemRecord] = []

    def problem(self, reason: str, path: str, message: str) -> None:
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(TreeProblemRecord(reason=reason, path=path, message=message))

    def count(self, path: str, size: int, is_directory: bool) -> None:
        if is_directory:
            self.directories += 1
        else:
            self.files += 1
            self.bytes += size
        if self.files + self.directories > self.max_files:
            raise _Rejected("too_many_files", f"the tree has more than {self.max_files} entries")
        if self.bytes > self.max_bytes:
            raise _Rejected("too_large", f"the tree holds more than {self.max_bytes} bytes")

    def directory(self, fd: int, relative: str, depth: int) -> None:
        if depth > self.max_depth:
            raise _Rejected("too_deep", f"{relative} is nested deeper than {self.max_depth} levels")
        with os.scandir(fd) as entries:
            listing = sorted(entries, key=lambda entry: entry.name)
        for entry in listing:
            path = f"{relative}/{entry.name}" if relative else entry.name
            if any(ord(char) < 32 or ord(char) == 127 for char in entry.name):
                self.problem("bad_name", path.encode("unicode_escape").decode("ascii"), "name holds a control character")
                continue
            info = entry.stat(follow_symlinks=False)
            mode = info.st_mode
            special = next(((reason, what) for test, reason, what in _SPECIAL if test(mode)), None)
            if special is not None:
                self.problem(special[0], path, f"{special[1]} refused")
            elif stat.S_ISDIR(mode):
                self.count(path, 0, True)
                child = os.open(entry.name, _DIRECTORY_FLAGS, dir_fd=fd)
                try:
                    self.directory(child, path, depth + 1)
                finally:
                    os.close(child)
            elif stat.S_ISREG(mode):
                self.count(path, info.st_size, False)
            else:
                self.problem("unknown_type", path, f"file type {stat.S_IFMT(mode):o} refused")


def validate_tree(
    path: str | os.PathLike[str],
    max_files: int = DEFAULT_MAX_FILES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> TreeReportRecord:
    """Validate the tree at ``path``; returns the report (``ok``, ``reason``, ``message``, counts, problems)."""
    root = os.fspath(path)
    walk = _Walk(max_files, max_bytes, max_depth)
    reason, message = "ok", "the tree is acceptable"
    try:
        info = os.lstat(root)
        if stat.S_ISLNK(info.st_mode):
            raise _Rejected("symlink", "the tree's root is a symbolic link")
        if not stat.S_ISDIR(info.st_mode):
            raise _Rejected("not_a_directory", "the tree's root is not a directory")
        fd = os.open(root, _DIRECTORY_FLAGS)
        try:
            walk.directory(fd, "", 0)
        finally:
            os.close(fd)
        if walk.problems:
            first = walk.problems[0]
            reason, message = first["reason"], f"{first['path']}: {first['message']}"
    except _Rejected as rejected:
        reason, message = rejected.reason, rejected.message
    except FileNotFoundError:
        reason, message = "not_found", "the path does not exist"
    except OSError as error:
        reason, message = "unreadable", f"cannot read the tree: {error.strerror or error}"
    return TreeReportRecord(
        ok=reason == "ok",
        reason=reason,
        message=message,
        path=root,
        files=walk.files,
        directories=walk.directories,
        bytes=walk.bytes,
        problems=walk.problems,
        limits=TreeLimitsRecord(max_files=max_files, max_bytes=max_bytes, max_depth=max_depth),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``validate-tree``, shared by this module's main and ``safeagent`` (cli.py)."""
    parser.add_argument("path", help="directory to validate")
    parser.add_argument("--max-files", type=_positive, default=DEFAULT_MAX_FILES, help="entries (files + dirs)")
    parser.add_argument("--max-bytes", type=_positive, default=DEFAULT_MAX_BYTES, help="total size of files")
    parser.add_argument("--max-depth", type=_positive, default=DEFAULT_MAX_DEPTH, help="directory nesting")


def run(arguments: argparse.Namespace) -> int:
    report = validate_tree(arguments.path, arguments.max_files, arguments.max_bytes, arguments.max_depth)
    print(json.dumps(report, sort_keys=True))
    return 0 if report["ok"] else 1


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m safeagent.sandbox.tree", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))  # argparse exits 2 on a usage error


if __name__ == "__main__":
    sys.exit(main())
