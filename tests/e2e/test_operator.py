"""The operator on a real cluster: policy decisions, approvals, sources, limits, timeouts.

Runs against the chart-installed operator in the sandbox namespace (see sbj_helpers).
"""

from __future__ import annotations


import pytest

from sbj_helpers import NS, SLOW_GREP, require_operator, slow_grep_file

REPO = {
    "README.md": "# demo\n",
    "delete-me.txt": "remove me\n",
    "src/app.py": "print('hi')\n",
    "src/pkg/util.py": "X = 1\n",
}


@pytest.fixture(scope="module", autouse=True)
def operator_installed(kubectl):
    require_operator(kubectl)



def test_allowed_job_runs_and_its_stdout_lands_in_status(sandbox, kubectl):
    repo = sandbox.repo(REPO)
    job = sandbox.job("ls -la src", repo)
    status = sandbox.wait_phase(job, "Succeeded")
    assert "app.py" in status["stdout"] and "pkg" in status["stdout"]
    assert status["exitCode"] == 0 and status["decision"] == "allow" and status["argv"] == ["ls", "-la", "src"]
    for stamp in ("decidedAt", "startTime", "completionTime"):
        assert status[stamp], stamp
    assert status["changedFiles"]["total"] == 0
    uid = sandbox.get("sandboxjob", job)["metadata"]["uid"]
    sandbox.wait_pods_gone(uid)  # the Pod is deleted once the result is in status
    # Event timestamps have one-second resolution: compare without order. On a busy cluster (other
    # tests' Pods side by side) the Pod may wait for room on the sandbox node, which the job reports.
    reasons = sandbox.event_reasons("SandboxJob", job)
    assert sorted(r for r in reasons if r != "SandboxPodWaiting") == ["CommandFinished", "PolicyAllowed", "SandboxLaunched"]
    table = kubectl("-n", NS, "get", "sbj", job).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "COMMAND", "PROFILE", "AGE"]
    assert table[1].split()[:2] == [job, "Succeeded"] and "none" in table[1]
    assert "ls -la src" in table[1]




def _awaiting(sandbox, command="rm delete-me.txt", files=None):
    repo = sandbox.repo(files or REPO)
    job = sandbox.job(command, repo)
    status = sandbox.wait_phase(job, "AwaitingApproval", timeout=60)
    approval = sandbox.get("approval", status["approvalName"])
    uid = sandbox.get("sandboxjob", job)["metadata"]["uid"]
    assert approval["spec"]["jobUid"] == uid and approval["spec"]["decision"] == "Pending"
    assert sandbox.pods_of(uid) == []
    return job, status["approvalName"], approval


def test_approve_round_trip(sandbox, people):
    job, name, approval = _awaiting(sandbox)
    assert approval["spec"]["command"] == ["rm", "delete-me.txt"]
    reviewer = people["reviewer"]
    reviewer.decide(NS, name, "Approved", note="looks fine")
    status = sandbox.wait_phase(job, "Succeeded")
    assert status["changedFiles"]["deleted"] == 1 and "-delete-me.txt" in status["changedFiles"]["paths"]
    assert status["approvedAt"] and status["decidedBy"] == reviewer.user
    decided = sandbox.get("approval", name)["status"]
    assert decided["phase"] == "Approved" and decided["decidedBy"] == reviewer.user and decided["decidedAt"]
    assert "ApprovalApproved" in sandbox.event_reasons("Approval", name)
    # A decision is final (CEL on the Approval).
    refused = reviewer.decide(NS, name, "Denied", check=False)
    assert refused.returncode != 0 and "final" in refused.stderr




def test_volume_source_is_copied_and_a_symlink_rejects_it(sandbox):
    claim = sandbox.node_volume(
        "mkdir -p good/lib bad && echo ok > good/lib/a.txt && echo x > bad/x.txt && ln -s /etc/passwd bad/escape"
    )
    good = sandbox.job("cat lib/a.txt", {"persistentVolumeClaim": {"claimName": claim, "path": "good"}})
    bad = sandbox.job("cat x.txt", {"persistentVolumeClaim": {"claimName": claim, "path": "bad"}})
    assert sandbox.wait_phase(good, "Succeeded")["stdout"] == "ok\n"
    status = sandbox.wait_phase(bad, "Rejected")
    assert status["reason"] == "symlink" and "escape" in status["message"]
    assert "SourceRejected" in sandbox.event_reasons("SandboxJob", bad)


def test_output_over_the_cap_is_truncated_and_flagged(sandbox):
    block = ("0123456789abcdef" * 64 + "\n") * 100  # ~100 KiB
    repo = sandbox.repo({"big.txt": block})
    job = sandbox.job("cat big.txt big.txt big.txt", repo)
    status = sandbox.wait_phase(job, "Succeeded")
    limit = status["limits"]["maxOutputKb"] * 1024
    assert status["stdoutTruncated"] is True and status["stdoutBytes"] == 3 * len(block)
    assert len(status["stdout"].encode()) == limit < 3 * len(block)
    assert status["stderrTruncated"] is False


def test_too_many_changed_files_fails_the_job(sandbox, people):
    files = {f"f{i:03d}.txt": "x\n" for i in range(70)}
    names = " ".join(sorted(files))
    job, name, _ = _awaiting(sandbox, command=f"rm {names}", files=files)
    limit = sandbox.status(job)["limits"]["maxFileWrites"]
    if limit >= len(files):
        pytest.skip(f"the installed policy allows {limit} file writes; this test removes {len(files)}")
    people["reviewer"].decide(NS, name, "Approved")
    status = sandbox.wait_phase(job, "Failed")
    assert status["reason"] == "TooManyFileWrites" and status["changedFiles"]["deleted"] == len(files)
    assert "PolicyViolation" in sandbox.event_reasons("SandboxJob", job)


def test_job_past_its_timeout_fails_and_its_pod_was_hardened(sandbox, kubectl):
    repo = sandbox.repo({"slow.txt": slow_grep_file(20000)})
    job = sandbox.job(SLOW_GREP, repo, timeoutSeconds=3)
    status = sandbox.wait_phase(job, {"Running"} | {"Failed", "Succeeded"}, timeout=60)
    if status["phase"] == "Running":
        uid = sandbox.get("sandboxjob", job)["metadata"]["uid"]
        pods = sandbox.pods_of(uid)
        if pods:  # look at the live Pod while it runs
            spec = pods[0]["spec"]
            assert spec["automountServiceAccountToken"] is False
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in spec["containers"])
            policy = sandbox.get("networkpolicy", "safeagent-profile-none")["spec"]
            assert not policy.get("ingress")
            # `none`: nothing but the egress canary's open port (the pre-flight's proof).
            (only,) = policy.get("egress") or [{}]
            assert only["ports"] == [{"port": 8081, "protocol": "TCP"}], policy
            assert only["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "canary"
            assert policy["policyTypes"] == ["Ingress", "Egress"]
    status = sandbox.wait_phase(job, "Failed", timeout=120)
    assert status["reason"] == "Timeout" and status["timedOut"] is True
    assert status["exitCode"] == 137
    assert "TimedOut" in sandbox.event_reasons("SandboxJob", job)
