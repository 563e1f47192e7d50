"""The MCP server's pure parts: the command line an argv becomes, the job a request id names, and
what an agent reads for each outcome (tests/api/test_mcp.py drives the server itself)."""

from __future__ import annotations

import shlex

import pytest

from safeagent import mcp_server
from safeagent.client import result_of

def test_mcp_argv_and_line():
    assert mcp_server.command_line(["grep", "-n", "a b", "f"]) == "grep -n 'a b' f"
    assert shlex.split(mcp_server.command_line(["grep", "-n", "a b", "f"])) == ["grep", "-n", "a b", "f"]
    assert mcp_server.command_line("git log -5") == "git log -5"
    with pytest.raises(ValueError):
        mcp_server.command_line([])


def test_mcp_request_id_names_one_job():
    assert mcp_server.job_name(None) is None
    first = mcp_server.job_name("call-7")
    assert first == mcp_server.job_name("call-7") != mcp_server.job_name("call-8")
    assert first.startswith("mcp-") and len(first) <= 63


def test_what_an_agent_reads_when_approval_is_needed():
    result = result_of({"metadata": {"name": "mcp-1", "namespace": "ns"},
                        "status": {"phase": "AwaitingApproval", "approvalName": "mcp-1-ap"}}, 0)
    text = mcp_server.summary(result)
    assert "has NOT run" in text and "mcp-1-ap" in text and "safeagent approve -n ns mcp-1-ap" in text
    assert "job_status" in text and "do not submit the command again" in text


def test_what_an_agent_reads_on_denial_and_on_a_result():
    denied = result_of({"metadata": {"name": "j", "namespace": "ns"},
                        "status": {"phase": "Denied", "reason": "shell_metacharacter", "message": "no ;"}}, 0)
    assert "Outcome denied: shell_metacharacter: no ;" in mcp_server.summary(denied)
    assert "Nothing ran." in mcp_server.summary(denied)
    ran = result_of({"metadata": {"name": "j", "namespace": "ns"},
                     "status": {"phase": "Succeeded", "exitCode": 0, "stdout": "hello\n"}}, 0)
    assert mcp_server.summary(ran).startswith("Exit status 0") and "--- stdout ---\nhello\n" in mcp_server.summary(ran)
