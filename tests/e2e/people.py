"""Real identities for the e2e tests: ServiceAccounts with their own tokens, bound to the chart's
user roles in the sandbox namespace, each with a kubeconfig of its own (the cluster's address and
CA from the current context, and nothing of its credentials). They work on any cluster, unlike
certificate users, which only the test bed could sign.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
from pathlib import Path

import yaml

from clusterlib import KUBECTL

SUBMITTER, APPROVER = "safeagent-submitter", "safeagent-approver"
SOURCE_READER = "safeagent-e2e-source-reader"


@dataclasses.dataclass(frozen=True)
class Person:
    name: str  # the ServiceAccount's name
    user: str  # as the API server authenticates it: system:serviceaccount:NS:NAME
    kubeconfig: Path

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], input=input,
                              capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl as {self.user} {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def decide(self, namespace: str, approval: str, decision: str, note: str = "",
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """What a reviewer runs: `kubectl patch approval NAME --type merge -p ...`."""
        patch = json.dumps({"spec": {"decision": decision, "note": note}})
        return self.kubectl("-n", namespace, "patch", "approval", approval, "--type", "merge", "-p", patch,
                            check=check)


class People:
    """Makes Persons in one namespace and removes them (and their bindings) at the end."""

    def __init__(self, kubectl, namespace: str) -> None:
        self.kubectl, self.namespace = kubectl, namespace
        self.directory = Path(tempfile.mkdtemp(prefix="safeagent-e2e-people-"))
        self.made: list[str] = []
        view = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
        self.cluster = view["clusters"][0]["cluster"]
        kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": SOURCE_READER, "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "persistentvolumeclaims"], "verbs": ["get"]}],
        }))

    def make(self, name: str, roles: tuple[str, ...], reader: bool = True) -> Person:
        """A ServiceAccount bound to the chart's ClusterRoles `roles` (and, if `reader`, allowed to
        `get` the ConfigMaps and claims a job names as its source)."""
        ns = self.namespace
        self.kubectl("-n", ns, "create", "serviceaccount", name)
        self.made.append(name)
        bindings = [("clusterrole", role) for role in roles] + ([("role", SOURCE_READER)] if reader else [])
        for kind, role in bindings:
            self.kubectl("-n", ns, "create", "rolebinding", f"{name}-{role}", f"--{kind}={role}",
                         f"--serviceaccount={ns}:{name}")
        token = self.kubectl("-n", ns, "create", "token", name, "--duration=2h").stdout.strip()
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": "cluster", "cluster": self.cluster}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": "cluster", "user": name, "namespace": ns}}],
        }
        path = self.directory / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return Person(name, f"system:serviceaccount:{ns}:{name}", path)

    def cleanup(self) -> None:
        for name in self.made:
            for binding in json.loads(self.kubectl("-n", self.namespace, "get", "rolebinding", "-o", "json").stdout)["items"]:
                subjects = binding.get("subjects") or []
                if any(s.get("kind") == "ServiceAccount" and s.get("name") == name for s in subjects):
                    self.kubectl("-n", self.namespace, "delete", "rolebinding", binding["metadata"]["name"],
                                 "--wait=false", check=False)
            self.kubectl("-n", self.namespace, "delete", "serviceaccount", name, "--wait=false", check=False)
