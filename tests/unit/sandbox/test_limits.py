"""safeagent.sandbox.limits and the runner's use of it, for real on this host: the PID proof
against a real kernel refusal (RLIMIT_NPROC of an unprivileged user, which refuses clone with
EAGAIN the way a Pod's pids cgroup does), the memory watch against cgroup-shaped files, and the
runner stopping a command that uses up its memory while still writing its record."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from safeagent.sandbox import limits, runner

from .test_runner import PACKAGE_ROOT, SYSTEM_PYTHON

_PROBE = "import json, sys; from safeagent.sandbox import limits; print(json.dumps(limits.prove_pids_limit(json.loads(sys.argv[1]))))"


def test_no_bound_below_max_is_reported_as_none_and_the_probe_cleans_up():
    before = limits._threads()
    verdict = limits.prove_pids_limit({"max": 64, "required": True})
    assert verdict["limited"] is False and verdict["available"] == 64
    assert "no PID limit of at most 64" in verdict["detail"]
    assert limits._threads() == before  # every probe thread is gone before the command would start


@pytest.mark.skipif(os.geteuid() != 0 or SYSTEM_PYTHON is None, reason="needs root to run the probe as an unprivileged user")
def test_a_kernel_refusal_before_max_proves_a_bound():
    """RLIMIT_NPROC counts the user's tasks and refuses clone with EAGAIN beyond it, as a full pids
    cgroup does; a fresh UID has only the probe's own process."""
    uid = 65000 + os.getpid() % 500  # a UID no other process of this host is likely to hold

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (20, 20))

    package = Path(tempfile.mkdtemp(prefix="safeagent-limits-"))
    try:
        subprocess.run(["cp", "-r", f"{PACKAGE_ROOT}/safeagent", str(package)], check=True)
        package.chmod(0o755)
        out = subprocess.run(
            [SYSTEM_PYTHON, "-c", _PROBE, json.dumps({"max": 500, "required": True})],
            capture_output=True, text=True, timeout=60, user=uid, group=uid, extra_groups=[],
            preexec_fn=bounded, env={"PYTHONPATH": str(package)}, cwd="/",
        )
    finally:
        subprocess.run(["rm", "-rf", str(package)], check=True)
    verdict = json.loads(out.stdout)
    assert verdict["limited"] is True, (out.stdout, out.stderr)
    assert 10 <= verdict["available"] < 20 and "refused a new task" in verdict["detail"]


def _cgroup(tmp_path: Path, usage: int, cache: int) -> limits.MemoryWatch:
    (tmp_path / "usage").write_text(f"{usage}\n")
    (tmp_path / "stat").write_text(f"cache 1\ntotal_inactive_file {cache // 2}\ntotal_active_file {cache - cache // 2}\n")
    return limits.MemoryWatch(str(tmp_path / "usage"), 1000, str(tmp_path / "stat"), ("total_inactive_file", "total_active_file"))


def test_file_cache_the_kernel_can_take_back_does_not_count_as_used(tmp_path):
    assert _cgroup(tmp_path, 900, 0).left() == 100
    assert _cgroup(tmp_path, 900, 600).left() == 700
    (tmp_path / "usage").unlink()
    assert _cgroup(tmp_path, 900, 0).left() == 100
    watch = _cgroup(tmp_path, 1, 0)
    (tmp_path / "usage").unlink()
    assert watch.left() is None


