"""Fixtures for tests that need a real cluster: whatever cluster KUBECONFIG (or ~/.kube/config) points at.

`make e2e` brings up the kind test bed first; against another cluster, run `pytest tests/e2e` with
KUBECONFIG set and the images loaded (docs/testbed.md, "On your own cluster").
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from clusterlib import KUBECTL, nodes_without_pid_limit, run_kubectl


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "disruptive: takes down or floods something every other test needs (the enforcer, the wall, the "
        "operator), or needs the operator to itself (its metrics); `make e2e` runs these modules alone, "
        "after the others have run side by side",
    )


def pytest_sessionstart(session):
    if shutil.which(KUBECTL) is None:
        pytest.exit(f"e2e: {KUBECTL} not found on PATH (run `make cluster` or set KUBECTL)", returncode=2)
    proc = subprocess.run([KUBECTL, "get", "--raw", "/readyz"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.exit(
            "e2e: no reachable cluster (KUBECONFIG / current context): " + proc.stderr.strip()
            + "\nRun `make cluster` for the kind test bed.",
            returncode=2,
        )
    unlimited = nodes_without_pid_limit()
    if unlimited:
        # The chart's default (sandbox.pids.required: true) makes every job end ResourcesNotLimited
        # there; say so once, rather than let each test fail on it in turn.
        pytest.exit(
            f"e2e: the kubelet of {', '.join(unlimited)} sets no podPidsLimit, so no sandbox Pod there has a "
            "PID bound and every SandboxJob would end ResourcesNotLimited (README, 'PID limit'). "
            "Set podPidsLimit on the sandbox nodes (the kind test bed does: `make cluster`).",
            returncode=2,
        )


@pytest.fixture(scope="session")
def kubectl():
    return run_kubectl


@pytest.fixture(scope="session")
def k8s():
    from kubernetes import client, config

    config.load_kube_config()
    api = client.ApiClient()
    yield api
    api.close()


@pytest.fixture
def namespace(kubectl):
    """A fresh namespace that enforces Pod Security `restricted`; deleted after the test."""
    name = f"sa-e2e-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl(
        "label", "namespace", name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "safeagent.ca/e2e=true",
    )
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)



@pytest.fixture(scope="session")
def burst_release(kubectl):
    """A second release of the chart for bursts of jobs (burst.py), shared by the modules that use it."""
    from burst import install_burst_release, remove_burst_release

    install_burst_release(kubectl)
    yield
    remove_burst_release(kubectl)


@pytest.fixture
def listener(kubectl, namespace):
    """A counting TCP listener Pod in the test's own namespace (burst.py); returns (pod, ip)."""
    from burst import start_listener

    return start_listener(kubectl, namespace)


@pytest.fixture
def sandbox(kubectl):
    """A sandbox namespace session for SandboxJob tests (needs safeagent installed); cleaned up after."""
    from sbj_helpers import Sandbox, require_operator

    require_operator(kubectl)
    box = Sandbox(kubectl)
    yield box
    box.cleanup()


@pytest.fixture(scope="session")
def people(kubectl):
    """Real identities in the sandbox namespace (people.py): an agent that submits, two reviewers
    and one that holds both roles; made once per test process, removed at its end."""
    from people import APPROVER, SUBMITTER, People
    from sbj_helpers import NS, require_operator

    require_operator(kubectl)
    suffix = uuid.uuid4().hex[:6]
    made = People(kubectl, NS)
    try:
        yield {
            "agent": made.make(f"e2e-agent-{suffix}", (SUBMITTER,)),
            "reviewer": made.make(f"e2e-reviewer-{suffix}", (APPROVER,), reader=False),
            "second": made.make(f"e2e-second-{suffix}", (APPROVER,), reader=False),
            "both": made.make(f"e2e-both-{suffix}", (SUBMITTER, APPROVER)),
            "blind": made.make(f"e2e-blind-{suffix}", (SUBMITTER,), reader=False),
        }
    finally:
        made.cleanup()

