"""Egress blocked from the command's first packet, under bursts and floods (issues 10 and 15).

A second release of the chart (`burst.py`: execution preset, tiny requests) runs SAFEAGENT_BURST
(30) jobs at once, taking the profiles `none`, `git-read` and `package-mirror` (which this release
lets reach DNS) in turn; `make soak` (SAFEAGENT_SOAK=1) also runs a burst of that size per profile. Each job's test connects, from the moment Python starts, to two listeners this test
started, outside every profile: a Pod inside the cluster and a process on a node's own network.
Before the pre-flight, 17 of 20 such jobs reached their listener under `none`. Now the runner
does not start the command until its Pod is provably filtered, and waits for a lagging enforcer
rather than giving up: every job must complete and the listeners must see nothing.

The proof cannot be forged by load: the product's own check, run in a Pod that no NetworkPolicy
selects while other Pods flood the canary, never says "enforced", while a Pod that a policy does
select is still proven during the same flood.

With the test bed's NetworkPolicy enforcer removed and its rules flushed, no Pod is ever
filtered: every job must end `EgressNotEnforced` within its stated wait, its command never started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from burst import (
    BURST,
    DNS_PROFILE,
    RELEASE,
    RELEASE_NS,
    SANDBOX_NS,
    accepted,
    assert_nothing_reached,
    canary,
    proof_waits,
    run_burst,
    start_outside_listener,
    stop_outside_listener,
    summary,
)
from clusterlib import WALL_LABEL, apply, hardened_pod, running_ip, sandbox_placement, wait_for

# Alone, after the other modules (`make e2e`): it removes the test bed's NetworkPolicy enforcer,
# floods the canary and bursts 30 jobs.
pytestmark = pytest.mark.disruptive

OUTSIDE_PORT = 18094
FLOOD_SECONDS = 45
CHECK_SECONDS = 30


@pytest.fixture(scope="module")
def outside(kubectl):
    """A listener on a (non-sandbox) node's own network: (namespace, pod, address)."""
    found = start_outside_listener(kubectl, OUTSIDE_PORT)
    yield found
    stop_outside_listener(kubectl, found)


PROFILES = ("none", "git-read", DNS_PROFILE)
BURSTS = [PROFILES, *((each,) for each in PROFILES)]


@pytest.mark.parametrize("profile", BURSTS, ids=["mixed", *PROFILES])
def test_a_burst_of_jobs_completes_and_reaches_no_listener(kubectl, namespace, burst_release, listener, outside,
                                                           profile):
    if len(profile) == 1 and os.environ.get("SAFEAGENT_SOAK") != "1":
        pytest.skip("a burst per profile is a soak test: `make soak` runs it (SAFEAGENT_SOAK=1); CI runs the mixed one")
    pod, ip = listener
    outside_ns, outside_pod, outside_ip = outside
    before = len(accepted(kubectl, outside_ns, outside_pod))
    final = run_burst(kubectl, profile, targets=[(ip, 8080), (outside_ip, OUTSIDE_PORT)])
    reached = accepted(kubectl, namespace, pod) + accepted(kubectl, outside_ns, outside_pod)[before:]
    counts = assert_nothing_reached(final, reached)
    print(f"{'+'.join(profile)}, burst of {BURST}: {counts}; {proof_waits(final)}")
    assert {status.get("egressProof") for status in final.values()} <= {"refusal", "silence"}
    walled = {node["metadata"]["name"] for node in
              json.loads(kubectl("get", "nodes", "-l", f"{WALL_LABEL}=nftables", "-o", "json").stdout)["items"]}
    if walled:  # on the test bed the jobs ran behind the node wall too
        pods = {status["podName"] for status in final.values()}
        events = json.loads(kubectl("-n", SANDBOX_NS, "get", "events", "--field-selector", "reason=Scheduled",
                                    "-o", "json").stdout)["items"]
        nodes = {event["message"].rsplit(" ", 1)[-1] for event in events if event["involvedObject"]["name"] in pods}
        assert nodes and nodes <= walled, f"sandbox Pods scheduled on {nodes}, walled nodes are {walled}"


# --------------------------------------------------------------------------- a flooded canary

