"""The warm pool through the installed operator (docs/warm-pool.md): a release of its own with
`warmPool.size.none=2` (and the execution policy, so a job can run a test file that probes its
sandbox), in namespaces of its own, removed at the end; it runs with the other modules that
install releases.

What it shows: the operator keeps two warm Pods ready; a SandboxJob takes one (no Pod of its own)
and the pool refills; a burst larger than the pool runs every job exactly once, some warm and the
rest cold, and none of them reaches a listener the test started, inside the cluster or on a node's
own network (test_egress_preflight's burst); a command in a warm Pod cannot read its runner's
environment, reach the other warm Pods' channels (the next jobs' Pods), or leave anything running
into them; a hostile source delivered to a warm Pod ends the job Rejected, nothing run, and one
that shadows the in-sandbox code (test_trust_base's) does not replace the runner; the operator
killed (grace 0) once a job has claimed a warm Pod, the job still ends once, with that Pod's
record. The command and the channel themselves, Pod by Pod: tests/e2e/test_warm_pod.py.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid

import pytest

from burst import (
    accepted, assert_nothing_reached, install_release, remove_release, run_burst, start_outside_listener,
    stop_outside_listener,
)
from clusterlib import wait_for
from hostile_source import assert_the_real_runner_ran, hostile_files
from sbj_helpers import kill_operator, repo_configmap

pytestmark = pytest.mark.disruptive

RELEASE, RELEASE_NS, SANDBOX_NS = "safeagent-warm", "safeagent-warm-system", "safeagent-warm-sandbox"
POOL = 2
# The outside listener's port on a node's own network (test_egress_preflight's and the wall's are others).
OUTSIDE_PORT = 18095
FINAL = {"Succeeded", "Failed", "Denied", "Rejected"}


@pytest.fixture(scope="module")
def release(kubectl):
    install_release(kubectl, RELEASE, RELEASE_NS, SANDBOX_NS,
                    "--set", "policy.preset=execution", "--set", f"warmPool.size.none={POOL}")
    kubectl("-n", SANDBOX_NS, "create", "configmap", "repo", "--from-literal=README.md=hello",
            "--from-literal=src--app.py=print(1)")
    yield
    remove_release(kubectl, RELEASE, RELEASE_NS, SANDBOX_NS)


@pytest.fixture(scope="module")
def outside(kubectl):
    """A listener on a (non-sandbox) node's own network: (namespace, pod, address)."""
    found = start_outside_listener(kubectl, OUTSIDE_PORT)
    yield found
    stop_outside_listener(kubectl, found)


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


def _warm(status: dict) -> bool:
    """Whether the job ran in a warm Pod: its Launched condition names one."""
    return any(c["type"] == "Launched" and c["message"].startswith("warm Pod ")
               for c in status.get("conditions", []))


