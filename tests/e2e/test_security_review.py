"""Security review, on the cluster: what people holding the chart's user roles can actually do.

test_chart.py asks `kubectl auth can-i`; these tests make the requests themselves, as users bound
to safeagent-submitter and safeagent-approver, and look at what the operator did with them:
a submitter cannot smuggle a decision in through status, nor create or decide an Approval; an
approver cannot change the reviewed command; output that would not fit in etcd is trimmed, not
lost. Runs against the operator `make install` deployed, in its sandbox namespace.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from sbj_helpers import NS, unique



@pytest.fixture
def users(kubectl):
    """Two users bound (in the sandbox namespace only) to the chart's two user roles."""
    suffix = uuid.uuid4().hex[:6]
    submitter, approver = f"sec-submitter-{suffix}", f"sec-approver-{suffix}"
    bindings = {submitter: "safeagent-submitter", approver: "safeagent-approver"}
    for user, role in bindings.items():
        kubectl("-n", NS, "create", "rolebinding", user, f"--clusterrole={role}", f"--user={user}")
    yield {"submitter": f"--as={submitter}", "approver": f"--as={approver}"}
    kubectl("-n", NS, "delete", "rolebinding", *bindings, "--ignore-not-found", check=False)


def _refused(proc) -> str:
    assert proc.returncode != 0, f"the API server accepted it: {proc.stdout}"
    return proc.stderr


def _job_manifest(name: str, command: str, repo: str, **extra) -> dict:
    return {
        "apiVersion": "safeagent.ca/v1alpha1",
        "kind": "SandboxJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"command": command, "source": {"configMap": {"name": repo}}},
        **extra,
    }


def test_submitter_cannot_smuggle_a_decision_in_through_status(kubectl, sandbox, users):
    """Create drops status (status subresource): the operator decides from the policy alone."""
    repo = sandbox.repo({"delete-me.txt": "bye\n"})
    name = unique("sec-status")
    forged_status = {
        "phase": "Pending", "decision": "allow", "argv": ["rm", "delete-me.txt"],
        "limits": {"maxOutputKb": 1, "maxFileWrites": 100}, "approvedAt": "2020-01-01T00:00:00Z",
    }
    manifest = _job_manifest(name, "rm delete-me.txt", repo, status=forged_status)
    kubectl("create", "-f", "-", users["submitter"], input=json.dumps(manifest))
    sandbox.created.append(("sandboxjob", name))
    status = sandbox.wait_phase(name, {"AwaitingApproval"}, timeout=120)
    assert status["decision"] == "require_approval" and "approvedAt" not in status
    assert status["limits"]["maxOutputKb"] != 1
    uid = sandbox.get("sandboxjob", name)["metadata"]["uid"]
    assert sandbox.pods_of(uid) == []
    # ... and cannot write status afterwards either.
    patch = json.dumps({"status": {"approvedAt": "2020-01-01T00:00:00Z"}})
    _refused(kubectl("-n", NS, "patch", "sandboxjob", name, "--subresource=status", "--type=merge",
                     "-p", patch, users["submitter"], check=False))
    # nor change what it asked for (no update verb, and the spec is immutable anyway).
    _refused(kubectl("-n", NS, "patch", "sandboxjob", name, "--type=merge", "-p",
                     json.dumps({"spec": {"command": "ls"}}), users["submitter"], check=False))


