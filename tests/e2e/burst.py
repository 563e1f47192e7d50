"""Bursts of SandboxJobs against listeners the test started (issues 10 and 15), shared by the
pre-flight tests and the node wall's: a listener Pod inside the cluster, and one on a node's own
network, outside every pod range (as a host on the internet would be, but one the test owns).

A second release of the chart (execution preset, so a job can run the repository's tests, and
tiny requests, so a burst fits the test bed) runs the jobs; on a test bed with sandbox nodes its
sandbox Pods go there, as the main release's do. Its `package-mirror` profile allows DNS, so
one profile of the bursts has DNS open while the pre-flight runs.

SAFEAGENT_BURST sets the size of a burst (30; `make soak` uses 100).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from clusterlib import (
    LISTENER, PORT, SANDBOX_LABEL, apply, await_identity_policies, await_namespaces_gone, hardened_pod, running_ip,
    sandbox_placement_flags, wait_for,
)

RELEASE = "safeagent-burst"
RELEASE_NS = "safeagent-burst-system"
SANDBOX_NS = "safeagent-burst"
CHART = os.path.join(os.path.dirname(__file__), "..", "..", "charts", "safeagent")
BURST = int(os.environ.get("SAFEAGENT_BURST", "30"))
# The profile whose policy allows DNS in the burst release.
DNS_PROFILE = "package-mirror"
TERMINAL = {"Succeeded", "Failed", "Denied", "Rejected"}


def counting_listener(port: int = PORT) -> str:
    """clusterlib's listener on `port`, logging every accepted connection as "ACCEPTED <peer>"."""
    code = LISTENER.replace(f"s.bind(('0.0.0.0', {PORT}))", f"s.bind(('0.0.0.0', {port}))")
    return code.replace("    c, _ = s.accept()\n", "    c, peer = s.accept()\n    print('ACCEPTED', peer[0], flush=True)\n")