def test_a_job_takes_a_warm_pod_and_the_pool_refills(release, kubectl):
    before = {pod["metadata"]["name"] for pod in _pool_ready(kubectl)}
    name = _submit(kubectl, f"warm-{uuid.uuid4().hex[:6]}", "ls -R")
    job = _final(kubectl, [name])[name]
    status = job["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "Completed"), status
    assert status["podName"] in before and _warm(job["status"]), status
    assert status["stdout"].split() == [".:", "README.md", "src", "./src:", "app.py"]
    refilled = {pod["metadata"]["name"] for pod in _pool_ready(kubectl)}
    assert status["podName"] not in refilled and len(refilled) >= POOL


def test_a_burst_larger_than_the_pool_runs_every_job_once_and_reaches_no_listener(release, kubectl, namespace,
                                                                                  listener, outside):
    """test_egress_preflight's burst on the warm pool: three times as many jobs as warm Pods, so
    some run warm and the rest cold, each trying from its first instant a listener Pod in the
    cluster, a listener on a node's own network and DNS. Every job completes, each in a Pod of
    its own, and no listener sees anything."""
    pod, ip = listener
    outside_ns, outside_pod, outside_ip = outside
    _pool_ready(kubectl)
    before = len(accepted(kubectl, outside_ns, outside_pod))
    final = run_burst(kubectl, "none", targets=[(ip, 8080), (outside_ip, OUTSIDE_PORT)], count=3 * POOL,
                      timeout=300, namespace=SANDBOX_NS)
    reached = accepted(kubectl, namespace, pod) + accepted(kubectl, outside_ns, outside_pod)[before:]
    counts = assert_nothing_reached(final, reached)
    warm = [name for name, status in final.items() if _warm(status)]
    print(f"\nwarm burst of {len(final)} with a pool of {POOL}: {counts}, {len(warm)} warm")
    assert 1 <= len(warm) < len(final), "the burst should run both warm and cold"
    assert len({status["podName"] for status in final.values()}) == len(final)  # one Pod per job, none shared


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
    assert status["phase"] == "Succeeded" and _warm(job["status"]), status
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
    assert _warm(job["status"]) and (status["phase"], status["reason"]) == ("Rejected", "bad_key"), status


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
    assert _warm(status), status
    assert status["stdout"].split() == [".:", "README.md", "data.bin", "src", "./src:", "app.py"]


def test_a_source_that_shadows_the_sandbox_code_cannot_replace_the_warm_runner(release, kubectl, namespace):
    """test_trust_base's hostile source (hostile_source.py), delivered to a warm Pod, where the
    preparation step runs inside the runner's own process: the real runner runs the command and
    the record is true."""
    files = hostile_files(kubectl, namespace)
    _pool_ready(kubectl)
    repo = f"shadow-{uuid.uuid4().hex[:6]}"
    kubectl("-n", SANDBOX_NS, "create", "-f", "-", input=json.dumps(repo_configmap(repo, files)))
    name = _submit(kubectl, f"shadow-{uuid.uuid4().hex[:6]}", "ls", repo)
    status = _final(kubectl, [name])[name]["status"]
    assert _warm(status), status.get("conditions")
    assert_the_real_runner_ran(status, files)


SLOW = textwrap.dedent("""
    import time

    def test_slow():
        time.sleep(8)
        print("SLEPT")
""")


def _pods_of(kubectl, uid: str) -> list[dict]:
    return json.loads(kubectl("-n", SANDBOX_NS, "get", "pods", "-l", f"safeagent.ca/job-uid={uid}",
                              "-o", "json").stdout)["items"]


def test_the_operator_killed_after_a_claim_ends_the_job_once_with_its_record(release, kubectl):
    """The release's operator Pod deleted with grace 0 the moment a job's claim shows on a warm Pod
    (the delivery follows the claim within milliseconds, so the command is running): the new
    operator takes the job up on that Pod, and the job ends once, with that Pod's record; no other
    Pod is ever the job's, and it is launched once. Last in the module: it restarts the operator."""
    _pool_ready(kubectl)
    repo = f"slow-{uuid.uuid4().hex[:6]}"
    kubectl("-n", SANDBOX_NS, "create", "configmap", repo, f"--from-literal=test_slow.py={SLOW}")
    name = _submit(kubectl, f"killed-{uuid.uuid4().hex[:6]}", "python3 -m pytest -q -s test_slow.py", repo)
    uid = kubectl("-n", SANDBOX_NS, "get", "sandboxjob", name, "-o", "jsonpath={.metadata.uid}").stdout
    claimed = wait_for(lambda: _pods_of(kubectl, uid), timeout=60, interval=0.2, what="the job's claim on a warm Pod")
    assert [pod["metadata"]["labels"].get("safeagent.ca/warm") for pod in claimed] == ["true"], claimed
    mine = claimed[0]["metadata"]["name"]
    kill_operator(kubectl, RELEASE_NS, RELEASE)
    print("\nthe job when the new operator ran:", kubectl("-n", SANDBOX_NS, "get", "sandboxjob", name,
                                                        "-o", "jsonpath={.status.phase}").stdout)
    seen = {mine}

    def final() -> dict | None:
        seen.update(pod["metadata"]["name"] for pod in _pods_of(kubectl, uid))
        job = json.loads(kubectl("-n", SANDBOX_NS, "get", "sandboxjob", name, "-o", "json").stdout)
        return job if (job.get("status") or {}).get("phase") in FINAL else None

    status = wait_for(final, timeout=240, interval=0.5, what="the job to end")["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "Completed"), status
    assert _warm(status) and status["podName"] == mine, status
    assert status["stdout"].count("SLEPT") == 1 and "1 passed" in status["stdout"], status["stdout"]
    assert seen == {mine}, f"other Pods were the job's: {sorted(seen - {mine})}"
    launched = kubectl("-n", SANDBOX_NS, "get", "events", "--field-selector",
                       f"involvedObject.name={name},reason=SandboxLaunched", "-o", "json").stdout
    assert sum(event.get("count") or 1 for event in json.loads(launched)["items"]) == 1
