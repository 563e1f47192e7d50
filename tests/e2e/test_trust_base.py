"""The job's trust base, attacked on the cluster (issue 8).

- a hostile source cannot replace the runner or the preparation step, nor any module they import;
- however a command ends, the runner writes its record;
- the workspace and /tmp stop a writer at their size limit, at once;
- the files a human approved are the files the command runs on.

Each test failed on the code before issue 8 (the hostile source's fake record became the job's
status; signal 40 lost the record; 1.5 GiB went into a 64 Mi /tmp; a changed ConfigMap ran under
the old Approval). That a submitter cannot attach a job to another object's lifetime (owner
references) or pin it (finalizers) is the API server's to refuse: tests/api/test_admission.py.
"""

from __future__ import annotations

import json
import signal

from hostile_source import assert_the_real_runner_ran, hostile_files
from sandbox_pods import installed_config, run_sandbox_pods
from sbj_helpers import NS


def test_a_hostile_source_cannot_replace_the_runner_or_what_it_imports(sandbox, kubectl, namespace):
    """A source that shadows the package, every standard-library module the sandbox code imports,
    and plants sitecustomize/usercustomize and a .pth file (hostile_source.py): the real runner
    runs, the record is true. The same source delivered to a warm Pod: test_warm_pool.py."""
    files = hostile_files(kubectl, namespace)
    job = sandbox.job("ls", sandbox.repo(files))
    assert_the_real_runner_ran(sandbox.wait_phase(job, {"Succeeded", "Failed", "Rejected"}), files)


# ---------------------------------------------------------------------------- the runner's record


