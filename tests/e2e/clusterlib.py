"""Helpers shared by the e2e tests: kubectl, hardened Pod manifests, polling."""

from __future__ import annotations

import json
import os
import subprocess
import time

KUBECTL = os.environ.get("KUBECTL", "kubectl")
# Image for the test bed's own Pods (listeners, clients). Needs python3; must already be on the nodes.
TEST_IMAGE = os.environ.get("SAFEAGENT_TEST_IMAGE", "safeagent/sandbox:dev")


def run_kubectl(*args: str, check: bool = True, input: str | None = None, timeout: float = 120):
    """Run kubectl with the ambient kubeconfig; return the CompletedProcess (text)."""
    proc = subprocess.run(
        [KUBECTL, *args], input=input, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def hardened_pod(name: str, command: list[str], labels: dict[str, str] | None = None,
                 image: str = TEST_IMAGE, restart: str = "Never") -> dict:
    """A Pod manifest that Pod Security `restricted` admits."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": restart,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "main",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": command,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
        },
    }


def apply(kubectl, namespace: str, manifest: dict, check: bool = True):
    return kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest), check=check)


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    """Poll predicate() until it returns a truthy value; return it, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
