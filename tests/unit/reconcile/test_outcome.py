"""The outcome rules as tables: what a sandbox Pod left behind -> (phase, reason, audit event).

Pure functions (safeagent.reconcile.outcome); one row per rule, first rule that applies wins.
"""

from __future__ import annotations

import pytest

from safeagent.models import ChangedFiles, PrepareResult, RunnerResult
from safeagent.reconcile import outcome_of
from safeagent.reconcile.outcome import no_record_outcome, prepare_outcome, review_outcome
from safeagent.sandbox import prepare, runner


def result(**fields) -> RunnerResult:
    """A whole runner record (every key is required): a clean run, with `fields` changed."""
    base = {**runner.no_result(None), "exitCode": 0, "changedFiles": changed(0)}
    if fields.get("egress"):
        fields["egress"] = {"rounds": 1, "elapsedMs": 0, "proof": None, **fields["egress"]}
    if fields.get("pids"):
        fields["pids"] = {"available": 1024, "elapsedMs": 40, "detail": "d", **fields["pids"]}
    return RunnerResult.model_validate({**base, **fields})


def changed(total: int, complete: bool = True) -> ChangedFiles:
    return ChangedFiles(created=total, modified=0, deleted=0, total=total, complete=complete, paths=[])


RUN_ROWS = [
    # (record fields, phase, reason, event)
    ({}, "Succeeded", "Completed", "CommandFinished"),
    ({"exitCode": 3}, "Failed", "NonZeroExit", "CommandFailed"),
    ({"exitCode": 3, "error": "exec failed"}, "Failed", "NonZeroExit", "CommandFailed"),
    ({"exitCode": None, "error": "no such program"}, "Failed", "RunnerError", "JobFailed"),
    ({"timedOut": True, "exitCode": 137}, "Failed", "Timeout", "TimedOut"),
    ({"changedFiles": changed(0, complete=False)}, "Failed", "WorkspaceUninspectable", "PolicyViolation"),
    ({"changedFiles": changed(3)}, "Failed", "TooManyFileWrites", "PolicyViolation"),
    ({"changedFiles": changed(2)}, "Succeeded", "Completed", "CommandFinished"),  # at the limit
    ({"fullVolumes": ["tmp"], "exitCode": 1}, "Failed", "DiskLimitReached", "PolicyViolation"),
    # precedence: the runner's own error before everything, the timeout before the workspace ...
    ({"exitCode": None, "error": "x", "timedOut": True}, "Failed", "RunnerError", "JobFailed"),
    ({"timedOut": True, "changedFiles": changed(9, complete=False)}, "Failed", "Timeout", "TimedOut"),
    ({"changedFiles": changed(9, complete=False)}, "Failed", "WorkspaceUninspectable", "PolicyViolation"),
    ({"changedFiles": changed(9), "fullVolumes": ["workspace"]}, "Failed", "TooManyFileWrites", "PolicyViolation"),
    ({"fullVolumes": ["workspace"], "exitCode": 0}, "Failed", "DiskLimitReached", "PolicyViolation"),
    # egress never proven filtered: nothing ran, whatever else the record says (issue 10)
    ({"exitCode": None, "egress": {"enforced": False, "detail": "closed port reachable"}},
     "Failed", "EgressNotEnforced", "EgressNotEnforced"),
    ({"exitCode": None, "error": "x", "timedOut": True, "egress": {"enforced": False, "detail": "d"}},
     "Failed", "EgressNotEnforced", "EgressNotEnforced"),
    ({"egress": {"enforced": True, "detail": "proven"}}, "Succeeded", "Completed", "CommandFinished"),
    # no PID bound found: nothing ran (issue 20); a bound found changes nothing
    ({"exitCode": None, "pids": {"limited": False}}, "Failed", "ResourcesNotLimited", "JobFailed"),
    ({"pids": {"limited": True}}, "Succeeded", "Completed", "CommandFinished"),
    ({"pids": {"limited": False}}, "Succeeded", "Completed", "CommandFinished"),  # not required: it ran
    # the runner stopped a command that used up the memory: before the workspace's own verdicts
    ({"memoryExhausted": True, "exitCode": 137, "signal": "SIGKILL"}, "Failed", "MemoryLimitReached", "PolicyViolation"),
    ({"memoryExhausted": True, "exitCode": 137, "changedFiles": changed(9, complete=False), "fullVolumes": ["tmp"]},
     "Failed", "MemoryLimitReached", "PolicyViolation"),
    ({"memoryExhausted": True, "timedOut": True}, "Failed", "Timeout", "TimedOut"),
    # the runner stopped while listing: the command's part stands, the listing's absence fails it
    ({"error": runner.LISTING_UNFINISHED, "changedFiles": changed(0, complete=False)},
     "Failed", "WorkspaceUninspectable", "PolicyViolation"),
]


