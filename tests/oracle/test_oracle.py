"""The behavioural oracle: allowed command lines, run in the sandbox image under strace, do no harm.

`make oracle` (part of `make test`) runs a few hundred lines, `make test-oracle` at least 20,000
(`ORACLE_LINES`). The lines (tests/oracle/lines.py) are every allowed or approvable line of the
policy tables plus lines hypothesis builds from each program's grammar in the policy; they run in
`safeagent/sandbox-oracle:*` (the sandbox image plus strace, never the image jobs run in) against
hostile fixture repositories prepared by the real preparation step (tests/oracle/driver.py), and
what each did is judged by tests/oracle/judge.py (exec, write, read and socket rules).

The container gets the sandbox Pod's confinement: uid/gid 65532, read-only root file system, no
network, every capability dropped, no new privileges, tmpfs /workspace (root-owned, group 65532,
setgid, like the Pod's emptyDir) and /tmp. The one difference is the tracer: strace runs inside,
as the same user, tracing its own children (no CAP_SYS_PTRACE and the default seccomp profile
suffice for that).

Set ORACLE_IMAGE to choose the image, ORACLE_SEED for another sample, ORACLE_REPORT=FILE to write
every violation to FILE (JSON lines), SAFEAGENT_ORACLE=required
to fail (instead of skipping) when the image is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import lines  # noqa: E402

IMAGE = os.environ.get("ORACLE_IMAGE", "safeagent/sandbox-oracle:dev")
SIZE = int(os.environ.get("ORACLE_LINES", "300"))
SEED = int(os.environ.get("ORACLE_SEED", "9"))
WORKERS = int(os.environ.get("ORACLE_WORKERS", "3"))
BARE_SHARE = 6  # every sixth git line also runs against the bare-root fixture

BOOTSTRAP = (
    "import json, os, sys\n"
    "bundle = json.loads(sys.stdin.read())\n"
    "os.makedirs('/oracle/lib', exist_ok=True)\n"
    "for name, text in bundle['files'].items():\n"
    "    open(os.path.join('/oracle/lib', name), 'w').write(text)\n"
    "sys.path.insert(0, '/oracle/lib')\n"
    "import driver\n"
    "driver.main(bundle['request'])\n"
)


def _image_present() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "image", "inspect", IMAGE], capture_output=True,
                                           timeout=60).returncode == 0


def container_command() -> list[str]:
    return [
        "docker", "run", "--rm", "-i",
        "--user", "65532:65532", "--read-only", "--network", "none", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--tmpfs", "/tmp:rw,nosuid,nodev,size=256m",
        "--tmpfs", "/workspace:rw,nosuid,nodev,gid=65532,size=256m",
        "--tmpfs", "/oracle:rw,nosuid,nodev,exec,size=1g",
        "--workdir", "/", IMAGE, "python3", "-c", BOOTSTRAP,
    ]


def plan(size: int) -> list[lines.Line]:
    table = lines.table_lines()
    generated = lines.generated_lines(max(size - len(table), 0), SEED) if size > len(table) else []
    chosen = (table + generated) if size >= len(table) else table[:: max(len(table) // size, 1)][:size]
    return chosen


def run_oracle(chosen: list[lines.Line]) -> tuple[list[dict], dict, float]:
    phases = {"worktree": [], "bare": []}
    for index, line in enumerate(chosen):
        phases["worktree"].append([index, line.program, line.mode, list(line.argv)])
        if line.program == "git" and index % BARE_SHARE == 0:
            phases["bare"].append([index, line.program, line.mode, list(line.argv)])
    request = {"phases": [{"fixture": name, "lines": entries} for name, entries in phases.items() if entries],
               "workers": WORKERS, "timeout": 30}
    files = {name: (HERE / name).read_text() for name in ("driver.py", "judge.py", "hostile_repo.py")}
    started = time.monotonic()
    done = subprocess.run(container_command(), input=json.dumps({"files": files, "request": request}),
                          capture_output=True, text=True, timeout=6 * 3600)
    elapsed = time.monotonic() - started
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summaries = [record["summary"] for record in records if "summary" in record]
    assert done.returncode == 0 and summaries, f"the oracle container failed: {done.stderr[-3000:]}"
    return [record for record in records if "summary" not in record], summaries[0], elapsed


@pytest.fixture(scope="module")
def oracle_image():
    if not _image_present():
        if os.environ.get("SAFEAGENT_ORACLE") == "required":
            pytest.fail(f"the oracle image {IMAGE} is missing: make oracle-image")
        pytest.skip(f"the oracle image {IMAGE} is missing (make oracle-image)")
    return IMAGE


def test_allowed_command_lines_do_no_harm(oracle_image):
    chosen = plan(SIZE)
    violations, summary, elapsed = run_oracle(chosen)
    runs = summary["lines"]
    print(f"oracle: {len(chosen)} distinct command lines, {runs} runs (both fixtures) in {elapsed:.0f}s "
          f"({summary['seconds']}s inside the container), {summary['violations']} with violations")
    assert len(chosen) >= min(SIZE, 300)
    if os.environ.get("ORACLE_REPORT"):  # every violation, for reading at leisure
        with open(os.environ["ORACLE_REPORT"], "w") as handle:
            for record in violations:
                line = chosen[record["id"]] if record.get("id") is not None else None
                handle.write(json.dumps({**record, "argv": line and list(line.argv), "mode": line and line.mode}) + "\n")
    described = []
    for record in violations[:60]:
        if record.get("id") is None:
            described.append("; ".join(record["violations"]))
            continue
        line = chosen[record["id"]]
        described.append(f"[{line.policy} {line.mode} {line.source}] {json.dumps(list(line.argv))}: "
                         + "; ".join(record["violations"][:8]) + (f" (stderr {record.get('stderr', '')[-200:]!r})"))
    assert not violations, f"{len(violations)} command lines did harm:\n" + "\n".join(described)
