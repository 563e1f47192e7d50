"""`safeagent mcp` as a process, driven by the MCP SDK's own client over stdio, against the real
API server with the operator under Kopf in this process (test_handlers.py's `operated`): it
initializes, lists its three tools (and no approving one), check_command asks the published policy
without making a job, run_command runs a command (the test plays the node) and says plainly when an
Approval is needed, job_status follows the decision, and an identity that may approve is refused."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import anyio
import pytest

from tests.api.stage import BOUND_NAMESPACE
from tests.api.test_client import identity, pod_of, status_of
from tests.api.test_handlers import _as_the_operator, eventually, operated  # noqa: F401 -- the fixture and its login
from tests.api.world import runner_record

mcp = pytest.importorskip("mcp")

SAFEAGENT = str(Path(sys.executable).parent / "safeagent")


def session(kubeconfig: str, *extra: str):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    parameters = StdioServerParameters(command=SAFEAGENT, args=[
        "mcp", "--kubeconfig", kubeconfig, "-n", BOUND_NAMESPACE, "--source", "configmap:repo", *extra])
    return Client(parameters, mode="legacy")  # the initialize handshake, as today's agents speak it


def test_initialize_list_tools_check_and_run(stage, operated, tmp_path):  # noqa: F811
    world = operated
    agent = identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path)
    name = f"mcp-rt-{uuid.uuid4().hex[:6]}"
    seen: dict = {}

    def node() -> None:  # the test's part: the Pod "runs" once the job launched it
        pod = eventually(lambda: pod_of(world, seen.get("job") or "?") if seen.get("job") else None,
                         "the MCP job launched", timeout=40)
        world.finish_pod(pod, runner_record(exitCode=1, stdout="hello\n", stdoutBytes=6))

    async def main() -> None:
        async with session(agent) as client:
            seen["protocol"] = client.protocol_version
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            seen["tools"] = tools
            checked = await client.call_tool("check_command", {"command": ["rm", "delete-me.txt"]})
            seen["check"] = checked.structured_content
            before = len(world.custom.list_namespaced_custom_object("safeagent.ca", "v1alpha1", world.ns,
                                                                    "sandboxjobs")["items"])
            seen["jobs_after_check"] = before
            seen["job"] = None
            helper = threading.Thread(target=node, daemon=True)
            helper.start()
            # The request id names the job: the test learns it the way a retrying agent reuses it.
            from safeagent.mcp_server import job_name

            seen["job"] = job_name(name)
            ran = await client.call_tool("run_command", {"command": ["ls", "-la"], "request_id": name})
            seen["run"] = ran
            helper.join(5)

    anyio.run(main)
    assert seen["protocol"] == "2025-11-25"
    tools = seen["tools"]
    assert set(tools) == {"run_command", "check_command", "job_status"}, "no tool approves or denies"
    assert tools["run_command"].output_schema["properties"]["outcome"], "run_command has an output schema"
    assert seen["check"]["decision"] == "require_approval" and seen["check"]["argv"] == ["rm", "delete-me.txt"]
    ran = seen["run"]
    assert ran.structured_content["outcome"] == "command_failed" and ran.structured_content["exitCode"] == 1
    assert ran.structured_content["job"] == seen["job"]
    text = ran.content[0].text
    assert text.startswith("Exit status 1") and "hello" in text


def test_approval_needed_is_said_plainly_and_job_status_learns_the_decision(stage, operated, tmp_path):  # noqa: F811
    world = operated
    agent = identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path)
    seen: dict = {}

    async def main() -> None:
        async with session(agent) as client:
            waiting = await client.call_tool("run_command", {"command": "rm delete-me.txt"})
            seen["waiting"] = waiting
            job = waiting.structured_content["job"]
            await anyio.to_thread.run_sync(
                lambda: world.decide(waiting.structured_content["approval"], "Denied"))
            seen["status"] = await client.call_tool("job_status", {"job": job, "wait_seconds": 20})
            seen["pod"] = status_of(world, job).get("podName")

    anyio.run(main)
    waiting = seen["waiting"]
    assert waiting.structured_content["outcome"] == "awaiting_approval" and not waiting.is_error
    approval = waiting.structured_content["approval"]
    text = waiting.content[0].text
    assert "has NOT run" in text and f"safeagent approve -n {BOUND_NAMESPACE} {approval}" in text
    assert seen["status"].structured_content["outcome"] == "approval_denied" and seen["status"].is_error
    assert seen["pod"] is None, "nothing ran"


def test_an_identity_that_may_approve_is_refused(stage, operated, tmp_path):  # noqa: F811
    admin = str(stage.server.kubeconfig(stage.server.admin_token, tmp_path / "admin.kubeconfig"))
    refused = subprocess.run([SAFEAGENT, "mcp", "--kubeconfig", admin, "-n", BOUND_NAMESPACE], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert refused.returncode == 3
    assert "approve or deny Approvals" in refused.stderr and "impersonate users" in refused.stderr
    assert "edit the operator's policy" in refused.stderr and "refusing to serve" in refused.stderr
    reviewer = identity(stage, BOUND_NAMESPACE, "safeagent-approver", tmp_path)
    refused = subprocess.run([SAFEAGENT, "mcp", "--kubeconfig", reviewer, "-n", BOUND_NAMESPACE], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert refused.returncode == 3 and "approve or deny Approvals" in refused.stderr
    assert "impersonate" not in refused.stderr
