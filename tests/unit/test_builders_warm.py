"""The warm sandbox Pod (docs/warm-pool.md): the job's Pod without the job, and only that; the token
in its environment and nowhere else; what the operator delivers to it, as the Pod's runner reads it."""

from __future__ import annotations

import base64
import json

import pytest

from safeagent import builders
from safeagent.models import NetworkProfile
from safeagent.sandbox import bundle, channel, contract, warm
from tests.support.jobs import CHECKED, CONFIG, job
from tests.unit.test_builders import check_golden

TOKEN = "0123456789abcdef" * 4
IDLE = 600


def warm_pod(profile: NetworkProfile = NetworkProfile.NONE, config=CONFIG, **kwargs) -> dict:
    return builders.build_warm_pod("ns", "warm-none-abc", profile, config, TOKEN, IDLE, **kwargs)


def test_warm_pod_golden():
    check_golden("pod-warm.yaml", warm_pod())


def test_a_warm_pod_is_hardened_exactly_like_a_job_pod():
    uid = CONFIG.sandbox.uidRange.first
    cold = builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG, run_as_user=uid)
    hot = warm_pod(run_as_user=uid)
    same_pod = ("restartPolicy", "automountServiceAccountToken", "enableServiceLinks", "hostNetwork", "hostPID",
                "hostIPC", "shareProcessNamespace", "securityContext", "nodeSelector", "tolerations",
                "runtimeClassName", "terminationGracePeriodSeconds")
    assert {key: hot["spec"].get(key) for key in same_pod} == {key: cold["spec"].get(key) for key in same_pod}
    (runner,), (cold_runner,) = hot["spec"]["containers"], cold["spec"]["containers"]
    same_container = ("image", "imagePullPolicy", "workingDir", "resources", "securityContext", "volumeMounts",
                      "terminationMessagePath", "terminationMessagePolicy")
    assert {key: runner.get(key) for key in same_container} == {key: cold_runner.get(key) for key in same_container}
    scratch = [volume for volume in cold["spec"]["volumes"] if volume["name"] != "source"]
    assert hot["spec"]["volumes"] == scratch  # no source volume: the source comes over the channel


def test_a_warm_pod_has_one_container_and_no_job():
    pod = warm_pod()
    assert "initContainers" not in pod["spec"] and len(pod["spec"]["containers"]) == 1
    assert "ownerReferences" not in pod["metadata"]
    labels = pod["metadata"]["labels"]
    assert labels[builders.LABEL_WARM] == "true" and labels[builders.LABEL_SANDBOX] == "true"
    assert labels[builders.LABEL_PROFILE] == "none" and builders.LABEL_JOB_UID not in labels
    assert pod["spec"]["containers"][0]["command"] == ["python3", "-I", "-m", "safeagent.sandbox.warm"]


def test_the_token_is_in_the_environment_and_nowhere_else():
    pod = warm_pod()
    (runner,) = pod["spec"]["containers"]
    assert runner["env"] == [{"name": channel.TOKEN_ENV, "value": TOKEN}]
    without_env = {**pod, "spec": {**pod["spec"], "containers": [{**runner, "env": []}]}}
    assert TOKEN not in json.dumps(without_env)  # not in argv (/proc/1/cmdline), labels, annotations


def test_the_runner_accepts_the_warm_spec_the_operator_builds():
    (runner,) = warm_pod(NetworkProfile.GIT_READ, CHECKED, canary_address="10.0.0.9")["spec"]["containers"]
    spec = warm.check_warm_spec(json.loads(runner["args"][0]))
    assert spec["channel"]["port"] == builders.WARM_CHANNEL_PORT
    assert spec["channel"]["readyFile"] == builders.WARM_READY_FILE
    assert spec["egressCheck"]["host"] == "10.0.0.9"


def test_ready_means_proved_and_listening_and_the_probe_stops_then():
    pod = warm_pod(config=CHECKED, canary_address="10.0.0.9")
    (runner,) = pod["spec"]["containers"]
    assert "readinessProbe" not in runner and "livenessProbe" not in runner  # no probe beside the command
    probe = runner["startupProbe"]
    assert probe["exec"]["command"] == ["test", "-e", builders.WARM_READY_FILE]
    egress_deadline = json.loads(runner["args"][0])["egressCheck"]["deadlineSeconds"]
    assert probe["periodSeconds"] * probe["failureThreshold"] > IDLE + egress_deadline  # never killed while waiting
    assert pod["spec"]["activeDeadlineSeconds"] > IDLE + egress_deadline + 3600  # the longest job still fits


PATHS = ("sourceDir", "workspace")


def _cold_and_warm_prepare(cold: dict, request: contract.WarmRequest) -> tuple[dict, dict]:
    """The cold Pod's preparation spec and the one a warm Pod's runner makes of `request`, without the
    paths (each Pod's own)."""
    cold_prepare = json.loads(cold["spec"]["initContainers"][0]["args"][0])
    warm_prepare = dict(warm.prepare_spec(request, "/tmp/x", "/workspace"))
    return ({key: value for key, value in cold_prepare.items() if key not in PATHS},
            {key: value for key, value in warm_prepare.items() if key not in PATHS})


