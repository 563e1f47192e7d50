"""`safeagent run`, `follow` and the reviewer commands without a cluster: argument handling, the
exit status of every outcome, what is said on stderr (once, and progress only on a terminal), and
Ctrl-C. The client is a fake here; tests/api/test_client.py and test_agent_cli.py there run the
real one against a real API server."""

from __future__ import annotations

import io
import shlex

import pytest

from safeagent import agent_cli, cli
from safeagent.agent_cli import EXIT_CODES, EXIT_INTERRUPTED, EXIT_USAGE, Reporter, UsageError
from safeagent.client import BundleSource, ConfigMapSource, Outcome, SourceRefused, Upload, VolumeSource, result_of


def job(name="run-1", **status):
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"command": "ls"}, "status": status}


class FakeClient:
    """Records what it was asked; `follow` returns the job `final` as a Result (or raises `error`)."""

    namespace = "ns"

    def __init__(self, final=None, error=None, updates=()):
        self.final, self.error, self.updates = final, error, updates
        self.submitted = []
        self.followed = []

    def submit(self, command, source, *, profile, timeout, name):
        self.submitted.append((command, source, profile, timeout, name))
        return job(name)

    def upload(self, directory):
        if self.error is not None and isinstance(self.error, SourceRefused):
            raise self.error
        self.uploaded = directory
        return Upload(BundleSource("sa-bundle-" + "0" * 64), 1, 1, 1, 1, 0.1)

    def follow(self, job_or_name, *, wait_approval=None, notify=None, **_):
        self.followed.append((job_or_name, wait_approval))
        for update in self.updates:
            notify(update)
        if self.error is not None:
            raise self.error
        return result_of(self.final, 1.0)


def parse(*words):
    return cli.build_parser().parse_args(["run", *words])


