"""Run one argv inside the sandbox and report what happened: `python3 -I -m safeagent.sandbox.runner SPEC`.

STDLIB ONLY: this module runs in the sandbox image, which has no third-party packages.

Part of the trust base: it must never import anything the source tree could provide. The Pod
starts it with `python3 -I` (isolated mode: no current directory or script directory on
sys.path, PYTHON* variables and the user site ignored) from the working directory `/`, which the
source cannot write; the package lives in the image's read-only system site directory. Only the
command runs in the workspace (`cwd=workspace` below).

SPEC is one JSON object: {"argv": [...], "workspace": "/workspace", "timeoutSeconds": 300,
"maxOutputBytes": 65536, "scratch": {"workspace": "/workspace", "tmp": "/tmp", "shm": "/dev/shm"},
"memoryMarginBytes": 33554432, "pids": {"max": 1024, "required": true}} (its shape and the
record's kind and version: safeagent.sandbox.contract). The runner

1. makes itself non-dumpable (prctl PR_SET_DUMPABLE 0) and a child subreaper, and turns
   Python's SIGINT handler into a no-op, before anything else runs; then, with an `egressCheck`
   in the spec, waits until the Pod's egress is provably filtered (safeagent.sandbox.preflight) and,
   if that does not happen by the deadline, writes a record saying so and runs nothing;
2. snapshots the workspace (lstat only, links never followed);
3. runs argv with cwd=workspace, no shell, stdin from /dev/null, separate stdout/stderr pipes,
   every other descriptor closed, a small fixed environment;
4. keeps at most maxOutputBytes of each stream, flags truncation and keeps draining so the
   command never blocks on a full pipe;
5. kills whatever the command left running (as PID 1 of its container with kill(-1), and in any
   case every descendant re-parented to it as subreaper), enforcing the timeout the same way, and
   the same again, early, when its container's memory is nearly used up (`memoryMarginBytes`:
   tmpfs pages and the kernel's records of files count, and the runner needs room to finish);
6. writes the command's part of the record (exit code, capped output, which scratch volumes are
   full), then lists the workspace with bounded memory (one directory entry at a time, a sample
   of paths) and counts entries created, modified and deleted;
7. writes the final record (safeagent.sandbox.contract.RunnerRecord, every key present), a single
   JSON line, to its own stdout, and exits 0. The operator reads the last complete line, so a
   runner stopped while listing still leaves the first. However the command ended (any signal
   1-64, any status, descriptors closed or handed to a daemon, never exiting, flooding output,
   filling every volume) there is a record: a failure of the runner's own bookkeeping still
   yields one (`no_result`), with `error` set and `exitCode` null.

Before any of it, with `pids` in the spec, the runner proves a PID bound of the Pod's own in
force (safeagent.sandbox.limits) and, where there is none and it is required, runs nothing.

Why the record is unforgeable: the operator reads it from the Pod log of the runner container,
i.e. from the runner's file descriptor 1. The command never holds that descriptor (its stdout is
a pipe to the runner and all other descriptors are closed), the only other way to reach it is
/proc/<runner>/fd/1 or ptrace, and both are refused for a non-dumpable process to a process
without CAP_SYS_PTRACE (all capabilities are dropped). As PID 1 of the container the runner also
ignores any signal the command sends it (the kernel drops signals without a handler; SIGINT, which
Python handles, gets a no-op handler). The command's own output travels inside the record as
JSON strings, so it cannot add lines. (Where the container runtime created the stdout pipe as
root, the pipe's own permissions refuse the reopen as well; non-dumpability does not rely on that.)
The termination message file, by contrast, is writable by every process of the container, so the
runner does not use it.

Exit status: 0 when a record was written (the command's status is inside it), 2 for a bad SPEC.

Over 400 lines on purpose: this is the trust base in one file that a reviewer reads top to bottom
(the sandbox as its own package, with the wire contract split out, is issue 11 item 4).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import cast

from safeagent.sandbox import limits, preflight
from safeagent.sandbox.contract import (
    EGRESS_CHECK_REQUIRED,
    EGRESS_PROOFS,
    LISTING_UNFINISHED,
    PIDS_SPEC_REQUIRED,
    RUNNER_RESULT_KIND,
    RUNNER_RESULT_VERSION,
    TERMINATION_LOG_CAP,
    TERMINATION_LOG_VOLUME,
    ChangedFilesRecord,
    EgressCheckRecord,
    PidsCheckRecord,
    RunnerRecord,
    RunnerSpec,
)
from safeagent.sandbox.gitconfig import GIT_SAFE_ENV

MAX_SNAPSHOT_ENTRIES = 200_000
# Directories found but not yet read, at most: a command that made a million directories side by
# side must not make the listing hold a million names (the walk is marked incomplete instead).
MAX_PENDING_DIRECTORIES = 20_000
MAX_REPORTED_PATHS = 50
# A reported path is cut to this many characters (names are chosen by the command: 150 paths of
# 4 KiB each, escaped, would crowd the record out of the log read and the job out of etcd).
MAX_REPORTED_PATH_CHARS = 256
DRAIN_SECONDS = 2.0
READ_CHUNK = 65536
# How often the runner looks at its container's memory while the command runs (when it watches it).
MEMORY_POLL_SECONDS = 0.02

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

COMMAND_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    # git settings that outrank the repository's own configuration (see safeagent.sandbox.gitconfig).
    **GIT_SAFE_ENV,
}


class SpecError(ValueError):
    pass


# ------------------------------------------------------------------------------- process hygiene


def prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl({option}) failed: {os.strerror(error)}")


def _ignore_signal(signum: int, frame: object) -> None:
    """A handler that does nothing (a *handler*, not SIG_IGN: exec resets it for the command)."""


def harden_self() -> None:
    """Non-dumpable (no /proc/self/fd access, no ptrace by same-UID processes) and subreaper.

    Python installs a SIGINT handler (KeyboardInterrupt), and a signal with a handler reaches
    even PID 1 of a PID namespace: the command could `kill -INT 1` and the runner would die
    without a record. A no-op handler keeps it alive; execve resets handled signals to their
    default, so the command itself still sees SIGINT's default action.
    """
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGINT, _ignore_signal)


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (all threads)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(word) for word in handle.read().split())
        except OSError:
            continue
    return found


def kill_leftovers() -> int:
    """SIGKILL every process the command left behind and reap it; returns how many were killed.

    As PID 1 of a PID namespace, kill(-1) reaches every other process in the container. Elsewhere
    (tests on a host) the subreaper flag makes every orphaned descendant our child, so repeatedly
    killing our children until none remain catches double-forked daemons too.
    """
    me = os.getpid()
    killed: set[int] = set()
    for _ in range(100):
        if me == 1:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        children = _children(me)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        reaped = _reap_all()
        if not children and not reaped:
            break
        time.sleep(0.01)
    return len(killed)


def _reap_all() -> int:
    count = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            return count
        count += 1


# ------------------------------------------------------------------------------------ snapshots


def _signature(info: os.stat_result) -> tuple[int, ...]:
    """An entry's lstat signature. It includes ctime, which a process cannot set back (unlike
    mtime via utime), so "modify then restore the timestamp" still counts as a modification."""
    return (
        stat.S_IFMT(info.st_mode),
        info.st_mode,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
        info.st_ino,
        info.st_uid,
        info.st_gid,
    )


def walk(root: str, limit: int = MAX_SNAPSHOT_ENTRIES) -> Iterator[tuple[str, tuple[int, ...] | None]]:
    """(relative path, lstat signature) of every entry under `root`, links never followed; a
    (path, None) pair marks a place that could not be read or a walk cut short (at `limit` entries,
    or with more than MAX_PENDING_DIRECTORIES directories still to visit). Directory entries are
    read one at a time, never a whole directory into a list: memory stays bounded however many
    entries a command created."""
    pending = [""]
    seen = 0
    while pending:
        relative = pending.pop()
        try:
            iterator = os.scandir(os.path.join(root, relative) if relative else root)
        except OSError:
            yield relative, None
            continue
        with iterator:
            for entry in iterator:
                path = f"{relative}/{entry.name}" if relative else entry.name
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    yield path, None
                    continue
                seen += 1
                if seen > limit:
                    yield path, None
                    return
                yield path, _signature(info)
                if stat.S_ISDIR(info.st_mode):
                    if len(pending) >= MAX_PENDING_DIRECTORIES:
                        yield path, None
                        continue
                    pending.append(path)


def snapshot(root: str) -> tuple[dict[str, tuple[int, ...]], bool]:
    """relative path -> lstat signature of the workspace before the run (the prepared source, of
    bounded size), and whether the walk was complete."""
    entries: dict[str, tuple[int, ...]] = {}
    complete = True
    for path, signature in walk(root):
        if signature is None:
            complete = False
        else:
            entries[path] = signature
    return entries, complete


def signal_name(number: int) -> str:
    """SIGKILL, SIGRTMIN+6, SIG32 ...: a name for every signal number, never an exception.

    `signal.Signals` knows only the classic signals; a command killed by a real-time signal
    (34-64) must still get a record.
    """
    try:
        return signal.Signals(number).name
    except ValueError:
        pass
    low, high = getattr(signal, "SIGRTMIN", 34), getattr(signal, "SIGRTMAX", 64)
    if low <= number <= high:
        return f"SIGRTMIN+{number - low}" if number - low <= (high - low) // 2 else f"SIGRTMAX-{high - number}"
    return f"SIG{number}"


# A scratch volume with less than this many bytes free after the run is reported as full: the
# volumes are tmpfs whose size is the configured limit, so a command that hit the limit got
# ENOSPC and left the volume (nearly) full.
FULL_BELOW_BYTES = 64 * 1024


def full_volumes(scratch: dict[str, str]) -> list[str]:
    """Names of the scratch volumes (workspace, tmp) that are full after the run."""
    full = []
    for name, path in sorted(scratch.items()):
        try:
            info = os.statvfs(path)
        except OSError:
            continue
        if info.f_blocks and info.f_bavail * info.f_frsize < FULL_BELOW_BYTES:
            full.append(name)
    return full


def _shorten(path: str) -> str:
    """At most MAX_REPORTED_PATH_CHARS characters (+1 for the ellipsis marking a cut)."""
    if len(path) <= MAX_REPORTED_PATH_CHARS:
        return path
    return path[:MAX_REPORTED_PATH_CHARS] + "\u2026"


class _Sample:
    """The `size` smallest paths of those offered (sorted, as a full sort would give), in bounded memory."""

    def __init__(self, size: int = MAX_REPORTED_PATHS) -> None:
        self.size, self.paths, self.count = size, [], 0  # type: tuple[int, list[str], int]

    def add(self, path: str) -> None:
        self.count += 1
        self.paths.append(path)
        if len(self.paths) >= 4 * self.size:
            self.paths = sorted(self.paths)[: self.size]

    def smallest(self) -> list[str]:
        return sorted(self.paths)[: self.size]


def _changed(before: tuple[int, ...], after: tuple[int, ...]) -> bool:
    """A change that counts: directories whose timestamps moved (an entry added inside) do not."""
    return before != after and not (stat.S_ISDIR(before[0]) and stat.S_ISDIR(after[0]))


def diff(
    before: dict[str, tuple[int, ...]], after: Iterable[tuple[str, tuple[int, ...] | None]], complete: bool
) -> ChangedFilesRecord:
    """Counts of created, modified (non-directories) and deleted entries, with a sample of paths.

    `after` is a walk (see `walk`) consumed as it goes, or a mapping's items: only the sample and
    the set of entries of `before` found again are kept, so memory does not grow with what the
    command created.
    """
    created, modified = _Sample(), _Sample()
    found: set[str] = set()
    for path, signature in after:
        if signature is None:
            complete = False
            continue
        previous = before.get(path)
        if previous is None:
            created.add(path)
            continue
        found.add(path)
        if _changed(previous, signature):
            modified.add(path)
    deleted = sorted(path for path in before if path not in found) if complete else []
    sample = (
        [_shorten(f"+{p}") for p in created.smallest()]
        + [_shorten(f"~{p}") for p in modified.smallest()]
        + [_shorten(f"-{p}") for p in deleted[:MAX_REPORTED_PATHS]]
    )
    return ChangedFilesRecord(
        created=created.count,
        modified=modified.count,
        deleted=len(deleted),
        total=created.count + modified.count + len(deleted),
        complete=complete,
        paths=sample,
    )


# ------------------------------------------------------------------------------------ execution


class _Capture:
    """Bytes of one stream, kept up to a cap; the rest is counted and dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.kept)

    def text(self) -> str:
        return bytes(self.kept).decode("utf-8", errors="replace")


