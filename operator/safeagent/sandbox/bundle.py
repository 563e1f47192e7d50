"""Source bundles: a directory tree carried as content-addressed, compressed chunks in ConfigMaps.

STDLIB ONLY: the client packs a bundle (`pack`), the operator reads its manifest (`read_manifest`,
`tree_digest`, for the Approval's pin and the Pod's volume), and the preparation step rebuilds the
tree from it inside the sandbox (`unpack`). One definition, imported by all three (an import
contract in operator/pyproject.toml names this module among the few the operator may import).

A bundle is:

  manifest  canonical JSON, stored under key `manifest.json` of the immutable ConfigMap
            `sa-bundle-<sha256 of the JSON bytes>`:
              {"kind": "safeagent.ca/bundle", "version": 1,
               "entries": [["d", PATH] | ["f", PATH, EXECUTABLE, SIZE, SHA256], ...]  (sorted by PATH)
               "chunks": [[SHA256, SIZE], ...]}
            The entries are exactly the lines of the tree's content digest (safeagent.sandbox.digest),
            so the digest an Approval pins is computed from the manifest alone.
  chunks    the files' contents, concatenated in entry order, cut into pieces of at most
            MAX_CHUNK bytes; each piece zlib-compressed under key `chunk.z` of the immutable
            ConfigMap `sa-chunk-<sha256 of the uncompressed piece>`.

Cutting: a chunk ends after a file whose path hash has its low bits zero once it holds MIN_CHUNK
bytes, so an edit changes only the chunk holding the edited file (and an added or removed file
its neighbours); a file of LARGE_FILE bytes or more starts a chunk of its own and is cut at fixed
offsets from its own start, so a large git pack keeps its chunks whatever happens around it.

Everything is checked where it is used, never trusted from a name: the manifest's bytes against
the digest in its name, every chunk against the digest the manifest gives it (a submitter may have
created an object under the expected name with other bytes), every file against its SHA-256,
paths (relative, no empty, `.` or `..` component, no control character, each parent a directory
entry before it), the count and byte caps, and the decompressed size (at most the declared size:
no compression bomb).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from safeagent.sandbox.digest import PREFIX

KIND = "safeagent.ca/bundle"
VERSION = 1
MANIFEST_PREFIX = "sa-bundle-"
CHUNK_PREFIX = "sa-chunk-"
MANIFEST_KEY = "manifest.json"
CHUNK_KEY = "chunk.z"
# Incompressible data (a git pack) grows a little under zlib; 768 KiB stays below a ConfigMap's
# 1 MiB once compressed, with room for its metadata.
MAX_CHUNK = 768 * 1024
MIN_CHUNK = 128 * 1024
LARGE_FILE = MAX_CHUNK // 2
BOUNDARY_MASK = 0x3  # about one file boundary in four becomes a chunk boundary past MIN_CHUNK
MAX_CHUNKS = 1024
MAX_MANIFEST_BYTES = 900 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_NAME = re.compile(r"^sa-bundle-[0-9a-f]{64}$")
CHUNK_NAME = re.compile(r"^sa-chunk-[0-9a-f]{64}$")
# The label the client puts on every object it uploads. The operator's retention sweep removes
# only objects that carry it *and* are named like a manifest or a chunk: never a user's ConfigMap.
UPLOADED_LABEL = "app.kubernetes.io/created-by"
UPLOADED_BY = "safeagent-client"


class BundleRejected(Exception):
    """The bundle is not usable; `reason` is the stable code the job is Rejected with."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def chunk_name(digest: str) -> str:
    return CHUNK_PREFIX + digest


def manifest_name(manifest: bytes) -> str:
    return MANIFEST_PREFIX + hashlib.sha256(manifest).hexdigest()


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------- packing


class Packed:
    """A packed tree: the manifest's bytes and name, and each chunk (digest -> uncompressed bytes)."""

    def __init__(self, manifest: bytes, chunks: dict[str, bytes], files: int, size: int) -> None:
        self.manifest = manifest
        self.name = manifest_name(manifest)
        self.chunks = chunks
        self.files, self.bytes = files, size

    def compressed(self, digest: str) -> bytes:
        return zlib.compress(self.chunks[digest], 6)


def _walk(root: str) -> Iterator[tuple[str, os.stat_result, str]]:
    """(relative path, lstat, absolute path) of every entry, without following links."""
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(os.path.join(root, relative) if relative else root) as iterator:
            for entry in iterator:
                path = f"{relative}/{entry.name}" if relative else entry.name
                info = entry.stat(follow_symlinks=False)
                yield path, info, entry.path
                if stat.S_ISDIR(info.st_mode):
                    pending.append(path)


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleRejected("changed_during_copy", f"{path!r} is not a regular file")
        parts = []
        while piece := os.read(fd, 1 << 20):
            parts.append(piece)
        return b"".join(parts)
    finally:
        os.close(fd)


