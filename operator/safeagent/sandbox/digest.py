"""One content digest of a source tree, whoever computes it.

STDLIB ONLY: used inside the sandbox (the preparation step digests the tree it copied) and by the
operator (which digests a ConfigMap's data when it asks for an Approval). Both must arrive at the
same string for the same files, so the definition lives here once:

    sha256 over one JSON line per entry, sorted by relative path:
        ["d", PATH]                          a directory
        ["f", PATH, EXECUTABLE, SIZE, SHA256] a regular file (EXECUTABLE: any x bit)

PATH uses '/' between components, without a leading './'. Names that are not valid UTF-8 keep
their bytes (surrogate escapes, written as JSON escapes), so two different names never share a
line. The workspace root itself is not an entry. The result reads `sha256:<64 hex digits>`.

What the digest covers is what the command sees: names, the tree's shape, contents and the
executable bit. Owners, timestamps and other mode bits are not copied into the workspace, so
they are not part of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping

PREFIX = "sha256:"
_CHUNK = 1 << 20


class NotDigestible(ValueError):
    """The tree holds something other than directories and regular files."""


def _line(entry: list[object]) -> bytes:
    return (json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def _combine(entries: Iterable[tuple[str, list[object]]]) -> str:
    total = hashlib.sha256()
    for _, entry in sorted(entries, key=lambda item: item[0]):
        total.update(_line(entry))
    return PREFIX + total.hexdigest()


def _file_entry(path: str, executable: bool, size: int, sha256: str) -> list[object]:
    return ["f", path, executable, size, sha256]


def digest_files(files: Mapping[tuple[str, ...], bytes], executable: bool = False) -> str:
    """The digest of a tree given as {path components: content}; parent directories are implied."""
    entries: dict[str, list[object]] = {}
    for parts, content in files.items():
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            entries[directory] = ["d", directory]
        path = "/".join(parts)
        entries[path] = _file_entry(path, executable, len(content), hashlib.sha256(content).hexdigest())
    return _combine(entries.items())


def _hash_file(path: str) -> tuple[int, str]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotDigestible(f"{path!r} is not a regular file")
        hasher, size = hashlib.sha256(), 0
        while chunk := os.read(fd, _CHUNK):
            hasher.update(chunk)
            size += len(chunk)
        return size, hasher.hexdigest()
    finally:
        os.close(fd)


def digest_tree(root: str) -> str:
    """The digest of the tree under `root` (lstat only; a link or special file is refused)."""
    entries: list[tuple[str, list[object]]] = []
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(os.path.join(root, relative) if relative else root) as iterator:
            listing = list(iterator)
        for item in listing:
            path = f"{relative}/{item.name}" if relative else item.name
            info = item.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                entries.append((path, ["d", path]))
                pending.append(path)
            elif stat.S_ISREG(info.st_mode):
                size, sha256 = _hash_file(item.path)
                entries.append((path, _file_entry(path, bool(info.st_mode & 0o111), size, sha256)))
            else:
                raise NotDigestible(f"{path!r} is neither a directory nor a regular file")
    return _combine(entries)
