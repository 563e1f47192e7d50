"""safeagent.memory: the periodic malloc_trim and what it reports."""

from __future__ import annotations

import threading

from safeagent import memory


def _trimmer(resident: list[int], interval: float = 60.0):
    returned: list[int] = []
    calls: list[int] = []
    trimmer = memory.Trimmer(returned.append, interval=interval, trim=lambda pad: calls.append(pad) or 1,
                             resident=lambda: resident.pop(0))
    return trimmer, returned, calls


def test_a_trim_reports_the_resident_bytes_it_gave_back():
    trimmer, returned, calls = _trimmer([100 << 20, 60 << 20])
    assert trimmer.trim_once() == 40 << 20
    assert returned == [40 << 20] and calls == [0]  # pad 0: give back everything free


def test_memory_that_grew_meanwhile_counts_as_nothing_given_back():
    trimmer, returned, _ = _trimmer([60 << 20, 61 << 20])
    assert trimmer.trim_once() == 0
    assert returned == [0]


def test_without_glibc_nothing_is_called(monkeypatch):
    monkeypatch.setattr(memory, "glibc_trim", lambda: None)
    returned: list[int] = []
    trimmer = memory.Trimmer(returned.append, resident=lambda: 1 / 0)  # never read
    assert trimmer.trim_once() == 0
    assert returned == []


def test_this_machines_libc_trims_and_resident_memory_is_read():
    trim = memory.glibc_trim()
    assert trim is not None, "the operator image and the test bed run glibc"
    assert trim(0) in (0, 1)
    assert memory.resident_bytes() > 0


def test_the_thread_trims_until_stopped():
    reported = threading.Event()
    trimmer = memory.Trimmer(lambda returned: reported.set(), interval=0.01, trim=lambda pad: 0,
                             resident=lambda: 1)
    trimmer.thread.start()
    assert reported.wait(30)
    trimmer.stop.set()
    trimmer.thread.join(30)
    assert not trimmer.thread.is_alive()
