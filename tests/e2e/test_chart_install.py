"""The chart as installed by `make install`: a ready, hardened operator with least privilege.

Runs against the release `safeagent` in `safeagent-system` (RELEASE / RELEASE_NAMESPACE override)
and the default sandbox namespace; `make e2e` installs it first.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from clusterlib import apply, wait_for

RELEASE = os.environ.get("RELEASE", "safeagent")
SYSTEM_NS = os.environ.get("RELEASE_NAMESPACE", "safeagent-system")
SANDBOX_NS = os.environ.get("SAFEAGENT_SANDBOX_NAMESPACE", "safeagent-sandbox")
SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
TERMINAL = {"Succeeded", "Failed", "Denied", "Rejected"}


@pytest.fixture(scope="module")
def operator_pod(kubectl):
    proc = kubectl("-n", SYSTEM_NS, "get", "deployment", "-l", SELECTOR, "-o", "json", check=False)
    if proc.returncode != 0 or not json.loads(proc.stdout)["items"]:
        pytest.fail(f"no safeagent operator Deployment in {SYSTEM_NS}: run `make install` first")
    kubectl("-n", SYSTEM_NS, "wait", "deployment", "-l", SELECTOR, "--for=condition=Available", "--timeout=180s")
    pods = json.loads(kubectl("-n", SYSTEM_NS, "get", "pods", "-l", SELECTOR, "-o", "json").stdout)["items"]
    running = [pod for pod in pods if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, f"expected one running operator Pod, found {len(running)}"
    return running[0]




def test_operator_is_ready_and_runs_as_configured(operator_pod):
    (status,) = operator_pod["status"]["containerStatuses"]
    assert status["ready"] is True
    assert status["restartCount"] == 0, "the operator restarted: see its logs"
    context = operator_pod["spec"]["containers"][0]["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert operator_pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_operator_process_is_non_root_on_a_read_only_root(kubectl, operator_pod):
    name = operator_pod["metadata"]["name"]

    def in_pod(*command: str):
        return kubectl("-n", SYSTEM_NS, "exec", name, "-c", "operator", "--", *command, check=False)

    assert in_pod("id", "-u").stdout.strip() == "10001"
    root_write = in_pod("touch", "/opt/safeagent/written-by-test")
    assert root_write.returncode != 0 and "Read-only file system" in root_write.stderr
    assert in_pod("touch", "/tmp/written-by-test").returncode == 0, "/tmp must stay writable"
    capabilities = in_pod("grep", "^CapEff", "/proc/self/status").stdout.split()[-1]
    assert int(capabilities, 16) == 0, f"effective capabilities: {capabilities}"








def test_sandbox_namespace_enforces_pod_security_restricted(kubectl):
    labels = json.loads(kubectl("get", "namespace", SANDBOX_NS, "-o", "json").stdout)["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"


def test_in_cluster_operator_runs_and_approves_with_chart_rbac(kubectl, operator_pod, people):
    """The deployed operator, with only the chart's RBAC, runs a job and an approval round trip."""
    suffix = uuid.uuid4().hex[:6]
    repo, listing, removal = f"e2e-repo-{suffix}", f"e2e-ls-{suffix}", f"e2e-rm-{suffix}"
    apply(kubectl, SANDBOX_NS, {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": repo},
        "data": {"README.md": "hello\n", "delete-me.txt": "bye\n"},
    })

    def job(name: str, command: str) -> dict:
        return {
            "apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": name},
            "spec": {"command": command, "source": {"configMap": {"name": repo}}, "networkProfile": "none"},
        }

    def status(name: str) -> dict:
        return json.loads(kubectl("-n", SANDBOX_NS, "get", "sandboxjob", name, "-o", "json").stdout).get("status") or {}

    try:
        apply(kubectl, SANDBOX_NS, job(listing, "ls"))
        apply(kubectl, SANDBOX_NS, job(removal, "rm delete-me.txt"))
        done = wait_for(lambda: status(listing).get("phase") in TERMINAL and status(listing), 240, 2, f"{listing} to finish")
        assert done["phase"] == "Succeeded", done
        assert "delete-me.txt" in done["stdout"] and "README.md" in done["stdout"]

        waiting = wait_for(lambda: status(removal).get("phase") == "AwaitingApproval" and status(removal), 120, 2, "approval request")
        people["reviewer"].decide(SANDBOX_NS, waiting["approvalName"], "Approved", note="e2e")
        finished = wait_for(lambda: status(removal).get("phase") in TERMINAL and status(removal), 240, 2, f"{removal} to finish")
        assert finished["phase"] == "Succeeded", finished
        assert finished["exitCode"] == 0
    finally:
        kubectl("-n", SANDBOX_NS, "delete", "sandboxjob", listing, removal, "--ignore-not-found", "--wait=false", check=False)
        kubectl("-n", SANDBOX_NS, "delete", "configmap", repo, "--ignore-not-found", check=False)

    logs = kubectl("-n", SYSTEM_NS, "logs", operator_pod["metadata"]["name"], "-c", "operator").stdout
    forbidden = [line for line in logs.splitlines() if "forbidden" in line.lower() and "namespaces" not in line]
    assert not forbidden, "the operator hit RBAC denials:\n" + "\n".join(forbidden[:10])