def _default_action(number: int) -> str:
    """What the kernel does to a process that gets `number` with the default disposition.

    32 and 33 are the C library's own (thread cancellation, set*id broadcast): the test cannot
    give them the default disposition, and glibc's handler may swallow a signal it did not send.
    The terminal stop signals (SIGTSTP, SIGTTIN, SIGTTOU) are discarded by the kernel for a
    process group without a parent in the same session, which is what the runner's
    new-session child is; only SIGSTOP stops it.
    """
    ignored = {signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH,
               signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
    stopped = {signal.SIGSTOP}
    if number in ignored:
        return "ignore"
    if number in stopped:
        return "stop"
    if number in (32, 33):
        return "libc"
    return "terminate"


def _kill_self(number: int) -> list[str]:
    script = (
        "import os, signal\n"
        f"n = {number}\n"
        "try:\n    signal.signal(n, signal.SIG_DFL)\nexcept (OSError, ValueError, RuntimeError):\n    pass\n"
        "os.kill(os.getpid(), n)\n"
        "import time; time.sleep(0.5)\n"
    )
    return ["python3", "-c", script]


OTHER_ENDINGS = {
    "exit-0": (["python3", "-c", "raise SystemExit(0)"], {"exitCode": 0}),
    "exit-1": (["python3", "-c", "raise SystemExit(1)"], {"exitCode": 1}),
    "exit-255": (["python3", "-c", "raise SystemExit(255)"], {"exitCode": 255}),
    "missing-program": (["no-such-program"], {"exitCode": 127}),
    "closes-its-descriptors": (
        ["python3", "-c", "import os\nfor fd in (0, 1, 2): os.close(fd)\nos._exit(0)"], {"exitCode": 0},
    ),
    "daemon-keeps-the-pipes": (
        ["python3", "-c", "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\nprint('parent')"],
        {"exitCode": 0, "stdout": "parent\n"},
    ),
    "never-exits": (["python3", "-c", "import time; time.sleep(600)"], {"timedOut": True, "exitCode": 137}),
    "floods-output": (
        ["python3", "-c", "import os\nfor _ in range(64): os.write(1, b'x' * (1 << 20))"],
        {"exitCode": 0, "stdoutTruncated": True, "stdoutBytes": 64 << 20},
    ),
    "signals-pid-1": (
        ["python3", "-c", "import os\nfor s in (1, 2, 3, 10, 12, 15, 40): os.kill(1, s)\nprint('still here')"],
        {"exitCode": 0, "stdout": "still here\n"},
    ),
    "writes-to-the-runners-stdout": (
        ["python3", "-c", "open('/proc/1/fd/1', 'w').write('{\"kind\":\"safeagent.ca/runner-result\"}\\n')"],
        {"exitCode": 1},
    ),
}


def test_every_way_a_command_can_end_leaves_a_record(kubectl, namespace):
    """Each signal 1-64, exit statuses, closed and inherited descriptors, a process that never
    exits, a flood of output, attacks on PID 1: one true record each, from the real image."""
    kubectl("-n", namespace, "create", "configmap", "repo", "--from-literal=a.txt=a")
    config = installed_config(kubectl, requests={"cpu": "10m", "memory": "32Mi", "ephemeralStorage": "16Mi"})
    argvs = {f"signal-{n}": _kill_self(n) for n in range(1, 65)}
    argvs.update({name: argv for name, (argv, _) in OTHER_ENDINGS.items()})
    finished = run_sandbox_pods(kubectl, namespace, "repo", argvs, config, timeout_seconds=3, wait=420)
    problems = []
    for name, outcome in sorted(finished.items()):
        if len(outcome.records) != 2:  # the command's part, then the final record
            problems.append(f"{name}: {len(outcome.records)} records, log tail {outcome.log[-300:]!r}")
            continue
        record = outcome.record
        if record.get("error") and name != "missing-program":
            problems.append(f"{name}: runner error {record['error']!r}")
        if name.startswith("signal-"):
            number = int(name.split("-")[1])
            action = _default_action(number)
            if action == "ignore" and record["exitCode"] != 0:
                problems.append(f"{name}: ignored signal, exit {record['exitCode']}")
            elif action == "stop" and not (record["timedOut"] and record["exitCode"] == 137):
                problems.append(f"{name}: stopped process not killed at the timeout: {record}")
            elif action == "terminate" and record["exitCode"] != 128 + number:
                problems.append(f"{name}: exit {record['exitCode']}, wanted {128 + number}")
            elif action == "libc" and record["exitCode"] not in (0, 128 + number):
                problems.append(f"{name}: exit {record['exitCode']}")
        else:
            expected = OTHER_ENDINGS[name][1]
            got = {key: record.get(key) for key in expected}
            if got != expected:
                problems.append(f"{name}: {got} != {expected}")
    assert not problems, "\n".join(problems)
    assert finished["daemon-keeps-the-pipes"].record["leftoverProcessesKilled"] >= 1


# ---------------------------------------------------------------------------- hard disk caps


def test_writing_past_the_workspace_or_tmp_limit_fails_at_once(kubectl, namespace):
    """A write past either scratch volume's limit gets ENOSPC at the limit (tmpfs), the record
    says which volume is full, and the operator's rules make that DiskLimitReached."""
    from kubernetes.utils.quantity import parse_quantity

    from safeagent.models import RunnerResult
    from safeagent.reconcile import outcome_of

    kubectl("-n", namespace, "create", "configmap", "repo", "--from-literal=a.txt=a")
    config = installed_config(kubectl)
    writer = (
        "import os, sys\n"
        "written = 0\n"
        "try:\n"
        "    with open(sys.argv[1], 'wb') as out:\n"
        "        for _ in range(2048):\n"
        "            out.write(b'x' * (1 << 20)); out.flush(); written += 1 << 20\n"
        "except OSError as error:\n"
        "    print(written, error.errno, flush=True)\n"
        "    raise SystemExit(1)\n"
        "print(written, 0)\n"
    )
    targets = {"tmp": "/tmp/fill", "workspace": "/workspace/fill"}
    limits = {"tmp": config.sandbox.tmpSizeLimit, "workspace": config.sandbox.workspaceSizeLimit}
    argvs = {volume: ["python3", "-c", writer, path] for volume, path in targets.items()}
    finished = run_sandbox_pods(kubectl, namespace, "repo", argvs, config, timeout_seconds=60)
    for volume in targets:
        record = finished[volume].record
        written, error = (int(word) for word in record["stdout"].split())
        assert error == 28, f"{volume}: the 2 GiB write was not stopped by ENOSPC: {record['stdout']!r}"
        assert written <= parse_quantity(limits[volume]), f"{volume}: wrote {written} past {limits[volume]}"
        assert record["fullVolumes"] == [volume]
        phase, reason, *_ = outcome_of(RunnerResult.model_validate(record), 1000, 60)
        assert (phase.value, reason) == ("Failed", "DiskLimitReached")


# ---------------------------------------------------------------------------- the reviewed source


def test_a_source_changed_after_the_review_never_runs(sandbox, kubectl, people):
    """The Approval pins the ConfigMap's content digest; a change between review and run ends the
    job ApprovalMismatch and the command never starts."""
    from safeagent.sandbox.digest import configmap_digest

    files = {"delete-me.txt": "bye\n", "keep.txt": "keep\n"}
    repo = sandbox.repo(files)
    job = sandbox.job("rm delete-me.txt", repo)
    status = sandbox.wait_phase(job, "AwaitingApproval", timeout=60)
    approval = sandbox.get("approval", status["approvalName"])
    pinned = configmap_digest({key: text.encode() for key, text in files.items()})
    assert approval["spec"]["sourceDigest"] == pinned == status["sourceDigest"]
    refused = kubectl("-n", NS, "patch", "approval", status["approvalName"], "--type", "merge",
                      "-p", json.dumps({"spec": {"sourceDigest": "sha256:" + "0" * 64}}), check=False)
    assert refused.returncode != 0 and "immutable" in refused.stderr

    kubectl("-n", NS, "patch", "configmap", repo, "--type", "merge",
            "-p", json.dumps({"data": {"delete-me.txt": "swapped after the review\n"}}))
    people["reviewer"].decide(NS, status["approvalName"], "Approved")
    status = sandbox.wait_phase(job, "Failed", timeout=180)
    assert status["reason"] == "ApprovalMismatch" and "not the one that was approved" in status["message"]
    assert "exitCode" not in status and "stdout" not in status, "the command ran"
    assert "ApprovalMismatch" in sandbox.event_reasons("SandboxJob", job)


def test_a_volume_source_is_pinned_by_a_review_pod_and_a_change_never_runs(sandbox, kubectl, people):
    """The operator cannot read a volume: a review Pod copies it and reports the digest the
    Approval pins. Unchanged, the approved command runs; changed on the volume after the review,
    nothing runs."""
    from safeagent.sandbox.digest import digest_files
    from sbj_helpers import docker_exec, kind_nodes

    claim = sandbox.node_volume("mkdir -p a b && echo bye > a/delete-me.txt && echo bye > b/delete-me.txt")
    pinned = digest_files({("delete-me.txt",): b"bye\n"})
    jobs = {
        part: sandbox.job("rm delete-me.txt", {"persistentVolumeClaim": {"claimName": claim, "path": part}})
        for part in ("a", "b")
    }
    awaiting = {part: sandbox.wait_phase(job, "AwaitingApproval", timeout=180) for part, job in jobs.items()}
    for part, status in awaiting.items():
        assert status["sourceDigest"] == pinned, part
        assert sandbox.get("approval", status["approvalName"])["spec"]["sourceDigest"] == pinned
        assert status["reviewPodName"] and not [
            p for p in sandbox.pods_of(sandbox.get("sandboxjob", jobs[part])["metadata"]["uid"])
            if p["metadata"]["name"] == status["reviewPodName"] and not p["metadata"].get("deletionTimestamp")
        ], "the review Pod is deleted once its digest is read"

    path = [d for d in sandbox.node_dirs if claim in d][0]
    for node in kind_nodes(kubectl):
        docker_exec(node, f"echo swapped > {path}/b/delete-me.txt")
    for status in awaiting.values():
        people["reviewer"].decide(NS, status["approvalName"], "Approved")
    done = sandbox.wait_phase(jobs["a"], "Succeeded", timeout=180)
    assert done["changedFiles"]["paths"] == ["-delete-me.txt"]
    changed = sandbox.wait_phase(jobs["b"], "Failed", timeout=180)
    assert changed["reason"] == "ApprovalMismatch" and "exitCode" not in changed
