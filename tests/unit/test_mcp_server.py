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


def test_a_dir_source_is_uploaded_and_a_refusal_is_said(tmp_path):
    from safeagent.client import BundleSource, ConfigMapSource, SourceRefused, Upload

    class Uploading:
        def __init__(self, refuse=False):
            self.refuse, self.uploaded = refuse, []

        def upload(self, directory):
            if self.refuse:
                raise SourceRefused("symlink", "a link")
            self.uploaded.append(directory)
            return Upload(BundleSource("sa-bundle-" + "0" * 64), 1, 1, 1, 1, 0.1)

    fake = Uploading()
    assert mcp_server.resolve_source(fake, f"dir:{tmp_path}") == BundleSource("sa-bundle-" + "0" * 64)
    assert fake.uploaded == [str(tmp_path)]
    assert mcp_server.resolve_source(fake, "configmap:repo") == ConfigMapSource("repo")
    with pytest.raises(ValueError, match="symlink"):
        mcp_server.resolve_source(Uploading(refuse=True), f"dir:{tmp_path}")