def _boundary(path: str) -> bool:
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).digest()[0] & BOUNDARY_MASK == 0


def pack(root: str) -> Packed:
    """Pack the tree under `root` (validate it with safeagent.sandbox.tree first: links and special
    files are refused here too, but without the tree check's report)."""
    entries: list[list[object]] = []
    contents: list[tuple[str, bytes]] = []
    for path, info, absolute in sorted(_walk(root), key=lambda item: item[0]):
        if stat.S_ISDIR(info.st_mode):
            entries.append(["d", path])
        elif stat.S_ISREG(info.st_mode):
            data = _read(absolute)
            entries.append(["f", path, bool(info.st_mode & 0o111), len(data), hashlib.sha256(data).hexdigest()])
            contents.append((path, data))
        else:
            raise BundleRejected("not_a_file", f"{path!r} is neither a directory nor a regular file")
    chunks: dict[str, bytes] = {}
    order: list[list[object]] = []
    current = bytearray()

    def emit() -> None:
        if current:
            piece = bytes(current)
            digest = hashlib.sha256(piece).hexdigest()
            chunks[digest] = piece
            order.append([digest, len(piece)])
            current.clear()

    for path, data in contents:
        if len(data) >= LARGE_FILE:
            emit()
            for offset in range(0, len(data), MAX_CHUNK):
                current += data[offset:offset + MAX_CHUNK]
                emit()
            continue
        if len(current) + len(data) > MAX_CHUNK:
            emit()
        current += data
        if len(current) >= MIN_CHUNK and _boundary(path):
            emit()
    emit()
    manifest = _canonical({"kind": KIND, "version": VERSION, "entries": entries, "chunks": order})
    return Packed(manifest, chunks, len(contents), sum(len(data) for _, data in contents))


# ---------------------------------------------------------------------------------------- reading


