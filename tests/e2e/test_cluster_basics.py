"""The test bed's cluster runs Pods to completion and enforces Pod Security admission."""

from __future__ import annotations

import json
import uuid

from clusterlib import apply, hardened_pod, wait_for


def pod_phase(kubectl, namespace, name):
    out = kubectl("-n", namespace, "get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)
    return out.stdout.strip()


def test_pod_runs_to_completion_and_logs_come_back(kubectl, namespace):
    token = uuid.uuid4().hex
    apply(kubectl, namespace, hardened_pod("echo", ["python3", "-c", f"print('hello {token}')"]))
    phase = wait_for(lambda: pod_phase(kubectl, namespace, "echo") in ("Succeeded", "Failed")
                     and pod_phase(kubectl, namespace, "echo"), timeout=180, what="echo Pod to finish")
    assert phase == "Succeeded"
    logs = kubectl("-n", namespace, "logs", "echo").stdout
    assert logs.strip() == f"hello {token}"


def test_restricted_namespace_refuses_privileged_pod(kubectl, namespace):
    pod = hardened_pod("privileged", ["true"])
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    pod["spec"]["securityContext"] = {}
    result = apply(kubectl, namespace, pod, check=False)
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr and "restricted" in result.stderr
    listed = kubectl("-n", namespace, "get", "pods", "-o", "json").stdout
    assert json.loads(listed)["items"] == []


def test_restricted_namespace_refuses_root_and_host_namespaces(kubectl, namespace):
    pod = hardened_pod("hostnet", ["true"])
    pod["spec"]["hostNetwork"] = True
    result = apply(kubectl, namespace, pod, check=False)
    assert result.returncode != 0 and "hostNetwork" in result.stderr


def test_restricted_namespace_admits_hardened_pod(kubectl, namespace):
    result = apply(kubectl, namespace, hardened_pod("hardened", ["python3", "-c", "import os; print(os.getuid())"]))
    assert "created" in result.stdout
    wait_for(lambda: pod_phase(kubectl, namespace, "hardened") == "Succeeded", timeout=180,
             what="hardened Pod to succeed")
    assert kubectl("-n", namespace, "logs", "hardened").stdout.strip() == "65532"