@pytest.mark.parametrize(("fields", "phase", "reason", "event"), RUN_ROWS)
def test_outcome_of_a_finished_run(fields, phase, reason, event):
    got = outcome_of(result(**fields), max_file_writes=2, timeout_seconds=30)
    assert (got.phase.value, got.reason, got.event) == (phase, reason, event)
    assert got.message


def test_outcome_messages_name_the_numbers():
    assert "30 seconds" in outcome_of(result(timedOut=True), 2, 30).message
    assert "changed 3" in outcome_of(result(changedFiles=changed(3)), 2, 30).message
    assert "tmp and workspace" in outcome_of(result(fullVolumes=["tmp", "workspace"], exitCode=1), 2, 30).message
    disk = outcome_of(result(fullVolumes=["termination-log", "tmp"], exitCode=137), 2, 30).message
    assert disk == ("the command filled its tmp volume to the configured size limit and wrote more than 4096 bytes "
                    "to the termination message file, which is on the node's disk, so it was stopped (exit status 137)")
    assert outcome_of(result(exitCode=3, error="exec failed"), 2, 30).message == "exec failed"
    full = outcome_of(result(memoryExhausted=True, fullVolumes=["shm", "tmp"], changedFiles=changed(7)), 2, 30)
    assert "memory" in full.message and "shm, tmp" in full.message and "7 workspace entries" in full.message
    unlimited = outcome_of(result(exitCode=None, pids={"limited": False, "detail": "1024 more tasks"}), 2, 30)
    assert "1024 more tasks" in unlimited.message and "podPidsLimit" in unlimited.message
    cut = outcome_of(result(error=runner.LISTING_UNFINISHED, changedFiles=changed(0, complete=False)), 2, 30)
    assert cut.message == runner.LISTING_UNFINISHED


def record(ok: bool, reason: str, message: str = "why", digest: str | None = None) -> PrepareResult:
    return PrepareResult.model_validate({**prepare.record(ok, reason, message), "digest": digest})


PREPARE_ROWS = [
    # (exit code, record, phase, reason, event)
    (1, record(False, "source_changed"), "Failed", "ApprovalMismatch", "ApprovalMismatch"),
    (1, record(False, "symlink"), "Rejected", "symlink", "SourceRejected"),
    (1, None, "Failed", "PrepareFailed", "JobFailed"),
    (2, record(False, "prepare_error"), "Failed", "PrepareFailed", "JobFailed"),
    (2, record(False, "symlink"), "Failed", "PrepareFailed", "JobFailed"),  # only exit 1 rejects
    (137, None, "Failed", "PrepareFailed", "JobFailed"),
    (1, record(True, "copied"), "Failed", "PrepareFailed", "JobFailed"),  # ok but exit 1: not trusted
]


@pytest.mark.parametrize(("code", "rec", "phase", "reason", "event"), PREPARE_ROWS)
def test_prepare_outcome(code, rec, phase, reason, event):
    got = prepare_outcome(code, rec)
    assert (got.phase.value, got.reason, got.event) == (phase, reason, event)


def test_prepare_failure_says_what_is_known():
    assert prepare_outcome(137, None).message == "preparing the workspace failed: exit 137"
    assert prepare_outcome(2, record(False, "prepare_error", "bad spec")).message.endswith("bad spec")
    assert len(prepare_outcome(1, record(False, "symlink", "x" * 5000)).message) == 1024


DIGEST = "sha256:" + "5" * 64
REVIEW_ROWS = [
    (record(True, "copied", digest=DIGEST), DIGEST),
    (record(True, "copied", digest=None), ("Failed", "PrepareFailed")),  # no digest: nothing to pin
    (record(False, "symlink"), ("Rejected", "symlink")),
    (record(False, "prepare_error"), ("Failed", "PrepareFailed")),
    (None, ("Failed", "PrepareFailed")),
]


@pytest.mark.parametrize(("rec", "expected"), REVIEW_ROWS)
def test_review_outcome(rec, expected):
    got = review_outcome(rec)
    assert got == expected if isinstance(expected, str) else (got.phase.value, got.reason) == expected


@pytest.mark.parametrize(
    ("pod_reason", "exit_code", "reason"),
    [("DeadlineExceeded", None, "Timeout"), (None, 0, "ResultUnreadable"), ("Evicted", 137, "ResultUnreadable")],
)
def test_no_record_outcome(pod_reason, exit_code, reason):
    got = no_record_outcome(pod_reason, exit_code)
    assert (got.phase.value, got.reason) == ("Failed", reason)
