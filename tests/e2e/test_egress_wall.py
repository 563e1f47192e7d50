"""The node-level egress wall (configs/nftables-agent.conf) on the test bed's sandbox nodes (issue 10).

NetworkPolicy is enforced some time after a Pod gets its address; the pre-flight closes that gap
by waiting. The nftables wall needs no waiting: it filters by source address range, so it holds
for a Pod's first packet. `make cluster` loads it on every sandbox node (SANDBOX_NODES,
EGRESS_WALL in tests/cluster/up.sh) and labels the node safeagent.ca/egress-wall=nftables.

The destination outside the cluster is a listener this test starts on the network of a node
that is not walled (a hostNetwork Pod): an address outside every pod and service range, as a
host on the internet would be, but one the test owns.

- The wall alone: plain Pods on a walled node, in a namespace without any NetworkPolicy, try
  from their first instant to reach that listener and their own node's kubelet. None may, while
  the same Pods do reach a listener Pod inside the cluster (the wall leaves the cluster to
  NetworkPolicy) and a Pod on an unwalled node reaches both. With the ruleset removed for a moment,
  Pods on the same node do get through (then it is loaded again).
- The node's IPv6 link-local address, which no pod range covers, refuses a Pod too.
- The wall behind the operator: the pre-flight's bursts of SandboxJobs
  (test_egress_preflight.py) aim at the same kind of outside listener, and check that their Pods
  ran on the walled nodes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest

from burst import accepted, counting_listener, start_outside_listener, stop_outside_listener, wait_listening
from clusterlib import (
    SANDBOX_LABEL,
    WALL_LABEL,
    apply,
    hardened_pod,
    probe,
    running_ip,
    sandbox_placement,
    wait_for,
)

# Alone, after the other modules (`make e2e`): it takes the sandbox node's wall down and restarts the node.
pytestmark = pytest.mark.disruptive

# A port nothing on a kind node listens on; the listener shares the node's network.
WALL_PORT = 18093
KUBELET_PORT = 10250
PODS = 30

# Run in each probing Pod from its first instant: for 3 s, try every target; print what answered.
FIRST_PACKET = """\
import json, os, socket, time

targets = json.loads(os.environ["TARGETS"])
reached = {}
deadline = time.monotonic() + 3
while time.monotonic() < deadline and len(reached) < len(targets):
    for name, (host, port) in targets.items():
        if name in reached:
            continue
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            reached[name] = round(time.monotonic() - deadline + 3, 3)
        except OSError:
            pass
    time.sleep(0.02)
print("RESULT", json.dumps({name: name in reached for name in targets}), flush=True)
"""


@pytest.fixture(scope="module")
def walled_nodes(kubectl) -> list[dict]:
    nodes = json.loads(kubectl("get", "nodes", "-l", f"{WALL_LABEL}=nftables", "-o", "json").stdout)["items"]
    if not nodes:
        pytest.skip(f"no node labelled {WALL_LABEL}=nftables: the kind test bed's `make cluster` makes one "
                    "(SANDBOX_NODES=1, EGRESS_WALL=nftables, the defaults)")
    return nodes


@pytest.fixture(scope="module")
def placement(kubectl, walled_nodes) -> dict:
    """The Pod spec fields that send a Pod to the sandbox nodes (read once for the module)."""
    return sandbox_placement(kubectl)


@pytest.fixture(scope="module")
def outside_listener(kubectl, walled_nodes):
    """A counting listener on an unwalled node's own network; returns (namespace, pod, address)."""
    found = start_outside_listener(kubectl, WALL_PORT)
    yield found
    stop_outside_listener(kubectl, found)


