"""NetworkPolicy is enforced: a deny-all-egress Pod cannot reach a listener this test started.

Every connection targets a TCP listener Pod created by this test, nothing else. The same client Pod
reaches the listener once the policy is deleted, so the failure is the policy's doing, not a broken
listener or network.
"""

from __future__ import annotations

import pytest

from clusterlib import LISTENER, SLEEPER, apply, hardened_pod, probe, running_ip, wait_for

DENY_EGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-egress"},
    "spec": {"podSelector": {"matchLabels": {"egress": "denied"}}, "policyTypes": ["Egress"]},
}


@pytest.fixture
def pods(kubectl, namespace):
    """A listener, a client selected by the deny-egress policy and a client it does not select."""
    apply(kubectl, namespace, DENY_EGRESS)
    apply(kubectl, namespace, hardened_pod("listener", ["python3", "-c", LISTENER], {"role": "listener"}))
    apply(kubectl, namespace, hardened_pod("denied", SLEEPER, {"egress": "denied"}))
    apply(kubectl, namespace, hardened_pod("allowed", SLEEPER, {"egress": "allowed"}))
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