class _Filling:
    """A memory watch that reads as nearly full once the command made its marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def left(self) -> int:
        return 1 if self.marker.exists() else 1 << 30


def test_a_command_that_uses_up_the_memory_is_stopped_and_the_record_says_so(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    marker = workspace / "full"
    monkeypatch.setattr(limits.MemoryWatch, "find", classmethod(lambda cls: _Filling(marker)))
    spec = {"argv": ["sh", "-c", f"echo filling; : > {marker}; sleep 30 & sleep 30"], "workspace": str(workspace),
            "timeoutSeconds": 20, "maxOutputBytes": 1024, "memoryMarginBytes": 1 << 20}
    early: list[dict] = []
    record = runner.run(spec, early=early.append)
    assert record["memoryExhausted"] is True and record["timedOut"] is False
    assert record["signal"] == "SIGKILL" and record["exitCode"] == 137 and record["stdout"] == "filling\n"
    assert record["durationMs"] < 15_000  # stopped, not left to its 30 s sleep
    assert record["changedFiles"]["created"] == 1 and record["changedFiles"]["complete"]
    # The command's part was written first, with the same exit code and output.
    assert [entry["exitCode"] for entry in early] == [137] and early[0]["error"] == runner.LISTING_UNFINISHED


def test_without_a_margin_the_memory_is_not_watched(tmp_path, monkeypatch):
    monkeypatch.setattr(limits.MemoryWatch, "find", classmethod(lambda cls: _Filling(tmp_path)))  # always "full"
    spec = {"argv": ["true"], "workspace": str(tmp_path), "timeoutSeconds": 5, "maxOutputBytes": 1024}
    record = runner.run(spec)
    assert record["memoryExhausted"] is False and record["exitCode"] == 0


def test_the_listing_holds_no_more_than_its_bounds(tmp_path, monkeypatch):
    """A workspace with more entries, or more directories side by side, than the walk may hold is
    reported incomplete, with counts of what was seen and a sample of the smallest paths."""
    for index in range(30):
        (tmp_path / f"d{index:02}").mkdir()
    monkeypatch.setattr(runner, "MAX_PENDING_DIRECTORIES", 10)
    changed = runner.diff({}, runner.walk(str(tmp_path)), True)
    assert changed["complete"] is False and changed["created"] == 30
    assert changed["paths"][:2] == ["+d00", "+d01"] and len(changed["paths"]) == runner.MAX_REPORTED_PATHS - 20
    monkeypatch.setattr(runner, "MAX_PENDING_DIRECTORIES", 100)
    changed = runner.diff({}, runner.walk(str(tmp_path), limit=12), True)
    assert changed["complete"] is False and changed["created"] == 12


def test_the_sample_is_the_smallest_paths_whatever_the_order(tmp_path):
    names = [f"f{index:04}" for index in range(500)]
    for name in reversed(names):
        (tmp_path / name).write_text("")
    changed = runner.diff({}, runner.walk(str(tmp_path)), True)
    assert changed["created"] == 500 and changed["complete"]
    assert changed["paths"] == [f"+{name}" for name in names[: runner.MAX_REPORTED_PATHS]]


def test_the_runner_spec_checks_the_new_keys():
    base = {"argv": ["ls"], "timeoutSeconds": 1, "maxOutputBytes": 1}
    for bad in ({"pids": {"max": 0, "required": True}}, {"pids": {"max": 5}}, {"pids": {"max": 5, "required": "yes"}},
                {"memoryMarginBytes": -1}, {"memoryMarginBytes": True}):
        with pytest.raises(runner.SpecError):
            runner.parse_spec(json.dumps({**base, **bad}))
    runner.parse_spec(json.dumps({**base, "pids": {"max": 5, "required": False}, "memoryMarginBytes": 0}))


def test_a_required_bound_that_is_missing_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    spec = {"argv": ["touch", str(marker)], "workspace": str(tmp_path), "timeoutSeconds": 5, "maxOutputBytes": 64,
            "pids": {"max": 32, "required": True}}
    out = subprocess.run([sys.executable, "-m", "safeagent.sandbox.runner", json.dumps(spec)], capture_output=True,
                         text=True, timeout=60, env={"PYTHONPATH": PACKAGE_ROOT, "PATH": os.environ["PATH"]})
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and not marker.exists()
    record = json.loads(lines[0])
    assert record["exitCode"] is None and record["pids"]["limited"] is False and record["pids"]["available"] == 32
    # Not required: the command runs and the record says there was no bound.
    spec["pids"]["required"] = False
    out = subprocess.run([sys.executable, "-m", "safeagent.sandbox.runner", json.dumps(spec)], capture_output=True,
                         text=True, timeout=60, env={"PYTHONPATH": PACKAGE_ROOT, "PATH": os.environ["PATH"]})
    record = json.loads(out.stdout.splitlines()[-1])
    assert marker.exists() and record["exitCode"] == 0 and record["pids"]["limited"] is False


def test_a_command_that_writes_past_the_termination_logs_cap_is_stopped_and_the_file_emptied(tmp_path):
    """The termination message file lies on the node's disk and every process may write it."""
    log = tmp_path / "termination-log"
    log.write_text("")
    script = f"echo start; head -c 100000 /dev/zero > {log}; sleep 30"
    spec = {"argv": ["sh", "-c", script], "workspace": str(tmp_path), "timeoutSeconds": 20, "maxOutputBytes": 1024,
            "terminationLog": str(log)}
    record = runner.run(spec)
    assert record["fullVolumes"] == ["termination-log"] and record["signal"] == "SIGKILL"
    assert record["durationMs"] < 15_000 and log.stat().st_size == 0
    # Up to the cap it is left alone (the kubelet reads that much of it).
    spec["argv"] = ["sh", "-c", f"printf done > {log}"]
    record = runner.run(spec)
    assert record["fullVolumes"] == [] and record["exitCode"] == 0 and log.read_text() == "done"


def test_the_command_may_write_no_core_file_and_no_file_larger_than_a_scratch_volume(tmp_path):
    spec = {"argv": ["grep", "-E", "^Max (core )?file size", "/proc/self/limits"], "workspace": str(tmp_path),
            "timeoutSeconds": 10, "maxOutputBytes": 4096, "scratch": {"workspace": str(tmp_path)}}
    record = runner.run(spec)
    info = os.statvfs(tmp_path)
    lines = {line.split("  ")[0]: line.split()[-3:-1] for line in record["stdout"].splitlines()}
    assert lines["Max core file size"] == ["0", "0"]
    assert lines["Max file size"] == [str(info.f_blocks * info.f_frsize)] * 2
