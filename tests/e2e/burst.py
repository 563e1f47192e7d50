"""Bursts of SandboxJobs against a listener the test started (issue 10), shared by the pre-flight
tests (a listener Pod inside the cluster) and the node wall's tests (a listener on a node's own
network, outside every pod range).

A second release of the chart (execution preset, so a job can run the repository's tests, and
tiny requests, so a burst fits the test bed) runs the jobs; on a test bed with sandbox nodes its
sandbox Pods go there, as the main release's do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from clusterlib import LISTENER, PORT, sandbox_placement_flags, wait_for

RELEASE = "safeagent-burst"
RELEASE_NS = "safeagent-burst-system"
SANDBOX_NS = "safeagent-burst"
CHART = os.path.join(os.path.dirname(__file__), "..", "..", "charts", "safeagent")
BURST = 30
TERMINAL = {"Succeeded", "Failed", "Denied", "Rejected"}


def counting_listener(port: int = PORT) -> str:
    """clusterlib's listener on `port`, logging every accepted connection as "ACCEPTED <peer>"."""
    code = LISTENER.replace(f"s.bind(('0.0.0.0', {PORT}))", f"s.bind(('0.0.0.0', {port}))")
    return code.replace("    c, _ = s.accept()\n", "    c, peer = s.accept()\n    print('ACCEPTED', peer[0], flush=True)\n")


# The repository's "test": from the first instant, try the listener for 3 s, and one DNS lookup.
ATTACKER = """\
import socket, time
REACHED = []
deadline = time.monotonic() + 3
while time.monotonic() < deadline and not REACHED:
    try:
        socket.create_connection(("{ip}", {port}), timeout=0.2).close()
        REACHED.append("tcp")
    except OSError:
        time.sleep(0.02)
try:
    socket.getaddrinfo("kubernetes.default.svc.cluster.local", 443)
    REACHED.append("dns")
except OSError:
    pass


def test_nothing_was_reachable():
    assert REACHED == []
"""


def wait_listening(kubectl, namespace: str, pod: str, port: int = PORT) -> None:
    """Until the listener accepts (a Pod is Ready before its Python has bound the port): one
    connection from inside its own Pod, which it logs from 127.0.0.1 (callers count from here on)."""
    knock = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1).close()"
    wait_for(lambda: kubectl("-n", namespace, "exec", pod, "--", "python3", "-c", knock, check=False).returncode == 0,
             timeout=60, what=f"{pod} to accept connections on port {port}")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["helm", *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


def install_burst_release(kubectl) -> None:
    """The chart once more, for the burst namespace, with the execution policy."""
    if shutil.which("helm") is None:
        pytest.skip("needs helm to install a second release of the chart")
    helm(
        "upgrade", "--install", RELEASE, CHART, "--namespace", RELEASE_NS, "--create-namespace",
        "--skip-crds", "--wait", "--timeout", "5m",
        "--set", f"sandboxNamespaces={{{SANDBOX_NS}}}",
        "--set", "policy.preset=execution",
        "--set", "rbac.createUserRoles=false",
        "--set", "sandbox.requests.cpu=10m",
        "--set", "sandbox.requests.memory=64Mi",
        "--set", "sandbox.requests.ephemeralStorage=16Mi",
        "--set", "egressCheck.deadlineSeconds=20",
        *sandbox_placement_flags(kubectl),
    )


def remove_burst_release(kubectl) -> None:
    helm("uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait", check=False)
    kubectl("delete", "namespace", SANDBOX_NS, RELEASE_NS, "--wait=false", check=False)


def accepted(kubectl, namespace: str, pod: str) -> list[str]:
    """Every peer the listener accepted, but for wait_listening's own knock from 127.0.0.1."""
    log = kubectl("-n", namespace, "logs", pod).stdout
    peers = [line.split()[1] for line in log.splitlines() if line.startswith("ACCEPTED")]
    return [peer for peer in peers if peer != "127.0.0.1"]


def run_burst(kubectl, profile: str, ip: str, count: int = BURST, timeout: float = 600,
              port: int = PORT) -> dict[str, dict]:
    """Create `count` jobs at once, each with its own source; wait until all are final."""
    run = uuid.uuid4().hex[:6]
    repo = f"burst-{run}"
    kubectl("-n", SANDBOX_NS, "create", "configmap", repo,
            f"--from-literal=test_net.py={ATTACKER.format(ip=ip, port=port)}")
    names = [f"burst-{run}-{index:02d}" for index in range(count)]
    manifests = [
        {"apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob",
         "metadata": {"name": name, "namespace": SANDBOX_NS},
         "spec": {"command": "python3 -m pytest -q test_net.py",
                  "source": {"configMap": {"name": repo}}, "networkProfile": profile, "timeoutSeconds": 60}}
        for name in names
    ]
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    deadline = time.monotonic() + timeout
    final: dict[str, dict] = {}
    while time.monotonic() < deadline and len(final) < count:
        items = json.loads(kubectl("-n", SANDBOX_NS, "get", "sandboxjobs", "-o", "json").stdout)["items"]
        for item in items:
            name = item["metadata"]["name"]
            if name in names and (item.get("status") or {}).get("phase") in TERMINAL:
                final[name] = item["status"]
        time.sleep(2)
    assert len(final) == count, f"{count - len(final)} of {count} jobs did not finish within {timeout}s"
    return final


def summary(final: dict[str, dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in final.values():
        key = f"{status['phase']}/{status.get('reason')}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def assert_nothing_reached(final: dict[str, dict], reached: list[str]) -> dict[str, int]:
    """No job reached the listener, and the commands did run (the check does not just refuse)."""
    counts = summary(final)
    assert reached == [], f"sandbox Pods reached the listener from {reached}; jobs: {counts}"
    ran = [status for status in final.values() if status.get("exitCode") is not None]
    assert all(status["exitCode"] == 0 for status in ran), counts  # the test saw nothing reachable
    assert len(ran) >= BURST - 2, counts
    assert all(status["reason"] in ("Completed", "EgressNotEnforced") for status in final.values()), counts
    return counts