def run(words, client, env=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    status = agent_cli.run(parse(*words), factory=lambda _: client, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    ("words", "line"),
    [
        (["--configmap", "repo", "--", "ls", "-la"], "ls -la"),
        (["--configmap", "repo", "--", "git log --oneline -5"], "git log --oneline -5"),  # one word: a command line
        (["--configmap", "repo", "--", "grep", "a b", "file.txt"], "grep 'a b' file.txt"),  # an argv, quoted
        (["--configmap", "repo", "ls"], "ls"),
        (["--configmap", "repo", "--", "--help"], "--help"),  # after `--`, the command's own words
        (["--configmap", "repo", "--", "rm", "-rf", "/"], "rm -rf /"),
    ],
)
def test_the_command_after_the_double_dash(words, line):
    client = FakeClient(final=job(phase="Succeeded", exitCode=0))
    status, _, _ = run(words, client)
    assert status == 0
    assert client.submitted[0][0] == line
    if len(words) > 4:
        assert shlex.split(line) == words[3:], "an argv comes back word for word"


@pytest.mark.parametrize(
    ("words", "source"),
    [
        (["--configmap", "repo"], ConfigMapSource("repo")),
        (["--pvc", "repos"], VolumeSource("repos", "")),
        (["--pvc", "repos:team/app"], VolumeSource("repos", "team/app")),
    ],
)
def test_sources(words, source):
    client = FakeClient(final=job(phase="Succeeded", exitCode=0))
    run([*words, "--", "ls"], client)
    assert client.submitted[0][1] == source


def test_the_source_from_the_environment(monkeypatch):
    monkeypatch.setenv(agent_cli.ENV_SOURCE, "pvc:repos:app")
    client = FakeClient(final=job(phase="Succeeded", exitCode=0))
    run(["--", "ls"], client)
    assert client.submitted[0][1] == VolumeSource("repos", "app")


@pytest.mark.parametrize(
    "words",
    [
        ["--", "ls"],  # no source
        ["--configmap", "a", "--pvc", "b", "--", "ls"],
        ["--configmap", "repo"],  # no command
        ["--configmap", "repo", "--"],
        ["--pvc", ":sub", "--", "ls"],
        ["--source", "/no/such/directory", "--", "ls"],
        ["--source", "/", "--configmap", "repo", "--", "ls"],
    ],
)
def test_bad_arguments_create_nothing(words, monkeypatch):
    monkeypatch.delenv(agent_cli.ENV_SOURCE, raising=False)
    client = FakeClient()
    with pytest.raises(UsageError):
        run(words, client)
    assert client.submitted == []


def test_bad_arguments_exit_2_with_one_line(capsys, monkeypatch):
    monkeypatch.delenv(agent_cli.ENV_SOURCE, raising=False)
    assert cli.main(["run", "--", "ls"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("safeagent: error: no source")


@pytest.mark.parametrize("words", [["--timeout", "0"], ["--timeout", "3601"], ["--profile", "internet"],
                                   ["--wait-approval", "-1"], ["--wait-approval", "5", "--no-wait"]])
def test_option_values_are_checked_by_the_parser(words, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--configmap", "repo", *words, "--", "ls"])
    assert exited.value.code == 2


def test_options_reach_the_job():
    client = FakeClient(final=job(phase="Succeeded", exitCode=0))
    run(["--configmap", "repo", "--profile", "git-read", "--timeout", "42", "--name", "mine", "--no-wait", "--", "ls"],
        client)
    assert client.submitted == [("ls", ConfigMapSource("repo"), "git-read", 42, "mine")]
    assert client.followed[0][1] == 0.0, "--no-wait: no wait for a reviewer"


def test_a_fresh_name_when_none_is_given():
    client = FakeClient(final=job(phase="Succeeded", exitCode=0))
    run(["--configmap", "repo", "--", "ls"], client)
    run(["--configmap", "repo", "--", "ls"], client)
    first, second = client.submitted[0][4], client.submitted[1][4]
    assert first != second and first.startswith("run-")


# ------------------------------------------------------------------------------------ outcomes


@pytest.mark.parametrize(
    ("status", "code", "said"),
    [
        ({"phase": "Succeeded", "reason": "Completed", "exitCode": 0}, 0, None),
        ({"phase": "Failed", "reason": "NonZeroExit", "exitCode": 3}, 3, None),
        ({"phase": "Failed", "reason": "NonZeroExit", "exitCode": 143}, 143, None),  # killed by a signal
        ({"phase": "Denied", "reason": "shell_metacharacter", "message": "no ;"}, 200, "denied by the policy"),
        ({"phase": "Rejected", "reason": "symlink", "message": "a link"}, 201, "the source was refused"),
        ({"phase": "Failed", "reason": "ApprovalMismatch", "message": "changed"}, 201, "the source was refused"),
        ({"phase": "Denied", "reason": "ApprovalDenied"}, 202, "the reviewer denied it"),
        ({"phase": "Failed", "reason": "ApprovalExpired"}, 203, "Approval expired"),
        ({"phase": "AwaitingApproval", "approvalName": "ap-1"}, 204, "still waiting for approval ap-1"),
        ({"phase": "Failed", "reason": "Timeout", "exitCode": 137, "timedOut": True}, 205, "timed out"),
        ({"phase": "Failed", "reason": "EgressNotEnforced"}, 206, "network filter could not be proven"),
        ({"phase": "Failed", "reason": "TooManyFileWrites", "exitCode": 0}, 207, "broke a limit"),
        ({"phase": "Failed", "reason": "DiskLimitReached", "exitCode": 1}, 207, "broke a limit"),
        ({"phase": "Failed", "reason": "PodLost"}, 208, "infrastructure failure"),
        ({"phase": "Failed", "reason": "PrepareFailed"}, 208, "infrastructure failure"),
        ({"phase": "Failed", "reason": "SourceNotFound"}, 208, "infrastructure failure"),
    ],
)
def test_each_outcome_has_its_exit_status_and_one_line(status, code, said):
    client = FakeClient(final=job(**status, stdout="out\n", stderr="err\n"))
    exit_status, out, err = run(["--configmap", "repo", "--", "ls"], client)
    assert exit_status == code
    assert out == "out\n", "the command's stdout passes through untouched"
    assert err.startswith("err\n"), "its stderr comes first"
    ours = [line for line in err.splitlines()[1:] if line.startswith("safeagent:")]
    if said is None:
        assert ours == []
    else:
        assert len(ours) == 1 and said in ours[0] and f"(exit {code})" in ours[0]


def test_the_codes_are_distinct_and_above_what_commands_use():
    codes = [code for outcome, code in EXIT_CODES.items() if outcome is not Outcome.RUNNING]
    assert len(set(codes)) == len(codes)
    assert min(codes) > 128 + 64, "above every 128+signal status"


def test_changed_files_and_truncation_are_reported_not_applied():
    changed = {"created": 1, "modified": 1, "deleted": 0, "total": 2, "complete": True, "paths": ["+new.txt", "~a.py"]}
    client = FakeClient(final=job(phase="Succeeded", exitCode=0, changedFiles=changed, stdoutTruncated=True))
    status, _, err = run(["--configmap", "repo", "--", "ls"], client)
    assert status == 0
    assert "stdout truncated" in err
    assert "changed 2 entries of its sandbox copy (not applied back): +new.txt ~a.py" in err


# ------------------------------------------------------------------------------------ what is said


def test_the_approval_wait_is_said_once_with_the_reviewers_command():
    waiting = job(phase="AwaitingApproval", approvalName="run-1-ap", argv=["rm", "x"])
    client = FakeClient(final=job(phase="Succeeded", exitCode=0), updates=[waiting, waiting, waiting])
    _, _, err = run(["--configmap", "repo", "--", "rm", "x"], client)
    lines = [line for line in err.splitlines() if "waits for a reviewer" in line]
    assert len(lines) == 1
    assert "Approval run-1-ap" in lines[0] and "safeagent approve -n ns run-1-ap" in lines[0]


def test_progress_only_on_a_terminal():
    updates = [job(phase="Pending"), job(phase="Running", reason="launched")]
    quiet, loud = io.StringIO(), io.StringIO()
    for stream, progress in ((quiet, False), (loud, True)):
        reporter = Reporter(stream, progress=progress)
        for update in updates:
            reporter(update)
    assert quiet.getvalue() == ""
    assert loud.getvalue().splitlines() == ["safeagent: job run-1: Pending", "safeagent: job run-1: Running (launched)"]


def test_a_pipe_is_not_a_terminal():
    assert Reporter(io.StringIO()).progress is False


def test_ctrl_c_leaves_the_job_and_says_how_to_pick_it_up():
    client = FakeClient(error=KeyboardInterrupt())
    status, out, err = run(["--configmap", "repo", "--name", "mine", "--", "ls"], client)
    assert status == EXIT_INTERRUPTED == 130
    assert out == ""
    assert "job mine goes on" in err and "safeagent follow -n ns mine" in err


# ------------------------------------------------------------------------------------ reviewers


class Listing(FakeClient):
    def __init__(self):
        super().__init__()
        self.decided = []

    def approvals(self):
        return [{"metadata": {"name": "ap-1", "creationTimestamp": "2026-01-01T00:00:00Z"},
                 "spec": {"jobName": "rm-1", "command": ["rm", "a b"], "networkProfile": "none",
                          "source": {"configMap": {"name": "repo"}}, "sourceDigest": "sha256:" + "a" * 64}}]

    def jobs(self):
        return [job("rm-1", phase="AwaitingApproval"), job("ls-1", phase="Failed", reason="NonZeroExit", exitCode=2)]

    def decide(self, name, decision, note=""):
        self.decided.append((name, decision, note))


def test_approvals_jobs_approve_deny_are_thin():
    fake = Listing()
    out = io.StringIO()
    agent_cli.approvals(cli.build_parser().parse_args(["approvals"]), factory=lambda _: fake, out=out)
    header, row = out.getvalue().splitlines()
    assert header.split()[:4] == ["NAME", "JOB", "COMMAND", "PROFILE"]
    assert row.startswith("ap-1") and "rm-1" in row and "rm 'a b'" in row and "configmap/repo" in row
    out = io.StringIO()
    agent_cli.jobs(cli.build_parser().parse_args(["jobs"]), factory=lambda _: fake, out=out)
    assert [line.split()[0] for line in out.getvalue().splitlines()] == ["NAME", "rm-1", "ls-1"]
    for verb, decision in (("approve", "Approved"), ("deny", "Denied")):
        arguments = cli.build_parser().parse_args([verb, "ap-1", "--note", "fine"])
        agent_cli.decide(arguments, decision, factory=lambda _: fake, out=io.StringIO())
    assert fake.decided == [("ap-1", "Approved", "fine"), ("ap-1", "Denied", "fine")]


def test_a_directory_is_uploaded_then_run(tmp_path):
    client = FakeClient(final=job(phase="Succeeded", exitCode=0))
    status, _, _ = run(["--source", str(tmp_path), "--", "ls"], client)
    assert status == 0 and client.uploaded == str(tmp_path)
    assert client.submitted[0][1] == BundleSource("sa-bundle-" + "0" * 64)


def test_a_refused_directory_exits_201_and_submits_nothing(tmp_path):
    client = FakeClient(error=SourceRefused("symlink", f"{tmp_path}: link refused"))
    status, out, err = run(["--source", str(tmp_path), "--", "ls"], client)
    assert status == 201 and out == "" and client.submitted == []
    assert err.count("\n") == 1 and "(symlink)" in err and "(exit 201)" in err
