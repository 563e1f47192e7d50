"""The operator's /metrics on a real cluster, and the operator Pod's own NetworkPolicy.

Scrapes the in-cluster operator through `kubectl port-forward` (which reaches the Pod over its
own loopback, so no NetworkPolicy is involved) before and after two jobs, and checks that the
counts moved. Then checks the paths the chart's NetworkPolicy decides: a Pod in another
namespace can scrape through the metrics Service, cannot reach any other port of the operator
Pod, and the operator Pod reaches nothing but the API server.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import pytest
from sbj_helpers import SYSTEM_NS, operator_pods, require_operator

from clusterlib import KUBECTL, LISTENER, PORT, PROBE, SLEEPER, apply, hardened_pod, running_ip, wait_for

# Alone, after the other modules (`make e2e`): it counts how far the operator's metrics move with
# its own two jobs, which other tests' jobs side by side would move too.
pytestmark = pytest.mark.disruptive

REPO = {"README.md": "# metrics\n", "src/app.py": "print('hi')\n"}
# A port nothing in the operator Pod uses (8080 is its health port, which the policy opens).
OTHER_PORT = 18080
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format -> {(name, labels): value}."""
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            name, labels, number = match.groups()
            samples[(name, frozenset(LABEL.findall(labels or "")))] = float(number)
    return samples


