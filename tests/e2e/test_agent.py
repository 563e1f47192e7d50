"""The agent's way in on a real cluster (issue 18): `safeagent run` and `safeagent mcp` as processes,
each identity a ServiceAccount of the sandbox namespace bound to one of the chart's roles, against
the operator the chart installed and real sandbox Pods.

`safeagent run`: output and exit status pass through (stdin not needed), a failing command's exit
status, a denial, the approval round trip with `safeagent approve` run as a second identity, a
refused approval, a timeout, and Ctrl-C with `safeagent follow`; `--source DIR` with a 50 MB
repository and its history (`git log`, `git status`, and `pytest` where the installed policy allows
it) and a poisoned digest-named object refused; and an MCP session driven by the SDK's own client
over stdio that initializes, lists tools and runs check_command and run_command.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clusterlib import wait_for
from sbj_helpers import NS, SLOW_GREP, slow_grep_file, unique

SAFEAGENT = str(Path(sys.executable).parent / "safeagent")
# An agent as README "Connecting an agent" sets one up: it submits, and uploads or reads its sources.
AGENT = ("safeagent-submitter", "safeagent-source-uploader")


@pytest.fixture
def identities(kubectl, sandbox, tmp_path):
    """identities(*roles, namespace=NS) -> the kubeconfig of a fresh ServiceAccount bound to `roles`
    in `namespace` (its context's namespace)."""
    view = json.loads(kubectl("config", "view", "--minify", "--raw", "-o", "json").stdout)
    cluster = view["clusters"][0]["cluster"]
    made: list[tuple[str, str]] = []

    def make(*roles: str, namespace: str = NS) -> str:
        name = unique("agent")
        kubectl("-n", namespace, "create", "serviceaccount", name)
        made.append((namespace, f"serviceaccount/{name}"))
        for role in roles:
            binding = f"{name}-{role.removeprefix('safeagent-')}"
            kubectl("-n", namespace, "create", "rolebinding", binding, f"--clusterrole={role}",
                    f"--serviceaccount={namespace}:{name}")
            made.append((namespace, f"rolebinding/{binding}"))
        token = kubectl("-n", namespace, "create", "token", name, "--duration=1h").stdout.strip()
        ca = cluster.get("certificate-authority-data") or base64.b64encode(
            Path(cluster["certificate-authority"]).read_bytes()).decode()
        path = tmp_path / f"{name}.kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "agent",
            "clusters": [{"name": "c", "cluster": {"server": cluster["server"], "certificate-authority-data": ca}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "agent", "context": {"cluster": "c", "user": "u", "namespace": namespace}}],
        }))
        return str(path)

    yield make
    for namespace, item in made:
        kubectl("-n", namespace, "delete", item, "--ignore-not-found", check=False)


