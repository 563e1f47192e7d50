"""The behavioural oracle's inside half: run command lines in the sandbox image under strace.

Runs in `safeagent/sandbox-oracle:*` (the sandbox image plus strace), started by
tests/oracle/test_oracle.py with the sandbox Pod's confinement: uid 65532, read-only root, no
network, no capabilities, tmpfs /workspace (root-owned, group 65532, like the Pod's emptyDir) and
/tmp. The oracle's own files (these modules, the fixture sources, the traces) live in a third
tmpfs, /oracle, which no allowed command may read: reading it is a violation like any other.

For each phase (one hostile fixture, tests/oracle/hostile_repo.py): the fixture is built in
/oracle, the REAL preparation step (`python3 -I -m safeagent.sandbox.prepare`, the image's own) copies it
into /workspace, and every command line runs as the runner runs it: argv without a shell, cwd
/workspace, stdin /dev/null, the runner's own environment (`safeagent.sandbox.runner.COMMAND_ENV`,
imported from the image) -- but under `strace -ff`. Lines that may write (approved `rm`/`mv`,
the execution policy's test runners) run one at a time, each on a freshly prepared workspace;
the others run in parallel on one preparation, and the workspace must be unchanged after them
(a second check, independent of the tracer).

Input (JSON on stdin, after the bootstrap in test_oracle.py): {"phases": [{"fixture": NAME,
"lines": [[ID, PROGRAM, MODE, ARGV], ...]}], "workers": N, "timeout": SECONDS}. Output: one JSON
object per line that has violations or could not be judged, then {"summary": ...}.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import hostile_repo
import judge

from safeagent.sandbox.runner import COMMAND_ENV, snapshot

ORACLE = "/oracle"
WORKSPACE = "/workspace"
MARKER = f"{ORACLE}/ran"
TRACES = f"{ORACLE}/trace"


def build_source(fixture: str) -> str:
    source = f"{ORACLE}/source-{fixture}"
    if not os.path.isdir(source):
        if fixture == "worktree":
            hostile_repo.worktree_fixture(source, MARKER)
        else:
            scratch = f"{ORACLE}/scratch-{fixture}"
            os.makedirs(scratch, exist_ok=True)
            hostile_repo.bare_fixture(source, MARKER, scratch)
    return source


def prepare_workspace(source: str) -> dict:
    for name in os.listdir(WORKSPACE):
        path = os.path.join(WORKSPACE, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    spec = {"source": "persistentVolumeClaim", "sourceDir": source, "workspace": WORKSPACE,
            "maxFiles": 10000, "maxBytes": 1 << 26}
    done = subprocess.run([sys.executable, "-I", "-m", "safeagent.sandbox.prepare", json.dumps(spec)], cwd="/",
                          capture_output=True, text=True, timeout=120, check=False)
    record = json.loads(done.stdout.splitlines()[-1])
    if done.returncode != 0:
        raise RuntimeError(f"the preparation step refused the fixture: {record}")
    return record


def run_line(identifier: int, program: str, mode: str, argv: list, timeout: float) -> dict:
    prefix = f"{TRACES}/{identifier}"
    command = ["strace", "-ff", "-qq", "-y", "-s", "4096", "--seccomp-bpf", "-e", "trace=" + ",".join(judge.TRACED),
               "-o", prefix, "--", *argv]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=WORKSPACE, env=dict(COMMAND_ENV), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
        status, error = done.returncode, done.stderr[-300:].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        status, error = None, "timed out"
    traces = judge.read_trace_files(prefix)
    for pid in traces:
        os.unlink(f"{prefix}.{pid}")
    violations = judge.judge_trace(traces, program, mode)
    if status is None:
        violations.append(f"did not finish within {timeout:.0f}s")
    if not traces:
        violations.append(f"no trace (strace: {error.strip()})")
    return {"id": identifier, "rc": status, "violations": violations, "seconds": round(time.monotonic() - started, 3),
            "stderr": error if violations else ""}


def run_phase(phase: dict, workers: int, timeout: float, emit) -> dict:
    source = build_source(phase["fixture"])
    shared = [line for line in phase["lines"] if line[2] == "inspect"]
    alone = [line for line in phase["lines"] if line[2] != "inspect"]
    counts = {"lines": 0, "violations": 0}

    def report(result: dict) -> None:
        counts["lines"] += 1
        if result["violations"]:
            counts["violations"] += 1
            emit(result)

    prepare_workspace(source)
    before, _ = snapshot(WORKSPACE)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(lambda line: run_line(line[0], line[1], line[2], line[3], timeout), shared):
            report(result)
    after, _ = snapshot(WORKSPACE)
    changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    if changed:
        counts["violations"] += 1
        emit({"id": None, "violations": [f"the workspace changed during the inspection lines: {changed[:20]}"]})
    for line in alone:
        prepare_workspace(source)
        report(run_line(line[0], line[1], line[2], line[3], timeout))
    if os.path.exists(MARKER):
        counts["violations"] += 1
        with open(MARKER) as handle:
            emit({"id": None, "violations": [f"a hostile program ran: {handle.read()[:200]!r}"]})
    return counts


def main(request: dict) -> None:
    os.makedirs(TRACES, exist_ok=True)

    def emit(record: dict) -> None:
        print(json.dumps(record), flush=True)

    started = time.monotonic()
    totals = {"lines": 0, "violations": 0}
    for phase in request["phases"]:
        counts = run_phase(phase, int(request.get("workers", 2)), float(request.get("timeout", 30)), emit)
        for key in totals:
            totals[key] += counts[key]
    emit({"summary": {**totals, "seconds": round(time.monotonic() - started, 1)}})
