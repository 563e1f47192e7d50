"""Desired objects: golden YAML for whole objects, plus explicit checks of every security setting
(so regenerating a golden file can never silently drop one)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from safeagent import builders
from safeagent.config import parse_config
from safeagent.models import NetworkProfile
from tests.support.jobs import CHECKED, CONFIG, UID, job

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SAFEAGENT_UPDATE_GOLDEN") == "1"
def check_golden(name: str, obj: dict) -> None:
    path = GOLDEN / name
    text = yaml.safe_dump(obj, sort_keys=True, width=100)
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"{path} missing: run with SAFEAGENT_UPDATE_GOLDEN=1 and review the file")
        path.write_text(text)
    assert yaml.safe_load(path.read_text()) == obj, f"{name} differs (SAFEAGENT_UPDATE_GOLDEN=1 to update)"


def test_pod_configmap_golden():
    check_golden("pod-configmap.yaml", builders.build_sandbox_pod(job(), ["ls", "-la"], 64, CONFIG))


def test_pod_pvc_golden():
    source = {"persistentVolumeClaim": {"claimName": "repos", "path": "example-repo"}}
    pod = builders.build_sandbox_pod(job(source, "git-read"), ["git", "status"], 64, CONFIG)
    check_golden("pod-pvc.yaml", pod)
    prepare = pod["spec"]["initContainers"][0]
    source_mount = next(m for m in prepare["volumeMounts"] if m["name"] == "source")
    assert source_mount == {"name": "source", "mountPath": "/source", "readOnly": True, "subPath": "example-repo"}
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "source")
    assert volume["persistentVolumeClaim"] == {"claimName": "repos", "readOnly": True}


def test_network_policy_golden():
    check_golden("networkpolicy-none.yaml", builders.build_network_policy("ns", NetworkProfile.NONE, CONFIG))
    check_golden("networkpolicy-git-read.yaml", builders.build_network_policy("ns", NetworkProfile.GIT_READ, CONFIG))


def test_approval_golden():
    check_golden("approval.yaml", builders.build_approval(job(name="remove-file"), ["rm", "delete-me.txt"], "sha256:" + "ab" * 32))


def test_pod_is_hardened_and_meets_pod_security_restricted():
    pod = builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG)
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert not (spec["hostNetwork"] or spec["hostPID"] or spec["hostIPC"])
    assert spec["activeDeadlineSeconds"] == 60 + CONFIG.sandbox.launchGraceSeconds
    assert spec["runtimeClassName"] == "gvisor"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["initContainers"] + spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True
        assert context["runAsNonRoot"] is True and context["runAsGroup"] == builders.SANDBOX_GID
        assert context["runAsUser"] == spec["securityContext"]["runAsUser"] in CONFIG.sandbox.uidRange
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert set(container["resources"]["limits"]) == {"cpu", "memory", "ephemeral-storage"}
        assert "ports" not in container
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["workspace"]["emptyDir"]["sizeLimit"]
    assert volumes["tmp"]["emptyDir"]["sizeLimit"]
    # restricted allows only these volume types
    allowed = {"configMap", "emptyDir", "persistentVolumeClaim", "secret", "projected", "csi", "downwardAPI", "ephemeral"}
    for volume in spec["volumes"]:
        assert set(volume) - {"name"} <= allowed


def test_runner_gets_exactly_the_argv_and_limits():
    pod = builders.build_sandbox_pod(job(), ["rm", "delete-me.txt"], 8, CONFIG)
    runner = pod["spec"]["containers"][0]
    assert runner["command"] == ["python3", "-I", "-m", "safeagent.sandbox.runner"]
    spec = json.loads(runner["args"][0])
    assert spec == {
        "argv": ["rm", "delete-me.txt"], "workspace": "/workspace", "timeoutSeconds": 60, "maxOutputBytes": 8192,
        "scratch": {"workspace": "/workspace", "tmp": "/tmp", "shm": "/dev/shm"},
        "memoryMarginBytes": 32 * 1024 * 1024, "pids": {"max": 1024, "required": True},
        "terminationLog": "/dev/termination-log",
    }
    assert runner["terminationMessagePath"] == "/dev/termination-log"
    assert not any(m["name"] == "source" for m in runner["volumeMounts"])


def test_sandbox_python_is_isolated_and_starts_outside_the_workspace():
    """Issue 8: the workspace must never be on the in-sandbox Python's import path."""
    pod = builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG)
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        assert container["command"][:2] == ["python3", "-I"], container["name"]
        assert container["workingDir"] == "/"
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert "/" not in writable


