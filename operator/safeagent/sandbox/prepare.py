"""Validate the job's source and copy it into /workspace: `python3 -I -m safeagent.sandbox.prepare SPEC`.

STDLIB ONLY: runs as the init container of the sandbox Pod. SPEC is one JSON object:
{"source": "configMap" | "persistentVolumeClaim" | "bundle", "sourceDir": "/source",
 "workspace": "/workspace", "maxFiles": 5000, "maxBytes": 104857600,
 "expectedDigest": "sha256:..." (only for an approved job)}; its shape, the record's kind and the
reasons the operator interprets are in safeagent.sandbox.contract.

Part of the trust base, like the runner: started with `python3 -I` from `/` (see
safeagent.sandbox.runner), so nothing in the source can replace it or a module it imports.

ConfigMap sources. A ConfigMap volume is not a plain tree: the kubelet writes the keys into a
hidden timestamped directory, points the symlink `..data` at it and exposes every key as a
symlink `key -> ..data/key`. Validating the mount as-is would reject every ConfigMap (symlinks),
and following the links would defeat the point of refusing them. So we read `..data` exactly
once with readlink, require it to name a sibling directory (`..2024_...`, no slash), validate
*that real directory* with safeagent.sandbox.tree (no symlinks, devices, FIFOs or sockets; size caps)
and copy from it. ConfigMap keys cannot contain '/', so directories are encoded in the key:
`--` separates path components (`src--pkg--app.py` -> `src/pkg/app.py`; the encoding lives in
safeagent.sandbox.digest, which the operator shares). A key that decodes to an empty, `.` or `..`
component, or to a path that is both a file and a directory, is rejected.

Bundle sources (`safeagent run --source DIR`) are a projected volume of ConfigMaps laid out like a
ConfigMap volume: the manifest and one file per chunk in the directory behind `..data`. The spec's
`bundle` names the manifest; safeagent.sandbox.bundle checks it and every chunk against their
digests and rebuilds the tree entry by entry, with the same caps.

PersistentVolumeClaim sources are mounted read-only at sourceDir (the kubelet applies the job's
subPath), validated with safeagent.sandbox.tree, then copied without following links.

The copy re-checks every entry as it goes (lstat, O_NOFOLLOW, fstat must say regular file) and
re-applies the caps, so a tree that changes between validation and copy is rejected, not copied.
Copied files are 0644, or 0755 when the source was executable; set-id bits are never kept.
The copy is then digested (safeagent.sandbox.digest). For an approved job the spec carries the digest
the human reviewed; a different one means the source changed after the review, and nothing runs
(reason `source_changed`; the job ends Failed, ApprovalMismatch). The workspace is a tmpfs whose
size is its limit: a source that does not fit is rejected (`workspace_full`).
Then every git directory in the copy (the top-level .git, nested repositories, submodules'
.git/modules/**, whatever a nested gitfile names, a bare repository at the root) has its config
cut down to inert keys, and the top-level index is refreshed once (safeagent.sandbox.gitconfig), so that
git's own settings cannot make `git status` or `git diff` run a program and the command's
`git diff` has no index to rewrite. Before that git runs here, the process makes itself
non-dumpable, like the runner: a git child cannot reach this record's descriptor through /proc.

Prints one JSON line, the record safeagent.sandbox.contract.PrepareRecord defines ("kind", "ok",
"reason", "message", "files", "bytes", "digest", "report", "git": every key, null where it does
not apply), and exits 0 (copied), 1 (rejected: the job becomes Rejected) or 2 (bad spec or internal
error: the job becomes Failed, PrepareFailed).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from typing import cast

from safeagent.sandbox import bundle
from safeagent.sandbox.contract import (
    PREPARE_COPIED,
    PREPARE_ERROR,
    PREPARE_RESULT_KIND,
    PREPARE_SOURCE_CHANGED,
    PREPARE_SPEC_REQUIRED,
    SOURCE_BUNDLE,
    SOURCE_CONFIGMAP,
    SOURCE_PVC,
    GitSummaryRecord,
    PrepareRecord,
    PrepareSpec,
    TreeReportRecord,
)
from safeagent.sandbox.digest import BadConfigMapKeys, configmap_layout, digest_tree
from safeagent.sandbox.gitconfig import GitConfigRejected, sanitize_repository_config
from safeagent.sandbox.runner import PR_SET_DUMPABLE, prctl

COPY_CHUNK = 1 << 20


class Rejected(Exception):
    def __init__(self, reason: str, message: str, report: TreeReportRecord | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.report = report


def configmap_data_dir(source_dir: str) -> str:
    """The real directory behind a ConfigMap volume's `..data` link (read once, never followed)."""
    link = os.path.join(source_dir, "..data")
    try:
        target = os.readlink(link)
    except OSError:
        raise Rejected("bad_configmap_layout", "the source is not a ConfigMap volume (no ..data link)") from None
    if "/" in target or not target.startswith("..") or target in ("..", "..data"):
        raise Rejected("bad_configmap_layout", f"..data points outside the volume: {target!r}")
    real = os.path.join(source_dir, target)
    try:
        info = os.lstat(real)
    except OSError:
        raise Rejected("bad_configmap_layout", "..data names a directory that does not exist") from None
    if not stat.S_ISDIR(info.st_mode):
        raise Rejected("bad_configmap_layout", "..data does not name a directory")
    return real


