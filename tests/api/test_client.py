"""safeagent.client against the real API server, as an agent's own ServiceAccount bound to the
chart's submitter role, with the operator running under Kopf in this process (test_handlers.py's
`operated`): the round trip, the API requests one command costs (a watch, not a loop of GETs), a
create whose answer was lost retried into exactly one job and one Pod, the approval wait, and the
policy dry run from the policy the chart publishes."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
import urllib3
from kubernetes import client as kube

from safeagent.client import Client, ConfigMapSource, NameTaken, Outcome
from tests.api.stage import BOUND_NAMESPACE, SOURCE_CONFIGMAP
from tests.api.test_handlers import _as_the_operator, eventually, operated  # noqa: F401 -- the fixture and its login
from tests.api.world import runner_record

SOURCE = ConfigMapSource(SOURCE_CONFIGMAP)


# An agent as README "Connecting an agent" sets one up: it submits, and uploads or reads its sources.
AGENT_ROLES = ("safeagent-submitter", "safeagent-source-uploader")


def identity(stage, namespace: str, role: str, tmp_path) -> str:
    """A ServiceAccount bound to one of the chart's roles in `namespace` (the submitter's with the
    source uploader's, as an agent is set up): its kubeconfig's path."""
    name = f"agent-{uuid.uuid4().hex[:6]}"
    core = kube.CoreV1Api(stage.admin)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    for bound in AGENT_ROLES if role == "safeagent-submitter" else (role,):
        kube.RbacAuthorizationV1Api(stage.admin).create_namespaced_role_binding(namespace, {
            "metadata": {"name": f"{name}-{bound}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": bound},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        })
    token = core.create_namespaced_service_account_token(name, namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    return str(stage.server.kubeconfig(token, tmp_path / f"{name}.kubeconfig"))


class Requests:
    """Every API request the client makes, as (method, kind): kind is `watch` or `plain`."""

    def __init__(self, api_client, drop_first_post: bool = False) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.drop_first_post = drop_first_post
        real = api_client.call_api

        def counted(method, url, *args, **kwargs):
            self.seen.append((method, "watch" if "watch=True" in url or "watch=true" in url else "plain", url))
            response = real(method, url, *args, **kwargs)
            if method == "POST" and self.drop_first_post:
                self.drop_first_post = False
                raise urllib3.exceptions.ProtocolError("Connection aborted: the answer was lost")
            return response

        api_client.call_api = counted

    def count(self) -> Counter:
        return Counter((method, kind) for method, kind, _ in self.seen)


def status_of(world, name: str) -> dict:
    """The job's status ({} also while the client has not created the job yet)."""
    try:
        return world.status(name)
    except kube.exceptions.ApiException as error:
        if error.status == 404:
            return {}
        raise


def pod_of(world, name: str):
    """The job's Pod name once launched."""
    return status_of(world, name).get("podName")


def start(target, *args, **kwargs):
    """`target` in a thread; returns (thread, box) where box['result'] or box['error'] appears."""
    box: dict = {}

    def body():
        try:
            box["result"] = target(*args, **kwargs)
        except BaseException as error:  # reported by the test
            box["error"] = error

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, box


def finished(thread, box, timeout: float = 45.0):
    thread.join(timeout)
    assert not thread.is_alive(), "the client did not return"
    if "error" in box:
        raise box["error"]
    return box["result"]


@pytest.fixture
def agent(stage, operated, tmp_path):  # noqa: F811 -- the fixture imported above
    """A Client as a submitter in the operated namespace, from a kubeconfig like kubectl's."""
    return Client(kubeconfig=identity(stage, BOUND_NAMESPACE, "safeagent-submitter", tmp_path),
                  namespace=BOUND_NAMESPACE)


def test_run_round_trip_follows_with_one_watch(operated, agent):  # noqa: F811
    """A command that runs for several seconds: one create and one watch request, no GET at all."""
    world = operated
    requests = Requests(agent.api_client)
    name = f"rt-{uuid.uuid4().hex[:6]}"
    thread, box = start(agent.run, "ls -la", SOURCE, name=name, timeout=60)
    pod = eventually(lambda: pod_of(world, name), "the job's Pod launched")
    import time

    time.sleep(3)  # the command "runs" for a while: a polling client would show GETs now
    world.finish_pod(pod, runner_record(exitCode=3, stdout="out\n", stderr="err\n", stdoutBytes=4, stderrBytes=4))
    result = finished(thread, box)
    assert (result.outcome, result.exitCode, result.stdout, result.stderr) == (Outcome.COMMAND_FAILED, 3, "out\n", "err\n")
    assert result.job == name and result.argv == ["ls", "-la"] and result.decision == "allow"
    assert result.timings.created and result.timings.started and result.timings.completed
    counts = requests.count()
    assert counts[("POST", "plain")] == 1, requests.seen
    assert counts[("GET", "plain")] == 0, f"the job was polled: {requests.seen}"
    assert counts[("GET", "watch")] == 1, f"one watch request for the whole run: {requests.seen}"


