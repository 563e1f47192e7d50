"""safeagent.sandbox.runner, run for real: `python3 -m safeagent.sandbox.runner SPEC` with real commands on this host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import safeagent
from safeagent.sandbox import contract, runner

PACKAGE_ROOT = str(Path(safeagent.__file__).resolve().parent.parent)
SANDBOX_UID = 65532
# An interpreter an unprivileged user can execute (a virtualenv under /root is not).
SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)), None)


def run_runner(argv, workspace, timeout=10, cap=65536, user=None, raw_spec=None, python=sys.executable):
    spec = raw_spec or json.dumps(
        {"argv": argv, "workspace": str(workspace), "timeoutSeconds": timeout, "maxOutputBytes": cap}
    )
    proc = subprocess.run(
        [python, "-m", "safeagent.sandbox.runner", spec],
        capture_output=True,
        timeout=timeout + 30,
        env={"PYTHONPATH": PACKAGE_ROOT, "PATH": os.environ["PATH"], "SAFEAGENT_SECRET": "x"},
        user=user,
        group=user,
    )
    lines = proc.stdout.decode().splitlines()
    # The command's part of the record first when the command ran, then the final record.
    assert 1 <= len(lines) <= 2, f"expected one or two record lines, got {proc.stdout!r} / {proc.stderr!r}"
    if len(lines) == 2:
        assert json.loads(lines[0])["error"] in (runner.LISTING_UNFINISHED, json.loads(lines[1])["error"])
    return proc.returncode, json.loads(lines[-1])


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "workspace"
    ws.mkdir()
    (ws / "keep.txt").write_text("keep\n")
    (ws / "delete-me.txt").write_text("bye\n")
    (ws / "sub").mkdir()
    (ws / "sub" / "a.py").write_text("print('a')\n")
    return ws


def test_streams_are_separate_and_exit_code_is_reported(workspace):
    code, record = run_runner(["sh", "-c", "echo out; echo err >&2; exit 3"], workspace)
    assert code == 0
    assert record["kind"] == contract.RUNNER_RESULT_KIND
    assert (record["stdout"], record["stderr"]) == ("out\n", "err\n")
    assert record["exitCode"] == 3
    assert record["stdoutTruncated"] is False and record["timedOut"] is False


def test_argv_is_never_given_to_a_shell(workspace):
    _, record = run_runner(["echo", "$HOME;", "`id`", "*"], workspace)
    assert record["stdout"] == "$HOME; `id` *\n"


def test_cwd_is_workspace_and_stdin_is_empty(workspace):
    _, record = run_runner(["sh", "-c", "pwd; cat; echo done"], workspace)
    assert record["stdout"] == f"{workspace}\ndone\n"


def test_command_gets_a_small_fixed_environment(workspace):
    _, record = run_runner(["env"], workspace)
    names = {line.split("=", 1)[0] for line in record["stdout"].splitlines()}
    assert "SAFEAGENT_SECRET" not in names and "PYTHONPATH" not in names
    assert names <= set(runner.COMMAND_ENV) | {"PWD", "SHLVL", "_"}


def test_output_over_the_cap_is_truncated_flagged_and_drained(workspace):
    script = "import sys; sys.stdout.write('x' * 1_000_000); sys.stderr.write('e' * 10)"
    _, record = run_runner([sys.executable, "-c", script], workspace, cap=1024)
    assert record["stdout"] == "x" * 1024
    assert record["stdoutTruncated"] is True and record["stdoutBytes"] == 1_000_000
    assert record["stderr"] == "e" * 10 and record["stderrTruncated"] is False
    assert record["exitCode"] == 0  # the writer was never blocked by a full pipe


def test_changed_files_are_counted(workspace):
    _, record = run_runner(
        ["sh", "-c", "rm delete-me.txt; echo new > new.txt; echo more >> keep.txt; mkdir d; touch d/f"],
        workspace,
    )
    changed = record["changedFiles"]
    assert (changed["created"], changed["modified"], changed["deleted"]) == (3, 1, 1)
    assert changed["total"] == 5 and changed["complete"] is True
    assert {"+new.txt", "+d", "+d/f", "~keep.txt", "-delete-me.txt"} == set(changed["paths"])


def test_restoring_mtime_does_not_hide_a_modification(workspace):
    script = "cp -p keep.txt /tmp/ref.$$; echo evil > keep.txt; touch -r /tmp/ref.$$ keep.txt"
    _, record = run_runner(["sh", "-c", script], workspace)
    assert record["changedFiles"]["modified"] == 1


def test_symlinks_in_the_workspace_are_not_followed(workspace, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "link").symlink_to(outside)
    _, record = run_runner(["sh", "-c", f"touch {outside}/x"], workspace)
    assert record["changedFiles"]["total"] == 0


def test_leftover_processes_are_killed(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pidfile}; setsid sh -c 'echo $$ >> {pidfile}; exec sleep 300' & sleep 0.3"
    _, record = run_runner(["sh", "-c", script], workspace)
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    assert record["leftoverProcessesKilled"] >= 2
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_timeout_kills_the_command(workspace):
    started = time.monotonic()
    _, record = run_runner(["sh", "-c", "echo started; sleep 60"], workspace, timeout=1)
    assert time.monotonic() - started < 15
    assert record["timedOut"] is True
    assert record["stdout"] == "started\n"
    assert record["signal"] == "SIGKILL" and record["exitCode"] == 137


def test_missing_program_is_reported_not_raised(workspace):
    code, record = run_runner(["no-such-program-xyz"], workspace)
    assert code == 0
    assert record["exitCode"] == 127 and "no-such-program-xyz" in record["error"]


def test_bad_spec_exits_2_with_a_record(workspace):
    code, record = run_runner(None, workspace, raw_spec=json.dumps({"argv": "ls"}))
    assert code == 2 and "argv" in record["error"]


# Runs argv as the sandbox user with stdout a pipe *that user* created (as in a container, where
# the caller owning the pipe is not what protects it), and prints what came through the pipe.
_PIPE_WRAPPER = (
    "import subprocess, sys; "
    "out = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE).stdout; "
    "sys.stdout.buffer.write(out)"
)

_FORGE = textwrap.dedent(
    """
    import os
    try:
        with open(f"/proc/{os.getppid()}/fd/1", "w") as handle:
            handle.write("FORGED\\n")
        print("forged")
    except OSError as error:
        print("refused", error.errno)
    """
)


def _as_sandbox_user(argv, cwd):
    # The checkout may sit under a directory the unprivileged user cannot enter (a mode-0700
    # temporary directory, say): it imports a world-readable copy of the package, as the sandbox
    # image installs one under /opt/safeagent.
    package_copy = Path(tempfile.mkdtemp(prefix="safeagent-pkg-"))
    try:
        package_copy.chmod(0o755)
        shutil.copytree(Path(PACKAGE_ROOT) / "safeagent", package_copy / "safeagent",
                        ignore=shutil.ignore_patterns("__pycache__"))
        return subprocess.run(
            [SYSTEM_PYTHON, "-c", _PIPE_WRAPPER, *argv],
            capture_output=True, text=True, user=SANDBOX_UID, group=SANDBOX_UID, extra_groups=[],
            cwd=cwd, timeout=60, env={"PYTHONPATH": str(package_copy), "PATH": os.environ["PATH"]},
        ).stdout
    finally:
        shutil.rmtree(package_copy)


@pytest.mark.skipif(
    os.geteuid() != 0 or SYSTEM_PYTHON is None,
    reason="needs root (to run the runner as an unprivileged user) and a system python3",
)
def test_command_cannot_write_to_the_runner_stdout():
    """The record channel is the runner's fd 1; a same-UID command must not be able to reach it."""
    # pytest's tmp_path lives under a root-only directory; the unprivileged user needs its own.
    workspace = Path(tempfile.mkdtemp(prefix="safeagent-runner-"))
    os.chown(workspace, SANDBOX_UID, SANDBOX_UID)
    try:
        spec = json.dumps(
            {"argv": [SYSTEM_PYTHON, "-c", _FORGE], "workspace": str(workspace),
             "timeoutSeconds": 20, "maxOutputBytes": 4096}
        )
        output = _as_sandbox_user([SYSTEM_PYTHON, "-m", "safeagent.sandbox.runner", spec], workspace)
        assert "FORGED" not in output
        lines = output.splitlines()
        assert len(lines) == 2  # the command's part, then the final record; nothing forged between
        assert all(json.loads(line)["stdout"].startswith("refused") for line in lines)
        # Control: a dumpable parent in the same position is reachable, so the test can fail.
        control = _as_sandbox_user(
            [SYSTEM_PYTHON, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {_FORGE!r}])"],
            workspace,
        )
        assert "FORGED" in control and "forged" in control
    finally:
        shutil.rmtree(workspace)


