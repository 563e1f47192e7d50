"""The warm sandbox Pod (docs/warm-pool.md): the job's Pod without the job, and only that; the token
in its environment and nowhere else; what the operator delivers to it, as the Pod's runner reads it."""

from __future__ import annotations

import json

import pytest

from safeagent import builders
from safeagent.models import NetworkProfile
from safeagent.sandbox import channel, contract, warm
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


def test_the_delivered_request_is_the_job_the_cold_pod_would_run():
    sandbox_job = job()
    cold = builders.build_sandbox_pod(sandbox_job, ["ls", "-la"], 64, CONFIG, source_digest="sha256:" + "1" * 64)
    request = builders.build_warm_request(sandbox_job, ["ls", "-la"], 64, CONFIG,
                                          {"data": {"a.txt": "x"}, "binaryData": None}, "sha256:" + "1" * 64)
    (runner,) = warm_pod()["spec"]["containers"]
    job_spec = warm.job_spec(warm.check_warm_spec(json.loads(runner["args"][0])), request)
    cold_runner_spec = json.loads(cold["spec"]["containers"][0]["args"][0])
    assert {key: job_spec[key] for key in contract.RUNNER_JOB_KEYS} == {
        key: cold_runner_spec[key] for key in contract.RUNNER_JOB_KEYS}
    cold_prepare = json.loads(cold["spec"]["initContainers"][0]["args"][0])
    prepared = warm.prepare_spec(request, "/tmp/x", "/workspace")
    assert {key: prepared[key] for key in ("source", "maxFiles", "maxBytes", "expectedDigest")} == {
        key: cold_prepare[key] for key in ("source", "maxFiles", "maxBytes", "expectedDigest")}
    assert request["configMap"] == {"data": {"a.txt": "x"}, "binaryData": {}}


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
