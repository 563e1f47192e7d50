"""The `safeagent policy check` contract that tests outside the project rely on."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import CONFIGS

SAFEAGENT = str(Path(sys.executable).parent / "safeagent")
POLICY = str(CONFIGS / "policy.yaml")
EXECUTION = str(CONFIGS / "policy.execution.yaml")
KEYS = ["decision", "argv", "reason", "message"]


def run(*args, stdin=None):
    return subprocess.run([SAFEAGENT, *args], capture_output=True, input=stdin, timeout=30)


@pytest.mark.parametrize(
    ("policy", "command", "decision"),
    [
        (POLICY, "ls", "allow"),
        (POLICY, "rm delete-me.txt", "require_approval"),
        (POLICY, "git diff --no-index a b", "deny"),
        (POLICY, "pytest", "deny"),
        (EXECUTION, "pytest", "allow"),
        (POLICY, "ls; id", "deny"),
        (POLICY, "-x", "deny"),
        (POLICY, "", "deny"),
        # Command lines that look like the CLI's own options are still command lines.
        (POLICY, "-h", "deny"),
        (POLICY, "--help", "deny"),
        (POLICY, "--pol", "deny"),
        (POLICY, "--json", "deny"),
        (POLICY, "--policy", "deny"),
        (POLICY, "--policy=x", "deny"),
    ],
)
def test_single_command(policy, command, decision):
    result = run("policy", "check", "--policy", policy, command)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert list(data) == KEYS and data["decision"] == decision


def test_double_dash_ends_the_options():
    data = json.loads(run("policy", "check", "--policy", POLICY, "--", "--jsonl").stdout)
    assert data["decision"] == "deny" and data["argv"] == ["--jsonl"]


def test_argv_is_null_when_denied_before_tokenising():
    data = json.loads(run("policy", "check", "--policy", POLICY, "ls $(id)").stdout)
    assert data["argv"] is None and data["reason"] == "shell_metacharacter"
    data = json.loads(run("policy", "check", "--policy", POLICY, "cat /etc/passwd").stdout)
    assert data["argv"] == ["cat", "/etc/passwd"]


def test_jsonl_keeps_order_and_count():
    commands = ["ls", "rm x", "ls\nid", "cat \u202e", "git log -3", "\u00e9", "x" * 5000]
    stdin = "".join(json.dumps(command) + "\n" for command in commands).encode()
    result = run("policy", "check", "--policy", POLICY, "--jsonl", stdin=stdin)
    assert result.returncode == 0
    outputs = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [o["decision"] for o in outputs] == ["allow", "require_approval", "deny", "deny", "allow", "deny", "deny"]
    assert all(list(o) == KEYS for o in outputs)


def test_jsonl_bad_lines_are_denied_in_place():
    stdin = b'"ls"\nnot json\n42\n\n\xff\xfe\n"ls -la"\n"\\ud800"\n'
    result = run("policy", "check", "--policy", POLICY, "--jsonl", stdin=stdin)
    assert result.returncode == 0
    outputs = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [o["reason"] for o in outputs] == [
        "allowed", "invalid_input", "invalid_input", "invalid_input", "invalid_input", "allowed", "invalid_encoding"
    ]


def test_undecodable_argument_is_denied():
    result = subprocess.run([SAFEAGENT.encode(), b"policy", b"check", b"--policy", POLICY.encode(), b"cat \xff"], capture_output=True, timeout=30)
    assert result.returncode == 0 and json.loads(result.stdout)["reason"] == "invalid_encoding"


@pytest.mark.parametrize(
    "args",
    [
        ("policy", "check", "--policy", "/nonexistent/policy.yaml", "ls"),
        ("policy", "check", "--policy", POLICY),
        ("policy", "check", "--policy", POLICY, "--jsonl", "ls"),
        ("policy", "check", "ls"),
        ("policy", "check", "--policy", POLICY, "ls", "extra"),
        ("policy",),
        ("policy", "frobnicate"),
        (),
    ],
)
def test_usage_errors_exit_2_with_a_message(args):
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.strip()


def test_bad_policy_file_exits_2_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nmax_output_kb: 1\nmax_file_writes: 0\nprograms:\n  ls:\n    optionz: []\n")
    result = run("policy", "check", "--policy", str(bad), "ls")
    assert result.returncode == 2 and result.stdout == b""
    assert "programs.ls.optionz" in result.stderr.decode()


def test_in_process_main_matches(capsys):
    from safeagent.cli import main

    assert main(["policy", "check", "--policy", POLICY, "git status"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "allow"
