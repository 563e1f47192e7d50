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

A ConfigMap source is a flat map of keys, and the key encoding is part of what its digest means:
ConfigMap keys cannot contain '/', so `--` separates path components (`src--pkg--app.py` is
`src/pkg/app.py`). The operator digests a ConfigMap's data through `configmap_digest` before any
Pod exists; the preparation step lays the same keys out with `configmap_layout`, copies them and
digests the copy with `digest_tree`. Both sides import this module (the operator may import it
and safeagent.sandbox.contract, none of the in-Pod entry points: an import contract in
operator/pyproject.toml says so).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping

PREFIX = "sha256:"
KEY_SEPARATOR = "--"
_CHUNK = 1 << 20


class NotDigestible(ValueError):
    """The tree holds something other than directories and regular files."""


class BadConfigMapKeys(ValueError):
    """A ConfigMap's keys do not describe a tree; `reason` is the stable code the job is Rejected with."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


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


# ------------------------------------------------------------------------------- ConfigMap sources


def decode_key(key: str) -> list[str]:
    """ConfigMap key -> relative path components ('--' separates directories)."""
    parts = key.split(KEY_SEPARATOR)
    if any(part in ("", ".", "..") for part in parts):
        raise BadConfigMapKeys("bad_key", f"ConfigMap key {key!r} does not decode to a relative path")
    return parts


def configmap_layout(keys: Iterable[str]) -> dict[tuple[str, ...], str]:
    """path components -> ConfigMap key, for every key; refuses bad keys and file/directory clashes."""
    layout = {tuple(decode_key(key)): key for key in sorted(keys)}
    directories = {parts[:depth] for parts in layout for depth in range(1, len(parts))}
    clash = directories & set(layout)
    if clash:
        name = "/".join(sorted(clash)[0])
        raise BadConfigMapKeys("path_conflict", f"{name!r} would be both a file and a directory")
    return layout


def configmap_digest(files: Mapping[str, bytes]) -> str:
    """The digest of the workspace a ConfigMap with these keys and contents becomes: what the
    operator pins in an Approval before anything is copied."""
    layout = configmap_layout(files)
    return digest_files({parts: files[key] for parts, key in layout.items()})
