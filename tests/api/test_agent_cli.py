"""The `safeagent` command as a process, against the real API server with the operator under Kopf
in this process (test_handlers.py's `operated`), each identity a ServiceAccount bound to one of the
chart's roles: `run`'s output and exit status pass through, the approval round trip with
`safeagent approve` run by a second identity, a submitter cannot approve, and Ctrl-C leaves the job
going for `safeagent follow` to pick up."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.api.stage import BOUND_NAMESPACE
from tests.api.test_client import identity, pod_of, status_of
from tests.api.test_handlers import _as_the_operator, eventually, operated  # noqa: F401 -- the fixture and its login
from tests.api.world import runner_record

SAFEAGENT = str(Path(sys.executable).parent / "safeagent")


def safeagent(kubeconfig: str, *words: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([SAFEAGENT, *words[:1], "--kubeconfig", kubeconfig, "-n", BOUND_NAMESPACE, *words[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def ended(process: subprocess.Popen, timeout: float = 45.0) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_run_passes_output_and_exit_status_through(stage, operated, tmp_path):  # noqa: F811
    world = operated
    agent = identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path)
    name = f"cli-{uuid.uuid4().hex[:6]}"
    process = safeagent(agent, "run", "--configmap", "repo", "--name", name, "--", "ls", "-la",
                        stdin=subprocess.DEVNULL)
    pod = eventually(lambda: pod_of(world, name), "the job's Pod launched")
    world.finish_pod(pod, runner_record(exitCode=4, stdout="a.txt\n", stderr="warning\n", stdoutBytes=6, stderrBytes=8))
    code, out, err = ended(process)
    assert (code, out, err) == (4, "a.txt\n", "warning\n"), "nothing of ours on a pipe: no progress lines"
    assert world.job(name)["spec"]["command"] == "ls -la"


def test_denied_says_one_line_and_exits_200(stage, operated, tmp_path):  # noqa: F811
    agent = identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path)
    code, out, err = ended(safeagent(agent, "run", "--configmap", "repo", "--", "cat delete-me.txt; id"))
    assert (code, out) == (200, "")
    assert err.count("\n") == 1 and "denied by the policy (shell_metacharacter)" in err


def test_approval_round_trip_with_a_second_identity(stage, operated, tmp_path):  # noqa: F811
    world = operated
    agent = identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path)
    reviewer = identity(stage, BOUND_NAMESPACE, "safeagent-approver", tmp_path)
    name = f"rm-{uuid.uuid4().hex[:6]}"
    process = safeagent(agent, "run", "--configmap", "repo", "--name", name, "--wait-approval", "40",
                        "--", "rm", "delete-me.txt")
    approval = eventually(lambda: status_of(world, name).get("approvalName"), "the Approval requested")
    code, listed, _ = ended(safeagent(reviewer, "approvals"))
    assert code == 0 and approval in listed and name in listed and "rm delete-me.txt" in listed
    # The agent's identity cannot approve its own command.
    code, _, err = ended(safeagent(agent, "approve", approval))
    assert code == 208 and "forbidden" in err.lower()
    code, out, _ = ended(safeagent(reviewer, "approve", approval, "--note", "fine"))
    assert (code, out) == (0, f"approval {approval}: Approved\n")
    pod = eventually(lambda: pod_of(world, name), "the approved job launched")
    world.finish_pod(pod, runner_record(stdout=""))
    code, out, err = ended(process)
    assert code == 0, err
    said = [line for line in err.splitlines() if "waits for a reviewer" in line]
    assert len(said) == 1 and f"safeagent approve -n {BOUND_NAMESPACE} {approval}" in said[0]
    assert world.approvals[approval]["spec"]["note"] == "fine"


def test_no_wait_returns_204_and_the_job_stays(stage, operated, tmp_path):  # noqa: F811
    world = operated
    agent = identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path)
    name = f"rm-{uuid.uuid4().hex[:6]}"
    code, _, err = ended(safeagent(agent, "run", "--configmap", "repo", "--name", name, "--no-wait",
                                   "--", "rm delete-me.txt"))
    assert code == 204 and "still waiting for approval" in err and f"safeagent follow -n {BOUND_NAMESPACE} {name}" in err
    assert world.status(name)["phase"] == "AwaitingApproval"


def test_ctrl_c_leaves_the_job_going_and_follow_picks_it_up(stage, operated, tmp_path):  # noqa: F811
    world = operated
    agent = identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path)
    name = f"int-{uuid.uuid4().hex[:6]}"
    process = safeagent(agent, "run", "--configmap", "repo", "--name", name, "--", "ls")
    pod = eventually(lambda: pod_of(world, name), "the job's Pod launched")
    time.sleep(0.5)  # the watch is open
    process.send_signal(signal.SIGINT)
    code, out, err = ended(process)
    assert code == 130 and out == ""
    assert f"job {name} goes on" in err and f"safeagent follow -n {BOUND_NAMESPACE} {name}" in err
    assert world.status(name)["phase"] == "Running", "the job was left alone"
    world.finish_pod(pod, runner_record(stdout="later\n"))
    code, out, _ = ended(safeagent(agent, "follow", name))
    assert (code, out) == (0, "later\n")