def _pump(selector: selectors.BaseSelector, timeout: float) -> None:
    for key, _ in selector.select(timeout):
        try:
            data = os.read(key.fd, READ_CHUNK)
        except BlockingIOError:
            continue
        if data:
            key.data.add(data)
        else:
            selector.unregister(key.fileobj)


def _file_limits(scratch: Mapping[str, str]) -> Callable[[], None]:
    """What the command's process sets before exec: no core files at all, and no regular file
    larger than the largest scratch volume (none could hold one): a hard limit, which the command
    cannot raise again, and which also bounds the files on the node's disk it can write (the
    termination message file)."""
    largest = 0
    for path in scratch.values():
        try:
            info = os.statvfs(path)
        except OSError:
            continue
        largest = max(largest, info.f_blocks * info.f_frsize)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if largest:
            resource.setrlimit(resource.RLIMIT_FSIZE, (largest, largest))

    return apply


def _size(path: str | None) -> int:
    if path is None:
        return 0
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _empty(path: str) -> None:
    try:
        os.truncate(path, 0)
    except OSError:
        pass


def _stop_everything(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command's process group at once; the rest goes with kill_leftovers."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(
    spec: RunnerSpec,
    egress: EgressCheckRecord | None = None,
    pids: PidsCheckRecord | None = None,
    early: Callable[[RunnerRecord], None] | None = None,
) -> RunnerRecord:
    """Run the spec's argv (after pre-flights that proved `egress` filtered and `pids` bounded, if
    there were any). `early` gets the record as soon as the command's part is known, before the
    workspace is listed (see RunnerRecord)."""
    argv = spec["argv"]
    workspace = spec.get("workspace", "/workspace")
    timeout = float(spec["timeoutSeconds"])
    cap = int(spec["maxOutputBytes"])
    margin = int(spec.get("memoryMarginBytes", 0))
    watch = limits.MemoryWatch.find() if margin > 0 else None
    termination_log = spec.get("terminationLog")
    overflowed = False

    before, complete_before = snapshot(workspace)
    stdout, stderr = _Capture(cap), _Capture(cap)
    started = time.monotonic()
    error = None
    timed_out = memory_exhausted = False
    returncode: int | None = None
    try:
        process = subprocess.Popen(
            argv,
            cwd=workspace,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            shell=False,
            start_new_session=True,
            env=dict(COMMAND_ENV),
            preexec_fn=_file_limits(spec.get("scratch") or {}),  # noqa: PLW1509 - single-threaded here
        )
    except OSError as exc:
        process = None
        error = f"could not start {argv[0]!r}: {exc.strerror or exc}"
        returncode = 127 if isinstance(exc, FileNotFoundError) else 126

    killed = 0
    if process is not None:
        selector = selectors.DefaultSelector()
        assert process.stdout is not None and process.stderr is not None
        for pipe, capture in ((process.stdout, stdout), (process.stderr, stderr)):
            os.set_blocking(pipe.fileno(), False)
            selector.register(pipe, selectors.EVENT_READ, capture)
        deadline = started + timeout
        poll = MEMORY_POLL_SECONDS if watch is not None or termination_log else 0.2
        while process.poll() is None:
            remaining = deadline - time.monotonic()
            timed_out = remaining <= 0
            # Nearly out of memory: stop the command while the runner can still finish
            # (safeagent.sandbox.limits). The termination log is the node's disk: no more of it.
            memory_exhausted = watch is not None and (left := watch.left()) is not None and left < margin
            overflowed = _size(termination_log) > TERMINATION_LOG_CAP
            if timed_out or memory_exhausted or overflowed:
                _stop_everything(process)  # what it started outside its group goes just below
                process.wait()
                break
            _pump(selector, min(remaining, poll))
        returncode = process.returncode
        # The command is done: nothing it started may outlive it or keep writing.
        killed = kill_leftovers()
        drain_until = time.monotonic() + DRAIN_SECONDS
        while selector.get_map() and time.monotonic() < drain_until:
            _pump(selector, 0.1)
        for key in list(selector.get_map().values()):
            selector.unregister(key.fileobj)
        selector.close()
        process.stdout.close()
        process.stderr.close()

    if termination_log and _size(termination_log) > TERMINATION_LOG_CAP:
        overflowed = True  # written past its cap by something the loop did not see (a daemon, at the end)
    if overflowed:
        assert termination_log is not None
        _empty(termination_log)
    duration_ms = int((time.monotonic() - started) * 1000)
    killed_by = None
    exit_code = returncode
    if returncode is not None and returncode < 0:
        killed_by = signal_name(-returncode)
        exit_code = 128 - returncode
    record = RunnerRecord(
        kind=RUNNER_RESULT_KIND,
        version=RUNNER_RESULT_VERSION,
        exitCode=exit_code,
        signal=killed_by,
        timedOut=timed_out,
        durationMs=duration_ms,
        stdout=stdout.text(),
        stderr=stderr.text(),
        stdoutBytes=stdout.total,
        stderrBytes=stderr.total,
        stdoutTruncated=stdout.truncated,
        stderrTruncated=stderr.truncated,
        changedFiles=_UNINSPECTED,
        leftoverProcessesKilled=killed,
        fullVolumes=sorted(full_volumes(spec.get("scratch") or {}) + ([TERMINATION_LOG_VOLUME] if overflowed else [])),
        memoryExhausted=memory_exhausted,
        egress=egress,
        pids=pids,
        error=error,
    )
    if early is not None:
        early({**record, "error": error or LISTING_UNFINISHED})
    record["changedFiles"] = diff(before, walk(workspace), complete_before)
    return record


