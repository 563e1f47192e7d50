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


# ------------------------------------------------------------------ a full sandbox, PIDs (issue 20)


def test_a_sandbox_whose_memory_ran_out_keeps_its_exit_code_output_and_what_filled_it(world):
    changed = {"created": 69177, "modified": 0, "deleted": 0, "total": 69177, "complete": True,
               "paths": ["+big", "+many/0"]}
    record = runner_record(exitCode=137, signal="SIGKILL", stdout="files 60000\n", memoryExhausted=True,
                           fullVolumes=["shm", "tmp", "workspace"], changedFiles=changed)
    assert world.run_to_result(record) == "Failed"
    st = world.status("list")
    assert st["reason"] == "MemoryLimitReached" and "shm, tmp, workspace" in st["message"]
    assert (st["exitCode"], st["stdout"], st["memoryExhausted"]) == (137, "files 60000\n", True)
    assert st["fullVolumes"] == ["shm", "tmp", "workspace"] and st["changedFiles"]["created"] == 69177
    assert "PolicyViolation" in world.reasons()


def test_a_runner_stopped_while_listing_still_gives_the_commands_result(world):
    """The final record was cut off mid-line (the runner killed while writing it): the command's
    part, written first, stands, and the missing listing fails the job."""
    world.add_job("list", "ls")
    world.run("list")
    pod = world.status("list")["podName"]
    world.finish_pod(pod, runner_record(exitCode=3, stdout="out\n"))
    text = world.log(pod, "runner")
    world.set_log(pod, "runner", text[: len(text) - 40])  # the last line loses its end and newline
    assert world.run("list") == "Failed"
    st = world.status("list")
    assert (st["reason"], st["exitCode"], st["stdout"]) == ("WorkspaceUninspectable", 3, "out\n")
    assert "before it finished listing" in st["message"] and st["changedFiles"]["complete"] is False


def test_a_pod_without_a_pid_limit_ran_nothing_and_says_how_to_set_one(world):
    from safeagent.sandbox import runner

    pids = {"limited": False, "available": 1024, "elapsedMs": 41,
            "detail": "1024 more tasks started without refusal: no PID limit of at most 1024 is in force"}
    assert world.run_to_result(runner.no_result(None, pids=pids)) == "Failed"
    st = world.status("list")
    assert st["reason"] == "ResourcesNotLimited" and "podPidsLimit" in st["message"] and "never ran" in st["message"]
    assert st["pidsAvailable"] == 1024 and not {"exitCode", "stdout", "changedFiles"} & set(st)
