"""NetworkPolicy is enforced: a deny-all-egress Pod cannot reach a listener this test started.

Every connection targets a TCP listener Pod created by this test, nothing else. The same client Pod
reaches the listener once the policy is deleted, so the failure is the policy's doing, not a broken
listener or network.
"""

from __future__ import annotations

import json

import pytest

from clusterlib import apply, hardened_pod, wait_for

PORT = 8080
LISTENER = (
    "import socket\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    f"s.bind(('0.0.0.0', {PORT}))\n"
    "s.listen(16)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.sendall(b'pong')\n"
    "    c.close()\n"
)
# Prints "open" when it got the listener's reply, "blocked: <error>" otherwise; always exits 0.
PROBE = (
    "import socket, sys\n"
    "try:\n"
    "    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
    "    print('open' if c.recv(4) == b'pong' else 'blocked: bad reply')\n"
    "except OSError as e:\n"
    "    print('blocked:', e)\n"
)
DENY_EGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-egress"},
    "spec": {"podSelector": {"matchLabels": {"egress": "denied"}}, "policyTypes": ["Egress"]},
}


def probe(kubectl, namespace, pod, ip):
    out = kubectl("-n", namespace, "exec", pod, "--", "python3", "-c", PROBE, ip, str(PORT), timeout=30)
    return out.stdout.strip()


def running_ip(kubectl, namespace, pod):
    out = kubectl("-n", namespace, "get", "pod", pod, "-o", "json", check=False)
    if out.returncode != 0:
        return None
    status = json.loads(out.stdout)["status"]
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
    return ready and status.get("podIP")


@pytest.fixture
def pods(kubectl, namespace):
    """A listener, a client selected by the deny-egress policy and a client it does not select."""
    apply(kubectl, namespace, DENY_EGRESS)
    apply(kubectl, namespace, hardened_pod("listener", ["python3", "-c", LISTENER], {"role": "listener"}))
    sleeper = ["python3", "-c", "import time; time.sleep(3600)"]
    apply(kubectl, namespace, hardened_pod("denied", sleeper, {"egress": "denied"}))
    apply(kubectl, namespace, hardened_pod("allowed", sleeper, {"egress": "allowed"}))
    ips = {}
    for name in ("listener", "denied", "allowed"):
        ips[name] = wait_for(lambda n=name: running_ip(kubectl, namespace, n), timeout=180, what=f"{name} ready")
    return ips


def test_deny_all_egress_blocks_selected_pod_only(kubectl, namespace, pods):
    target = pods["listener"]
    # The unselected Pod reaches the listener: the listener and pod network work.
    assert wait_for(lambda: probe(kubectl, namespace, "allowed", target) == "open", timeout=60,
                    what="unselected Pod to reach the listener")
    # The selected Pod is blocked, every time (the enforcer may need a moment for a new Pod).
    wait_for(lambda: probe(kubectl, namespace, "denied", target).startswith("blocked"), timeout=60,
             what="policy to block the selected Pod")
    results = [probe(kubectl, namespace, "denied", target) for _ in range(5)]
    assert all(r.startswith("blocked") for r in results), results
    assert probe(kubectl, namespace, "allowed", target) == "open"

    # Without the policy the same Pod connects: the block was the policy's doing.
    kubectl("-n", namespace, "delete", "networkpolicy", "deny-egress")
    assert wait_for(lambda: probe(kubectl, namespace, "denied", target) == "open", timeout=60,
                    what="the formerly denied Pod to connect after the policy was deleted")
