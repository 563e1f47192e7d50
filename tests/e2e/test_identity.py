"""Identity on a real cluster (issue 17): who asked and who decided, recorded by the API server's
admission policies, with real ServiceAccount tokens (people.py), as a user would do it with kubectl.

The API tier (tests/api/test_identity.py) covers every rule one by one on a bare API server; this
module proves them with the chart as `helm install` put it, the in-cluster operator, and kubectl.
"""

from __future__ import annotations

import json

from sbj_helpers import NS, unique

REPO = {"delete-me.txt": "bye\n", "README.md": "hello\n"}


def _job(name: str, command: str, source: dict, **spec) -> str:
    return json.dumps({"apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob", "metadata": {"name": name},
                       "spec": {"command": command, "source": source, **spec}})


def _submit(sandbox, person, command: str, repo: str, **spec) -> str:
    """A job created by `person` with its own token (and remembered for clean-up)."""
    name = unique("id")
    person.kubectl("-n", NS, "create", "-f", "-", input=_job(name, command, {"configMap": {"name": repo}}, **spec))
    sandbox.created.append(("sandboxjob", name))
    return name


def test_the_requester_is_recorded_and_shown(sandbox, kubectl, people):
    agent = people["agent"]
    repo = sandbox.repo(REPO)
    job = _submit(sandbox, agent, "ls", repo)
    assert sandbox.get("sandboxjob", job)["spec"]["requester"]["username"] == agent.user
    assert sandbox.wait_phase(job, "Succeeded")["exitCode"] == 0
    wide = kubectl("-n", NS, "get", "sbj", job, "-o", "wide").stdout.splitlines()
    column = wide[0].split().index("REQUESTER")
    assert wide[1].split()[column] == agent.user
    events = sandbox.events(f"involvedObject.name={job}")
    assert events and all(f"(requester {agent.user})" in event["message"] for event in events)


def test_a_forged_requester_is_refused(sandbox, people):
    agent = people["agent"]
    repo = sandbox.repo(REPO)
    forged = _job(unique("forged"), "ls", {"configMap": {"name": repo}}, requester={"username": "alice"})
    refused = agent.kubectl("-n", NS, "create", "-f", "-", input=forged, check=False)
    assert refused.returncode != 0
    assert f"spec.requester is recorded by the cluster and must be exactly the caller, {agent.user}" in refused.stderr


def test_self_approval_is_refused_and_a_second_person_decides(sandbox, kubectl, people):
    both, second = people["both"], people["second"]
    repo = sandbox.repo(REPO)
    job = _submit(sandbox, both, "rm delete-me.txt", repo)
    approval = sandbox.wait_phase(job, "AwaitingApproval", timeout=60)["approvalName"]
    refused = both.decide(NS, approval, "Approved", check=False)
    assert refused.returncode != 0 and f"{both.user} submitted job {job} and may not decide" in refused.stderr
    # A decider named in spec is no way around it: the cluster records the caller.
    forged = both.kubectl("-n", NS, "patch", "approval", approval, "--type", "merge", "-p",
                          json.dumps({"spec": {"decision": "Approved", "decider": {"username": second.user}}}),
                          check=False)
    assert forged.returncode != 0 and "must be exactly the caller" in forged.stderr
    second.decide(NS, approval, "Approved", note="second pair of eyes")
    status = sandbox.wait_phase(job, "Succeeded")
    assert status["decidedBy"] == second.user
    header, row = kubectl("-n", NS, "get", "approval", approval).stdout.splitlines()[:2]
    assert header.split()[3:6] == ["REQUESTER", "DECISION", "DECIDER"]
    assert row.split()[3:6] == [both.user, "Approved", second.user]


def test_an_approver_may_change_only_the_decision(sandbox, people):
    reviewer = people["reviewer"]
    repo = sandbox.repo(REPO)
    job = sandbox.job("rm delete-me.txt", repo)
    approval = sandbox.wait_phase(job, "AwaitingApproval", timeout=60)["approvalName"]
    for patch in ({"metadata": {"labels": {"safeagent.ca/job-uid": "another"}}},
                  {"metadata": {"annotations": {"kopf.zalando.org/last-handled-configuration": "{}"}}}):
        refused = reviewer.kubectl("-n", NS, "patch", "approval", approval, "--type", "merge", "-p", json.dumps(patch),
                                   check=False)
        assert refused.returncode != 0 and "a reviewer changes only spec.decision and spec.note" in refused.stderr
    reviewer.decide(NS, approval, "Denied", note="not today")
    assert sandbox.wait_phase(job, "Denied")["decidedBy"] == reviewer.user


def test_a_source_the_requester_cannot_read_is_refused(sandbox, people):
    blind = people["blind"]
    repo = sandbox.repo({"secret.txt": "not for the agent\n"})
    refused = blind.kubectl("-n", NS, "create", "-f", "-", input=_job(unique("peek"), "cat secret.txt",
                                                                          {"configMap": {"name": repo}}), check=False)
    assert refused.returncode != 0
    assert f"{blind.user} may not get ConfigMap {repo} in namespace {NS}" in refused.stderr
    claim = unique("claim")
    refused = blind.kubectl("-n", NS, "create", "-f", "-", input=_job(
        unique("peek"), "ls", {"persistentVolumeClaim": {"claimName": claim}}), check=False)
    assert refused.returncode != 0 and f"may not get PersistentVolumeClaim {claim}" in refused.stderr


def test_impersonation_records_the_impersonated_user(sandbox, kubectl, people):
    """`kubectl --as` by someone allowed to impersonate (here the test's own admin) acts as the
    named user, so the job is recorded as that user's: whoever may impersonate may act as anyone
    (docs/threat-model.md). The agent itself may not impersonate."""
    agent = people["agent"]
    repo = sandbox.repo(REPO)
    name = unique("as")
    kubectl("-n", NS, "--as", agent.user, "--as-group", "system:serviceaccounts", "create", "-f", "-",
            input=_job(name, "ls", {"configMap": {"name": repo}}))
    sandbox.created.append(("sandboxjob", name))
    assert sandbox.get("sandboxjob", name)["spec"]["requester"]["username"] == agent.user
    tried = agent.kubectl("-n", NS, "--as", people["reviewer"].user, "get", "approvals", check=False)
    assert tried.returncode != 0 and "cannot impersonate" in tried.stderr