class _Budget:
    def __init__(self, max_files: int, max_bytes: int) -> None:
        self.max_files, self.max_bytes = max_files, max_bytes
        self.files = 0
        self.bytes = 0

    def count_file(self) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise Rejected("too_many_files", f"the source has more than {self.max_files} files")

    def count_bytes(self, size: int) -> None:
        self.bytes += size
        if self.bytes > self.max_bytes:
            raise Rejected("too_large", f"the source is larger than {self.max_bytes} bytes")


def copy_file(source: str, destination: str, budget: _Budget) -> None:
    """Copy one regular file; refuse links and special files even if they appeared after validation."""
    budget.count_file()
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Rejected("changed_during_copy", f"cannot open {source!r} safely: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Rejected("changed_during_copy", f"{source!r} is not a regular file")
        mode = 0o755 if info.st_mode & 0o111 else 0o644
        out = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            while chunk := os.read(fd, COPY_CHUNK):
                budget.count_bytes(len(chunk))
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
            os.fchmod(out, mode)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def copy_tree(source: str, destination: str, budget: _Budget) -> None:
    """Copy a directory tree, lstat-only; anything but directories and regular files is refused."""
    with os.scandir(source) as iterator:
        entries = sorted(iterator, key=lambda entry: entry.name)
    for entry in entries:
        info = entry.stat(follow_symlinks=False)
        target = os.path.join(destination, entry.name)
        if stat.S_ISDIR(info.st_mode):
            os.mkdir(target, 0o755)
            copy_tree(entry.path, target, budget)
        elif stat.S_ISREG(info.st_mode):
            copy_file(entry.path, target, budget)
        else:
            raise Rejected("changed_during_copy", f"{entry.path!r} is not a file or directory")


def copy_configmap(data_dir: str, workspace: str, budget: _Budget) -> None:
    with os.scandir(data_dir) as iterator:
        names = [entry.name for entry in iterator]
    try:
        layout = configmap_layout(names)
    except BadConfigMapKeys as bad:
        raise Rejected(bad.reason, bad.message) from None
    directories = {parts[:depth] for parts in layout for depth in range(1, len(parts))}
    for parts in sorted(directories, key=len):
        os.mkdir(os.path.join(workspace, *parts), 0o755)
    for parts, key in sorted(layout.items()):
        copy_file(os.path.join(data_dir, key), os.path.join(workspace, *parts), budget)


def _validate(path: str, max_files: int, max_bytes: int) -> TreeReportRecord:
    from safeagent.sandbox.tree import validate_tree

    report = validate_tree(path, max_files=max_files, max_bytes=max_bytes)
    if not report.get("ok"):
        reason = str(report.get("reason") or "invalid_tree")
        detail = report.get("message") or report.get("path") or reason
        raise Rejected(reason, f"source tree rejected: {detail}", report)
    return report


def _read_mounted(data_dir: str, name: str) -> bytes:
    """One file of the projected volume's real directory (no link followed, regular files only)."""
    if "/" in name or name.startswith("."):
        raise OSError(errno.ENOENT, "not a bundle file name")
    fd = os.open(os.path.join(data_dir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        parts = []
        while piece := os.read(fd, COPY_CHUNK):
            parts.append(piece)
        return b"".join(parts)
    finally:
        os.close(fd)


def unpack_bundle(data_dir: str, name: str, workspace: str, budget: _Budget) -> None:
    """A bundle source: the manifest and every chunk checked against their digests, the tree rebuilt
    (safeagent.sandbox.bundle); the caps are the same as for any source."""
    try:
        data = _read_mounted(data_dir, bundle.MANIFEST_KEY)
    except OSError:
        raise Rejected("bad_bundle", "the source volume holds no bundle manifest") from None
    try:
        manifest = bundle.read_manifest(name, data)
        files, size = bundle.unpack(
            manifest, lambda digest: _read_mounted(data_dir, bundle.chunk_name(digest)), workspace,
            budget.max_files, budget.max_bytes,
        )
    except bundle.BundleRejected as rejected:
        raise Rejected(rejected.reason, rejected.message) from None
    budget.files, budget.bytes = files, size


def _copy(spec: PrepareSpec, budget: _Budget) -> TreeReportRecord | None:
    """Validate and copy the source into the workspace; returns the validation report (none for a
    bundle, whose manifest is checked entry by entry as it is rebuilt)."""
    source_dir, workspace = spec["sourceDir"], spec["workspace"]
    if spec["source"] == SOURCE_CONFIGMAP:
        data_dir = configmap_data_dir(source_dir)
        report = _validate(data_dir, budget.max_files, budget.max_bytes)
        copy_configmap(data_dir, workspace, budget)
    elif spec["source"] == SOURCE_PVC:
        report = _validate(source_dir, budget.max_files, budget.max_bytes)
        copy_tree(source_dir, workspace, budget)
    elif spec["source"] == SOURCE_BUNDLE:
        unpack_bundle(configmap_data_dir(source_dir), str(spec.get("bundle", "")), workspace, budget)
        return None
    else:
        raise ValueError(f"unknown source kind {spec['source']!r}")
    return report


def record(
    ok: bool,
    reason: str,
    message: str,
    report: TreeReportRecord | None = None,
    copied: tuple[int, int, str, GitSummaryRecord] | None = None,
) -> PrepareRecord:
    """The step's one record; `copied` (files, bytes, digest, git summary) only after a copy."""
    files, size, digest, git = copied if copied is not None else (None, None, None, None)
    return PrepareRecord(
        kind=PREPARE_RESULT_KIND,
        ok=ok,
        reason=reason,
        message=message,
        files=files,
        bytes=size,
        digest=digest,
        report=report,
        git=git,
    )


def prepare(spec: PrepareSpec) -> PrepareRecord:
    workspace = spec["workspace"]
    budget = _Budget(int(spec["maxFiles"]), int(spec["maxBytes"]))
    try:
        report = _copy(spec, budget)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise Rejected("workspace_full", "the source does not fit in the workspace volume") from None
        raise
    digest = digest_tree(workspace)
    expected = spec.get("expectedDigest")
    if expected is not None and digest != expected:
        raise Rejected(
            PREPARE_SOURCE_CHANGED,
            f"the source is not the one that was approved: its content digest is {digest}, "
            f"the Approval was given for {expected}",
        )
    try:
        git = sanitize_repository_config(workspace)
    except GitConfigRejected as exc:
        raise Rejected(exc.reason, exc.message) from None
    message = f"copied {budget.files} files ({budget.bytes} bytes) into the workspace"
    return record(True, PREPARE_COPIED, message, report, (budget.files, budget.bytes, digest, git))


def parse_spec(text: str) -> PrepareSpec:
    """The spec, checked for the keys the contract requires (a missing one is a prepare_error)."""
    spec = json.loads(text)
    if not isinstance(spec, dict):
        raise TypeError("spec must be a JSON object")
    missing = sorted(PREPARE_SPEC_REQUIRED - set(spec))
    if missing:
        raise KeyError(missing[0])
    return cast(PrepareSpec, spec)


def run(spec_text: str) -> tuple[PrepareRecord, int]:
    """The step on one JSON spec: its record, and its exit status (0 copied, 1 rejected, 2 error)."""
    try:
        return prepare(parse_spec(spec_text)), 0
    except Rejected as exc:
        return record(False, exc.reason, exc.message, exc.report), 1
    except (ValueError, KeyError, TypeError, OSError) as exc:
        return record(False, PREPARE_ERROR, str(exc)), 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    prctl(PR_SET_DUMPABLE, 0)
    if len(args) != 1:
        result, status = record(False, PREPARE_ERROR, "usage: python3 -I -m safeagent.sandbox.prepare '<json spec>'"), 2
    else:
        result, status = run(args[0])
    print(json.dumps(result, ensure_ascii=True, separators=(",", ":")), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
