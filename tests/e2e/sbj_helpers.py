"""Helpers for the operator e2e tests: submit SandboxJobs, wait for phases, read events and Pods.

The tests run against the operator the chart installed (`make install`), in its sandbox namespace
(SAFEAGENT_SANDBOX_NAMESPACE, default safeagent-sandbox); every object a test creates has a
unique name and is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from clusterlib import wait_for

RELEASE = os.environ.get("RELEASE", "safeagent")
SYSTEM_NS = os.environ.get("RELEASE_NAMESPACE", "safeagent-system")
NS = os.environ.get("SAFEAGENT_SANDBOX_NAMESPACE", "safeagent-sandbox")


def operator_selector(release: str) -> str:
    """The label selector of a release's operator Pods."""
    return f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"


OPERATOR_SELECTOR = operator_selector(RELEASE)
TERMINAL = {"Succeeded", "Failed", "Denied", "Rejected"}
KEY_SEPARATOR = "--"  # safeagent/sandbox/digest.py: '--' in a ConfigMap key is a directory separator


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def repo_configmap(name: str, files: dict[str, str]) -> dict:
    """A ConfigMap repository's manifest; paths with '/' are encoded with '--'."""
    data = {path.replace("/", KEY_SEPARATOR): text for path, text in files.items()}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


class Sandbox:
    """Creates objects in the sandbox namespace and deletes them at the end of the test."""

    def __init__(self, kubectl) -> None:
        self.kubectl = kubectl
        self.created: list[tuple[str, str]] = []
        self.node_dirs: list[str] = []

    def apply(self, manifest: dict) -> None:
        manifest.setdefault("metadata", {}).setdefault("namespace", NS)
        # create, not apply: apply's last-applied annotation cannot hold a large ConfigMap
        self.kubectl("create", "-f", "-", input=json.dumps(manifest))
        self.created.append((manifest["kind"].lower(), manifest["metadata"]["name"]))

    def repo(self, files: dict[str, str], name: str | None = None) -> str:
        """A ConfigMap repository; paths with '/' are encoded with '--'."""
        name = name or unique("repo")
        self.apply(repo_configmap(name, files))
        return name

    def job(self, command: str, source: dict | str, name: str | None = None, **spec) -> str:
        name = name or unique("job")
        if isinstance(source, str):
            source = {"configMap": {"name": source}}
        self.apply(
            {
                "apiVersion": "safeagent.ca/v1alpha1",
                "kind": "SandboxJob",
                "metadata": {"name": name},
                "spec": {"command": command, "source": source, **spec},
            }
        )
        return name

    def get(self, kind: str, name: str) -> dict:
        return json.loads(self.kubectl("-n", NS, "get", kind, name, "-o", "json").stdout)

    def status(self, name: str) -> dict:
        return self.get("sandboxjob", name).get("status") or {}

    def wait_phase(self, name: str, phases: set[str] | str, timeout: float = 240) -> dict:
        wanted = {phases} if isinstance(phases, str) else set(phases)
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            status = self.status(name)
            if status.get("phase") in wanted:
                return status
            if status.get("phase") in TERMINAL:
                break
            time.sleep(1)
        raise AssertionError(f"{name}: wanted phase {sorted(wanted)}, status is {json.dumps(status)[:3000]}")

    def events(self, field_selector: str) -> list[dict]:
        out = self.kubectl("-n", NS, "get", "events", "-o", "json", "--field-selector", field_selector).stdout
        return json.loads(out)["items"]

    def event_reasons(self, kind: str, name: str) -> list[str]:
        events = self.events(f"involvedObject.kind={kind},involvedObject.name={name}")
        events.sort(key=lambda e: e.get("firstTimestamp") or e.get("eventTime") or "")
        return [event["reason"] for event in events]

    def pods_of(self, job_uid: str) -> list[dict]:
        return json.loads(
            self.kubectl("-n", NS, "get", "pods", "-l", f"safeagent.ca/job-uid={job_uid}", "-o", "json").stdout
        )["items"]

    def wait_pods_gone(self, job_uid: str, timeout: float = 30) -> None:
        """The job's Pods go once its result is in status: the pass that writes the result deletes
        them. A Pod read from its runner's record may still be ending then (the runner exits, the
        kubelet reports it), so this waits, within the Pod's grace period and the kubelet's round."""
        wait_for(lambda: not self.pods_of(job_uid), timeout=timeout, interval=0.5, what="the job's Pods gone")

    def scheduled_pod_uids(self, pod_name: str) -> set[str]:
        """UIDs of every Pod ever scheduled under this name (from the scheduler's Events)."""
        events = self.events(f"involvedObject.kind=Pod,involvedObject.name={pod_name},reason=Scheduled")
        return {event["involvedObject"]["uid"] for event in events}

    # hostPath-backed volumes, to put what a ConfigMap cannot hold (symlinks) into a source

    def node_volume(self, setup_script: str) -> str:
        """A PVC bound to a hostPath PV whose directory the script fills on every kind node (the
        sandbox Pod may land on any of them: a sandbox node, or the one node of a small cluster)."""
        name = unique("repos")
        pv, path = hostpath_claim(self.kubectl, NS, name, setup_script)
        self.node_dirs.append(path)
        self.created.append(("persistentvolume", pv))
        self.created.append(("persistentvolumeclaim", name))
        return name

    def cleanup(self) -> None:
        for kind, name in reversed(self.created):
            scope = [] if kind == "persistentvolume" else ["-n", NS]
            self.kubectl(*scope, "delete", kind, name, "--ignore-not-found", "--wait=false", check=False)
        if self.node_dirs:
            for node in kind_nodes(self.kubectl):
                for path in self.node_dirs:
                    docker_exec(node, f"rm -rf {path}", check=False)