def test_diff_ignores_directory_timestamps_but_counts_type_changes():
    before = {"d": (0o040000, 0, 0, 1, 1, 1, 0, 0), "f": (0o100000, 0, 1, 1, 1, 2, 0, 0)}
    after = {"d": (0o040000, 0, 0, 9, 9, 1, 0, 0), "f": (0o040000, 0, 1, 1, 1, 2, 0, 0)}
    changed = runner.diff(before, after.items(), True)
    assert (changed["modified"], changed["total"]) == (1, 1)


def test_sigint_from_the_command_does_not_kill_the_runner(workspace):
    """Python turns SIGINT into KeyboardInterrupt even in PID 1 (it installs a handler, so the
    kernel's PID-1 protection does not apply): the command must not be able to suppress its record."""
    code, record = run_runner(["sh", "-c", "kill -INT $PPID; sleep 0.2; kill -INT $PPID; echo still"], workspace)
    assert code == 0 and record["stdout"] == "still\n" and record["exitCode"] == 0


def test_the_command_gets_default_signal_dispositions(workspace):
    # SigIgn / SigCgt of the command itself: a handler in the runner must not leak as "ignored".
    code, record = run_runner(["sh", "-c", "grep -E '^SigIgn' /proc/self/status"], workspace)
    ignored = int(record["stdout"].split()[1], 16)
    assert not ignored & (1 << (2 - 1)), "SIGINT must not be ignored in the command"


