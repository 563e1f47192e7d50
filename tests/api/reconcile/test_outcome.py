"""reconcile/outcome.py and status.py on a real API server: the runner's record becomes the
job's final status, which the server stores whatever the command printed."""

from __future__ import annotations

import json

import pytest

from tests.api.world import compact, runner_record, unproven_record

UNCHANGED = {"created": 0, "modified": 0, "deleted": 0, "total": 0, "complete": True, "paths": []}


def test_too_many_changed_files_is_a_policy_violation(world):
    changed = {"created": 3, "modified": 0, "deleted": 0, "total": 3, "complete": True, "paths": ["+a", "+b", "+c"]}
    assert world.run_to_result(runner_record(changedFiles=changed)) == "Failed"
    assert world.status("list")["reason"] == "TooManyFileWrites"
    assert "PolicyViolation" in world.reasons()
    assert world.status("list")["stdout"] == "a.txt\nb.txt\n"  # the result is kept for review


def test_uninspectable_workspace_fails_closed(world):
    changed = {**UNCHANGED, "complete": False}
    assert world.run_to_result(runner_record(changedFiles=changed)) == "Failed"
    assert world.status("list")["reason"] == "WorkspaceUninspectable"


def test_truncation_flags_are_copied(world):
    record = runner_record(stdout="x" * 10, stdoutBytes=10_000_000, stdoutTruncated=True)
    assert world.run_to_result(record) == "Succeeded"
    st = world.status("list")
    assert st["stdoutTruncated"] is True and st["stdoutBytes"] == 10_000_000


def test_nonzero_exit_fails(world):
    assert world.run_to_result(runner_record(exitCode=2)) == "Failed"
    assert (world.status("list")["reason"], world.status("list")["exitCode"]) == ("NonZeroExit", 2)


def test_command_timeout_fails(world):
    assert world.run_to_result(runner_record(timedOut=True, exitCode=137, signal="SIGKILL")) == "Failed"
    assert world.status("list")["reason"] == "Timeout"
    assert "TimedOut" in world.reasons()


def test_missing_record_fails(world):
    world.add_job("list", "ls")
    world.run("list")
    world.finish_pod(world.status("list")["podName"], record=None, phase="Failed")
    assert world.run("list") == "Failed"
    assert world.status("list")["reason"] == "ResultUnreadable"


def test_forged_looking_lines_before_the_record_are_ignored(world):
    world.add_job("list", "ls")
    world.run("list")
    pod = world.status("list")["podName"]
    world.finish_pod(pod, runner_record(stdout="real"))
    world.set_log(pod, "runner", compact(runner_record(stdout="fake")) + "\n" + world.log(pod, "runner"))
    assert world.run("list") == "Succeeded"
    assert world.status("list")["stdout"] == "real"


def test_a_command_that_fills_a_scratch_volume_is_reported(world):
    assert world.run_to_result(runner_record(exitCode=1, fullVolumes=["tmp"])) == "Failed"
    st = world.status("list")
    assert st["reason"] == "DiskLimitReached" and "tmp" in st["message"] and st["exitCode"] == 1


def _go_json_size(text: str) -> int:
    """Upper bound of what the API server stores for a string (encoding/json escapes <, >, & and
    control characters as \\u00XX; invalid UTF-8 arrives as U+FFFD)."""
    return len(json.dumps(text, ensure_ascii=True)) + 5 * sum(text.count(c) for c in "<>&")


@pytest.mark.parametrize("char", ["<", "\ufffd", "\x01", "\U0001F600"])
def test_status_output_fits_etcd_whatever_the_characters(world, char):
    """256 KiB per stream (the policy's default) of characters that escape to 6 bytes would make
    the status ~3 MiB: the server refuses it and the result is lost. The operator trims and flags,
    and the real server takes what it writes."""
    big = char * (256 * 1024 // (1 if char == "\ufffd" else len(char.encode())))
    record = runner_record(stdout=big, stderr=big, stdoutBytes=len(big), stderrBytes=len(big))
    policy = world.ctx.policy()
    world.ctx.policy = lambda: policy.model_copy(update={"max_output_kb": 256})
    assert world.run_to_result(record) == "Succeeded"
    st = world.status("list")
    assert _go_json_size(st["stdout"]) + _go_json_size(st["stderr"]) <= 1024 * 1024 + 16
    assert st["stdoutTruncated"] is True and st["stderrTruncated"] is True
    assert st["stdout"] and set(st["stdout"]) == {char}


def test_small_output_is_kept_whole(world):
    text = "<tag> & \"q\" \n" * 100
    assert world.run_to_result(runner_record(stdout=text)) == "Succeeded"
    assert world.status("list")["stdout"] == text and world.status("list")["stdoutTruncated"] is False


def test_a_pod_whose_egress_was_never_proven_filtered_ran_nothing(world):
    egress = {"enforced": False, "rounds": 300, "elapsedMs": 20000,
              "detail": "egress not enforced within 20 seconds: the canary's closed port is reachable", "proof": None}
    assert world.run_to_result(unproven_record(egress)) == "Failed"
    st = world.status("list")
    assert st["reason"] == "EgressNotEnforced" and "never ran" in st["message"]
    assert not {"exitCode", "stdout", "changedFiles"} & set(st)
    assert st["egressCheckMs"] == 20000 and "egressProof" not in st  # how long it waited, in vain
    assert world.reasons()[-1] == "EgressNotEnforced"


def test_the_egress_wait_and_proof_reach_the_status(world):
    egress = {"enforced": True, "rounds": 1, "elapsedMs": 7, "detail": "enforced", "proof": "refusal"}
    assert world.run_to_result(runner_record(egress=egress, changedFiles=UNCHANGED)) == "Succeeded"
    st = world.status("list")
    assert (st["egressCheckMs"], st["egressProof"]) == (7, "refusal")