def hostpath_claim(kubectl, namespace: str, name: str, setup_script: str) -> tuple[str, str]:
    """A PVC `name` in `namespace`, bound to a hostPath PV whose directory `setup_script` fills on
    every kind node; returns the PV's name and the directory (the caller removes both)."""
    path = f"/var/lib/safeagent-e2e/{name}"
    pv = f"{namespace}-{name}"
    for node in kind_nodes(kubectl):
        docker_exec(node, f"mkdir -p {path} && cd {path} && {setup_script} && chmod -R a+rX {path}")
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv, "labels": {"safeagent.ca/e2e": "true"}},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
            "hostPath": {"path": path, "type": "Directory"},
            "claimRef": {"namespace": namespace, "name": name},
        },
    }))
    kubectl("-n", namespace, "create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": pv,
                 "resources": {"requests": {"storage": "1Gi"}}},
    }))
    return pv, path


def kind_nodes(kubectl) -> list[str]:
    """Every node's name, each a local kind container (skips the test otherwise)."""
    if shutil.which("docker") is None:
        pytest.skip("needs docker to prepare a hostPath volume on the kind nodes")
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    names = [node["metadata"]["name"] for node in nodes]
    for name in names:
        probe = subprocess.run(["docker", "inspect", name], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"node {name} is not a local kind container; cannot seed a hostPath volume")
    return names


def docker_exec(node: str, script: str, check: bool = True) -> None:
    proc = subprocess.run(["docker", "exec", node, "sh", "-c", script], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker exec {node}: {proc.stderr}")


def operator_pods(kubectl, namespace: str = SYSTEM_NS, release: str = RELEASE) -> list[dict]:
    """A release's operator Pods that run and are not being deleted (the installed release's by default)."""
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", operator_selector(release), "-o", "json")
                      .stdout)["items"]
    return [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def kill_operator(kubectl, namespace: str = SYSTEM_NS, release: str = RELEASE) -> None:
    """Delete a release's one operator Pod at once (grace 0, forced), and wait until its Deployment
    runs another."""
    before = operator_pods(kubectl, namespace, release)
    assert len(before) == 1, [pod["metadata"]["name"] for pod in before]
    kubectl("-n", namespace, "delete", "pod", before[0]["metadata"]["name"], "--grace-period=0", "--force")
    wait_for(lambda: [pod for pod in operator_pods(kubectl, namespace, release)
                      if pod["metadata"]["uid"] != before[0]["metadata"]["uid"]],
             timeout=180, interval=1, what="the operator to come back")


def require_operator(kubectl) -> None:
    proc = kubectl("-n", SYSTEM_NS, "get", "deployment", "-l", OPERATOR_SELECTOR, "-o", "json", check=False)
    if proc.returncode != 0 or not json.loads(proc.stdout)["items"]:
        pytest.fail(f"no safeagent operator Deployment in {SYSTEM_NS}: run `make install` first")
    kubectl("-n", SYSTEM_NS, "wait", "deployment", "-l", OPERATOR_SELECTOR, "--for=condition=Available",
            "--timeout=180s")


def slow_grep_file(lines: int) -> str:
    """A file on which `grep -c -P 'a*a*a*a*a*a*a*[bc]'` backtracks for a long time per line.

    The policy allows plain grep; the pattern has no shell metacharacters. Each 35-character line
    costs PCRE a few milliseconds (below its backtracking limit), so `lines` sets the run time.
    The last line matches, so the command exits 0 once it gets there.
    """
    return ("a" * 35 + "\n") * lines + "b\n"


SLOW_GREP = "grep -c -P 'a*a*a*a*a*a*a*[bc]' slow.txt"