def test_approvals_cannot_be_forged_or_rewritten(kubectl, sandbox, users):
    repo = sandbox.repo({"delete-me.txt": "bye\n"})
    name = sandbox.job("rm delete-me.txt", repo)
    status = sandbox.wait_phase(name, {"AwaitingApproval"}, timeout=120)
    approval = sandbox.get("approval", status["approvalName"])
    assert status["approvalUid"] == approval["metadata"]["uid"]

    # Neither role may create an Approval, e.g. a second one bound to the same job.
    forged = {
        "apiVersion": "safeagent.ca/v1alpha1", "kind": "Approval",
        "metadata": {"name": unique("forged"), "namespace": NS,
                     "ownerReferences": approval["metadata"]["ownerReferences"]},
        "spec": {**approval["spec"], "decision": "Approved"},
    }
    for who in ("submitter", "approver"):
        assert "forbidden" in _refused(
            kubectl("create", "-f", "-", users[who], input=json.dumps(forged), check=False)
        )
    # The submitter cannot decide; the approver cannot change what is being decided on.
    decide = json.dumps({"spec": {"decision": "Approved"}})
    assert "forbidden" in _refused(kubectl("-n", NS, "patch", "approval", status["approvalName"],
                                           "--type=merge", "-p", decide, users["submitter"], check=False))
    rewrite = json.dumps({"spec": {"command": ["rm", "-rf", "."], "decision": "Approved"}})
    assert "immutable" in _refused(kubectl("-n", NS, "patch", "approval", status["approvalName"],
                                           "--type=merge", "-p", rewrite, users["approver"], check=False))
    assert "forbidden" in _refused(kubectl(
        "-n", NS, "patch", "approval", status["approvalName"], "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Approved"}}), users["approver"], check=False,
    ))
    # The real decision still works, and runs exactly the reviewed argv.
    kubectl("-n", NS, "patch", "approval", status["approvalName"], "--type=merge", "-p",
            json.dumps({"spec": {"decision": "Approved", "reviewer": "sec-review"}}), users["approver"])
    final = sandbox.wait_phase(name, {"Succeeded"}, timeout=180)
    assert final["argv"] == ["rm", "delete-me.txt"] and final["changedFiles"]["paths"] == ["-delete-me.txt"]


def test_output_that_etcd_could_not_store_is_trimmed_not_lost(sandbox):
    """256 KiB of '<' is stored as 1.5 MiB (encoding/json escapes it to \\u003c): over etcd's
    limit. The job must still succeed, with the output cut and flagged."""
    repo = sandbox.repo({"angles.txt": "<" * (300 * 1024)})
    name = sandbox.job("cat angles.txt", repo)
    started = time.monotonic()
    status = sandbox.wait_phase(name, {"Succeeded"}, timeout=240)
    assert status["stdoutTruncated"] is True and status["stdoutBytes"] == 300 * 1024
    assert 0 < len(status["stdout"]) <= 256 * 1024 and set(status["stdout"]) == {"<"}
    assert time.monotonic() - started < 200, "the result should not need retries to land"


@pytest.mark.parametrize(
    "source", [{"configMap": {"name": "repo"}}, {"persistentVolumeClaim": {"claimName": "repos", "path": "a/b"}}]
)
def test_operator_recognises_its_own_pod_as_the_api_server_returns_it(kubectl, namespace, source):
    """After a restart the operator adopts a Pod under its name only if it is exactly the Pod it
    would build (safeagent.builders.pod_mismatch). The server adds defaults and drops empty fields:
    our own Pod, read back, must still be recognised, or a restart would fail a good job."""
    from safeagent import builders

    from sandbox_pods import canary_address, installed_config, made_up_job

    config = installed_config(kubectl, egress_check=True)
    address = canary_address(kubectl, config)
    job = made_up_job(namespace, source, name="adopt-me")
    ours = builders.build_sandbox_pod(job, ["ls", "-la"], 256, config, canary_address=address)
    created = json.loads(json.dumps(ours))
    created["metadata"].pop("ownerReferences")  # the made-up job does not exist: the GC would reap the Pod
    kubectl("create", "-f", "-", input=json.dumps(created))
    served = json.loads(kubectl("-n", namespace, "get", "pod", ours["metadata"]["name"], "-o", "json").stdout)
    served["metadata"]["ownerReferences"] = ours["metadata"]["ownerReferences"]
    assert builders.pod_mismatch(ours, served) is None
    other = builders.build_sandbox_pod(job, ["rm", "x"], 256, config, canary_address=address)
    assert builders.pod_mismatch(other, served) is not None
