"""One sandbox cannot starve the node or the next job, and a sandbox that fills itself up still
reports (issue 20), through the real path: a hostile repository's test under the execution
policy of the burst release (burst.py), jobs created with kubectl, records read by the operator.

Each hostile job runs while 3 ordinary jobs (`ls -la`) start beside it on the same sandbox node;
they must all complete, and their durations are printed, not asserted. Bounded: at most about
twice the PID limit of tasks, 128 inotify instances, the volumes' own caps.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from burst import SANDBOX_NS, TERMINAL
from sbj_helpers import docker_exec, hostpath_claim, kind_nodes

pytestmark = pytest.mark.disruptive  # not disruptive itself: it needs the burst release, run with it

# Fills /workspace, /tmp and /dev/shm to ENOSPC, creates up to 150,000 empty files (inodes are not
# bounded by a tmpfs's size: only the memory limit stops them), and leaves a process running.
FILL = """\
import os, subprocess

def fill(path):
    written = 0
    try:
        with open(path, "wb") as out:
            while True:
                out.write(b"x" * (1 << 20)); out.flush(); written += 1 << 20
    except OSError as error:
        return written, error.errno

def test_fill_everything():
    for place in ("/workspace/big", "/tmp/big", "/dev/shm/big"):
        print("filled", place, *fill(place), flush=True)
    subprocess.Popen(["sleep", "600"], start_new_session=True)
    os.makedirs("/workspace/many", exist_ok=True)
    made = 0
    try:
        for made in range(150_000):
            open(f"/workspace/many/{made}", "w").close()
            if made % 10_000 == 0:
                print("files", made, flush=True)
    except OSError as error:
        print("files stopped", made, error.errno, flush=True)
    print("files done", made, flush=True)
"""

# Spawns `sleep` until the kernel refuses, at most twice the PID bound's max in all, and holds them.
FORK_BOMB = """\
import errno, os, time

def test_fork_bomb():
    made, refused = [], 0
    for _ in range(2 * {most}):
        try:
            made.append(os.posix_spawn("/bin/sleep", ["sleep", "120"], {{}}))
        except OSError as error:
            assert error.errno == errno.EAGAIN, error
            refused += 1
            if refused >= 64:
                break
    print("spawned", len(made), "refused", refused, flush=True)
    time.sleep({hold})
"""

# Takes every inotify instance its user may have, and holds them.
INOTIFY_HOG = """\
import ctypes, time

def test_take_every_inotify_instance():
    libc = ctypes.CDLL(None, use_errno=True)
    held = []
    while len(held) < 4096:
        fd = libc.inotify_init1(0)
        if fd < 0:
            print("held", len(held), "errno", ctypes.get_errno(), flush=True)
            break
        held.append(fd)
    time.sleep({hold})
"""

INOTIFY_ONE = """\
import ctypes, os

def test_one_inotify_instance():
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(0)
    print("inotify", fd, "errno", ctypes.get_errno(), "uid", os.getuid(), flush=True)
    assert fd >= 0
"""


def _run_id() -> str:
    return uuid.uuid4().hex[:6]


def _repo(kubectl, name: str, files: dict[str, str]) -> dict:
    args = [f"--from-literal={path}={text}" for path, text in files.items()]
    kubectl("-n", SANDBOX_NS, "create", "configmap", name, *args)
    return {"configMap": {"name": name}}


def _volume_repo(kubectl, name: str, files: dict[str, str]) -> dict:
    """A PVC bound to a hostPath PV whose directory holds `files` on every kind node."""
    writes = " && ".join(f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {file}"
                         for file, text in files.items())
    hostpath_claim(kubectl, SANDBOX_NS, name, writes)
    return {"persistentVolumeClaim": {"claimName": name}}


def _drop_volume_repo(kubectl, name: str) -> None:
    kubectl("delete", "persistentvolume", f"{SANDBOX_NS}-{name}", "--wait=false", check=False)
    for node in kind_nodes(kubectl):
        docker_exec(node, f"rm -rf /var/lib/safeagent-e2e/{name}", check=False)


def _submit(kubectl, name: str, command: str, source: dict, timeout: int = 120) -> str:
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob",
        "metadata": {"name": name, "namespace": SANDBOX_NS},
        "spec": {"command": command, "source": source, "networkProfile": "none", "timeoutSeconds": timeout},
    }))
    return name


def _job(kubectl, name: str) -> dict:
    return json.loads(kubectl("-n", SANDBOX_NS, "get", "sandboxjob", name, "-o", "json").stdout)


def _wait_final(kubectl, names: list[str], timeout: float = 600) -> dict[str, dict]:
    deadline, final = time.monotonic() + timeout, {}
    while time.monotonic() < deadline and len(final) < len(names):
        for name in names:
            if name not in final:
                job = _job(kubectl, name)
                if (job.get("status") or {}).get("phase") in TERMINAL:
                    final[name] = job
        time.sleep(2)
    assert len(final) == len(names), f"not final within {timeout}s: {sorted(set(names) - set(final))}"
    return final


def _wait_running(kubectl, name: str, timeout: float = 240, started: tuple[str, ...] = ("running",)) -> dict:
    """Until the job's sandbox Pod's command container is in one of the `started` states; returns that Pod."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod_name = (_job(kubectl, name).get("status") or {}).get("podName")
        if pod_name:
            pod = json.loads(kubectl("-n", SANDBOX_NS, "get", "pod", pod_name, "-o", "json", check=False).stdout or "{}")
            states = [status.get("state", {}) for status in (pod.get("status") or {}).get("containerStatuses") or []]
            if any(key in state for state in states for key in started):
                return pod
        time.sleep(0.5)
    raise AssertionError(f"{name}'s sandbox Pod was not running within {timeout}s")


