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
import time
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
# The people of every test namespace: an agent that submits (and may read the sources it names)
# and a human who decides. The cluster records them as requester and decider.
SUBMITTER_ROLE, APPROVER_ROLE = "safeagent-submitter", "safeagent-approver"
TIER_SUBMITTER, TIER_APPROVER = "tier-submitter", "tier-approver"
SOURCE_READER = "source-reader"
# The chart binds its identity policies to its sandbox namespaces by name; the tier binds the same
# policies once more to its per-test namespaces, by this label.
TIER_LABEL = "safeagent.ca/api-tier"


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


def _is_identity_binding(doc: dict[str, Any]) -> bool:
    return (doc["kind"].endswith("AdmissionPolicyBinding")
            and doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "identity")


def _tier_binding(binding: dict[str, Any]) -> dict[str, Any]:
    """The chart's binding of an identity policy, for the tier's namespaces (labelled TIER_LABEL)."""
    copy = json.loads(json.dumps(binding))
    copy["metadata"]["name"] += "-api-tier"
    copy["spec"]["matchResources"] = {"namespaceSelector": {"matchLabels": {TIER_LABEL: "true"}}}
    return copy


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
        installed += [_tier_binding(doc) for doc in installed if _is_identity_binding(doc)]
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
        stage._await_policies(BOUND_NAMESPACE)
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

    def bind(self, namespace: str, user: str, role: str, kind: str = "ClusterRole") -> None:
        """A RoleBinding of `role` (one of the chart's ClusterRoles, or a Role) to `user` in `namespace`."""
        from kubernetes import client

        client.RbacAuthorizationV1Api(self.admin).create_namespaced_role_binding(namespace, {
            "metadata": {"name": f"{user}-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        })

    def _for(self, namespace: str, bound: bool) -> list[dict[str, Any]]:
        docs = [json.loads(json.dumps(doc).replace(PLACEHOLDER, namespace)) for doc in self.namespace_docs]
        for doc in docs:
            if doc["kind"] == "Namespace" and bound:
                doc["metadata"].setdefault("labels", {})[TIER_LABEL] = "true"
        return docs

    def new_namespace(self, bound: bool = True) -> str:
        """A namespace made from the chart's sandbox-namespace objects, with the sources jobs name;
        the chart's identity policies apply in it unless not `bound` (a cluster without them)."""
        from kubernetes import utils

        name = f"api-{uuid.uuid4().hex[:10]}"
        for doc in self._for(name, bound):
            utils.create_from_dict(self.admin, doc)
        self._fill(name)
        if bound:
            self._await_policies(name)
        return name

    def _await_policies(self, namespace: str, seconds: float = 10.0) -> None:
        """Admission policies and bindings take effect a moment after they are created (the API
        server loads them from a watch), RBAC bindings too: until then a job would be made with no
        requester (the operator then rejects it). Ask with a dry run until a requester is recorded."""
        from kubernetes import client

        as_submitter = client.CustomObjectsApi(self.client_as(TIER_SUBMITTER))
        body = {"apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": "probe"},
                "spec": {"command": "ls", "source": {"configMap": {"name": SOURCE_CONFIGMAP}}}}
        deadline = time.monotonic() + seconds
        while True:
            try:
                made = as_submitter.create_namespaced_custom_object(
                    "safeagent.ca", "v1alpha1", namespace, "sandboxjobs", body, dry_run="All")
                if "requester" in made["spec"]:
                    return
            except client.exceptions.ApiException as error:
                if error.status not in (403, 503):  # RBAC or the CRD types not loaded yet
                    raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"the identity policies never applied in namespace {namespace}")
            time.sleep(0.05)

    def _fill(self, namespace: str) -> None:
        """What the controller manager would add (the default ServiceAccount) and the jobs' sources."""
        from kubernetes import client

        core = client.CoreV1Api(self.admin)
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "default"}})
        client.RbacAuthorizationV1Api(self.admin).create_namespaced_role(namespace, {
            "metadata": {"name": SOURCE_READER},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "persistentvolumeclaims"], "verbs": ["get"]}],
        })
        self.bind(namespace, TIER_SUBMITTER, SUBMITTER_ROLE)
        self.bind(namespace, TIER_SUBMITTER, SOURCE_READER, kind="Role")
        self.bind(namespace, TIER_APPROVER, APPROVER_ROLE)
        core.create_namespaced_config_map(namespace, {"metadata": {"name": SOURCE_CONFIGMAP}, "data": SOURCE_FILES})
        core.create_namespaced_persistent_volume_claim(namespace, {
            "metadata": {"name": SOURCE_CLAIM},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
        })