def test_a_create_whose_answer_was_lost_is_retried_into_exactly_one_pod(operated, agent):  # noqa: F811
    world = operated
    requests = Requests(agent.api_client, drop_first_post=True)
    agent.sleep = lambda seconds: None
    before = world.kube.pods_created
    name = f"retry-{uuid.uuid4().hex[:6]}"
    thread, box = start(agent.run, "ls", SOURCE, name=name, timeout=60)
    pod = eventually(lambda: pod_of(world, name), "the job's Pod launched")
    world.finish_pod(pod, runner_record())
    result = finished(thread, box)
    assert result.outcome is Outcome.SUCCEEDED and result.job == name
    counts = requests.count()
    assert counts[("POST", "plain")] == 2, "the create was sent again after the lost answer"
    assert counts[("GET", "plain")] == 1, "the job found under its name was read once, to compare it"
    assert world.kube.pods_created - before == 1, "exactly one Pod ran"
    jobs = [item for item in world.custom.list_namespaced_custom_object("safeagent.ca", "v1alpha1", world.ns,
                                                                        "sandboxjobs")["items"]
            if item["metadata"]["name"] == name]
    assert len(jobs) == 1


def test_the_same_name_for_another_request_is_refused_not_followed(operated, agent):  # noqa: F811
    world = operated
    name = f"taken-{uuid.uuid4().hex[:6]}"
    world.add_job(name, "ls")
    with pytest.raises(NameTaken):
        agent.submit("cat delete-me.txt", SOURCE, name=name)


def test_a_retried_run_with_the_same_name_follows_the_first_job(operated, agent):  # noqa: F811
    """The caller itself retries (a restarted agent, an MCP client calling again): same name, one job."""
    world = operated
    name = f"again-{uuid.uuid4().hex[:6]}"
    agent.submit("ls", SOURCE, name=name, timeout=60)
    pod = eventually(lambda: pod_of(world, name), "the job's Pod launched")
    world.finish_pod(pod, runner_record(stdout="once\n"))
    eventually(lambda: world.status(name).get("phase") == "Succeeded", "the job succeeded")
    before = world.kube.pods_created
    result = agent.run("ls", SOURCE, name=name, timeout=60)
    assert (result.outcome, result.stdout) == (Outcome.SUCCEEDED, "once\n")
    assert world.kube.pods_created == before


def test_approval_wait_returns_awaiting_then_a_decision_reaches_the_follower(operated, agent):  # noqa: F811
    world = operated
    name = f"rm-{uuid.uuid4().hex[:6]}"
    seen: list[str] = []
    waited = agent.run("rm delete-me.txt", SOURCE, name=name, timeout=60, wait_approval=1,
                       notify=lambda job: seen.append((job.get("status") or {}).get("phase")))
    assert waited.outcome is Outcome.AWAITING_APPROVAL and waited.approval
    assert "AwaitingApproval" in seen
    thread, box = start(agent.follow, name)
    world.decide(waited.approval, "Denied")
    result = finished(thread, box)
    assert result.outcome is Outcome.APPROVAL_DENIED and result.phase == "Denied"
    assert not world.status(name).get("podName")


def test_denied_by_the_policy(operated, agent):  # noqa: F811
    result = agent.run("cat delete-me.txt; rm -rf /", SOURCE, timeout=60)
    assert (result.outcome, result.reason) == (Outcome.DENIED, "shell_metacharacter")


def test_check_reads_the_published_policy_and_makes_no_job(operated, agent):  # noqa: F811
    world = operated
    before = len(world.custom.list_namespaced_custom_object("safeagent.ca", "v1alpha1", world.ns, "sandboxjobs")["items"])
    assert agent.check("git log --oneline")["decision"] == "allow"
    assert agent.check("rm delete-me.txt")["decision"] == "require_approval"
    denied = agent.check("ls; id")
    assert (denied["decision"], denied["reason"]) == ("deny", "shell_metacharacter")
    after = len(world.custom.list_namespaced_custom_object("safeagent.ca", "v1alpha1", world.ns, "sandboxjobs")["items"])
    assert after == before


def test_the_uploader_creates_and_reads_configmaps_and_nothing_more(stage, namespace, tmp_path):
    """The submitter role reads the published policy and no other ConfigMap; uploading sources is
    the uploader role's: create and get, nothing more."""
    from tests.api.test_rbac import can

    submitter = Client(kubeconfig=identity(stage, namespace, "safeagent-submitter", tmp_path), namespace=namespace)
    assert submitter.check("ls")["decision"] == "allow"
    stage.bind(namespace, "submitter-probe", "safeagent-submitter")
    assert not can(stage, "submitter-probe", "get", "configmaps", namespace)
    assert not can(stage, "submitter-probe", "create", "configmaps", namespace)
    stage.bind(namespace, "uploader-probe", "safeagent-source-uploader")
    for verb, allowed in (("get", True), ("create", True), ("list", False), ("update", False), ("patch", False),
                          ("delete", False), ("watch", False)):
        assert can(stage, "uploader-probe", verb, "configmaps", namespace) is allowed, verb