def node_exec(node: str, *command: str, env: dict[str, str] | None = None) -> str:
    if shutil.which("docker") is None:
        pytest.skip("needs docker to read a kind node's nftables ruleset")
    flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
    proc = subprocess.run(["docker", "exec", *flags, node, *command], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 and "No such container" in proc.stderr:
        pytest.skip(f"node {node} is not a local kind container")
    assert proc.returncode == 0, f"{' '.join(command)} on {node}: {proc.stderr}"
    return proc.stdout


def test_every_walled_node_has_the_wall_for_its_own_pod_range(walled_nodes):
    for node in walled_nodes:
        name, cidr = node["metadata"]["name"], node["spec"]["podCIDR"]
        ruleset = node_exec(name, "nft", "list", "table", "inet", "safeagent_egress")
        assert f"ip saddr {cidr} jump sandbox_egress" in ruleset, ruleset
        assert f"ip saddr {cidr} jump sandbox_to_node" in ruleset, ruleset
        assert 'iifname "veth*" jump sandbox_to_node' in ruleset, ruleset
        taints = {(t["key"], t.get("value"), t["effect"]) for t in node["spec"].get("taints", [])}
        assert (SANDBOX_LABEL, "true", "NoSchedule") in taints, f"{name} is walled but not reserved: {taints}"


def first_packet_pod(name: str, targets: dict[str, list], placement: dict) -> dict:
    pod = hardened_pod(name, ["python3", "-c", FIRST_PACKET], {"app": "first-packet"})
    env = [{"name": "TARGETS", "value": json.dumps(targets)}]
    pod["spec"]["containers"][0]["env"] = env
    pod["spec"].update(placement)
    return pod


def results(kubectl, namespace: str, names: list[str]) -> dict[str, dict]:
    def finished():
        pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app=first-packet", "-o", "json").stdout)
        done = {p["metadata"]["name"]: p for p in pods["items"] if p["status"].get("phase") in ("Succeeded", "Failed")}
        return done if set(names) <= set(done) else None

    pods = wait_for(finished, timeout=300, interval=2, what=f"{len(names)} probing Pods to finish")
    found = {}
    for name in names:
        log = kubectl("-n", namespace, "logs", name).stdout
        line = [row for row in log.splitlines() if row.startswith("RESULT ")]
        assert line, f"{name} printed no result: {log!r}"
        found[name] = {"node": pods[name]["spec"]["nodeName"], **json.loads(line[0][len("RESULT "):])}
    return found


@pytest.fixture
def inside_listener(kubectl, namespace) -> str:
    """A counting listener Pod inside the cluster (on an unwalled node); returns its address."""
    apply(kubectl, namespace, hardened_pod("inside", ["python3", "-c", counting_listener(WALL_PORT)]))
    inside = wait_for(lambda: running_ip(kubectl, namespace, "inside"), timeout=120, what="the inside listener")
    wait_listening(kubectl, namespace, "inside", WALL_PORT)
    return inside


def probe_burst(kubectl, namespace: str, outside: str, inside: str, placed: dict[str, dict]) -> dict[str, dict]:
    """One first-packet Pod per name, with that name's placement, all created at once; what each
    reached of: the outside listener, the inside listener, its own node's kubelet."""
    # The kubelet of the Pod's own node, by the node's address from the downward API.
    targets = {"outside": [outside, WALL_PORT], "inside": [inside, WALL_PORT], "own-node": ["$(HOST_IP)", KUBELET_PORT]}
    assert not json.loads(kubectl("-n", namespace, "get", "networkpolicy", "-o", "json").stdout)["items"]
    pods = []
    for name, placement in placed.items():
        pod = first_packet_pod(name, targets, placement)
        pod["spec"]["containers"][0]["env"].insert(0, {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}})
        pods.append(pod)
    kubectl("-n", namespace, "create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    return results(kubectl, namespace, list(placed))


def reached(found: dict[str, dict]) -> dict[str, int]:
    return {key: sum(row[key] for row in found.values()) for key in ("outside", "inside", "own-node")}


def test_the_wall_alone_stops_a_burst_at_the_first_packet(kubectl, namespace, walled_nodes, placement, outside_listener,
                                                          inside_listener):
    """No NetworkPolicy in this namespace: whatever stops a packet here is the wall."""
    listener_ns, listener_pod, outside = outside_listener
    walled = {node["metadata"]["name"] for node in walled_nodes}
    before = len(accepted(kubectl, listener_ns, listener_pod))
    placed = {f"walled-{index:02d}": placement for index in range(PODS)}
    found = probe_burst(kubectl, namespace, outside, inside_listener, {**placed, "unwalled": {}})

    control = found.pop("unwalled")
    assert control["node"] not in walled, control
    # The targets answer: from a node without the wall, the same Pod reaches all three.
    assert control == {"node": control["node"], "outside": True, "inside": True, "own-node": True}, control
    assert {row["node"] for row in found.values()} <= walled, found
    print(f"{PODS} Pods on walled nodes, reached: {reached(found)}")
    assert reached(found) == {"outside": 0, "inside": PODS, "own-node": 0}, found
    peers = accepted(kubectl, listener_ns, listener_pod)[before:]
    assert len(peers) == 1, f"the outside listener saw {peers}: only the unwalled Pod may reach it"


def test_without_the_wall_the_same_pods_get_through(kubectl, namespace, walled_nodes, placement, outside_listener,
                                                    inside_listener):
    """The counterfactual on the same node: with the ruleset removed, Pods placed as above reach
    the outside listener and their kubelet, so the zeros above are the wall's doing. The wall is
    loaded again (as up.sh loaded it) and checked to be back, whatever happened."""
    node = walled_nodes[0]["metadata"]["name"]
    cidr = walled_nodes[0]["spec"]["podCIDR"]
    loader = "/etc/safeagent/apply-nftables.sh"
    if node_exec(node, "sh", "-c", f"test -x {loader} && echo present || true").strip() != "present":
        pytest.skip(f"{node} has no {loader}: its wall was not loaded by tests/cluster/up.sh, so this test cannot reload it")
    _, _, outside = outside_listener
    node_exec(node, loader, "--remove")
    try:
        placed = {f"unguarded-{index}": {**placement, "nodeName": node} for index in range(5)}
        found = probe_burst(kubectl, namespace, outside, inside_listener, placed)
    finally:
        node_exec(node, loader, env={"SAFEAGENT_NFT_POD_CIDR": cidr})
        assert f"ip saddr {cidr} jump sandbox_egress" in node_exec(node, "nft", "list", "table", "inet", "safeagent_egress")
    print(f"5 Pods on {node} without the wall, reached: {reached(found)}")
    assert reached(found) == {"outside": 5, "inside": 5, "own-node": 5}, found


def test_the_wall_refuses_the_node_by_its_link_local_address(kubectl, namespace, walled_nodes, placement):
    """A Pod has an automatic IPv6 link-local address, outside every pod range: the wall matches
    traffic to the node by the Pod's interface, so that address reaches nothing on the node."""
    node = walled_nodes[0]["metadata"]["name"]
    # A listener on the walled node's own network, on every IPv6 (and IPv4) address.
    listener = counting_listener(WALL_PORT).replace("socket.socket()", "socket.socket(socket.AF_INET6)")
    listener = listener.replace("s.bind(('0.0.0.0',", "s.bind(('::',")
    host = hardened_pod("node-listener", ["python3", "-c", listener])
    host["spec"].update(placement, hostNetwork=True)
    client = hardened_pod("client", ["python3", "-c", "import time; time.sleep(600)"])
    client["spec"].update(placement)
    client["spec"]["nodeName"] = host["spec"]["nodeName"] = node
    label = f"sa-e2e-wall-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", label)
    try:
        kubectl("label", "namespace", label, "pod-security.kubernetes.io/enforce=privileged", "safeagent.ca/e2e=true")
        apply(kubectl, label, host)
        apply(kubectl, label, client)
        wait_for(lambda: running_ip(kubectl, label, "node-listener"), timeout=120, what="the node listener")
        wait_listening(kubectl, label, "node-listener", WALL_PORT)
        pod_ip = wait_for(lambda: running_ip(kubectl, label, "client"), timeout=120, what="the client Pod")
        # The node's end of the Pod's veth pair, and its link-local address.
        device = node_exec(node, "ip", "-o", "route", "get", pod_ip).split(" dev ")[1].split()[0]
        addresses = node_exec(node, "ip", "-o", "-6", "addr", "show", "dev", device, "scope", "link").split()
        if "inet6" not in addresses:
            pytest.skip(f"{device} on {node} has no IPv6 link-local address (IPv6 is off on this node)")
        link_local = addresses[addresses.index("inet6") + 1].split("/")[0]
        # From the node itself the listener answers on that address (it is a real target), once the
        # new address has passed duplicate address detection.
        def from_node():
            done = subprocess.run(["docker", "exec", node, "bash", "-c",
                                   f"exec 3<>/dev/tcp/{link_local}%{device}/{WALL_PORT} && echo open"],
                                  capture_output=True, text=True, timeout=30)
            return done.stdout.strip() == "open"

        wait_for(from_node, timeout=30, what=f"the node listener to answer on {link_local}%{device}")
        via_v6 = probe(kubectl, label, "client", f"{link_local}%eth0", WALL_PORT)
        assert via_v6.startswith("blocked"), via_v6
    finally:
        # The listener holds a port on the node's network: gone before the next run needs it.
        kubectl("-n", label, "delete", "pod", "node-listener", "--wait=true", "--timeout=90s", check=False, timeout=120)
        kubectl("delete", "namespace", label, "--wait=false", check=False)


