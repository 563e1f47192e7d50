"""The Helm chart: hardened operator, least-privilege RBAC, policy selection, strict values."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from tests.support.chart_render import CHART, REPO, find, helm, one, render, render_text
from safeagent.config import parse_config

OPERATOR = "safeagent-operator"
SANDBOX_NS = "safeagent-sandbox"
# Rights the operator must never hold, in any namespace.
FORBIDDEN_RESOURCES = {
    "secrets", "pods/exec", "pods/attach", "pods/portforward", "pods/ephemeralcontainers",
    "serviceaccounts/token", "nodes/proxy", "roles", "rolebindings", "clusterroles",
    "clusterrolebindings",
}
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate"}


def operator_rules(objects: list[dict]) -> list[tuple[str, str | None, dict]]:
    """(kind, namespace, rule) of every rule bound to the operator's ServiceAccount."""
    bound = set()
    for binding in find(objects, "RoleBinding") + find(objects, "ClusterRoleBinding"):
        if any(s.get("kind") == "ServiceAccount" and s["name"] == OPERATOR for s in binding["subjects"]):
            ref = binding["roleRef"]
            namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
            bound.add((ref["kind"], ref["name"], namespace))
    rules = []
    for kind, name, namespace in bound:
        role = next(
            obj for obj in find(objects, kind, name)
            if kind == "ClusterRole" or obj["metadata"]["namespace"] == namespace
        )
        rules.extend((kind, namespace, rule) for rule in role["rules"])
    return rules


def grants(rules, resource: str, verb: str) -> bool:
    return any(
        resource in rule.get("resources", []) and verb in rule.get("verbs", [])
        for _, _, rule in rules
    )


