"""What the chart installs, on the API tier's server, and a fresh sandbox namespace per test.

The chart is rendered with `helm template` (the one `make cluster` builds) and installed as it is,
minus the two Deployments (nothing would run them: the operator runs in the test's process and the
egress canary's answers are played by the test). Its sandbox namespace objects (the Namespace with
Pod Security `restricted`, the operator's Role and RoleBinding) are rendered once for a placeholder
name and made again for each test's namespace, so every test starts clean and the operator acts
with exactly the rights the chart gives it there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.api.server import CACHE, REPO, ApiServer

RELEASE, RELEASE_NAMESPACE = "safeagent", "safeagent-system"
OPERATOR_SERVICE_ACCOUNT = "safeagent-operator"
OPERATOR_USER = f"system:serviceaccount:{RELEASE_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
CANARY_SERVICE = "safeagent-canary"
CANARY_ADDRESS = "10.96.7.7"  # the canary Pod's address as its EndpointSlice says (nothing listens)
BOUND_NAMESPACE = "api-sandbox"  # a sandbox namespace the chart's admission policy binding names
PLACEHOLDER = "api-placeholder"
CHART = REPO / "charts" / "safeagent"
SOURCE_FILES = {"delete-me.txt": "bye\n"}  # the ConfigMap "repo" every test namespace has
SOURCE_CONFIGMAP, SOURCE_CLAIM = "repo", "repos"


def tool(name: str) -> str:
    found = shutil.which(name) or str(CACHE / "bin" / name)
    if not os.access(found, os.X_OK):
        raise RuntimeError(f"API tier: {name} not found (make cluster builds it into {CACHE / 'bin'})")
    return found


def render_chart(*flags: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [tool("helm"), "template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, *flags],
        check=True, capture_output=True, text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _mentions(doc: dict[str, Any], name: str) -> bool:
    return name in (doc["metadata"].get("namespace"), doc["metadata"]["name"] if doc["kind"] == "Namespace" else None)


@dataclass
class Stage:
    server: ApiServer
    workdir: Path
    admin: Any  # kubernetes.client.ApiClient as the admin
    operator: Any  # ... as the chart's operator ServiceAccount
    operator_token: str
    config_data: dict[str, Any]
    policy_path: Path
    namespace_docs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def install(cls, server: ApiServer, workdir: Path) -> Stage:
        from kubernetes import client

        admin = server.client()
        kubeconfig = server.kubeconfig(server.admin_token, workdir / "admin.kubeconfig")
        kubectl = [tool("kubectl"), "--kubeconfig", str(kubeconfig)]
        subprocess.run([*kubectl, "apply", "--server-side", "-f", str(CHART / "crds")], check=True, capture_output=True)
        subprocess.run([*kubectl, "wait", "--for", "condition=Established", "--timeout=60s", "-f", str(CHART / "crds")],
                       check=True, capture_output=True)
        docs = render_chart("--set", f"sandboxNamespaces={{{BOUND_NAMESPACE},{PLACEHOLDER}}}")
        placeholder = [doc for doc in docs if _mentions(doc, PLACEHOLDER)]
        installed = [doc for doc in docs if doc not in placeholder and doc["kind"] != "Deployment"]
        client.CoreV1Api(admin).create_namespace({"metadata": {"name": RELEASE_NAMESPACE}})
        manifest = workdir / "chart.yaml"
        manifest.write_text(yaml.safe_dump_all(installed))
        subprocess.run([*kubectl, "apply", "--server-side", "-f", str(manifest)], check=True, capture_output=True, text=True)
        core = client.CoreV1Api(admin)
        token = core.create_namespaced_service_account_token(
            OPERATOR_SERVICE_ACCOUNT, RELEASE_NAMESPACE, {"spec": {"expirationSeconds": 24 * 3600}}
        ).status.token
        client.DiscoveryV1Api(admin).create_namespaced_endpoint_slice(RELEASE_NAMESPACE, {
            "metadata": {"name": f"{CANARY_SERVICE}-api", "labels": {"kubernetes.io/service-name": CANARY_SERVICE}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [CANARY_ADDRESS], "conditions": {"ready": True}}],
            "ports": [{"name": "open", "port": 8081, "protocol": "TCP"}],
        })
        config_map = next(doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-config"))
        config_data = yaml.safe_load(config_map["data"]["config.yaml"])
        config_data["metrics"] = {"enabled": False}
        policy_path = cls._policy(workdir)
        config_data["policyPath"] = str(policy_path)
        stage = cls(server, workdir, admin, server.client(token), token, config_data, policy_path, placeholder)
        stage._fill(BOUND_NAMESPACE)
        return stage

    @staticmethod
    def _policy(workdir: Path) -> Path:
        """The repository's inspect-only policy, extended with small limits the tests reach."""
        shutil.copy(REPO / "configs" / "policy.yaml", workdir / "policy.yaml")
        path = workdir / "tier-policy.yaml"
        path.write_text("extends: policy.yaml\nname: api-tier\nmax_output_kb: 64\nmax_file_writes: 2\n")
        return path

    def client_as(self, user: str, group: str | None = None) -> Any:
        """An API client acting as `user` (and `group`): the admin impersonating, as `kubectl --as`."""
        api = self.server.client()
        api.set_default_header("Impersonate-User", user)
        if group:
            api.set_default_header("Impersonate-Group", group)
        return api

    def bind(self, namespace: str, user: str, cluster_role: str) -> None:
        """A RoleBinding of one of the chart's ClusterRoles to `user` in `namespace`."""
        from kubernetes import client

        client.RbacAuthorizationV1Api(self.admin).create_namespaced_role_binding(namespace, {
            "metadata": {"name": f"{user}-{cluster_role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        })

    def _for(self, namespace: str) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(doc).replace(PLACEHOLDER, namespace)) for doc in self.namespace_docs]

    def new_namespace(self) -> str:
        """A namespace made from the chart's sandbox-namespace objects, with the sources jobs name."""
        from kubernetes import utils

        name = f"api-{uuid.uuid4().hex[:10]}"
        for doc in self._for(name):
            utils.create_from_dict(self.admin, doc)
        self._fill(name)
        return name

    def _fill(self, namespace: str) -> None:
        """What the controller manager would add (the default ServiceAccount) and the jobs' sources."""
        from kubernetes import client

        core = client.CoreV1Api(self.admin)
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "default"}})
        core.create_namespaced_config_map(namespace, {"metadata": {"name": SOURCE_CONFIGMAP}, "data": SOURCE_FILES})
        core.create_namespaced_persistent_volume_claim(namespace, {
            "metadata": {"name": SOURCE_CLAIM},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
        })
