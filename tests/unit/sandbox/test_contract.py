"""The wire contract (safeagent.sandbox.contract): what the operator builds is what the Pod accepts,
and what the Pod writes is what the operator reads."""

from __future__ import annotations

import json

import pytest

from safeagent import builders, models
from safeagent.sandbox import contract, prepare, runner

from tests.support.jobs import CHECKED, CONFIG, job


def _specs(pod):
    prepare_spec = json.loads(pod["spec"]["initContainers"][0]["args"][0])
    runner_spec = json.loads(pod["spec"]["containers"][0]["args"][0])
    return prepare_spec, runner_spec


@pytest.mark.parametrize("source", [None, {"persistentVolumeClaim": {"claimName": "repo"}}])
@pytest.mark.parametrize("canary", [None, "10.96.7.7"])
def test_the_specs_the_operator_builds_are_the_ones_the_sandbox_accepts(source, canary):
    config = CHECKED if canary else CONFIG
    pod = builders.build_sandbox_pod(job(source), ["ls", "-la"], 64, config, "sha256:abc", canary)
    prepare_spec, runner_spec = _specs(pod)
    assert set(prepare_spec) == contract.PrepareSpec.__required_keys__ | {"expectedDigest"}
    assert prepare_spec["source"] in (contract.SOURCE_CONFIGMAP, contract.SOURCE_PVC)
    assert prepare.parse_spec(json.dumps(prepare_spec)) == prepare_spec
    assert runner.parse_spec(json.dumps(runner_spec)) == runner_spec
    assert contract.RUNNER_SPEC_REQUIRED <= set(runner_spec) <= set(contract.RunnerSpec.__annotations__)
    if canary:
        assert contract.EGRESS_CHECK_REQUIRED <= set(runner_spec["egressCheck"]) <= set(contract.EgressCheckSpec.__annotations__)
    else:
        assert "egressCheck" not in runner_spec


def test_a_prepare_spec_without_a_required_key_is_the_steps_own_error():
    with pytest.raises(KeyError):
        prepare.parse_spec(json.dumps({"source": contract.SOURCE_CONFIGMAP}))
    with pytest.raises(TypeError):
        prepare.parse_spec("[]")


def test_the_record_kinds_the_sandbox_writes_are_the_ones_the_operator_reads():
    assert models.RunnerResult.model_validate(runner.no_result(None)).exitCode is None
    assert models.PrepareResult.model_validate(prepare.record(False, contract.PREPARE_SOURCE_CHANGED, "")).ok is False
    assert contract.RUNNER_RESULT_KIND == "safeagent.ca/runner-result"
    assert contract.PREPARE_RESULT_KIND == "safeagent.ca/prepare-result"
    assert (contract.PREPARE_SOURCE_CHANGED, contract.PREPARE_ERROR) == ("source_changed", "prepare_error")