def safeagent(kubeconfig: str, *words: str) -> subprocess.Popen:
    return subprocess.Popen([SAFEAGENT, *words[:1], "--kubeconfig", kubeconfig, *words[1:]],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ended(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def forget_job(sandbox, name: str) -> None:
    sandbox.created.append(("sandboxjob", name))


def test_run_passes_output_and_exit_status_through(sandbox, identities):
    agent = identities(*AGENT)
    repo = sandbox.repo({"hello.txt": "hello from the repo\n"})
    name = unique("run")
    forget_job(sandbox, name)
    code, out, err = ended(safeagent(agent, "run", "--configmap", repo, "--name", name, "--", "cat", "hello.txt"))
    assert (code, out) == (0, "hello from the repo\n"), err
    failing = unique("run")
    forget_job(sandbox, failing)
    code, out, err = ended(safeagent(agent, "run", "--configmap", repo, "--name", failing, "--", "ls", "no-such-file"))
    assert code == 2 and out == "" and "no-such-file" in err, "ls's own status and message"


def test_run_denied(sandbox, identities):
    agent = identities(*AGENT)
    repo = sandbox.repo({"a.txt": "a\n"})
    name = unique("run")
    forget_job(sandbox, name)
    code, out, err = ended(safeagent(agent, "run", "--configmap", repo, "--name", name, "--", "cat a.txt; id"))
    assert (code, out) == (200, "") and "denied by the policy (shell_metacharacter)" in err


@pytest.mark.parametrize(("verb", "code"), [("approve", 0), ("deny", 202)])
def test_approval_round_trip_with_a_second_identity(sandbox, identities, verb, code):
    agent, reviewer = identities(*AGENT), identities("safeagent-approver")
    repo = sandbox.repo({"delete-me.txt": "bye\n"})
    name = unique("rm")
    forget_job(sandbox, name)
    running = safeagent(agent, "run", "--configmap", repo, "--name", name, "--wait-approval", "240",
                        "--", "rm", "delete-me.txt")
    deadline, approval = time.monotonic() + 120, None
    while approval is None and time.monotonic() < deadline:
        listed = ended(safeagent(reviewer, "approvals"), 60)[1]
        approval = next((line.split()[0] for line in listed.splitlines()[1:] if name in line.split()), None)
        time.sleep(1)
    assert approval, "the Approval was listed for the reviewer"
    refused = ended(safeagent(agent, "approve", approval), 60)
    assert refused[0] == 208 and "forbidden" in refused[2].lower(), "the agent cannot approve its own command"
    assert ended(safeagent(reviewer, verb, approval, "--note", "e2e"), 60)[0] == 0
    status, _, err = ended(running)
    assert status == code, err
    assert err.count("waits for a reviewer") == 1 and f"safeagent approve -n {NS} {approval}" in err
    if verb == "approve":
        assert "-delete-me.txt" in err and "not applied back" in err


def test_run_timed_out(sandbox, identities):
    agent = identities(*AGENT)
    repo = sandbox.repo({"slow.txt": slow_grep_file(20000)})
    name = unique("slow")
    forget_job(sandbox, name)
    code, _, err = ended(safeagent(agent, "run", "--configmap", repo, "--name", name, "--timeout", "2",
                                   "--", SLOW_GREP))
    assert code == 205 and "timed out" in err


def test_ctrl_c_leaves_the_job_and_follow_picks_it_up(sandbox, identities):
    agent = identities(*AGENT)
    repo = sandbox.repo({"slow.txt": slow_grep_file(3000)})
    name = unique("int")
    forget_job(sandbox, name)
    running = safeagent(agent, "run", "--configmap", repo, "--name", name, "--", SLOW_GREP)
    # The process needs a moment to start and create the job: wait for it to exist first.
    wait_for(lambda: sandbox.kubectl("-n", NS, "get", "sandboxjob", name, check=False).returncode == 0,
             timeout=60, interval=0.5, what=f"safeagent run to create {name}")
    sandbox.wait_phase(name, "Running", timeout=120)
    running.send_signal(signal.SIGINT)
    code, out, err = ended(running, 60)
    assert code == 130 and f"safeagent follow -n {NS} {name}" in err
    code, out, _ = ended(safeagent(agent, "follow", name))
    assert (code, out) == (0, "1\n")


def test_an_mcp_session_over_stdio(sandbox, identities):
    pytest.importorskip("mcp")
    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    agent = identities(*AGENT)
    repo = sandbox.repo({"hello.txt": "hello\n"})
    request = unique("req")
    seen: dict = {}

    async def main() -> None:
        parameters = StdioServerParameters(command=SAFEAGENT, args=[
            "mcp", "--kubeconfig", agent, "--source", f"configmap:{repo}", "--max-wait", "240"])
        async with Client(parameters, mode="legacy") as client:
            seen["tools"] = sorted(tool.name for tool in (await client.list_tools()).tools)
            seen["check"] = (await client.call_tool("check_command", {"command": "rm hello.txt"})).structured_content
            seen["run"] = await client.call_tool("run_command", {"command": ["cat", "hello.txt"], "request_id": request})

    anyio.run(main)
    assert seen["tools"] == ["check_command", "job_status", "run_command"]
    assert seen["check"]["decision"] == "require_approval"
    ran = seen["run"]
    forget_job(sandbox, ran.structured_content["job"])
    assert ran.structured_content["outcome"] == "succeeded" and ran.structured_content["stdout"] == "hello\n"
    assert "hello" in ran.content[0].text


def git_repository(root: Path, rounds: int, files: int, size: int) -> Path:
    import os

    root.mkdir()
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / "test_sample.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    for round_ in range(rounds):
        for index in range(round_, files, rounds):
            target = root / "data" / f"blob{index:03}.bin"
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(os.urandom(size))
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", f"round {round_}"], check=True)
    return root


def forget_uploads(sandbox, kubectl) -> None:
    """The chunk and manifest ConfigMaps a test uploaded (the agent cannot delete them; the admin can)."""
    listed = json.loads(kubectl("-n", NS, "get", "configmaps", "-l", "app.kubernetes.io/created-by=safeagent-client",
                                "-o", "json").stdout)["items"]
    for item in listed:
        sandbox.created.append(("configmap", item["metadata"]["name"]))


@pytest.mark.skipif(__import__("shutil").which("git") is None, reason="needs git on the test host")
def test_a_50_mb_repository_with_its_history(sandbox, identities, kubectl, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    agent = identities(*AGENT)
    repo = git_repository(tmp_path / "repo", rounds=2, files=250, size=100_000)
    name = unique("big")
    forget_job(sandbox, name)
    try:
        code, out, err = ended(safeagent(agent, "run", "--source", str(repo), "--name", name, "--", "git", "log",
                                         "--oneline"), 600)
        assert code == 0, err
        assert [line.split(" ", 1)[1] for line in out.splitlines()] == ["round 1", "round 0"]
        second = unique("big")
        forget_job(sandbox, second)
        code, out, err = ended(safeagent(agent, "run", "--source", str(repo), "--name", second, "--", "git", "status",
                                         "--short"), 600)
        assert (code, out) == (0, ""), err
    finally:
        forget_uploads(sandbox, kubectl)


@pytest.mark.disruptive  # not disruptive itself: it needs the second release the burst tests install, run with them
@pytest.mark.skipif(__import__("shutil").which("git") is None, reason="needs git on the test host")
def test_pytest_runs_on_a_50_mb_repository_under_the_execution_policy(burst_release, identities, tmp_path,
                                                                       monkeypatch):
    """The inspect-only policy the main release runs denies pytest; the burst release runs the
    execution preset in a namespace of its own: there the agent uploads the same 50 MB repository
    and its tests run."""
    from burst import SANDBOX_NS as EXECUTION_NS

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    agent = identities(*AGENT, namespace=EXECUTION_NS)
    repo = git_repository(tmp_path / "repo", rounds=2, files=250, size=100_000)
    code, out, err = ended(safeagent(agent, "run", "-n", EXECUTION_NS, "--source", str(repo), "--name", unique("pytest"),
                                     "--", "pytest", "-q", "test_sample.py"), 600)
    assert code == 0 and "1 passed" in out, err
    # (the burst release's namespace, its jobs and uploads go with it at the end of the session)


def test_a_poisoned_digest_named_object_is_refused(sandbox, identities, tmp_path, monkeypatch):
    """Another submitter creates an immutable object under the name a chunk will have, with other
    bytes: the agent's upload refuses to reuse it and nothing is created for the job."""
    import zlib

    from kubernetes import client as kube
    from kubernetes import config

    from safeagent.sandbox import bundle

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    agent, poisoner = identities(*AGENT), identities(*AGENT)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "a.txt").write_text("the real content " + unique("x") + "\n")
    chunk = bundle.chunk_name(next(iter(bundle.pack(str(tmp_path / "repo")).chunks)))
    api = kube.CoreV1Api(config.new_client_from_config(config_file=poisoner))
    api.create_namespaced_config_map(NS, {"metadata": {"name": chunk}, "immutable": True, "binaryData": {
        bundle.CHUNK_KEY: base64.b64encode(zlib.compress(b"evil\n")).decode()}})
    sandbox.created.append(("configmap", chunk))
    name = unique("poisoned")
    code, _, err = ended(safeagent(agent, "run", "--source", str(tmp_path / "repo"), "--name", name,
                                   "--", "cat", "a.txt"), 120)
    assert code == 201 and "poisoned_object" in err and chunk in err
    assert sandbox.kubectl("-n", NS, "get", "sandboxjob", name, check=False).returncode != 0, "no job was created"