def test_scratch_volumes_are_tmpfs_capped_at_their_limit():
    pod = builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["workspace"]["emptyDir"] == {"medium": "Memory", "sizeLimit": CONFIG.sandbox.workspaceSizeLimit}
    assert volumes["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": CONFIG.sandbox.tmpSizeLimit}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": CONFIG.sandbox.shmSizeLimit}
    # Every writable mount of the command's container is one of them, and each is reported when full.
    runner = pod["spec"]["containers"][0]
    writable = {m["mountPath"]: m["name"] for m in runner["volumeMounts"] if not m.get("readOnly")}
    scratch = json.loads(runner["args"][0])["scratch"]
    assert writable == {path: name for name, path in scratch.items()} == {
        "/workspace": "workspace", "/tmp": "tmp", "/dev/shm": "shm"}


def test_an_approved_job_tells_prepare_the_reviewed_digest():
    digest = "sha256:" + "cd" * 32
    plain = builders.build_sandbox_pod(job(), ["rm", "x"], 64, CONFIG)
    pinned = builders.build_sandbox_pod(job(), ["rm", "x"], 64, CONFIG, source_digest=digest)
    assert "expectedDigest" not in json.loads(plain["spec"]["initContainers"][0]["args"][0])
    assert json.loads(pinned["spec"]["initContainers"][0]["args"][0])["expectedDigest"] == digest


def test_network_policy_selects_only_sandbox_pods_of_its_profile():
    pod = builders.build_sandbox_pod(job(profile="git-read"), ["ls"], 64, CONFIG)
    policy = builders.build_network_policy("ns", NetworkProfile.GIT_READ, CONFIG)
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert selector[builders.LABEL_SANDBOX] == "true"
    none = builders.build_network_policy("ns", NetworkProfile.NONE, CONFIG)["spec"]
    assert (none["ingress"], none["egress"], none["policyTypes"]) == ([], [], ["Ingress", "Egress"])
    unconfigured = builders.build_network_policy("ns", NetworkProfile.MODEL_ONLY, CONFIG)["spec"]
    assert unconfigured["egress"] == []


def test_names_are_deterministic_valid_and_uid_bound():
    long_name = "a" * 200 + ".x"
    name = builders.child_name(long_name, UID)
    assert name == builders.child_name(long_name, UID)
    assert len(name) <= 63 and name.replace("-", "").isalnum()
    assert builders.child_name("job", UID) != builders.child_name("job", UID.replace("6", "7"))
    assert builders.network_policy_name(NetworkProfile.GIT_READ) == "safeagent-profile-git-read"


def _as_served(pod: dict) -> dict:
    """The Pod as the API server returns it: defaults added, empty and false fields dropped."""
    served = json.loads(json.dumps(pod))
    served["metadata"].update(uid="pod-uid", resourceVersion="1")
    spec = served["spec"]
    for key in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"):
        spec.pop(key)
    spec.update(dnsPolicy="ClusterFirst", schedulerName="default-scheduler", serviceAccountName="default",
                nodeName="node-1", tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    for container in spec.get("initContainers", []) + spec["containers"]:
        container.pop("env")
        container["terminationMessagePath"] = "/dev/termination-log"
    return served


def test_our_own_pod_as_served_is_recognised():
    desired = builders.build_sandbox_pod(job(), ["ls", "-la"], 64, CONFIG)
    assert builders.pod_mismatch(desired, _as_served(desired)) is None


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        (lambda p: p["spec"]["containers"][0].update(args=[json.dumps({"argv": ["rm", "-rf", "."]})]), "args"),
        (lambda p: p["spec"]["containers"][0].update(env=[{"name": "X", "value": "1"}]), "env"),
        (lambda p: p["spec"]["containers"][0].update(lifecycle={"postStart": {"exec": {"command": ["sh"]}}}), "lifecycle"),
        (lambda p: p["spec"]["containers"].append(dict(p["spec"]["containers"][0], name="side")), "containers"),
        (lambda p: p["spec"]["volumes"][1].update(emptyDir=None, persistentVolumeClaim={"claimName": "x"}), "volumes"),
        (lambda p: p["spec"].update(hostPID=True), "hostPID"),
        (lambda p: p["spec"]["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False), "readOnly"),
        (lambda p: p["spec"]["containers"][0].update(image="evil:latest"), "image"),
        (lambda p: p["metadata"].update(ownerReferences=[]), "ownerReferences"),
        (lambda p: p["metadata"]["labels"].update({builders.LABEL_SANDBOX: "false"}), "labels"),
    ],
)
def test_a_pod_that_differs_from_ours_is_not_recognised(tamper, where):
    desired = builders.build_sandbox_pod(job(), ["ls", "-la"], 64, CONFIG)
    served = _as_served(desired)
    tamper(served)
    problem = builders.pod_mismatch(desired, served)
    assert problem is not None and where in problem


# --------------------------------------------------------------- issue 10: the egress pre-flight

def test_network_policy_with_the_egress_canary_golden():
    check_golden("networkpolicy-none-canary.yaml", builders.build_network_policy("ns", NetworkProfile.NONE, CHECKED))


@pytest.mark.parametrize("profile", list(NetworkProfile))
def test_every_profile_reaches_the_canarys_open_port_and_nothing_else_of_it(profile):
    policy = builders.build_network_policy("ns", profile, CHECKED)
    canary_rules = [rule for rule in policy["spec"]["egress"]
                    if any("podSelector" in peer and peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "canary"}
                           for peer in rule["to"])]
    assert canary_rules == [{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "safeagent-system"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/component": "canary"}}}],
        "ports": [{"protocol": "TCP", "port": 8081}],
    }]
    assert policy["spec"]["ingress"] == []