# The repository's "test": from the first instant, try every target for 3 s, and (where the
# profile allows no DNS) one DNS lookup.
ATTACKER = """\
import socket, time
TARGETS = {targets!r}
REACHED = []
deadline = time.monotonic() + 3
while time.monotonic() < deadline and len(REACHED) < len(TARGETS):
    for host, port in TARGETS:
        if (host, port) in REACHED:
            continue
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            REACHED.append((host, port))
        except OSError:
            pass
    time.sleep(0.02)
if {check_dns!r}:
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


def install_release(kubectl, release: str, release_ns: str, sandbox_ns: str, *flags: str) -> None:
    """A release of the chart of a test module's own, with tiny requests and no user roles, placed as
    the main one is, `flags` on top; skips where there is no helm."""
    if shutil.which("helm") is None:
        pytest.skip(f"needs helm to install the release {release}")
    await_namespaces_gone(kubectl, sandbox_ns, release_ns)
    helm("upgrade", "--install", release, CHART, "--namespace", release_ns, "--create-namespace",
         "--skip-crds", "--wait", "--timeout", "5m",
         "--set", f"sandboxNamespaces={{{sandbox_ns}}}", "--set", "rbac.createUserRoles=false",
         "--set", "sandbox.requests.cpu=10m", "--set", "sandbox.requests.memory=64Mi",
         *flags, *sandbox_placement_flags(kubectl))
    await_identity_policies(kubectl, sandbox_ns)


def remove_release(kubectl, release: str, release_ns: str, sandbox_ns: str) -> None:
    """Its jobs first, while their operator runs (an unfinished job carries its finalizer until
    then), then the release and its namespaces."""
    kubectl("-n", sandbox_ns, "delete", "sandboxjobs", "--all", "--timeout=120s", check=False)
    helm("uninstall", release, "--namespace", release_ns, "--wait", check=False)
    kubectl("delete", "namespace", sandbox_ns, release_ns, "--wait=false", check=False)


def install_burst_release(kubectl) -> None:
    """The chart once more, for the burst namespace, with the execution policy."""
    if shutil.which("helm") is None:
        pytest.skip("needs helm to install a second release of the chart")
    await_namespaces_gone(kubectl, SANDBOX_NS, RELEASE_NS)
    helm(
        "upgrade", "--install", RELEASE, CHART, "--namespace", RELEASE_NS, "--create-namespace",
        "--skip-crds", "--wait", "--timeout", "5m",
        "--set", f"sandboxNamespaces={{{SANDBOX_NS}}}",
        "--set", "policy.preset=execution",
        "--set", "rbac.createUserRoles=false",
        "--set", "sandbox.requests.cpu=10m",
        "--set", "sandbox.requests.memory=64Mi",
        "--set", "sandbox.requests.ephemeralStorage=16Mi",
        "--set", "networkProfiles.packageMirror.allowDns=true",
        *sandbox_placement_flags(kubectl),
    )
    await_identity_policies(kubectl, SANDBOX_NS)


def canary(kubectl) -> tuple[str, dict[str, int]]:
    """The burst release's canary as the operator hands it to sandbox Pods: its one ready Pod's
    address (from the Service's EndpointSlices) and its ports by name."""
    service = json.loads(kubectl("-n", RELEASE_NS, "get", "service", f"{RELEASE}-canary", "-o", "json").stdout)
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    slices = json.loads(kubectl("-n", RELEASE_NS, "get", "endpointslices", "-l",
                                f"kubernetes.io/service-name={RELEASE}-canary", "-o", "json").stdout)["items"]
    addresses = {endpoint["addresses"][0] for item in slices for endpoint in item.get("endpoints") or []
                 if (endpoint.get("conditions") or {}).get("ready")}
    assert len(addresses) == 1, f"the canary should have one ready Pod: {addresses}"
    return addresses.pop(), ports


def remove_burst_release(kubectl) -> None:
    helm("uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait", check=False)
    kubectl("delete", "namespace", SANDBOX_NS, RELEASE_NS, "--wait=false", check=False)


def start_listener(kubectl, namespace: str) -> tuple[str, str]:
    """A counting listener Pod in `namespace`, accepting; returns (pod, ip)."""
    apply(kubectl, namespace, hardened_pod("listener", ["python3", "-c", counting_listener()], {"app": "listener"}))
    ip = wait_for(lambda: running_ip(kubectl, namespace, "listener"), timeout=120, what="the listener Pod")
    wait_listening(kubectl, namespace, "listener")
    return "listener", ip


def accepted(kubectl, namespace: str, pod: str) -> list[str]:
    """Every peer the listener accepted, but for wait_listening's own knock from 127.0.0.1."""
    log = kubectl("-n", namespace, "logs", pod).stdout
    peers = [line.split()[1] for line in log.splitlines() if line.startswith("ACCEPTED")]
    return [peer for peer in peers if peer != "127.0.0.1"]


def run_burst(kubectl, profile: str | tuple[str, ...], ip: str | None = None, count: int = BURST,
              timeout: float = 900, port: int = PORT, targets: list[tuple[str, int]] | None = None,
              namespace: str = SANDBOX_NS) -> dict[str, dict]:
    """Create `count` jobs at once in `namespace` (the burst release's by default), each trying
    `targets` (or ip:port) from its first instant; wait until all are final and return their
    statuses by name. With several profiles, the jobs take them in turn."""
    run = uuid.uuid4().hex[:6]
    profiles = (profile,) if isinstance(profile, str) else profile
    targets = targets or [(ip, port)]
    repos = {}
    for each in profiles:  # the attacker also tries DNS where the profile does not allow it
        repos[each] = f"burst-{run}-{each}"
        attacker = ATTACKER.format(targets=[tuple(target) for target in targets], check_dns=each != DNS_PROFILE)
        kubectl("-n", namespace, "create", "configmap", repos[each], f"--from-literal=test_net.py={attacker}")
    jobs = {f"burst-{run}-{index:02d}": profiles[index % len(profiles)] for index in range(count)}
    manifests = [
        {"apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob",
         "metadata": {"name": name, "namespace": namespace},
         "spec": {"command": "python3 -m pytest -q test_net.py",
                  "source": {"configMap": {"name": repos[each]}}, "networkProfile": each, "timeoutSeconds": 60}}
        for name, each in jobs.items()
    ]
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    deadline = time.monotonic() + timeout
    final: dict[str, dict] = {}
    while time.monotonic() < deadline and len(final) < count:
        items = json.loads(kubectl("-n", namespace, "get", "sandboxjobs", "-o", "json").stdout)["items"]
        for item in items:
            name = item["metadata"]["name"]
            if name in jobs and (item.get("status") or {}).get("phase") in TERMINAL:
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
    """No job reached a listener, and every command ran to completion: a lagging enforcer is
    waited for, never a reason to lose a job."""
    counts = summary(final)
    assert reached == [], f"sandbox Pods reached a listener from {reached}; jobs: {counts}"
    assert counts == {"Succeeded/Completed": len(final)}, counts  # the test saw nothing reachable
    return counts


def proof_waits(final: dict[str, dict]) -> str:
    """p50 / p90 / max of the jobs' wait for their egress proof, in seconds, for the test's output."""
    waits = sorted(status.get("egressCheckMs", 0) / 1000 for status in final.values())
    if not waits:
        return "no jobs"

    def pick(quantile: float) -> float:
        return waits[min(len(waits) - 1, int(quantile * len(waits)))]

    return f"proof wait p50 {pick(0.5):.2f}s p90 {pick(0.9):.2f}s max {waits[-1]:.2f}s"


def outside_listener_pod(port: int) -> dict:
    """A counting listener on the network of a node that is not reserved for sandboxes."""
    pod = hardened_pod("outside", ["python3", "-c", counting_listener(port)])
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": SANDBOX_LABEL, "operator": "DoesNotExist"}]}]}}}
    return pod


def start_outside_listener(kubectl, port: int):
    """The outside listener in a namespace of its own (only it needs the node's network); returns
    (namespace, pod, address). The caller deletes the namespace."""
    namespace = f"sa-e2e-outside-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged", "safeagent.ca/e2e=true")
    apply(kubectl, namespace, outside_listener_pod(port))
    address = wait_for(lambda: running_ip(kubectl, namespace, "outside"), timeout=120, what="the outside listener")
    wait_listening(kubectl, namespace, "outside", port)
    return namespace, "outside", address


def stop_outside_listener(kubectl, found) -> None:
    """Delete the outside listener and wait until it is gone: it holds a port on the node's own
    network, which the next run's listener needs (runs back to back, as `make soak` does)."""
    namespace, pod, _ = found
    kubectl("-n", namespace, "delete", "pod", pod, "--wait=true", "--timeout=90s", check=False, timeout=120)
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)