def test_a_restarted_sandbox_node_loads_its_wall_before_its_kubelet(kubectl, namespace, walled_nodes, placement):
    """The wall lives in the node's network namespace, which a restarted node container gets anew.
    The node image's safeagent-egress-wall unit loads it at boot and the kubelet requires that
    unit, so no Pod runs there unwalled. Restarts the node, so it runs last in this module, and
    waits until the node runs Pods and its NetworkPolicy enforcer again."""
    node = walled_nodes[0]["metadata"]["name"]
    cidr = walled_nodes[0]["spec"]["podCIDR"]
    unit = "safeagent-egress-wall"
    if node_exec(node, "systemctl", "show", "-p", "UnitFileState", "--value", unit).strip() != "enabled":
        pytest.skip(f"{node} has no {unit} unit (not the test bed's node image)")
    restarted = subprocess.run(["docker", "restart", node], capture_output=True, text=True, timeout=180)
    assert restarted.returncode == 0, restarted.stderr

    def active(name: str) -> bool:
        proc = subprocess.run(["docker", "exec", node, "systemctl", "is-active", name], capture_output=True, text=True)
        return proc.stdout.strip() == "active"

    wait_for(lambda: active("kubelet"), timeout=120, what=f"the kubelet on {node} after the restart")
    assert active(unit), node_exec(node, "systemctl", "status", "--no-pager", unit)

    def since_boot(name: str, prop: str) -> int:
        return int(node_exec(node, "systemctl", "show", "-p", prop, "--value", name).strip())

    assert since_boot(unit, "ActiveEnterTimestampMonotonic") < since_boot("kubelet", "ExecMainStartTimestampMonotonic")
    assert f"ip saddr {cidr} jump sandbox_egress" in node_exec(node, "nft", "list", "table", "inet", "safeagent_egress")

    # Back in service for the tests after this one: a Pod runs there and its log is readable,
    # and the NetworkPolicy enforcer's container runs again.
    pod = hardened_pod("after-restart", ["python3", "-c", "print('ran')"])
    pod["spec"].update(placement, nodeName=node)
    apply(kubectl, namespace, pod)

    def ran() -> bool:
        phase = kubectl("-n", namespace, "get", "pod", "after-restart", "-o", "jsonpath={.status.phase}").stdout
        return phase == "Succeeded" and kubectl("-n", namespace, "logs", "after-restart").stdout.strip() == "ran"

    wait_for(ran, timeout=180, interval=2, what=f"a Pod to run on {node} after the restart")
    wait_for(lambda: node_exec(node, "crictl", "ps", "--state", "Running", "--name", "kube-router", "-q").strip(),
             timeout=180, interval=2, what=f"kube-router to run on {node} again")
