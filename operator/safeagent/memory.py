"""Giving the operator's freed memory back to the system: glibc's `malloc_trim`, once a minute.

Why (measured with `make bench-scale`, docs/bench.md): CPython hands every allocation larger than
512 bytes (the JSON of a watch event, a job's body, a status patch) to the C library's malloc. On
Kopf's event loop thread these come from glibc's main heap, interleaved with the bodies Kopf keeps;
freed, the space inside the heap stays resident, because glibc gives back only what lies at the
heap's top (and in an arena, only whole empty tops). After a burst the operator's resident memory
therefore stays where the burst left it. `malloc_trim(0)` returns every free page inside the heap and
the arenas (madvise), whatever lies above it; it walks the free lists once, well under a
millisecond for this operator's heap, and changes nothing the program can see.

Where the C library is not glibc (musl, macOS) there is nothing to call and nothing is done.
`MALLOC_ARENA_MAX` would not help here: the per-thread arenas held under 10 MiB of the 250 MiB.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_INTERVAL_SECONDS = 60.0


def glibc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the process's C library has none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def resident_bytes() -> int:
    """This process's resident memory (Linux: /proc/self/statm; 0 where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Trimmer:
    """A daemon thread that trims every `interval` seconds until stopped, and reports how many
    resident bytes each trim gave back (`on_returned`; 0 counts too)."""

    def __init__(
        self,
        on_returned: Callable[[int], None],
        interval: float = TRIM_INTERVAL_SECONDS,
        trim: Callable[[int], int] | None = None,
        resident: Callable[[], int] = resident_bytes,
    ) -> None:
        self.trim = trim if trim is not None else glibc_trim()
        self.resident, self.on_returned, self.interval = resident, on_returned, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="safeagent-memory-trim", daemon=True)

    def trim_once(self) -> int:
        """Trim now; the resident bytes given back (0 without glibc)."""
        if self.trim is None:
            return 0
        before = self.resident()
        self.trim(0)
        returned = max(0, before - self.resident())
        self.on_returned(returned)
        return returned

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.trim_once()
            except Exception as error:  # never worth stopping the operator for
                log.warning("memory trim failed", extra={"error": str(error)})
