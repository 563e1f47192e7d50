"""The warm pool through the installed operator (docs/warm-pool.md): a release of its own with
`warmPool.size.none=2` (and the execution policy, so a job can run a test file that probes its
sandbox), in namespaces of its own, removed at the end; it runs with the other modules that
install releases.

What it shows: the operator keeps two warm Pods ready; a SandboxJob takes one (no Pod of its own)
and the pool refills; a burst larger than the pool runs every job exactly once, the rest cold; a
command in a warm Pod cannot read its runner's environment, reach the other warm Pods' channels
(the next jobs' Pods), or leave anything running into them; a hostile source delivered to a warm
Pod ends the job Rejected, nothing run. The command and the channel themselves, Pod by Pod:
tests/e2e/test_warm_pod.py.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid

import pytest

from burst import install_release, remove_release
from clusterlib import wait_for

pytestmark = pytest.mark.disruptive

RELEASE, RELEASE_NS, SANDBOX_NS = "safeagent-warm", "safeagent-warm-system", "safeagent-warm-sandbox"
POOL = 2
FINAL = {"Succeeded", "Failed", "Denied", "Rejected"}


@pytest.fixture(scope="module")
def release(kubectl):
    install_release(kubectl, RELEASE, RELEASE_NS, SANDBOX_NS,
                    "--set", "policy.preset=execution", "--set", f"warmPool.size.none={POOL}")
    kubectl("-n", SANDBOX_NS, "create", "configmap", "repo", "--from-literal=README.md=hello",
            "--from-literal=src--app.py=print(1)")
    yield
    remove_release(kubectl, RELEASE, RELEASE_NS, SANDBOX_NS)


def _warm_pods(kubectl) -> list[dict]:
    listing = json.loads(kubectl("-n", SANDBOX_NS, "get", "pods", "-l", "safeagent.ca/warm=true", "-o", "json").stdout)
    return listing["items"]


def _ready_unclaimed(kubectl) -> list[dict]:
    return [pod for pod in _warm_pods(kubectl)
            if "safeagent.ca/job-uid" not in pod["metadata"].get("labels", {})
            and pod["status"].get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))]


def _pool_ready(kubectl) -> list[dict]:
    return wait_for(lambda: len(_ready_unclaimed(kubectl)) >= POOL and _ready_unclaimed(kubectl), timeout=240,
                    interval=1, what=f"{POOL} warm Pods ready")


def _submit(kubectl, name: str, command: str, configmap: str = "repo") -> str:
    kubectl("-n", SANDBOX_NS, "create", "-f", "-", input=json.dumps({
        "apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": name},
        "spec": {"command": command, "source": {"configMap": {"name": configmap}}, "timeoutSeconds": 60}}))
    return name


def _final(kubectl, names: list[str], timeout: float = 300) -> dict[str, dict]:
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(done) < len(names):
        listing = json.loads(kubectl("-n", SANDBOX_NS, "get", "sandboxjobs", "-o", "json").stdout)["items"]
        for job in listing:
            if job["metadata"]["name"] in names and (job.get("status") or {}).get("phase") in FINAL:
                done[job["metadata"]["name"]] = job
        time.sleep(0.5)
    assert len(done) == len(names), f"not final within {timeout:.0f} s: {sorted(set(names) - set(done))}"
    return done


def _warm(job: dict) -> bool:
    """Whether the job ran in a warm Pod: its Launched condition names one."""
    return any(c["type"] == "Launched" and c["message"].startswith("warm Pod ")
               for c in job["status"].get("conditions", []))


def test_a_job_takes_a_warm_pod_and_the_pool_refills(release, kubectl):
    before = {pod["metadata"]["name"] for pod in _pool_ready(kubectl)}
    name = _submit(kubectl, f"warm-{uuid.uuid4().hex[:6]}", "ls -R")
    job = _final(kubectl, [name])[name]
    status = job["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "Completed"), status
    assert status["podName"] in before and _warm(job), status
    assert status["stdout"].split() == [".:", "README.md", "src", "./src:", "app.py"]
    refilled = {pod["metadata"]["name"] for pod in _pool_ready(kubectl)}
    assert status["podName"] not in refilled and len(refilled) >= POOL


def test_a_burst_larger_than_the_pool_runs_every_job_exactly_once(release, kubectl):
    _pool_ready(kubectl)
    run = uuid.uuid4().hex[:6]
    names = [_submit(kubectl, f"burst-{run}-{n}", "ls") for n in range(3 * POOL)]
    final = _final(kubectl, names)
    for name in names:
        assert (final[name]["status"]["phase"], final[name]["status"]["reason"]) == ("Succeeded", "Completed"), name
    pods = [final[name]["status"]["podName"] for name in names]
    assert len(set(pods)) == len(names)  # one Pod per job, none shared
    warm = [name for name in names if _warm(final[name])]
    print(f"\nburst of {len(names)} with a pool of {POOL}: {len(warm)} warm, {len(names) - len(warm)} cold")
    assert 1 <= len(warm) < len(names)


PROBE = textwrap.dedent("""
    import json, os, socket, subprocess

    def test_probe():
        found = {}
        try:
            found["runner_environ"] = open("/proc/1/environ", "rb").read().decode(errors="replace")
        except OSError as error:
            found["runner_environ"] = "error: " + error.strerror
        reached = {}
        for address in open("others.txt").read().split():
            try:
                socket.create_connection((address, 8470), timeout=3).close()
                reached[address] = "connected"
            except OSError as error:
                reached[address] = type(error).__name__
        found["others"] = reached
        subprocess.Popen(["sleep", "3600"], start_new_session=True)
        print("PROBE " + json.dumps(found))
