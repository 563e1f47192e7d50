"""reconcile/pods.py and observe.py on a real API server: one Pod per job, adopted only if it is
exactly ours, never trusted once replaced."""

from __future__ import annotations

import pytest

from safeagent import builders, reconcile
from safeagent.kube import Invalid, Unavailable
from tests.api.stage import CANARY_ADDRESS
from tests.api.world import runner_record


def test_crash_after_pod_creation_adopts_the_pod(world):
    world.add_job("list", "ls")
    world.run("list")  # decided and launched
    assert world.kube.pods_created == 1
    # The crash window: the Pod exists but the status never said Running.
    world.patch_status("list", {"phase": "Pending", "podName": None, "podUid": None})
    assert world.run("list") == "Running"
    assert world.kube.pods_created == 1 and len(world.pods) == 1


def test_failed_status_write_after_create_is_retried_without_a_second_pod(world):
    world.add_job("list", "ls")
    world.kube.fail("patch_job_status", Unavailable("etcd hiccup"))
    with pytest.raises(reconcile.TransientFailure):
        world.run("list")  # fails writing the decision
    assert world.run("list") == "Running"
    world.add_job("list2", "ls")
    original = world.kube.create_pod

    def create_then_break(body):
        created = original(body)
        world.kube.fail("patch_job_status", Unavailable("lost"))
        return created

    world.kube.create_pod = create_then_break
    with pytest.raises(reconcile.TransientFailure):
        world.run("list2")
    world.kube.create_pod = original
    assert world.run("list2") == "Running"
    assert world.kube.pods_created == 2 and len(world.pods) == 2  # one per job, never two for one job


def _name(world, job_name):
    return builders.child_name(job_name, world.job(job_name)["metadata"]["uid"])


def test_foreign_pod_with_our_name_is_not_adopted(world):
    world.add_job("list", "ls")
    name = _name(world, "list")
    world.create_pod({"metadata": {"name": name}, "spec": _plain_pod_spec()})
    with pytest.raises(reconcile.PermanentFailure):
        world.run("list")
    assert world.status("list")["reason"] == "PodNameConflict"
    assert name in world.pods  # not ours: never deleted


def _plain_pod_spec():
    """A Pod spec that Pod Security `restricted` admits."""
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "main", "image": "safeagent/sandbox:dev", "command": ["sleep", "1"],
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }],
    }


def _impostor(world, name="list"):
    """A Pod someone else made under the job's Pod name, with the job's labels and owner reference
    copied (anyone who can create Pods can write those), running another argv."""
    job = reconcile.SandboxJob.model_validate(world.job(name))
    return builders.build_sandbox_pod(job, ["rm", "-rf", "."], 64, world.ctx.config, canary_address=CANARY_ADDRESS)


def test_pod_with_forged_labels_and_another_argv_is_not_adopted(world):
    world.add_job("list", "ls")
    pod = world.create_pod(_impostor(world))
    with pytest.raises(reconcile.PermanentFailure):
        world.run("list")
    st = world.status("list")
    assert (st["phase"], st["reason"]) == ("Failed", "PodNameConflict") and "args" in st["message"]
    world.run("list")
    assert world.pods[pod["metadata"]["name"]]["metadata"]["uid"] == pod["metadata"]["uid"]  # never deleted


def test_adopted_pod_uid_is_recorded(world):
    world.add_job("list", "ls")
    world.run("list")
    st = world.status("list")
    assert st["podUid"] == world.pods[st["podName"]]["metadata"]["uid"]


def test_pod_replaced_while_running_is_not_trusted(world):
    world.add_job("list", "ls")
    world.run("list")
    name = world.status("list")["podName"]
    world.delete_pod(name)  # ours deleted, another one created under the name
    impostor = world.create_pod(_impostor(world))
    world.finish_pod(name, runner_record(stdout="forged"))
    assert world.run("list") == "Failed"
    st = world.status("list")
    assert st["reason"] == "PodReplaced" and "stdout" not in st
    world.run("list")
    assert world.pods[name]["metadata"]["uid"] == impostor["metadata"]["uid"]  # not deleted by name