def _seconds(job: dict) -> float:
    from datetime import datetime

    def when(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    return when(job["status"]["completionTime"]) - when(job["metadata"]["creationTimestamp"])


def _neighbours(kubectl, run: str, source: dict) -> list[str]:
    return [_submit(kubectl, f"ordinary-{run}-{index}", "ls -la", source, timeout=60) for index in range(3)]


def _report_neighbours(final: dict[str, dict], names: list[str], beside: str) -> None:
    durations = {name: round(_seconds(final[name]), 1) for name in names}
    print(f"\nordinary jobs beside {beside}: {durations} s (apply -> final)")
    for name in names:
        status = final[name]["status"]
        assert (status["phase"], status["reason"]) == ("Succeeded", "Completed"), (name, status)


@pytest.mark.parametrize("kind", ["configMap", "persistentVolumeClaim"])
def test_a_sandbox_that_fills_everything_still_reports(burst_release, kubectl, kind):
    """Every writable place full, inodes by the hundred thousand, a process left running: the job
    still ends with a record that says what happened, and jobs beside it complete."""
    run = _run_id()
    files = {"test_fill.py": FILL}
    name = f"fill-{run}"
    source = _repo(kubectl, name, files) if kind == "configMap" else _volume_repo(kubectl, name, files)
    ordinary = _repo(kubectl, f"plain-{run}", {"README": "plain"})
    try:
        _submit(kubectl, name, "python3 -m pytest -q -s test_fill.py", source, timeout=240)
        _wait_running(kubectl, name)
        neighbours = _neighbours(kubectl, run, ordinary)
        final = _wait_final(kubectl, [name, *neighbours])
    finally:
        if kind != "configMap":
            _drop_volume_repo(kubectl, name)
    status = final[name]["status"]
    print(f"\nfill ({kind}): {status['phase']}/{status['reason']}: {status['message']}\n"
          f"  exit {status.get('exitCode')}, fullVolumes {status.get('fullVolumes')}, memoryExhausted "
          f"{status.get('memoryExhausted')}, changedFiles {({k: v for k, v in status['changedFiles'].items() if k != 'paths'})}"
          f"\n  stdout tail: {status.get('stdout', '')[-400:]!r}")
    # A true record: the command's exit code and output, every full place named, the changed files counted.
    assert status["reason"] in ("MemoryLimitReached", "TooManyFileWrites", "DiskLimitReached"), status
    assert status.get("exitCode") is not None, status
    assert sorted(status.get("fullVolumes") or []) == ["shm", "tmp", "workspace"], status
    for place in ("/workspace/big", "/tmp/big", "/dev/shm/big"):
        line = next(line for line in status["stdout"].splitlines() if line.startswith(f"filled {place} "))
        assert line.endswith(" 28"), line  # ENOSPC at the cap
    changed = status["changedFiles"]
    assert changed["created"] > 1000 and 0 < len(changed["paths"]) <= 150, changed
    _report_neighbours(final, neighbours, f"the fill ({kind})")


def test_a_fork_bomb_is_held_to_its_pods_limit(burst_release, kubectl):
    """The PID bound is proven first (the runner's own proof, in the job's status), then a job that
    spawns processes until refused gets no more than its Pod's bound, while jobs beside it run."""
    run = _run_id()
    probe = _submit(kubectl, f"pids-{run}", "ls", _repo(kubectl, f"pids-{run}", {"README": "x"}), timeout=30)
    first = _wait_final(kubectl, [probe])[probe]["status"]
    if first.get("reason") == "ResourcesNotLimited" or first.get("pidsAvailable", 0) >= 1024:
        pytest.skip("no PID limit in force for sandbox Pods (set the kubelet's podPidsLimit on the sandbox "
                    f"nodes: README, 'PID limit'): {first.get('message')}")
    available = first["pidsAvailable"]
    assert first["phase"] == "Succeeded" and 0 < available < 1024, first
    bomb = _submit(kubectl, f"bomb-{run}", "python3 -m pytest -q -s test_bomb.py",
                   _repo(kubectl, f"bomb-{run}", {"test_bomb.py": FORK_BOMB.format(most=1024, hold=25)}))
    _wait_running(kubectl, bomb)
    neighbours = _neighbours(kubectl, run, _repo(kubectl, f"plain-{run}", {"README": "plain"}))
    final = _wait_final(kubectl, [bomb, *neighbours])
    status = final[bomb]["status"]
    line = next(line for line in status["stdout"].splitlines() if line.startswith("spawned"))
    spawned, refused = int(line.split()[1]), int(line.split()[3])
    print(f"\nfork bomb: {line}; the proof found {available} tasks free; job {status['phase']}/{status['reason']}")
    # Refused at the bound: no more than the proof found free (the runner and pause hold the rest).
    assert refused > 0 and spawned <= available, line
    assert status["phase"] == "Succeeded", status
    _report_neighbours(final, neighbours, "the fork bomb")


def test_one_sandbox_taking_every_inotify_instance_leaves_the_next_one_its_own(burst_release, kubectl):
    """Per-user kernel limits are per sandbox: a job holding all 128 inotify instances of its UID
    does not stop another job on the same node from getting one."""
    run = _run_id()
    hog = _submit(kubectl, f"inotify-hog-{run}", "python3 -m pytest -q -s test_hog.py",
                  _repo(kubectl, f"hog-{run}", {"test_hog.py": INOTIFY_HOG.format(hold=40)}))
    hog_pod = _wait_running(kubectl, hog)
    time.sleep(5)  # past its proofs and into its loop: the instances are taken within a second
    one = _submit(kubectl, f"inotify-one-{run}", "python3 -m pytest -q -s test_one.py",
                  _repo(kubectl, f"one-{run}", {"test_one.py": INOTIFY_ONE}))
    one_pod = _wait_running(kubectl, one, started=("running", "terminated"))  # it takes a second
    neighbours = _neighbours(kubectl, run, _repo(kubectl, f"plain-{run}", {"README": "plain"}))
    final = _wait_final(kubectl, [hog, one, *neighbours])
    hog_status, one_status = final[hog]["status"], final[one]["status"]
    print(f"\ninotify: hog {hog_status['stdout'].splitlines()[:1]}, other {one_status['stdout'].splitlines()[:1]}")
    held = next(line for line in hog_status["stdout"].splitlines() if line.startswith("held"))
    assert held.split()[1] == "128" and held.split()[3] == "24", held  # all of its UID's, then EMFILE
    # They ran side by side on one node, under different UIDs, and the second got its instance.
    assert hog_pod["spec"]["nodeName"] == one_pod["spec"]["nodeName"]
    uids = {pod["spec"]["securityContext"]["runAsUser"] for pod in (hog_pod, one_pod)}
    assert len(uids) == 2, uids
    assert one_status["phase"] == "Succeeded", one_status
    assert final[one]["status"]["completionTime"] < final[hog]["status"]["completionTime"]
    _report_neighbours(final, neighbours, "the inotify hog")


NODE_DISK = """\
def test_fill_the_nodes_disk():
    with open("/dev/termination-log", "wb") as out:
        for _ in range(200):
            out.write(b"x" * (1 << 20)); out.flush()
    print("wrote 200 MiB", flush=True)
"""


def test_the_termination_message_file_cannot_fill_the_nodes_disk(burst_release, kubectl):
    """/dev/termination-log is on the node's disk and writable by every user: the runner stops a
    command writing past its 4 KiB and reports it."""
    run = _run_id()
    name = _submit(kubectl, f"node-disk-{run}", "python3 -m pytest -q -s test_disk.py",
                   _repo(kubectl, f"disk-{run}", {"test_disk.py": NODE_DISK}))
    status = _wait_final(kubectl, [name])[name]["status"]
    print(f"\ntermination log: {status['phase']}/{status['reason']}: {status['message']}")
    assert (status["reason"], status["fullVolumes"], status["exitCode"]) == ("DiskLimitReached", ["termination-log"], 137)
    assert "wrote 200 MiB" not in status.get("stdout", "") and "termination message file" in status["message"]