def test_reported_paths_are_bounded(workspace):
    """Long names (255 bytes per component, deep trees) must not blow up the record or the status."""
    deep = "/".join(["d" * 200] * 15)
    script = f"mkdir -p {deep} && for i in $(seq 1 60); do : > {deep}/$i-{'f' * 200}; done"
    code, record = run_runner(["sh", "-c", script], workspace)
    changed = record["changedFiles"]
    assert changed["created"] == 15 + 60
    assert changed["paths"] and all(len(p) <= runner.MAX_REPORTED_PATH_CHARS + 1 for p in changed["paths"])
    assert len(json.dumps(changed["paths"])) <= runner.MAX_REPORTED_PATHS * 3 * (runner.MAX_REPORTED_PATH_CHARS + 8)


@pytest.mark.parametrize("number", [1, 9, 15, 31, 32, 33, 34, 40, 50, 64])
def test_every_signal_number_has_a_name(number):
    name = runner.signal_name(number)
    assert name.startswith("SIG") and name != "SIG"


def test_a_command_killed_by_a_real_time_signal_still_gets_a_record(workspace):
    """Issue 8: signal.Signals(40) raised, and the job lost its record (ResultUnreadable)."""
    code, record = run_runner([sys.executable, "-c", "import os; os.kill(os.getpid(), 40)"], workspace)
    assert code == 0 and record["exitCode"] == 128 + 40
    assert record["signal"] == runner.signal_name(40) and record["error"] is None


def test_a_full_scratch_volume_is_reported(tmp_path):
    """statvfs says how full a volume is; a tmpfs at its size limit reads as full."""
    assert runner.full_volumes({"workspace": str(tmp_path)}) == []  # the test host has room
    assert runner.full_volumes({"gone": str(tmp_path / "missing")}) == []


def test_a_failure_in_the_runner_after_the_command_still_writes_a_record(workspace, monkeypatch, capfd):
    """Whatever goes wrong in the runner's own bookkeeping, the job gets a record."""

    def broken(*args, **kwargs):
        raise RuntimeError("bookkeeping broke")

    monkeypatch.setattr(runner, "harden_self", lambda: None)
    monkeypatch.setattr(runner, "snapshot", broken)
    spec = json.dumps({"argv": ["true"], "workspace": str(workspace), "timeoutSeconds": 5, "maxOutputBytes": 10})
    assert runner.main([spec]) == 0
    record = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert record["kind"] == contract.RUNNER_RESULT_KIND and record["exitCode"] is None
    assert "bookkeeping broke" in record["error"]
