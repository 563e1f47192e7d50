"""reconcile/source.py on a real API server: the source is read, pinned by digest before review,
and a source that changed or is not there ends the job with its reason."""

from __future__ import annotations

import json

import pytest

from safeagent import reconcile
from safeagent.sandbox.digest import configmap_digest
from tests.api.world import compact, prepare_record, runner_record

PVC = {"persistentVolumeClaim": {"claimName": "repos"}}
VOLUME_DIGEST = "sha256:" + "5" * 64


def test_rejected_source(world):
    world.add_job("list", "ls")
    world.run("list")
    pod = world.status("list")["podName"]
    record = prepare_record(False, "symlink", "source tree rejected: escape: symbolic link refused")
    world.finish_pod(pod, phase="Failed", prepare_exit=1, prepare_record=record)
    assert world.run("list") == "Rejected"
    st = world.status("list")
    assert st["reason"] == "symlink" and "symbolic link" in st["message"]
    assert "SourceRejected" in world.reasons() and world.pods == {}


def test_a_source_changed_between_review_and_run_ends_approval_mismatch(world):
    _, approval_name = world.await_approval()
    world.decide(approval_name, "Approved")
    assert world.run("rm") == "Running"
    record = prepare_record(False, "source_changed", "the source is not the one that was approved")
    world.finish_pod(world.status("rm")["podName"], phase="Failed", prepare_exit=1, prepare_record=record)
    assert world.run("rm") == "Failed"
    st = world.status("rm")
    assert st["reason"] == "ApprovalMismatch" and "exitCode" not in st
    assert world.reasons()[-1] == "ApprovalMismatch"


def test_a_missing_configmap_source_is_waited_for_then_fails(world):
    world.delete_configmap()
    world.add_job("rm", "rm delete-me.txt")
    with pytest.raises(reconcile.TransientFailure):
        world.run("rm")
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert world.run("rm") == "Failed"
    assert world.status("rm")["reason"] == "SourceNotFound" and world.approvals == {}


def test_a_configmap_with_a_bad_key_is_rejected_before_any_review(world):
    world.put_configmap({"a----b": "x"})
    world.add_job("rm", "rm delete-me.txt")
    assert world.run("rm") == "Rejected"
    assert world.status("rm")["reason"] == "bad_key" and world.approvals == {}


def test_binary_data_counts_in_the_digest(world):
    world.put_configmap({"a.txt": "x"}, binary={"b.bin": "AAEC"})
    world.await_approval()
    assert world.status("rm")["sourceDigest"] == configmap_digest({"a.txt": b"x", "b.bin": b"\0\1\2"})


def test_a_volume_source_is_pinned_by_a_review_pod_before_the_approval(world):
    world.add_job("rm", "rm delete-me.txt", source=PVC, networkProfile="git-read")
    assert world.run("rm") == "Pending"
    review = world.status("rm")["reviewPodName"]
    pod = world.pods[review]
    assert not pod["spec"].get("initContainers") and [c["name"] for c in pod["spec"]["containers"]] == ["prepare"]
    assert pod["metadata"]["labels"]["safeagent.ca/network-profile"] == "none"
    assert "safeagent-profile-none" in world.network_policies and world.approvals == {}
    assert world.run("rm") == "Pending"  # still copying
    world.set_log(review, "prepare", compact(prepare_record(True, "copied", digest=VOLUME_DIGEST)) + "\n")
    world.set_pod_status(review, {"phase": "Succeeded"})
    assert world.run("rm") == "AwaitingApproval"
    approval = world.approvals[world.status("rm")["approvalName"]]
    assert approval["spec"]["sourceDigest"] == VOLUME_DIGEST and review not in world.pods
    world.decide(approval["metadata"]["name"], "Approved")
    assert world.run("rm") == "Running"
    run = world.pods[world.status("rm")["podName"]]
    assert json.loads(run["spec"]["initContainers"][0]["args"][0])["expectedDigest"] == VOLUME_DIGEST
    assert world.kube.pods_created == 2


def test_a_volume_source_rejected_by_the_review_pod_is_rejected(world):
    world.add_job("rm", "rm delete-me.txt", source=PVC)
    world.run("rm")
    review = world.status("rm")["reviewPodName"]
    world.set_log(review, "prepare", compact(prepare_record(False, "symlink", "a link")) + "\n")
    world.set_pod_status(review, {"phase": "Failed"})
    assert world.run("rm") == "Rejected"
    assert world.status("rm")["reason"] == "symlink" and world.approvals == {} and world.pods == {}


def test_a_review_pod_swapped_while_its_record_is_read_pins_nothing(world):
    """Someone who may create Pods replaces the review Pod under its name while the operator reads
    its log: the record came from another object, so its digest pins nothing and nothing is asked."""
    world.add_job("rm", "rm delete-me.txt", source=PVC)
    world.run("rm")
    review = world.status("rm")["reviewPodName"]
    world.set_log(review, "prepare", compact(prepare_record(True, "copied", digest=VOLUME_DIGEST)) + "\n")
    world.set_pod_status(review, {"phase": "Succeeded"})
    original = world.kube.read_pod_log

    def read_then_swap(namespace, pod, container, limit):
        text = original(namespace, pod, container, limit)
        impostor = world.pod(pod)
        world.delete_pod(pod)
        world.create_pod({"metadata": {"name": pod, "labels": impostor["metadata"].get("labels", {})},
                          "spec": impostor["spec"]})
        return text

    world.kube.read_pod_log = read_then_swap
    assert world.run("rm") == "Failed"
    st = world.status("rm")
    assert st["reason"] == "PodReplaced" and "review Pod" in st["message"]
    assert world.approvals == {} and "sourceDigest" not in st


def test_a_review_pod_that_never_finishes_times_out(world):
    world.add_job("rm", "rm delete-me.txt", source=PVC)
    world.run("rm")
    world.clock.advance(2 * world.ctx.config.sandbox.launchGraceSeconds + 1)
    assert world.run("rm") == "Failed"
    assert world.status("rm")["reason"] == "Timeout" and world.pods == {}


def test_a_source_that_appears_within_the_grace_clears_the_trouble(world):
    world.delete_configmap()
    world.add_job("list", "ls")
    world.run("list")
    assert world.status("list")["reason"] == "SourceNotFound"
    world.put_configmap({"delete-me.txt": "bye\n"})
    world.clock.advance(world.ctx.config.sandbox.sourceGraceSeconds + 1)
    assert world.run("list") == "Running"
    st = world.status("list")
    assert (st["reason"], st["message"]) == ("launched", f"sandbox Pod {st['podName']} launched")
    world.finish_pod(st["podName"], runner_record())
    assert world.run("list") == "Succeeded"