def read_manifest(name: str, data: bytes) -> dict[str, Any]:
    """The manifest stored under `name`, checked: its bytes hash to its name, its shape is this
    module's. Raises BundleRejected."""
    if not MANIFEST_NAME.match(name):
        raise BundleRejected("bad_bundle", f"{name!r} is not a bundle manifest's name")
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleRejected("bad_bundle", "the manifest is too large")
    if manifest_name(data) != name:
        raise BundleRejected("bundle_digest_mismatch", f"the object {name} does not hold the manifest its name promises")
    try:
        manifest = json.loads(data)
    except ValueError:
        raise BundleRejected("bad_bundle", "the manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND or manifest.get("version") != VERSION:
        raise BundleRejected("bad_bundle", "the manifest is not a safeagent bundle of a version this release reads")
    entries, chunks = manifest.get("entries"), manifest.get("chunks")
    if not isinstance(entries, list) or not isinstance(chunks, list) or len(chunks) > MAX_CHUNKS:
        raise BundleRejected("bad_bundle", "the manifest's entries or chunks are malformed")
    for chunk in chunks:
        if not (isinstance(chunk, list) and len(chunk) == 2 and isinstance(chunk[0], str) and _HEX64.match(chunk[0])
                and isinstance(chunk[1], int) and not isinstance(chunk[1], bool) and 0 < chunk[1] <= MAX_CHUNK):
            raise BundleRejected("bad_bundle", "the manifest lists a malformed chunk")
    return manifest


def chunk_digests(manifest: dict[str, Any]) -> list[str]:
    """The chunks a (checked) manifest names, in order, each once."""
    seen: dict[str, None] = {}
    for digest, _ in manifest["chunks"]:
        seen.setdefault(digest, None)
    return list(seen)


def _check_path(path: object) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or len(path) > 4096:
        raise BundleRejected("bad_path", f"the manifest names a bad path: {path!r}")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise BundleRejected("bad_path", f"the manifest names a path outside the tree: {path!r}")
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        raise BundleRejected("bad_name", f"a name holds a control character: {path!r}")
    return path


def checked_entries(manifest: dict[str, Any], max_files: int, max_bytes: int) -> list[list[Any]]:
    """The manifest's entries, checked: sorted, unique, well formed, every parent a directory
    entry before its children, within the caps."""
    directories: set[str] = set()
    previous, files, total = "", 0, 0
    checked: list[list[Any]] = []
    for entry in manifest["entries"]:
        if not isinstance(entry, list) or not entry or entry[0] not in ("d", "f"):
            raise BundleRejected("bad_bundle", "the manifest holds a malformed entry")
        path = _check_path(entry[1] if len(entry) > 1 else None)
        if path <= previous:
            raise BundleRejected("bad_bundle", "the manifest's entries are not sorted and unique")
        previous = path
        parent = path.rpartition("/")[0]
        if parent and parent not in directories:
            raise BundleRejected("bad_bundle", f"{path!r} comes before its directory")
        if entry[0] == "d" and len(entry) == 2:
            directories.add(path)
        elif (entry[0] == "f" and len(entry) == 5 and isinstance(entry[2], bool) and isinstance(entry[3], int)
              and not isinstance(entry[3], bool) and entry[3] >= 0 and isinstance(entry[4], str)
              and _HEX64.match(entry[4])):
            files += 1
            total += entry[3]
        else:
            raise BundleRejected("bad_bundle", f"the manifest's entry for {path!r} is malformed")
        if files + len(directories) > max_files:
            raise BundleRejected("too_many_files", f"the source has more than {max_files} entries")
        if total > max_bytes:
            raise BundleRejected("too_large", f"the source is larger than {max_bytes} bytes")
        checked.append(entry)
    if total != sum(size for _, size in manifest["chunks"]):
        raise BundleRejected("bad_bundle", "the chunks do not add up to the files' sizes")
    return checked


def tree_digest(manifest: dict[str, Any]) -> str:
    """The content digest (safeagent.sandbox.digest) of the tree a checked manifest describes: the
    digest an Approval pins. The preparation step proves it on the rebuilt tree before anything runs."""
    total = hashlib.sha256()
    for entry in manifest["entries"]:
        total.update((json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n").encode())
    return PREFIX + total.hexdigest()


# ---------------------------------------------------------------------------------------- unpacking


class _Stream:
    """The files' bytes, read chunk after chunk, each chunk checked before any of it is used."""

    def __init__(self, chunks: list[list[Any]], read_chunk: Callable[[str], bytes]) -> None:
        self.chunks, self.read_chunk = iter(chunks), read_chunk
        self.buffer = memoryview(b"")

    def _next_chunk(self) -> None:
        try:
            digest, size = next(self.chunks)
        except StopIteration:
            raise BundleRejected("bad_bundle", "the chunks end before the files do") from None
        try:
            compressed = self.read_chunk(digest)
        except OSError:
            raise BundleRejected("chunk_missing", f"chunk {chunk_name(digest)} is not in the source volume") from None
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(compressed, size + 1)
        except zlib.error:
            raise BundleRejected("chunk_digest_mismatch", f"chunk {chunk_name(digest)} is not zlib data") from None
        if len(data) != size or not inflater.eof or hashlib.sha256(data).hexdigest() != digest:
            raise BundleRejected("chunk_digest_mismatch",
                                 f"the object {chunk_name(digest)} does not hold the chunk its name promises")
        self.buffer = memoryview(data)

    def read(self, size: int) -> Iterator[memoryview]:
        while size:
            if not self.buffer:
                self._next_chunk()
            piece = self.buffer[:size]
            self.buffer = self.buffer[len(piece):]
            size -= len(piece)
            yield piece

    def finished(self) -> bool:
        return not self.buffer and next(self.chunks, None) is None


def unpack(manifest: dict[str, Any], read_chunk: Callable[[str], bytes], workspace: str,
           max_files: int, max_bytes: int) -> tuple[int, int]:
    """Rebuild the tree a checked manifest describes under `workspace` (an empty directory):
    directories 0755, files 0644 or 0755, each checked against its SHA-256. Returns (files, bytes)."""
    entries = checked_entries(manifest, max_files, max_bytes)
    stream = _Stream(manifest["chunks"], read_chunk)
    files = size = 0
    for entry in entries:
        target = os.path.join(workspace, *entry[1].split("/"))
        if entry[0] == "d":
            os.mkdir(target, 0o755)
            continue
        mode = 0o755 if entry[2] else 0o644
        hasher = hashlib.sha256()
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            for piece in stream.read(entry[3]):
                hasher.update(piece)
                while piece:
                    piece = piece[os.write(out, piece):]
            os.fchmod(out, mode)
        finally:
            os.close(out)
        if hasher.hexdigest() != entry[4]:
            raise BundleRejected("chunk_digest_mismatch", f"{entry[1]!r} does not have the content its entry names")
        files += 1
        size += entry[3]
    if not stream.finished():
        raise BundleRejected("bad_bundle", "the chunks hold more than the files")
    return files, size
