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


def await_namespaces_gone(kubectl, *namespaces: str, timeout: float = 300) -> None:
    """Until namespaces a previous run deleted are gone (a release is installed into them again)."""
    for namespace in namespaces:
        wait_for(lambda ns=namespace: kubectl("get", "namespace", ns, "-o", "jsonpath={.status.phase}",
                                              check=False).stdout != "Terminating",
                 timeout=timeout, interval=2, what=f"namespace {namespace} from a previous run to be deleted")


def await_identity_policies(kubectl, namespace: str, timeout: float = 60) -> str:
    """Until a release's identity admission policies are in force in `namespace` (they load a
    moment after `helm install`), a job would carry no requester; charts/install.sh waits the same
    way. Returns the requester a dry-run job gets (the caller)."""
    probe = json.dumps({"apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": "probe"},
                        "spec": {"command": "ls", "source": {"configMap": {"name": "probe"}}}})
    return wait_for(
        lambda: kubectl("-n", namespace, "create", "--dry-run=server", "-o", "jsonpath={.spec.requester.username}",
                        "-f", "-", input=probe, check=False).stdout.strip(),
        timeout, 0.5, f"the identity policies in namespace {namespace}")


# --- network probes: a TCP listener Pod the test starts, and a probe run inside a client Pod -----
PORT = 8080
LISTENER = (
    "import socket\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    f"s.bind(('0.0.0.0', {PORT}))\n"
    "s.listen(16)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.sendall(b'pong')\n"
    "    c.close()\n"
)
# Prints "open" when it got the listener's reply, "blocked: <error>" otherwise; always exits 0.
PROBE = (
    "import socket, sys\n"
    "try:\n"
    "    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
    "    print('open' if c.recv(4) == b'pong' else 'blocked: bad reply')\n"
    "except OSError as e:\n"
    "    print('blocked:', e)\n"
)
SLEEPER = ["python3", "-c", "import time; time.sleep(3600)"]


def probe(kubectl, namespace, pod, ip, port=PORT):
    out = kubectl("-n", namespace, "exec", pod, "--", "python3", "-c", PROBE, ip, str(port), timeout=30)
    return out.stdout.strip()


def running_ip(kubectl, namespace, pod):
    out = kubectl("-n", namespace, "get", "pod", pod, "-o", "json", check=False)
    if out.returncode != 0:
        return None
    status = json.loads(out.stdout)["status"]
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
    return ready and status.get("podIP")


# --- the test bed's sandbox nodes (tests/cluster/up.sh: SANDBOX_NODES, EGRESS_WALL) ---------------
SANDBOX_LABEL = "safeagent.ca/sandbox"
WALL_LABEL = "safeagent.ca/egress-wall"


def sandbox_nodes(kubectl) -> list[dict]:
    """Nodes reserved for sandbox Pods: labelled and tainted safeagent.ca/sandbox=true."""
    return json.loads(kubectl("get", "nodes", "-l", f"{SANDBOX_LABEL}=true", "-o", "json").stdout)["items"]


def sandbox_placement(kubectl) -> dict:
    """The Pod spec fields that put a Pod on the sandbox nodes ({} on a cluster without them)."""
    if not sandbox_nodes(kubectl):
        return {}
    return {
        "nodeSelector": {SANDBOX_LABEL: "true"},
        "tolerations": [{"key": SANDBOX_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    }


def sandbox_placement_flags(kubectl) -> list[str]:
    """helm flags giving a release the same placement as charts/install.sh gives the main one."""
    return [f"--set-json=sandbox.{key}={json.dumps(value)}" for key, value in sandbox_placement(kubectl).items()]


def nodes_without_pid_limit() -> list[str] | None:
    """The sandbox nodes (those labelled SANDBOX_LABEL, else every node) whose kubelet sets no
    `podPidsLimit`, read from each kubelet's live configuration (`/configz` through the API
    server's node proxy); None when that cannot be read (no right to the proxy, say): unknown."""
    listed = run_kubectl("get", "nodes", "-l", f"{SANDBOX_LABEL}=true", "-o", "name", check=False)
    names = listed.stdout.split() or run_kubectl("get", "nodes", "-o", "name", check=False).stdout.split()
    missing = []
    for node in (name.removeprefix("node/") for name in names):
        proc = run_kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/configz", check=False, timeout=30)
        if proc.returncode != 0:
            return None
        try:
            limit = json.loads(proc.stdout)["kubeletconfig"].get("podPidsLimit", -1)
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(limit, int) or limit <= 0:
            missing.append(node)
    return missing