def test_pod_swapped_while_its_log_is_read_is_not_trusted(world):
    world.add_job("list", "ls")
    world.run("list")
    name = world.status("list")["podName"]
    world.finish_pod(name, runner_record(stdout="real"))
    original = world.kube.read_pod_log

    def read_then_swap(namespace, pod, container, limit):
        text = original(namespace, pod, container, limit)
        world.delete_pod(pod)
        world.create_pod(_impostor(world))
        return text

    world.kube.read_pod_log = read_then_swap
    assert world.run("list") == "Failed"
    assert world.status("list")["reason"] == "PodReplaced"


def test_vanished_pod_fails_the_job_and_is_never_recreated(world):
    world.add_job("list", "ls")
    world.run("list")
    world.delete_pod(world.status("list")["podName"])
    assert world.run("list") == "Failed"
    assert world.status("list")["reason"] == "PodLost" and world.kube.pods_created == 1


def test_refused_pod_fails_permanently(world):
    world.add_job("list", "ls")
    world.kube.fail("create_pod", Invalid("violates PodSecurity restricted"))
    with pytest.raises(reconcile.PermanentFailure):
        world.run("list")
    assert world.status("list")["reason"] == "ApiRefused"


def test_final_job_cleans_up_a_leftover_pod(world):
    world.add_job("list", "ls")
    world.run("list")
    pod = world.status("list")["podName"]
    world.finish_pod(pod, runner_record())
    world.kube.fail("delete_pod", Unavailable("timeout"))
    with pytest.raises(reconcile.TransientFailure):
        world.run("list")
    assert world.status("list")["phase"] == "Succeeded" and pod in world.pods
    world.run("list")
    assert world.pods == {}


# ------------------------------------------------- issue 20: a UID of its own for each sandbox Pod

def _ours_with_uid(world, uid, name="list", tamper=lambda pod: None):
    """The Pod the operator would launch for the job, built before a restart as `uid`: the job is
    decided, its Pod creation failed once, and the Pod is made under its name as the operator
    would have made it then (`tamper`: and changed so)."""
    world.add_job(name, "ls")
    world.kube.fail("create_pod", Unavailable("timeout after the write"))
    with pytest.raises(reconcile.TransientFailure):
        world.run(name)
    status = world.status(name)
    job = reconcile.SandboxJob.model_validate(world.job(name))
    pod = builders.build_sandbox_pod(job, status["argv"], status["limits"]["maxOutputKb"], world.ctx.config,
                                     canary_address=CANARY_ADDRESS)
    pod = builders.with_run_as_user(pod, uid)
    tamper(pod)
    return world.create_pod(pod)


def test_our_pod_running_as_another_uid_of_the_range_is_adopted_and_holds_it(world):
    uid_range = world.ctx.config.sandbox.uidRange
    pod = _ours_with_uid(world, uid_range.last)
    name = pod["metadata"]["name"]
    assert uid_range.preferred(name) != uid_range.last  # not the UID today's build would choose
    assert world.run("list") == "Running"
    st = world.status("list")
    assert (st["podName"], st["podUid"]) == (name, pod["metadata"]["uid"]) and world.kube.pods_created == 0
    assert world.ctx.uids.held() == {(world.ns, name): uid_range.last}


@pytest.mark.parametrize("uid", [65532, 1000])
def test_our_pod_running_as_a_uid_outside_the_range_is_not_adopted(world, uid):
    pod = _ours_with_uid(world, uid)
    with pytest.raises(reconcile.PermanentFailure):
        world.run("list")
    st = world.status("list")
    assert (st["phase"], st["reason"]) == ("Failed", "PodNameConflict") and "runAsUser" in st["message"]
    assert world.pods[pod["metadata"]["name"]]["metadata"]["uid"] == pod["metadata"]["uid"]  # never deleted


def test_our_pod_with_one_container_under_another_uid_is_not_adopted(world):
    first = world.ctx.config.sandbox.uidRange.first
    _ours_with_uid(world, first, tamper=lambda pod: pod["spec"]["containers"][0]["securityContext"].update(
        runAsUser=first + 1))
    with pytest.raises(reconcile.PermanentFailure):
        world.run("list")
    assert world.status("list")["reason"] == "PodNameConflict"
