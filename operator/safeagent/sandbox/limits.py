"""Bounds the runner checks for itself: a PID limit proved in force, and its memory watched.

STDLIB ONLY: this module runs in the sandbox image, which has no third-party packages.

**PIDs.** The kubelet bounds the tasks (processes and threads) of each Pod with `podPidsLimit`, on
the Pod's cgroup. A container cannot read that bound: it sees only its own cgroup, whose
`pids.max` is whatever the runtime left there. So the runner proves the bound the way it proves
its egress filtered: by trying. It starts threads that block on a lock it holds, until the kernel
refuses one (EAGAIN from clone) or it has started `max` of them; then it lets them all finish and
waits until they are gone, before the command starts. Refused before `max`: a bound of at most
`max` more tasks is in force. Never refused: there is none this small, and with `required` the
runner runs nothing (the job ends ResourcesNotLimited). The threads are plain pthreads started
through ctypes, with a small stack, so no Python code runs in them: about 50 ms for 1,000 on the
test bed.

**Memory.** The tmpfs volumes, the kernel's records of every file created in them, and every
process the command starts are all charged to the runner's own container, so a command that
fills everything would leave the runner no memory to list the workspace and write its record:
the kernel's OOM killer picks the process with the largest resident set, which can be the runner
itself, since tmpfs pages and inodes count for no process. The runner therefore reads its
container's memory use while the command runs (cgroup v1 or v2, the files every container can
read) and, when less than `marginBytes` would be left, kills the command and everything it
started: what was charged by processes is given back, and the margin (which the chart keeps
larger than the runner needs to finish) is still there for the listing and the record.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time

from safeagent.sandbox.contract import PidsCheckRecord, PidsSpec

# A thread's stack: enough for glibc's thread start and the lock call (PTHREAD_STACK_MIN is 16 KiB).
_PROBE_STACK_BYTES = 64 * 1024
_PTHREAD_CREATE_DETACHED = 1
# Buffers at least as large as glibc's pthread_rwlock_t (56 bytes) and pthread_attr_t (56 bytes).
_OPAQUE_BYTES = 256
_SETTLE_SECONDS = 5.0


def _threads() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 1


def prove_pids_limit(spec: PidsSpec) -> PidsCheckRecord:
    """Start up to `spec["max"]` blocked threads; refused before that means a PID bound is in force."""
    most = int(spec["max"])
    started = time.monotonic()
    baseline = _threads()
    libc = ctypes.CDLL(None, use_errno=True)
    lock = ctypes.create_string_buffer(_OPAQUE_BYTES)
    attr = ctypes.create_string_buffer(_OPAQUE_BYTES)
    if libc.pthread_rwlock_init(lock, None) or libc.pthread_rwlock_wrlock(lock):
        return _pids_record(False, 0, started, "could not set up the probe's lock")
    libc.pthread_attr_init(attr)
    libc.pthread_attr_setdetachstate(attr, _PTHREAD_CREATE_DETACHED)
    libc.pthread_attr_setstacksize(attr, _PROBE_STACK_BYTES)
    # Each thread's body is pthread_rwlock_rdlock(lock): it blocks until the write lock is let go,
    # takes a read lock and returns, which ends the thread (detached: nothing to join).
    body = ctypes.cast(libc.pthread_rwlock_rdlock, ctypes.c_void_p)
    handle = ctypes.c_ulong()
    made, refusal = 0, 0
    try:
        while made < most:
            refusal = libc.pthread_create(ctypes.byref(handle), attr, body, lock)
            if refusal:
                break
            made += 1
    finally:
        libc.pthread_rwlock_unlock(lock)
        libc.pthread_attr_destroy(attr)
        settle_by = time.monotonic() + _SETTLE_SECONDS
        while _threads() > baseline and time.monotonic() < settle_by:
            time.sleep(0.001)
    if refusal == errno.EAGAIN:
        detail = f"the kernel refused a new task after {made} more; a PID limit is in force"
        return _pids_record(True, made, started, detail)
    if refusal:
        return _pids_record(False, made, started, f"thread creation failed: {os.strerror(refusal)}")
    detail = f"{made} more tasks started without refusal: no PID limit of at most {most} is in force"
    return _pids_record(False, made, started, detail)


def _pids_record(limited: bool, available: int, started: float, detail: str) -> PidsCheckRecord:
    elapsed = int((time.monotonic() - started) * 1000)
    return PidsCheckRecord(limited=limited, available=available, elapsedMs=elapsed, detail=detail)


# ------------------------------------------------------------------------------------- memory

# (usage, limit, statistics) file names of cgroup v1 and v2, as a container sees its own cgroup.
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory/memory.usage_in_bytes", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
     "/sys/fs/cgroup/memory/memory.stat", ("total_inactive_file", "total_active_file")),
    ("/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.max",
     "/sys/fs/cgroup/memory.stat", ("inactive_file", "active_file")),
)
# A limit this large means none (cgroup v1 reports "no limit" as a huge page-aligned number).
_UNLIMITED = 1 << 60


def _read_int(path: str) -> int | None:
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class MemoryWatch:
    """How much memory the runner's container has left, leaving out the page cache of files
    (which the kernel takes back before it kills anything). tmpfs pages are not page cache: they
    count, as they cannot be taken back."""

    def __init__(self, usage: str, limit: int, stat: str, cache_keys: tuple[str, ...]) -> None:
        self.usage, self.limit, self.stat, self.cache_keys = usage, limit, stat, cache_keys

    @classmethod
    def find(cls) -> MemoryWatch | None:
        """The watch of this container's memory cgroup, or None where it has no readable limit."""
        for usage, limit_path, stat, keys in _CGROUP_FILES:
            limit = _read_int(limit_path)
            if limit is not None and limit < _UNLIMITED and _read_int(usage) is not None:
                return cls(usage, limit, stat, keys)
        return None

    def _cache(self) -> int:
        total = 0
        try:
            with open(self.stat) as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key in self.cache_keys:
                        total += int(value)
        except (OSError, ValueError):
            return 0
        return total

    def left(self) -> int | None:
        """Bytes still free under the limit (None if the usage cannot be read now)."""
        usage = _read_int(self.usage)
        if usage is None:
            return None
        return self.limit - max(0, usage - self._cache())
