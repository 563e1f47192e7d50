"""safeagent.client's pure parts: the job a request makes, when an existing job is the same
request, and the Result read from a status."""

from __future__ import annotations

import datetime

import pytest

from safeagent.client import (
    ClientError,
    ConfigMapSource,
    Outcome,
    VolumeSource,
    age,
    job_body,
    outcome_of,
    parse_source,
    result_of,
    same_request,
)


def test_the_job_a_request_makes_says_nothing_of_who_asked():
    body = job_body("ls -la", VolumeSource("repos", "app"), "none", 60, "run-1")
    assert body["spec"] == {"command": "ls -la", "source": {"persistentVolumeClaim": {"claimName": "repos", "path": "app"}},
                            "networkProfile": "none", "timeoutSeconds": 60}
    assert "requester" not in body["spec"], "the cluster records who asked; a client never says"
    assert job_body("ls", VolumeSource("repos"), "none", 60, "x")["spec"]["source"] == {
        "persistentVolumeClaim": {"claimName": "repos"}}


@pytest.mark.parametrize(("command", "profile", "timeout"), [("  ", "none", 60), ("ls", "internet", 60),
                                                              ("ls", "none", 0), ("ls", "none", 3601)])
def test_bad_requests_are_refused_before_anything_is_sent(command, profile, timeout):
    with pytest.raises(ClientError):
        job_body(command, ConfigMapSource("repo"), profile, timeout, "x")


def test_the_same_request_ignores_what_the_cluster_added():
    ours = job_body("ls", ConfigMapSource("repo"), "none", 60, "x")
    theirs = {"spec": {**ours["spec"], "requester": {"username": "alice"}}, "status": {"phase": "Running"}}
    assert same_request(theirs, ours)
    for key, other in (("command", "ls -la"), ("timeoutSeconds", 61), ("networkProfile", "git-read"),
                       ("source", {"configMap": {"name": "other"}})):
        assert not same_request({"spec": {**ours["spec"], key: other}}, ours), key


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ({"phase": "Succeeded"}, Outcome.SUCCEEDED),
        ({"phase": "Failed", "reason": "NonZeroExit", "exitCode": 1}, Outcome.COMMAND_FAILED),
        ({"phase": "Failed", "reason": "NonZeroExit"}, Outcome.INFRASTRUCTURE),  # no exit code: not the command's
        ({"phase": "Denied", "reason": "interpreter_denied"}, Outcome.DENIED),
        ({"phase": "Denied", "reason": "ApprovalDenied"}, Outcome.APPROVAL_DENIED),
        ({"phase": "Rejected", "reason": "too_large"}, Outcome.REJECTED),
        ({"phase": "Failed", "reason": "ApprovalExpired"}, Outcome.APPROVAL_EXPIRED),
        ({"phase": "Failed", "reason": "Timeout"}, Outcome.TIMED_OUT),
        ({"phase": "Failed", "reason": "EgressNotEnforced"}, Outcome.EGRESS_NOT_ENFORCED),
        ({"phase": "Failed", "reason": "WorkspaceUninspectable"}, Outcome.POLICY_VIOLATION),
        ({"phase": "Failed", "reason": "GaveUp"}, Outcome.INFRASTRUCTURE),
        ({"phase": "AwaitingApproval"}, Outcome.AWAITING_APPROVAL),
        ({"phase": "Running"}, Outcome.INFRASTRUCTURE),
    ],
)
def test_outcome_of_a_status(status, outcome):
    assert outcome_of(status) is outcome


def test_a_result_holds_the_status_fields():
    changed = {"created": 1, "modified": 0, "deleted": 0, "total": 1, "complete": True, "paths": ["+x"]}
    result = result_of({"metadata": {"name": "j", "namespace": "ns", "creationTimestamp": "t0"},
                        "status": {"phase": "Failed", "reason": "NonZeroExit", "exitCode": 2, "stdout": "o",
                                   "stderr": "e", "stderrTruncated": True, "changedFiles": changed,
                                   "approvalName": "ap", "decidedBy": "alice", "argv": ["ls"], "decision": "allow",
                                   "startTime": "t1", "completionTime": "t2"}}, 1.23456)
    assert (result.outcome, result.exitCode, result.stdout, result.stderr) == (Outcome.COMMAND_FAILED, 2, "o", "e")
    assert result.stderrTruncated and not result.stdoutTruncated and result.changedFiles.paths == ["+x"]
    assert (result.approval, result.decidedBy, result.timings.started, result.timings.elapsedSeconds) == (
        "ap", "alice", "t1", 1.235)
    assert result.final
    assert not result_of({"status": {"phase": "AwaitingApproval"}}, 0).final


def test_age_reads_like_kubectl():
    now = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
    assert [age(stamp, now) for stamp in ("2026-01-01T23:59:15Z", "2026-01-01T23:50:00Z", "2026-01-01T21:00:00Z",
                                          "2025-12-29T00:00:00Z", None)] == ["45s", "10m", "3h", "4d", "?"]


def test_sources_written_as_text():
    assert parse_source("configmap:repo") == ConfigMapSource("repo")
    assert parse_source("pvc:repos:a/b") == VolumeSource("repos", "a/b")
    assert parse_source("pvc:repos") == VolumeSource("repos", "")
    for bad in ("dir:/tmp", "configmap:", "pvc::sub", "repo"):
        with pytest.raises(ValueError):
            parse_source(bad)
