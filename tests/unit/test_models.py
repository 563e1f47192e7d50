"""The pydantic models of SandboxJob and Approval (the CRDs' source of truth)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from safeagent import models
from safeagent.sandbox import runner

CM = {"configMap": {"name": "example-repo"}}


def spec(**overrides):
    return models.SandboxJobSpec.model_validate({"command": "ls -la", "source": CM, **overrides})


def test_defaults():
    parsed = spec()
    assert parsed.networkProfile is models.NetworkProfile.NONE
    assert parsed.timeoutSeconds == 300


@pytest.mark.parametrize(
    "source",
    [
        {},
        {"configMap": {"name": "a"}, "persistentVolumeClaim": {"claimName": "b"}},
        {"persistentVolumeClaim": {"claimName": "repos", "path": "../etc"}},
        {"persistentVolumeClaim": {"claimName": "repos", "path": "/abs"}},
        {"persistentVolumeClaim": {"claimName": "repos", "path": "a/../../b"}},
        {"configMap": {"name": "Bad_Name"}},
    ],
)
def test_bad_sources_are_refused(source):
    with pytest.raises(ValidationError):
        spec(source=source)


@pytest.mark.parametrize(
    "overrides",
    [
        {"timeoutSeconds": 0},
        {"timeoutSeconds": 3601},
        {"networkProfile": "internet"},
        {"command": ""},
        {"command": "x" * 4097},
        {"unknown": 1},
    ],
)
def test_bad_specs_are_refused(overrides):
    with pytest.raises(ValidationError):
        spec(**overrides)


def test_pvc_path_inside_the_volume_is_accepted():
    parsed = spec(source={"persistentVolumeClaim": {"claimName": "repos", "path": "team/example-repo"}})
    assert parsed.source.persistentVolumeClaim.path == "team/example-repo"


def test_spec_hash_is_stable_and_sensitive():
    assert models.spec_hash(spec()) == models.spec_hash(spec(timeoutSeconds=300))  # defaults included
    assert models.spec_hash(spec()) != models.spec_hash(spec(command="ls"))
    assert models.spec_hash(spec()) != models.spec_hash(spec(networkProfile="git-read"))
    assert len(models.spec_hash(spec())) == 64


def test_approval_spec():
    approval = models.ApprovalSpec.model_validate(
        {
            "jobName": "remove-file", "jobUid": "u1", "specHash": "0" * 64,
            "command": ["rm", "delete-me.txt"], "networkProfile": "none", "source": CM,
            "sourceDigest": "sha256:" + "0" * 64, "requester": {"username": "alice"},
        }
    )
    assert approval.decision is models.ApprovalDecision.PENDING and approval.decider is None
    assert approval.requester == models.Identity(username="alice", uid="", groups=[])
    with pytest.raises(ValidationError):
        models.ApprovalSpec.model_validate({**approval.model_dump(mode="json"), "sourceDigest": "md5:00"})
    with pytest.raises(ValidationError):
        models.ApprovalSpec.model_validate({**approval.model_dump(mode="json"), "decision": "Maybe"})


def test_runner_result_parses_the_runner_record():
    record = models.RunnerResult.model_validate(
        {**runner.no_result(None), "exitCode": 0, "stdout": "x",
         "changedFiles": {"created": 1, "modified": 0, "deleted": 0, "total": 1, "complete": True, "paths": ["+a"]}}
    )
    assert record.changedFiles.total == 1
    with pytest.raises(ValidationError):
        models.RunnerResult.model_validate({**runner.no_result(None), "kind": "something-else"})
    with pytest.raises(ValidationError):  # a record without its keys is refused, never read with defaults
        models.RunnerResult.model_validate({"kind": "safeagent.ca/runner-result", "version": 1})