def test_the_runner_checks_egress_first_and_dns_only_where_the_profile_has_none():
    closed = builders.build_sandbox_pod(job(), ["ls"], 64, CHECKED, canary_address="10.96.7.7")
    spec = json.loads(closed["spec"]["containers"][0]["args"][0])
    assert spec["egressCheck"] == {"host": "10.96.7.7", "openPort": 8081, "closedPort": 8082,
                                   "deadlineSeconds": 20, "checkDns": True, "proof": "refusal"}
    git = builders.build_sandbox_pod(job(profile="git-read"), ["ls"], 64, CHECKED, canary_address="10.96.7.7")
    assert json.loads(git["spec"]["containers"][0]["args"][0])["egressCheck"]["checkDns"] is False  # allowDns
    with pytest.raises(ValueError):
        builders.build_sandbox_pod(job(), ["ls"], 64, CHECKED)  # configured, but no address: never unchecked


def test_the_wait_for_proof_grows_with_the_pods_pending_and_stops_at_its_cap():
    check = CHECKED.egressCheck
    assert check is not None and check.perPendingPodSeconds == 2 and check.maxDeadlineSeconds == 240

    def deadline(pending: int) -> int:
        pod = builders.build_sandbox_pod(job(), ["ls"], 64, CHECKED, canary_address="10.96.7.7", pending_pods=pending)
        seconds = builders.egress_deadline_of(pod)
        assert seconds is not None
        return seconds

    assert [deadline(n) for n in (0, 1, 30, 100, 5000)] == [20, 22, 80, 220, 240]


def test_a_pod_built_while_other_pods_were_pending_is_still_adopted():
    """After a restart the count of pending Pods differs: the deadline alone must not make the
    operator refuse its own Pod; any other difference still does."""
    before = _as_served(builders.build_sandbox_pod(job(), ["ls"], 64, CHECKED, canary_address="10.96.7.7",
                                                   pending_pods=12))
    today = builders.build_sandbox_pod(job(), ["ls"], 64, CHECKED, canary_address="10.96.7.7")
    assert builders.pod_mismatch(today, before) is not None
    assert builders.pod_mismatch(builders.with_egress_deadline(today, 44), before) is None
    other = builders.build_sandbox_pod(job(), ["ls", "-a"], 64, CHECKED, canary_address="10.96.7.7", pending_pods=12)
    assert builders.pod_mismatch(builders.with_egress_deadline(today, 44), _as_served(other)) is not None


# ------------------------------------------------------- placement: nodes reserved for sandboxes

PLACED = parse_config(
    {
        "sandbox": {
            "nodeSelector": {"safeagent.ca/sandbox": "true"},
            "tolerations": [
                {"key": "safeagent.ca/sandbox", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "example.com/maintenance", "value": "soon", "effect": "NoExecute", "tolerationSeconds": 60},
            ],
        }
    }
)
PVC = {"persistentVolumeClaim": {"claimName": "repos", "path": "example-repo"}}


def both_pods(config) -> list[dict]:
    """Every Pod that runs the sandbox image for a job: the run, and the review of a volume."""
    return [builders.build_sandbox_pod(job(PVC), ["ls"], 64, config), builders.build_review_pod(job(PVC), config)]


def test_without_placement_the_pods_name_no_node_selector_and_no_toleration():
    for pod in both_pods(CONFIG):
        assert "nodeSelector" not in pod["spec"] and "tolerations" not in pod["spec"], pod["metadata"]["name"]


def test_the_sandbox_and_the_review_pod_land_on_the_same_nodes():
    for pod in both_pods(PLACED):
        spec = pod["spec"]
        assert spec["nodeSelector"] == {"safeagent.ca/sandbox": "true"}
        # Empty fields left out, the operator always spelt out: the Pod as the API server keeps it.
        assert spec["tolerations"] == [
            {"key": "safeagent.ca/sandbox", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "example.com/maintenance", "operator": "Equal", "value": "soon", "effect": "NoExecute",
             "tolerationSeconds": 60},
        ]


