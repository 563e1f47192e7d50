"""The profile NetworkPolicies the operator builds are enforced by the cluster.

The policies come from safeagent.builders exactly as the operator creates them; the client Pods
carry the labels of sandbox Pods. Every connection targets a listener Pod this test started.
"""

from __future__ import annotations

from clusterlib import LISTENER, PORT, SLEEPER, apply, hardened_pod, probe, running_ip, wait_for

from safeagent import builders
from safeagent.config import parse_config
from safeagent.models import NetworkProfile

def sandbox_labels(profile: NetworkProfile) -> dict[str, str]:
    return {builders.LABEL_SANDBOX: "true", builders.LABEL_PROFILE: profile.value}


def test_profile_policies_block_and_allow_as_configured(kubectl, namespace):
    apply(kubectl, namespace, hardened_pod("listener", ["python3", "-c", LISTENER], {"role": "listener"}))
    listener_ip = wait_for(lambda: running_ip(kubectl, namespace, "listener"), timeout=180, what="listener ready")
    config = parse_config(
        {"networkProfiles": {"git-read": {"egress": [{"cidr": f"{listener_ip}/32", "ports": [{"port": PORT}]}]},
                             "model-only": {"egress": [{"cidr": f"{listener_ip}/32", "ports": [{"port": PORT + 1}]}]}}}
    )
    for profile in NetworkProfile:
        apply(kubectl, namespace, builders.build_network_policy(namespace, profile, config))
    clients = {
        "plain": {},
        "none": sandbox_labels(NetworkProfile.NONE),
        "git-read": sandbox_labels(NetworkProfile.GIT_READ),
        "model-only": sandbox_labels(NetworkProfile.MODEL_ONLY),
    }
    for name, labels in clients.items():
        apply(kubectl, namespace, hardened_pod(f"client-{name}", SLEEPER, labels))
    for name in clients:
        wait_for(lambda n=name: running_ip(kubectl, namespace, f"client-{n}"), timeout=180, what=f"{name} ready")

    def reach(name: str) -> str:
        return probe(kubectl, namespace, f"client-{name}", listener_ip)

    # A Pod the policies do not select reaches the listener: the network itself works.
    assert wait_for(lambda: reach("plain") == "open", timeout=60, what="unselected client to connect")
    # git-read allows exactly the configured CIDR and port.
    assert wait_for(lambda: reach("git-read") == "open", timeout=60, what="git-read client to connect")
    # none denies everything; model-only allows another port only.
    for name in ("none", "model-only"):
        wait_for(lambda n=name: reach(n).startswith("blocked"), timeout=60, what=f"{name} to be blocked")
        results = [reach(name) for _ in range(3)]
        assert all(r.startswith("blocked") for r in results), (name, results)
    # Ingress to sandbox Pods is denied too: the plain client cannot reach a sandbox Pod.
    apply(kubectl, namespace, hardened_pod("sandbox-listener", ["python3", "-c", LISTENER],
                                           sandbox_labels(NetworkProfile.GIT_READ)))
    sandbox_ip = wait_for(lambda: running_ip(kubectl, namespace, "sandbox-listener"), timeout=180,
                          what="sandbox listener ready")
    wait_for(lambda: probe(kubectl, namespace, "client-plain", sandbox_ip).startswith("blocked"), timeout=60,
             what="ingress to a sandbox Pod to be blocked")
