"""Egress blocked from the command's first packet, under a burst of jobs (issue 10).

A second release of the chart (execution preset, so a job can run the repository's tests, and
tiny requests, so a burst fits the test bed's node) runs 30 jobs at once per profile. Each job's
test connects, from the moment Python starts, to a listener Pod this test started, outside
every profile, retrying for 3 seconds. Before the pre-flight, 17 of 20 such jobs reached their
listener under `none`. Now the runner does not start the command until its Pod is provably
filtered, so the listener must see nothing.

With the test bed's NetworkPolicy enforcer removed, no Pod is ever filtered: every job must end
`EgressNotEnforced` with its command never started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from clusterlib import LISTENER, PORT, apply, hardened_pod, running_ip, wait_for

RELEASE = "safeagent-burst"
RELEASE_NS = "safeagent-burst-system"
SANDBOX_NS = "safeagent-burst"
CHART = os.path.join(os.path.dirname(__file__), "..", "..", "charts", "safeagent")
BURST = 30
TERMINAL = {"Succeeded", "Failed", "Denied", "Rejected"}

# Logs every accepted connection ("ACCEPTED <peer>"), then answers like clusterlib's listener.
COUNTING_LISTENER = LISTENER.replace("    c, _ = s.accept()\n", "    c, peer = s.accept()\n    print('ACCEPTED', peer[0], flush=True)\n")

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


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["helm", *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def burst_release(kubectl):
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
    )
    yield
    helm("uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait", check=False)
    kubectl("delete", "namespace", SANDBOX_NS, RELEASE_NS, "--wait=false", check=False)


@pytest.fixture
def listener(kubectl, namespace):
    """A counting TCP listener Pod in the test's own namespace; returns (pod, ip)."""
    apply(kubectl, namespace, hardened_pod("listener", ["python3", "-c", COUNTING_LISTENER], {"app": "listener"}))
    ip = wait_for(lambda: running_ip(kubectl, namespace, "listener"), timeout=120, what="the listener Pod")
    return "listener", ip


def accepted(kubectl, namespace: str, pod: str) -> list[str]:
    log = kubectl("-n", namespace, "logs", pod).stdout
    return [line.split()[1] for line in log.splitlines() if line.startswith("ACCEPTED")]


def run_burst(kubectl, profile: str, ip: str, count: int = BURST, timeout: float = 600) -> dict[str, dict]:
    """Create `count` jobs at once, each with its own source; wait until all are final."""
    run = uuid.uuid4().hex[:6]
    repo = f"burst-{run}"
    kubectl("-n", SANDBOX_NS, "create", "configmap", repo,
            f"--from-literal=test_net.py={ATTACKER.format(ip=ip, port=PORT)}")
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


@pytest.mark.parametrize("profile", ["none", "git-read"])
def test_a_burst_of_jobs_never_reaches_a_listener_outside_the_profile(kubectl, namespace, burst_release, listener, profile):
    pod, ip = listener
    final = run_burst(kubectl, profile, ip)
    counts = summary(final)
    print(f"{profile}: {counts}")
    assert accepted(kubectl, namespace, pod) == [], f"sandbox Pods reached the listener; jobs: {counts}"
    ran = [status for status in final.values() if status.get("exitCode") is not None]
    assert all(status["exitCode"] == 0 for status in ran), counts  # the test saw nothing reachable
    # The check must not just refuse everything: under this burst the commands did run.
    assert len(ran) >= BURST - 2, counts
    assert all(status["reason"] in ("Completed", "EgressNotEnforced") for status in final.values()), counts


def test_without_an_enforcer_no_command_runs(kubectl, namespace, burst_release, listener):
    """kube-router (the test bed's enforcer) scheduled nowhere: no Pod is ever filtered, so every
    job ends EgressNotEnforced and its command never starts."""
    found = kubectl("-n", "kube-system", "get", "daemonset", "kube-router", "-o", "json", check=False)
    if found.returncode != 0:
        pytest.skip("no kube-router DaemonSet in kube-system: this test removes the test bed's own enforcer")
    pod, ip = listener
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"safeagent.ca/no-such-node": "true"}}}}}
    kubectl("-n", "kube-system", "patch", "daemonset", "kube-router", "--type", "merge", "-p", json.dumps(patch))
    try:
        wait_for(lambda: not json.loads(kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-router",
                                                "-o", "json").stdout)["items"],
                 timeout=120, what="kube-router to stop")
        final = run_burst(kubectl, "none", ip, count=5, timeout=300)
    finally:
        restore = {"spec": {"template": {"spec": {"nodeSelector": None}}}}
        kubectl("-n", "kube-system", "patch", "daemonset", "kube-router", "--type", "merge", "-p", json.dumps(restore))
        kubectl("-n", "kube-system", "rollout", "status", "daemonset", "kube-router", "--timeout=180s")
        # The enforcer is back when a job's pre-flight passes again (the suite goes on after this).
        wait_for(lambda: summary(run_burst(kubectl, "none", ip, count=1, timeout=120)) == {"Succeeded/Completed": 1},
                 timeout=300, interval=1, what="NetworkPolicy enforcement to come back")
    counts = summary(final)
    assert counts == {"Failed/EgressNotEnforced": 5}, counts
    assert all("exitCode" not in status and "stdout" not in status for status in final.values())
    assert accepted(kubectl, namespace, pod) == [], "a command ran without an enforcer"