def _served_with_default_tolerations(pod: dict) -> dict:
    """As served after DefaultTolerationSeconds: its two tolerations first, ours after them."""
    served = _as_served(pod)
    served["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        *(dict(toleration) for toleration in reversed(pod["spec"]["tolerations"])),
    ]
    served["spec"]["nodeSelector"]["kubernetes.io/os"] = "linux"  # e.g. a namespace's default selector
    return served


def test_a_placed_pod_as_served_is_recognised_despite_the_tolerations_the_server_adds():
    for pod in both_pods(PLACED):
        assert builders.pod_mismatch(pod, _served_with_default_tolerations(pod)) is None


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        (lambda spec: spec["tolerations"].pop(), "spec.tolerations[0]"),
        (lambda spec: spec["tolerations"][2].update(tolerationSeconds=5), "spec.tolerations[1]"),
        (lambda spec: spec.pop("tolerations"), "spec.tolerations[0]"),
        (lambda spec: spec["nodeSelector"].update({"safeagent.ca/sandbox": "false"}), "spec.nodeSelector"),
        (lambda spec: spec.pop("nodeSelector"), "spec.nodeSelector"),
    ],
)
def test_a_pod_placed_elsewhere_is_not_recognised(tamper, where):
    desired = builders.build_sandbox_pod(job(), ["ls"], 64, PLACED)
    served = _served_with_default_tolerations(desired)
    tamper(served["spec"])
    problem = builders.pod_mismatch(desired, served)
    assert problem is not None and problem.startswith(where), problem


# ------------------------------------------------- issue 20: a UID of its own for each sandbox Pod

def test_the_pod_and_both_containers_run_as_the_given_uid_in_the_sandbox_group():
    for pod in (builders.build_sandbox_pod(job(PVC), ["ls"], 64, CONFIG, run_as_user=234567),
                builders.build_review_pod(job(PVC), CONFIG, run_as_user=234567)):
        spec = pod["spec"]
        assert spec["securityContext"] | {"runAsUser": 0} == {
            "runAsNonRoot": True, "runAsUser": 0, "runAsGroup": builders.SANDBOX_GID,
            "fsGroup": builders.SANDBOX_GID, "seccompProfile": {"type": "RuntimeDefault"}}
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert (context["runAsUser"], context["runAsGroup"]) == (234567, builders.SANDBOX_GID)
        assert spec["securityContext"]["runAsUser"] == 234567 == builders.run_as_user_of(pod)


def test_without_a_uid_a_pod_runs_as_the_one_its_name_hashes_to():
    run, review = both_pods(CONFIG)
    uid_range = CONFIG.sandbox.uidRange
    assert builders.run_as_user_of(run) == uid_range.preferred(run["metadata"]["name"])
    assert builders.run_as_user_of(review) == uid_range.preferred(review["metadata"]["name"])
    assert builders.run_as_user_of(run) != builders.run_as_user_of(review)


@pytest.mark.parametrize("uid", [0, 65532, 199999, 265536])
def test_a_uid_outside_the_range_is_never_built(uid):
    with pytest.raises(ValueError, match="uidRange"):
        builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG, run_as_user=uid)
    with pytest.raises(ValueError, match="uidRange"):
        builders.build_review_pod(job(PVC), CONFIG, run_as_user=uid)


def test_run_as_user_of_needs_one_uid_for_the_pod_and_every_container():
    pod = builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG, run_as_user=210000)
    assert builders.run_as_user_of(pod) == 210000
    for tamper in (
        lambda p: p["spec"]["containers"][0]["securityContext"].update(runAsUser=210001),
        lambda p: p["spec"]["initContainers"][0]["securityContext"].pop("runAsUser"),
        lambda p: p["spec"]["securityContext"].update(runAsUser="210000"),
        lambda p: p["spec"]["securityContext"].update(runAsUser=True),
    ):
        changed = builders.with_run_as_user(pod, 210000)
        tamper(changed)
        assert builders.run_as_user_of(changed) is None
    assert builders.run_as_user_of({}) is None


def test_a_pod_built_with_another_uid_is_recognised_only_as_that_uid():
    """Adoption after a restart (reconcile/pods.py): the Pod may run as another UID of the range; it
    is ours when it is today's Pod with that UID, in every place, and nothing else differs."""
    today = builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG, run_as_user=210000)
    before = _as_served(builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG, run_as_user=250000))
    assert builders.pod_mismatch(today, before) == "spec.securityContext.runAsUser"
    assert builders.pod_mismatch(builders.with_run_as_user(today, 250000), before) is None
    assert builders.run_as_user_of(today) == 210000  # with_run_as_user copies
    split = json.loads(json.dumps(before))
    split["spec"]["containers"][0]["securityContext"]["runAsUser"] = 250001
    assert builders.run_as_user_of(split) is None
    assert builders.pod_mismatch(builders.with_run_as_user(today, 250000), split) is not None