def test_the_delivered_request_is_the_job_the_cold_pod_would_run():
    sandbox_job = job()
    cold = builders.build_sandbox_pod(sandbox_job, ["ls", "-la"], 64, CONFIG, source_digest="sha256:" + "1" * 64)
    files = builders.configmap_files({"data": {"a.txt": "x"}, "binaryData": None})
    request = builders.build_warm_request(sandbox_job, ["ls", "-la"], 64, CONFIG, files, "sha256:" + "1" * 64)
    (runner,) = warm_pod()["spec"]["containers"]
    job_spec = warm.job_spec(warm.check_warm_spec(json.loads(runner["args"][0])), request)
    cold_runner_spec = json.loads(cold["spec"]["containers"][0]["args"][0])
    assert {key: job_spec[key] for key in contract.RUNNER_JOB_KEYS} == {
        key: cold_runner_spec[key] for key in contract.RUNNER_JOB_KEYS}
    cold_prepare, warm_prepare = _cold_and_warm_prepare(cold, request)
    assert warm_prepare == cold_prepare and warm_prepare["expectedDigest"] == "sha256:" + "1" * 64
    assert request["files"] == {"a.txt": "eA=="}


def test_a_configmaps_files_are_its_keys_as_a_volume_of_it_holds_them():
    config_map = {"data": {"a.txt": "é\n", "src--b.py": ""}, "binaryData": {"logo.bin": "AP8="}}
    files = builders.configmap_files(config_map)
    assert {key: base64.b64decode(value) for key, value in files.items()} == {
        "a.txt": "é\n".encode(), "src--b.py": b"", "logo.bin": b"\x00\xff"}
    assert files["logo.bin"] == "AP8="  # the API's base64, passed on as it is
    assert builders.volume_file(config_map, "chunk.z") is None
    assert builders.configmap_files({"data": None, "binaryData": None}) == {}


@pytest.mark.parametrize("approved", [None, "sha256:" + "2" * 64])
def test_a_bundle_jobs_request_carries_the_volume_the_cold_pod_would_mount(tmp_path, approved):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print(1)\n")
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 4096)
    source = bundle.pack(str(tmp_path))
    sandbox_job = job({"bundle": {"name": source.name}})
    chunks = list(source.chunks)
    assert len(chunks) >= 2
    cold = builders.build_sandbox_pod(sandbox_job, ["ls"], 64, CONFIG, source_digest=approved, bundle_chunks=chunks)
    encoded = {digest: base64.b64encode(source.compressed(digest)).decode() for digest in chunks}
    request = builders.build_warm_request(sandbox_job, ["ls"], 64, CONFIG,
                                          builders.bundle_files(source.manifest, encoded), approved)
    # The files are the projected volume's, name for name, each with its object's bytes.
    volume = next(v for v in cold["spec"]["volumes"] if v["name"] == "source")
    mounted = [item["path"] for projected in volume["projected"]["sources"] for item in projected["configMap"]["items"]]
    assert sorted(request["files"]) == sorted(mounted)
    assert base64.b64decode(request["files"][bundle.MANIFEST_KEY]) == source.manifest
    for digest in chunks:
        assert base64.b64decode(request["files"][bundle.chunk_name(digest)]) == source.compressed(digest)
    # What the preparation step is told: the cold Pod's, bundle name and approval binding included.
    cold_prepare, warm_prepare = _cold_and_warm_prepare(cold, request)
    assert warm_prepare == cold_prepare
    assert (warm_prepare["source"], warm_prepare["bundle"]) == ("bundle", source.name)
    assert warm_prepare.get("expectedDigest") == approved


def test_a_volume_source_has_no_warm_request():
    with pytest.raises(ValueError, match="cannot be delivered"):
        builders.build_warm_request(job({"persistentVolumeClaim": {"claimName": "repos"}}), ["ls"], 64, CONFIG, {})


def test_only_the_allowed_peers_reach_the_channel_and_only_its_port():
    allowed = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "safeagent-system"}},
               "podSelector": {"matchLabels": {"app.kubernetes.io/name": "safeagent"}}}
    policy = builders.build_warm_ingress_policy("ns", "safeagent-warm-channel", allowed)
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]  # egress stays the profile's
    assert spec["podSelector"]["matchLabels"] == {builders.LABEL_SANDBOX: "true", builders.LABEL_WARM: "true"}
    assert spec["ingress"] == [{"from": [allowed], "ports": [{"protocol": "TCP", "port": builders.WARM_CHANNEL_PORT}]}]


@pytest.mark.parametrize("uid", [None, 200123])
def test_a_warm_pod_runs_as_a_uid_of_the_range(uid):
    pod = warm_pod(run_as_user=uid)
    user = builders.run_as_user_of(pod)
    assert user in CONFIG.sandbox.uidRange and (uid is None or user == uid)