""")


def test_a_warm_job_cannot_reach_the_next_warm_pods_or_outlive_its_own(release, kubectl):
    ready = _pool_ready(kubectl)
    others = [pod["status"]["podIP"] for pod in ready]
    repo = f"probe-{uuid.uuid4().hex[:6]}"
    kubectl("-n", SANDBOX_NS, "create", "configmap", repo, f"--from-literal=test_probe.py={PROBE}",
            f"--from-literal=others.txt={' '.join(others)}")
    name = _submit(kubectl, f"probe-{uuid.uuid4().hex[:6]}", "python3 -m pytest -q -s test_probe.py", repo)
    job = _final(kubectl, [name])[name]
    status = job["status"]
    assert status["phase"] == "Succeeded" and _warm(job), status
    line = next(line for line in status["stdout"].splitlines() if line.startswith("PROBE "))
    found = json.loads(line.removeprefix("PROBE "))
    print("\nwhat the warm job found:", found)
    assert found["runner_environ"].startswith("error: ")
    mine = status["podName"]
    mine_ip = next((pod["status"]["podIP"] for pod in ready if pod["metadata"]["name"] == mine), None)
    for address, result in found["others"].items():
        if address == mine_ip:
            assert result == "ConnectionRefusedError"  # its own channel, closed before the command
        else:
            assert result != "connected", (address, result)  # the next job's Pod: profile none, no way
    # Whatever it left running was killed with it: the next job in the pool finds a clean Pod.
    follow = _submit(kubectl, f"after-{uuid.uuid4().hex[:6]}", "ls")
    after = _final(kubectl, [follow])[follow]
    assert after["status"]["phase"] == "Succeeded" and after["status"]["podName"] != mine


def test_a_hostile_source_delivered_to_a_warm_pod_is_rejected(release, kubectl):
    _pool_ready(kubectl)
    repo = f"hostile-{uuid.uuid4().hex[:6]}"
    kubectl("-n", SANDBOX_NS, "create", "configmap", repo, "--from-literal=ok.txt=x",
            "--from-literal=a--..--..--etc--x=escape")
    name = _submit(kubectl, f"hostile-{uuid.uuid4().hex[:6]}", "ls", repo)
    job = _final(kubectl, [name])[name]
    status = job["status"]
    assert _warm(job) and (status["phase"], status["reason"]) == ("Rejected", "bad_key"), status


def test_a_bundle_job_runs_warm(release, kubectl, tmp_path):
    """The agent's way in (`safeagent run --source DIR`, the MCP server): a tree packed as a bundle and
    uploaded as the client uploads it (a manifest and content-addressed chunks) runs in a warm Pod."""
    import base64  # noqa: PLC0415 - this test's own, appended

    from safeagent.sandbox import bundle  # noqa: PLC0415

    (tmp_path / "src").mkdir()
    (tmp_path / "README.md").write_text("hello\n")
    (tmp_path / "src" / "app.py").write_text("print(1)\n")
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 3200)  # 800 KiB: chunks of its own
    packed = bundle.pack(str(tmp_path))
    assert len(packed.chunks) >= 2
    objects = [{"metadata": {"name": bundle.chunk_name(digest)},
                "binaryData": {bundle.CHUNK_KEY: base64.b64encode(packed.compressed(digest)).decode()}}
               for digest in packed.chunks]
    objects.append({"metadata": {"name": packed.name}, "data": {bundle.MANIFEST_KEY: packed.manifest.decode()}})
    for body in objects:
        kubectl("-n", SANDBOX_NS, "apply", "-f", "-",
                input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "immutable": True, **body}))
    _pool_ready(kubectl)
    name = f"bundle-{uuid.uuid4().hex[:6]}"
    kubectl("-n", SANDBOX_NS, "create", "-f", "-", input=json.dumps({
        "apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": name},
        "spec": {"command": "ls -R", "source": {"bundle": {"name": packed.name}}, "timeoutSeconds": 60}}))
    job = _final(kubectl, [name])[name]
    status = job["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "Completed"), status
    assert _warm(job), status
    assert status["stdout"].split() == [".:", "README.md", "data.bin", "src", "./src:", "app.py"]