# A workspace that counts as not inspected, so that a record carrying it never passes for a clean run.
_UNINSPECTED = ChangedFilesRecord(created=0, modified=0, deleted=0, total=0, complete=False, paths=[])


def no_result(
    error: str | None, egress: EgressCheckRecord | None = None, pids: PidsCheckRecord | None = None
) -> RunnerRecord:
    """The record of a run that has no result of the command to report (a bad spec, egress or PIDs
    not proven, the runner's own failure): no exit code, nothing observed, and a workspace that
    counts as not inspected."""
    return RunnerRecord(
        kind=RUNNER_RESULT_KIND,
        version=RUNNER_RESULT_VERSION,
        exitCode=None,
        signal=None,
        timedOut=False,
        durationMs=0,
        stdout="",
        stderr="",
        stdoutBytes=0,
        stderrBytes=0,
        stdoutTruncated=False,
        stderrTruncated=False,
        changedFiles=_UNINSPECTED,
        leftoverProcessesKilled=0,
        fullVolumes=[],
        memoryExhausted=False,
        egress=egress,
        pids=pids,
        error=error,
    )


def parse_spec(text: str) -> RunnerSpec:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"spec is not JSON: {exc}") from None
    return check_spec(spec)


def check_spec(spec: object) -> RunnerSpec:
    """`spec` if it has the shape of a RunnerSpec, else SpecError naming what is wrong."""
    if not isinstance(spec, dict):
        raise SpecError("spec must be a JSON object")
    argv = spec.get("argv")
    if not (
        isinstance(argv, list) and argv and all(isinstance(a, str) and "\0" not in a for a in argv)
    ):
        raise SpecError("argv must be a non-empty list of strings without NUL")
    for key in ("timeoutSeconds", "maxOutputBytes"):
        value = spec.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SpecError(f"{key} must be a non-negative integer")
    if not isinstance(spec.get("workspace", "/workspace"), str):
        raise SpecError("workspace must be a path")
    check = spec.get("egressCheck")
    if check is not None and not (
        isinstance(check, dict) and EGRESS_CHECK_REQUIRED.issubset(check)
    ):
        raise SpecError("egressCheck needs host, openPort, closedPort and deadlineSeconds")
    if check is not None and check.get("proof", EGRESS_PROOFS[0]) not in EGRESS_PROOFS:
        raise SpecError(f"egressCheck.proof must be one of {', '.join(EGRESS_PROOFS)}")
    pids = spec.get("pids")
    if pids is not None and not (
        isinstance(pids, dict) and PIDS_SPEC_REQUIRED.issubset(pids)
        and isinstance(pids["max"], int) and not isinstance(pids["max"], bool) and pids["max"] > 0
        and isinstance(pids["required"], bool)
    ):
        raise SpecError("pids needs max (a positive integer) and required (true or false)")
    margin = spec.get("memoryMarginBytes", 0)
    if not isinstance(margin, int) or isinstance(margin, bool) or margin < 0:
        raise SpecError("memoryMarginBytes must be a non-negative integer")
    if not isinstance(spec.get("terminationLog", ""), str):
        raise SpecError("terminationLog must be a path")
    scratch = spec.get("scratch", {})
    if not (isinstance(scratch, dict) and all(isinstance(v, str) for v in scratch.values())):
        raise SpecError("scratch must map volume names to paths")
    return cast(RunnerSpec, spec)  # its shape is checked above


