"""Egress blocked from the command's first packet, under a burst of jobs (issue 10).

A second release of the chart (`burst.py`: execution preset, tiny requests) runs 30 jobs at
once per profile. Each job's
test connects, from the moment Python starts, to a listener Pod this test started, outside
every profile, retrying for 3 seconds. Before the pre-flight, 17 of 20 such jobs reached their
listener under `none`. Now the runner does not start the command until its Pod is provably
filtered, so the listener must see nothing.

With the test bed's NetworkPolicy enforcer removed, no Pod is ever filtered: every job must end
`EgressNotEnforced` with its command never started.
"""

from __future__ import annotations

import json

import pytest

from burst import accepted, assert_nothing_reached, counting_listener, run_burst, summary, wait_listening
from clusterlib import apply, hardened_pod, running_ip, wait_for


@pytest.fixture
def listener(kubectl, namespace):
    """A counting TCP listener Pod in the test's own namespace; returns (pod, ip)."""
    apply(kubectl, namespace, hardened_pod("listener", ["python3", "-c", counting_listener()], {"app": "listener"}))
    ip = wait_for(lambda: running_ip(kubectl, namespace, "listener"), timeout=120, what="the listener Pod")
    wait_listening(kubectl, namespace, "listener")
    return "listener", ip


@pytest.mark.parametrize("profile", ["none", "git-read"])
def test_a_burst_of_jobs_never_reaches_a_listener_outside_the_profile(kubectl, namespace, burst_release, listener, profile):
    pod, ip = listener
    final = run_burst(kubectl, profile, ip)
    counts = assert_nothing_reached(final, accepted(kubectl, namespace, pod))
    print(f"{profile}: {counts}")


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