# Floods the canary's ports with connections (each reset at once) from several processes, for a
# bounded time and count; prints how many connected.
FLOODER = """\
import json, os, socket, struct, sys, time
host, ports, seconds = sys.argv[1], [int(p) for p in sys.argv[2].split(",")], float(sys.argv[3])
linger = struct.pack("ii", 1, 0)
children = []
for worker in range(4):
    pid = os.fork()
    if pid == 0:
        made = {"connected": 0, "failed": 0}
        end = time.monotonic() + seconds
        while time.monotonic() < end and made["connected"] + made["failed"] < 2_000_000:
            for port in ports:
                s = socket.socket()
                s.settimeout(0.5)
                try:
                    s.connect((host, port))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    made["connected"] += 1
                except OSError:
                    made["failed"] += 1
                s.close()
        print("FLOOD", json.dumps(made), flush=True)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""

# The product's own pre-flight, again and again for a while, with both proofs; one line each.
CHECKER = """\
import json, sys, time
from safeagent.sandbox import preflight
spec, seconds = json.loads(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + seconds
while time.monotonic() < end:
    for proof in ("refusal", "silence"):
        print("CHECK", json.dumps(preflight.check({**spec, "proof": proof})), flush=True)
"""


def lines(kubectl, namespace: str, pod: str, prefix: str) -> list[dict]:
    log = kubectl("-n", namespace, "logs", pod).stdout
    return [json.loads(line[len(prefix) + 1:]) for line in log.splitlines() if line.startswith(prefix + " ")]


def finished(kubectl, namespace: str, pods: list[str]) -> bool:
    found = json.loads(kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)["items"]
    phases = {pod["metadata"]["name"]: pod["status"].get("phase") for pod in found}
    return all(phases.get(name) in ("Succeeded", "Failed") for name in pods)


def test_a_flooded_canary_never_proves_an_unfiltered_pod(kubectl, namespace, burst_release):
    """Flooders in the sandbox namespace (which the canary admits) and outside it hit both ports.
    Meanwhile a Pod that no NetworkPolicy selects runs the product's check: it must never say
    "enforced". A Pod that the `none` policy does select runs the same check: it must still be
    proven during the flood, so the canary kept serving."""
    run_burst(kubectl, "none", "127.0.0.1", count=1)  # the `none` NetworkPolicy exists from here on
    host, ports = canary(kubectl)
    spec = {"host": host, "openPort": ports["open"], "closedPort": ports["closed"], "deadlineSeconds": 3}
    placement = sandbox_placement(kubectl)
    both = f"{ports['open']},{ports['closed']}"
    pods = {
        (SANDBOX_NS, "flood-inside"): hardened_pod("flood-inside", ["python3", "-c", FLOODER, host, both,
                                                                    str(FLOOD_SECONDS)]),
        (namespace, "flood-outside"): hardened_pod("flood-outside", ["python3", "-c", FLOODER, host, both,
                                                                     str(FLOOD_SECONDS)]),
        (SANDBOX_NS, "unfiltered"): hardened_pod("unfiltered", ["python3", "-c", CHECKER, json.dumps(spec),
                                                                str(CHECK_SECONDS)]),
        (SANDBOX_NS, "filtered"): hardened_pod(
            "filtered", ["python3", "-c", CHECKER, json.dumps(spec), str(CHECK_SECONDS)],
            {"safeagent.ca/sandbox": "true", "safeagent.ca/network-profile": "none"}),
    }
    for (ns, name), pod in pods.items():
        if name in ("unfiltered", "filtered"):
            pod["spec"].update(placement)  # where sandbox Pods run
        pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                     "requests": {"cpu": "10m", "memory": "32Mi"}}
    try:
        for (ns, name), pod in pods.items():
            if name.startswith("flood"):
                apply(kubectl, ns, pod)
        wait_for(lambda: all(running_ip(kubectl, ns, name) for ns, name in pods if name.startswith("flood")),
                 timeout=120, what="the flooders to run")
        for (ns, name), pod in pods.items():
            if not name.startswith("flood"):
                apply(kubectl, ns, pod)
        wait_for(lambda: finished(kubectl, SANDBOX_NS, ["unfiltered", "filtered", "flood-inside"])
                 and finished(kubectl, namespace, ["flood-outside"]),
                 timeout=FLOOD_SECONDS + CHECK_SECONDS + 180, interval=2, what="the flood and the checks to end")
        unfiltered = lines(kubectl, SANDBOX_NS, "unfiltered", "CHECK")
        filtered = lines(kubectl, SANDBOX_NS, "filtered", "CHECK")
        inside = lines(kubectl, SANDBOX_NS, "flood-inside", "FLOOD")
        outside = lines(kubectl, namespace, "flood-outside", "FLOOD")
    finally:
        for ns, name in pods:
            kubectl("-n", ns, "delete", "pod", name, "--wait=false", "--ignore-not-found", check=False)
    flood = {key: sum(worker[key] for worker in inside) for key in ("connected", "failed")}
    print(f"flood from the sandbox namespace: {flood}; from outside: {outside}")
    print(f"unfiltered Pod: {len(unfiltered)} checks, filtered Pod: {len(filtered)} checks, "
          f"proven in ms: {sorted(check['elapsedMs'] for check in filtered if check['enforced'])}")
    assert flood["connected"] > 1000, f"the flood was not a flood: {flood}"
    assert all(worker["connected"] == 0 for worker in outside), f"the canary admitted a Pod outside: {outside}"
    assert len(unfiltered) >= 4, unfiltered
    assert not [check for check in unfiltered if check["enforced"]], "a flood forged the proof"
    assert any(check["enforced"] and check["proof"] == "refusal" for check in filtered), filtered


# --------------------------------------------------------------------------- no enforcer at all

# Removes kube-router's own chains and the jumps to them (its iptables rules outlive its DaemonSet).
FLUSH = r"""
set -e
for kind in iptables ip6tables; do
  command -v $kind-save >/dev/null || continue
  $kind-save | grep -vE 'KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-' | $kind-restore
  ! $kind-save | grep -qE 'KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-'
done
"""


def kind_nodes(kubectl) -> list[str]:
    names = kubectl("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    if shutil.which("docker") is None:
        pytest.skip("needs docker to flush the enforcer's rules on the kind nodes")
    for name in names:
        if subprocess.run(["docker", "inspect", name], capture_output=True).returncode != 0:
            pytest.skip(f"node {name} is not a local kind container: its enforcer's rules cannot be flushed here")
    return names


def test_without_an_enforcer_no_command_runs(kubectl, namespace, burst_release, listener):
    """kube-router (the test bed's enforcer) scheduled nowhere and its rules flushed on every
    node: no Pod is ever filtered, so every job ends EgressNotEnforced within its stated wait
    (deadlineSeconds + perPendingPodSeconds for each Pod pending at its launch) and its command
    never starts."""
    found = kubectl("-n", "kube-system", "get", "daemonset", "kube-router", "-o", "json", check=False)
    if found.returncode != 0:
        pytest.skip("no kube-router DaemonSet in kube-system: this test removes the test bed's own enforcer")
    nodes = kind_nodes(kubectl)
    pod, ip = listener
    count = 5
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"safeagent.ca/no-such-node": "true"}}}}}
    kubectl("-n", "kube-system", "patch", "daemonset", "kube-router", "--type", "merge", "-p", json.dumps(patch))
    try:
        wait_for(lambda: not json.loads(kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-router",
                                                "-o", "json").stdout)["items"],
                 timeout=120, what="kube-router to stop")
        for node in nodes:
            flushed = subprocess.run(["docker", "exec", node, "bash", "-c", FLUSH], capture_output=True, text=True,
                                     timeout=60)
            assert flushed.returncode == 0, f"flushing kube-router's rules on {node}: {flushed.stderr}"
        final = run_burst(kubectl, "none", ip, count=count, timeout=600)
    finally:
        restore = {"spec": {"template": {"spec": {"nodeSelector": None}}}}
        kubectl("-n", "kube-system", "patch", "daemonset", "kube-router", "--type", "merge", "-p", json.dumps(restore))
        kubectl("-n", "kube-system", "rollout", "status", "daemonset", "kube-router", "--timeout=180s")
        # The enforcer is back when a job's pre-flight passes again (the suite goes on after this).
        wait_for(lambda: summary(run_burst(kubectl, "none", ip, count=1, timeout=300)) == {"Succeeded/Completed": 1},
                 timeout=600, interval=1, what="NetworkPolicy enforcement to come back")
    counts = summary(final)
    assert counts == {"Failed/EgressNotEnforced": count}, counts
    assert all("exitCode" not in status and "stdout" not in status for status in final.values())
    assert accepted(kubectl, namespace, pod) == [], "a command ran without an enforcer"
    # The stated wait: 30 s (the chart's default) + 2 s per Pod pending at launch; a round that
    # began before it may end up to ~3 s after.
    config = yaml.safe_load(kubectl("-n", RELEASE_NS, "get", "configmap", f"{RELEASE}-config",
                                    "-o", "jsonpath={.data.config\\.yaml}").stdout)["egressCheck"]
    longest = config["deadlineSeconds"] + config["perPendingPodSeconds"] * (count + 2)
    waits = [status["egressCheckMs"] / 1000 for status in final.values()]
    print(f"no enforcer: {counts}; waited {sorted(waits)} s (stated at most {longest} s + one round)")
    assert all(config["deadlineSeconds"] <= wait <= longest + 3.5 for wait in waits), waits


# --------------------------------------------------------------------------- make soak only

# A sandbox job's "test" that floods the canary's open port (all a filtered sandbox may reach).
FLOOD_JOB = """\
import socket, struct, time
def test_flood():
    end, made = time.monotonic() + {seconds}, 0
    while time.monotonic() < end and made < 2_000_000:
        s = socket.socket()
        s.settimeout(0.5)
        try:
            s.connect(("{host}", {port}))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            made += 1
        except OSError:
            pass
        s.close()
    print("FLOODED", made)
"""


@pytest.mark.parametrize("profile", ["none", "git-read", DNS_PROFILE])
def test_a_burst_completes_while_the_canary_is_flooded(kubectl, namespace, burst_release, listener, outside,
                                                       profile):
    """`make soak`: a burst while a Pod outside the sandbox namespaces and a sandbox job both
    flood the canary: every job completes, nothing is reached, and the proof waits are printed."""
    if os.environ.get("SAFEAGENT_SOAK") != "1":
        pytest.skip("a soak test: `make soak` runs it (SAFEAGENT_SOAK=1), CI does not")
    pod, ip = listener
    outside_ns, outside_pod, outside_ip = outside
    host, ports = canary(kubectl)
    seconds = 300
    flooder = hardened_pod("flood-outside", ["python3", "-c", FLOODER, host, f"{ports['open']},{ports['closed']}",
                                             str(seconds)])
    apply(kubectl, namespace, flooder)
    repo = f"flood-{profile}"
    kubectl("-n", SANDBOX_NS, "create", "configmap", repo, "--from-literal=test_flood.py="
            + FLOOD_JOB.format(seconds=seconds, host=host, port=ports["open"]))
    kubectl("-n", SANDBOX_NS, "create", "-f", "-", input=json.dumps({
        "apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob",
        "metadata": {"name": repo, "namespace": SANDBOX_NS},
        "spec": {"command": "python3 -m pytest -q -s test_flood.py", "source": {"configMap": {"name": repo}},
                 "networkProfile": "none", "timeoutSeconds": seconds + 60}}))
    try:
        wait_for(lambda: json.loads(kubectl("-n", SANDBOX_NS, "get", "sbj", repo, "-o", "json").stdout)
                 .get("status", {}).get("phase") == "Running", timeout=120, what="the flooding job to run")
        before = len(accepted(kubectl, outside_ns, outside_pod))
        final = run_burst(kubectl, profile, targets=[(ip, 8080), (outside_ip, OUTSIDE_PORT)])
        reached = accepted(kubectl, namespace, pod) + accepted(kubectl, outside_ns, outside_pod)[before:]
        counts = assert_nothing_reached(final, reached)
        print(f"{profile}, burst of {BURST} under a flood: {counts}; {proof_waits(final)}")
    finally:
        kubectl("-n", namespace, "delete", "pod", "flood-outside", "--wait=false", check=False)
        kubectl("-n", SANDBOX_NS, "delete", "sbj", repo, "--wait=false", check=False)