def emit(record: Mapping[str, object]) -> None:
    """Write the record as one line straight to descriptor 1 (no buffering layers in between)."""
    view = memoryview((json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode())
    while view:
        view = view[os.write(1, view) :]


def prove(spec: Mapping[str, object]) -> tuple[EgressCheckRecord | None, PidsCheckRecord | None] | None:
    """The bounds the spec asks for, proved in force: (egress, pids) records, or None after writing
    the record of a Pod where one is not (then nothing of the command may run)."""
    pids: PidsCheckRecord | None = None
    pids_spec = cast(RunnerSpec, spec).get("pids")
    if pids_spec:
        # A fork bomb must hit a bound of the Pod's own, not the node's (safeagent.sandbox.limits).
        pids = limits.prove_pids_limit(pids_spec)
        if not pids["limited"] and pids_spec["required"]:
            emit(no_result(None, pids=pids))
            return None
    egress: EgressCheckRecord | None = None
    check = cast(RunnerSpec, spec).get("egressCheck")
    if check:
        # Nothing of the command runs until its Pod is provably filtered (safeagent.sandbox.preflight).
        egress = preflight.check(check)
        if not egress["enforced"]:
            emit(no_result(None, egress, pids))
            return None
    return egress, pids


def run_and_report(spec: RunnerSpec, egress: EgressCheckRecord | None, pids: PidsCheckRecord | None) -> None:
    """Run the command and write its records (the command's part, then the final one), whatever happens."""
    sent: list[RunnerRecord] = []

    def early(record: RunnerRecord) -> None:
        sent.append(record)
        emit(record)

    try:
        record = run(spec, egress, pids, early=early)
    except BaseException as exc:  # noqa: BLE001 - whatever went wrong, the job gets a record
        kill_leftovers()
        problem = f"{type(exc).__name__}: {exc}"
        if sent:  # the command's part is known: keep it, and say the listing failed
            record = RunnerRecord(**{**sent[-1], "error": f"listing the workspace failed: {problem}"[:1024]})
        else:
            record = no_result(f"the runner failed after starting the command: {problem}"[:1024])
    emit(record)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    harden_self()
    try:
        if len(args) != 1:
            raise SpecError("usage: python3 -I -m safeagent.sandbox.runner '<json spec>'")
        spec = parse_spec(args[0])
    except SpecError as exc:
        emit(no_result(str(exc)))
        return 2
    proved = prove(spec)
    if proved is not None:
        run_and_report(spec, *proved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