def test_helm_lint_strict_is_clean():
    result = helm("lint", "--strict", str(CHART), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_operator_deployment_is_hardened():
    deployment = one(render(), "Deployment", OPERATOR)
    spec = deployment["spec"]
    assert spec["replicas"] == 1, "Kopf peering is off: a second replica would act twice"
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == OPERATOR
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context.get("privileged") is False
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    assert "--standalone" in container["args"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["SAFEAGENT_CONFIG"] == "/etc/safeagent/config.yaml"
    assert env["SAFEAGENT_POLICY"] == "/etc/safeagent/policy.yaml"
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/etc/safeagent"]["readOnly"] is True
    assert "/tmp" in mounts, "a writable /tmp keeps libraries working on a read-only root"


def test_operator_watches_exactly_the_sandbox_namespaces():
    objects = render("--set", "sandboxNamespaces={team-a,team-b}")
    container = one(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"][0]
    watched = [arg.split("=", 1)[1] for arg in container["args"] if arg.startswith("--namespace=")]
    assert watched == ["team-a", "team-b"]
    assert "--all-namespaces" not in container["args"] and "-A" not in container["args"]
    assert "--verbose" not in container["args"]
    debug = one(render("--set", "operator.logLevel=debug"), "Deployment", OPERATOR)
    assert "--verbose" in debug["spec"]["template"]["spec"]["containers"][0]["args"]
    config = yaml.safe_load(one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"])
    assert config["namespaces"] == ["team-a", "team-b"]
    assert {role["metadata"]["namespace"] for role in find(objects, "Role", OPERATOR)} == {"team-a", "team-b"}


def test_operator_rbac_is_least_privilege():
    objects = render("--set", "sandboxNamespaces={team-a,team-b}")
    rules = operator_rules(objects)
    assert rules, "the operator's ServiceAccount is bound to nothing"
    for kind, namespace, rule in rules:
        assert not FORBIDDEN_RESOURCES & set(rule.get("resources", [])), rule
        assert not FORBIDDEN_VERBS & set(rule["verbs"]), rule
        assert "*" not in rule.get("resources", []) and "*" not in rule.get("apiGroups", []), rule
        if kind == "ClusterRole":
            # Cluster-wide the operator only reads CRDs and namespaces (Kopf's observers).
            assert set(rule["resources"]) <= {"customresourcedefinitions", "namespaces"}, rule
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
        elif namespace == "safeagent-system":
            # In its own namespace: the egress canary Pod's address, from EndpointSlices, and nothing else.
            assert rule == {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                            "verbs": ["list"]}, rule
        else:
            assert namespace in {"team-a", "team-b"}, rule
    pods = [rule for _, _, rule in rules if "pods" in rule.get("resources", [])]
    # `patch` claims a warm Pod for its job (labels, annotations, owner reference: reconcile/warm.py).
    assert [set(rule["verbs"]) for rule in pods] == [{"create", "get", "list", "watch", "patch", "delete"}] * 2
    for resource, verb in [
        ("pods/log", "get"), ("sandboxjobs", "watch"), ("sandboxjobs/status", "patch"),
        ("approvals", "create"), ("approvals/status", "patch"), ("networkpolicies", "create"),
        ("events", "create"), ("events", "list"), ("persistentvolumeclaims", "get"), ("configmaps", "get"),
        ("sandboxjobs", "delete"), ("configmaps", "list"), ("configmaps", "delete"),
    ]:
        assert grants(rules, resource, verb), f"the operator needs {verb} on {resource}"
    # Reading a waiting Pod's Events and whether a job's source exists (issue 11, item 8) adds
    # reads only: no watch on Events, nothing but `get` on claims. Retention (issue 18) adds
    # `delete` on jobs and `list` + `delete` on ConfigMaps, one object at a time: never
    # deletecollection, never a write to a ConfigMap, never a delete of an Approval.
    for resource, allowed in [("events", {"create", "patch", "list"}),
                              ("persistentvolumeclaims", {"get"}), ("configmaps", {"get", "list", "delete"}),
                              ("sandboxjobs", {"get", "list", "watch", "patch", "delete"}),
                              ("approvals", {"get", "list", "watch", "create", "patch"})]:
        verbs = {verb for _, _, rule in rules if resource in rule.get("resources", []) for verb in rule["verbs"]}
        assert verbs == allowed, (resource, verbs)
    for verb in ("create", "update", "patch", "delete"):
        assert not grants(rules, "namespaces", verb)


def test_user_roles_exist_and_are_never_bound():
    objects = render()
    submitter = one(objects, "ClusterRole", "safeagent-submitter")
    approver = one(objects, "ClusterRole", "safeagent-approver")
    submitter_resources = {res for rule in submitter["rules"] for res in rule["resources"]}
    assert "sandboxjobs" in submitter_resources
    submitter_verbs = {verb for rule in submitter["rules"] for verb in rule["verbs"]}
    assert submitter_verbs.isdisjoint({"delete", "deletecollection", "update", "patch"}), (
        "a submitter may neither change nor erase the record of its jobs"
    )
    assert not any(res.startswith("approvals") for res in submitter_resources), (
        "a submitter must not be able to approve its own commands"
    )
    approve_rule = next(rule for rule in approver["rules"] if rule["resources"] == ["approvals"])
    assert "patch" in approve_rule["verbs"]
    assert not any(
        "create" in rule["verbs"] and "sandboxjobs" in rule["resources"] for rule in approver["rules"]
    )
    for binding in find(objects, "RoleBinding") + find(objects, "ClusterRoleBinding"):
        assert binding["roleRef"]["name"] not in {"safeagent-submitter", "safeagent-approver"}
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", f"the chart binds people: {subject}"
            assert not subject["name"].startswith("system:"), subject
    assert not find(render("--set", "rbac.createUserRoles=false"), "ClusterRole", "safeagent-submitter")


def test_sandbox_namespaces_enforce_pod_security_restricted():
    namespaces = find(render("--set", "sandboxNamespaces={team-a,team-b}"), "Namespace")
    assert sorted(ns["metadata"]["name"] for ns in namespaces) == ["team-a", "team-b"]
    for namespace in namespaces:
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert not find(render("--set", "createSandboxNamespaces=false"), "Namespace")


def _enforced_policy(objects: list[dict]) -> str:
    """The text of the policy file the operator is told to enforce (SAFEAGENT_POLICY)."""
    container = one(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"][0]
    path = next(env["value"] for env in container["env"] if env["name"] == "SAFEAGENT_POLICY")
    config = yaml.safe_load(one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"])
    assert config["policyPath"] == path and path.startswith("/etc/safeagent/")
    return one(objects, "ConfigMap", "safeagent-policy")["data"][path.removeprefix("/etc/safeagent/")]


@pytest.mark.parametrize(
    ("preset", "source"),
    [("inspect-only", "configs/policy.yaml"), ("execution", "configs/policy.execution.yaml")],
)
def test_policy_preset_selects_the_config_file(preset, source):
    objects = render("--set", f"policy.preset={preset}")
    assert _enforced_policy(objects).strip() == (REPO / source).read_text().strip()
    # every preset is there byte for byte, so that one can extend another by file name
    data = one(objects, "ConfigMap", "safeagent-policy")["data"]
    assert data["policy.yaml"].strip() == (REPO / "configs/policy.yaml").read_text().strip()


def test_custom_policy_is_used_verbatim_and_restarts_the_operator(tmp_path):
    custom = tmp_path / "values.yaml"
    custom.write_text(yaml.safe_dump({"policy": {"preset": "custom", "custom": "max_output_kb: 8\n"}}))
    objects = render("-f", str(custom))
    assert _enforced_policy(objects) == "max_output_kb: 8\n"

    def checksum(objs):
        return one(objs, "Deployment", OPERATOR)["spec"]["template"]["metadata"]["annotations"]["checksum/policy"]

    assert checksum(objects) != checksum(render())


BAD_EGRESS = [{"cidr": "10.0.0.1", "ports": [{"port": 443, "protocol": "TCP"}]}]
BAD_PORT = [{"cidr": "10.0.0.1/32", "ports": [{"port": 70000, "protocol": "TCP"}]}]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"policy": {"preset": "custom"}}, "policy.preset is custom but policy.custom is empty"),
        ({"policy": {"custom": "x: 1"}}, "set policy.preset=custom to use it"),
        ({"policy": {"preset": "anything"}}, "'/policy/preset': value must be one of"),
        ({"unknownKey": 1}, "additional properties 'unknownKey' not allowed"),
        ({"networkProfiles": {"modelOnly": {"extra": 1}}}, "'extra' not allowed"),
        ({"networkProfiles": {"gitRead": {"egress": BAD_EGRESS}}}, "'/networkProfiles/gitRead/egress/0/cidr'"),
        ({"networkProfiles": {"gitRead": {"egress": BAD_PORT}}}, "'/networkProfiles/gitRead/egress/0/ports/0/port'"),
        ({"sandboxNamespaces": ["Bad_Name"]}, "'/sandboxNamespaces/0'"),
        ({"sandboxNamespaces": []}, "'/sandboxNamespaces'"),
        ({"sandbox": {"runtimeClassName": "gVisor!"}}, "'/sandbox/runtimeClassName'"),
        ({"sandbox": {"resources": {"memory": "lots"}}}, "'/sandbox/resources/memory'"),
        ({"operator": {"logLevel": "trace"}}, "'/operator/logLevel'"),
        ({"sandbox": {"nodeSelector": {"safeagent.ca/sandbox": True}}}, "'/sandbox/nodeSelector/safeagent.ca~1sandbox': got boolean"),
        ({"sandbox": {"nodeSelector": {"bad key": "x"}}}, "'/sandbox/nodeSelector': additional properties 'bad key'"),
        ({"sandbox": {"tolerations": [{"key": "a", "operator": "Maybe"}]}}, "'/sandbox/tolerations/0/operator'"),
        ({"sandbox": {"tolerations": [{"key": "a", "effect": "NoRun"}]}}, "'/sandbox/tolerations/0/effect'"),
        ({"sandbox": {"tolerations": [{"key": "a", "seconds": 1}]}}, "additional properties 'seconds' not allowed"),
        ({"sandbox": {"tolerations": [{"operator": "Equal"}]}}, "'/sandbox/tolerations/0/operator': value must be 'Exists'"),
        ({"sandbox": {"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]}}, "'/sandbox/tolerations/0/value'"),
        ({"sandbox": {"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 9}]}},
         "'/sandbox/tolerations/0/effect': value must be 'NoExecute'"),
        ({"sandbox": {"tolerations": {"key": "a"}}}, "'/sandbox/tolerations': got object, want array"),
        ({"operator": {"tolerations": [{"key": "a", "operator": "Maybe"}]}}, "'/operator/tolerations/0/operator'"),
        ({"image": {"pullPolicy": "Sometimes"}}, "'/image/pullPolicy'"),
    ],
)
def test_bad_values_fail_the_render_with_the_key(tmp_path, values, message):
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    result = render_text("-f", str(path), check=False)
    assert result.returncode != 0, f"{values} rendered"
    assert message in result.stderr, result.stderr


def test_operator_config_satisfies_the_operator_contract():
    objects = render(
        "--set", "sandbox.runtimeClassName=gvisor",
        "--set", "networkProfiles.modelOnly.allowDns=true",
        "--set", "sandbox.image.tag=v9",
    )
    text = one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"]
    config = parse_config(yaml.safe_load(text), "chart config.yaml")
    assert config.sandbox.runtimeClassName == "gvisor"
    assert config.sandbox.image == "safeagent/sandbox:v9"
    assert config.policyPath == "/etc/safeagent/policy.yaml"
    profiles = {profile.value: settings for profile, settings in config.networkProfiles.items()}
    assert profiles["model-only"].allowDns is True
    assert profiles["git-read"].allowDns is False
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert [rule.cidr for rule in profiles["git-read"].egress] == [
        rule["cidr"] for rule in values["networkProfiles"]["gitRead"]["egress"]
    ]
    assert parse_config(yaml.safe_load(
        one(render(), "ConfigMap", "safeagent-config")["data"]["config.yaml"]
    )).sandbox.runtimeClassName is None


PLACEMENT = {
    "nodeSelector": {"safeagent.ca/sandbox": "true", "kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "safeagent.ca/sandbox", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "example.com/flaky", "value": "yes", "effect": "NoExecute", "tolerationSeconds": 3000000},
    ],
}


def test_sandbox_placement_reaches_the_operator_config_and_both_sandbox_image_pods(tmp_path):
    from safeagent import builders
    from safeagent.models import SandboxJob

    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"sandbox": PLACEMENT}))
    objects = render("-f", str(path))
    text = one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"]
    config = parse_config(yaml.safe_load(text), "chart config.yaml")
    assert config.sandbox.nodeSelector == PLACEMENT["nodeSelector"]
    assert [toleration.pod_field() for toleration in config.sandbox.tolerations] == [
        PLACEMENT["tolerations"][0], {**PLACEMENT["tolerations"][1], "operator": "Equal"},
    ]
    job = SandboxJob.model_validate({
        "metadata": {"name": "j", "namespace": SANDBOX_NS, "uid": "u-1", "generation": 1},
        "spec": {"command": "ls", "source": {"persistentVolumeClaim": {"claimName": "repos"}}},
    })
    for pod in (builders.build_sandbox_pod(job, ["ls"], 64, config, canary_address="10.96.0.9"),
                builders.build_review_pod(job, config)):
        assert pod["spec"]["nodeSelector"] == PLACEMENT["nodeSelector"]
        assert len(pod["spec"]["tolerations"]) == 2
    # The operator and the canary keep their own placement: never the sandbox nodes' toleration.
    for name in (OPERATOR, "safeagent-canary"):
        pod = one(objects, "Deployment", name)["spec"]["template"]["spec"]
        assert "nodeSelector" not in pod and "tolerations" not in pod, name


def test_without_placement_the_operator_config_places_nothing():
    sandbox = parse_config(yaml.safe_load(
        one(render(), "ConfigMap", "safeagent-config")["data"]["config.yaml"]
    )).sandbox
    assert (sandbox.nodeSelector, sandbox.tolerations) == ({}, [])


# Maps whose keys are data (labels, a Kubernetes resources block), not settings of the chart.
FREE_FORM = {
    "operator.resources", "operator.nodeSelector", "sandbox.nodeSelector", "dns.podLabels", "egressCheck.canary.resources",
}


def value_paths(node: object, prefix: str = "") -> list[str]:
    """Every settings key of values.yaml as a dotted path (lists and free-form maps are leaves)."""
    paths = []
    for key, child in node.items():
        paths.append(prefix + key)
        if isinstance(child, dict) and prefix + key not in FREE_FORM:
            paths.extend(value_paths(child, f"{prefix}{key}."))
    return paths


def values_doc():
    """charts/values-doc.py, the generator of docs/helm-values.md, which reads values.yaml's comments."""
    spec = importlib.util.spec_from_file_location("values_doc", REPO / "charts" / "values-doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_value_is_documented_in_values_yaml_and_the_values_page():
    text = (CHART / "values.yaml").read_text()
    paths = value_paths(yaml.safe_load(text))
    commented = values_doc().comments(text.splitlines())  # dotted path -> its '# --' comment
    undocumented = [path for path in paths if path not in commented]
    assert not undocumented, f"values.yaml keys without a '# --' comment: {undocumented}"
    page = (REPO / "docs" / "helm-values.md").read_text()  # generated by `make docs`
    missing = [path for path in paths if f"`{path}`" not in page]
    assert not missing, f"docs/helm-values.md misses: {missing}"


def test_schema_knows_every_default_value():
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(values)


def test_user_roles_are_not_aggregated_into_the_built_in_roles():
    """An aggregate-to-edit/admin label would hand Approval rights to every namespace editor, i.e.
    let a submitter with `edit` approve its own commands."""
    objects = render()
    for role in find(objects, "ClusterRole"):
        labels = role["metadata"].get("labels") or {}
        assert not any(key.startswith("rbac.authorization.k8s.io/aggregate-to") for key in labels), role
        assert "aggregationRule" not in role, role
    approver = one(objects, "ClusterRole", "safeagent-approver")
    for rule in approver["rules"]:
        if any(res.startswith("approvals") for res in rule["resources"]):
            assert set(rule["verbs"]).isdisjoint({"create", "delete", "deletecollection", "update", "*"}), rule


def test_job_records_cannot_be_owned_or_pinned_by_anyone_but_the_operator():
    """Issue 8: the admission policy that keeps submitters from erasing or pinning jobs.

    What it refuses is proven on the API server (tests/e2e/test_trust_base.py); here: it exists,
    binds with Deny, covers both resources on create and update, and exempts exactly the
    operator's own ServiceAccount of this release.
    """
    objects = render()
    policy = one(objects, "ValidatingAdmissionPolicy", "safeagent-records")
    binding = one(objects, "ValidatingAdmissionPolicyBinding", "safeagent-records")
    assert binding["spec"]["policyName"] == "safeagent-records"
    assert binding["spec"]["validationActions"] == ["Deny"]
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["safeagent-sandbox"]}
    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    assert set(rule["resources"]) == {"sandboxjobs", "approvals"} and rule["apiGroups"] == ["safeagent.ca"]
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert variables["operator"] == f"request.userInfo.username == 'system:serviceaccount:safeagent-system:{OPERATOR}'"
    checks = " ".join(v["expression"] for v in policy["spec"]["validations"])
    assert "variables.owners" in checks and "variables.finalizers" in checks


IDENTITY_POLICIES = {
    ("MutatingAdmissionPolicy", "safeagent-record-requester"), ("MutatingAdmissionPolicy", "safeagent-record-decider"),
    ("ValidatingAdmissionPolicy", "safeagent-requester"), ("ValidatingAdmissionPolicy", "safeagent-decision"),
}


def test_identity_policies_fail_closed_and_bind_to_the_sandbox_namespaces_only():
    """Issue 17: who asked and who decided. What the policies refuse is proven on a real API
    server (tests/api/test_identity.py) and on the test bed (tests/e2e/test_identity.py); here:
    all four exist, fail closed, and each binding names this release's sandbox namespaces."""
    objects = render("--set", "sandboxNamespaces={team-a,team-b}")
    for kind, name in IDENTITY_POLICIES:
        policy = one(objects, kind, name)
        assert policy["spec"]["failurePolicy"] == "Fail", name
        assert policy["metadata"]["labels"]["app.kubernetes.io/component"] == "identity"
        binding = one(objects, f"{kind}Binding", name)
        assert binding["spec"]["policyName"] == name
        (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
        assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}
        if kind == "ValidatingAdmissionPolicy":
            assert binding["spec"]["validationActions"] == ["Deny"]
    decision = one(objects, "ValidatingAdmissionPolicy", "safeagent-decision")
    variables = {v["name"]: v["expression"] for v in decision["spec"]["variables"]}
    assert variables["operator"] == f"request.userInfo.username == 'system:serviceaccount:safeagent-system:{OPERATOR}'"


@pytest.mark.parametrize(("version", "installs"), [("1.35.9", False), ("1.36.0", True), ("1.37.1", True)])
def test_the_chart_refuses_a_cluster_without_mutating_admission_policies(version, installs):
    """MutatingAdmissionPolicy is GA and on by default from Kubernetes 1.36 (beta and off in 1.34-1.35)."""
    result = helm("template", "safeagent", str(CHART), "--kube-version", version, check=False)
    assert (result.returncode == 0) == installs, result.stderr
    if not installs:
        assert "requires kubeVersion: >=1.36.0-0" in result.stderr


def test_the_egress_canary_is_hardened_has_no_egress_and_is_configured_for_the_operator():
    """Issue 10: the canary the runner's pre-flight proves enforcement against."""
    objects = render()
    deployment = one(objects, "Deployment", "safeagent-canary")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["command"] == ["python3", "-I", "-m", "safeagent.sandbox.canary"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    policy = one(objects, "NetworkPolicy", "safeagent-canary")["spec"]
    assert policy["egress"] == [] and set(policy["policyTypes"]) == {"Ingress", "Egress"}
    service = one(objects, "Service", "safeagent-canary")
    assert {p["port"] for p in service["spec"]["ports"]} == {8081, 8082}
    config = parse_config(yaml.safe_load(one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"]))
    assert config.egressCheck is not None
    canary = config.egressCheck.canary
    assert (canary.namespace, canary.service, canary.openPort, canary.closedPort) == (
        "safeagent-system", "safeagent-canary", 8081, 8082)
    assert canary.podLabels == deployment["spec"]["selector"]["matchLabels"]
    assert canary.podLabels.items() <= pod_labels(deployment).items()


def test_only_the_sandbox_namespaces_reach_the_canary_and_it_never_leaves_its_endpoints():
    """Issue 15: a Pod elsewhere cannot flood the canary; no readiness probe (an unready canary
    would make kube-proxy refuse its ports, a refusal that is not the enforcer's)."""
    objects = render("--set", "sandboxNamespaces={team-a,team-b}")
    (rule,) = one(objects, "NetworkPolicy", "safeagent-canary")["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}]}}]
    assert {port["port"] for port in rule["ports"]} == {8081, 8082}
    deployment = one(objects, "Deployment", "safeagent-canary")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "readinessProbe" not in container
    assert container["livenessProbe"]["exec"]["command"] == [
        "python3", "-I", "-m", "safeagent.sandbox.canary", "--probe", "--open-port=8081"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two canaries at once
    assert "--workers=2" in container["args"]
    config = parse_config(yaml.safe_load(one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"]))
    assert config.egressCheck is not None and config.egressCheck.proof == "refusal"
    assert (config.egressCheck.deadline_for(0), config.egressCheck.deadline_for(30)) == (30, 90)


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "egressCheck.maxDeadlineSeconds=271"], "at least 30 seconds below sandbox.launchGraceSeconds"),
        (["--set", "egressCheck.deadlineSeconds=250"], "must be at least egressCheck.deadlineSeconds"),
        (["--set", "egressCheck.proof=hope"], "proof"),
        (["--set", "egressCheck.canary.closedPort=8081"], "must differ"),
    ],
)
def test_an_egress_check_that_cannot_work_is_refused(flags, message):
    result = render_text(*flags, check=False)
    assert result.returncode != 0 and message in result.stderr


def _egress(profile: str, cidr: str) -> list[str]:
    return ["--set", f"networkProfiles.{profile}.egress[0].cidr={cidr}",
            "--set", f"networkProfiles.{profile}.egress[0].ports[0].port=443",
            "--set", f"networkProfiles.{profile}.egress[0].ports[0].protocol=TCP"]


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        (_egress("gitRead", "169.254.169.254/32"), "link-local"),
        (_egress("gitRead", "fe80::1/128"), "link-local"),
        (_egress("gitRead", "0.0.0.0/0"), "allowAnyDestination=true"),
        (_egress("modelOnly", "::/0"), "allowAnyDestination=true"),
    ],
)
def test_profiles_cannot_quietly_open_the_world_or_metadata(flags, why):
    """Issue 10: refused where the profiles are configured (the operator refuses them too)."""
    result = render_text(*flags, check=False)
    assert result.returncode != 0 and why in result.stderr, result.stderr
    assert render_text(*_egress("gitRead", "198.51.100.7/32"), check=False).returncode == 0


def test_the_whole_internet_with_the_explicit_opt_in_still_excepts_metadata():
    objects = render(*_egress("gitRead", "0.0.0.0/0"), "--set", "networkProfiles.gitRead.allowAnyDestination=true")
    config = parse_config(yaml.safe_load(one(objects, "ConfigMap", "safeagent-config")["data"]["config.yaml"]))
    from safeagent.builders import build_network_policy
    from safeagent.models import NetworkProfile

    (rule, *_) = build_network_policy("ns", NetworkProfile.GIT_READ, config)["spec"]["egress"]
    assert rule["to"][0]["ipBlock"]["except"][0] == "169.254.0.0/16"