def sample(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def operator_pod(kubectl):
    require_operator(kubectl)
    pods = operator_pods(kubectl)
    assert len(pods) == 1, f"expected one running operator Pod, found {len(pods)}"
    return pods[0]


@pytest.fixture(scope="module")
def metrics_port(operator_pod):
    ports = {port.get("name"): port["containerPort"] for port in operator_pod["spec"]["containers"][0].get("ports", [])}
    if "metrics" not in ports:
        pytest.fail("the operator Pod has no `metrics` port: install the chart with metrics.enabled=true")
    return ports["metrics"]


@pytest.fixture(scope="module")
def scrape(operator_pod, metrics_port):
    """A function that returns the operator's current metrics, through kubectl port-forward."""
    name = operator_pod["metadata"]["name"]
    forward = subprocess.Popen(
        [KUBECTL, "-n", SYSTEM_NS, "port-forward", f"pod/{name}", f":{metrics_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:NNNNN -> 9090"
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"kubectl port-forward said {line!r}: {forward.stderr.read() if forward.poll() is not None else ''}"
        url = f"http://127.0.0.1:{match.group(1)}/metrics"

        def read() -> dict:
            with urllib.request.urlopen(url, timeout=10) as response:
                return parse(response.read().decode())

        wait_for(lambda: read(), timeout=30, what="the first scrape")
        yield read
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_metrics_move_after_jobs(sandbox, scrape):
    before = scrape()
    assert ("safeagent_active_jobs", frozenset({("phase", "Running")})) in before
    allowed = sandbox.job("ls -la", sandbox.repo(REPO))
    denied = sandbox.job("cat README.md; rm -rf /workspace", sandbox.repo(REPO))
    sandbox.wait_phase(allowed, "Succeeded")
    assert sandbox.wait_phase(denied, "Denied")["reason"] == "shell_metacharacter"

    def moved(name, at_least=1, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels) >= at_least

    expected = [
        ("safeagent_decisions_total", {"verdict": "allow", "reason": "allowed"}, 1),
        ("safeagent_decisions_total", {"verdict": "deny", "reason": "shell_metacharacter"}, 1),
        ("safeagent_jobs_finished_total", {"phase": "Succeeded", "reason": "Completed"}, 1),
        ("safeagent_jobs_finished_total", {"phase": "Denied", "reason": "shell_metacharacter"}, 1),
        ("safeagent_audit_events_total", {"kind": "SandboxJob", "event": "SandboxLaunched"}, 1),
        ("safeagent_stage_duration_seconds_count", {"stage": "decision"}, 2),
        ("safeagent_stage_duration_seconds_count", {"stage": "total"}, 2),
        ("safeagent_stage_duration_seconds_count", {"stage": "launch"}, 1),
        ("safeagent_stage_duration_seconds_count", {"stage": "run"}, 1),
        ("safeagent_kube_requests_total", {"verb": "create", "resource": "pods"}, 1),
        ("safeagent_kube_requests_total", {"verb": "patch", "resource": "sandboxjobs/status"}, 2),
    ]
    # The audit record (and so the count) follows the status write the test saw: poll briefly.
    deadline = time.monotonic() + 30
    while True:
        after = scrape()
        missing = [(name, labels) for name, labels, least in expected if not moved(name, least, **labels)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not missing, f"did not move: {missing}"
    for stage in ("decision", "launch", "run", "total"):
        assert sample(after, "safeagent_stage_duration_seconds_sum", stage=stage) >= 0
    assert sample(after, "process_resident_memory_bytes") > 0


def _exec(kubectl, namespace, pod, *command, container=None, timeout=30):
    target = ["-c", container] if container else []
    return kubectl("-n", namespace, "exec", pod, *target, "--", *command, timeout=timeout, check=False)


def test_operator_network_policy_lets_in_only_metrics_and_health(kubectl, namespace, operator_pod, metrics_port):
    """From another namespace: the metrics Service answers; another port of the operator does not."""
    operator = operator_pod["metadata"]["name"]
    service = json.loads(kubectl("-n", SYSTEM_NS, "get", "service", "-l",
                                 "app.kubernetes.io/component=operator", "-o", "json").stdout)["items"]
    metrics_services = [item for item in service if any(p["name"] == "metrics" for p in item["spec"]["ports"])]
    assert len(metrics_services) == 1, "expected one metrics Service"
    cluster_ip = metrics_services[0]["spec"]["clusterIP"]
    port = next(p["port"] for p in metrics_services[0]["spec"]["ports"] if p["name"] == "metrics")

    apply(kubectl, namespace, hardened_pod("client", SLEEPER))
    wait_for(lambda: running_ip(kubectl, namespace, "client"), timeout=120, what="the client Pod")
    fetch = (
        "import sys, urllib.request\n"
        "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()[:100000])\n"
    )
    scraped = _exec(kubectl, namespace, "client", "python3", "-c", fetch, f"http://{cluster_ip}:{port}/metrics")
    assert scraped.returncode == 0 and "safeagent_decisions_total" in scraped.stdout, scraped.stderr

    # A listener on another port inside the operator Pod (it exits by itself after 60 s).
    listener = LISTENER.replace(f"{PORT}))", f"{OTHER_PORT}))").replace("s.listen(16)\n", "s.listen(16)\ns.settimeout(60)\n")
    assert str(OTHER_PORT) in listener and "settimeout" in listener
    started = subprocess.Popen(
        [KUBECTL, "-n", SYSTEM_NS, "exec", operator, "-c", "operator", "--", "python3", "-c", listener],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        inside = wait_for(
            lambda: "open" in (out := _exec(kubectl, SYSTEM_NS, operator, "python3", "-c", PROBE, "127.0.0.1",
                                            str(OTHER_PORT), container="operator").stdout) and out,
            timeout=30, what="the listener inside the operator Pod",
        )
        assert inside.strip() == "open"
        operator_ip = operator_pod["status"]["podIP"]
        from_client = _exec(kubectl, namespace, "client", "python3", "-c", PROBE, operator_ip, str(OTHER_PORT)).stdout
        assert from_client.strip().startswith("blocked"), f"port {OTHER_PORT} of the operator Pod is reachable: {from_client}"
    finally:
        started.terminate()
        started.wait(timeout=10)


def test_operator_pod_reaches_nothing_but_the_api_server(kubectl, namespace, operator_pod):
    """From the operator Pod: a listener in another namespace is unreachable."""
    apply(kubectl, namespace, hardened_pod("listener", ["python3", "-c", LISTENER]))
    apply(kubectl, namespace, hardened_pod("client", SLEEPER))
    listener_ip = wait_for(lambda: running_ip(kubectl, namespace, "listener"), timeout=120, what="the listener")
    wait_for(lambda: running_ip(kubectl, namespace, "client"), timeout=120, what="the client")
    # Control: the listener answers a Pod that no policy restricts.
    control = _exec(kubectl, namespace, "client", "python3", "-c", PROBE, listener_ip, str(PORT)).stdout.strip()
    assert control == "open", f"the listener does not answer at all: {control}"
    operator = operator_pod["metadata"]["name"]
    result = _exec(kubectl, SYSTEM_NS, operator, "python3", "-c", PROBE, listener_ip, str(PORT), container="operator")
    assert result.stdout.strip().startswith("blocked"), f"the operator Pod reached {listener_ip}: {result.stdout}"
